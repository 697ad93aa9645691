package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/store"
)

// A batch is one implicit transaction (no BEGIN/COMMIT round trips): a failing
// statement in the middle must undo the ones before it.
func TestIngestBatchIsAllOrNothing(t *testing.T) {
	s, b := setup(t)
	poison := store.Delivery{NotificationID: "poison", Body: []byte("{}"), Outcome: "bogus"}
	batch := []store.Delivery{
		deposit("n1", "t1", "Closed", store.DepositFinal, "1"),
		poison,
		deposit("n2", "t2", "Closed", store.DepositFinal, "1"),
	}
	if _, err := s.IngestBatch(b.ctx, batch); err == nil {
		t.Fatal("batch with a poison delivery succeeded")
	}
	for _, table := range []string{"webhook_deliveries", "deposits", "sweeps", "sweep_events"} {
		if n := b.count(t, `SELECT count(*) FROM `+table); n != 0 {
			t.Fatalf("%s has %d rows after a failed batch", table, n)
		}
	}
	effects, err := s.IngestBatch(b.ctx, []store.Delivery{batch[0], batch[2], batch[0]})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Effect{store.EffectCreated, store.EffectCreated, store.EffectDuplicate}
	for i := range want {
		if effects[i] != want[i] {
			t.Fatalf("effects %v, want %v", effects, want)
		}
	}
}

func succeeded(sw store.Sweep, transferID string) store.Outcome {
	return store.Succeeded(sw, store.SweepResult{
		InterlaceTransferID: transferID, UpstreamStatus: "CLOSED",
		CreditedAmount: decimal.RequireFromString("0.995"), CreditedCurrency: "USD",
		FeeAmount: ptr(decimal.RequireFromString("0.005")), FeeCurrency: "USDC",
	}, store.Attempt{Worker: "w", StartedAt: time.Now(), Duration: time.Millisecond, HTTPStatus: 200, Outcome: store.AttemptSucceeded})
}

func TestRecordOutcomesInOneTransaction(t *testing.T) {
	s, b := setup(t)
	for i := 0; i < 4; i++ {
		mustIngest(t, s, deposit(fmt.Sprintf("n%d", i), fmt.Sprintf("t%d", i), "Closed", store.DepositFinal, "1"), store.EffectCreated)
	}
	jobs := claim(t, s, "w", 4, time.Minute)
	if len(jobs) != 4 {
		t.Fatalf("claimed %d", len(jobs))
	}
	stale := jobs[3]
	stale.LeaseToken = jobs[0].LeaseToken // not this job's lease: as if it had been taken over
	at := store.Attempt{Worker: "w", StartedAt: time.Now(), Outcome: store.AttemptRetry, Error: "boom"}
	outs := []store.Outcome{
		succeeded(jobs[0], "it-0"),
		store.Retry(jobs[1], time.Hour, "500", "upstream 500", store.RetryUnknown, at),
		store.Failed(jobs[2], "100001", "rejected", store.Attempt{Worker: "w", StartedAt: time.Now(), Outcome: store.AttemptRejected}),
		store.Retry(stale, time.Hour, "", "late", store.RetryUnknown, at),
	}
	res, err := s.RecordOutcomes(b.ctx, outs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range res[:3] {
		if e != nil {
			t.Fatalf("outcome %d: %v", i, e)
		}
	}
	if !errors.Is(res[3], store.ErrLeaseLost) {
		t.Fatalf("outcome on a lost lease: %v", res[3])
	}
	for id, want := range map[string]string{"t0": "succeeded", "t1": "pending", "t2": "failed", "t3": "in_flight"} {
		if n := b.count(t, `SELECT count(*) FROM sweeps WHERE deposit_id = $1 AND status = $2`, id, want); n != 1 {
			t.Fatalf("sweep %s is not %s", id, want)
		}
	}
	// Every call that left is audited, the lost lease included.
	if n := b.count(t, `SELECT count(*) FROM sweep_attempts`); n != 4 {
		t.Fatalf("attempt rows = %d, want 4", n)
	}
	if n := b.count(t, `SELECT count(*) FROM sweep_attempts WHERE outcome = 'lease_lost' AND deposit_id = 't3'`); n != 1 {
		t.Fatalf("lease_lost attempt rows = %d", n)
	}
}

// An outcome the database refuses fails only itself, although it shared a transaction with others. The
// sharing is forced: the first batch is held at the door, so the next one is exactly the four outcomes sent
// while it waits (ParallelAt 4), the poison among them; the rest queue behind both.
func TestOutcomeRecorderIsolatesAPoisonOutcome(t *testing.T) {
	s, b := setup(t)
	const n, poisonAt = 40, 4
	for i := 0; i < n; i++ {
		mustIngest(t, s, deposit(fmt.Sprintf("n%d", i), fmt.Sprintf("t%02d", i), "Closed", store.DepositFinal, "1"), store.EffectCreated)
	}
	jobs := claim(t, s, "w", n, time.Minute)
	rec := store.NewOutcomeRecorder(s, store.BatcherOptions{Committers: 2, MaxBatch: 8, ParallelAt: 4})
	t.Cleanup(rec.Close) // after the gate's own cleanup has opened it
	gate := newBatchGate(t)
	store.WrapOutcomeBatches(rec, gateBatches[store.Outcome, error](gate))
	errs := make([]error, n)
	var wg sync.WaitGroup
	send := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tid := "it-" + jobs[i].DepositID
			if i == poisonAt {
				tid = "it-\x00" // PostgreSQL refuses NUL in text: this statement fails its batch
			}
			errs[i] = rec.Record(b.ctx, succeeded(jobs[i], tid))
		}()
	}
	send(0)
	if got := gate.next(t); got != 1 {
		t.Fatalf("first batch has %d outcomes, want the lone first one", got)
	}
	for i := 1; i <= poisonAt; i++ {
		send(i)
	}
	if got := gate.next(t); got != 4 {
		t.Fatalf("second batch has %d outcomes, want the 4 sent while the first waited", got)
	}
	for i := poisonAt + 1; i < n; i++ {
		send(i)
	}
	gate.open()
	wg.Wait()
	rec.Close()
	for i, err := range errs {
		if (i == poisonAt) != (err != nil) {
			t.Fatalf("outcome %d: %v", i, err)
		}
	}
	if failed := gate.failedRuns(); len(failed) != 1 || failed[0] != 4 {
		t.Fatalf("failed transactions by size %v, want one: the poison's batch of 4", failed)
	}
	largest := 0
	for _, r := range gate.runs() {
		largest = max(largest, r.size)
	}
	if largest < 4 {
		t.Fatalf("largest batch %d: the outcomes were never grouped", largest)
	}
	if got := b.count(t, `SELECT count(*) FROM sweeps WHERE status = 'succeeded'`); got != n-1 {
		t.Fatalf("succeeded = %d, want %d", got, n-1)
	}
	if err := rec.Record(b.ctx, succeeded(jobs[poisonAt], "it-late")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("closed recorder: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
