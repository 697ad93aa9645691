package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sweeperhq/sweeper/internal/app"
	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	accountID     = "b27c8873-e400-47cd-adc1-035cfa0d5347"
	masterWallet  = "32aae8b7-4a69-474f-b7d5-337e190af878"
	webhookSecret = "whsec-test-current"
	oldSecret     = "whsec-test-previous"
	adminToken    = "admin-test-token"
)

// system is a running sweeper plus the fake Interlace it talks to.
type system struct {
	t       *testing.T
	sandbox *sandbox.Server
	sbURL   string
	app     *app.App
	url     string
	pool    *pgxpool.Pool
	dbURL   string
	stop    func()
}

type sysOpts struct {
	dbURL   string // reuse a database
	sandbox *sandbox.Server
	sbURL   string
	env     map[string]string
	noWork  bool
	logger  *zap.Logger // default: warnings and errors to the test log
}

// start runs the real program (app.New + Run) against a fresh database and an
// in-process sandbox over real HTTP.
func start(t *testing.T, o sysOpts) *system {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &system{t: t, url: "http://" + ln.Addr().String(), dbURL: o.dbURL, sandbox: o.sandbox, sbURL: o.sbURL}
	if s.dbURL == "" {
		s.dbURL = pgtest.NewMigratedDatabase(t)
	}
	if s.sandbox == nil {
		s.sandbox = sandbox.New(sandbox.Config{
			WebhookURL: s.url + "/webhooks/interlace", WebhookSecret: webhookSecret,
			TimeScale: 1000, WithdrawalDelay: 200 * time.Millisecond, Logger: zap.NewNop(),
		})
		srv := httptest.NewServer(s.sandbox.Handler())
		t.Cleanup(func() { s.sandbox.Close(); srv.Close() })
		s.sbURL = srv.URL
	}
	env := map[string]string{
		"DATABASE_URL":             s.dbURL,
		"INTERLACE_BASE_URL":       s.sbURL,
		"INTERLACE_CLIENT_ID":      "client-id",
		"INTERLACE_CLIENT_SECRET":  "client-secret-value",
		"INTERLACE_ACCOUNT_ID":     accountID,
		"INTERLACE_WEBHOOK_SECRET": webhookSecret,
		"SWEEPER_ADMIN_TOKEN":      adminToken,
		"SWEEPER_SWEEP_LEASE":      "3s",
		"SWEEPER_UPSTREAM_TIMEOUT": "2s",
		"SWEEPER_RETRY_MAX_DELAY":  "1s",
		"SWEEPER_SHUTDOWN_TIMEOUT": "5s",
		// Most tests post hand-made notifications the sandbox never saw: with
		// confirmation on (the production default) they would rightly wait for
		// Interlace's record forever. The tests of contract §9 turn it on.
		"SWEEPER_CONFIRM_DEPOSITS": "false",
		"SWEEPER_POLL_INTERVAL":    "0",
	}
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Need{Database: true, Interlace: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := o.logger
	if log == nil {
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	a, err := app.New(ctx, cfg, log, app.Options{HTTP: true, Worker: !o.noWork, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	s.app = a
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app.Run: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	pool, err := store.OpenPool(context.Background(), s.dbURL, store.PoolOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s.pool = pool
	return s
}

func (s *system) deposit(amount string) sandbox.Deposit {
	s.t.Helper()
	d, err := s.sandbox.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: decimal.RequireFromString(amount)})
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// waitFor polls sweep_ledger until the deposit's sweep reaches status.
func (s *system) waitFor(depositID, status string) store.LedgerRow {
	s.t.Helper()
	st := store.New(s.pool)
	deadline := time.Now().Add(15 * time.Second)
	var row store.LedgerRow
	var err error
	for time.Now().Before(deadline) {
		row, err = st.Ledger(context.Background(), depositID)
		if err == nil && row.SweepStatus == status {
			return row
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("deposit %s never reached %s: last %+v (err %v)", depositID, status, row, err)
	return row
}

func (s *system) count(sql string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// post sends a webhook signed with secret ("" = unsigned) over the resource.
func (s *system) post(secret string, notificationID string, resource any) *http.Response {
	s.t.Helper()
	res, _ := json.Marshal(resource)
	body, _ := json.Marshal(map[string]any{
		"id": notificationID, "eventType": "CRYPTO_TRANSFER.UPDATED", "apiVersion": "v3", "code": "000000",
		"message": "", "resource": string(res), "createTime": "1767225600000",
	})
	sig := ""
	if secret != "" {
		sig = webhook.Sign([]byte(secret), res)
	}
	return s.postRaw(sig, body)
}

func (s *system) postRaw(sig string, body []byte) *http.Response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/webhooks/interlace", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("Signature-Method", "HMAC-SHA256")
		req.Header.Set("Signature", sig)
		req.Header.Set("Timestamp", "1767225600000")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func depositResource(transferID, wallet, status, amount string) map[string]any {
	return map[string]any{
		"id": transferID, "accountId": accountID,
		"source":      map[string]any{"type": "blockchain", "chain": "ETH", "address": "0x1111111111111111111111111111111111111111"},
		"destination": map[string]any{"type": "cryptoconnect_wallet", "id": wallet, "address": "0x2222222222222222222222222222222222222222"},
		"amount":      map[string]any{"amount": amount, "currency": "USDC"},
		"fees":        []any{map[string]any{"amount": "0", "currency": "USDC", "type": "GAS"}},
		"status":      status, "transactionHash": "0xabc", "createTime": "1767225600000", "updateTime": "1767225600000",
	}
}

func TestDepositIsSweptEndToEnd(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{})
	before := s.sandbox.Ledger().Infinity.Available
	d := s.deposit("10")
	row := s.waitFor(d.ID, "succeeded")

	led := s.sandbox.Ledger()
	var transfer *sandbox.InternalTransfer
	for i := range led.InternalTransfers {
		if led.InternalTransfers[i].ClientTransactionID == ids.SweepTransactionID(d.ID).String() {
			if transfer != nil {
				t.Fatal("deposit swept twice upstream")
			}
			transfer = &led.InternalTransfers[i]
		}
	}
	if transfer == nil {
		t.Fatalf("no upstream transfer for deposit %s", d.ID)
	}
	if row.InterlaceTransferID == nil || *row.InterlaceTransferID != transfer.ID {
		t.Fatalf("ledger transfer id %v, sandbox %s", row.InterlaceTransferID, transfer.ID)
	}
	// The guide's own numbers: 10 USDC in, 0.05 fee, 9.95 USD credited.
	if !row.CreditedAmount.Equal(decimal.RequireFromString("9.95")) || *row.CreditedCurrency != "USD" ||
		!row.FeeAmount.Equal(decimal.RequireFromString("0.05")) || *row.FeeCurrency != "USDC" {
		t.Fatalf("credited %s %s fee %s %s", row.CreditedAmount, *row.CreditedCurrency, row.FeeAmount, *row.FeeCurrency)
	}
	if got := led.Infinity.Available.Sub(before); !got.Equal(*row.CreditedAmount) {
		t.Fatalf("Infinity balance moved by %s, ledger says %s", got, row.CreditedAmount)
	}
	if row.DepositStatus != "final" || row.SweptAt == nil || row.Attempts != 1 {
		t.Fatalf("row %+v", row)
	}
	if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE transfer_id = $1`, d.ID); n < 2 {
		t.Fatalf("deliveries for the deposit = %d, want pending and closed", n)
	}
	if n := s.count(`SELECT count(*) FROM sweep_attempts WHERE deposit_id = $1 AND outcome = 'succeeded' AND http_status = 200`, d.ID); n != 1 {
		t.Fatalf("attempt rows = %d", n)
	}
}

func TestUpstreamFailuresAreRetriedUnderTheSameID(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{})
	// Let the worker discover the Infinity wallet before the upstream turns hostile.
	s.waitFor(s.deposit("1").ID, "succeeded")
	s.sandbox.SetFaults(sandbox.Faults{ErrorRate: 1})
	d := s.deposit("3")
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM sweep_attempts WHERE deposit_id = $1 AND outcome = 'retry'`, d.ID) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no retries recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Applied upstream, then the connection drops: the outcome is unknown to us.
	s.sandbox.SetFaults(sandbox.Faults{TimeoutAfterCommitRate: 1})
	deadline = time.Now().Add(10 * time.Second)
	for s.sandbox.Ledger().RequestsByIdempotencyKey[ids.SweepTransactionID(d.ID).String()] < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no timeout-after-commit attempt")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.sandbox.SetFaults(sandbox.Faults{})
	row := s.waitFor(d.ID, "succeeded")
	if row.Attempts < 3 {
		t.Fatalf("attempts = %d", row.Attempts)
	}
	applied := 0
	for _, tr := range s.sandbox.Ledger().InternalTransfers {
		if tr.ClientTransactionID == ids.SweepTransactionID(d.ID).String() {
			applied++
		}
	}
	if applied != 1 {
		t.Fatalf("applied upstream %d times", applied)
	}
	if n := s.count(`SELECT count(DISTINCT client_transaction_id) FROM sweep_attempts WHERE deposit_id = $1`, d.ID); n != 1 {
		t.Fatalf("attempts used %d different ids", n)
	}
}

func TestBusinessRejectionFailsAndSurfaces(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{})
	// A signed deposit the sandbox never credited: sweeping it overdraws the wallet.
	wallet := masterWallet
	transfer := uuid.NewString()
	if r := s.post(webhookSecret, uuid.NewString(), depositResource(transfer, wallet, "Closed", "1000000")); r.StatusCode != 200 {
		t.Fatalf("webhook status %d", r.StatusCode)
	}
	row := s.waitFor(transfer, "failed")
	if row.LastError == nil || *row.LastError == "" || row.Attempts != 1 {
		t.Fatalf("row %+v", row)
	}
	var code string
	if err := s.pool.QueryRow(context.Background(), `SELECT last_error_code FROM sweeps WHERE deposit_id=$1`, transfer).Scan(&code); err != nil || code == "" {
		t.Fatalf("no Interlace code recorded: %q %v", code, err)
	}
	// The operator requeues it (same id); it fails again, the same way, and no money moved.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/deposits/"+transfer+"/retry", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry: %v %v", resp, err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM sweep_attempts WHERE deposit_id=$1`, transfer) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("requeued sweep not attempted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.waitFor(transfer, "failed")
	if n := s.count(`SELECT count(DISTINCT client_transaction_id) FROM sweep_attempts WHERE deposit_id=$1`, transfer); n != 1 {
		t.Fatalf("requeue changed the id")
	}
}

func TestCrashedWorkerIsResumedAfterLeaseExpiry(t *testing.T) {
	t.Parallel()
	// Phase 1: the HTTP side records a deposit; no worker runs.
	s := start(t, sysOpts{noWork: true})
	d := s.deposit("7")
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM sweeps WHERE deposit_id=$1`, d.ID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("sweep never created")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A worker claims it, sends the transfer upstream, and dies before recording.
	st := store.New(s.pool)
	jobs, err := st.ClaimSweeps(context.Background(), store.ClaimParams{Owner: "doomed", Limit: 1, Lease: time.Second, ToWalletID: "63b2af21-1e8c-407b-8df9-10adc05963aa"})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	s.app.Client() // the same client type the worker uses
	body := fmt.Sprintf(`{"clientTransactionId":%q,"accountId":%q,"from":{"businessType":2,"id":%q,"currency":"USDC"},"to":{"businessType":0,"id":"63b2af21-1e8c-407b-8df9-10adc05963aa","currency":"USD"},"amount":"7"}`,
		jobs[0].ClientTransactionID, accountID, jobs[0].FromWalletID)
	sendAsDoomedWorker(t, s.sbURL, body, jobs[0].ClientTransactionID.String())
	s.stop()

	// Phase 2: a new process with a worker starts on the same database.
	s2 := start(t, sysOpts{dbURL: s.dbURL, sandbox: s.sandbox, sbURL: s.sbURL})
	row := s2.waitFor(d.ID, "succeeded")
	led := s.sandbox.Ledger()
	applied := 0
	for _, tr := range led.InternalTransfers {
		if tr.ClientTransactionID == jobs[0].ClientTransactionID.String() {
			applied++
			if *row.InterlaceTransferID != tr.ID {
				t.Fatalf("resumed sweep recorded %s, upstream transfer is %s", *row.InterlaceTransferID, tr.ID)
			}
		}
	}
	if applied != 1 || led.RequestsByIdempotencyKey[jobs[0].ClientTransactionID.String()] < 2 {
		t.Fatalf("applied %d times, requests %d", applied, led.RequestsByIdempotencyKey[jobs[0].ClientTransactionID.String()])
	}
	if n := s2.count(`SELECT count(*) FROM sweep_events WHERE deposit_id=$1 AND reason LIKE 'lease expired%'`, d.ID); n != 1 {
		t.Fatal("reclaim not recorded")
	}
}

// sendAsDoomedWorker performs the transfer the way a worker would, then "dies".
func sendAsDoomedWorker(t *testing.T, base, body, key string) {
	t.Helper()
	tok := sandboxToken(t, base)
	req, _ := http.NewRequest(http.MethodPost, base+"/open-api/v3/business/transfer/internal", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-access-token", tok)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte(`"000000"`)) {
		t.Fatalf("doomed transfer: %s", b)
	}
}

func sandboxToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/open-api/oauth/authorize?clientId=x")
	if err != nil {
		t.Fatal(err)
	}
	var auth struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&auth)
	resp.Body.Close()
	resp, err = http.Post(base+"/open-api/oauth/access-token", "application/json",
		strings.NewReader(fmt.Sprintf(`{"clientId":"x","clientSecret":"y","code":%q}`, auth.Code)))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ AccessToken string }
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	return tok.AccessToken
}

// Two sweepers on two separate databases that see the same deposit derive the
// same clientTransactionId, so Interlace moves the money once.
func TestSameDepositSameIDOnAnyDatabase(t *testing.T) {
	t.Parallel()
	a := start(t, sysOpts{})
	d := a.deposit("4")
	rowA := a.waitFor(d.ID, "succeeded")

	b := start(t, sysOpts{sandbox: a.sandbox, sbURL: a.sbURL})
	closed := depositResource(d.ID, d.WalletID, "Closed", "4")
	if r := b.post(webhookSecret, uuid.NewString(), closed); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	rowB := b.waitFor(d.ID, "succeeded")
	if *rowA.ClientTransactionID != *rowB.ClientTransactionID || *rowA.InterlaceTransferID != *rowB.InterlaceTransferID {
		t.Fatalf("A %s/%s, B %s/%s", rowA.ClientTransactionID, *rowA.InterlaceTransferID, rowB.ClientTransactionID, *rowB.InterlaceTransferID)
	}
	n := 0
	for _, tr := range a.sandbox.Ledger().InternalTransfers {
		if tr.ClientTransactionID == rowA.ClientTransactionID.String() {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("upstream transfers = %d", n)
	}
}

func TestWebhookVerification(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true, env: map[string]string{"INTERLACE_WEBHOOK_SECRET_PREVIOUS": oldSecret}})
	res := depositResource("t-verify", masterWallet, "Pending", "1")
	resJSON, _ := json.Marshal(res)
	envelope := func(resource string) []byte {
		b, _ := json.Marshal(map[string]any{"id": uuid.NewString(), "eventType": "X.Y", "apiVersion": "v3",
			"code": "000000", "resource": resource, "createTime": "1"})
		return b
	}
	tampered := strings.Replace(string(resJSON), `"1"`, `"1000"`, 1)
	tests := []struct {
		name   string
		sig    string
		body   []byte
		status int
		stored bool
	}{
		{"CurrentSecret", webhook.Sign([]byte(webhookSecret), resJSON), envelope(string(resJSON)), 200, true},
		{"PreviousSecret", webhook.Sign([]byte(oldSecret), resJSON), envelope(string(resJSON)), 200, true},
		{"WrongSecret", webhook.Sign([]byte("nope"), resJSON), envelope(string(resJSON)), 401, false},
		{"TamperedResource", webhook.Sign([]byte(webhookSecret), resJSON), envelope(tampered), 401, false},
		{"MissingHeader", "", envelope(string(resJSON)), 401, false},
		{"GarbageSignature", "!!!", envelope(string(resJSON)), 401, false},
		{"NotJSON", webhook.Sign([]byte(webhookSecret), resJSON), []byte("hello"), 400, false},
		{"TooLarge", webhook.Sign([]byte(webhookSecret), resJSON), append(envelope(string(resJSON)), bytes.Repeat([]byte(" "), webhook.MaxBodyBytes)...), 413, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.count(`SELECT count(*) FROM webhook_deliveries`)
			r := s.postRaw(tc.sig, tc.body)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			after := s.count(`SELECT count(*) FROM webhook_deliveries`)
			if (after > before) != tc.stored {
				t.Fatalf("stored %d rows, want stored=%v", after-before, tc.stored)
			}
		})
	}
	if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE signature_key = 1`); n != 1 {
		t.Fatalf("previous-key deliveries = %d", n)
	}
}

// Contract §4: a signed deposit with an unusable money field is answered 200,
// kept as a needs_review deposit held in sweep_ledger, and counted.
func TestSignedButUnusableIsKeptAndAnswered200(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	bad := depositResource("t-bad", masterWallet, "Closed", "-5")
	if r := s.post(webhookSecret, "n-bad", bad); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE notification_id='n-bad' AND outcome='unusable' AND reason <> ''`); n != 1 {
		t.Fatal("unusable delivery not kept with a reason")
	}
	if n := s.count(`SELECT count(*) FROM sweep_ledger WHERE deposit_id = 't-bad' AND deposit_status = 'needs_review'
	    AND sweep_status = 'held' AND last_error LIKE 'needs review: amount:%' AND amount IS NULL`); n != 1 {
		t.Fatal("unusable deposit not kept as needs_review, held, with the reason and no made-up amount")
	}
	if n := s.count(`SELECT count(*) FROM sweeps`); n != 0 {
		t.Fatal("an unusable deposit got a sweep")
	}
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte(`sweeper_webhooks_received_total{outcome="unusable"} 1`)) ||
		!bytes.Contains(b, []byte(`sweeper_deposits_total{status="needs_review"} 1`)) {
		t.Fatalf("unusable not counted:\n%s", b)
	}
}

// ≥50 concurrent deliveries of one notification and of one transfer under new
// notification ids, over HTTP: exactly one deposit, one sweep, one transfer.
func TestConcurrentDuplicateDeliveriesOverHTTP(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{})
	transfer := uuid.NewString()
	// Fund the wallet as a real deposit would, so the sweep can succeed.
	d := s.deposit("2")
	s.waitFor(d.ID, "succeeded")
	if _, err := s.sandbox.CreateDeposit(context.Background(), sandbox.DepositRequest{WalletID: d.WalletID, Amount: decimal.RequireFromString("0")}); err == nil {
		t.Log("sandbox accepted a zero deposit")
	}
	res := depositResource(transfer, d.WalletID, "Closed", "0.5")
	var wg sync.WaitGroup
	codes := make(chan int, 120)
	for i := 0; i < 60; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); codes <- s.post(webhookSecret, "same-id", res).StatusCode }()
		go func(i int) { defer wg.Done(); codes <- s.post(webhookSecret, fmt.Sprintf("n-%d", i), res).StatusCode }(i)
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if n := s.count(`SELECT count(*) FROM deposits WHERE id=$1`, transfer); n != 1 {
		t.Fatalf("deposits %d", n)
	}
	if n := s.count(`SELECT count(*) FROM sweeps WHERE deposit_id=$1`, transfer); n != 1 {
		t.Fatalf("sweeps %d", n)
	}
	if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE transfer_id=$1`, transfer); n != 61 {
		t.Fatalf("deliveries %d, want 61 distinct notification ids", n)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/deposits": 401} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
