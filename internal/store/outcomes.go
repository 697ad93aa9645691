package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
)

// AttemptPoison is the outcome of an attempt whose answer could not be stored as
// given (NUL bytes, absurd numbers, huge text): the attempt row keeps a
// description of it instead, and the sweep is unresolved.
const AttemptPoison = "poison"

// SweepResult is the upstream's answer to a successful transfer.
type SweepResult struct {
	InterlaceTransferID string
	UpstreamStatus      string
	CreditedAmount      decimal.Decimal
	CreditedCurrency    string
	// FeeAmount/FeeCurrency sum the from side's fees; nil/"" (NULL) when they are
	// in more than one currency and cannot be one figure (contract §6).
	FeeAmount   *decimal.Decimal
	FeeCurrency string
	// Fees is every fee line of the answer, as a JSON array (sweeps.fees).
	Fees []byte
}

// The lease-guarded outcome statements share one shape: update the sweep only
// while we still hold the lease, record the state change, and record the attempt
// whatever happened to the lease (the audit trail must show every call that left).
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
` + attemptTail

// attemptTail ends every outcome statement: the attempt row, written whatever
// happened to the lease (lease_lost when the sweep was not ours to update), and
// how many sweeps the statement updated.
const attemptTail = `
), att AS (
    INSERT INTO sweep_attempts (deposit_id, attempt, client_transaction_id, worker, started_at, duration,
                                http_status, code, message, outcome, error)
    VALUES ($1, $5, $6, $7, $8, $9, $10, $11, $12,
            CASE WHEN EXISTS (SELECT 1 FROM upd) THEN $13 ELSE 'lease_lost' END, $14)
)
SELECT count(*) FROM upd`

// completeSQL is NOT lease-guarded: a success answer counts whoever receives it
// (contract §11). A worker whose lease expired while it waited for the answer
// still books the transfer id and credited amount, and a success wins over any
// state but succeeded, a rejection recorded by another worker included. The
// current lease (if another worker holds one) is cleared: that worker's own
// outcome then finds the lease gone and only leaves its attempt row.
const completeSQL = `
WITH cur AS (
    SELECT deposit_id, status, (status = 'in_flight' AND lease_token = $2) AS ours
      FROM sweeps
     WHERE deposit_id = $1
       FOR UPDATE
), upd AS (
    UPDATE sweeps s
       SET status = 'succeeded', interlace_transfer_id = $15, upstream_status = $16, credited_amount = $17,
           credited_currency = $18, fee_amount = $19, fee_currency = $20, fees = $21::jsonb, swept_at = now(),
           last_error = NULL, last_error_code = NULL, pending_since = NULL, lease_owner = NULL,
           lease_token = NULL, updated_at = now()
      FROM cur
     WHERE s.deposit_id = cur.deposit_id AND cur.status <> 'succeeded'
 RETURNING s.deposit_id, cur.status AS old_status, cur.ours
), ev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
    SELECT deposit_id, old_status, $3::text,
           CASE WHEN ours THEN $4::text
                ELSE $4::text || ' (answered to ' || $7::text || ' after its lease was lost; a success always counts)' END
      FROM upd
` + attemptTail

var (
	// retrySQL: $18 says the attempt's outcome is unknown (money may have moved),
	// $19 that it was an "in progress" answer. A definite answer (neither) ends a
	// run of in-progress answers; an unknown one (a timeout) neither starts nor
	// ends it, since it says nothing either way.
	retrySQL = fmt.Sprintf(finishPrefix, `status = 'pending', run_at = now() + $15::interval,
           last_error = $16, last_error_code = $17,
           maybe_moved_at = CASE WHEN $18::boolean THEN COALESCE(maybe_moved_at, now()) ELSE maybe_moved_at END,
           pending_since  = CASE WHEN $19::boolean THEN COALESCE(pending_since, now())
                                 WHEN $18::boolean THEN pending_since END`)
	failSQL = fmt.Sprintf(finishPrefix, `status = 'failed', failed_at = now(),
           last_error = $15, last_error_code = $16, pending_since = NULL`)
	unresolvedSQL = fmt.Sprintf(finishPrefix, `status = 'unresolved', unresolved_at = now(),
           last_error = $15, last_error_code = $16,
           interlace_transfer_id = COALESCE($17, interlace_transfer_id),
           upstream_status = COALESCE($18, upstream_status)`)
)

// Outcome is one finished attempt, ready to record: the UPDATE of the sweep (only
// while its lease is ours, except a success), its state-change event and the
// attempt row.
type Outcome struct {
	op        string
	depositID string
	sql       string
	args      []any
}

// Limits of what one attempt row keeps of an upstream answer. The full text is in
// the logs; the row must always be storable.
const (
	maxAttemptText = 2000
	maxIDText      = 200
)

// PGText makes s storable in a PostgreSQL text column (which refuses NUL bytes
// and invalid UTF-8) and at most max bytes long, marking what it changed. An
// upstream answer must never be able to keep its own attempt row out of the
// database.
func PGText(s string, max int) string {
	clean := s
	if !utf8.ValidString(clean) {
		clean = strings.ToValidUTF8(clean, "\uFFFD")
	}
	if strings.IndexByte(clean, 0) >= 0 {
		clean = strings.ReplaceAll(clean, "\x00", `\x00`)
	}
	if len(clean) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(clean[cut]) {
			cut--
		}
		clean = clean[:cut] + fmt.Sprintf("… [%d bytes cut]", len(s)-cut)
	}
	return clean
}

// IsDataError reports a value PostgreSQL refused to store (class 22: data
// exception, such as a numeric out of range, a NUL byte, an invalid JSON escape;
// class 54: a program limit). Retrying the same statement can never succeed.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "54")
	}
	return false
}

func newOutcome(op, sql string, sw Sweep, toStatus, reason string, at Attempt, extra ...any) Outcome {
	args := []any{sw.DepositID, sw.LeaseToken, toStatus, PGText(reason, maxAttemptText), sw.Attempts,
		sw.ClientTransactionID, at.Worker, at.StartedAt, at.Duration, nullInt(at.HTTPStatus),
		nullString(PGText(at.Code, maxIDText)), nullString(PGText(at.Message, maxAttemptText)), at.Outcome,
		nullString(PGText(at.Error, maxAttemptText))}
	return Outcome{op: op, depositID: sw.DepositID, sql: sql, args: append(args, extra...)}
}

// Succeeded is the outcome of a successful transfer. It is recorded even when
// the lease was lost meanwhile (see completeSQL).
func Succeeded(sw Sweep, res SweepResult, at Attempt) Outcome {
	fees := res.Fees
	if fees == nil {
		fees = []byte("[]")
	}
	var fee any
	if res.FeeAmount != nil {
		fee = *res.FeeAmount
	}
	return newOutcome("store: complete sweep", completeSQL, sw, status.SweepSucceeded,
		"transfer "+res.InterlaceTransferID+" "+res.UpstreamStatus, at,
		res.InterlaceTransferID, res.UpstreamStatus, res.CreditedAmount, res.CreditedCurrency,
		fee, nullString(res.FeeCurrency), string(fees))
}

// RetryKind says what an attempt that will be replayed tells about the money.
type RetryKind int

const (
	// RetryNotSent: the request did not reach Interlace, or was refused before it
	// was looked at (no token, 401): nothing can have moved.
	RetryNotSent RetryKind = iota
	// RetryUnknown: timeout, dropped connection, 5xx, 429, an unreadable answer:
	// the transfer may have been applied.
	RetryUnknown
	// RetryInProgress: Interlace accepted the transfer and has not finished it.
	RetryInProgress
)

// Retry puts the job back to pending, due after delay (measured on the database
// clock). The clientTransactionId and body never change.
func Retry(sw Sweep, delay time.Duration, code, reason string, kind RetryKind, at Attempt) Outcome {
	return newOutcome("store: retry sweep", retrySQL, sw, status.SweepPending,
		"retry in "+delay.Round(time.Millisecond).String()+": "+reason, at, delay,
		PGText(reason, maxAttemptText), nullString(PGText(code, maxIDText)),
		kind != RetryNotSent, kind == RetryInProgress)
}

// Failed ends the job: a definite rejection with no unknown attempt before it,
// surfaced with Interlace's reason.
func Failed(sw Sweep, code, reason string, at Attempt) Outcome {
	return newOutcome("store: fail sweep", failSQL, sw, status.SweepFailed, "rejected: "+reason, at,
		PGText(reason, maxAttemptText), nullString(PGText(code, maxIDText)))
}

// Unresolved ends the job in the state "money may have moved": never retried
// automatically, alerted on, closed by an operator with evidence. transferID and
// upstreamStatus, when the answer named them, are kept for that operator.
func Unresolved(sw Sweep, code, reason, transferID, upstreamStatus string, at Attempt) Outcome {
	return newOutcome("store: unresolved sweep", unresolvedSQL, sw, status.SweepUnresolved, "unresolved: "+reason, at,
		PGText(reason, maxAttemptText), nullString(PGText(code, maxIDText)),
		nullString(PGText(transferID, maxIDText)), nullString(PGText(upstreamStatus, maxIDText)))
}
