package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sweeperhq/sweeper/internal/status"
)

// EffectWithdrawal: the delivery was about one of our withdrawals' blockchain
// transfers and was applied to it (or noted, when nothing was to change).
const EffectWithdrawal Effect = "withdrawal"

// WithdrawalNotice is a validated notification about a blockchain transfer (the
// webhook package checks it as strictly as a deposit). It is matched to a
// withdrawal by the idempotency key we sent or by Interlace's transfer id.
type WithdrawalNotice struct {
	TransferID     string    // Interlace's blockchain transfer id; "" when absent
	IdempotencyKey uuid.UUID // the key sent at step 5; uuid.Nil when absent
	Status         string    // as sent (non-empty)
	TxHash         string    // "" while pending
	Resource       json.RawMessage
}

func hasWithdrawalNotice(ds []Delivery) bool {
	for i := range ds {
		if ds[i].Withdrawal != nil {
			return true
		}
	}
	return false
}

// ingestWithNotices records deliveries of which some carry a withdrawal notice,
// in one real transaction: each delivery through sweeper_ingest, and each notice
// applied to its withdrawal by applyNotice (Go decides; SQL only reads and
// writes). Withdrawal notifications are rare, so they skip the pipelined path.
func (s *Store) ingestWithNotices(ctx context.Context, ds []Delivery) ([]Effect, error) {
	effects := make([]Effect, len(ds))
	var err error
	for try := 0; try < 5; try++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for i := range ds {
				args, err := ingestArgs(&ds[i])
				if err != nil {
					return err
				}
				var e string
				if err := tx.QueryRow(ctx, ingestSQL, args...).Scan(&e); err != nil {
					return err
				}
				effects[i] = Effect(e)
				if effects[i] == EffectIgnored && ds[i].Withdrawal != nil {
					if effects[i], err = applyNotice(ctx, tx, ds[i].NotificationID, ds[i].Withdrawal); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err == nil || !isRetryableTx(err) {
			break
		}
	}
	if err != nil {
		return nil, translate("store: ingest withdrawal notification", err)
	}
	return effects, nil
}

// applyNotice is what the 00002 trigger did, in Go. Notifications may arrive
// late, repeated or out of order, and a runner may hold the withdrawal right now:
//   - a withdrawal that ended, or whose chain status is already final, is left
//     alone (a known final chain status is never overwritten);
//   - one waiting for confirmation completes on a final status with a hash, or
//     fails on a failed status (the chain's verdict: money did not leave);
//   - otherwise the chain status and hash are noted; the runner's own poll decides.
func applyNotice(ctx context.Context, tx pgx.Tx, notificationID string, n *WithdrawalNotice) (Effect, error) {
	var w struct {
		id                                   uuid.UUID
		status, step                         string
		chainStatus, chainTransferID, txHash *string
	}
	var key any
	if n.IdempotencyKey != uuid.Nil {
		key = n.IdempotencyKey
	}
	err := tx.QueryRow(ctx, `
SELECT id, status, step, chain_status, chain_transfer_id, tx_hash FROM withdrawals
 WHERE ($1::uuid IS NOT NULL AND transfer_request_id = $1::uuid) OR ($2::text <> '' AND chain_transfer_id = $2::text)
 LIMIT 1
   FOR UPDATE`, key, n.TransferID).Scan(&w.id, &w.status, &w.step, &w.chainStatus, &w.chainTransferID, &w.txHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return EffectIgnored, nil // someone else's transfer (a withdrawal made outside sweeper)
	}
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET effect = 'withdrawal', transfer_id = COALESCE(transfer_id, NULLIF($2, ''))
 WHERE notification_id = $1`, notificationID, n.TransferID); err != nil {
		return "", err
	}
	ended := w.status == WithdrawalCompleted || w.status == WithdrawalFailed || w.status == WithdrawalStopped ||
		w.status == WithdrawalUnresolved
	if ended || (w.chainStatus != nil && status.Classify(*w.chainStatus) != status.Waiting && status.Classify(*w.chainStatus) != status.Unknown) {
		return EffectWithdrawal, nil
	}
	class := status.Classify(n.Status)
	waiting := w.status == WithdrawalPending && w.step == StepConfirm
	transferID := n.TransferID
	if w.chainTransferID != nil {
		transferID = *w.chainTransferID
	}
	resource := n.Resource
	if len(resource) == 0 {
		resource = json.RawMessage("{}")
	}
	switch {
	case waiting && class == status.Final && n.TxHash != "":
		_, err = tx.Exec(ctx, `
WITH upd AS (
    UPDATE withdrawals
       SET status = 'completed', step = 'done', chain_status = $2, tx_hash = $3,
           chain_transfer_id = COALESCE(chain_transfer_id, NULLIF($4, '')), completed_at = now(), updated_at = now(),
           last_error = NULL, last_error_code = NULL, attempts = 0
     WHERE id = $1
 RETURNING id
), st AS (
    INSERT INTO withdrawal_steps (withdrawal_id, step, upstream_id, upstream_status, response, attempts)
    SELECT id, 'confirm', NULLIF($4, ''), $2, $5::jsonb, 0 FROM upd
    ON CONFLICT DO NOTHING
)
INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
SELECT id, 'pending', 'completed', 'confirm', $6 FROM upd`, w.id, n.Status, n.TxHash, transferID, string(resource),
			fmt.Sprintf("webhook %s: on-chain transfer %s, transactionHash %s", notificationID, n.Status, n.TxHash))
	case waiting && class == status.Failed:
		_, err = tx.Exec(ctx, `
WITH upd AS (
    UPDATE withdrawals
       SET status = 'failed', chain_status = $2, tx_hash = COALESCE(NULLIF($3, ''), tx_hash), failed_at = now(),
           updated_at = now(), last_error = 'on-chain transfer ' || $2
     WHERE id = $1
 RETURNING id
)
INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
SELECT id, 'pending', 'failed', 'confirm', $4 FROM upd`, w.id, n.Status, n.TxHash,
			fmt.Sprintf("webhook %s: on-chain transfer %s", notificationID, n.Status))
	case w.chainStatus == nil || *w.chainStatus != n.Status || (n.TxHash != "" && (w.txHash == nil || *w.txHash != n.TxHash)):
		_, err = tx.Exec(ctx, `
WITH upd AS (
    UPDATE withdrawals SET chain_status = $2, tx_hash = COALESCE(NULLIF($3, ''), tx_hash), updated_at = now()
     WHERE id = $1
 RETURNING id, status, step
)
INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
SELECT id, status, status, step, $4 FROM upd`, w.id, n.Status, n.TxHash,
			fmt.Sprintf("webhook %s: on-chain transfer %s", notificationID, n.Status))
	}
	if err != nil {
		return "", err
	}
	return EffectWithdrawal, nil
}
