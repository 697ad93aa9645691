package withdraw

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/jobs"
	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/store"
)

// HookPoint is where in a step a Hook is called.
type HookPoint int

// Hook points.
const (
	// AfterCall: the step's upstream call answered; nothing is recorded yet. A crash
	// here is the worst case: the step's money moved but the record does not say so.
	AfterCall HookPoint = iota
	// AfterRecord: the step's result is committed; the next step has not started.
	AfterRecord
)

func (p HookPoint) String() string {
	if p == AfterCall {
		return "after-call"
	}
	return "after-record"
}

// Hook is called at each step boundary. A non-nil error makes the runner drop the
// withdrawal on the spot, holding its lease, exactly as a crashed process would;
// tests use it to inject crashes. Production leaves it nil.
type Hook func(ctx context.Context, id uuid.UUID, step string, at HookPoint) error

// RunnerConfig tunes the Runner. Zero values take the defaults in brackets.
type RunnerConfig struct {
	Owner     string // names this runner in leases and events [required]
	AccountID string // [required]
	// SourceCurrency is the Infinity Account currency paid from [USD].
	SourceCurrency string
	// InfinityWalletID skips discovery (ListInfinityWallets) when set.
	InfinityWalletID string
	// Concurrency is how many withdrawals run at once [1]. Withdrawals are rare and
	// step 3 buys into "the wallet step 1 funded": running one at a time per process
	// keeps one withdrawal's steps 1 and 3 from interleaving with another's.
	Concurrency int
	// Lease is how long a claim holds [60s]; it must exceed the upstream timeout.
	// Each recorded step extends it.
	Lease time.Duration
	// BaseDelay and MaxDelay bound the retry backoff [1s, 5m], the Infinity
	// balance discovery's included: shorter retries a flaky upstream sooner,
	// longer asks it less often.
	BaseDelay, MaxDelay time.Duration
	// AttemptTimeout is the longest one upstream call can take (token fetch,
	// request, a refresh after a 401, the request again). A step starts only
	// while the lease covers that much; otherwise the lease is extended first,
	// and when it is gone nothing is sent [0: no check].
	AttemptTimeout time.Duration
	// PendingMaxAge is how long a money-moving step may get nothing but "in
	// progress" answers before the withdrawal is unresolved [1h]
	// (SWEEPER_PENDING_MAX_AGE; such answers back off like any other retry).
	PendingMaxAge time.Duration
	// PollInterval is how often due withdrawals are looked for [1s]; Wake starts
	// one at once.
	PollInterval time.Duration
	// ConfirmInterval is how often a Pending on-chain transfer is polled [10s]
	// (the webhook usually completes it first).
	ConfirmInterval time.Duration
	// DrainTimeout is how long Run waits for running withdrawals at shutdown [25s].
	DrainTimeout time.Duration
	// Hook, for tests: see Hook.
	Hook Hook
}

func (c *RunnerConfig) defaults() error {
	if c.Owner == "" || c.AccountID == "" {
		return errors.New("withdraw: runner Owner and AccountID are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.SourceCurrency == "" {
		c.SourceCurrency = "USD"
	}
	c.SourceCurrency = strings.ToUpper(c.SourceCurrency)
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	def(&c.Lease, 60*time.Second)
	def(&c.BaseDelay, time.Second)
	def(&c.MaxDelay, 5*time.Minute)
	def(&c.PendingMaxAge, time.Hour)
	def(&c.PollInterval, time.Second)
	def(&c.ConfirmInterval, 10*time.Second)
	def(&c.DrainTimeout, 25*time.Second)
	return nil
}

// Runner executes withdrawals.
type Runner struct {
	cfg     RunnerConfig
	store   *store.Store
	up      Upstream
	log     *zap.Logger
	metrics *metrics.Metrics
	wake    chan struct{}

	infinity *interlace.InfinityWalletResolver
}

// NewRunner builds a Runner.
func NewRunner(cfg RunnerConfig, st *store.Store, up Upstream, log *zap.Logger, m *metrics.Metrics) (*Runner, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	// Discovery failures back off on the runner's own schedule: the fund step is
	// retried at BaseDelay..MaxDelay, and a resolver keeping a stricter one of its
	// own (up to a minute) would refuse those retries unseen by these knobs.
	infinity := interlace.NewInfinityWalletResolver(up, cfg.AccountID, cfg.SourceCurrency, cfg.InfinityWalletID).
		WithBackoff(func(failures int) time.Duration { return jobs.Backoff(failures, cfg.BaseDelay, cfg.MaxDelay, 0) })
	return &Runner{cfg: cfg, store: st, up: up, log: log, metrics: m, wake: make(chan struct{}, 1),
		infinity: infinity}, nil
}

// Wake makes a running Run look for due withdrawals now. It never blocks.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and executes withdrawals until ctx ends, then waits up to
// DrainTimeout for the running ones and hands back any lease it still holds.
// It wakes on Wake (this process) and on the store's withdrawals channel (a
// withdrawal created or requeued by any replica).
func (r *Runner) Run(ctx context.Context) error {
	listenCtx, stopListen := context.WithCancel(ctx)
	defer stopListen()
	go r.store.Listen(listenCtx, store.WithdrawalsChannel, r.wake, func(err error) {
		r.log.Debug("listen connection lost", zap.Error(err))
	})
	loop := jobs.Loop[store.WithdrawalJob]{
		Name: "withdrawals", Concurrency: r.cfg.Concurrency, PollInterval: r.cfg.PollInterval,
		DrainTimeout: r.cfg.DrainTimeout, Wake: r.wake, Log: r.log,
		Claim:   r.claim,
		Process: r.process,
		Release: func(ctx context.Context) (int, error) { return r.store.ReleaseWithdrawalLeases(ctx, r.cfg.Owner) },
	}
	return loop.Run(ctx)
}

// ProcessDue claims the withdrawals due now (up to Concurrency) and runs each until
// it completes, waits or stops, one after the other. It is Run's body without the
// loop, for tests and one-shot tools.
func (r *Runner) ProcessDue(ctx context.Context) (int, error) {
	jobs, err := r.claim(ctx, r.cfg.Concurrency)
	for _, job := range jobs {
		r.process(ctx, job)
	}
	return len(jobs), err
}

func (r *Runner) claim(ctx context.Context, limit int) ([]store.WithdrawalJob, error) {
	// The Infinity balance id is discovered lazily, by the fund step, so that an idle
	// runner makes no upstream call at all.
	infinity := r.infinity.Known()
	return r.store.ClaimWithdrawals(ctx, store.WithdrawalClaim{
		Owner: r.cfg.Owner, Limit: limit, Lease: r.cfg.Lease, InfinityWalletID: infinity,
	})
}

// infinityWallet returns the Infinity balance id to pay from, discovering it once.
func (r *Runner) infinityWallet(ctx context.Context) (string, error) {
	id, err := r.infinity.ID(ctx)
	if err != nil {
		return "", fmt.Errorf("withdraw: %w", err)
	}
	return id, nil
}

// errCrashed is how process learns that the hook simulated a crash.
var errCrashed = errors.New("withdraw: crash injected by hook")

func (r *Runner) hook(ctx context.Context, job *store.WithdrawalJob, step string, at HookPoint) error {
	if r.cfg.Hook == nil {
		return nil
	}
	if err := r.cfg.Hook(ctx, job.ID, step, at); err != nil {
		return fmt.Errorf("%w: %w", errCrashed, err)
	}
	return nil
}

// process runs a claimed withdrawal from its current step until it must wait
// (retry, chain confirmation) or ends.
func (r *Runner) process(ctx context.Context, job store.WithdrawalJob) {
	log := r.log.With(zap.String("withdrawal_id", job.ID.String()), zap.String("idempotency_key", job.IdempotencyKey))
	if job.Reclaimed {
		log.Warn("resuming withdrawal after an expired lease", zap.String("step", job.Step), zap.Int("attempt", job.Attempts))
	}
	justTransferred := false
	for job.Step != store.StepDone {
		step, attempt := job.Step, job.Attempts
		if !r.leaseCovers(ctx, &job) {
			log.Warn("withdrawal lease lost before the step; another runner owns it", zap.String("step", step))
			return
		}
		o := r.runStep(ctx, &job, justTransferred)
		if err := r.hook(ctx, &job, step, AfterCall); err != nil {
			log.Warn("withdrawal abandoned", zap.String("step", step), zap.Error(err))
			return
		}
		// Recording must survive the runner's own shutdown: the step already happened.
		recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := r.record(recCtx, &job, o)
		cancel()
		l := log.With(zap.String("step", step), zap.String("outcome", o.kind.String()), zap.Int("attempt", attempt))
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			r.metrics.Withdrawal(step, "lease_lost")
			l.Warn("withdrawal lease lost; another runner owns it")
			return
		case err != nil:
			// Not recorded: the lease expires and the step is replayed under the same id.
			r.metrics.Withdrawal(step, "record_failed")
			l.Error("record withdrawal step", zap.Error(err))
			return
		}
		r.metrics.Withdrawal(step, o.kind.String())
		switch o.kind {
		case outcomeAdvance:
			l.Info("withdrawal step done", zap.String("next", job.Step), zap.String("reason", o.record.Reason))
			if err := r.hook(ctx, &job, step, AfterRecord); err != nil {
				log.Warn("withdrawal abandoned", zap.String("step", step), zap.Error(err))
				return
			}
			justTransferred = step == store.StepTransfer
			continue
		case outcomeRetry:
			l.Warn("withdrawal step will run again", zap.Duration("in", o.delay), zap.String("code", o.code),
				zap.String("reason", o.reason))
		case outcomeWait:
			l.Info("withdrawal waits for the chain", zap.Duration("poll_in", o.delay), zap.String("chain_status", o.chainStatus))
		case outcomeUnresolved:
			l.Error("withdrawal unresolved: money may have moved; an operator must resolve it", zap.String("code", o.code),
				zap.String("reason", o.reason))
		case outcomeFail, outcomeStop:
			l.Error("withdrawal ended", zap.String("status", o.status), zap.String("code", o.code), zap.String("reason", o.reason))
		case outcomeComplete:
			l.Info("withdrawal completed", zap.String("transaction_hash", o.txHash))
		}
		return
	}
}

// leaseCovers makes sure the lease outlasts one more upstream call before a
// step starts, extending it when it is short; false means another runner owns
// the withdrawal now.
func (r *Runner) leaseCovers(ctx context.Context, job *store.WithdrawalJob) bool {
	if r.cfg.AttemptTimeout <= 0 || time.Until(job.LeaseUntil) > r.cfg.AttemptTimeout {
		return true
	}
	return r.store.ExtendWithdrawalLease(ctx, job, r.cfg.Lease) == nil
}

func (r *Runner) record(ctx context.Context, job *store.WithdrawalJob, o outcome) error {
	switch o.kind {
	case outcomeAdvance:
		o.record.Lease = r.cfg.Lease
		return r.store.RecordWithdrawalStep(ctx, job, o.record)
	case outcomeRetry:
		return r.store.RetryWithdrawal(ctx, *job, o.delay, o.code, o.reason, o.retry)
	case outcomeUnresolved:
		return r.store.UnresolveWithdrawal(ctx, *job, o.code, o.reason, o.result)
	case outcomeWait:
		return r.store.WaitWithdrawal(ctx, *job, o.delay, o.chainStatus, o.txHash, o.note)
	case outcomeFail, outcomeStop:
		return r.store.FailWithdrawal(ctx, *job, o.status, o.code, o.reason, o.result)
	case outcomeComplete:
		return r.store.CompleteWithdrawal(ctx, *job, o.chainStatus, o.txHash, *o.result)
	}
	return fmt.Errorf("withdraw: unknown outcome %d", o.kind)
}
