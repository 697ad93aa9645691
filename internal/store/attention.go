package store

import (
	"context"
	"time"
)

// StuckWaitingAfter is how long a deposit may wait (not final, or final and
// waiting for Interlace's record) before it counts as stuck (contract §9; the
// same hour as sweep_ledger.stuck).
const StuckWaitingAfter = time.Hour

// Attention counts the deposits that need a person or have waited too long.
type Attention struct {
	Held         int // sweeps held (a contradiction, a disagreeing record) and needs_review deposits
	NeedsReview  int // deposits whose notification had an unusable money field
	Unresolved   int // sweeps whose money may have moved
	StuckWaiting int // deposits waiting over StuckWaitingAfter
}

// AttentionCounts reads the counts from the small partial indexes (sweeps_attention,
// deposits_open) and the confirmation queue, never the whole history.
func (s *Store) AttentionCounts(ctx context.Context) (Attention, error) {
	var a Attention
	err := s.pool.QueryRow(ctx, `
SELECT (SELECT count(*) FROM sweeps WHERE status = 'held'),
       (SELECT count(*) FROM deposits WHERE status = 'needs_review'),
       (SELECT count(*) FROM sweeps WHERE status = 'unresolved'),
       (SELECT count(*) FROM deposits d
         WHERE d.status IN ('pending', 'unknown') AND d.received_at < now() - $1::interval
           AND NOT EXISTS (SELECT 1 FROM sweeps s WHERE s.deposit_id = d.id))
     + (SELECT count(*) FROM deposit_confirmations c JOIN deposits d ON d.id = c.deposit_id
         WHERE c.due_at IS NOT NULL AND d.received_at < now() - $1::interval)`, StuckWaitingAfter).
		Scan(&a.Held, &a.NeedsReview, &a.Unresolved, &a.StuckWaiting)
	if err != nil {
		return a, translate("store: attention counts", err)
	}
	a.Held += a.NeedsReview // sweep_ledger shows needs_review deposits as held
	return a, nil
}
