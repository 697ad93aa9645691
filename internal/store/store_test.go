package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/sweep"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type bundle struct {
	pool *pgxpool.Pool
	ctx  context.Context
}

func setup(t *testing.T) (*store.Store, *bundle) {
	t.Helper()
	t.Parallel()
	pool := pgtest.NewPool(t)
	return store.New(pool), &bundle{pool: pool, ctx: context.Background()}
}

// deposit is a factory for deposit deliveries.
func deposit(notificationID, transferID, upstreamStatus, status, amount string) store.Delivery {
	return store.Delivery{
		NotificationID: notificationID, EventType: "CRYPTO_TRANSFER.UPDATED", Body: []byte(`{"id":"` + notificationID + `"}`),
		Outcome: store.OutcomeDeposit, TransferID: transferID,
		Deposit: &store.DepositInput{
			TransferID: transferID, AccountID: "acc", WalletID: "wallet-1", Chain: "ETH", Currency: "USDC",
			Amount: decimal.RequireFromString(amount), UpstreamStatus: upstreamStatus, Status: status,
			ClientTransactionID: ids.SweepTransactionID(transferID), SweepAccountID: "acc", ToCurrency: "USD",
		},
	}
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func mustIngest(t *testing.T, s *store.Store, d store.Delivery, want store.Effect) {
	t.Helper()
	got, err := s.Ingest(context.Background(), d)
	if err != nil {
		t.Fatalf("ingest %s: %v", d.NotificationID, err)
	}
	if got != want {
		t.Fatalf("ingest %s: effect %q, want %q", d.NotificationID, got, want)
	}
}

func TestIngest(t *testing.T) {
	t.Run("DuplicateDeliveryIsNoOp", func(t *testing.T) {
		s, b := setup(t)
		d := deposit("n1", "t1", "Closed", store.DepositFinal, "10.5")
		mustIngest(t, s, d, store.EffectCreated)
		mustIngest(t, s, d, store.EffectDuplicate)
		if n := b.count(t, `SELECT count(*) FROM deposits`); n != 1 {
			t.Fatalf("deposits = %d", n)
		}
		if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 1 {
			t.Fatalf("sweeps = %d", n)
		}
		if n := b.count(t, `SELECT count(*) FROM deposit_events`); n != 1 {
			t.Fatalf("deposit events = %d", n)
		}
	})

	t.Run("SameTransferNewNotificationChangesNothing", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "10.5"), store.EffectCreated)
		mustIngest(t, s, deposit("n2", "t1", "CLOSED", store.DepositFinal, "10.50"), store.EffectUnchanged)
		if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 1 {
			t.Fatalf("sweeps = %d", n)
		}
		if n := b.count(t, `SELECT count(*) FROM webhook_deliveries`); n != 2 {
			t.Fatalf("deliveries = %d, want both kept", n)
		}
	})

	t.Run("OutOfOrderNeverMovesBackwards", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n2", "t1", "Closed", store.DepositFinal, "10.5"), store.EffectCreated)
		mustIngest(t, s, deposit("n1", "t1", "Pending", store.DepositPending, "10.5"), store.EffectStale)
		// A contradiction before the money moved holds the sweep (contract §9).
		mustIngest(t, s, deposit("n3", "t1", "Failed", store.DepositFailed, "10.5"), store.EffectHeld)
		var status, up string
		if err := b.pool.QueryRow(b.ctx, `SELECT status, upstream_status FROM deposits WHERE id='t1'`).Scan(&status, &up); err != nil {
			t.Fatal(err)
		}
		if status != store.DepositFinal || up != "Closed" {
			t.Fatalf("deposit %s/%s, want final/Closed", status, up)
		}
		if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE effect='held' AND reason LIKE 'deposit is Closed%'`); n != 1 {
			t.Fatalf("conflict not recorded with reason")
		}
		if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status='held' AND last_error LIKE '%later notification says Failed%'`); n != 1 {
			t.Fatalf("sweep not held with the reason")
		}
	})

	t.Run("PendingThenFinalCreatesOneSweepWithFinalAmount", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Pending", store.DepositPending, "10"), store.EffectCreated)
		if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 0 {
			t.Fatalf("pending deposit got a sweep")
		}
		row, err := s.Ledger(b.ctx, "t1")
		if err != nil || row.SweepStatus != "waiting" {
			t.Fatalf("ledger %+v %v, want waiting", row, err)
		}
		mustIngest(t, s, deposit("n2", "t1", "Closed", store.DepositFinal, "10.000001"), store.EffectAdvanced)
		row, err = s.Ledger(b.ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if row.SweepStatus != "pending" || !row.Amount.Equal(decimal.RequireFromString("10.000001")) {
			t.Fatalf("ledger %+v", row)
		}
		if *row.ClientTransactionID != ids.SweepTransactionID("t1") {
			t.Fatalf("client transaction id %s", row.ClientTransactionID)
		}
		if n := b.count(t, `SELECT count(*) FROM deposit_events WHERE deposit_id='t1' AND from_status='pending' AND to_status='final'`); n != 1 {
			t.Fatalf("transition not recorded")
		}
	})

	t.Run("FailedAndUnknownAndSkippedAreNeverSwept", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Rejected", store.DepositFailed, "1"), store.EffectCreated)
		mustIngest(t, s, deposit("n2", "t2", "Weird", store.DepositUnknown, "1"), store.EffectCreated)
		skip := deposit("n3", "t3", "Closed", store.DepositFinal, "1")
		skip.Deposit.SkipReason = "currency ETH is not swept"
		mustIngest(t, s, skip, store.EffectCreated)
		if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 0 {
			t.Fatalf("sweeps = %d", n)
		}
		for id, want := range map[string]string{"t1": "skipped", "t2": "waiting", "t3": "skipped"} {
			row, err := s.Ledger(b.ctx, id)
			if err != nil || row.SweepStatus != want || row.LastError == nil {
				t.Fatalf("%s: %+v %v, want %s with a reason", id, row, err, want)
			}
		}
	})

	t.Run("UnusableIsKeptWithReason", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, store.Delivery{NotificationID: "n1", Body: []byte("{}"), Outcome: store.OutcomeUnusable, Reason: "bad amount"}, store.EffectUnusable)
		if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE outcome='unusable' AND reason='bad amount'`); n != 1 {
			t.Fatalf("unusable delivery not kept")
		}
		if n := b.count(t, `SELECT count(*) FROM deposits`); n != 0 {
			t.Fatalf("unusable delivery made a deposit")
		}
	})

	t.Run("RejectsNonPositiveAmountBeforeSQL", func(t *testing.T) {
		s, _ := setup(t)
		if _, err := s.Ingest(context.Background(), deposit("n1", "t1", "Closed", store.DepositFinal, "0")); err == nil {
			t.Fatal("zero amount accepted")
		}
	})
}

// Interlace may deliver the same notification many times at once, and several notifications about one
// transfer concurrently: exactly one deposit and one sweep here, and, what the merchant cares about, one
// movement of the money at Interlace. The deposit is a real one in the sandbox's master wallet (which holds
// 1,000 USDC of its own, so a second transfer under any id would go through and be counted), and the real
// sweep worker sweeps what the store recorded, over HTTP.
func TestConcurrentDuplicatesMakeOneDepositAndOneSweep(t *testing.T) {
	s, b := setup(t)
	const token = "store-test-token"
	sb := sandbox.New(sandbox.Config{StaticToken: token, Logger: zap.NewNop()}) // no WebhookURL: this test is the only notifier
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); srv.Close() })
	dep, err := sb.CreateDeposit(b.ctx, sandbox.DepositRequest{Amount: decimal.RequireFromString("5")})
	if err != nil {
		t.Fatal(err)
	}
	ctid := ids.SweepTransactionID(dep.ID)
	walletUSDC := func() decimal.Decimal {
		for _, w := range sb.Ledger().Wallets {
			if w.ID == dep.WalletID {
				return w.Balances["USDC"]
			}
		}
		t.Fatalf("wallet %s not in the sandbox", dep.WalletID)
		return decimal.Zero
	}
	heldBefore := walletUSDC() // the deposit included
	delivery := func(notificationID string) store.Delivery {
		return store.Delivery{
			NotificationID: notificationID, EventType: "CRYPTO_TRANSFER.UPDATED", Body: []byte(`{"id":"` + notificationID + `"}`),
			Outcome: store.OutcomeDeposit, TransferID: dep.ID,
			Deposit: &store.DepositInput{
				TransferID: dep.ID, AccountID: dep.AccountID, WalletID: dep.WalletID, Chain: dep.Chain, Currency: dep.Currency,
				Amount: dep.Amount, UpstreamStatus: "Closed", Status: store.DepositFinal,
				ClientTransactionID: ctid, SweepAccountID: dep.AccountID, ToCurrency: "USD",
			},
		}
	}

	const n = 64
	var wg sync.WaitGroup
	effects := make(chan store.Effect, 2*n)
	errs := make(chan error, 2*n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			e, err := s.Ingest(b.ctx, delivery("same-notification"))
			effects <- e
			errs <- err
		}()
		go func(i int) {
			defer wg.Done()
			<-start
			e, err := s.Ingest(b.ctx, delivery(fmt.Sprintf("other-%d", i)))
			effects <- e
			errs <- err
		}(i)
	}
	close(start)
	wg.Wait()
	close(effects)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	counts := map[store.Effect]int{}
	for e := range effects {
		counts[e]++
	}
	if counts[store.EffectCreated] != 1 || counts[store.EffectDuplicate] != n-1 || counts[store.EffectUnchanged] != n {
		t.Fatalf("effects %v", counts)
	}
	if d, sw := b.count(t, `SELECT count(*) FROM deposits`), b.count(t, `SELECT count(*) FROM sweeps`); d != 1 || sw != 1 {
		t.Fatalf("deposits=%d sweeps=%d", d, sw)
	}

	// The real worker sweeps whatever the store holds.
	client, err := interlace.New(interlace.Config{BaseURL: srv.URL, Tokens: interlace.StaticToken(token)})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sweep.New(sweep.Config{Owner: "store-test", AccountID: dep.AccountID}, s, client, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		row, err := s.Ledger(b.ctx, dep.ID)
		if err == nil && row.SweepStatus == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("sweep never succeeded: %+v %v", row, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Give a duplicate sweep, if the store had queued one, the time to go out before counting.
	time.Sleep(700 * time.Millisecond) // > the worker's 500 ms poll interval
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Interlace's side: one transfer out of the deposit's wallet, under the deposit's id, asked for once.
	led := sb.Ledger()
	var out []string // "amount under clientTransactionId"
	for _, tr := range led.InternalTransfers {
		if tr.Applied && tr.From.ID == dep.WalletID {
			out = append(out, tr.Amount.String()+" under "+tr.ClientTransactionID)
		}
	}
	if want := dep.Amount.String() + " under " + ctid.String(); len(out) != 1 || out[0] != want {
		t.Fatalf("upstream transfers out of the deposit's wallet: %q; want exactly one, %s", out, want)
	}
	if got := led.RequestsByIdempotencyKey[ctid.String()]; got != 1 {
		t.Fatalf("%d transfer requests under %s, want 1 (no fault was injected)", got, ctid)
	}
	if got, want := walletUSDC(), heldBefore.Sub(dep.Amount); !got.Equal(want) {
		t.Fatalf("wallet holds %s USDC after the sweep, want %s: the deposit left it other than once", got, want)
	}
}

// Concurrent deliveries share transactions, and each caller is answered with its own effect. The batch is
// forced, not hoped for: while a table lock holds the first transaction, the dispatcher may open a second one
// only once ParallelAt deliveries wait, so a committed batch of at least ParallelAt is certain (a batcher that
// committed every delivery alone would report batches of 1 and fail here, on an idle machine as on a busy one).
func TestBatcherGroupsAndAnswersEach(t *testing.T) {
	s, b := setup(t)
	const n, parallelAt = 200, 4
	var sizes []int
	var mu sync.Mutex
	bat := store.NewBatcher(s, store.BatcherOptions{Committers: 2, MaxBatch: 16, ParallelAt: parallelAt,
		OnBatch: func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }})
	t.Cleanup(bat.Close)

	lock, err := b.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback(b.ctx) }()
	if _, err := lock.Exec(b.ctx, `LOCK TABLE webhook_deliveries IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e, err := bat.Ingest(b.ctx, deposit(fmt.Sprintf("n%d", i), fmt.Sprintf("t%d", i%50), "Closed", store.DepositFinal, "1"))
			if err != nil || (e != store.EffectCreated && e != store.EffectUnchanged) {
				t.Errorf("delivery %d: %q %v", i, e, err)
			}
		}(i)
	}
	// Both transactions are open and waiting on the lock: the second one carries at least ParallelAt.
	deadline := time.Now().Add(10 * time.Second)
	for b.count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("a second transaction never opened beside the first (Committers 2, ParallelAt %d)", parallelAt)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := lock.Rollback(b.ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	bat.Close()
	if _, err := bat.Ingest(b.ctx, deposit("late", "t-late", "Closed", store.DepositFinal, "1")); err == nil {
		t.Fatal("closed batcher accepted a delivery")
	}
	total, largest := 0, 0
	for _, sz := range sizes {
		total += sz
		largest = max(largest, sz)
	}
	if total != n {
		t.Fatalf("committed %d deliveries, want %d", total, n)
	}
	if largest < parallelAt || len(sizes) >= n {
		t.Fatalf("largest committed batch %d in %d batches: want one of at least %d; deliveries were not grouped",
			largest, len(sizes), parallelAt)
	}
	if d, sw := b.count(t, `SELECT count(*) FROM deposits`), b.count(t, `SELECT count(*) FROM sweeps`); d != 50 || sw != 50 {
		t.Fatalf("deposits=%d sweeps=%d", d, sw)
	}
}

// A delivery the database refuses fails only itself, although it shared a transaction with others. The
// sharing is forced: the first batch is held at the door, so the next one is exactly the four deliveries
// sent while it waits (ParallelAt 4), the poison among them.
func TestBatchWithPoisonDeliveryRecordsTheOthers(t *testing.T) {
	s, b := setup(t)
	bat := store.NewBatcher(s, store.BatcherOptions{Committers: 2, MaxBatch: 8, ParallelAt: 4})
	t.Cleanup(bat.Close) // after the gate's own cleanup has opened it
	gate := newBatchGate(t)
	store.WrapIngestBatches(bat, gateBatches[store.Delivery, store.Effect](gate))
	// A currency longer than any sane code passes Go but is stored; make the poison
	// a delivery whose outcome violates the table's CHECK instead.
	poison := store.Delivery{NotificationID: "poison", Body: []byte("{}"), Outcome: "bogus"}
	const poisonAt = 4
	var wg sync.WaitGroup
	results := make([]error, 9)
	send := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := deposit(fmt.Sprintf("n%d", i), fmt.Sprintf("t%d", i), "Closed", store.DepositFinal, "1")
			if i == poisonAt {
				d = poison
			}
			_, results[i] = bat.Ingest(b.ctx, d)
		}()
	}
	send(0)
	if got := gate.next(t); got != 1 {
		t.Fatalf("first batch has %d deliveries, want the lone first one", got)
	}
	for _, i := range []int{1, 2, 3, poisonAt} {
		send(i)
	}
	if got := gate.next(t); got != 4 {
		t.Fatalf("second batch has %d deliveries, want the 4 sent while the first waited", got)
	}
	for i := 5; i < 9; i++ {
		send(i)
	}
	gate.open()
	wg.Wait()
	for i, err := range results {
		if (i == poisonAt) != (err != nil) {
			t.Fatalf("delivery %d: err %v", i, err)
		}
	}
	if failed := gate.failedRuns(); len(failed) != 1 || failed[0] != 4 {
		t.Fatalf("failed transactions by size %v, want one: the poison's batch of 4", failed)
	}
	if n := b.count(t, `SELECT count(*) FROM deposits`); n != 8 {
		t.Fatalf("deposits = %d, want 8", n)
	}
}

func claim(t *testing.T, s *store.Store, owner string, limit int, lease time.Duration) []store.Sweep {
	t.Helper()
	got, err := s.ClaimSweeps(context.Background(), store.ClaimParams{Owner: owner, Limit: limit, Lease: lease, ToWalletID: "infinity-1"})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestClaim(t *testing.T) {
	t.Run("ConcurrentClaimersNeverShareAJob", func(t *testing.T) {
		s, b := setup(t)
		for i := 0; i < 300; i++ {
			mustIngest(t, s, deposit(fmt.Sprintf("n%d", i), fmt.Sprintf("t%03d", i), "Closed", store.DepositFinal, "1"), store.EffectCreated)
		}
		var mu sync.Mutex
		seen := map[string]string{}
		var wg sync.WaitGroup
		for w := 0; w < 6; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				owner := fmt.Sprintf("w%d", w)
				for {
					got := claim(t, s, owner, 7, time.Minute)
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, j := range got {
						if prev, ok := seen[j.DepositID]; ok {
							t.Errorf("%s claimed by %s and %s", j.DepositID, prev, owner)
						}
						seen[j.DepositID] = owner
					}
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		if len(seen) != 300 {
			t.Fatalf("claimed %d of 300", len(seen))
		}
		if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status='in_flight' AND to_wallet_id='infinity-1'`); n != 300 {
			t.Fatalf("in flight = %d", n)
		}
	})

	t.Run("ExpiredLeaseIsResumedWithTheSameID", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "1"), store.EffectCreated)
		// The lease is long enough that a loaded machine (CI runs suites in
		// parallel) cannot let it expire before the second claim.
		const lease = time.Second
		first := claim(t, s, "dead-worker", 10, lease)
		if len(first) != 1 || first[0].Reclaimed {
			t.Fatalf("first claim %+v", first)
		}
		if again := claim(t, s, "other", 10, time.Minute); len(again) != 0 {
			t.Fatal("a live lease was claimed twice")
		}
		time.Sleep(lease + 100*time.Millisecond)
		second := claim(t, s, "other", 10, time.Minute)
		if len(second) != 1 || !second[0].Reclaimed || second[0].Attempts != 2 {
			t.Fatalf("second claim %+v", second)
		}
		if second[0].ClientTransactionID != first[0].ClientTransactionID || second[0].ClientTransactionID != ids.SweepTransactionID("t1") {
			t.Fatal("resumed sweep changed its clientTransactionId")
		}
		// The dead worker comes back to life and tries to record a retry: refused
		// (a success would count: see TestSuccessAfterLeaseLost).
		err := s.RecordOutcome(b.ctx, store.Retry(first[0], time.Second, "", "HTTP 503", store.RetryUnknown, store.Attempt{Worker: "dead-worker", StartedAt: time.Now(), Outcome: store.AttemptRetry}))
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale lease holder recorded an outcome: %v", err)
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_attempts WHERE outcome='lease_lost'`); n != 1 {
			t.Fatalf("lease_lost attempt not audited")
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_events WHERE reason LIKE 'lease expired%'`); n != 1 {
			t.Fatalf("reclaim not recorded")
		}
	})

	t.Run("RetryFailRequeue", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "1"), store.EffectCreated)
		j := claim(t, s, "w", 1, time.Minute)[0]
		if err := s.RecordOutcome(b.ctx, store.Retry(j, time.Hour, "", "HTTP 503", store.RetryUnknown, store.Attempt{Worker: "w", StartedAt: time.Now(), HTTPStatus: 503, Outcome: store.AttemptRetry})); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, s, "w", 1, time.Minute); len(got) != 0 {
			t.Fatal("retry claimed before it was due")
		}
		if _, err := b.pool.Exec(b.ctx, `UPDATE sweeps SET run_at = now()`); err != nil {
			t.Fatal(err)
		}
		j = claim(t, s, "w", 1, time.Minute)[0]
		if err := s.RecordOutcome(b.ctx, store.Failed(j, "010023", "insufficient balance", store.Attempt{Worker: "w", StartedAt: time.Now(), Code: "010023", Outcome: store.AttemptRejected})); err != nil {
			t.Fatal(err)
		}
		row, _ := s.Ledger(b.ctx, "t1")
		if row.SweepStatus != "failed" || row.LastError == nil || *row.LastError != "insufficient balance" || row.Attempts != 2 {
			t.Fatalf("ledger %+v", row)
		}
		if err := s.RequeueSweep(b.ctx, "t1", store.Actor{Who: "ops", Note: "fixed balance"}); err != nil {
			t.Fatal(err)
		}
		if err := s.RequeueSweep(b.ctx, "t1", store.Actor{Who: "ops", Note: "again"}); err == nil {
			t.Fatal("requeued a pending sweep")
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_events WHERE deposit_id = 't1' AND actor = 'ops'
		    AND reason = 'requeued by ops (fixed balance)'`); n != 1 {
			t.Fatal("the requeue's event does not name its actor")
		}
		j = claim(t, s, "w", 1, time.Minute)[0]
		if j.ClientTransactionID != ids.SweepTransactionID("t1") {
			t.Fatal("requeue changed the id")
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_events WHERE deposit_id='t1'`); n != 7 {
			t.Fatalf("events = %d, want 7 (created, claimed, retry, claimed, failed, requeued, claimed)", n)
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_attempts WHERE deposit_id='t1'`); n != 2 {
			t.Fatalf("attempts = %d", n)
		}
	})

	t.Run("ReleaseLeasesHandsJobsBack", func(t *testing.T) {
		s, _ := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "1"), store.EffectCreated)
		claim(t, s, "w", 1, time.Hour)
		n, err := s.ReleaseLeases(context.Background(), "w")
		if err != nil || n != 1 {
			t.Fatalf("released %d %v", n, err)
		}
		if got := claim(t, s, "w2", 1, time.Hour); len(got) != 1 {
			t.Fatal("released job not claimable")
		}
	})
}

func TestQueueStatsAndReady(t *testing.T) {
	s, b := setup(t)
	if err := s.Ready(b.ctx); err != nil {
		t.Fatal(err)
	}
	mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "1"), store.EffectCreated)
	depth, _, err := s.QueueStats(b.ctx)
	if err != nil || depth != 1 {
		t.Fatalf("depth %d %v", depth, err)
	}
	if _, err := b.pool.Exec(b.ctx, `DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(b.ctx); err == nil {
		t.Fatal("ready with a missing migration")
	}
}

func TestStuckSweepIsVisibleInTheLedger(t *testing.T) {
	s, b := setup(t)
	mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "1"), store.EffectCreated)
	mustIngest(t, s, deposit("n2", "t2", "Closed", store.DepositFinal, "1"), store.EffectCreated)
	if _, err := b.pool.Exec(b.ctx, `UPDATE sweeps SET created_at = now() - interval '16 minutes' WHERE deposit_id = 't1'`); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE stuck AND pending_since IS NOT NULL`); n != 1 {
		t.Fatalf("stuck rows = %d, want 1", n)
	}
	claim(t, s, "w", 10, time.Minute)
	if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE in_flight_since IS NOT NULL`); n != 2 {
		t.Fatalf("in flight rows = %d", n)
	}
}

// TestPoisonReachesNoLoop: a value PostgreSQL refuses is recognised as such (the
// worker then records a storable description instead), and attempt text is made
// storable whatever the upstream sent.
func TestPoisonReachesNoLoop(t *testing.T) {
	s, b := setup(t)
	mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "1"), store.EffectCreated)
	j := claim(t, s, "w", 1, time.Minute)[0]
	err := s.RecordOutcome(b.ctx, store.Succeeded(j, store.SweepResult{InterlaceTransferID: "it-\x00", UpstreamStatus: "CLOSED",
		CreditedAmount: decimal.NewFromInt(1), CreditedCurrency: "USD"}, store.Attempt{Worker: "w", StartedAt: time.Now(), Outcome: store.AttemptSucceeded}))
	if !store.IsDataError(err) {
		t.Fatalf("NUL byte in a text column: %v, want a data error", err)
	}
	at := store.Attempt{Worker: "w", StartedAt: time.Now(), Outcome: store.AttemptPoison,
		Message: "bad \x00 \xff" + strings.Repeat("x", 10_000), Code: "\x00"}
	if err := s.RecordOutcome(b.ctx, store.Unresolved(j, at.Code, "poison \x00", "", "", at)); err != nil {
		t.Fatalf("sanitised attempt not stored: %v", err)
	}
	if n := b.count(t, `SELECT count(*) FROM sweep_attempts WHERE outcome = 'poison' AND length(message) < 2100`); n != 1 {
		t.Fatal("no attempt row for the poison answer")
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status = 'unresolved' AND unresolved_at IS NOT NULL`); n != 1 {
		t.Fatal("sweep not unresolved")
	}
}
