package withdraw

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	accountID      = sandbox.DefaultAccountID
	masterWallet   = sandbox.DefaultMasterWalletID
	infinityWallet = sandbox.DefaultInfinityWalletID
	destination    = "0x89F9Cfaa0dA076351DdfC6E320bD8df8b538dB17"
)

var dec = decimal.RequireFromString

// env is a fresh database, a fake Interlace over real HTTP (no webhooks: the
// polling fallback is what completes withdrawals here) and a Service on them.
type env struct {
	t       *testing.T
	store   *store.Store
	sandbox *sandbox.Server
	client  *interlace.Client
	svc     *Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Parallel()
	sb := sandbox.New(sandbox.Config{WithdrawalDelay: 100 * time.Millisecond, Logger: zap.NewNop(), StaticToken: "test-token"})
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
	return &env{t: t, store: st, sandbox: sb, client: client, svc: svc}
}

func (e *env) runner(owner string, hook Hook) *Runner {
	e.t.Helper()
	r, err := NewRunner(RunnerConfig{
		Owner: owner, AccountID: accountID, Lease: 400 * time.Millisecond, BaseDelay: 5 * time.Millisecond,
		MaxDelay: 20 * time.Millisecond, ConfirmInterval: 30 * time.Millisecond,
		Hook: hook,
	}, e.store, e.client, zaptest.NewLogger(e.t, zaptest.Level(zap.ErrorLevel)), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) withdraw(key, walletID, amount string) store.Withdrawal {
	e.t.Helper()
	w, created, err := e.svc.CreateWithdrawal(context.Background(), WithdrawalRequest{
		IdempotencyKey: key, WalletID: walletID, Amount: dec(amount), Currency: "USDC", Chain: "ETH", Address: destination,
	})
	if err != nil || !created {
		e.t.Fatalf("create withdrawal: created %v, %v", created, err)
	}
	return w
}

// drive runs r until the withdrawal ends (completed, failed, stopped or
// unresolved). Every wait on the way is bounded by the runner's MaxDelay (20ms)
// or the sandbox's Retry-After (1s on a 429), the Infinity discovery's backoff
// included (it follows the runner's knobs), so 20s is many times what even an
// unlucky run under load needs; a withdrawal still not ended is stuck, and the
// message says where.
func (e *env) drive(r *Runner, id uuid.UUID) store.Withdrawal {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var w store.Withdrawal
	for time.Now().Before(deadline) {
		if _, err := r.ProcessDue(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		var err error
		w, err = e.store.Withdrawal(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		switch w.Status {
		case store.WithdrawalCompleted, store.WithdrawalFailed, store.WithdrawalStopped, store.WithdrawalUnresolved:
			return w
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("withdrawal %s did not end: %s", id, describe(w))
	return store.Withdrawal{}
}

// describe is a withdrawal's state as a failure message needs it: where it
// stands, when it is due, how often it was tried, why it last stopped, and the
// events that led there.
func describe(w store.Withdrawal) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %s, step %s, run_at %s (in %s), attempts %d, last error %s %s", w.Status, w.Step,
		w.RunAt.UTC().Format(time.RFC3339Nano), time.Until(w.RunAt).Round(time.Millisecond), w.Attempts,
		derefS(w.LastErrorCode), derefS(w.LastError))
	for _, ev := range w.Events {
		fmt.Fprintf(&b, "\n\t%s %s -> %s at %s: %s", ev.At.UTC().Format("15:04:05.000"), derefS(ev.FromStatus), ev.ToStatus,
			ev.Step, ev.Reason)
	}
	return b.String()
}

// moved counts, on the sandbox ledger, how often each step's money actually moved.
type moved struct{ fund, trade, transfer int }

func (e *env) moved(w store.Withdrawal) (moved, sandbox.Ledger) {
	l := e.sandbox.Ledger()
	var m moved
	for _, t := range l.InternalTransfers {
		if t.ClientTransactionID == w.FundRequestID.String() {
			m.fund++
		}
	}
	for _, t := range l.Trades {
		if t.ReferenceID == w.TradeRequestID.String() {
			m.trade++
		}
	}
	for _, t := range l.BlockchainTransfers {
		if t.IdempotencyKey == w.TransferRequestID.String() {
			m.transfer++
		}
	}
	return m, l
}

func walletBalance(l sandbox.Ledger, id, cur string) decimal.Decimal {
	for _, w := range l.Wallets {
		if w.ID == id {
			return w.Balances[cur]
		}
	}
	return decimal.Zero
}

// The whole redemption from the master wallet (the guide's `to.id` = account id),
// every figure checked to the last unit against the sandbox ledger.
func TestWithdrawalFromMasterWallet(t *testing.T) {
	e := newEnv(t)
	before := e.sandbox.Ledger()
	w := e.withdraw("payout-1", accountID, "123.45")
	if w.ID != ids.WithdrawalID("payout-1") || w.Status != store.WithdrawalPending || w.Step != store.StepQuote {
		t.Fatalf("created %+v", w)
	}
	if w.FundRequestID != ids.WithdrawalStepID(w.ID, "fund") || w.TradeRequestID != ids.WithdrawalStepID(w.ID, "trade") ||
		w.TransferRequestID != ids.WithdrawalStepID(w.ID, "transfer") {
		t.Fatal("step request ids are not derived from the withdrawal id and the step")
	}
	w = e.drive(e.runner("r1", nil), w.ID)
	if w.Status != store.WithdrawalCompleted || w.Step != store.StepDone {
		t.Fatalf("withdrawal %s at %s: %v", w.Status, w.Step, w.LastError)
	}
	m, l := e.moved(w)
	if m != (moved{1, 1, 1}) {
		t.Fatalf("money moved %+v, want once each", m)
	}
	// 123.45 USD: trade fee 0.61725 USD (0.5%), 122.83275 USDC bought; the 0.2 USDC
	// network fee comes out of it (contract §11), so 122.63275 USDC are sent and the
	// master wallet's own USDC is not touched.
	if got := before.Infinity.Available.Sub(l.Infinity.Available); !got.Equal(dec("123.45")) {
		t.Fatalf("Infinity debited %s", got)
	}
	if got := walletBalance(l, masterWallet, "USDC").Sub(walletBalance(before, masterWallet, "USDC")); !got.IsZero() {
		t.Fatalf("master USDC moved by %s, want 0: the payout spent money it did not bring", got)
	}
	if got := walletBalance(l, masterWallet, "USD"); !got.IsZero() {
		t.Fatalf("master wallet keeps %s USD", got)
	}
	bt := l.BlockchainTransfers[0]
	if !bt.Amount.Equal(dec("122.63275")) || !bt.Fee.Equal(dec("0.2")) || bt.Address != destination || bt.Chain != "ETH" ||
		bt.WalletID != masterWallet || bt.Status != "Closed" {
		t.Fatalf("blockchain transfer %+v", bt)
	}
	if w.TxHash == nil || *w.TxHash != bt.TransactionHash || w.ChainStatus == nil || *w.ChainStatus != "Closed" {
		t.Fatalf("hash %v status %v, sandbox %s", w.TxHash, w.ChainStatus, bt.TransactionHash)
	}
	want := map[string][2]string{ // step -> amount, fee
		"quote": {"122.83275", "0.61725"}, "fee_preview": {"122.83275", "0.2"}, "fund": {"123.45", "0"},
		"trade": {"122.83275", "0.61725"}, "fee": {"122.83275", "0.2"}, "transfer": {"122.63275", "0.2"},
		"confirm": {"122.63275", ""},
	}
	if len(w.Steps) != len(want) {
		t.Fatalf("%d steps recorded: %+v", len(w.Steps), w.Steps)
	}
	for _, st := range w.Steps {
		wv := want[st.Step]
		if st.Amount == nil || !st.Amount.Equal(dec(wv[0])) {
			t.Errorf("%s amount %v, want %s", st.Step, st.Amount, wv[0])
		}
		if wv[1] != "" && (st.Fee == nil || !st.Fee.Equal(dec(wv[1]))) {
			t.Errorf("%s fee %v, want %s", st.Step, st.Fee, wv[1])
		}
	}
	trade, _ := w.StepResult("trade")
	if *trade.WalletID != masterWallet || *trade.UpstreamID != l.Trades[0].ID {
		t.Fatalf("trade step %+v", trade)
	}
	if w.BaseWalletID == nil || *w.BaseWalletID != masterWallet || w.InfinityWalletID == nil || *w.InfinityWalletID != infinityWallet {
		t.Fatalf("base wallet %v infinity %v", w.BaseWalletID, w.InfinityWalletID)
	}
	if c := l.IdempotencyConflicts; len(c) != 0 {
		t.Fatalf("idempotency conflicts %v", c)
	}
}

// Guide "Generate a Wallet Address" then a withdrawal from that user's wallet: step 1
// funds it, the trade buys into it (baseWalletId), step 5 sends from it, its own
// USDC paying the network fee.
func TestWithdrawalFromUserWallet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	wal, created, err := e.svc.ProvisionWallet(ctx, WalletRequest{UserRef: "user-7", Nickname: "Seven",
		Addresses: []AddressRequest{{"USDC", "ETH"}}})
	if err != nil || !created || len(wal.Addresses) != 1 {
		t.Fatalf("provision %+v %v %v", wal, created, err)
	}
	// A new user wallet holds no USDC at all: the network fee comes out of what the
	// trade buys, so the payout completes and leaves the wallet as it found it.
	before := e.sandbox.Ledger()
	w := e.withdraw("user-7-a", wal.ID, "50")
	w = e.drive(e.runner("r1", nil), w.ID)
	if w.Status != store.WithdrawalCompleted {
		t.Fatalf("%s at %s: %v", w.Status, w.Step, w.LastError)
	}
	m, l := e.moved(w)
	if m != (moved{1, 1, 1}) {
		t.Fatalf("money moved %+v", m)
	}
	if got := before.Infinity.Available.Sub(l.Infinity.Available); !got.Equal(dec("50")) {
		t.Fatalf("Infinity debited %s", got)
	}
	// 50 USD -> fee 0.25, 49.75 USDC bought; 0.2 withheld for the network fee, 49.55 sent.
	if got := walletBalance(l, wal.ID, "USDC"); !got.IsZero() {
		t.Fatalf("user wallet USDC %s, want 0", got)
	}
	if bt := l.BlockchainTransfers[0]; !bt.Amount.Equal(dec("49.55")) || !bt.Fee.Equal(dec("0.2")) {
		t.Fatalf("sent %s fee %s", bt.Amount, bt.Fee)
	}
	if l.Trades[0].WalletID != wal.ID || *w.BaseWalletID != wal.ID || l.BlockchainTransfers[0].WalletID != wal.ID {
		t.Fatalf("trade into %s, base %s, sent from %s; want the user's wallet %s", l.Trades[0].WalletID, *w.BaseWalletID,
			l.BlockchainTransfers[0].WalletID, wal.ID)
	}
	if w.UserRef == nil || *w.UserRef != "user-7" {
		t.Fatalf("user ref %v", w.UserRef)
	}
}

// The fee ceiling stops the withdrawal before any money moves: the guide's own 10
// USD example costs 0.25 (2.5%), over the default 2%.
func TestFeeCeilingStopsBeforeMoneyMoves(t *testing.T) {
	e := newEnv(t)
	before := e.sandbox.Ledger()
	w := e.withdraw("small", accountID, "10")
	w = e.drive(e.runner("r1", nil), w.ID)
	if w.Status != store.WithdrawalStopped || w.Step != store.StepFeePreview || w.LastErrorCode == nil || *w.LastErrorCode != "fee_limit" {
		t.Fatalf("%s at %s code %v", w.Status, w.Step, w.LastErrorCode)
	}
	if !strings.Contains(*w.LastError, "stopped before any money moved: fees 0.25 USDC (trade fee 0.05 USD + network fee 0.2 USDC) exceed SWEEPER_MAX_FEE_RATE 0.02 of 10 USD") {
		t.Fatalf("reason %q", *w.LastError)
	}
	l := e.sandbox.Ledger()
	if !l.Infinity.Available.Equal(before.Infinity.Available) || len(l.InternalTransfers) != 0 || len(l.Trades) != 0 ||
		len(l.BlockchainTransfers) != 0 {
		t.Fatalf("money moved: Infinity %s -> %s, %d transfers, %d trades, %d withdrawals", before.Infinity.Available,
			l.Infinity.Available, len(l.InternalTransfers), len(l.Trades), len(l.BlockchainTransfers))
	}
	fp, ok := w.StepResult(store.StepFeePreview)
	if !ok || !fp.Fee.Equal(dec("0.2")) {
		t.Fatalf("the numbers behind the stop are not recorded: %+v", fp)
	}
}

// A definite rejection ends the withdrawal with Interlace's code and message.
func TestRejectionFailsWithInterlaceCode(t *testing.T) {
	e := newEnv(t)
	w := e.withdraw("too-much", accountID, "60000") // the Infinity Account holds 56846.52
	w = e.drive(e.runner("r1", nil), w.ID)
	if w.Status != store.WithdrawalFailed || w.Step != store.StepFund || w.LastErrorCode == nil || *w.LastErrorCode != "010023" ||
		!strings.Contains(*w.LastError, "insufficient balance") {
		t.Fatalf("%s at %s: %v %v", w.Status, w.Step, w.LastErrorCode, w.LastError)
	}
	if m, _ := e.moved(w); m != (moved{}) {
		t.Fatalf("money moved %+v", m)
	}
	if err := e.store.RequeueWithdrawal(context.Background(), w.ID, "try again"); err != nil {
		t.Fatal(err)
	}
	w = e.drive(e.runner("r2", nil), w.ID)
	if w.Status != store.WithdrawalFailed || e.sandbox.Ledger().RequestsByIdempotencyKey[w.FundRequestID.String()] < 2 {
		t.Fatalf("requeue did not replay step 1 with its id: %s", w.Status)
	}
}

// Upstream faults (errors, and requests applied upstream whose answer is lost) are
// retried with the same ids until the withdrawal completes; nothing moves twice.
func TestFaultsAreRetriedWithoutMovingMoneyTwice(t *testing.T) {
	e := newEnv(t)
	e.sandbox.SetFaults(sandbox.Faults{ErrorRate: 0.3, TimeoutAfterCommitRate: 0.3})
	w := e.withdraw("flaky", accountID, "200")
	w = e.drive(e.runner("r1", nil), w.ID)
	if w.Status != store.WithdrawalCompleted {
		t.Fatalf("%s at %s: %v", w.Status, w.Step, w.LastError)
	}
	if m, l := e.moved(w); m != (moved{1, 1, 1}) || len(l.IdempotencyConflicts) != 0 {
		t.Fatalf("money moved %+v, conflicts %v", m, l.IdempotencyConflicts)
	}
}

// A failing Infinity discovery sends nothing for the fund step: its retries
// follow the runner's backoff (not a slower schedule of the resolver's own,
// which once kept a flaky run's withdrawal waiting past the test's window), and
// they do not make the step "maybe moved", so a later definite rejection of the
// transfer is a failure, not unresolved.
func TestInfinityDiscoveryFailuresFollowRunnerBackoff(t *testing.T) {
	e := newEnv(t)
	w := e.withdraw("discovery", accountID, "60000") // the Infinity Account holds 56846.52
	// The upstream fails from the fund step on: the quote and the fee preview are done.
	hook := func(_ context.Context, _ uuid.UUID, step string, at HookPoint) error {
		if step == store.StepFeePreview && at == AfterRecord {
			e.sandbox.SetFaults(sandbox.Faults{ErrorRate: 1})
		}
		return nil
	}
	r := e.runner("r1", hook)
	maxDelay := r.cfg.MaxDelay
	nextAttempt := regexp.MustCompile(`next attempt in (\S+?):`)
	failures := 0
	for deadline := time.Now().Add(10 * time.Second); failures < 3 && time.Now().Before(deadline); {
		if _, err := r.ProcessDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		cur, err := e.store.Withdrawal(context.Background(), w.ID)
		if err != nil {
			t.Fatal(err)
		}
		failures = 0
		for _, ev := range cur.Events {
			if strings.Contains(ev.Reason, "discover the Infinity Account balance") {
				failures++
			}
			// A refusal within the resolver's backoff says how long it still holds.
			m := nextAttempt.FindStringSubmatch(ev.Reason)
			if m == nil {
				continue
			}
			if d, err := time.ParseDuration(m[1]); err != nil || d > maxDelay {
				t.Fatalf("discovery backs off %s (%v), beyond the runner's MaxDelay %s: %s", m[1], err, maxDelay, describe(cur))
			}
		}
		time.Sleep(time.Millisecond)
	}
	if failures < 3 {
		t.Fatalf("%d failed discoveries recorded, want 3: the test does not exercise them", failures)
	}
	e.sandbox.SetFaults(sandbox.Faults{})
	w = e.drive(r, w.ID)
	if w.Status != store.WithdrawalFailed || w.Step != store.StepFund || w.LastErrorCode == nil || *w.LastErrorCode != "010023" {
		t.Fatalf("want failed at fund with 010023 (nothing was sent while discovery failed): %s", describe(w))
	}
	if m, _ := e.moved(w); m != (moved{}) {
		t.Fatalf("money moved %+v", m)
	}
}

var errInjected = errors.New("injected crash")

// A crash after each step, both after the upstream call (nothing recorded: the
// worst case) and after the record, then a fresh runner resumes: every step's money
// moved exactly once on the sandbox ledger, even where its request was sent twice.
func TestCrashAfterEachStepResumes(t *testing.T) {
	t.Parallel()
	steps := []string{store.StepQuote, store.StepFeePreview, store.StepFund, store.StepTrade, store.StepFee,
		store.StepTransfer, store.StepConfirm}
	for _, step := range steps {
		for _, at := range []HookPoint{AfterCall, AfterRecord} {
			if step == store.StepConfirm && at == AfterRecord {
				continue // confirm ends the withdrawal: there is nothing after its record
			}
			t.Run(fmt.Sprintf("%s/%s", step, at), func(t *testing.T) {
				e := newEnv(t)
				before := e.sandbox.Ledger()
				w := e.withdraw("crash", accountID, "100")
				var crashed atomic.Bool
				hook := func(_ context.Context, _ uuid.UUID, s string, p HookPoint) error {
					if s == step && p == at && crashed.CompareAndSwap(false, true) {
						return errInjected
					}
					return nil
				}
				dead := e.runner("doomed", hook)
				deadline := time.Now().Add(10 * time.Second)
				for !crashed.Load() && time.Now().Before(deadline) {
					if _, err := dead.ProcessDue(context.Background()); err != nil {
						t.Fatal(err)
					}
					time.Sleep(10 * time.Millisecond)
				}
				if !crashed.Load() {
					t.Fatal("the crash point was never reached")
				}
				mid, _ := e.store.Withdrawal(context.Background(), w.ID)
				if mid.Status != store.WithdrawalRunning {
					t.Fatalf("after the crash the withdrawal is %s, want still leased", mid.Status)
				}
				// A fresh process takes over once the dead one's lease expires.
				w = e.drive(e.runner("fresh", nil), w.ID)
				if w.Status != store.WithdrawalCompleted {
					t.Fatalf("%s at %s: %v", w.Status, w.Step, w.LastError)
				}
				m, l := e.moved(w)
				if m != (moved{1, 1, 1}) {
					t.Fatalf("money moved %+v, want exactly once per step", m)
				}
				if got := before.Infinity.Available.Sub(l.Infinity.Available); !got.Equal(dec("100")) {
					t.Fatalf("Infinity debited %s", got)
				}
				if got := walletBalance(l, masterWallet, "USDC").Sub(walletBalance(before, masterWallet, "USDC")); !got.IsZero() {
					t.Fatalf("master USDC moved by %s: the payout spent money it did not bring", got)
				}
				key := map[string]uuid.UUID{store.StepFund: w.FundRequestID, store.StepTrade: w.TradeRequestID,
					store.StepTransfer: w.TransferRequestID}[step]
				if at == AfterCall && key != uuid.Nil {
					if n := l.RequestsByIdempotencyKey[key.String()]; n != 2 {
						t.Fatalf("step %s request sent %d times, want 2 (the replay after the crash)", step, n)
					}
				}
				if len(l.IdempotencyConflicts) != 0 {
					t.Fatalf("replays differed from the first request: %v", l.IdempotencyConflicts)
				}
				resumed := false
				for _, ev := range w.Events {
					if strings.HasPrefix(ev.Reason, "lease expired; resumed by fresh") && ev.Step == map[HookPoint]string{
						AfterCall: step, AfterRecord: next(step)}[at] {
						resumed = true
					}
				}
				if !resumed {
					t.Fatalf("no resumption event at the right step: %+v", w.Events)
				}
			})
		}
	}
}

func next(step string) string {
	order := []string{store.StepQuote, store.StepFeePreview, store.StepFund, store.StepTrade, store.StepFee,
		store.StepTransfer, store.StepConfirm, store.StepDone}
	for i, s := range order {
		if s == step {
			return order[i+1]
		}
	}
	return ""
}

// A repeated request returns the same withdrawal; the same key with another body
// is refused; an unknown wallet is refused before anything is stored.
func TestCreateWithdrawalIdempotency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := WithdrawalRequest{IdempotencyKey: "same", WalletID: accountID, Amount: dec("100"), Currency: "USDC",
		Chain: "eth", Address: destination}
	a, created, err := e.svc.CreateWithdrawal(ctx, req)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	req.Amount = dec("100.00") // the same amount, written differently
	b, created, err := e.svc.CreateWithdrawal(ctx, req)
	if err != nil || created || b.ID != a.ID {
		t.Fatalf("repeat: %v %v %v", b.ID, created, err)
	}
	req.Amount = dec("101")
	if _, _, err := e.svc.CreateWithdrawal(ctx, req); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "amount") {
		t.Fatalf("different body: %v", err)
	}
	req.IdempotencyKey, req.WalletID = "other", "not-a-wallet"
	if _, _, err := e.svc.CreateWithdrawal(ctx, req); code(err) != "unknown_wallet" {
		t.Fatalf("unknown wallet: %v", err)
	}
	ws, err := e.store.ListWithdrawals(ctx, store.WithdrawalFilter{})
	if err != nil || len(ws) != 1 {
		t.Fatalf("%d withdrawals stored: %v", len(ws), err)
	}
}
