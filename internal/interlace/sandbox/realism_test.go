package sandbox_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// The tests of contract §12's realism: every new fault, balances, the list's limits, the Budget balance and the
// answer ledger the chaos verdict reads.

const transferPath = "/open-api/v3/business/transfer/internal"

func chainBody(key, source, amount string) map[string]any {
	return map[string]any{
		"idempotencyKey": key, "accountId": acct,
		"source":      map[string]any{"type": "cryptoconnect_wallet", "id": source},
		"destination": map[string]any{"type": "blockchain", "chain": "ETH", "address": "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
		"amount":      map[string]any{"amount": amount, "currency": "USDC"},
	}
}

func tradeBody(ref, amount string) map[string]any {
	return map[string]any{"referenceId": ref, "accountId": acct, "baseCurrency": "USDC", "quoteCurrency": "USD",
		"side": "BUY", "rfqCurrency": "USD", "rfqAmount": amount}
}

// newWallet creates a CryptoConnect wallet holding amount USDC (none when amount is "").
func (e *env) newWallet(ref, amount string) string {
	e.t.Helper()
	id := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/wallets", map[string]any{"referenceId": ref, "accountId": acct})["id"].(string)
	if amount != "" {
		if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{WalletID: id, Amount: dec(amount)}); err != nil {
			e.t.Fatal(err)
		}
	}
	return id
}

func (e *env) internalTransfer(id string) (sandbox.InternalTransfer, bool) {
	for _, it := range e.ledger().InternalTransfers {
		if it.ClientTransactionID == id {
			return it, true
		}
	}
	return sandbox.InternalTransfer{}, false
}

func (e *env) deposit(id string) sandbox.Deposit {
	e.t.Helper()
	for _, d := range e.ledger().Deposits {
		if d.ID == id {
			return d
		}
	}
	e.t.Fatalf("deposit %s not in the ledger", id)
	return sandbox.Deposit{}
}

func TestRealismFaultsEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	if f := e.srv.CurrentFaults(); f != (sandbox.Faults{}) {
		t.Fatalf("faults at start = %+v, want all off", f)
	}
	tests := []struct {
		name string
		body map[string]any
		ok   bool
	}{
		{"all on", map[string]any{"duplicateAnswer": "error", "pendingRate": 0.25, "pendingMs": float64(1500),
			"dropWebhookRate": 0.1, "legacyEnvelopeRate": 0.2, "refundAfterCloseRate": 0.05, "budgetBalance": true}, true},
		{"first", map[string]any{"duplicateAnswer": "first"}, true},
		{"empty duplicateAnswer", map[string]any{"duplicateAnswer": ""}, true},
		{"pendingMs at the bound", map[string]any{"pendingMs": float64(600000), "pendingRate": float64(1)}, true},
		{"duplicateAnswer unknown", map[string]any{"duplicateAnswer": "Error"}, false},
		{"pendingRate over 1", map[string]any{"pendingRate": 1.5}, false},
		{"pendingMs negative", map[string]any{"pendingMs": -1}, false},
		{"pendingMs over bound", map[string]any{"pendingMs": 600001}, false},
		{"dropWebhookRate negative", map[string]any{"dropWebhookRate": -0.1}, false},
		{"legacyEnvelopeRate over 1", map[string]any{"legacyEnvelopeRate": 2}, false},
		{"refundAfterCloseRate over 1", map[string]any{"refundAfterCloseRate": 1.01}, false},
		{"budgetBalance not a bool", map[string]any{"budgetBalance": "yes"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.srv.CurrentFaults()
			st, m, raw := e.request(http.MethodPut, "/sandbox/faults", tc.body, nil)
			if !tc.ok {
				if st != http.StatusBadRequest || m["error"] == nil {
					t.Fatalf("HTTP %d %s, want 400", st, raw)
				}
				if e.srv.CurrentFaults() != before {
					t.Fatalf("a rejected PUT changed the faults")
				}
				return
			}
			if st != http.StatusOK {
				t.Fatalf("HTTP %d %s", st, raw)
			}
			_, got, _ := e.request(http.MethodGet, "/sandbox/faults", nil, nil)
			for k, v := range tc.body {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

// TestDuplicateAnswer: a repeated key of an internal or blockchain transfer answers the transfer ("first") or
// code 100409 in the endpoint's envelope ("error"); either way the money moved once.
func TestDuplicateAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mode      string
		path      string
		first     map[string]any
		again     map[string]any
		hdr       map[string]string
		key       string
		wantCode  any // of the repeat; nil: success with the first answer's id
		wantClass string
	}{
		{"internal first", "", transferPath, transferBody("dup-1", master, "USDC", infinity, "USD", 2, 0, "10"),
			nil, nil, "dup-1", nil, sandbox.AnswerReplayed},
		{"internal first explicit", "first", transferPath, transferBody("dup-2", master, "USDC", infinity, "USD", 2, 0, "10"),
			nil, nil, "dup-2", nil, sandbox.AnswerReplayed},
		{"internal error", "error", transferPath, transferBody("dup-3", master, "USDC", infinity, "USD", 2, 0, "10"),
			nil, nil, "dup-3", "100409", sandbox.AnswerDuplicateError},
		{"internal error by Idempotency-Key header", "error", transferPath,
			transferBody("dup-4a", master, "USDC", infinity, "USD", 2, 0, "10"),
			transferBody("dup-4b", master, "USDC", infinity, "USD", 2, 0, "10"),
			map[string]string{"Idempotency-Key": "hdr-4"}, "hdr-4", "100409", sandbox.AnswerDuplicateError},
		{"blockchain first", "first", "/open-api/v3/cryptoconnect/transfers", chainBody("dup-5", master, "10"),
			nil, nil, "dup-5", nil, sandbox.AnswerReplayed},
		{"blockchain error", "error", "/open-api/v3/cryptoconnect/transfers", chainBody("dup-6", master, "10"),
			nil, nil, "dup-6", float64(100409), sandbox.AnswerDuplicateError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, sandbox.Config{})
			e.srv.SetFaults(sandbox.Faults{DuplicateAnswer: tc.mode})
			first := e.api(http.MethodPost, tc.path, tc.first, tc.hdr)
			if c := first["code"]; c != "000000" && c != float64(0) {
				t.Fatalf("first: %v", first)
			}
			again := tc.again
			if again == nil {
				again = tc.first
			}
			st, m, raw := e.request(http.MethodPost, tc.path, again, tc.hdr)
			if st != http.StatusOK {
				t.Fatalf("repeat: HTTP %d %s, want 200", st, raw)
			}
			if tc.wantCode == nil {
				if id := m["data"].(map[string]any)["id"]; id != first["data"].(map[string]any)["id"] {
					t.Fatalf("repeat answered %s, want the first transfer", raw)
				}
			} else {
				want := fmt.Sprintf(`{"code":%s,"message":"duplicate clientTransactionId","data":null}`, jsonText(tc.wantCode))
				if string(raw) != want {
					t.Fatalf("repeat answered %s, want %s", raw, want)
				}
			}
			l := e.ledger()
			if n := len(l.InternalTransfers) + len(l.BlockchainTransfers); n != 1 {
				t.Fatalf("%d transfers recorded, want 1", n)
			}
			moved := "990"
			if tc.path != transferPath {
				moved = "989.8" // 10 + 0.2 gas
			}
			requireDec(t, "master USDC", e.walletBalance(master, "USDC"), moved)
			if got, want := l.AnswersByIdempotencyKey[tc.key], []string{sandbox.AnswerApplied, tc.wantClass}; !slices.Equal(got, want) {
				t.Fatalf("answers for %s = %v, want %v", tc.key, got, want)
			}
		})
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestDuplicateErrorUnderConcurrency: many concurrent requests with one key under "error": exactly one applies,
// and the answer ledger lists it first, in decision order.
func TestDuplicateErrorUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	e.srv.SetFaults(sandbox.Faults{DuplicateAnswer: sandbox.DuplicateError})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.api(http.MethodPost, transferPath, transferBody("race-1", master, "USDC", infinity, "USD", 2, 0, "3"), nil)
		}()
	}
	wg.Wait()
	l := e.ledger()
	got := l.AnswersByIdempotencyKey["race-1"]
	want := []string{sandbox.AnswerApplied}
	for range 15 {
		want = append(want, sandbox.AnswerDuplicateError)
	}
	if !slices.Equal(got, want) || len(l.InternalTransfers) != 1 {
		t.Fatalf("answers %v (%d transfers), want %v and 1", got, len(l.InternalTransfers), want)
	}
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "997")
}

// TestPendingInternalTransfer: under pendingRate 1 the transfer is answered PENDING and nothing moves; replays
// answer PENDING until pendingMs has passed; then the balance is checked: CLOSED and applied, or FAILED with
// nothing moved. The balance at request time does not matter.
func TestPendingInternalTransfer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		before       string // USDC in the wallet when the transfer is requested
		during       string // USDC deposited while it is PENDING
		drain        bool   // the wallet is emptied while it is PENDING
		mode         string
		wantStatus   string
		wantBalance  string
		wantInfinity string
		wantLast     string // class of the replay after settlement
	}{
		{"funded throughout", "10", "", false, "", "CLOSED", "0", "56856.47", sandbox.AnswerReplayed},
		{"short at request, funded at apply", "", "10", false, "", "CLOSED", "0", "56856.47", sandbox.AnswerReplayed},
		{"funded at request, drained before apply", "10", "", true, "", "FAILED", "0", "56846.52", sandbox.AnswerReplayed},
		{"never funded", "", "", false, "", "FAILED", "0", "56846.52", sandbox.AnswerReplayed},
		{"replays under duplicateAnswer error", "10", "", false, "error", "CLOSED", "0", "56856.47", sandbox.AnswerDuplicateError},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, sandbox.Config{})
			w := e.newWallet(fmt.Sprintf("p-%d", i), tc.before)
			e.srv.SetFaults(sandbox.Faults{PendingRate: 1, PendingMs: 300, DuplicateAnswer: tc.mode})
			ctid := fmt.Sprintf("pend-%d", i)
			body := transferBody(ctid, w, "USDC", infinity, "USD", 2, 0, "10")
			d := e.ok(http.MethodPost, transferPath, body)
			if d["status"] != "PENDING" {
				t.Fatalf("answer status %v, want PENDING", d["status"])
			}
			if it, _ := e.internalTransfer(ctid); it.Status != "PENDING" || it.Applied {
				t.Fatalf("ledger while pending: %+v", it)
			}
			requireDec(t, "infinity while pending", e.ledger().Infinity.Available, "56846.52")
			wantAnswers := []string{sandbox.AnswerPending}
			if tc.mode == "" {
				if again := e.ok(http.MethodPost, transferPath, body); again["status"] != "PENDING" || again["id"] != d["id"] {
					t.Fatalf("replay while pending = %v, want the same transfer PENDING", again)
				}
				wantAnswers = append(wantAnswers, sandbox.AnswerPending)
			}
			if tc.during != "" {
				if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{WalletID: w, Amount: dec(tc.during)}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.drain {
				e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/transfers", chainBody("drain", w, "9.8"))
			}
			eventually(t, 5*time.Second, "the pending transfer settles", func() bool {
				it, _ := e.internalTransfer(ctid)
				return it.Status != "PENDING"
			})
			it, _ := e.internalTransfer(ctid)
			if it.Status != tc.wantStatus || it.Applied != (tc.wantStatus == "CLOSED") {
				t.Fatalf("settled as %s applied=%v (%s), want %s", it.Status, it.Applied, it.Reason, tc.wantStatus)
			}
			if tc.wantStatus == "FAILED" && it.Reason == "" {
				t.Error("FAILED without a reason")
			}
			requireDec(t, "wallet USDC", e.walletBalance(w, "USDC"), tc.wantBalance)
			requireDec(t, "infinity", e.ledger().Infinity.Available, tc.wantInfinity)

			st, m, raw := e.request(http.MethodPost, transferPath, body, nil)
			if st != http.StatusOK {
				t.Fatalf("replay: HTTP %d", st)
			}
			if tc.mode == "error" {
				if m["code"] != "100409" {
					t.Fatalf("replay = %s, want 100409", raw)
				}
			} else if data := m["data"].(map[string]any); data["status"] != tc.wantStatus || data["id"] != d["id"] {
				t.Fatalf("replay after settlement = %s, want %s", raw, tc.wantStatus)
			}
			wantAnswers = append(wantAnswers, tc.wantLast)
			if got := e.ledger().AnswersByIdempotencyKey[ctid]; !slices.Equal(got, wantAnswers) {
				t.Fatalf("answers = %v, want %v", got, wantAnswers)
			}
		})
	}
}

// TestDropWebhook: a dropped deposit gets no notification at all, yet the wallet is credited and the API shows
// it.
func TestDropWebhook(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		rate          float64
		wantDelivered int
	}{
		{"dropped", 1, 0},
		{"delivered", 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, nil)
			e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret})
			e.srv.SetFaults(sandbox.Faults{DropWebhookRate: tc.rate})
			dep, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("7")})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantDelivered > 0 {
				eventually(t, 5*time.Second, "deliveries", func() bool { return rcv.count() >= tc.wantDelivered })
			} else {
				time.Sleep(300 * time.Millisecond)
			}
			if n := rcv.count(); n != tc.wantDelivered {
				t.Fatalf("%d deliveries, want %d", n, tc.wantDelivered)
			}
			if d := e.deposit(dep.ID); d.WebhooksDropped != (tc.rate == 1) {
				t.Fatalf("WebhooksDropped = %v", d.WebhooksDropped)
			}
			requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "1007")
			if got := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/transfers/"+dep.ID, nil); got["status"] != "Closed" {
				t.Fatalf("GET = %v", got)
			}
			list := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/transfers?accountId="+acct, nil)
			if items := list["list"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != dep.ID {
				t.Fatalf("list = %v", list)
			}
		})
	}
}

var hex64Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestLegacyEnvelope: a legacy deposit's notifications carry {id, businessType, data (the transfer object),
// sign (hex HMAC of data's bytes)} and no Signature/Timestamp headers.
func TestLegacyEnvelope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		rate       float64
		wantLegacy bool
	}{
		{"legacy", 1, true},
		{"v3", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, nil)
			e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret})
			e.srv.SetFaults(sandbox.Faults{LegacyEnvelopeRate: tc.rate})
			dep, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("4.25")})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "two deliveries", func() bool { return rcv.count() >= 2 })
			ld := e.deposit(dep.ID)
			if ld.LegacyEnvelope != tc.wantLegacy {
				t.Fatalf("ledger LegacyEnvelope = %v", ld.LegacyEnvelope)
			}
			for i, d := range rcv.deliveries() {
				if !tc.wantLegacy {
					if d.header.Get("Signature") == "" || d.header.Get("Timestamp") == "" {
						t.Fatalf("v3 delivery %d lacks its headers: %v", i, d.header)
					}
					continue
				}
				for _, h := range []string{"Signature", "Timestamp", "Signature-Method"} {
					if d.header.Get(h) != "" {
						t.Errorf("legacy delivery %d carries %s", i, h)
					}
				}
				var env map[string]json.RawMessage
				if err := json.Unmarshal(d.body, &env); err != nil {
					t.Fatal(err)
				}
				var generic map[string]any
				_ = json.Unmarshal(d.body, &generic)
				assertShape(t, "legacy", mustJSON(t, `{"id":"x","businessType":"x","data":{},"sign":"x"}`), map[string]any{
					"id": generic["id"], "businessType": generic["businessType"], "data": map[string]any{}, "sign": generic["sign"]})
				if len(env) != 4 {
					t.Errorf("legacy keys = %v", keysOf(env))
				}
				var bt, sig string
				_ = json.Unmarshal(env["businessType"], &bt)
				_ = json.Unmarshal(env["sign"], &sig)
				if (bt != "CryptoConnectWallet" && bt != "AssetsDeposit") || bt != ld.LegacyBusinessType {
					t.Errorf("businessType %q (ledger %q)", bt, ld.LegacyBusinessType)
				}
				mac := hmac.New(sha256.New, []byte(secret))
				mac.Write(env["data"])
				if !hex64Re.MatchString(sig) || sig != hex.EncodeToString(mac.Sum(nil)) {
					t.Errorf("sign %q is not the hex HMAC of data %s", sig, env["data"])
				}
				var data map[string]any
				if err := json.Unmarshal(env["data"], &data); err != nil {
					t.Fatalf("data is not an object: %s", env["data"])
				}
				assertShape(t, "legacy data", mustJSON(t, contractDeposit), data)
				want := []string{"Pending", "Closed"}[i]
				if data["id"] != dep.ID || data["status"] != want {
					t.Errorf("delivery %d data = %v, want %s", i, data, want)
				}
			}
		})
	}
}

func keysOf(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestRefundAfterClose: shortly after the Closed notification the deposit is refunded if its wallet still holds
// the amount (debited, Refunded in GET and the list, a signed Refunded notification); if the money was swept
// out first, nothing happens and the ledger says so.
func TestRefundAfterClose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		sweepFirst  bool
		webhooks    bool
		legacy      bool
		slow        bool // the receiver takes 300 ms to answer each first attempt
		wantStatus  string
		wantRefund  string
		wantBalance string
		wantNotices []string // statuses notified, in order
	}{
		{"refunded", false, true, false, false, "Refunded", sandbox.RefundDone, "0", []string{"Pending", "Closed", "Refunded"}},
		{"refunded after a slow Closed delivery", false, true, false, true, "Refunded", sandbox.RefundDone, "0", []string{"Pending", "Closed", "Refunded"}},
		{"refunded, legacy envelope", false, true, true, false, "Refunded", sandbox.RefundDone, "0", []string{"Pending", "Closed", "Refunded"}},
		{"refunded without webhooks", false, false, false, false, "Refunded", sandbox.RefundDone, "0", nil},
		{"already swept", true, true, false, false, "Closed", sandbox.RefundSkipped, "0", []string{"Pending", "Closed"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, func(_ string, n int) int {
				if tc.slow && n == 1 {
					time.Sleep(300 * time.Millisecond)
				}
				return http.StatusOK
			})
			cfg := sandbox.Config{WebhookSecret: secret, RefundDelay: 150 * time.Millisecond}
			if tc.webhooks {
				cfg.WebhookURL = rcv.ts.URL
			}
			e := setup(t, cfg)
			w := e.newWallet(fmt.Sprintf("r-%d", i), "")
			f := sandbox.Faults{RefundAfterCloseRate: 1}
			if tc.legacy {
				f.LegacyEnvelopeRate = 1
			}
			e.srv.SetFaults(f)
			dep, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{WalletID: w, Amount: dec("12.5")})
			if err != nil {
				t.Fatal(err)
			}
			if dep.Refund != sandbox.RefundScheduled {
				t.Fatalf("Refund at arrival = %q, want scheduled", dep.Refund)
			}
			if tc.sweepFirst {
				e.ok(http.MethodPost, transferPath, transferBody("sweep-"+dep.ID, w, "USDC", infinity, "USD", 2, 0, "12.5"))
			}
			eventually(t, 5*time.Second, "the refund decision", func() bool { return e.deposit(dep.ID).Refund != sandbox.RefundScheduled })
			ld := e.deposit(dep.ID)
			if ld.Status != tc.wantStatus || ld.Refund != tc.wantRefund {
				t.Fatalf("ledger deposit %s/%s (%s), want %s/%s", ld.Status, ld.Refund, ld.RefundNote, tc.wantStatus, tc.wantRefund)
			}
			if tc.wantRefund == sandbox.RefundSkipped && ld.RefundNote == "" {
				t.Error("skipped refund without a note")
			}
			requireDec(t, "wallet USDC", e.walletBalance(w, "USDC"), tc.wantBalance)
			if got := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/transfers/"+dep.ID, nil); got["status"] != tc.wantStatus {
				t.Fatalf("GET status %v, want %s", got["status"], tc.wantStatus)
			}
			list := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/transfers?accountId="+acct+"&walletId="+w, nil)
			if items := list["list"].([]any); len(items) != 1 || items[0].(map[string]any)["status"] != tc.wantStatus {
				t.Fatalf("list = %v", list)
			}
			if tc.wantNotices == nil {
				return
			}
			eventually(t, 5*time.Second, "notifications", func() bool { return rcv.count() >= len(tc.wantNotices) })
			time.Sleep(100 * time.Millisecond) // a notification that should not come would come now
			var got []string
			for _, d := range rcv.deliveries() {
				res := d.res
				if tc.legacy {
					var env struct {
						Data map[string]any `json:"data"`
					}
					_ = json.Unmarshal(d.body, &env)
					res = env.Data
				} else if want := sign(secret, []byte(d.resource)); d.header.Get("Signature") != want {
					t.Errorf("notification %s is not signed", d.id)
				}
				got = append(got, res["status"].(string))
			}
			if !slices.Equal(got, tc.wantNotices) {
				t.Fatalf("notified %v, want %v", got, tc.wantNotices)
			}
			// The refund comes RefundDelay after the Closed notification's first attempt has finished.
			if tc.wantRefund == sandbox.RefundDone {
				closedAnswered := rcv.deliveries()[1].at
				if tc.slow {
					closedAnswered = closedAnswered.Add(300 * time.Millisecond)
				}
				refunded, _ := strconv.ParseInt(e.deposit(dep.ID).UpdateTime, 10, 64)
				if early := closedAnswered.Add(150*time.Millisecond).UnixMilli() - refunded; early > 1 {
					t.Fatalf("refunded %d ms before Closed was answered + RefundDelay", early)
				}
			}
		})
	}
}

// TestBalancesEnforced: every movement beyond the paying balance is refused with 010023 (10023 in the numeric
// envelope), moves nothing and is recorded as rejected.
func TestBalancesEnforced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      sandbox.Config
		path     string
		body     map[string]any
		key      string
		wantCode any
	}{
		{"crypto to infinity beyond the wallet", sandbox.Config{}, transferPath,
			transferBody("b-1", master, "USDC", infinity, "USD", 2, 0, "1000.000001"), "b-1", "010023"},
		{"infinity to crypto beyond the Infinity balance", sandbox.Config{InfinityAvailable: dec("5")}, transferPath,
			transferBody("b-2", infinity, "USD", master, "USD", 0, 2, "5.01"), "b-2", "010023"},
		{"trade without USD", sandbox.Config{}, "/open-api/v3/cryptoconnect/convert/trades", tradeBody("b-3", "1"), "b-3", "010023"},
		{"withdrawal: amount plus gas beyond the wallet", sandbox.Config{}, "/open-api/v3/cryptoconnect/transfers",
			chainBody("b-4", master, "999.9"), "b-4", float64(10023)},
		{"empty master: sweep", sandbox.Config{EmptyMaster: true}, transferPath,
			transferBody("b-5", master, "USDC", infinity, "USD", 2, 0, "1"), "b-5", "010023"},
		{"empty master: withdrawal", sandbox.Config{EmptyMaster: true}, "/open-api/v3/cryptoconnect/transfers",
			chainBody("b-6", master, "1"), "b-6", float64(10023)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, tc.cfg)
			before := e.ledger()
			m := e.api(http.MethodPost, tc.path, tc.body, nil)
			if m["code"] != tc.wantCode || m["data"] != nil {
				t.Fatalf("answer %v, want code %v", m, tc.wantCode)
			}
			after := e.ledger()
			if !after.Infinity.Available.Equal(before.Infinity.Available) || fmt.Sprint(after.Wallets) != fmt.Sprint(before.Wallets) {
				t.Fatalf("a refused movement moved money: %v -> %v", before.Wallets, after.Wallets)
			}
			if n := len(after.InternalTransfers) + len(after.Trades) + len(after.BlockchainTransfers); n != 0 {
				t.Fatalf("%d movements recorded", n)
			}
			if got := after.AnswersByIdempotencyKey[tc.key]; !slices.Equal(got, []string{sandbox.AnswerRejected}) {
				t.Fatalf("answers = %v, want [rejected]", got)
			}
		})
	}
}

func TestFundMaster(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		empty bool
		want  string
	}{
		{"funded by default", false, "1000"},
		{"empty", true, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, sandbox.Config{EmptyMaster: tc.empty})
			w := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/wallets/"+master, nil)
			for _, b := range w["balances"].([]any) {
				if b := b.(map[string]any); b["available"] != tc.want {
					t.Errorf("%s available %v, want %s", b["currency"], b["available"], tc.want)
				}
			}
		})
	}
}

// TestListTransfersLimits: Interlace's documented limits are enforced, never clamped.
func TestListTransfersLimits(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	var ids []string
	var times []int64
	for range 12 {
		d, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1")})
		if err != nil {
			t.Fatal(err)
		}
		ms, _ := strconv.ParseInt(d.CreateTime, 10, 64)
		ids, times = append(ids, d.ID), append(times, ms)
		time.Sleep(3 * time.Millisecond) // distinct createTimes for the window tests
	}
	newest := func(n int) []string { // ids of deposits n..0, newest first
		var out []string
		for i := n; i >= 0; i-- {
			out = append(out, ids[i])
		}
		return out
	}
	base := "/open-api/v3/cryptoconnect/transfers?accountId=" + acct
	tests := []struct {
		name      string
		path      string
		wantCode  float64 // 0: success
		wantIDs   []string
		wantTotal string
	}{
		{"no accountId", "/open-api/v3/cryptoconnect/transfers", 10001, nil, ""},
		{"default limit 10", base, 0, newest(11)[:10], "12"},
		{"limit 100", base + "&limit=100", 0, newest(11), "12"},
		{"limit 1", base + "&limit=1", 0, newest(11)[:1], "12"},
		{"limit 0", base + "&limit=0", 10001, nil, ""},
		{"limit 101", base + "&limit=101", 10001, nil, ""},
		{"limit junk", base + "&limit=ten", 10001, nil, ""},
		{"page 2", base + "&limit=5&page=2", 0, newest(11)[5:10], "12"},
		{"page past the end", base + "&page=3", 0, []string{}, "12"},
		{"page 0", base + "&page=0", 10001, nil, ""},
		{"page junk", base + "&page=-1", 10001, nil, ""},
		{"window is startTime inclusive, endTime exclusive", base + fmt.Sprintf("&startTime=%d&endTime=%d", times[3], times[6]),
			0, []string{ids[5], ids[4], ids[3]}, "3"},
		{"startTime only", base + fmt.Sprintf("&startTime=%d", times[10]), 0, []string{ids[11], ids[10]}, "2"},
		{"endTime only", base + fmt.Sprintf("&endTime=%d", times[1]), 0, []string{ids[0]}, "1"},
		{"startTime after endTime", base + fmt.Sprintf("&startTime=%d&endTime=%d", times[5], times[4]), 10001, nil, ""},
		{"startTime junk", base + "&startTime=yesterday", 10001, nil, ""},
		{"another wallet", base + "&walletId=nope", 0, []string{}, "0"},
		{"another account", "/open-api/v3/cryptoconnect/transfers?accountId=someone-else", 0, []string{}, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := e.api(http.MethodGet, tc.path, nil, nil)
			if tc.wantCode != 0 {
				if m["code"] != tc.wantCode || m["data"] != nil {
					t.Fatalf("answer %v, want code %v", m, tc.wantCode)
				}
				return
			}
			if m["code"] != float64(0) {
				t.Fatalf("answer %v", m)
			}
			d := m["data"].(map[string]any)
			got := []string{}
			for _, it := range d["list"].([]any) {
				got = append(got, it.(map[string]any)["id"].(string))
			}
			if !slices.Equal(got, tc.wantIDs) || d["total"] != tc.wantTotal {
				t.Fatalf("ids %v total %v, want %v total %s", got, d["total"], tc.wantIDs, tc.wantTotal)
			}
		})
	}
}

// TestCardWalletsBudget: with budgetBalance the Budget USD balance comes first unless objectType=0 is asked for;
// walletType does not filter; a transfer into the Budget is refused.
func TestCardWalletsBudget(t *testing.T) {
	t.Parallel()
	base := "/open-api/v3/cards/wallets?accountId=" + acct
	budget := sandbox.DefaultBudgetWalletID
	tests := []struct {
		name     string
		on       bool
		query    string
		wantIDs  []string
		wantCode string
	}{
		{"walletType alone lists the Budget first", true, "&walletType=0", []string{budget, infinity}, ""},
		{"no filter", true, "", []string{budget, infinity}, ""},
		{"objectType 0", true, "&objectType=0", []string{infinity}, ""},
		{"objectType 0 and walletType 0", true, "&objectType=0&walletType=0", []string{infinity}, ""},
		{"objectType 1", true, "&objectType=1", []string{budget}, ""},
		{"objectType 2", true, "&objectType=2", []string{}, ""},
		{"objectType junk", true, "&objectType=x", nil, "010001"},
		{"off: walletType alone", false, "&walletType=0", []string{infinity}, ""},
		{"off: objectType 1", false, "&objectType=1", []string{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, sandbox.Config{})
			e.srv.SetFaults(sandbox.Faults{BudgetBalance: tc.on})
			m := e.api(http.MethodGet, base+tc.query, nil, nil)
			if tc.wantCode != "" {
				if m["code"] != tc.wantCode {
					t.Fatalf("answer %v, want %s", m, tc.wantCode)
				}
				return
			}
			d := m["data"].(map[string]any)
			got := []string{}
			for _, it := range d["list"].([]any) {
				w := it.(map[string]any)
				got = append(got, w["id"].(string))
				wantObject := float64(0)
				if w["id"] == budget {
					wantObject = 1
				}
				if w["objectType"] != wantObject || w["walletType"] != float64(0) || w["currency"] != "USD" {
					t.Errorf("entry %v", w)
				}
			}
			if !slices.Equal(got, tc.wantIDs) || d["total"] != strconv.Itoa(len(tc.wantIDs)) {
				t.Fatalf("ids %v total %v, want %v", got, d["total"], tc.wantIDs)
			}
		})
	}

	t.Run("transfer into the Budget is refused", func(t *testing.T) {
		t.Parallel()
		e := setup(t, sandbox.Config{})
		e.srv.SetFaults(sandbox.Faults{BudgetBalance: true})
		m := e.api(http.MethodPost, transferPath, transferBody("bud-1", master, "USDC", budget, "USD", 2, 0, "10"), nil)
		if m["code"] != "010001" || !bytes.Contains([]byte(m["message"].(string)), []byte("Budget")) {
			t.Fatalf("answer %v, want a business error naming the Budget", m)
		}
		requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "1000")
		if n := len(e.ledger().InternalTransfers); n != 0 {
			t.Fatalf("%d transfers recorded", n)
		}
	})
}

// TestAnswersByIdempotencyKey: the ledger records the class of every answer per key, in order.
func TestAnswersByIdempotencyKey(t *testing.T) {
	t.Parallel()
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // no transparent resend on drop
	tests := []struct {
		name string
		key  string
		run  func(e *env)
		want []string
	}{
		{"fault, then applied", "a-1", func(e *env) {
			e.srv.SetFaults(sandbox.Faults{ErrorRate: 1})
			e.request(http.MethodPost, transferPath, transferBody("a-1", master, "USDC", infinity, "USD", 2, 0, "1"), nil)
			e.srv.SetFaults(sandbox.Faults{})
			e.ok(http.MethodPost, transferPath, transferBody("a-1", master, "USDC", infinity, "USD", 2, 0, "1"))
		}, []string{"fault", "applied"}},
		{"dropped after commit, then replayed", "a-2", func(e *env) {
			e.srv.SetFaults(sandbox.Faults{TimeoutAfterCommitRate: 1})
			if resp, err := e.send(fresh, http.MethodPost, transferPath, transferBody("a-2", master, "USDC", infinity, "USD", 2, 0, "1"), nil); err == nil {
				resp.Body.Close()
				e.t.Fatal("the answer was not dropped")
			}
			e.srv.SetFaults(sandbox.Faults{})
			e.ok(http.MethodPost, transferPath, transferBody("a-2", master, "USDC", infinity, "USD", 2, 0, "1"))
		}, []string{"dropped:applied", "replayed"}},
		{"dropped duplicate error", "a-3", func(e *env) {
			e.ok(http.MethodPost, transferPath, transferBody("a-3", master, "USDC", infinity, "USD", 2, 0, "1"))
			e.srv.SetFaults(sandbox.Faults{TimeoutAfterCommitRate: 1, DuplicateAnswer: "error"})
			if resp, err := e.send(fresh, http.MethodPost, transferPath, transferBody("a-3", master, "USDC", infinity, "USD", 2, 0, "1"), nil); err == nil {
				resp.Body.Close()
				e.t.Fatal("the answer was not dropped")
			}
		}, []string{"applied", "dropped:duplicate_error"}},
		{"rejected, then applied once funded", "a-4", func(e *env) {
			w := e.newWallet("a-4w", "")
			e.api(http.MethodPost, transferPath, transferBody("a-4", w, "USDC", infinity, "USD", 2, 0, "2"), nil)
			if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{WalletID: w, Amount: dec("2")}); err != nil {
				e.t.Fatal(err)
			}
			e.ok(http.MethodPost, transferPath, transferBody("a-4", w, "USDC", infinity, "USD", 2, 0, "2"))
		}, []string{"rejected", "applied"}},
		{"pending, dropped pending", "a-5", func(e *env) {
			e.srv.SetFaults(sandbox.Faults{PendingRate: 1, PendingMs: 60_000})
			e.ok(http.MethodPost, transferPath, transferBody("a-5", master, "USDC", infinity, "USD", 2, 0, "1"))
			e.srv.SetFaults(sandbox.Faults{TimeoutAfterCommitRate: 1})
			if resp, err := e.send(fresh, http.MethodPost, transferPath, transferBody("a-5", master, "USDC", infinity, "USD", 2, 0, "1"), nil); err == nil {
				resp.Body.Close()
				e.t.Fatal("the answer was not dropped")
			}
		}, []string{"pending", "dropped:pending"}},
		{"trade applied, replayed even under duplicateAnswer error", "a-6", func(e *env) {
			e.ok(http.MethodPost, transferPath, transferBody("fund-a-6", infinity, "USD", master, "USD", 0, 2, "5"))
			e.srv.SetFaults(sandbox.Faults{DuplicateAnswer: "error"})
			e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/convert/trades", tradeBody("a-6", "5"))
			e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/convert/trades", tradeBody("a-6", "5"))
		}, []string{"applied", "replayed"}},
		{"withdrawal applied, duplicate error", "a-7", func(e *env) {
			e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/transfers", chainBody("a-7", master, "1"))
			e.srv.SetFaults(sandbox.Faults{DuplicateAnswer: "error"})
			e.api(http.MethodPost, "/open-api/v3/cryptoconnect/transfers", chainBody("a-7", master, "1"), nil)
		}, []string{"applied", "duplicate_error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, sandbox.Config{})
			tc.run(e)
			if got := e.ledger().AnswersByIdempotencyKey[tc.key]; !slices.Equal(got, tc.want) {
				t.Fatalf("answers = %v, want %v", got, tc.want)
			}
			_, m, _ := e.request(http.MethodGet, "/sandbox/ledger", nil, nil)
			if got := fmt.Sprint(m["answersByIdempotencyKey"].(map[string]any)[tc.key]); got != fmt.Sprint(tc.want) {
				t.Fatalf("GET /sandbox/ledger answers = %s, want %v", got, tc.want)
			}
		})
	}
}
