package store

import (
	"context"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
)

// Resolution is an operator's verdict on an unresolved sweep, with its evidence.
type Resolution struct {
	Outcome string // status.SweepSucceeded or status.SweepFailed
	Note    string // the evidence, kept in the sweep's events
	Actor   string // who resolved it, kept in the sweep's events
	// For succeeded: Interlace's transfer id (required unless the ambiguous answer
	// already named one) and what it credited (both or neither).
	InterlaceTransferID string
	CreditedAmount      *decimal.Decimal
	CreditedCurrency    string
}

// ResolveSweep closes an unresolved sweep as succeeded or failed. Only an
// unresolved sweep can be resolved (anything else is ErrInvalidState): the
// worker's own verdicts are never overwritten by hand.
func (s *Store) ResolveSweep(ctx context.Context, depositID string, r Resolution) error {
	if r.Outcome != status.SweepSucceeded && r.Outcome != status.SweepFailed {
		return fmt.Errorf("store: resolve sweep: outcome %q is neither succeeded nor failed", r.Outcome)
	}
	if r.Outcome == status.SweepSucceeded && r.InterlaceTransferID == "" {
		// A succeeded sweep names its transfer (sweeps' CHECK); the ambiguous answer may have.
		var known *string
		err := s.pool.QueryRow(ctx, `SELECT interlace_transfer_id FROM sweeps WHERE deposit_id = $1`, depositID).Scan(&known)
		if err != nil {
			return translate("store: resolve sweep "+depositID, err)
		}
		if known == nil {
			return fmt.Errorf("store: resolve sweep %s as succeeded: no Interlace transfer id known; give interlaceTransferId: %w",
				depositID, ErrInvalidState)
		}
	}
	var credited any
	if r.CreditedAmount != nil {
		credited = *r.CreditedAmount
	}
	reason := "resolved " + r.Outcome + " by " + r.Actor + ": " + r.Note
	var n int
	err := s.pool.QueryRow(ctx, `
WITH cur AS (
    SELECT deposit_id FROM sweeps WHERE deposit_id = $1 AND status = 'unresolved' FOR UPDATE
), upd AS (
    UPDATE sweeps s
       SET status = $2::text,
           resolved_at = now(),
           updated_at = now(),
           interlace_transfer_id = CASE WHEN $2::text = 'succeeded' THEN COALESCE($4::text, s.interlace_transfer_id)
                                        ELSE s.interlace_transfer_id END,
           credited_amount   = CASE WHEN $2::text = 'succeeded' THEN $5::numeric END,
           credited_currency = CASE WHEN $2::text = 'succeeded' THEN $6::text END,
           swept_at  = CASE WHEN $2::text = 'succeeded' THEN now() END,
           failed_at = CASE WHEN $2::text = 'failed' THEN now() END,
           last_error = CASE WHEN $2::text = 'failed' THEN $3::text ELSE NULL END
      FROM cur
     WHERE s.deposit_id = cur.deposit_id
 RETURNING s.deposit_id
), ev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason, actor)
    SELECT deposit_id, 'unresolved', $2::text, $3::text, $7::text FROM upd
)
SELECT count(*) FROM upd`, depositID, r.Outcome, PGText(reason, maxAttemptText), nullString(r.InterlaceTransferID),
		credited, nullString(r.CreditedCurrency), PGText(r.Actor, maxIDText)).Scan(&n)
	if err != nil {
		return translate("store: resolve sweep "+depositID, err)
	}
	if n == 0 {
		var st string
		if err := s.pool.QueryRow(ctx, `SELECT status FROM sweeps WHERE deposit_id = $1`, depositID).Scan(&st); err != nil {
			return translate("store: resolve sweep "+depositID, err)
		}
		return fmt.Errorf("store: resolve sweep %s is %s, not unresolved: %w", depositID, st, ErrInvalidState)
	}
	return nil
}

// UnresolvedCounts returns how many sweeps and withdrawals wait for an operator
// because their money may have moved. Both read small partial indexes.
func (s *Store) UnresolvedCounts(ctx context.Context) (sweeps, withdrawals int, err error) {
	err = s.pool.QueryRow(ctx, `
SELECT (SELECT count(*) FROM sweeps WHERE status = 'unresolved'),
       (SELECT count(*) FROM withdrawals WHERE status = 'unresolved')`).Scan(&sweeps, &withdrawals)
	if err != nil {
		return 0, 0, translate("store: unresolved counts", err)
	}
	return sweeps, withdrawals, nil
}
