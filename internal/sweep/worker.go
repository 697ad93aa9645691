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
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// NotifyChannel is the PostgreSQL channel sweeper_ingest notifies on commit.
const NotifyChannel = "sweeper_sweeps"

// maxClaim bounds one claim statement, whatever the concurrency.
const maxClaim = 256

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
	// InProgressDelay is how soon an "in progress" answer is replayed [2s].
	InProgressDelay time.Duration
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
	def(&c.InProgressDelay, 2*time.Second)
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
	go w.listen(listenCtx, w.store.Pool(), wake)

	// In-flight transfers get their own context: a shutdown signal must not cut a
	// money movement in half; only the drain deadline does.
	workCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()

	// Outcomes of sweeps finishing together share a commit; each sweep still waits
	// for its own to be durable before its slot is freed.
	outcomes := store.NewOutcomeRecorder(w.store, store.BatcherOptions{})

	slots := make(chan struct{}, w.cfg.Concurrency)
	freed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	ticker := time.NewTicker(w.cfg.PollInterval)
	defer ticker.Stop()

	// due means there may be jobs to claim: at start, after a NOTIFY or a poll tick,
	// and after a claim that came back full. It survives while every slot is busy, so
	// the next freed slot claims at once instead of waiting for the poll tick.
	due := true
	for ctx.Err() == nil {
		if due {
			if free := w.cfg.Concurrency - len(slots); free > 0 {
				want := min(free, maxClaim)
				n, err := w.claimAndStart(ctx, workCtx, outcomes, want, slots, freed, &wg)
				if err != nil && ctx.Err() == nil {
					w.log.Warn("claim sweeps", zap.Error(err))
				}
				// A full batch means more may be due; otherwise the queue is drained
				// until the next NOTIFY or tick.
				due = err == nil && n == want
				if due && len(slots) < w.cfg.Concurrency {
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-wake:
			due = true
		case <-ticker.C:
			due = true
		case <-freed:
		}
	}

	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(w.cfg.DrainTimeout):
		w.log.Warn("drain timeout: abandoning in-flight sweeps to lease expiry")
		abandon()
		<-drained
	}
	outcomes.Close()
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if n, err := w.store.ReleaseLeases(relCtx, w.cfg.Owner); err != nil {
		w.log.Warn("release leases", zap.Error(err))
	} else if n > 0 {
		w.log.Info("released leases", zap.Int("count", n))
	}
	return nil
}

func (w *Worker) claimAndStart(ctx, workCtx context.Context, outcomes *store.OutcomeRecorder, free int, slots chan struct{}, freed chan struct{}, wg *sync.WaitGroup) (int, error) {
	toID, err := w.infinityWallet(ctx)
	if err != nil {
		return 0, err
	}
	jobs, err := w.store.ClaimSweeps(ctx, store.ClaimParams{
		Owner: w.cfg.Owner, Limit: free, Lease: w.cfg.Lease, ToWalletID: toID,
	})
	if err != nil {
		return 0, err
	}
	for _, job := range jobs {
		slots <- struct{}{}
		wg.Add(1)
		go func(job store.Sweep) {
			defer func() {
				<-slots
				wg.Done()
				select {
				case freed <- struct{}{}:
				default:
				}
			}()
			w.process(workCtx, outcomes, job)
		}(job)
	}
	return len(jobs), nil
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

// listen turns NOTIFYs on the sweep channel into wake-ups. It reconnects after a
// lost connection; the poll ticker covers the gap.
func (w *Worker) listen(ctx context.Context, pool *pgxpool.Pool, wake chan<- struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := func() error {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
				conn.Conn().Close(ctx)
				return err
			}
			backoff = 100 * time.Millisecond
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					// The connection's LISTEN state is unknown now: do not return it to the pool.
					conn.Conn().Close(context.Background())
					return err
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		w.log.Debug("listen connection lost", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Backoff is the delay before retry number attempt (1-based): exponential from
// base, capped, with "equal jitter" (half fixed, half random) so that a burst of
// failures does not come back as a burst, yet no retry comes sooner than half its
// step. A Retry-After from the upstream wins when it asks for longer.
func Backoff(attempt int, base, maxDelay, retryAfter time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, time.Hour)
	}
	return d
}

func (w *Worker) process(ctx context.Context, outcomes *store.OutcomeRecorder, job store.Sweep) {
	req := interlace.InternalTransferRequest{
		ClientTransactionID: job.ClientTransactionID.String(),
		AccountID:           job.AccountID,
		From:                interlace.TransferEndpoint{BusinessType: interlace.BusinessTypeCryptoConnect, ID: job.FromWalletID, Currency: job.Currency},
		To:                  interlace.TransferEndpoint{BusinessType: interlace.BusinessTypeInfinity, ID: job.ToWalletID, Currency: job.ToCurrency},
		Amount:              job.Amount,
	}
	started := time.Now()
	res, callErr := w.up.InternalTransfer(ctx, req)
	att := store.Attempt{Worker: w.cfg.Owner, StartedAt: started, Duration: time.Since(started)}
	o := classify(res, callErr, &att, job)

	log := w.log.With(zap.String("deposit_id", job.DepositID),
		zap.String("client_transaction_id", req.ClientTransactionID), zap.Int("attempt", job.Attempts),
		zap.Duration("duration", att.Duration))
	if job.Reclaimed {
		log = log.With(zap.Bool("reclaimed", true))
	}

	// Recording must survive the worker's own shutdown: the transfer already happened.
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	switch o.kind {
	case outcomeSucceeded:
		err = outcomes.Record(recCtx, store.Succeeded(job, o.result, att))
		if err == nil {
			w.metrics.Sweep("succeeded", time.Since(job.CreatedAt))
			log.Info("sweep succeeded", zap.String("outcome", "succeeded"),
				zap.String("interlace_transfer_id", o.result.InterlaceTransferID),
				zap.String("credited", o.result.CreditedAmount.String()+" "+o.result.CreditedCurrency))
		}
	case outcomeRejected:
		err = outcomes.Record(recCtx, store.Failed(job, att.Code, o.reason, att))
		if err == nil {
			w.metrics.Sweep("failed", 0)
			log.Error("sweep rejected", zap.String("outcome", "failed"), zap.String("code", att.Code), zap.String("reason", o.reason))
		}
	default:
		delay := o.delay
		if att.Outcome == store.AttemptInProgress {
			delay = w.cfg.InProgressDelay
		}
		if delay == 0 {
			delay = Backoff(job.Attempts, w.cfg.BaseDelay, w.cfg.MaxDelay, o.retryAfter)
		}
		err = outcomes.Record(recCtx, store.Retry(job, delay, att.Code, o.reason, att))
		if err == nil {
			w.metrics.Sweep(att.Outcome, 0)
			log.Warn("sweep will retry", zap.String("outcome", att.Outcome), zap.Duration("retry_in", delay), zap.String("reason", o.reason))
		}
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

type outcomeKind int

const (
	outcomeRetry outcomeKind = iota
	outcomeSucceeded
	outcomeRejected
)

type outcome struct {
	kind       outcomeKind
	reason     string
	delay      time.Duration
	retryAfter time.Duration
	result     store.SweepResult
}

// classify turns the upstream answer into what to do next, filling the attempt row.
func classify(res *interlace.InternalTransfer, err error, att *store.Attempt, job store.Sweep) outcome {
	if err != nil {
		var ae *interlace.APIError
		if errors.As(err, &ae) {
			att.HTTPStatus, att.Code, att.Message = ae.HTTPStatus, ae.Code, ae.Message
		}
		att.Error = err.Error()
		if ae != nil && !ae.Retryable {
			att.Outcome = store.AttemptRejected
			reason := ae.Message
			if reason == "" {
				reason = err.Error()
			}
			if ae.Code != "" {
				reason = ae.Code + " " + reason
			}
			return outcome{kind: outcomeRejected, reason: reason}
		}
		att.Outcome = store.AttemptRetry
		o := outcome{kind: outcomeRetry, reason: err.Error()}
		if ae != nil {
			o.retryAfter = ae.RetryAfter
		}
		return o
	}
	att.HTTPStatus = 200
	att.Code = "000000"
	att.Message = res.Status
	if res.ClientTransactionID != "" && !strings.EqualFold(res.ClientTransactionID, job.ClientTransactionID.String()) {
		// The answer is about some other transfer: never book it against this deposit.
		att.Outcome = store.AttemptRejected
		return outcome{kind: outcomeRejected, reason: fmt.Sprintf(
			"upstream answered for clientTransactionId %s, not %s", res.ClientTransactionID, job.ClientTransactionID)}
	}
	switch status.Classify(res.Status) {
	case status.Final:
		fee, feeCur, ferr := res.From.TotalFees()
		if ferr != nil {
			// Mixed-currency fees cannot be one figure; keep the transfer, flag the fee.
			feeCur = "MIXED"
		}
		att.Outcome = store.AttemptSucceeded
		return outcome{kind: outcomeSucceeded, result: store.SweepResult{
			InterlaceTransferID: res.ID, UpstreamStatus: res.Status,
			CreditedAmount: res.To.Amount, CreditedCurrency: res.To.Currency,
			FeeAmount: fee, FeeCurrency: feeCur,
		}}
	case status.Failed:
		att.Outcome = store.AttemptRejected
		return outcome{kind: outcomeRejected, reason: "transfer " + res.ID + " status " + res.Status}
	default:
		// Accepted but not done (PENDING, PROCESSING, …): replaying the same request
		// later returns its final state.
		att.Outcome = store.AttemptInProgress
		return outcome{kind: outcomeRetry, reason: "transfer " + res.ID + " status " + res.Status}
	}
}
