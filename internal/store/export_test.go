package store

import "context"

// BatchFunc is a group commit's batch operation: all items in one transaction, results in item order.
type BatchFunc[T, R any] = func(ctx context.Context, items []T) ([]R, error)

// WrapIngestBatches replaces b's batch operation by wrap(the real one), so that a test can see and pace the
// batches the dispatcher forms while every item still goes through the real IngestBatch. Call it before the
// first Ingest: the committers read the operation only after the dispatcher hands them work.
func WrapIngestBatches(b *Batcher, wrap func(BatchFunc[Delivery, Effect]) BatchFunc[Delivery, Effect]) {
	b.gc.batch = wrap(b.gc.batch)
}

// WrapOutcomeBatches is WrapIngestBatches for an OutcomeRecorder (the real RecordOutcomes).
func WrapOutcomeBatches(r *OutcomeRecorder, wrap func(BatchFunc[Outcome, error]) BatchFunc[Outcome, error]) {
	r.gc.batch = wrap(r.gc.batch)
}
