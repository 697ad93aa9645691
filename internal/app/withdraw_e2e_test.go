package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/store"
)

const payoutAddress = "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"

// adminCall sends one operator API request with the admin token and decodes the
// JSON answer into out (when not nil).
func (s *system) adminCall(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.(string)
		if !ok {
			raw, err := json.Marshal(body)
			if err != nil {
				s.t.Fatal(err)
			}
			b = string(raw)
		}
		rd = strings.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+"/v1"+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error struct{ Code, Message string } `json:"error"`
}

func (s *system) waitWithdrawal(id string, done func(store.Withdrawal) bool) store.Withdrawal {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var w store.Withdrawal
	for time.Now().Before(deadline) {
		if st := s.adminCall(http.MethodGet, "/withdrawals/"+id, nil, &w); st != http.StatusOK {
			s.t.Fatalf("GET withdrawal: %d", st)
		}
		if done(w) {
			return w
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.t.Fatalf("withdrawal %s: last %s at %s (%v)", id, w.Status, w.Step, w.LastError)
	return w
}

func sandboxWallets(l sandbox.Ledger, referenceID string) []sandbox.WalletState {
	var out []sandbox.WalletState
	for _, w := range l.Wallets {
		if w.ReferenceID == referenceID {
			out = append(out, w)
		}
	}
	return out
}

// Guide "Generate a Wallet Address" through the real program: create, retry (200,
// same wallet, one wallet upstream), concurrent requests, more addresses later,
// refresh, and deposits joined to their user in sweep_ledger.
func TestWalletProvisioningEndToEnd(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{env: map[string]string{"SWEEPER_SWEEP_CURRENCIES": "USDT"}})
	req := map[string]any{"userRef": "alice", "nickname": "Alice",
		"addresses": []map[string]string{{"currency": "USDC", "chain": "ETH"}, {"currency": "usdt", "chain": "tron"}}}
	var first store.Wallet
	if st := s.adminCall(http.MethodPost, "/wallets", req, &first); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	var again store.Wallet
	if st := s.adminCall(http.MethodPost, "/wallets", req, &again); st != http.StatusOK || again.ID != first.ID {
		t.Fatalf("retry: %d %s, want 200 %s", st, again.ID, first.ID)
	}
	led := s.sandbox.Ledger()
	up := sandboxWallets(led, ids.WalletReferenceID("alice").String())
	if len(up) != 1 || up[0].ID != first.ID || up[0].Nickname != "Alice" {
		t.Fatalf("sandbox wallets for alice: %+v", up)
	}
	if first.UserRef != "alice" || first.ReferenceID != ids.WalletReferenceID("alice") || len(first.Addresses) != 2 {
		t.Fatalf("stored %+v", first)
	}
	byPair := map[string]string{}
	for _, a := range up[0].Addresses {
		byPair[a.Currency+"/"+a.Chain] = a.Address
	}
	for _, a := range first.Addresses {
		if byPair[a.Currency+"/"+a.Chain] != a.Address || a.Address == "" {
			t.Fatalf("address %+v, sandbox has %v", a, byPair)
		}
	}
	if first.Addresses[1].Currency != "USDT" || first.Addresses[1].Chain != "TRON" {
		t.Fatalf("pair not normalised: %+v", first.Addresses[1])
	}

	// A later request for one more chain adds only that address.
	req["addresses"] = []map[string]string{{"currency": "USDC", "chain": "ETH"}, {"currency": "USDC", "chain": "ARB"}}
	var more store.Wallet
	if st := s.adminCall(http.MethodPost, "/wallets", req, &more); st != http.StatusOK || len(more.Addresses) != 3 {
		t.Fatalf("add address: %d %+v", st, more.Addresses)
	}
	if n := len(sandboxWallets(s.sandbox.Ledger(), ids.WalletReferenceID("alice").String())[0].Addresses); n != 3 {
		t.Fatalf("sandbox addresses %d", n)
	}

	// Many operators clicking at once: one wallet, one 201.
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w store.Wallet
			codes <- s.adminCall(http.MethodPost, "/wallets", map[string]any{"userRef": "bob"}, &w)
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusOK] != 7 {
		t.Fatalf("concurrent creates answered %v", count)
	}
	if n := len(sandboxWallets(s.sandbox.Ledger(), ids.WalletReferenceID("bob").String())); n != 1 {
		t.Fatalf("sandbox wallets for bob: %d", n)
	}

	// Reads: by id, by user, refreshed from Interlace after a deposit.
	var got store.Wallet
	if st := s.adminCall(http.MethodGet, "/wallets/"+first.ID, nil, &got); st != http.StatusOK || got.ID != first.ID || got.RefreshedAt == nil {
		t.Fatalf("get: %d %+v", st, got)
	}
	var list struct{ Wallets []store.Wallet }
	if st := s.adminCall(http.MethodGet, "/wallets?userRef=alice", nil, &list); st != http.StatusOK || len(list.Wallets) != 1 {
		t.Fatalf("list: %d %+v", st, list)
	}
	dep, err := s.sandbox.CreateDeposit(context.Background(), sandbox.DepositRequest{WalletID: first.ID, Amount: decimal.RequireFromString("7.25")})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.adminCall(http.MethodGet, "/wallets/"+first.ID+"?refresh=true", nil, &got); st != http.StatusOK {
		t.Fatalf("refresh: %d", st)
	}
	usdc := decimal.Zero
	for _, b := range got.Balances {
		if b.Currency == "USDC" {
			usdc = b.Available
		}
	}
	if !usdc.Equal(decimal.RequireFromString("7.25")) || !got.RefreshedAt.After(*first.RefreshedAt) {
		t.Fatalf("refreshed balances %+v", got.Balances)
	}
	row := s.waitFor(dep.ID, "skipped") // USDC is not swept in this test: the deposit stays for the user
	var user string
	if err := s.pool.QueryRow(context.Background(), `SELECT user_ref FROM sweep_ledger WHERE deposit_id = $1`, row.DepositID).Scan(&user); err != nil || user != "alice" {
		t.Fatalf("sweep_ledger user_ref %q %v", user, err)
	}
	if st := s.adminCall(http.MethodGet, "/wallets/nope", nil, nil); st != http.StatusNotFound {
		t.Fatalf("unknown wallet: %d", st)
	}
}

// Guide "Convert & Withdraw" through the real program, from a user's wallet: the
// same id for a repeated request, 409 for the same key with another body, every
// fee checked to the last unit on the sandbox ledger, completion by the webhook.
func TestWithdrawalEndToEnd(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{env: map[string]string{"SWEEPER_SWEEP_CURRENCIES": "USDT"}})
	var wal store.Wallet
	if st := s.adminCall(http.MethodPost, "/wallets", map[string]any{"userRef": "carol",
		"addresses": []map[string]string{{"currency": "USDC", "chain": "ETH"}}}, &wal); st != http.StatusCreated {
		t.Fatalf("wallet: %d", st)
	}
	// Carol has a deposit not yet swept (USDC is not swept here): a payout must
	// never pay its network fee out of it (contract §11).
	if _, err := s.sandbox.CreateDeposit(context.Background(), sandbox.DepositRequest{WalletID: wal.ID, Amount: decimal.RequireFromString("1")}); err != nil {
		t.Fatal(err)
	}
	before := s.sandbox.Ledger()
	body := map[string]any{"idempotencyKey": "carol-payout-1", "walletId": wal.ID, "amount": "250.5",
		"sourceCurrency": "USD", "currency": "USDC", "chain": "ETH", "address": payoutAddress}
	var accepted struct{ ID, Status string }
	if st := s.adminCall(http.MethodPost, "/withdrawals", body, &accepted); st != http.StatusAccepted {
		t.Fatalf("create: %d", st)
	}
	if accepted.ID != ids.WithdrawalID("carol-payout-1").String() || accepted.Status != store.WithdrawalPending {
		t.Fatalf("accepted %+v", accepted)
	}
	var repeat struct{ ID, Status string }
	if st := s.adminCall(http.MethodPost, "/withdrawals", body, &repeat); st != http.StatusAccepted || repeat.ID != accepted.ID {
		t.Fatalf("repeat: %d %+v", st, repeat)
	}
	body["amount"] = "250.51"
	var conflict apiError
	if st := s.adminCall(http.MethodPost, "/withdrawals", body, &conflict); st != http.StatusConflict ||
		conflict.Error.Code != "conflict" || !strings.Contains(conflict.Error.Message, "amount") {
		t.Fatalf("same key, other amount: %d %+v", st, conflict)
	}

	w := s.waitWithdrawal(accepted.ID, func(w store.Withdrawal) bool {
		return w.Status == store.WithdrawalCompleted || w.Status == store.WithdrawalFailed || w.Status == store.WithdrawalStopped
	})
	if w.Status != store.WithdrawalCompleted {
		t.Fatalf("%s at %s: %v", w.Status, w.Step, w.LastError)
	}
	led := s.sandbox.Ledger()
	// 250.50 USD debited; trade fee 1.2525 USD (0.5%); 249.2475 USDC bought; the 0.2 USDC
	// network fee comes out of it: 249.0475 USDC sent, and 0.2 charged on top of that.
	if got := before.Infinity.Available.Sub(led.Infinity.Available); !got.Equal(decimal.RequireFromString("250.5")) {
		t.Fatalf("Infinity debited %s", got)
	}
	var fund []sandbox.InternalTransfer
	for _, it := range led.InternalTransfers {
		if it.ClientTransactionID == w.FundRequestID.String() {
			fund = append(fund, it)
		}
	}
	if len(fund) != 1 || fund[0].WalletID != wal.ID || !fund[0].Amount.Equal(decimal.RequireFromString("250.5")) || !fund[0].Fee.IsZero() {
		t.Fatalf("step 1 on the ledger: %+v", fund)
	}
	if len(led.Trades) != 1 || led.Trades[0].ReferenceID != w.TradeRequestID.String() || led.Trades[0].WalletID != wal.ID ||
		!led.Trades[0].Fee.Equal(decimal.RequireFromString("1.2525")) || !led.Trades[0].BaseAmount.Equal(decimal.RequireFromString("249.2475")) {
		t.Fatalf("trade on the ledger: %+v", led.Trades)
	}
	if len(led.BlockchainTransfers) != 1 {
		t.Fatalf("blockchain transfers %+v", led.BlockchainTransfers)
	}
	bt := led.BlockchainTransfers[0]
	if bt.IdempotencyKey != w.TransferRequestID.String() || bt.WalletID != wal.ID || !bt.Amount.Equal(decimal.RequireFromString("249.0475")) ||
		!bt.Fee.Equal(decimal.RequireFromString("0.2")) || bt.Address != payoutAddress || bt.Status != "Closed" {
		t.Fatalf("withdrawal on the ledger: %+v", bt)
	}
	if got := sandboxWallets(led, ids.WalletReferenceID("carol").String())[0].Balances; !got["USDC"].Equal(decimal.RequireFromString("1")) ||
		!got["USD"].IsZero() {
		t.Fatalf("carol's wallet after: %v", got)
	}
	if w.TxHash == nil || *w.TxHash != bt.TransactionHash || *w.ChainStatus != "Closed" || *w.UserRef != "carol" {
		t.Fatalf("withdrawal %v %v %v", w.TxHash, w.ChainStatus, w.UserRef)
	}
	// The webhook, not the 10 s poll, completed it.
	byWebhook := false
	for _, ev := range w.Events {
		if ev.ToStatus == store.WithdrawalCompleted && strings.HasPrefix(ev.Reason, "webhook ") {
			byWebhook = true
		}
	}
	if !byWebhook {
		t.Fatalf("not completed by the webhook: %+v", w.Events)
	}

	// Finance's view: one row, every amount and fee.
	var debited, tradeFee, bought, withdrawn, gas, sent, withheld decimal.Decimal
	var user, hash string
	if err := s.pool.QueryRow(context.Background(), `SELECT usd_debited, trade_fee, crypto_bought, crypto_withdrawn,
		network_fee, amount_sent, network_fee_withheld, user_ref, tx_hash FROM withdrawal_ledger WHERE withdrawal_id = $1`, w.ID).Scan(
		&debited, &tradeFee, &bought, &withdrawn, &gas, &sent, &withheld, &user, &hash); err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]decimal.Decimal{
		"usd_debited": {debited, decimal.RequireFromString("250.5")}, "trade_fee": {tradeFee, decimal.RequireFromString("1.2525")},
		"crypto_bought": {bought, decimal.RequireFromString("249.2475")}, "crypto_withdrawn": {withdrawn, decimal.RequireFromString("249.0475")},
		"network_fee": {gas, decimal.RequireFromString("0.2")}, "amount_sent": {sent, decimal.RequireFromString("249.0475")},
		"network_fee_withheld": {withheld, decimal.RequireFromString("0.2")},
	} {
		if !pair[0].Equal(pair[1]) {
			t.Errorf("withdrawal_ledger.%s = %s, want %s", name, pair[0], pair[1])
		}
	}
	if user != "carol" || hash != bt.TransactionHash {
		t.Fatalf("withdrawal_ledger user %q hash %q", user, hash)
	}

	// A completed withdrawal cannot be requeued; the list shows it.
	var e apiError
	if st := s.adminCall(http.MethodPost, "/withdrawals/"+w.ID.String()+"/retry", nil, &e); st != http.StatusConflict || e.Error.Code != "invalid_state" {
		t.Fatalf("retry of a completed withdrawal: %d %+v", st, e)
	}
	var list struct{ Withdrawals []store.Withdrawal }
	if st := s.adminCall(http.MethodGet, "/withdrawals?status=completed", nil, &list); st != http.StatusOK || len(list.Withdrawals) != 1 {
		t.Fatalf("list: %d %+v", st, list)
	}
}

// The default 2% ceiling stops the guide's 10 USD example (0.25 of fees) before any
// USD leaves the Infinity Account.
func TestWithdrawalFeeCeilingEndToEnd(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{})
	before := s.sandbox.Ledger()
	var accepted struct{ ID string }
	if st := s.adminCall(http.MethodPost, "/withdrawals", map[string]any{"idempotencyKey": "tiny", "walletId": accountID,
		"amount": "10", "currency": "USDC", "chain": "ARB", "address": payoutAddress}, &accepted); st != http.StatusAccepted {
		t.Fatalf("create: %d", st)
	}
	w := s.waitWithdrawal(accepted.ID, func(w store.Withdrawal) bool { return w.Status == store.WithdrawalStopped })
	if w.LastError == nil || !strings.Contains(*w.LastError, "exceed SWEEPER_MAX_FEE_RATE 0.02") || w.Step != store.StepFeePreview {
		t.Fatalf("stopped at %s: %v", w.Step, w.LastError)
	}
	led := s.sandbox.Ledger()
	if !led.Infinity.Available.Equal(before.Infinity.Available) || len(led.Trades) != 0 || len(led.BlockchainTransfers) != 0 {
		t.Fatalf("money moved: Infinity %s -> %s", before.Infinity.Available, led.Infinity.Available)
	}
	for _, it := range led.InternalTransfers {
		if it.ClientTransactionID == w.FundRequestID.String() {
			t.Fatal("step 1 was sent")
		}
	}
}

// Invalid input is refused with the contract's error shape before anything is
// stored or sent upstream.
func TestPayoutValidationEndToEnd(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	valid := func() map[string]any {
		return map[string]any{"idempotencyKey": "k", "walletId": accountID, "amount": "10", "currency": "USDC",
			"chain": "ETH", "address": payoutAddress}
	}
	with := func(k string, v any) map[string]any {
		m := valid()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"NotJSON", "/withdrawals", "{", 400, "bad_request"},
		{"UnknownField", "/withdrawals", with("memo", "x"), 400, "bad_request"},
		{"MissingKey", "/withdrawals", with("idempotencyKey", nil), 400, "missing_field"},
		{"MissingAddress", "/withdrawals", with("address", nil), 400, "missing_field"},
		{"ZeroAmount", "/withdrawals", with("amount", "0"), 422, "invalid_amount"},
		{"NegativeAmount", "/withdrawals", with("amount", "-10"), 422, "invalid_amount"},
		{"CentFractions", "/withdrawals", with("amount", "10.001"), 422, "invalid_amount"},
		{"AmountNotANumber", "/withdrawals", with("amount", "ten"), 400, "bad_request"},
		{"EURSource", "/withdrawals", with("sourceCurrency", "EUR"), 422, "unsupported_currency"},
		{"UnknownChain", "/withdrawals", with("chain", "DOGE"), 422, "unsupported_network"},
		{"USDCOnTron", "/withdrawals", with("chain", "TRON"), 422, "unsupported_network"},
		{"ShortAddress", "/withdrawals", with("address", "0x1234"), 422, "invalid_address"},
		{"BadChecksum", "/withdrawals", with("address", "0x89f9Cfaa0dA076351DdfC6E320bD8df8b538dB17"), 422, "invalid_address"},
		{"UnknownWallet", "/withdrawals", with("walletId", "not-provisioned"), 422, "unknown_wallet"},
		{"WalletNoUser", "/wallets", map[string]any{"nickname": "x"}, 400, "missing_field"},
		{"WalletBadPair", "/wallets", map[string]any{"userRef": "u", "addresses": []map[string]string{{"currency": "BTC", "chain": "ETH"}}}, 422, "unsupported_network"},
		{"WalletUserRefSpaces", "/wallets", map[string]any{"userRef": "a user"}, 422, "invalid_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e apiError
			if st := s.adminCall(http.MethodPost, tc.path, tc.body, &e); st != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("%d %+v, want %d %s", st, e, tc.status, tc.code)
			}
		})
	}
	if n := s.count(`SELECT (SELECT count(*) FROM withdrawals) + (SELECT count(*) FROM wallets)`); n != 0 {
		t.Fatalf("%d rows stored from invalid requests", n)
	}
	led := s.sandbox.Ledger()
	if len(led.Wallets) != 1 || len(led.RequestsByIdempotencyKey) != 0 {
		t.Fatalf("invalid requests reached Interlace: %d wallets, keys %v", len(led.Wallets), led.RequestsByIdempotencyKey)
	}
	for path, want := range map[string]int{"/withdrawals/not-a-uuid": 404, "/withdrawals/" + ids.WithdrawalID("nope").String(): 404,
		"/withdrawals?status=weird": 400, "/wallets?limit=0": 400, "/wallets/x?refresh=maybe": 400} {
		if st := s.adminCall(http.MethodGet, path, nil, nil); st != want {
			t.Errorf("GET %s: %d, want %d", path, st, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/withdrawals", bytes.NewReader([]byte(`{}`)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}
