// Package sweep moves final deposits into the merchant's Infinity Account. A job is
// claimed with a lease (SELECT … FOR UPDATE SKIP LOCKED), sent upstream under its
// deterministic clientTransactionId, and its outcome recorded. Whatever happens
// between those steps (crash, timeout, a second replica), the only thing that can
// ever be repeated is the identical idempotent request.
package sweep

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/jobs"
	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/store"
)

// maxClaim bounds one claim statement, whatever the concurrency.
const maxClaim = 256

// statsInterval is how often the worker looks whether the sweeps table is young
// and changed enough to analyze (store.AnalyzeYoungSweeps): one catalog read.
const statsInterval = 2 * time.Second

// Upstream is what the worker needs from Interlace; *interlace.Client satisfies it.
type Upstream interface {
	InternalTransfer(ctx context.Context, req interlace.InternalTransferRequest) (*interlace.InternalTransfer, error)
	ListInfinityWallets(ctx context.Context, accountID string) ([]interlace.InfinityWallet, error)
}

// Config tunes the worker. Zero values take the defaults in brackets.
type Config struct {
	// Owner names this worker in leases and audit rows [required].
	Owner string
	// AccountID is the merchant account the Infinity balance belongs to [required].
	AccountID string
	// TargetCurrency is the Infinity balance currency [USD].
	TargetCurrency string
	// InfinityWalletID skips discovery when set.
	InfinityWalletID string
	// Concurrency is how many transfers may be in flight at once [32]. With an
	// upstream latency L, throughput is about Concurrency/L.
	Concurrency int
	// Lease is how long a claim holds [60s]; it must exceed the upstream timeout.
	Lease time.Duration
	// BaseDelay is the first retry delay before jitter [1s]; MaxDelay caps the
	// exponential backoff [5m].
	BaseDelay, MaxDelay time.Duration
	// PendingMaxAge is how long a sweep may get nothing but "in progress"/PENDING
	// answers before it is unresolved [1h] (SWEEPER_PENDING_MAX_AGE). Longer waits
	// out a slow upstream; shorter hands a stuck transfer to a person sooner.
	PendingMaxAge time.Duration
	// AttemptTimeout is the longest one attempt can take (token fetch, request, one
	// refresh after a 401, the request again). An attempt starts only while the
	// lease covers that much; otherwise the lease is extended first [0: no check].
	AttemptTimeout time.Duration
	// PollInterval is the fallback when no NOTIFY arrives (retries falling due,
	// a lost LISTEN connection) [500ms].
	PollInterval time.Duration
	// DrainTimeout is how long Run waits for in-flight transfers after its context
	// ends before abandoning them to lease expiry [25s].
	DrainTimeout time.Duration
}

func (c *Config) defaults() error {
	if c.Owner == "" || c.AccountID == "" {
		return errors.New("sweep: Owner and AccountID are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.TargetCurrency == "" {
		c.TargetCurrency = "USD"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	def(&c.Lease, 60*time.Second)
	def(&c.BaseDelay, time.Second)
	def(&c.MaxDelay, 5*time.Minute)
	def(&c.PendingMaxAge, time.Hour)
	def(&c.PollInterval, 500*time.Millisecond)
	def(&c.DrainTimeout, 25*time.Second)
	return nil
}

// Worker runs sweeps.
type Worker struct {
	cfg     Config
	store   *store.Store
	up      Upstream
	log     *zap.Logger
	metrics *metrics.Metrics

	infinity *interlace.InfinityWalletResolver
}

// New builds a worker.
func New(cfg Config, st *store.Store, up Upstream, log *zap.Logger, m *metrics.Metrics) (*Worker, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, store: st, up: up, log: log, metrics: m,
		infinity: interlace.NewInfinityWalletResolver(up, cfg.AccountID, cfg.TargetCurrency, cfg.InfinityWalletID)}, nil
}

// Run claims and processes sweeps until ctx ends, then stops claiming, waits up to
// DrainTimeout for in-flight transfers, and hands back any lease it still holds.
func (w *Worker) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	listenCtx, stopListen := context.WithCancel(ctx)
	defer stopListen()
	go w.store.Listen(listenCtx, store.SweepsChannel, wake, func(err error) {
		w.log.Debug("listen connection lost", zap.Error(err))
	})
	go w.store.KeepSweepsStatsFresh(listenCtx, statsInterval, w.log)

	// Outcomes of sweeps finishing together share a commit; each sweep still waits
	// for its own to be durable before its slot is freed.
	outcomes := store.NewOutcomeRecorder(w.store, store.BatcherOptions{})
	loop := jobs.Loop[store.Sweep]{
		Name: "sweeps", Concurrency: w.cfg.Concurrency, MaxClaim: maxClaim, PollInterval: w.cfg.PollInterval,
		DrainTimeout: w.cfg.DrainTimeout, Wake: wake, Log: w.log,
		Claim: func(ctx context.Context, limit int) ([]store.Sweep, error) {
			toID, err := w.infinityWallet(ctx)
			if err != nil {
				return nil, err
			}
			return w.store.ClaimSweeps(ctx, store.ClaimParams{Owner: w.cfg.Owner, Limit: limit, Lease: w.cfg.Lease, ToWalletID: toID})
		},
		Process: func(ctx context.Context, job store.Sweep) { w.process(ctx, outcomes, job) },
		Drained: outcomes.Close,
		Release: func(ctx context.Context) (int, error) { return w.store.ReleaseLeases(ctx, w.cfg.Owner) },
	}
	return loop.Run(ctx)
}

// infinityWallet returns the Infinity balance id to credit, discovering it once
// when it is not configured.
func (w *Worker) infinityWallet(ctx context.Context) (string, error) {
	known := w.infinity.Known()
	id, err := w.infinity.ID(ctx)
	if err != nil {
		return "", fmt.Errorf("sweep: %w", err)
	}
	if known == "" {
		w.log.Info("discovered Infinity wallet", zap.String("wallet_id", id), zap.String("currency", w.cfg.TargetCurrency))
	}
	return id, nil
}

func (w *Worker) process(ctx context.Context, outcomes *store.OutcomeRecorder, job store.Sweep) {
	req := interlace.InternalTransferRequest{
		ClientTransactionID: job.ClientTransactionID.String(),
		AccountID:           job.AccountID,
		From:                interlace.TransferEndpoint{BusinessType: interlace.BusinessTypeCryptoConnect, ID: job.FromWalletID, Currency: job.Currency},
		To:                  interlace.TransferEndpoint{BusinessType: interlace.BusinessTypeInfinity, ID: job.ToWalletID, Currency: job.ToCurrency},
		Amount:              job.Amount,
	}
	if !w.leaseCovers(ctx, &job) {
		return
	}
	started := time.Now()
	res, callErr := w.up.InternalTransfer(ctx, req)
	att := store.Attempt{Worker: w.cfg.Owner, StartedAt: started, Duration: time.Since(started)}
	o := classify(res, callErr, &att, job, w.cfg.PendingMaxAge)

	log := w.log.With(zap.String("deposit_id", job.DepositID),
		zap.String("client_transaction_id", req.ClientTransactionID), zap.Int("attempt", job.Attempts),
		zap.Duration("duration", att.Duration))
	if job.Reclaimed {
		log = log.With(zap.Bool("reclaimed", true))
	}

	// Recording must survive the worker's own shutdown: the transfer already happened.
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := w.record(recCtx, outcomes, job, o, att, log)
	if err != nil && store.IsDataError(err) {
		// The answer is poison: PostgreSQL refuses something in it. Replaying would
		// get the same answer and loop forever without a trace, so the attempt is
		// recorded with a description instead and the sweep is handed to a person.
		log.Error("upstream answer cannot be stored", zap.Error(err), zap.String("answer", att.Message))
		att.Outcome = store.AttemptPoison
		att.Message = "answer not storable: " + err.Error()
		att.Error = ""
		err = w.record(recCtx, outcomes, job, outcome{kind: outcomeUnresolved,
			reason: "the upstream answer could not be stored (" + err.Error() + "); the transfer may have been applied"}, att, log)
	}
	if errors.Is(err, store.ErrLeaseLost) {
		// Another worker took the job over after our lease expired; it replays the
		// same request and records the same result. Nothing to undo.
		w.metrics.Sweep("lease_lost", 0)
		log.Warn("sweep lease lost; another worker owns it", zap.String("outcome", "lease_lost"))
		return
	}
	if err != nil {
		// The outcome is not recorded; the lease expires and the job is replayed
		// under the same id, which returns the same upstream result.
		log.Error("record sweep outcome", zap.Error(err))
	}
}

// record writes one classified outcome and, once it is committed, counts and logs it.
func (w *Worker) record(ctx context.Context, outcomes *store.OutcomeRecorder, job store.Sweep, o outcome, att store.Attempt, log *zap.Logger) error {
	var err error
	switch o.kind {
	case outcomeSucceeded:
		err = outcomes.Record(ctx, store.Succeeded(job, o.result, att))
		if err == nil {
			w.metrics.Sweep("succeeded", time.Since(job.CreatedAt))
			log.Info("sweep succeeded", zap.String("outcome", "succeeded"),
				zap.String("interlace_transfer_id", o.result.InterlaceTransferID),
				zap.String("credited", o.result.CreditedAmount.String()+" "+o.result.CreditedCurrency))
		}
	case outcomeRejected:
		err = outcomes.Record(ctx, store.Failed(job, att.Code, o.reason, att))
		if err == nil {
			w.metrics.Sweep("failed", 0)
			log.Error("sweep rejected", zap.String("outcome", "failed"), zap.String("code", att.Code), zap.String("reason", o.reason))
			// A deposit contradicted while its transfer was under way (a refund,
			// often why it was rejected) is held, not left failed for a retry.
			if held, herr := w.store.HoldIfContradicted(ctx, job.DepositID); herr != nil {
				log.Warn("hold contradicted sweep: it stays failed; a retry holds it instead", zap.Error(herr))
			} else if held {
				log.Warn("sweep held: its deposit was contradicted while the transfer was under way")
			}
		}
	case outcomeUnresolved:
		err = outcomes.Record(ctx, store.Unresolved(job, att.Code, o.reason, o.transferID, o.upstreamStatus, att))
		if err == nil {
			w.metrics.Sweep("unresolved", 0)
			log.Error("sweep unresolved: money may have moved; an operator must resolve it",
				zap.String("outcome", "unresolved"), zap.String("code", att.Code), zap.String("reason", o.reason))
		}
	default:
		// In-progress answers back off like every other retry: a transfer that
		// Interlace is slow to finish must not be re-posted every few seconds.
		delay := o.delay
		if delay == 0 {
			delay = jobs.Backoff(job.Attempts, w.cfg.BaseDelay, w.cfg.MaxDelay, o.retryAfter)
		}
		err = outcomes.Record(ctx, store.Retry(job, delay, att.Code, o.reason, o.retry, att))
		if err == nil {
			w.metrics.Sweep(att.Outcome, 0)
			log.Warn("sweep will retry", zap.String("outcome", att.Outcome), zap.Duration("retry_in", delay), zap.String("reason", o.reason))
		}
	}
	return err
}

// leaseCovers makes sure the lease outlasts the longest attempt before the
// request leaves, extending it when time went elsewhere (a confirmation read, a
// slow claim). false means the lease is gone: another worker owns the job, and
// nothing was sent.
func (w *Worker) leaseCovers(ctx context.Context, job *store.Sweep) bool {
	if w.cfg.AttemptTimeout <= 0 || time.Until(job.LeaseUntil) > w.cfg.AttemptTimeout {
		return true
	}
	until, err := w.store.ExtendSweepLease(ctx, *job, w.cfg.Lease)
	if err != nil {
		w.log.Warn("sweep lease could not be extended; not sending", zap.String("deposit_id", job.DepositID), zap.Error(err))
		return false
	}
	job.LeaseUntil = until
	return true
}
