package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// Sweep statuses (sweeps.status).
const (
	SweepPending   = "pending"
	SweepInFlight  = "in_flight"
	SweepSucceeded = "succeeded"
	SweepFailed    = "failed"
)

// Attempt outcomes (sweep_attempts.outcome).
const (
	AttemptSucceeded  = "succeeded"
	AttemptRetry      = "retry"
	AttemptRejected   = "rejected"
	AttemptInProgress = "in_progress"
)

// Sweep is a claimed sweep job: everything needed to build the (frozen) request.
type Sweep struct {
	DepositID           string
	ClientTransactionID uuid.UUID
	LeaseToken          uuid.UUID
	Attempts            int // including this claim
	AccountID           string
	FromWalletID        string
	Currency            string
	Amount              decimal.Decimal
	ToWalletID          string
	ToCurrency          string
	CreatedAt           time.Time
	Reclaimed           bool // a previous lease expired: the outcome of that attempt is unknown
	// MaybeMoved: some earlier attempt's outcome is unknown (timeout, 5xx, in
	// progress, a lease that expired mid-attempt, this claim included), so a
	// rejection now is no proof that nothing moved (contract §11).
	MaybeMoved bool
	// PendingFor is how long the sweep has received nothing but "in progress"
	// answers (0 when the last definite answer was something else).
	PendingFor time.Duration
	// LeaseUntil is when this claim's lease expires, on the local clock.
	LeaseUntil time.Time
}

// ClaimParams tells ClaimSweeps who claims and for how long.
type ClaimParams struct {
	Owner string
	Limit int
	// Lease is how long the claim holds before another worker may take the job over.
	// It must exceed the upstream timeout, or two workers would overlap (harmlessly,
	// the request is idempotent, but wastefully).
	Lease time.Duration
	// ToWalletID is the Infinity balance id, frozen into the sweep at its first claim.
	ToWalletID string
}

const claimSQL = `
WITH due AS (
    SELECT deposit_id, status AS old_status
      FROM sweeps
     WHERE status IN ('pending', 'in_flight') AND run_at <= now()
     ORDER BY run_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
), upd AS (
    UPDATE sweeps s
       SET status           = 'in_flight',
           run_at           = now() + $2::interval,
           lease_owner      = $3,
           lease_token      = gen_random_uuid(),
           attempts         = s.attempts + 1,
           to_wallet_id     = COALESCE(s.to_wallet_id, $4),
           first_attempt_at = COALESCE(s.first_attempt_at, now()),
           -- a lease that expired mid-attempt: that attempt's outcome is unknown
           maybe_moved_at   = CASE WHEN due.old_status = 'in_flight' THEN COALESCE(s.maybe_moved_at, now())
                                   ELSE s.maybe_moved_at END,
           updated_at       = now()
      FROM due
     WHERE s.deposit_id = due.deposit_id
 RETURNING s.deposit_id, s.client_transaction_id, s.lease_token, s.attempts, s.account_id, s.from_wallet_id,
           s.currency, s.amount, s.to_wallet_id, s.to_currency, s.created_at, due.old_status,
           s.maybe_moved_at IS NOT NULL AS maybe_moved,
           COALESCE(EXTRACT(EPOCH FROM now() - s.pending_since), 0)::float8 AS pending_for
), ev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
    SELECT deposit_id, old_status, 'in_flight',
           CASE WHEN old_status = 'in_flight' THEN 'lease expired; reclaimed by ' || $3 ELSE 'claimed by ' || $3 END
      FROM upd
)
SELECT deposit_id, client_transaction_id, lease_token, attempts, account_id, from_wallet_id, currency, amount,
       to_wallet_id, to_currency, created_at, old_status = 'in_flight', maybe_moved, pending_for
  FROM upd`

// ClaimSweeps leases up to p.Limit due jobs. SKIP LOCKED lets any number of workers
// claim concurrently without blocking each other or taking the same job; a job
// whose lease expired (its worker died) is due again and is taken over with the
// same clientTransactionId.
func (s *Store) ClaimSweeps(ctx context.Context, p ClaimParams) ([]Sweep, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	if p.ToWalletID == "" {
		return nil, fmt.Errorf("store: claim sweeps: no Infinity wallet id")
	}
	start := time.Now()
	rows, err := s.pool.Query(ctx, claimSQL, p.Limit, p.Lease, p.Owner, p.ToWalletID)
	if err != nil {
		return nil, translate("store: claim sweeps", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sweep, error) {
		var sw Sweep
		var pendingFor float64
		err := r.Scan(&sw.DepositID, &sw.ClientTransactionID, &sw.LeaseToken, &sw.Attempts, &sw.AccountID,
			&sw.FromWalletID, &sw.Currency, &sw.Amount, &sw.ToWalletID, &sw.ToCurrency, &sw.CreatedAt, &sw.Reclaimed,
			&sw.MaybeMoved, &pendingFor)
		// The local clock before the claim: never later than the database's deadline.
		sw.LeaseUntil = start.Add(p.Lease)
		sw.PendingFor = time.Duration(pendingFor * float64(time.Second))
		return sw, err
	})
	if err != nil {
		return nil, translate("store: claim sweeps", err)
	}
	return out, nil
}

// Attempt describes one upstream call.
type Attempt struct {
	Worker     string
	StartedAt  time.Time
	Duration   time.Duration
	HTTPStatus int
	Code       string
	Message    string
	Outcome    string
	Error      string
}

// RecordOutcome records one outcome in its own transaction. ErrLeaseLost means
// another worker took the job over (the attempt row is recorded all the same).
func (s *Store) RecordOutcome(ctx context.Context, o Outcome) error {
	var n int
	if err := s.pool.QueryRow(ctx, o.sql, o.args...).Scan(&n); err != nil {
		return translate(o.op, err)
	}
	return o.leaseErr(n)
}

func (o Outcome) leaseErr(updated int) error {
	if updated == 0 {
		return fmt.Errorf("%s %s: %w", o.op, o.depositID, ErrLeaseLost)
	}
	return nil
}

// RecordOutcomes records several outcomes in ONE transaction (one commit, one
// round trip: see pipeline), all or none. The per-outcome answer is nil or
// ErrLeaseLost; a returned error means nothing was recorded.
func (s *Store) RecordOutcomes(ctx context.Context, outs []Outcome) ([]error, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	order := lockOrder(len(outs), func(a, b int) bool { return outs[a].depositID < outs[b].depositID })
	out := make([]error, len(outs))
	err := s.pipeline(ctx, order,
		func(b *pgx.Batch, i int) { b.Queue(outs[i].sql, outs[i].args...) },
		func(row pgx.Row, i int) error {
			var n int
			if err := row.Scan(&n); err != nil {
				return err
			}
			out[i] = outs[i].leaseErr(n)
			return nil
		})
	if err != nil {
		return nil, translate("store: record sweep outcomes", err)
	}
	return out, nil
}

// OutcomeRecorder records the outcomes of concurrent sweeps in shared
// transactions (group commit), answering each caller only after its commit: at
// high throughput a worker finishes many sweeps per WAL flush.
type OutcomeRecorder struct {
	gc *groupCommit[Outcome, error]
}

// NewOutcomeRecorder starts the committers.
func NewOutcomeRecorder(st *Store, opts BatcherOptions) *OutcomeRecorder {
	return &OutcomeRecorder{gc: newGroupCommit(opts, st.RecordOutcomes,
		func(ctx context.Context, o Outcome) (error, error) { return nil, st.RecordOutcome(ctx, o) })}
}

// Record records o and returns once it is committed: nil, ErrLeaseLost, or the
// failure that kept it from being recorded.
func (r *OutcomeRecorder) Record(ctx context.Context, o Outcome) error {
	leaseErr, err := r.gc.do(ctx, o)
	if err != nil {
		return err
	}
	return leaseErr
}

// Close stops accepting outcomes and waits for queued ones to commit.
func (r *OutcomeRecorder) Close() { r.gc.close() }

// RequeueSweep lets an operator retry a failed sweep. The clientTransactionId is
// kept, so if the rejected request had in fact gone through, the replay returns
// the first result instead of moving money again.
func (s *Store) RequeueSweep(ctx context.Context, depositID string, by Actor) error {
	tag, err := s.pool.Exec(ctx, requeueFailedSQL, depositID, "requeued by "+by.String(), by.name())
	if err != nil {
		return translate("store: requeue sweep", err)
	}
	if tag.RowsAffected() == 0 {
		var status string
		err := s.pool.QueryRow(ctx, `SELECT status FROM sweeps WHERE deposit_id = $1`, depositID).Scan(&status)
		if err != nil {
			return translate("store: requeue sweep "+depositID, err)
		}
		return fmt.Errorf("store: requeue sweep %s is %s: %w", depositID, status, ErrInvalidState)
	}
	return nil
}

// requeueFailedSQL puts a failed sweep back to pending under its
// clientTransactionId, with its event ($2 the reason): RequeueSweep and the
// operator's RetryDeposit.
const requeueFailedSQL = `
WITH upd AS (
    UPDATE sweeps SET status = 'pending', run_at = now(), failed_at = NULL, updated_at = now()
     WHERE deposit_id = $1 AND status = 'failed'
 RETURNING deposit_id
), ev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason, actor)
    SELECT deposit_id, 'failed', 'pending', $2, $3 FROM upd
)
SELECT pg_notify('sweeper_sweeps', '') FROM upd`

// ReleaseLeases hands back every job this owner still holds (graceful shutdown),
// so another replica picks them up at once instead of after the lease.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) (int, error) {
	tag, err := s.pool.Exec(ctx, `
WITH upd AS (
    UPDATE sweeps SET status = 'pending', run_at = now(), lease_owner = NULL, lease_token = NULL, updated_at = now()
     WHERE status = 'in_flight' AND lease_owner = $1
 RETURNING deposit_id
)
INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
SELECT deposit_id, 'in_flight', 'pending', 'lease released at shutdown of ' || $1 FROM upd`, owner)
	if err != nil {
		return 0, translate("store: release leases", err)
	}
	return int(tag.RowsAffected()), nil
}

// QueueStats reports the number of sweeps not yet done (pending or in flight) and
// the age of the oldest of them since its deposit became final: money that has
// waited that long to reach the Infinity Account.
func (s *Store) QueueStats(ctx context.Context) (depth int, oldest time.Duration, err error) {
	var age float64
	err = s.pool.QueryRow(ctx, `
SELECT count(*),
       COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
  FROM sweeps WHERE status IN ('pending', 'in_flight')`).Scan(&depth, &age)
	if err != nil {
		return 0, 0, translate("store: queue stats", err)
	}
	return depth, time.Duration(age * float64(time.Second)), nil
}

func nullInt(i int) any {
	if i == 0 {
		return nil
	}
	return i
}

// ExtendSweepLease renews the lease of a claimed sweep for another lease period
// and returns its new local deadline. ErrLeaseLost: another worker owns it.
func (s *Store) ExtendSweepLease(ctx context.Context, sw Sweep, lease time.Duration) (time.Time, error) {
	start := time.Now()
	tag, err := s.pool.Exec(ctx, `
UPDATE sweeps SET run_at = now() + $3::interval, updated_at = now()
 WHERE deposit_id = $1 AND lease_token = $2 AND status = 'in_flight'`, sw.DepositID, sw.LeaseToken, lease)
	if err != nil {
		return time.Time{}, translate("store: extend sweep lease", err)
	}
	if tag.RowsAffected() == 0 {
		return time.Time{}, fmt.Errorf("store: extend sweep lease %s: %w", sw.DepositID, ErrLeaseLost)
	}
	return start.Add(lease), nil
}
