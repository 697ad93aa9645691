package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	scriptInfinity = "inf-usd-1"
	scriptWallet   = "wallet-1"
	clientTimeout  = 150 * time.Millisecond
)

// answer is one scripted upstream answer to POST /open-api/v3/business/transfer/internal.
type answer func(w http.ResponseWriter, r *http.Request, req map[string]any)

// script is a real HTTP server that answers the internal transfer endpoint with a
// fixed sequence of answers (the last one repeats), and records what it was sent.
type script struct {
	srv *httptest.Server
	mu  sync.Mutex
	seq []answer
	n   int
	ids map[string]bool // clientTransactionIds received
}

func newScript(t *testing.T, seq ...answer) *script {
	s := &script{seq: seq, ids: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/open-api/v3/business/transfer/internal" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		s.mu.Lock()
		a := s.seq[min(s.n, len(s.seq)-1)]
		s.n++
		s.ids[fmt.Sprint(req["clientTransactionId"])] = true
		s.mu.Unlock()
		a(w, r, req)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *script) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// timeout holds the request past the client's timeout: the client never learns
// whether the transfer was applied.
func timeout(w http.ResponseWriter, r *http.Request, _ map[string]any) {
	select {
	case <-r.Context().Done():
	case <-time.After(3 * clientTimeout):
	}
}

func business(code, message string) answer {
	return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"code":%q,"message":%q}`, code, message)
	}
}

func httpError(status int, body string) answer {
	return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// transfer answers with the transfer the request describes, in status st, after
// edit has had its way with the data (nil: as the guide shows it).
func transfer(st string, edit func(d map[string]any)) answer {
	return func(w http.ResponseWriter, _ *http.Request, req map[string]any) {
		from, _ := req["from"].(map[string]any)
		to, _ := req["to"].(map[string]any)
		d := map[string]any{
			"clientTransactionId": req["clientTransactionId"], "id": "it-" + fmt.Sprint(req["clientTransactionId"])[:8],
			"status": st, "accountTransferType": "SAME_ACCOUNT",
			"from": map[string]any{"id": from["id"], "amount": req["amount"], "currency": from["currency"], "businessType": 2,
				"fees": []any{map[string]any{"feeType": 6, "amount": "0.05", "currency": from["currency"]}}},
			"to": map[string]any{"id": to["id"], "amount": "9.95", "currency": to["currency"], "businessType": 0,
				"fees": []any{map[string]any{"feeType": 0, "amount": "0", "currency": to["currency"]}}},
		}
		if edit != nil {
			edit(d)
		}
		b, _ := json.Marshal(map[string]any{"code": "000000", "message": "success", "data": d})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
}

func leg(d map[string]any, side string) map[string]any { return d[side].(map[string]any) }

// delayed answers a after d (the worker's lease may expire meanwhile).
func delayed(d time.Duration, a answer) answer {
	return func(w http.ResponseWriter, r *http.Request, req map[string]any) {
		time.Sleep(d)
		a(w, r, req)
	}
}

type rig struct {
	t    *testing.T
	pool *pgxpool.Pool
	st   *store.Store
	up   *script
}

// newRig records one final 10 USDC deposit, ready to sweep, against a scripted upstream.
func newRig(t *testing.T, seq ...answer) *rig {
	t.Helper()
	t.Parallel()
	pool := pgtest.NewPool(t)
	r := &rig{t: t, pool: pool, st: store.New(pool), up: newScript(t, seq...)}
	_, err := r.st.Ingest(context.Background(), store.Delivery{
		NotificationID: "n1", EventType: "CRYPTO_TRANSFER.UPDATED", Body: []byte(`{}`), Outcome: store.OutcomeDeposit,
		TransferID: "t1", Deposit: &store.DepositInput{TransferID: "t1", AccountID: "acc", WalletID: scriptWallet,
			Chain: "ETH", Currency: "USDC", Amount: decimal.RequireFromString("10"), UpstreamStatus: "Closed",
			Status: store.DepositFinal, ClientTransactionID: ids.SweepTransactionID("t1"), SweepAccountID: "acc",
			ToCurrency: "USD"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs a worker until the sweep reaches one of the states in until (or the
// deadline) and returns the state.
func (r *rig) run(cfg Config, until ...string) string {
	r.t.Helper()
	return r.runWith(cfg, clientTimeout, until...)
}

func (r *rig) status() string {
	var s string
	if err := r.pool.QueryRow(context.Background(), `SELECT status FROM sweeps WHERE deposit_id = 't1'`).Scan(&s); err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) one(sql string, dst ...any) {
	r.t.Helper()
	if err := r.pool.QueryRow(context.Background(), sql, "t1").Scan(dst...); err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
}

func (r *rig) attempts() []string {
	rows, err := r.pool.Query(context.Background(), `SELECT outcome FROM sweep_attempts WHERE deposit_id = $1 ORDER BY id`, "t1")
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// TestUnknownThenRejectedIsUnresolved: a timeout whose request may have been
// applied, then a definite "no" on the replay, is never failed (contract §11).
func TestUnknownThenRejectedIsUnresolved(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  answer
		reject answer
	}{
		{"TimeoutThenDuplicate", timeout, business("100409", "duplicate clientTransactionId")},
		{"TimeoutThenInsufficientBalance", timeout, business("010023", "insufficient balance")},
		{"ServerErrorThenDuplicate", httpError(502, "<html>bad gateway</html>"), business("100409", "duplicate clientTransactionId")},
		{"TooManyRequestsThenRejected", httpError(429, `{"code":"010429","message":"slow down"}`), httpError(400, `{"code":"010001","message":"invalid"}`)},
		{"InProgressThenRejected", transfer("PENDING", nil), business("010023", "insufficient balance")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.first, tc.reject)
			if got := r.run(Config{}, "failed", "unresolved", "succeeded"); got != "unresolved" {
				t.Fatalf("sweep %s, want unresolved", got)
			}
			var lastErr string
			var unresolvedAt, failedAt *time.Time
			r.one(`SELECT last_error, unresolved_at, failed_at FROM sweeps WHERE deposit_id = $1`, &lastErr, &unresolvedAt, &failedAt)
			if !strings.Contains(lastErr, "outcome is unknown") || unresolvedAt == nil || failedAt != nil {
				t.Fatalf("last_error %q unresolved_at %v failed_at %v", lastErr, unresolvedAt, failedAt)
			}
			var ev int
			r.one(`SELECT count(*) FROM sweep_events WHERE deposit_id = $1 AND to_status = 'unresolved'`, &ev)
			if att := r.attempts(); len(att) != 2 || att[1] != store.AttemptRejected || ev != 1 {
				t.Fatalf("attempts %v, unresolved events %d", att, ev)
			}
			if len(r.up.ids) != 1 {
				t.Fatalf("%d distinct clientTransactionIds sent", len(r.up.ids))
			}
			// Never retried automatically.
			calls := r.up.calls()
			time.Sleep(150 * time.Millisecond)
			if r.up.calls() != calls {
				t.Fatal("an unresolved sweep was sent again")
			}
		})
	}
}

// TestRejectionWithNothingUnknownBeforeFails: the only road to failed.
func TestRejectionWithNothingUnknownBeforeFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    answer
	}{
		{"InsufficientBalance", business("010023", "insufficient balance")},
		// A 400 whose message happens to contain "processing" is a rejection, not
		// "in progress": failed at once, not retried forever.
		{"ProcessingInMessageOn400", httpError(400, `{"code":"010001","message":"amount below the processing minimum"}`)},
		{"ProcessingInMessageOn200", business("010001", "Request is PROCESSING, retry later")},
		{"StatusFailed", transfer("FAILED", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.a, transfer("CLOSED", nil))
			if got := r.run(Config{}, "failed", "unresolved", "succeeded"); got != "failed" {
				t.Fatalf("sweep %s, want failed", got)
			}
			if att := r.attempts(); len(att) != 1 || r.up.calls() != 1 {
				t.Fatalf("attempts %v, calls %d", att, r.up.calls())
			}
		})
	}
}

// TestPendingBacksOffAndAgesOut: PENDING forever is replayed with the normal
// backoff (never a fixed short interval) and, after SWEEPER_PENDING_MAX_AGE of
// nothing else, is unresolved.
func TestPendingBacksOffAndAgesOut(t *testing.T) {
	r := newRig(t, transfer("PENDING", nil))
	start := time.Now()
	got := r.run(Config{BaseDelay: 40 * time.Millisecond, MaxDelay: 10 * time.Second, PendingMaxAge: 700 * time.Millisecond},
		"failed", "unresolved", "succeeded")
	if got != "unresolved" {
		t.Fatalf("sweep %s, want unresolved", got)
	}
	elapsed := time.Since(start)
	// Exponential: 20-40, 40-80, 80-160, 160-320, 320-640 ms… reaches 700 ms in
	// at most 7 calls; a fixed 20 ms interval would make ~35.
	calls := r.up.calls()
	if calls < 3 || calls > 8 {
		t.Fatalf("%d calls in %s: not an exponential backoff", calls, elapsed)
	}
	var lastErr string
	r.one(`SELECT last_error FROM sweeps WHERE deposit_id = $1`, &lastErr)
	if !strings.Contains(lastErr, "nothing but in-progress answers") || !strings.Contains(lastErr, "PENDING") {
		t.Fatalf("last_error %q", lastErr)
	}
	att := r.attempts()
	for _, a := range att[:len(att)-1] {
		if a != store.AttemptInProgress {
			t.Fatalf("attempts %v", att)
		}
	}
}

// TestPendingThenClosedSucceeds: in progress is not a verdict.
func TestPendingThenClosedSucceeds(t *testing.T) {
	r := newRig(t, transfer("PENDING", nil), transfer("Processing", nil), transfer("CLOSED", nil))
	if got := r.run(Config{}, "failed", "unresolved", "succeeded"); got != "succeeded" {
		t.Fatalf("sweep %s", got)
	}
	var pendingSince *time.Time
	r.one(`SELECT pending_since FROM sweeps WHERE deposit_id = $1`, &pendingSince)
	if pendingSince != nil {
		t.Fatal("pending_since kept after success")
	}
}

// TestSuccessAfterLeaseLostCounts: the first request is answered "CLOSED" only
// after the lease expired; meanwhile a second claim replays it and gets
// "duplicate" (unresolved). The late success still counts and wins.
func TestSuccessAfterLeaseLostCounts(t *testing.T) {
	r := newRig(t, delayed(900*time.Millisecond, transfer("CLOSED", nil)), business("100409", "duplicate clientTransactionId"))
	got := r.runWith(Config{Lease: 300 * time.Millisecond, Concurrency: 2}, 5*time.Second, "succeeded")
	if got != "succeeded" {
		t.Fatalf("sweep %s", got)
	}
	var transferID, creditedCur string
	var credited decimal.Decimal
	r.one(`SELECT interlace_transfer_id, credited_amount, credited_currency FROM sweeps WHERE deposit_id = $1`,
		&transferID, &credited, &creditedCur)
	if !strings.HasPrefix(transferID, "it-") || !credited.Equal(decimal.RequireFromString("9.95")) || creditedCur != "USD" {
		t.Fatalf("booked %s %s %s", transferID, credited, creditedCur)
	}
	var path string
	r.one(`SELECT string_agg(to_status, ',' ORDER BY id) FROM sweep_events WHERE deposit_id = $1`, &path)
	if !strings.HasSuffix(path, "unresolved,succeeded") {
		t.Fatalf("state path %s", path)
	}
	var reason string
	r.one(`SELECT reason FROM sweep_events WHERE deposit_id = $1 AND to_status = 'succeeded'`, &reason)
	if !strings.Contains(reason, "lease was lost") {
		t.Fatalf("success event %q", reason)
	}
}

// runWith is run with an upstream client timeout of its own.
func (r *rig) runWith(cfg Config, upstreamTimeout time.Duration, until ...string) string {
	r.t.Helper()
	client, err := interlace.New(interlace.Config{BaseURL: r.up.srv.URL, Tokens: interlace.StaticToken("tok"), Timeout: upstreamTimeout})
	if err != nil {
		r.t.Fatal(err)
	}
	cfg.AccountID, cfg.InfinityWalletID, cfg.Owner = "acc", scriptInfinity, "w1"
	if cfg.BaseDelay == 0 {
		cfg.BaseDelay, cfg.MaxDelay = 20*time.Millisecond, 80*time.Millisecond
	}
	cfg.PollInterval = 10 * time.Millisecond
	w, err := New(cfg, r.st, client, zap.NewNop(), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := r.status()
		for _, u := range until {
			if s == u {
				return s
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("sweep still %s after 15s (%d upstream calls)", s, r.up.calls())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSuccessIsCheckedAgainstTheRequest: a CLOSED answer about another amount,
// currency, wallet or clientTransactionId is never booked as swept.
func TestSuccessIsCheckedAgainstTheRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(d map[string]any)
		want string
	}{
		{"Amount", func(d map[string]any) { leg(d, "from")["amount"] = "100" }, "amount 100, sent 10"},
		{"Currency", func(d map[string]any) { leg(d, "from")["currency"] = "USDT" }, `currency "USDT"`},
		{"Wallet", func(d map[string]any) { leg(d, "from")["id"] = "someone-else" }, "from wallet"},
		{"CreditedCurrency", func(d map[string]any) { leg(d, "to")["currency"] = "EUR" }, "credited currency"},
		{"ClientTransactionID", func(d map[string]any) { d["clientTransactionId"] = "00000000-0000-0000-0000-000000000000" }, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, transfer("CLOSED", tc.edit))
			if got := r.run(Config{}, "failed", "unresolved", "succeeded"); got != "unresolved" {
				t.Fatalf("sweep %s, want unresolved", got)
			}
			var lastErr string
			var credited *decimal.Decimal
			r.one(`SELECT last_error, credited_amount FROM sweeps WHERE deposit_id = $1`, &lastErr, &credited)
			if !strings.Contains(lastErr, tc.want) || credited != nil {
				t.Fatalf("last_error %q credited %v", lastErr, credited)
			}
			if att := r.attempts(); len(att) != 1 || att[0] != attemptMismatch {
				t.Fatalf("attempts %v", att)
			}
		})
	}
}

// TestPoisonAnswerEndsUnresolvedWithAnAttemptRow: an answer PostgreSQL cannot
// store ends as an attempt row and a visible state, not a silent loop.
func TestPoisonAnswerEndsUnresolvedWithAnAttemptRow(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(d map[string]any)
	}{
		{"AbsurdNumeric", func(d map[string]any) { leg(d, "to")["amount"] = "1e9000" }},
		{"NumberBeyondTheDecoder", func(d map[string]any) { leg(d, "to")["amount"] = "1e400000" }},
		{"NULInTransferID", func(d map[string]any) { d["id"] = "it-\x00-evil" }},
		{"HugeText", func(d map[string]any) { d["id"] = strings.Repeat("9", 300_000) }},
		{"NULInFeeCurrency", func(d map[string]any) {
			leg(d, "from")["fees"] = []any{map[string]any{"amount": "1", "currency": "US\x00D"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, transfer("CLOSED", tc.edit))
			// A generous timeout: a 300 KB answer under -race on a loaded
			// machine must not time out, or the test would see a retry first.
			if got := r.runWith(Config{}, 5*time.Second, "failed", "unresolved", "succeeded"); got != "unresolved" {
				t.Fatalf("sweep %s, want unresolved", got)
			}
			var msg string
			r.one(`SELECT message FROM sweep_attempts WHERE deposit_id = $1`, &msg)
			if att := r.attempts(); len(att) != 1 || att[0] != store.AttemptPoison || msg == "" {
				t.Fatalf("attempts %v message %q", att, msg)
			}
			if r.up.calls() != 1 {
				t.Fatalf("%d calls: the poison answer was replayed", r.up.calls())
			}
		})
	}
}

// TestFeesKeptLineByLine: every fee line is kept; fees in two currencies leave
// fee_amount/fee_currency NULL instead of a made-up total.
func TestFeesKeptLineByLine(t *testing.T) {
	r := newRig(t, transfer("CLOSED", func(d map[string]any) {
		leg(d, "from")["fees"] = []any{
			map[string]any{"feeType": 6, "amount": "0.05", "currency": "USDC"},
			map[string]any{"feeType": 7, "amount": "0.01", "currency": "USD"},
		}
	}))
	if got := r.run(Config{}, "failed", "unresolved", "succeeded"); got != "succeeded" {
		t.Fatalf("sweep %s", got)
	}
	var fee *decimal.Decimal
	var feeCur *string
	var lines []map[string]any
	r.one(`SELECT fee_amount, fee_currency, fees FROM sweep_ledger WHERE deposit_id = $1`, &fee, &feeCur, &lines)
	if fee != nil || feeCur != nil {
		t.Fatalf("mixed fees booked as %v %v", fee, feeCur)
	}
	if len(lines) != 3 || lines[0]["amount"] != "0.05" || lines[1]["currency"] != "USD" || lines[2]["side"] != "to" {
		t.Fatalf("fee lines %v", lines)
	}
}

// TestAttemptStartsOnlyUnderALiveLease: the lease is checked at the start of an
// attempt. A claim whose lease no longer covers one attempt's worst case is
// extended first; one whose lease was taken over sends nothing.
func TestAttemptStartsOnlyUnderALiveLease(t *testing.T) {
	r := newRig(t, transfer("CLOSED", nil))
	ctx := context.Background()
	claim := func(owner string, lease time.Duration) store.Sweep {
		jobs, err := r.st.ClaimSweeps(ctx, store.ClaimParams{Owner: owner, Limit: 1, Lease: lease, ToWalletID: scriptInfinity})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim %v %v", jobs, err)
		}
		return jobs[0]
	}
	stale := claim("stale", 50*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	fresh := claim("other", 500*time.Millisecond) // shorter than one attempt: must be extended

	client, _ := interlace.New(interlace.Config{BaseURL: r.up.srv.URL, Tokens: interlace.StaticToken("tok"), Timeout: clientTimeout})
	w, err := New(Config{Owner: "w", AccountID: "acc", InfinityWalletID: scriptInfinity, Lease: time.Minute,
		AttemptTimeout: 10 * time.Second}, r.st, client, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := store.NewOutcomeRecorder(r.st, store.BatcherOptions{})
	defer outcomes.Close()

	w.process(ctx, outcomes, stale)
	if r.up.calls() != 0 {
		t.Fatal("a worker whose lease was taken over sent the transfer")
	}
	w.process(ctx, outcomes, fresh)
	if r.up.calls() != 1 || r.status() != "succeeded" {
		t.Fatalf("calls %d status %s", r.up.calls(), r.status())
	}
}
