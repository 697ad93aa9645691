package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{StaticToken: "static-token"})

	t.Run("AuthorizeShape", func(t *testing.T) {
		st, m, _ := e.request(http.MethodGet, "/open-api/oauth/authorize?clientId=any", nil, nil)
		if st != http.StatusOK {
			t.Fatalf("HTTP %d", st)
		}
		assertShape(t, "authorize", mustJSON(t, `{"timestamp":1,"code":"x"}`), m)
		if code, _ := m["code"].(string); !regexpHex32.MatchString(code) {
			t.Errorf("code %q is not 32 hex", code)
		}
	})
	t.Run("AccessTokenShapeAndSingleUseCode", func(t *testing.T) {
		_, a, _ := e.request(http.MethodGet, "/open-api/oauth/authorize?clientId=any", nil, nil)
		body := map[string]any{"clientId": "any", "clientSecret": "whatever", "code": a["code"]}
		st, m, _ := e.request(http.MethodPost, "/open-api/oauth/access-token", body, nil)
		if st != http.StatusOK {
			t.Fatalf("HTTP %d %v", st, m)
		}
		assertShape(t, "access-token", mustJSON(t, `{"accessToken":"a","refreshToken":"r","expiresIn":86400,"timestamp":1}`), m)
		if m["expiresIn"] != float64(86400) {
			t.Errorf("expiresIn = %v, want 86400", m["expiresIn"])
		}
		if st, _, _ := e.request(http.MethodPost, "/open-api/oauth/access-token", body, nil); st != http.StatusBadRequest {
			t.Errorf("reused code: HTTP %d, want 400", st)
		}
		st, r, _ := e.request(http.MethodPost, "/open-api/oauth/refresh-token", map[string]any{"clientId": "any", "refreshToken": m["refreshToken"]}, nil)
		if st != http.StatusOK || r["accessToken"] == m["accessToken"] {
			t.Errorf("refresh: HTTP %d %v", st, r)
		}
	})
	t.Run("UnknownCodeRejected", func(t *testing.T) {
		st, m, _ := e.request(http.MethodPost, "/open-api/oauth/access-token", map[string]any{"clientId": "a", "clientSecret": "b", "code": "0123456789abcdef0123456789abcdef"}, nil)
		if st != http.StatusBadRequest || m["code"] == "000000" {
			t.Errorf("HTTP %d %v, want 400 with an error code", st, m)
		}
	})
	endpoints := []struct{ method, path string }{
		{http.MethodPost, "/open-api/v3/cryptoconnect/wallets"},
		{http.MethodGet, "/open-api/v3/cryptoconnect/wallets/" + master},
		{http.MethodPost, "/open-api/v3/cryptoconnect/wallets/" + master + "/addresses"},
		{http.MethodGet, "/open-api/v3/cards/wallets?accountId=" + acct},
		{http.MethodPost, "/open-api/v3/business/transfer/internal"},
		{http.MethodPost, "/open-api/v3/cryptoconnect/convert/estimate-quote"},
		{http.MethodPost, "/open-api/v3/cryptoconnect/convert/trades"},
		{http.MethodPost, "/open-api/v3/cryptoconnect/transfers/fee-and-quota"},
		{http.MethodPost, "/open-api/v3/cryptoconnect/transfers"},
		{http.MethodGet, "/open-api/v3/cryptoconnect/transfers/x"},
		{http.MethodGet, "/open-api/v3/cryptoconnect/transfers"},
	}
	for _, tok := range []string{"", "not-a-token"} {
		for _, ep := range endpoints {
			t.Run("Unauthorized"+ep.method+ep.path+"/"+tok, func(t *testing.T) {
				req, _ := http.NewRequest(ep.method, e.ts.URL+ep.path, bytes.NewReader([]byte(`{}`)))
				if tok != "" {
					req.Header.Set("x-access-token", tok)
				}
				resp, err := e.ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("HTTP %d, want 401", resp.StatusCode)
				}
			})
		}
	}
	t.Run("StaticToken", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/open-api/v3/cryptoconnect/wallets/"+master, nil)
		req.Header.Set("x-access-token", "static-token")
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HTTP %d, want 200", resp.StatusCode)
		}
	})
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	e := setup(t, sandbox.Config{TokenTTL: ttl})
	issued := time.Now()
	e.token = e.oauth()
	received := time.Now() // the server's expiry lies between issued+ttl and received+ttl
	st, _, _ := e.request(http.MethodGet, "/open-api/v3/cryptoconnect/wallets/"+master, nil, nil)
	// On a loaded machine the first call may come late; only judge it when it surely came before expiry.
	if time.Since(issued) < ttl/2 && st != http.StatusOK {
		t.Fatalf("fresh token: HTTP %d", st)
	}
	time.Sleep(time.Until(received.Add(ttl + 20*time.Millisecond)))
	st, m, _ := e.request(http.MethodGet, "/open-api/v3/cryptoconnect/wallets/"+master, nil, nil)
	if st != http.StatusUnauthorized {
		t.Fatalf("expired token: HTTP %d, want 401", st)
	}
	assertShape(t, "401", mustJSON(t, errorEnvelopeA), m)
}

// TestInternalTransferConcurrentIdenticalRequests: 50 identical requests race; exactly one moves money and all
// get the same answer.
func TestInternalTransferConcurrentIdenticalRequests(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	const n = 50
	body := transferBody("6f1c9a52-8a7e-5b0e-9d0e-2c4b1f7a9e33", master, "USDC", infinity, "USD", 2, 0, "12.345678")
	hdr := map[string]string{"Idempotency-Key": "6f1c9a52-8a7e-5b0e-9d0e-2c4b1f7a9e33"}
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, raw := e.request(http.MethodPost, "/open-api/v3/business/transfer/internal", body, hdr)
			bodies[i] = raw
		}()
	}
	close(start)
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("answer %d differs:\n%s\n%s", i, bodies[i], bodies[0])
		}
	}
	l := e.ledger()
	if len(l.InternalTransfers) != 1 {
		t.Fatalf("%d internal transfers, want 1", len(l.InternalTransfers))
	}
	it := l.InternalTransfers[0]
	// 12.345678 * 0.005 = 0.06172839 -> rounded down to 0.061728.
	requireDec(t, "fee", it.Fee, "0.061728")
	requireDec(t, "credited", it.Credited, "12.28395")
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "987.654322")
	requireDec(t, "infinity", l.Infinity.Available, "56858.80395")
	if got := l.RequestsByIdempotencyKey["6f1c9a52-8a7e-5b0e-9d0e-2c4b1f7a9e33"]; got != n {
		t.Errorf("requestsByIdempotencyKey = %d, want %d (header and body key count once per request)", got, n)
	}
	if len(l.IdempotencyConflicts) != 0 {
		t.Errorf("conflicts = %v", l.IdempotencyConflicts)
	}
}

func TestInternalTransferReplay(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	first := e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal",
		transferBody("ctid-1", master, "USDT", infinity, "USD", 2, 0, "100"))

	t.Run("DifferentBodySameIDReturnsFirstAndCountsConflict", func(t *testing.T) {
		again := e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal",
			transferBody("ctid-1", master, "USDT", infinity, "USD", 2, 0, "200"))
		if again["id"] != first["id"] || again["from"].(map[string]any)["amount"] != "100" {
			t.Errorf("replay = %v, want the first result", again)
		}
		if c := e.ledger().IdempotencyConflicts["ctid-1"]; c != 1 {
			t.Errorf("conflicts = %d, want 1", c)
		}
	})
	t.Run("IdempotencyKeyHeaderAloneReplays", func(t *testing.T) {
		a := e.ok2(transferBody("ctid-2", master, "USDT", infinity, "USD", 2, 0, "1"), "hdr-2")
		b := e.ok2(transferBody("ctid-3", master, "USDT", infinity, "USD", 2, 0, "1"), "hdr-2")
		if a["id"] != b["id"] {
			t.Errorf("same Idempotency-Key gave %v and %v", a["id"], b["id"])
		}
	})
	l := e.ledger()
	if len(l.InternalTransfers) != 2 {
		t.Fatalf("%d transfers, want 2", len(l.InternalTransfers))
	}
	requireDec(t, "master USDT", e.walletBalance(master, "USDT"), "899")
}

func (e *env) ok2(body map[string]any, key string) map[string]any {
	e.t.Helper()
	m := e.api(http.MethodPost, "/open-api/v3/business/transfer/internal", body, map[string]string{"Idempotency-Key": key})
	if m["code"] != "000000" {
		e.t.Fatalf("not a success: %v", m)
	}
	return m["data"].(map[string]any)
}

func TestInternalTransferValidation(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	wallet := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/wallets", map[string]any{"referenceId": "v", "accountId": acct})["id"].(string)
	tests := []struct {
		name string
		body map[string]any
		code string
	}{
		{"AccountMismatch", func() map[string]any {
			b := transferBody("c", master, "USDC", infinity, "USD", 2, 0, "1")
			b["accountId"] = "00000000-0000-0000-0000-000000000000"
			return b
		}(), "010001"},
		{"MissingClientTransactionID", transferBody("", master, "USDC", infinity, "USD", 2, 0, "1"), "010001"},
		{"UnknownWallet", transferBody("c", "nope", "USDC", infinity, "USD", 2, 0, "1"), "010021"},
		{"UnknownInfinity", transferBody("c", master, "USDC", "nope", "USD", 2, 0, "1"), "010021"},
		{"UnknownTargetWallet", transferBody("c", infinity, "USD", "nope", "USD", 0, 2, "1"), "010021"},
		{"ZeroAmount", transferBody("c", master, "USDC", infinity, "USD", 2, 0, "0"), "010001"},
		{"NegativeAmount", transferBody("c", master, "USDC", infinity, "USD", 2, 0, "-1"), "010001"},
		{"NotANumber", transferBody("c", master, "USDC", infinity, "USD", 2, 0, "ten"), "010001"},
		{"SevenDecimalsUSDC", transferBody("c", master, "USDC", infinity, "USD", 2, 0, "1.0000001"), "010001"},
		{"ThreeDecimalsUSD", transferBody("c", infinity, "USD", master, "USD", 0, 2, "1.001"), "010001"},
		{"StablecoinFromInfinity", transferBody("c", infinity, "USDC", master, "USDC", 0, 2, "1"), "010001"},
		{"InfinityTargetNotUSD", transferBody("c", master, "USDC", infinity, "USDC", 2, 0, "1"), "010001"},
		{"WalletToWallet", transferBody("c", master, "USDC", wallet, "USDC", 2, 2, "1"), "010001"},
		{"UnknownCurrency", transferBody("c", master, "DOGE", infinity, "USD", 2, 0, "1"), "010001"},
		{"InsufficientWallet", transferBody("c", wallet, "USDC", infinity, "USD", 2, 0, "0.000001"), "010023"},
		{"InsufficientMaster", transferBody("c", master, "USDC", infinity, "USD", 2, 0, "1000.000001"), "010023"},
		{"InsufficientInfinity", transferBody("c", infinity, "USD", master, "USD", 0, 2, "56846.53"), "010023"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, m, raw := e.request(http.MethodPost, "/open-api/v3/business/transfer/internal", tc.body, nil)
			if st != http.StatusOK {
				t.Fatalf("HTTP %d %s", st, raw)
			}
			if m["code"] != tc.code || m["data"] != nil {
				t.Errorf("answer %s, want code %s and data null", raw, tc.code)
			}
		})
	}
	t.Run("TrailingZerosDoNotCountAsDecimals", func(t *testing.T) {
		d := e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal",
			transferBody("tz", infinity, "USD", wallet, "USD", 0, 2, "1.5000"))
		if d["to"].(map[string]any)["amount"] != "1.5" {
			t.Errorf("to = %v", d["to"])
		}
	})
	l := e.ledger()
	if len(l.InternalTransfers) != 1 {
		t.Fatalf("%d transfers applied, want only the valid one", len(l.InternalTransfers))
	}
	requireDec(t, "infinity", l.Infinity.Available, "56845.02")
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "1000")
}

// TestInsufficientThenFunded: a refused transfer is not remembered, so the same id succeeds once funds arrive.
func TestInsufficientThenFunded(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	wallet := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/wallets", map[string]any{"referenceId": "f", "accountId": acct})["id"].(string)
	body := transferBody("sweep-1", wallet, "USDC", infinity, "USD", 2, 0, "10.5")
	if m := e.api(http.MethodPost, "/open-api/v3/business/transfer/internal", body, nil); m["code"] != "010023" {
		t.Fatalf("unfunded: %v, want 010023", m)
	}
	if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{WalletID: wallet, Amount: dec("10.5")}); err != nil {
		t.Fatal(err)
	}
	d := e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal", body)
	if d["to"].(map[string]any)["amount"] != "10.4475" {
		t.Errorf("credited %v, want 10.4475 (fee 0.0525)", d["to"].(map[string]any)["amount"])
	}
	requireDec(t, "wallet USDC", e.walletBalance(wallet, "USDC"), "0")
}

// TestTradePicksTheFundedWallet: the trade pays from the wallet that step 1 funded and answers it as
// baseWalletId; without USD anywhere it is refused.
func TestTradePicksTheFundedWallet(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{TradeRate: dec("0.9999")})
	a := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/wallets", map[string]any{"referenceId": "a", "accountId": acct})["id"].(string)
	b := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/wallets", map[string]any{"referenceId": "b", "accountId": acct})["id"].(string)
	e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal", transferBody("fa", infinity, "USD", a, "USD", 0, 2, "50"))
	e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal", transferBody("fb", infinity, "USD", b, "USD", 0, 2, "20.01"))
	trade := func(ref, amount string) map[string]any {
		return e.api(http.MethodPost, "/open-api/v3/cryptoconnect/convert/trades", map[string]any{
			"referenceId": ref, "accountId": acct, "baseCurrency": "USDT", "quoteCurrency": "USD", "side": "BUY",
			"rfqCurrency": "USD", "rfqAmount": amount}, nil)
	}
	t1 := trade("t1", "20.01")["data"].(map[string]any)
	// fee = 20.01*0.005 = 0.10005; base = (20.01-0.10005)*0.9999 = 19.907959005 -> 19.907959.
	if t1["baseWalletId"] != b || t1["fee"] != "0.10005" || t1["baseAmount"] != "19.907959" || t1["rate"] != "0.9999" {
		t.Errorf("trade 1 = %v, want wallet b", t1)
	}
	requireDec(t, "b USDT", e.walletBalance(b, "USDT"), "19.907959")
	// b is now empty; a still holds 50.
	if t2 := trade("t2", "30")["data"].(map[string]any); t2["baseWalletId"] != a {
		t.Errorf("trade 2 paid from %v, want wallet a", t2["baseWalletId"])
	}
	if m := trade("t3", "30"); m["code"] != "010023" {
		t.Errorf("trade without USD: %v, want 010023", m)
	}
	if n := len(e.ledger().Trades); n != 2 {
		t.Errorf("%d trades, want 2", n)
	}
}

func TestListTransfersPagination(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	var ids []string
	for range 5 {
		d, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	page := func(q string) (list []any, total string) {
		d := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/transfers?accountId="+acct+q, nil)
		return d["list"].([]any), d["total"].(string)
	}
	l, total := page("&limit=2&page=2")
	if total != "5" || len(l) != 2 || l[0].(map[string]any)["id"] != ids[2] || l[1].(map[string]any)["id"] != ids[1] {
		t.Errorf("page 2 = %v (total %s), want newest first: %s, %s", l, total, ids[2], ids[1])
	}
	assertShape(t, "deposit in list", mustJSON(t, contractDeposit), l[0])
	if l, total := page("&walletId=other"); total != "0" || len(l) != 0 {
		t.Errorf("filtered = %v %s", l, total)
	}
	if d := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/transfers?accountId=someone-else", nil); d["total"] != "0" {
		t.Errorf("other account = %v", d)
	}
}

// TestConcurrentMixedLoadConservesMoney: distinct transfers, deposits and ledger reads race; every unit of
// money is accounted for afterwards.
func TestConcurrentMixedLoadConservesMoney(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	const workers, per = 10, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				amt := fmt.Sprintf("%d.%06d", i+1, w*1000+i) // up to 6 decimals: fees get rounded
				e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal",
					transferBody(fmt.Sprintf("mix-%d-%d", w, i), master, "USDC", infinity, "USD", 2, 0, amt))
				if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec(amt)}); err != nil {
					t.Error(err)
				}
				_ = e.srv.Ledger()
			}
		}()
	}
	wg.Wait()
	l := e.ledger()
	if len(l.InternalTransfers) != workers*per || len(l.Deposits) != workers*per {
		t.Fatalf("%d transfers, %d deposits", len(l.InternalTransfers), len(l.Deposits))
	}
	sent, credited, deposited := decimal.Zero, decimal.Zero, decimal.Zero
	for _, it := range l.InternalTransfers {
		if !it.Fee.Add(it.Credited).Equal(it.Amount) || it.Fee.GreaterThan(it.Amount.Mul(dec("0.005"))) {
			t.Errorf("transfer %s: fee %s + credited %s vs amount %s", it.ID, it.Fee, it.Credited, it.Amount)
		}
		sent, credited = sent.Add(it.Amount), credited.Add(it.Credited)
	}
	for _, d := range l.Deposits {
		deposited = deposited.Add(d.Amount)
	}
	if !sent.Equal(deposited) {
		t.Fatalf("sent %s, deposited %s: the test sends what it deposits", sent, deposited)
	}
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "1000")
	requireDec(t, "infinity", l.Infinity.Available, dec("56846.52").Add(credited).String())
}
