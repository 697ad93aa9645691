package poll_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/poll"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const account = sandbox.DefaultAccountID

// bundle is a store on a fresh database, a sandbox over real HTTP (no webhook
// delivery: every deposit's notifications are "lost"), and a Reader whose
// client counts its calls per endpoint.
type bundle struct {
	ctx    context.Context
	pool   *pgxpool.Pool
	st     *store.Store
	sb     *sandbox.Server
	reader *poll.Reader
	intake *webhook.Intake
	calls  *sync.Map // endpoint -> *atomic.Int64
}

func setup(t *testing.T, baseURL string) *bundle {
	t.Helper()
	t.Parallel()
	b := &bundle{ctx: context.Background(), calls: &sync.Map{}}
	b.pool = pgtest.NewPool(t)
	b.st = store.New(b.pool)
	if baseURL == "" {
		b.sb = sandbox.New(sandbox.Config{Logger: zap.NewNop()})
		srv := httptest.NewServer(b.sb.Handler())
		t.Cleanup(func() { b.sb.Close(); srv.Close() })
		baseURL = srv.URL
	}
	client, err := interlace.New(interlace.Config{
		BaseURL: baseURL,
		Tokens:  interlace.NewOAuthTokenSource(interlace.OAuthConfig{BaseURL: baseURL, ClientID: "c", ClientSecret: "s"}),
		Timeout: 5 * time.Second,
		Observe: func(endpoint, _ string, _ time.Duration) {
			n, _ := b.calls.LoadOrStore(endpoint, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.intake = webhook.NewIntake(webhook.IntakeConfig{AccountID: account, SweepCurrencies: []string{"USDC", "USDT"},
		ConfirmDeposits: true})
	b.reader, err = poll.NewReader(poll.ReaderConfig{AccountID: account, Intake: b.intake, ConfirmDeposits: true},
		client, b.st, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bundle) callsTo(endpoint string) int64 {
	n, ok := b.calls.Load(endpoint)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// notify records resource as a signed webhook would (confirmation on).
func (b *bundle) notify(t *testing.T, notificationID, resource string) store.Effect {
	t.Helper()
	d := b.intake.Delivery(store.Delivery{NotificationID: notificationID, EventType: "CRYPTO_TRANSFER.UPDATED",
		Body: []byte(resource)}, resource, store.SourceWebhook, false)
	e, err := b.st.Ingest(b.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (b *bundle) sandboxDeposit(t *testing.T, amount string) sandbox.Deposit {
	t.Helper()
	d, err := b.sb.CreateDeposit(b.ctx, sandbox.DepositRequest{Amount: decimal.RequireFromString(amount)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// resourceOf is the deposit as its Closed notification would carry it.
func resourceOf(d sandbox.Deposit, amount string) string {
	b, _ := json.Marshal(map[string]any{
		"id": d.ID, "accountId": account,
		"source":      map[string]any{"type": "blockchain", "chain": d.Chain, "address": "0x1"},
		"destination": map[string]any{"type": "cryptoconnect_wallet", "id": d.WalletID, "address": d.Address},
		"amount":      map[string]any{"amount": amount, "currency": d.Currency},
		"status":      "Closed", "createTime": d.CreateTime,
	})
	return string(b)
}

func TestPollerFindsDepositsNoWebhookBrought(t *testing.T) {
	b := setup(t, "")
	d1, d2 := b.sandboxDeposit(t, "12.5"), b.sandboxDeposit(t, "3")
	p, err := poll.NewPoller(poll.PollerConfig{Owner: "test"}, b.reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RunOnce(b.ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, d := range []sandbox.Deposit{d1, d2} {
		if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE deposit_id = $1 AND source = 'poll'
		    AND confirmed_at IS NOT NULL AND sweep_status = 'pending' AND amount = $2`, d.ID, d.Amount); n != 1 {
			t.Fatalf("deposit %s not found, confirmed and queued", d.ID)
		}
	}
	st, err := b.st.GetPollState(b.ctx, poll.PollName)
	if err != nil || st.LastSuccessAt == nil || st.Cursor == nil || st.LastFound != 2 || st.ConsecutiveFailures != 0 {
		t.Fatalf("poll state %+v %v", st, err)
	}
	// Interlace's documented limits: accountId, limit 1..100, pages from 1.
	if b.callsTo(interlace.EndpointListTransfers) == 0 {
		t.Fatal("no list call")
	}
	// A second poll right after is not due (the cluster polled moments ago).
	before := b.callsTo(interlace.EndpointListTransfers)
	if err := p.RunOnce(b.ctx, false); err != nil {
		t.Fatal(err)
	}
	if b.callsTo(interlace.EndpointListTransfers) != before {
		t.Fatal("polled again before the interval")
	}
	// A restart (a new poller, same database) resumes from the cursor: the
	// window is the overlap, and nothing is recorded twice.
	p2, _ := poll.NewPoller(poll.PollerConfig{Owner: "restarted", Interval: time.Second}, b.reader)
	time.Sleep(600 * time.Millisecond)
	if err := p2.RunOnce(b.ctx, false); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT count(*) FROM deposits`); n != 2 {
		t.Fatalf("deposits = %d", n)
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 2 {
		t.Fatalf("sweeps = %d", n)
	}
}

func TestPollerIsElectedOnce(t *testing.T) {
	b := setup(t, "")
	b.sandboxDeposit(t, "1")
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		p, _ := poll.NewPoller(poll.PollerConfig{Owner: "replica"}, b.reader)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.RunOnce(b.ctx, false); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := b.callsTo(interlace.EndpointListTransfers); n != 1 {
		t.Fatalf("three replicas made %d list calls, want 1", n)
	}
}

func TestLegacyWakeUpsAreCoalesced(t *testing.T) {
	b := setup(t, "")
	p, _ := poll.NewPoller(poll.PollerConfig{Owner: "r", MinGap: time.Minute}, b.reader)
	for i := 0; i < 20; i++ {
		if err := p.RunOnce(b.ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.callsTo(interlace.EndpointListTransfers); n != 1 {
		t.Fatalf("20 wake-ups made %d list calls, want 1", n)
	}
}

func TestConfirmerConfirmsABatchWithOneListCall(t *testing.T) {
	b := setup(t, "")
	var ids []string
	for i := 0; i < 30; i++ {
		d := b.sandboxDeposit(t, "2.5")
		if e := b.notify(t, "n-"+d.ID, resourceOf(d, "2.5")); e != store.EffectCreated {
			t.Fatalf("effect %s", e)
		}
		ids = append(ids, d.ID)
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 0 {
		t.Fatal("money may move before confirmation")
	}
	c := poll.NewConfirmer(poll.ConfirmConfig{}, b.reader)
	n, err := c.Round(b.ctx)
	if err != nil || n != 30 {
		t.Fatalf("round: %d %v", n, err)
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status = 'pending' AND deposit_id = ANY($1)`, ids); n != 30 {
		t.Fatalf("%d of 30 confirmed", n)
	}
	if l, g := b.callsTo(interlace.EndpointListTransfers), b.callsTo(interlace.EndpointGetBlockchainTransfer); l != 1 || g != 0 {
		t.Fatalf("30 confirmations took %d list and %d get calls, want 1 and 0", l, g)
	}
}

func TestConfirmerHoldsWhatTheRecordContradicts(t *testing.T) {
	b := setup(t, "")
	agree, lie, gone := b.sandboxDeposit(t, "5"), b.sandboxDeposit(t, "5"), "no-such-transfer"
	b.notify(t, "n1", resourceOf(agree, "5"))
	b.notify(t, "n2", resourceOf(lie, "500")) // a notification claiming more than Interlace's record
	b.notify(t, "n3", resourceOf(sandbox.Deposit{ID: gone, WalletID: agree.WalletID, Currency: "USDC", Chain: "ETH"}, "7"))
	c := poll.NewConfirmer(poll.ConfirmConfig{}, b.reader)
	if _, err := c.Round(b.ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps WHERE deposit_id = $1 AND status = 'pending' AND amount = 5`, agree.ID); n != 1 {
		t.Fatal("agreeing deposit not confirmed")
	}
	if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE deposit_id = $1 AND sweep_status = 'held'
	    AND last_error LIKE '%Interlace''s record says Closed 5 USDC%'`, lie.ID); n != 1 {
		t.Fatal("disagreeing deposit not held with the reason")
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps WHERE amount = 500`); n != 0 {
		t.Fatal("the notification's amount would be swept")
	}
	// (The sandbox answers an unknown id with a business code, not a 404.)
	if row, err := b.st.Ledger(b.ctx, gone); err != nil || row.SweepStatus != "waiting" || row.LastError == nil ||
		!strings.HasPrefix(*row.LastError, "awaiting Interlace's record: ") || !strings.Contains(*row.LastError, "does not exist") {
		t.Fatalf("unknown transfer not left waiting with the reason: %+v %v (%s)", row, err, *row.LastError)
	}
}

// A scripted upstream answers the list with an error and the record with a
// status that is not final yet: nothing moves, the reason is kept, and the
// poll's failure is visible in poll_state.
func TestUpstreamTroubleMovesNothingAndIsVisible(t *testing.T) {
	var mu sync.Mutex
	status := "Pending"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(r.URL.Path, "oauth/authorize"):
			_, _ = w.Write([]byte(`{"timestamp":1,"code":"c"}`))
		case strings.Contains(r.URL.Path, "oauth/access-token"):
			_, _ = w.Write([]byte(`{"accessToken":"scripted-access-token","refreshToken":"scripted-refresh","expiresIn":86400,"timestamp":1}`))
		case r.URL.Path == "/open-api/v3/cryptoconnect/transfers":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"code":"502","message":"upstream down"}`))
		case strings.HasPrefix(r.URL.Path, "/open-api/v3/cryptoconnect/transfers/"):
			mu.Lock()
			st := status
			mu.Unlock()
			_, _ = w.Write([]byte(`{"code":"000000","message":"ok","data":{"id":"t1","accountId":"` + account +
				`","source":{"type":"blockchain"},"destination":{"type":"cryptoconnect_wallet","id":"w1"},` +
				`"amount":{"amount":"4","currency":"USDC"},"status":"` + st + `"}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	b := setup(t, srv.URL)
	res := `{"id":"t1","accountId":"` + account + `","source":{"type":"blockchain"},` +
		`"destination":{"type":"cryptoconnect_wallet","id":"w1"},"amount":{"amount":"4","currency":"USDC"},"status":"Closed"}`
	b.notify(t, "n1", res)
	c := poll.NewConfirmer(poll.ConfirmConfig{}, b.reader)
	if _, err := c.Round(b.ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE sweep_status = 'waiting'
	    AND last_error = 'awaiting Interlace''s record: Interlace''s record says Pending'`); n != 1 {
		t.Fatal("a final notification against a Pending record must wait, with the reason")
	}
	mu.Lock()
	status = "CLOSED"
	mu.Unlock()
	if _, err := b.pool.Exec(b.ctx, `UPDATE deposit_confirmations SET due_at = now()`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Round(b.ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status = 'pending'`); n != 1 {
		t.Fatal("not confirmed once the record says CLOSED")
	}

	p, _ := poll.NewPoller(poll.PollerConfig{Owner: "r"}, b.reader)
	for i := 1; i <= 2; i++ {
		if err := p.RunOnce(b.ctx, false); err == nil {
			st, _ := b.st.GetPollState(b.ctx, poll.PollName)
			t.Fatalf("a failing list call reported success: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := b.st.GetPollState(b.ctx, poll.PollName)
	if err != nil || st.ConsecutiveFailures != 2 || st.LastError == nil || !strings.Contains(*st.LastError, "upstream down") ||
		st.LastSuccessAt != nil || st.Cursor != nil {
		t.Fatalf("poll state %+v %v (%s)", st, err, *st.LastError)
	}
}

// A backlog larger than a page (deposits notified while the confirmer was
// away) is confirmed a page at a time from its old end, never one call per
// deposit.
func TestConfirmerWorksThroughABacklogByPages(t *testing.T) {
	b := setup(t, "")
	for i := 0; i < 250; i++ {
		d := b.sandboxDeposit(t, "1")
		b.notify(t, "n-"+d.ID, resourceOf(d, "1"))
	}
	c := poll.NewConfirmer(poll.ConfirmConfig{}, b.reader)
	for i := 0; i < 5; i++ {
		if n, err := c.Round(b.ctx); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status = 'pending'`); n != 250 {
		t.Fatalf("%d of 250 confirmed", n)
	}
	if l, g := b.callsTo(interlace.EndpointListTransfers), b.callsTo(interlace.EndpointGetBlockchainTransfer); l > 6 || g != 0 {
		t.Fatalf("250 confirmations took %d list and %d get calls", l, g)
	}
}

// Deposits waiting over an hour are read back one by one; one that Interlace
// does not know stays waiting without failing the poll.
func TestPollerRereadsDepositsWaitingOverAnHour(t *testing.T) {
	b := setup(t, "")
	d := b.sandboxDeposit(t, "9")
	pending := strings.Replace(resourceOf(d, "9"), `"status":"Closed"`, `"status":"Pending"`, 1)
	b.notify(t, "n-pending", pending)
	ghost := strings.Replace(strings.Replace(pending, d.ID, "ghost-transfer", 1), `"createTime":"`+d.CreateTime+`"`, `"createTime":"1"`, 1)
	b.notify(t, "n-ghost", ghost)
	if _, err := b.pool.Exec(b.ctx, `UPDATE deposits SET received_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	// A cursor ahead of now: no list window this poll, only the re-read can settle them.
	if err := b.st.PollStarted(b.ctx, poll.PollName, "test"); err != nil {
		t.Fatal(err)
	}
	if err := b.st.PollAdvance(b.ctx, poll.PollName, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p, _ := poll.NewPoller(poll.PollerConfig{Owner: "r", Overlap: time.Millisecond}, b.reader)
	if err := p.RunOnce(b.ctx, false); err != nil {
		t.Fatalf("a waiting deposit Interlace does not know failed the poll: %v", err)
	}
	if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE deposit_id = $1 AND deposit_status = 'final'
	    AND confirmed_at IS NOT NULL AND sweep_status = 'pending'`, d.ID); n != 1 {
		t.Fatal("the waiting deposit was not settled from Interlace's record")
	}
	if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE deposit_id = 'ghost-transfer' AND sweep_status = 'waiting' AND stuck`); n != 1 {
		t.Fatal("the unknown one must stay waiting, visible as stuck")
	}
	if g, l := b.callsTo(interlace.EndpointGetBlockchainTransfer), b.callsTo(interlace.EndpointListTransfers); g != 2 || l != 0 {
		t.Fatalf("get calls %d, list calls %d, want 2 and 0", g, l)
	}
}

// A round cut off by shutdown while Interlace has not answered hands its claims
// back: due at once, the interrupted attempt not counted. Kept, they would wait
// out the claim's lease (30 s) before any process read them, and a deposit
// acknowledged just before a SIGTERM would wait that long to be swept. Nothing
// is confirmed by the release: the next round reads the record.
func TestConfirmerStoppedMidRoundReleasesItsClaims(t *testing.T) {
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(r.URL.Path, "oauth/authorize"):
			_, _ = w.Write([]byte(`{"timestamp":1,"code":"c"}`))
		case strings.Contains(r.URL.Path, "oauth/access-token"):
			_, _ = w.Write([]byte(`{"accessToken":"scripted-access-token","refreshToken":"scripted-refresh","expiresIn":86400,"timestamp":1}`))
		default: // Interlace is slow: the process stops before it answers.
			select {
			case entered <- struct{}{}:
			default:
			}
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	b := setup(t, srv.URL)
	for _, id := range []string{"t1", "t2"} {
		b.notify(t, "n-"+id, `{"id":"`+id+`","accountId":"`+account+`","source":{"type":"blockchain"},`+
			`"destination":{"type":"cryptoconnect_wallet","id":"w1"},"amount":{"amount":"4","currency":"USDC"},"status":"Closed"}`)
	}
	c := poll.NewConfirmer(poll.ConfirmConfig{Lease: time.Minute}, b.reader)
	ctx, stop := context.WithCancel(b.ctx)
	go func() { <-entered; stop() }()
	if _, err := c.Round(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("round cut off by shutdown: %v, want context.Canceled", err)
	}
	if n := b.count(t, `SELECT count(*) FROM deposit_confirmations
	    WHERE due_at <= now() AND attempts = 0 AND last_error IS NULL`); n != 2 {
		t.Fatalf("%d of 2 claims handed back due now, uncounted", n)
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 0 {
		t.Fatal("a released claim was swept without Interlace's record")
	}
}

// A round confirms each page as soon as it is read: a backlog's first sweeps
// do not wait for the round's later pages (at 100 ms upstream latency, each
// page read first would hold every sweep back by another 100 ms). The second
// page is held back here until the first page's deposits have their sweeps.
func TestConfirmerConfirmsEachPageAsItIsRead(t *testing.T) {
	sb := sandbox.New(sandbox.Config{Logger: zap.NewNop()})
	inner := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); inner.Close() })
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	target, _ := url.Parse(inner.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/open-api/v3/cryptoconnect/transfers" && r.URL.Query().Get("page") != "1" {
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b := setup(t, srv.URL)
	b.sb = sb
	// 200 deposits; every other one is due now, the rest later (a retry's
	// backoff, say). The round claims the 90 oldest due ones, whose window holds
	// about 180 records: two pages.
	var due []string
	for i := 0; i < 200; i++ {
		d := b.sandboxDeposit(t, "1")
		b.notify(t, "n-"+d.ID, resourceOf(d, "1"))
		if i%2 == 0 {
			due = append(due, d.ID)
		}
	}
	if _, err := b.pool.Exec(b.ctx, `UPDATE deposit_confirmations
	    SET due_at = CASE WHEN deposit_id = ANY($1) THEN now() ELSE now() + interval '1 hour' END`, due); err != nil {
		t.Fatal(err)
	}
	c := poll.NewConfirmer(poll.ConfirmConfig{}, b.reader)
	done := make(chan error, 1)
	go func() { _, err := c.Round(b.ctx); done <- err }()
	deadline := time.Now().Add(3 * time.Second)
	for b.count(t, `SELECT count(*) FROM sweeps`) < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("the first page's deposits waited for the second page: %d sweeps", b.count(t, `SELECT count(*) FROM sweeps`))
		}
		time.Sleep(10 * time.Millisecond)
	}
	releaseOnce.Do(func() { close(release) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	claimed := due[:90]
	if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status = 'pending' AND deposit_id = ANY($1)`, claimed); n != 90 {
		t.Fatalf("%d of the 90 claimed deposits confirmed", n)
	}
}
