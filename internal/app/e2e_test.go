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
	// listener, when set, is where the program serves (a sandbox built beforehand needs its URL).
	listener net.Listener
	// sbConfig adjusts the in-process sandbox's configuration before it starts.
	sbConfig func(*sandbox.Config)
}

// start runs the real program (app.New + Run) against a fresh database and an
// in-process sandbox over real HTTP.
func start(t *testing.T, o sysOpts) *system {
	t.Helper()
	ln := o.listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := &system{t: t, url: "http://" + ln.Addr().String(), dbURL: o.dbURL, sandbox: o.sandbox, sbURL: o.sbURL}
	if s.dbURL == "" {
		s.dbURL = pgtest.NewMigratedDatabase(t)
	}
	if s.sandbox == nil {
		sc := sandbox.Config{
			WebhookURL: s.url + "/webhooks/interlace", WebhookSecret: webhookSecret,
			TimeScale: 1000, WithdrawalDelay: 200 * time.Millisecond, Logger: zap.NewNop(),
		}
		if o.sbConfig != nil {
			o.sbConfig(&sc)
		}
		s.sandbox = sandbox.New(sc)
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
		"SWEEPER_SWEEP_LEASE":      "4s",
		"SWEEPER_UPSTREAM_TIMEOUT": "600ms", // one attempt's worst case: 6 x 600ms < the lease
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
		if led.InternalTransfers[i].Applied && led.InternalTransfers[i].ClientTransactionID == ids.SweepTransactionID(d.ID).String() {
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
		if tr.Applied && tr.ClientTransactionID == ids.SweepTransactionID(d.ID).String() {
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

// A worker sends the transfer, Interlace applies it, and the worker dies before
// it hears back: killed (SIGKILL), so it neither records an attempt nor hands
// its lease back. A new process reclaims the sweep once the lease expires,
// replays it, and Interlace moves the money once. Both requests come from the
// real sweep worker (the first from the sweeper binary, whose answer a proxy
// holds back until it is killed), and Interlace must have seen the same request
// every time: a replay whose body differed would be a client bug the real
// upstream may answer with an error, or worse.
func TestCrashedWorkerIsResumedAfterLeaseExpiry(t *testing.T) {
	t.Parallel()
	bin := buildSweeper(t)
	// Phase 1: an in-process sweeper without a worker records the deposit; the
	// worker is a separate `sweeper serve` process talking to Interlace through
	// the proxy.
	s := start(t, sysOpts{noWork: true})
	proxy := newHoldingProxy(t, s.sbURL)
	doomed := startChild(t, bin, freeAddr(t), map[string]string{
		"DATABASE_URL":             s.dbURL,
		"INTERLACE_BASE_URL":       proxy.URL,
		"INTERLACE_CLIENT_ID":      "client-id",
		"INTERLACE_CLIENT_SECRET":  "client-secret-value",
		"INTERLACE_ACCOUNT_ID":     accountID,
		"INTERLACE_WEBHOOK_SECRET": webhookSecret,
		// The lease must exceed one attempt's worst case (6 x the timeout); the
		// timeout must outlast the wait for the kill.
		"SWEEPER_SWEEP_LEASE":      "6500ms",
		"SWEEPER_UPSTREAM_TIMEOUT": "1s",
		"SWEEPER_RETRY_MAX_DELAY":  "1s",
	})
	d := s.deposit("7")
	ctid := ids.SweepTransactionID(d.ID).String()
	select {
	case <-proxy.applied:
	case <-time.After(15 * time.Second):
		t.Fatal("the worker never got a transfer applied upstream")
	}
	// Interlace has moved the money; the worker is still waiting for the answer.
	if err := doomed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-doomed.done
	// It died without a word: the sweep is in flight under its lease, and no
	// attempt was recorded.
	if n := s.count(`SELECT count(*) FROM sweeps WHERE deposit_id=$1 AND status='in_flight' AND attempts=1`, d.ID); n != 1 {
		t.Fatalf("the killed worker's sweep is not in flight with one attempt (%d rows)", n)
	}
	if n := s.count(`SELECT count(*) FROM sweep_attempts WHERE deposit_id=$1`, d.ID); n != 0 {
		t.Fatalf("the killed worker recorded %d attempts: it was not killed before hearing back", n)
	}
	s.stop()

	// Phase 2: a new process with a worker starts on the same database, talking
	// to Interlace through the same proxy (which now passes everything).
	s2 := start(t, sysOpts{dbURL: s.dbURL, sandbox: s.sandbox, sbURL: proxy.URL})
	row := s2.waitFor(d.ID, "succeeded")
	led := s.sandbox.Ledger()
	applied := 0
	for _, tr := range led.InternalTransfers {
		if tr.Applied && tr.ClientTransactionID == ctid {
			applied++
			if *row.InterlaceTransferID != tr.ID {
				t.Fatalf("resumed sweep recorded %s, upstream transfer is %s", *row.InterlaceTransferID, tr.ID)
			}
		}
	}
	if applied != 1 || led.RequestsByIdempotencyKey[ctid] < 2 {
		t.Fatalf("applied %d times, requests %d; want once, after at least 2 requests", applied, led.RequestsByIdempotencyKey[ctid])
	}
	if c := led.IdempotencyConflicts[ctid]; c != 0 {
		t.Fatalf("Interlace saw %d replays under %s whose request differed from the first", c, ctid)
	}
	bodies := proxy.bodiesFor(ctid)
	if len(bodies) < 2 {
		t.Fatalf("%d transfer requests passed the proxy, want the killed worker's and the replay", len(bodies))
	}
	for i, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Fatalf("request %d differs from the first:\n%s\n%s", i+2, bodies[0], b)
		}
	}
	if n := s2.count(`SELECT count(*) FROM sweep_events WHERE deposit_id=$1 AND reason LIKE 'lease expired%'`, d.ID); n != 1 {
		t.Fatal("reclaim not recorded")
	}
}

// holdingProxy stands between a sweeper and the sandbox. It forwards every
// request, keeps the body of every internal transfer request, and withholds the
// answer to the first transfer the sandbox applied: its sender never learns the
// outcome. The held request ends when its client goes away.
type holdingProxy struct {
	*httptest.Server
	applied chan struct{} // closed once that first transfer is applied upstream
	quit    chan struct{}
	mu      sync.Mutex
	held    bool
	bodies  map[string][][]byte // clientTransactionId -> request bodies, in order
}

func newHoldingProxy(t *testing.T, upstream string) *holdingProxy {
	t.Helper()
	p := &holdingProxy{applied: make(chan struct{}), quit: make(chan struct{}), bodies: map[string][][]byte{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if r.Method == http.MethodPost && r.URL.Path == "/open-api/v3/business/transfer/internal" {
			var sent struct{ ClientTransactionID string }
			_ = json.Unmarshal(body, &sent)
			p.mu.Lock()
			p.bodies[sent.ClientTransactionID] = append(p.bodies[sent.ClientTransactionID], body)
			hold := !p.held && bytes.Contains(answer, []byte(`"000000"`))
			p.held = p.held || hold
			p.mu.Unlock()
			if hold {
				close(p.applied)
				select {
				case <-r.Context().Done():
				case <-p.quit:
				}
				return
			}
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(func() { close(p.quit); p.Close() })
	return p
}

// bodiesFor returns the transfer request bodies sent under ctid, in order.
func (p *holdingProxy) bodiesFor(ctid string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.bodies[ctid]...)
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
		if tr.Applied && tr.ClientTransactionID == rowA.ClientTransactionID.String() {
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
// notification ids, over HTTP: exactly one deposit and one sweep here, and one
// movement of the money at Interlace. The deposit is a real one in the sandbox's
// master wallet, which holds 1,000 USDC of its own, so a second transfer under
// any id would go through and be counted. The sandbox sends no webhook of its own:
// every delivery is the test's.
func TestConcurrentDuplicateDeliveriesOverHTTP(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{Logger: zap.NewNop()}) // no WebhookURL
	sbSrv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); sbSrv.Close() })
	s := start(t, sysOpts{sandbox: sb, sbURL: sbSrv.URL})
	d := s.deposit("0.5")
	ctid := ids.SweepTransactionID(d.ID).String()
	heldBefore := walletBalance(t, sb.Ledger(), d.WalletID, d.Currency) // the deposit included

	res := depositResource(d.ID, d.WalletID, "Closed", d.Amount.String())
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
	if n := s.count(`SELECT count(*) FROM deposits WHERE id=$1`, d.ID); n != 1 {
		t.Fatalf("deposits %d", n)
	}
	if n := s.count(`SELECT count(*) FROM sweeps WHERE deposit_id=$1`, d.ID); n != 1 {
		t.Fatalf("sweeps %d", n)
	}
	if n := s.count(`SELECT count(*) FROM webhook_deliveries WHERE transfer_id=$1`, d.ID); n != 61 {
		t.Fatalf("deliveries %d, want 61 distinct notification ids", n)
	}

	// Interlace's side, once the sweep is done and the worker has had time to
	// pick up anything a duplicate might have queued again.
	s.waitFor(d.ID, "succeeded")
	time.Sleep(700 * time.Millisecond) // > the worker's 500 ms poll interval
	led := sb.Ledger()
	var out []string // "amount under clientTransactionId"
	for _, tr := range led.InternalTransfers {
		if tr.Applied && tr.From.ID == d.WalletID {
			out = append(out, tr.Amount.String()+" under "+tr.ClientTransactionID)
		}
	}
	if want := d.Amount.String() + " under " + ctid; len(out) != 1 || out[0] != want {
		t.Fatalf("upstream transfers out of the deposit's wallet: %q; want exactly one, %s", out, want)
	}
	if got := led.RequestsByIdempotencyKey[ctid]; got != 1 {
		t.Fatalf("%d transfer requests under %s, want 1 (no fault was injected)", got, ctid)
	}
	if got, want := walletBalance(t, led, d.WalletID, d.Currency), heldBefore.Sub(d.Amount); !got.Equal(want) {
		t.Fatalf("wallet holds %s %s after the sweep, want %s: the deposit left it other than once", got, d.Currency, want)
	}
}

// walletBalance is a sandbox wallet's balance in one currency.
func walletBalance(t *testing.T, led sandbox.Ledger, walletID, currency string) decimal.Decimal {
	t.Helper()
	for _, w := range led.Wallets {
		if w.ID == walletID {
			return w.Balances[currency]
		}
	}
	t.Fatalf("wallet %s not in the sandbox", walletID)
	return decimal.Zero
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
