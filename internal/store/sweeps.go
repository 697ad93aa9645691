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
           updated_at       = now()
      FROM due
     WHERE s.deposit_id = due.deposit_id
 RETURNING s.deposit_id, s.client_transaction_id, s.lease_token, s.attempts, s.account_id, s.from_wallet_id,
           s.currency, s.amount, s.to_wallet_id, s.to_currency, s.created_at, due.old_status
), ev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
    SELECT deposit_id, old_status, 'in_flight',
           CASE WHEN old_status = 'in_flight' THEN 'lease expired; reclaimed by ' || $3 ELSE 'claimed by ' || $3 END
      FROM upd
)
SELECT deposit_id, client_transaction_id, lease_token, attempts, account_id, from_wallet_id, currency, amount,
       to_wallet_id, to_currency, created_at, old_status = 'in_flight'
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
	rows, err := s.pool.Query(ctx, claimSQL, p.Limit, p.Lease, p.Owner, p.ToWalletID)
	if err != nil {
		return nil, translate("store: claim sweeps", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sweep, error) {
		var sw Sweep
		err := r.Scan(&sw.DepositID, &sw.ClientTransactionID, &sw.LeaseToken, &sw.Attempts, &sw.AccountID,
			&sw.FromWalletID, &sw.Currency, &sw.Amount, &sw.ToWalletID, &sw.ToCurrency, &sw.CreatedAt, &sw.Reclaimed)
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

// SweepResult is the upstream's answer to a successful transfer.
type SweepResult struct {
	InterlaceTransferID string
	UpstreamStatus      string
	CreditedAmount      decimal.Decimal
	CreditedCurrency    string
	FeeAmount           decimal.Decimal
	FeeCurrency         string
}

// The three outcome statements share one shape: update the sweep only while we
// still hold the lease, record the state change, and record the attempt whatever
// happened to the lease (the audit trail must show every call that left).
const finishPrefix = `
WITH upd AS (
    UPDATE sweeps
       SET %s,
           lease_owner = NULL,
           lease_token = NULL,
           updated_at  = now()
     WHERE deposit_id = $1 AND lease_token = $2 AND status = 'in_flight'
 RETURNING deposit_id
), ev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
    SELECT deposit_id, 'in_flight', $3, $4 FROM upd
), att AS (
    INSERT INTO sweep_attempts (deposit_id, attempt, client_transaction_id, worker, started_at, duration,
                                http_status, code, message, outcome, error)
    VALUES ($1, $5, $6, $7, $8, $9, $10, $11, $12,
            CASE WHEN EXISTS (SELECT 1 FROM upd) THEN $13 ELSE 'lease_lost' END, $14)
)
SELECT count(*) FROM upd`

// Outcome is one finished attempt, ready to record: the UPDATE of the sweep (only
// while its lease is ours), its state-change event and the attempt row.
type Outcome struct {
	op        string
	depositID string
	sql       string
	args      []any
}

var (
	completeSQL = fmt.Sprintf(finishPrefix, `status = 'succeeded',
           interlace_transfer_id = $15, upstream_status = $16, credited_amount = $17, credited_currency = $18,
           fee_amount = $19, fee_currency = $20, swept_at = now(), last_error = NULL, last_error_code = NULL`)
	retrySQL = fmt.Sprintf(finishPrefix, `status = 'pending', run_at = now() + $15::interval,
           last_error = $16, last_error_code = $17`)
	failSQL = fmt.Sprintf(finishPrefix, `status = 'failed', failed_at = now(),
           last_error = $15, last_error_code = $16`)
)

func newOutcome(op, sql string, sw Sweep, toStatus, reason string, at Attempt, extra ...any) Outcome {
	args := []any{sw.DepositID, sw.LeaseToken, toStatus, reason, sw.Attempts, sw.ClientTransactionID, at.Worker,
		at.StartedAt, at.Duration, nullInt(at.HTTPStatus), nullString(at.Code), nullString(at.Message), at.Outcome,
		nullString(at.Error)}
	return Outcome{op: op, depositID: sw.DepositID, sql: sql, args: append(args, extra...)}
}

// Succeeded is the outcome of a successful transfer.
func Succeeded(sw Sweep, res SweepResult, at Attempt) Outcome {
	return newOutcome("store: complete sweep", completeSQL, sw, SweepSucceeded,
		"transfer "+res.InterlaceTransferID+" "+res.UpstreamStatus, at,
		res.InterlaceTransferID, res.UpstreamStatus, res.CreditedAmount, res.CreditedCurrency,
		res.FeeAmount, nullString(res.FeeCurrency))
}

// Retry puts the job back to pending, due after delay (measured on the database
// clock). The clientTransactionId and body never change.
func Retry(sw Sweep, delay time.Duration, code, reason string, at Attempt) Outcome {
	return newOutcome("store: retry sweep", retrySQL, sw, SweepPending,
		"retry in "+delay.Round(time.Millisecond).String()+": "+reason, at, delay, reason, nullString(code))
}

// Failed ends the job: a definite rejection, surfaced with Interlace's reason.
func Failed(sw Sweep, code, reason string, at Attempt) Outcome {
	return newOutcome("store: fail sweep", failSQL, sw, SweepFailed, "rejected: "+reason, at, reason, nullString(code))
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
func (s *Store) RequeueSweep(ctx context.Context, depositID, reason string) error {
	tag, err := s.pool.Exec(ctx, `
WITH upd AS (
    UPDATE sweeps SET status = 'pending', run_at = now(), failed_at = NULL, updated_at = now()
     WHERE deposit_id = $1 AND status = 'failed'
 RETURNING deposit_id
), ev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
    SELECT deposit_id, 'failed', 'pending', $2 FROM upd
)
SELECT pg_notify('sweeper_sweeps', '') FROM upd`, depositID, "requeued: "+reason)
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
