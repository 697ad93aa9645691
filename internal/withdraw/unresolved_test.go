package withdraw

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
)

const (
	pathFund     = "/open-api/v3/business/transfer/internal"
	pathTrade    = "/open-api/v3/cryptoconnect/convert/trades"
	pathTransfer = "/open-api/v3/cryptoconnect/transfers"
	proxyTimeout = 300 * time.Millisecond
)

// scripted is one scripted answer. forward sends the request on to the sandbox
// first (so the money moves there) and gives its answer; the answer may then be
// replaced.
type scripted struct {
	forward bool
	hang    bool                                            // hold the answer past the client's timeout
	answer  func(w http.ResponseWriter, sandboxBody []byte) // nil: the sandbox's own answer
}

// scriptedProxy is a real HTTP server in front of the sandbox: requests to path
// get the scripted answers in order (the last repeats); everything else, and
// every request once the script is empty, goes to the sandbox unchanged.
type scriptedProxy struct {
	mu    sync.Mutex
	path  string
	steps []scripted
	n     int
}

func (p *scriptedProxy) handler(sb string) http.Handler {
	target, _ := url.Parse(sb)
	rp := httputil.NewSingleHostReverseProxy(target)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != p.path {
			rp.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		st := p.steps[min(p.n, len(p.steps)-1)]
		p.n++
		p.mu.Unlock()
		var got []byte
		if st.forward {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			got = rec.Body.Bytes()
			if st.answer == nil && !st.hang {
				w.WriteHeader(rec.Code)
				w.Write(got)
				return
			}
		}
		if st.hang {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * proxyTimeout):
			}
			return
		}
		st.answer(w, got)
	})
}

func (p *scriptedProxy) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func businessAnswer(code, msg string) func(http.ResponseWriter, []byte) {
	return func(w http.ResponseWriter, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
	}
}

// asPending rewrites the sandbox's success answer to status PENDING.
func asPending(w http.ResponseWriter, body []byte) {
	var env map[string]any
	_ = json.Unmarshal(body, &env)
	if d, ok := env["data"].(map[string]any); ok {
		d["status"] = "PENDING"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(env)
}

func newProxiedEnv(t *testing.T, p *scriptedProxy, pendingMaxAge time.Duration) (*env, *Runner) {
	t.Helper()
	t.Parallel()
	sb := sandbox.New(sandbox.Config{WithdrawalDelay: 100 * time.Millisecond, Logger: zap.NewNop(), StaticToken: "test-token"})
	sbSrv := httptest.NewServer(sb.Handler())
	proxy := httptest.NewServer(p.handler(sbSrv.URL))
	t.Cleanup(func() { proxy.Close(); sb.Close(); sbSrv.Close() })
	client, err := interlace.New(interlace.Config{BaseURL: proxy.URL, Tokens: interlace.StaticToken("test-token"), Timeout: proxyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pgtest.NewPool(t))
	svc, err := NewService(Config{AccountID: accountID, MaxFeeRate: dec("0.02")}, st, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, sandbox: sb, client: client, svc: svc}
	r, err := NewRunner(RunnerConfig{
		Owner: "r1", AccountID: accountID, Lease: 5 * time.Second, BaseDelay: 20 * time.Millisecond,
		MaxDelay: 80 * time.Millisecond, ConfirmInterval: 30 * time.Millisecond, PendingMaxAge: pendingMaxAge,
	}, st, client, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, r
}

// driveTo runs r until the withdrawal is completed, failed, stopped or unresolved.
func driveTo(e *env, r *Runner, w store.Withdrawal) store.Withdrawal {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.ProcessDue(e.t.Context()); err != nil {
			e.t.Fatal(err)
		}
		got, err := e.store.Withdrawal(e.t.Context(), w.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		switch got.Status {
		case store.WithdrawalCompleted, store.WithdrawalFailed, store.WithdrawalStopped, store.WithdrawalUnresolved:
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("withdrawal %s did not end", w.ID)
	return w
}

// TestWithdrawalUnknownThenRejectedIsUnresolved: each money-moving step under
// contract §11. A step whose request may have been applied (its answer was lost)
// and whose replay is then refused is never failed: the withdrawal stops
// unresolved, at that step, and nothing later runs.
func TestWithdrawalUnknownThenRejectedIsUnresolved(t *testing.T) {
	for _, tc := range []struct {
		name, path, step string
		steps            []scripted
		movedFund        int // what the sandbox ledger must show
	}{
		{"FundAppliedThenDuplicate", pathFund, store.StepFund,
			[]scripted{{forward: true, hang: true}, {answer: businessAnswer("100409", "duplicate clientTransactionId")}}, 1},
		{"FundTimeoutThenInsufficientBalance", pathFund, store.StepFund,
			[]scripted{{hang: true}, {answer: businessAnswer("010023", "insufficient balance")}}, 0},
		{"TradeAppliedThenDuplicate", pathTrade, store.StepTrade,
			[]scripted{{forward: true, hang: true}, {answer: businessAnswer("100409", "duplicate referenceId")}}, 1},
		{"TransferAppliedThenDuplicate", pathTransfer, store.StepTransfer,
			[]scripted{{forward: true, hang: true}, {answer: businessAnswer("100409", "duplicate idempotencyKey")}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &scriptedProxy{path: tc.path, steps: tc.steps}
			e, r := newProxiedEnv(t, p, time.Hour)
			w := driveTo(e, r, e.withdraw("k-"+tc.name, accountID, "200"))
			if w.Status != store.WithdrawalUnresolved || w.Step != tc.step || w.LastError == nil ||
				!strings.Contains(*w.LastError, "outcome is unknown") {
				t.Fatalf("%s at %s: %v", w.Status, w.Step, w.LastError)
			}
			if p.calls() != 2 {
				t.Fatalf("%d calls to %s", p.calls(), tc.path)
			}
			m, _ := e.moved(w)
			if m.fund != tc.movedFund {
				t.Fatalf("moved %+v", m)
			}
			if _, n, err := e.store.UnresolvedCounts(e.t.Context()); err != nil || n != 1 {
				t.Fatalf("unresolved withdrawals %d %v", n, err)
			}
		})
	}
}

// TestWithdrawalRejectionFirstFails: with nothing unknown before it, a
// rejection is failed, even one whose message contains "processing" (no longer
// read as "in progress", so not retried forever).
func TestWithdrawalRejectionFirstFails(t *testing.T) {
	p := &scriptedProxy{path: pathFund, steps: []scripted{{answer: func(w http.ResponseWriter, _ []byte) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"code":"010001","message":"amount below the processing minimum"}`)
	}}}}
	e, r := newProxiedEnv(t, p, time.Hour)
	w := driveTo(e, r, e.withdraw("k", accountID, "200"))
	if w.Status != store.WithdrawalFailed || w.Step != store.StepFund || p.calls() != 1 {
		t.Fatalf("%s at %s after %d calls: %v", w.Status, w.Step, p.calls(), w.LastError)
	}
}

// TestWithdrawalPendingForeverIsUnresolved: a trade Interlace keeps answering
// PENDING (it was in fact applied) is replayed with backoff, then unresolved
// after SWEEPER_PENDING_MAX_AGE; the fee and transfer steps never run.
func TestWithdrawalPendingForeverIsUnresolved(t *testing.T) {
	p := &scriptedProxy{path: pathTrade, steps: []scripted{{forward: true, answer: asPending}}}
	e, r := newProxiedEnv(t, p, 600*time.Millisecond)
	r.cfg.MaxDelay = 10 * time.Second // exponential from 20 ms, uncapped within the test
	w := driveTo(e, r, e.withdraw("k", accountID, "200"))
	if w.Status != store.WithdrawalUnresolved || w.Step != store.StepTrade || !strings.Contains(*w.LastError, "in-progress") {
		t.Fatalf("%s at %s: %v", w.Status, w.Step, w.LastError)
	}
	if c := p.calls(); c < 3 || c > 9 {
		t.Fatalf("%d trade calls in 600ms: not the normal backoff", c)
	}
	if m, _ := e.moved(w); m.transfer != 0 || m.trade != 1 {
		t.Fatalf("moved %+v", m)
	}
}

// TestPayoutFromEmptyMasterWallet: the guide's payout from the master wallet (the
// account id as to.id) when that wallet holds nothing at all (the sandbox's
// EmptyMaster, SANDBOX_FUND_MASTER=false) completes every step and spends nothing
// it did not bring: the network fee comes out of what the trade bought
// (contract §11).
func TestPayoutFromEmptyMasterWallet(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{EmptyMaster: true, WithdrawalDelay: 100 * time.Millisecond, Logger: zap.NewNop(),
		StaticToken: "test-token"})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); srv.Close() })
	client, err := interlace.New(interlace.Config{BaseURL: srv.URL, Tokens: interlace.StaticToken("test-token"), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pgtest.NewPool(t))
	svc, err := NewService(Config{AccountID: accountID, MaxFeeRate: dec("0.02")}, st, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, sandbox: sb, client: client, svc: svc}
	before := e.sandbox.Ledger()
	if got := walletBalance(before, masterWallet, "USDC"); !got.IsZero() {
		t.Fatalf("master wallet still holds %s USDC", got)
	}
	w := e.drive(e.runner("r1", nil), e.withdraw("empty-master", accountID, "123.45").ID)
	if w.Status != store.WithdrawalCompleted {
		t.Fatalf("%s at %s: %v", w.Status, w.Step, w.LastError)
	}
	m, l := e.moved(w)
	if m != (moved{1, 1, 1}) {
		t.Fatalf("money moved %+v, want once per step", m)
	}
	for _, step := range []string{store.StepQuote, store.StepFeePreview, store.StepFund, store.StepTrade, store.StepFee,
		store.StepTransfer, store.StepConfirm} {
		if _, ok := w.StepResult(step); !ok {
			t.Errorf("step %s not recorded", step)
		}
	}
	if got := walletBalance(l, masterWallet, "USDC"); !got.IsZero() {
		t.Fatalf("master wallet USDC after the payout: %s, want 0", got)
	}
	if got := walletBalance(l, masterWallet, "USD"); !got.IsZero() {
		t.Fatalf("master wallet keeps %s USD", got)
	}
	bt := l.BlockchainTransfers[0]
	bought := l.Trades[0].BaseAmount
	if !bt.Amount.Add(bt.Fee).Equal(bought) || !bt.Amount.Equal(dec("122.63275")) {
		t.Fatalf("sent %s + fee %s, bought %s", bt.Amount, bt.Fee, bought)
	}
	if got := before.Infinity.Available.Sub(l.Infinity.Available); !got.Equal(dec("123.45")) {
		t.Fatalf("Infinity debited %s", got)
	}
}

// TestWithdrawalAnswerNotMatchingTheRequestIsUnresolved: a money step that
// answers success about other money (another currency bought, another amount
// moved) is never booked and never failed.
func TestWithdrawalAnswerNotMatchingTheRequestIsUnresolved(t *testing.T) {
	rewrite := func(field string, v any) func(http.ResponseWriter, []byte) {
		return func(w http.ResponseWriter, body []byte) {
			var env map[string]any
			_ = json.Unmarshal(body, &env)
			d := env["data"].(map[string]any)
			if leg, sub, ok := strings.Cut(field, "."); ok {
				d[leg].(map[string]any)[sub] = v
			} else {
				d[field] = v
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(env)
		}
	}
	for _, tc := range []struct {
		name, path, step, field string
		value                   any
	}{
		{"TradeBoughtAnotherCurrency", pathTrade, store.StepTrade, "baseCurrency", "USDT"},
		{"FundMovedAnotherAmount", pathFund, store.StepFund, "from.amount", "2000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &scriptedProxy{path: tc.path, steps: []scripted{{forward: true, answer: rewrite(tc.field, tc.value)}}}
			e, r := newProxiedEnv(t, p, time.Hour)
			w := driveTo(e, r, e.withdraw("k", accountID, "200"))
			if w.Status != store.WithdrawalUnresolved || w.Step != tc.step || w.LastErrorCode == nil || *w.LastErrorCode != "mismatch" {
				t.Fatalf("%s at %s: %v %v", w.Status, w.Step, w.LastErrorCode, w.LastError)
			}
		})
	}
}

// TestStepStartsOnlyUnderALiveLease: a runner whose lease was taken over sends
// nothing; one whose lease is short of one attempt extends it first.
func TestStepStartsOnlyUnderALiveLease(t *testing.T) {
	p := &scriptedProxy{path: "/open-api/v3/cryptoconnect/convert/estimate-quote", steps: []scripted{{forward: true}}}
	e, r := newProxiedEnv(t, p, time.Hour)
	r.cfg.AttemptTimeout = 10 * time.Second
	w := e.withdraw("k", accountID, "200")
	claim := func(owner string, lease time.Duration) store.WithdrawalJob {
		jobs, err := e.store.ClaimWithdrawals(t.Context(), store.WithdrawalClaim{Owner: owner, Limit: 1, Lease: lease})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim %v %v", jobs, err)
		}
		return jobs[0]
	}
	stale := claim("stale", 50*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	fresh := claim("other", time.Second) // shorter than one attempt: extended before the step
	r.process(t.Context(), stale)
	if p.calls() != 0 {
		t.Fatal("a runner whose lease was taken over called Interlace")
	}
	r.process(t.Context(), fresh)
	if p.calls() != 1 {
		t.Fatalf("%d quote calls", p.calls())
	}
	got, _ := e.store.Withdrawal(t.Context(), w.ID)
	if got.Step == store.StepQuote {
		t.Fatalf("the live runner did not run the quote: %s at %s", got.Status, got.Step)
	}
}
