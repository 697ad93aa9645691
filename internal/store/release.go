package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
)

// Actor is who asked for an operator action and why: both go into the events.
type Actor struct {
	Who  string
	Note string
}

func (a Actor) String() string {
	if a.Note == "" {
		return a.name()
	}
	return a.name() + " (" + a.Note + ")"
}

// name is who acted, as sweep_events.actor keeps it.
func (a Actor) name() string {
	if a.Who == "" {
		return "operator"
	}
	return PGText(a.Who, maxIDText)
}

// RecordFigures is what Interlace's record of a transfer said, as read for a release.
type RecordFigures struct {
	Status   string // as sent
	Final    bool   // status.Classify(Status) == status.Final
	WalletID string
	Currency string
	Amount   decimal.Decimal
	Problem  string // set when the record could not be used (not found, unusable): the release is refused
}

// Release outcomes.
const (
	ReleaseReleased = "released" // the held sweep is pending again and will run
	ReleaseRefused  = "refused"  // still held; the reason is in last_error
	ReleaseNotHeld  = "not_held" // nothing was held (the re-read may have settled the deposit already)
)

// ReleaseDeposit is the operator's release of a held deposit (contract §9),
// after the caller re-read Interlace's record (and recorded it through the
// ingest path, which settles a needs_review deposit by itself). A held sweep runs
// again only when the record is final and agrees with what the sweep would move
// (wallet, currency, amount); otherwise it stays held with the new reason. Either
// way the action is an event naming the actor.
func (s *Store) ReleaseDeposit(ctx context.Context, depositID string, rec RecordFigures, by Actor) (string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", translate("store: release deposit", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	var depStatus, upstream string
	if err := tx.QueryRow(ctx, `SELECT status, upstream_status FROM deposits WHERE id = $1 FOR UPDATE`, depositID).
		Scan(&depStatus, &upstream); err != nil {
		return "", translate("store: release deposit "+depositID, err)
	}
	var sweepStatus, wallet, currency string
	var amount decimal.Decimal
	err = tx.QueryRow(ctx, `SELECT status, from_wallet_id, currency, amount FROM sweeps WHERE deposit_id = $1 FOR UPDATE`,
		depositID).Scan(&sweepStatus, &wallet, &currency, &amount)
	if err != nil && err != pgx.ErrNoRows {
		return "", translate("store: release deposit "+depositID, err)
	}
	outcome := ReleaseNotHeld
	if sweepStatus == status.SweepHeld {
		var refuse string
		switch {
		case rec.Problem != "":
			refuse = rec.Problem
		case !rec.Final:
			refuse = "Interlace's record says " + rec.Status
		case rec.WalletID != wallet || rec.Currency != currency || !rec.Amount.Equal(amount):
			refuse = fmt.Sprintf("Interlace's record says %s %s in wallet %s; the sweep would move %s %s from wallet %s",
				rec.Amount, rec.Currency, rec.WalletID, amount, currency, wallet)
		}
		if refuse == "" {
			_, err = tx.Exec(ctx, `
WITH upd AS (
    UPDATE sweeps SET status = 'pending', run_at = now(), last_error = NULL, last_error_code = NULL, updated_at = now()
     WHERE deposit_id = $1
 RETURNING deposit_id
)
INSERT INTO sweep_events (deposit_id, from_status, to_status, reason, actor)
SELECT deposit_id, 'held', 'pending', $2, $3 FROM upd`, depositID,
				"released by "+by.String()+": Interlace's record is "+rec.Status+" and agrees", by.name())
			if err == nil {
				_, err = tx.Exec(ctx, `
UPDATE deposits SET confirmed_at = COALESCE(confirmed_at, now()), confirmed_amount = COALESCE(confirmed_amount, $2),
       updated_at = now()
 WHERE id = $1`, depositID, rec.Amount)
			}
			if err == nil {
				_, err = tx.Exec(ctx, `SELECT pg_notify('sweeper_sweeps', '')`)
			}
			outcome = ReleaseReleased
		} else {
			_, err = tx.Exec(ctx, `
WITH upd AS (
    UPDATE sweeps SET last_error = $2, updated_at = now() WHERE deposit_id = $1 RETURNING deposit_id
)
INSERT INTO sweep_events (deposit_id, from_status, to_status, reason, actor)
SELECT deposit_id, 'held', 'held', $3, $4 FROM upd`, depositID, "still held: "+refuse,
				"release by "+by.String()+" refused: "+refuse, by.name())
			outcome = ReleaseRefused
		}
		if err != nil {
			return "", translate("store: release deposit "+depositID, err)
		}
	}
	reason := "release by " + by.String() + ": " + outcome
	if rec.Problem != "" {
		reason += " (" + rec.Problem + ")"
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, reason)
VALUES ($1, $2, $2, $3, $4)`, depositID, depStatus, upstream, reason); err != nil {
		return "", translate("store: release deposit "+depositID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", translate("store: release deposit "+depositID, err)
	}
	return outcome, nil
}

// contradictedSQL is true when a notification or record contradicted deposit
// $1 (a refund, another amount) after it was final: the ingest recorded it as
// held or, the sweep being under way then, as a conflict.
const contradictedSQL = `EXISTS (SELECT 1 FROM webhook_deliveries WHERE transfer_id = $1 AND effect IN ('conflict', 'held'))`

// HoldIfContradicted holds a failed sweep whose deposit was contradicted, and
// reports whether it did. The worker calls it after recording a rejection: a
// contradiction that arrived while the transfer was in flight was only recorded
// (holding then would have lost the worker's outcome), and a sweep left failed
// would be requeued by a retry, sweeping money that may have left (a refund is
// often why the transfer was rejected). Held, only a release, which re-reads
// Interlace first, moves it. A contradiction arriving later holds it by itself
// (the ingest holds failed sweeps).
func (s *Store) HoldIfContradicted(ctx context.Context, depositID string) (bool, error) {
	const why = "the transfer was rejected and the deposit was contradicted while it was under way: release it once Interlace's record agrees"
	tag, err := s.pool.Exec(ctx, `
WITH upd AS (
    UPDATE sweeps SET status = 'held', last_error = COALESCE(last_error || '; ', '') || $2, updated_at = now()
     WHERE deposit_id = $1 AND status = 'failed' AND `+contradictedSQL+`
 RETURNING deposit_id
)
INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
SELECT deposit_id, 'failed', 'held', 'held: ' || $2 FROM upd`, depositID, why)
	if err != nil {
		return false, translate("store: hold contradicted sweep "+depositID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// RetryParams are the current configuration's answers a retry needs.
type RetryParams struct {
	// SkipReason re-asks, under the current configuration, whether a deposit of
	// this account, currency and origin is swept ("" = it is).
	SkipReason func(accountID, currency, origin string) string
	// NeedConfirm: a deposit not yet confirmed by Interlace's record waits for it.
	NeedConfirm bool
	// ToCurrency is the Infinity Account's currency.
	ToCurrency string
	// ClientTransactionID is the deposit's one clientTransactionId (ids.SweepTransactionID).
	ClientTransactionID uuid.UUID
}

// RetryDeposit is the operator's retry (contract §5, §9): a failed sweep is
// requeued under its clientTransactionId; a skipped final deposit whose skip no
// longer holds under the current configuration (e.g. its currency was added to
// SWEEPER_SWEEP_CURRENCIES) gets its sweep now, under the same deterministic id,
// or waits for Interlace's record first. Anything else is ErrInvalidState.
func (s *Store) RetryDeposit(ctx context.Context, depositID string, p RetryParams, by Actor) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return translate("store: retry deposit", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var depStatus, upstream, account, currency string
	var origin, skip *string
	var amount, confirmedAmount *decimal.Decimal
	var confirmed bool
	err = tx.QueryRow(ctx, `
SELECT status, upstream_status, account_id, currency, origin, skip_reason, amount, confirmed_amount, confirmed_at IS NOT NULL
  FROM deposits WHERE id = $1 FOR UPDATE`, depositID).
		Scan(&depStatus, &upstream, &account, &currency, &origin, &skip, &amount, &confirmedAmount, &confirmed)
	if err != nil {
		return translate("store: retry deposit "+depositID, err)
	}
	var sweepStatus string
	err = tx.QueryRow(ctx, `SELECT status FROM sweeps WHERE deposit_id = $1 FOR UPDATE`, depositID).Scan(&sweepStatus)
	if err != nil && err != pgx.ErrNoRows {
		return translate("store: retry deposit "+depositID, err)
	}
	var contradicted bool
	if sweepStatus == status.SweepFailed {
		// A contradiction recorded after the sweep started (a refund, say) would
		// make a requeue sweep money that may have left: hold it for a release,
		// which re-reads Interlace first.
		err = tx.QueryRow(ctx, `SELECT `+contradictedSQL, depositID).Scan(&contradicted)
		if err != nil {
			return translate("store: retry deposit "+depositID, err)
		}
	}
	switch {
	case sweepStatus == status.SweepFailed && contradicted:
		const why = "a later notification or record contradicted the deposit: release it once Interlace's record agrees"
		_, err = tx.Exec(ctx, `
WITH upd AS (
    UPDATE sweeps SET status = 'held', last_error = $2, updated_at = now() WHERE deposit_id = $1 RETURNING deposit_id
)
INSERT INTO sweep_events (deposit_id, from_status, to_status, reason, actor)
SELECT deposit_id, 'failed', 'held', $3, $4 FROM upd`, depositID, why, "retry by "+by.String()+" held instead: "+why, by.name())
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			return translate("store: retry deposit "+depositID, err)
		}
		return fmt.Errorf("store: retry deposit %s: held, not requeued: %s: %w", depositID, why, ErrInvalidState)
	case sweepStatus == status.SweepFailed:
		_, err = tx.Exec(ctx, requeueFailedSQL, depositID, "requeued by "+by.String(), by.name())
	case sweepStatus == "" && depStatus == status.DepositFinal && skip != nil:
		o := "blockchain" // deposits recorded before origin was kept were all taken as from the chain
		if origin != nil {
			o = *origin
		}
		if now := p.SkipReason(account, currency, o); now != "" {
			_, _ = tx.Exec(ctx, `UPDATE deposits SET skip_reason = $2 WHERE id = $1`, depositID, now)
			_, _ = tx.Exec(ctx, `INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, reason)
VALUES ($1, 'final', 'final', $2, $3)`, depositID, upstream, "retry by "+by.String()+" refused: "+now)
			if err := tx.Commit(ctx); err != nil {
				return translate("store: retry deposit "+depositID, err)
			}
			return fmt.Errorf("store: retry deposit %s: still skipped: %s: %w", depositID, now, ErrInvalidState)
		}
		_, err = tx.Exec(ctx, `UPDATE deposits SET skip_reason = NULL, updated_at = now() WHERE id = $1`, depositID)
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, reason)
VALUES ($1, 'final', 'final', $2, $3)`, depositID, upstream, "retried by "+by.String()+": was skipped ("+*skip+")")
		}
		if err == nil && p.NeedConfirm && !confirmed {
			_, err = tx.Exec(ctx, `INSERT INTO deposit_confirmations (deposit_id) VALUES ($1)
ON CONFLICT (deposit_id) DO UPDATE SET due_at = COALESCE(deposit_confirmations.due_at, now()), updated_at = now()`, depositID)
			if err == nil {
				_, err = tx.Exec(ctx, `SELECT pg_notify('sweeper_confirm', '')`)
			}
		} else if err == nil {
			amt := amount
			if confirmedAmount != nil {
				amt = confirmedAmount
			}
			_, err = tx.Exec(ctx, `
WITH ins AS (
    INSERT INTO sweeps (deposit_id, client_transaction_id, status, run_at, account_id, from_wallet_id, currency,
                        amount, to_currency)
    SELECT id, $2, 'pending', now(), account_id, wallet_id, currency, $3, $4 FROM deposits WHERE id = $1
 RETURNING deposit_id
), ev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason, actor)
    SELECT deposit_id, NULL, 'pending', $5, $6 FROM ins
)
SELECT pg_notify('sweeper_sweeps', '') FROM ins`, depositID, p.ClientTransactionID, amt, p.ToCurrency,
				"retried by "+by.String()+" after a configuration change", by.name())
		}
	default:
		st := sweepStatus
		if st == "" {
			st = "deposit " + depStatus
		}
		return fmt.Errorf("store: retry deposit %s is %s: %w", depositID, st, ErrInvalidState)
	}
	if err != nil {
		return translate("store: retry deposit "+depositID, err)
	}
	return translate("store: retry deposit "+depositID, tx.Commit(ctx))
}
