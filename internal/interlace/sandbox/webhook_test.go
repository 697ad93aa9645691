package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

const secret = "whsec-test"

func TestDepositDeliversSignedPendingThenClosed(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, nil)
	e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret})
	wallet := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/wallets", map[string]any{"referenceId": "d", "accountId": acct})["id"].(string)

	st, dep, raw := e.request(http.MethodPost, "/sandbox/deposits", map[string]any{"walletId": wallet, "currency": "USDC", "chain": "ETH", "amount": "10.5"}, nil)
	if st != http.StatusCreated {
		t.Fatalf("POST /sandbox/deposits: HTTP %d %s", st, raw)
	}
	depID, _ := dep["id"].(string)
	if !uuidRe.MatchString(depID) || dep["walletId"] != wallet || dep["amount"] != "10.5" || dep["status"] != "Closed" {
		t.Fatalf("deposit = %s", raw)
	}
	requireDec(t, "wallet USDC", e.walletBalance(wallet, "USDC"), "10.5")

	eventually(t, 5*time.Second, "two deliveries", func() bool { return rcv.count() >= 2 })
	got := rcv.deliveries()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
	walletAddr := ""
	if w, _ := e.srv.Wallet(wallet); len(w.Addresses) == 1 && w.Addresses[0].Chain == "ETH" {
		walletAddr = w.Addresses[0].Address
	} else {
		t.Fatalf("wallet addresses = %v, want the ETH address created for the deposit", w.Addresses)
	}
	for i, d := range got {
		if d.header.Get("Signature-Method") != "HMAC-SHA256" || d.header.Get("Content-Type") != "application/json" {
			t.Errorf("delivery %d headers = %v", i, d.header)
		}
		if !msRe.MatchString(d.header.Get("Timestamp")) {
			t.Errorf("Timestamp %q is not ms", d.header.Get("Timestamp"))
		}
		// The signature covers the exact resource text, once the body is JSON-decoded.
		if want := sign(secret, []byte(d.resource)); d.header.Get("Signature") != want {
			t.Errorf("delivery %d: Signature %q, want %q", i, d.header.Get("Signature"), want)
		}
		var body map[string]any
		if err := json.Unmarshal(d.body, &body); err != nil {
			t.Fatal(err)
		}
		assertShape(t, "envelope", mustJSON(t, `{"id":"u","eventType":"E","apiVersion":"v3","code":"000000","message":"","resource":"{}","createTime":"1"}`), body)
		if body["apiVersion"] != "v3" || body["code"] != "000000" || body["message"] != "" || !uuidRe.MatchString(d.id) || !msRe.MatchString(body["createTime"].(string)) {
			t.Errorf("envelope = %s", d.body)
		}
		assertShape(t, "resource", mustJSON(t, contractDeposit), d.res)
		if d.res["id"] != depID || d.res["accountId"] != acct || str(d.res, "destination", "id") != wallet ||
			str(d.res, "destination", "address") != walletAddr || str(d.res, "destination", "type") != "cryptoconnect_wallet" ||
			str(d.res, "source", "type") != "blockchain" || str(d.res, "source", "chain") != "ETH" ||
			!addressRe.MatchString(str(d.res, "source", "address")) || str(d.res, "amount", "amount") != "10.5" ||
			str(d.res, "amount", "currency") != "USDC" || !txHashRe.MatchString(d.res["transactionHash"].(string)) {
			t.Errorf("resource = %s", d.resource)
		}
	}
	if got[0].event != sandbox.EventTransferCreated || got[0].res["status"] != "Pending" {
		t.Errorf("first delivery %s %v, want CREATED/Pending", got[0].event, got[0].res["status"])
	}
	if got[1].event != sandbox.EventTransferUpdated || got[1].res["status"] != "Closed" {
		t.Errorf("second delivery %s %v, want UPDATED/Closed", got[1].event, got[1].res["status"])
	}
	if got[0].id == got[1].id {
		t.Error("both notifications have the same id")
	}

	eventually(t, 5*time.Second, "ledger counts", func() bool { return e.ledger().Deposits[0].NotificationsSent == 2 })
	l := e.ledger()
	if d := l.Deposits[0]; d.ID != depID || d.DeliveryAttempts != 2 || d.TransactionHash != got[0].res["transactionHash"] {
		t.Errorf("ledger deposit = %+v", d)
	}
	// The deposit is also a CryptoConnect transfer of the API.
	tr := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/transfers/"+depID, nil)
	assertShape(t, "GET deposit", mustJSON(t, contractDeposit), tr)
}

func TestSignedPartBody(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, nil)
	e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret, SignedPart: sandbox.SignedPartBody})
	if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "two deliveries", func() bool { return rcv.count() >= 2 })
	for _, d := range rcv.deliveries() {
		if want := sign(secret, d.body); d.header.Get("Signature") != want {
			t.Errorf("Signature %q, want HMAC of the raw body %q", d.header.Get("Signature"), want)
		}
	}
}

// TestFailedDeliveryIsRetriedOnSchedule: each notification is refused twice, then accepted. With TimeScale 1000
// the first retries come 10 ms and 30 ms after the previous attempt.
func TestFailedDeliveryIsRetriedOnSchedule(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(_ string, n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret, TimeScale: 1000})
	if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("3")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "both notifications delivered", func() bool { return e.ledger().Deposits[0].NotificationsSent == 2 })
	d := e.ledger().Deposits[0]
	if d.DeliveryAttempts != 6 || d.NotificationsFailed != 0 {
		t.Errorf("attempts %d failed %d, want 6 and 0", d.DeliveryAttempts, d.NotificationsFailed)
	}
	byID := map[string][]delivery{}
	var order []string
	for _, x := range rcv.deliveries() {
		if _, ok := byID[x.id]; !ok {
			order = append(order, x.id)
		}
		byID[x.id] = append(byID[x.id], x)
	}
	if len(order) != 2 || byID[order[0]][0].res["status"] != "Pending" {
		t.Fatalf("first notification attempted should be the Pending one: %v", order)
	}
	for id, xs := range byID {
		if len(xs) != 3 {
			t.Fatalf("notification %s: %d attempts, want 3", id, len(xs))
		}
		for i, x := range xs[1:] {
			if string(x.body) != string(xs[0].body) {
				t.Errorf("retry %d of %s changed the body", i+1, id)
			}
		}
		if gap := xs[1].at.Sub(xs[0].at); gap < 10*time.Millisecond {
			t.Errorf("first retry after %s, want >= 10ms", gap)
		}
		if gap := xs[2].at.Sub(xs[1].at); gap < 30*time.Millisecond {
			t.Errorf("second retry after %s, want >= 30ms", gap)
		}
	}
}

// TestDeliveryGivesUpAfterSixteenRetries: 1 attempt + 16 retries per notification, then it is dropped.
func TestDeliveryGivesUpAfterSixteenRetries(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(string, int) int { return http.StatusServiceUnavailable })
	// The whole schedule (17,140 s) shrinks to ~17 ms.
	e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret, TimeScale: 1e6})
	if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both notifications given up", func() bool { return e.ledger().Deposits[0].NotificationsFailed == 2 })
	time.Sleep(50 * time.Millisecond) // nothing may follow
	d := e.ledger().Deposits[0]
	if d.DeliveryAttempts != 34 || rcv.count() != 34 || d.NotificationsSent != 0 {
		t.Errorf("attempts %d (receiver saw %d) sent %d, want 34, 34, 0", d.DeliveryAttempts, rcv.count(), d.NotificationsSent)
	}
}

func TestDuplicateDelivery(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, nil)
	e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret, DuplicateMaxDelay: 20 * time.Millisecond})
	e.srv.SetFaults(sandbox.Faults{DuplicateDeliveryRate: 1})
	if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "four deliveries", func() bool { return rcv.count() >= 4 })
	time.Sleep(50 * time.Millisecond)
	byID := map[string]int{}
	for _, d := range rcv.deliveries() {
		byID[d.id]++
		if d.header.Get("Signature") != sign(secret, []byte(d.resource)) {
			t.Error("duplicate with a bad signature")
		}
	}
	if len(byID) != 2 {
		t.Fatalf("notification ids %v, want 2 distinct", byID)
	}
	for id, n := range byID {
		if n != 2 {
			t.Errorf("notification %s delivered %d times, want 2", id, n)
		}
	}
	if d := e.ledger().Deposits[0]; d.NotificationsSent != 2 || d.DeliveryAttempts != 4 {
		t.Errorf("ledger counts %+v, want 2 sent, 4 attempts", d.DeliveryCounts)
	}
}

func TestWithdrawalPendingThenClosed(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, nil)
	e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret, WithdrawalDelay: 100 * time.Millisecond})
	req := map[string]any{
		"idempotencyKey": "wd-1",
		"source":         map[string]any{"type": "cryptoconnect_wallet", "id": master},
		"destination":    map[string]any{"type": "blockchain", "chain": "ETH", "address": "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"},
		"amount":         map[string]any{"amount": "25.5", "currency": "USDT"},
	}
	w := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/transfers", req)
	if w["status"] != "Pending" {
		t.Fatalf("status %v, want Pending", w["status"])
	}
	if _, ok := w["transactionHash"]; ok {
		t.Errorf("Pending withdrawal has a transactionHash: %v", w)
	}
	requireDec(t, "master USDT", e.walletBalance(master, "USDT"), "974.3") // 1000 - 25.5 - 0.2 gas
	if again := e.ok(http.MethodPost, "/open-api/v3/cryptoconnect/transfers", req); again["id"] != w["id"] {
		t.Errorf("replay gave %v, want %v", again["id"], w["id"])
	}
	requireDec(t, "master USDT after replay", e.walletBalance(master, "USDT"), "974.3")

	eventually(t, 5*time.Second, "Closed notification", func() bool {
		for _, d := range rcv.deliveries() {
			if d.res["status"] == "Closed" {
				return true
			}
		}
		return false
	})
	ds := rcv.deliveries()
	if len(ds) != 2 || ds[0].res["status"] != "Pending" || ds[1].event != sandbox.EventTransferUpdated {
		t.Fatalf("deliveries: %d, first %v", len(ds), ds[0].res["status"])
	}
	closed := ds[1]
	if closed.res["id"] != w["id"] || !txHashRe.MatchString(closed.res["transactionHash"].(string)) ||
		closed.header.Get("Signature") != sign(secret, []byte(closed.resource)) {
		t.Errorf("closed notification = %s", closed.resource)
	}
	withHash := mustJSON(t, guideWithdrawal).(map[string]any)["data"].(map[string]any)
	withHash["transactionHash"] = "0x"
	assertShape(t, "withdrawal resource", withHash, closed.res)
	got := e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/transfers/"+w["id"].(string), nil)
	if got["status"] != "Closed" || got["transactionHash"] != closed.res["transactionHash"] {
		t.Errorf("GET = %v", got)
	}
	bt := e.ledger().BlockchainTransfers
	if len(bt) != 1 || bt[0].Status != "Closed" || bt[0].IdempotencyKey != "wd-1" || e.ledger().RequestsByIdempotencyKey["wd-1"] != 2 {
		t.Errorf("ledger = %+v", bt)
	}

	// Not enough for amount + gas: a business error in the numeric envelope.
	req["idempotencyKey"], req["amount"] = "wd-2", map[string]any{"amount": "974.2", "currency": "USDT"}
	m := e.api(http.MethodPost, "/open-api/v3/cryptoconnect/transfers", req, nil)
	if m["code"] != float64(10023) || m["data"] != nil {
		t.Errorf("insufficient = %v", m)
	}
}

func TestCreateDepositValidation(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	tests := []struct {
		name string
		req  sandbox.DepositRequest
		want error
	}{
		{"ZeroAmount", sandbox.DepositRequest{}, sandbox.ErrInvalid},
		{"FiatOnChain", sandbox.DepositRequest{Currency: "USD", Amount: dec("1")}, sandbox.ErrInvalid},
		{"SevenDecimals", sandbox.DepositRequest{Amount: dec("0.0000001")}, sandbox.ErrInvalid},
		{"UnknownWallet", sandbox.DepositRequest{WalletID: "nope", Amount: dec("1")}, sandbox.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.srv.CreateDeposit(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"amount":"1","walletId":"nope"}`, http.StatusNotFound},
		{`{"amount":"-1"}`, http.StatusBadRequest},
		{`{"amount":"1","wallet":"typo"}`, http.StatusBadRequest},
	} {
		st, m, raw := rawRequest(t, e, http.MethodPost, "/sandbox/deposits", tc.body)
		if st != tc.status || m["error"] == nil {
			t.Errorf("%s: HTTP %d %s, want %d with an error object", tc.body, st, raw, tc.status)
		}
	}
	if n := len(e.ledger().Deposits); n != 0 {
		t.Errorf("%d deposits recorded, want 0", n)
	}
	d, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("2.000001"), Currency: "usdt", Chain: "TRON"})
	if err != nil || d.WalletID != master || d.Currency != "USDT" || d.Chain != "TRON" {
		t.Fatalf("deposit = %+v, %v", d, err)
	}
	requireDec(t, "master USDT", e.walletBalance(master, "USDT"), "1002.000001")
}

// TestCloseStopsDelivery: Close returns promptly even with retries queued for later, and nothing is sent after.
func TestCloseStopsDelivery(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(string, int) int { return http.StatusInternalServerError })
	srv := sandbox.New(sandbox.Config{WebhookURL: rcv.ts.URL, Seed: 1})
	if _, err := srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "first attempts", func() bool { return rcv.count() >= 2 })
	start := time.Now()
	srv.Close()
	srv.Close() // idempotent
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %s", d)
	}
	n := rcv.count()
	time.Sleep(50 * time.Millisecond)
	if rcv.count() != n {
		t.Error("deliveries after Close")
	}
}

// TestManyDepositsDeliveredInOrder: a small worker pool delivers every notification exactly once, each
// deposit's Pending before its Closed.
func TestManyDepositsDeliveredInOrder(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, nil)
	e := setup(t, sandbox.Config{WebhookURL: rcv.ts.URL, WebhookSecret: secret, DeliveryWorkers: 4})
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			amt := decimal.New(int64(i+1), -2) // 0.01 .. 2.00
			if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: amt}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	eventually(t, 10*time.Second, "all deliveries", func() bool { return rcv.count() >= 2*n })
	seen := map[string]string{} // transfer id -> last status
	ids := map[string]bool{}
	for _, d := range rcv.deliveries() {
		if ids[d.id] {
			t.Fatalf("notification %s delivered twice", d.id)
		}
		ids[d.id] = true
		tid, status := d.res["id"].(string), d.res["status"].(string)
		switch {
		case status == "Pending" && seen[tid] == "":
		case status == "Closed" && seen[tid] == "Pending":
		default:
			t.Errorf("transfer %s: %s after %q", tid, status, seen[tid])
		}
		seen[tid] = status
	}
	if len(seen) != n {
		t.Errorf("%d transfers notified, want %d", len(seen), n)
	}
	// 0.01 + 0.02 + ... + 2.00 = 201
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "1201")
}
