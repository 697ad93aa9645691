package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// TestSQLVocabularyMatchesGo checks the SQL functions that still classify
// against internal/status, the one vocabulary.
func TestSQLVocabularyMatchesGo(t *testing.T) {
	_, b := setup(t)
	words := []string{"", "weird", "CLOSED2", "cloſed", " Closed ", "ON_HOLD", "OnHold"}
	for w := range status.Known() {
		words = append(words, w, strings.ToUpper(w), " "+strings.ToUpper(w[:1])+w[1:]+" ")
	}
	for _, w := range words {
		var sql string
		if err := b.pool.QueryRow(b.ctx, `SELECT sweeper_chain_class($1)`, w).Scan(&sql); err != nil {
			t.Fatal(err)
		}
		if want := store.ChainClass(w); sql != want {
			t.Errorf("sweeper_chain_class(%q) = %s, Go says %s (status.Classify = %s)", w, sql, want, status.Classify(w))
		}
	}
	// The deposit ranks: terminal states outrank waiting ones; needs_review is
	// below every usable state, so any usable notification replaces it.
	rank := map[string]int{}
	for _, s := range []string{status.DepositPending, status.DepositUnknown, status.DepositFinal, status.DepositFailed,
		status.DepositNeedsReview} {
		var r int
		if err := b.pool.QueryRow(b.ctx, `SELECT sweeper_deposit_rank($1)`, s).Scan(&r); err != nil {
			t.Fatal(err)
		}
		rank[s] = r
	}
	if !(rank["final"] == rank["failed"] && rank["final"] > rank["pending"] && rank["pending"] == rank["unknown"] &&
		rank["unknown"] > rank["needs_review"]) {
		t.Errorf("sweeper_deposit_rank disagrees with the deposit states: %v", rank)
	}
	// The Go side maps classes to the states the SQL ranks.
	for w, c := range status.Known() {
		if (c == status.Final) != (store.ChainClass(w) == "final") || (c == status.Failed) != (store.ChainClass(w) == "failed") {
			t.Errorf("store.ChainClass(%q) = %s, status.Classify = %s", w, store.ChainClass(w), c)
		}
	}
}

func confirmFirst(d store.Delivery) store.Delivery {
	d.Deposit.NeedConfirm = true
	return d
}

func record(notificationID, transferID, upstream, st, amount string) store.Delivery {
	d := deposit(notificationID, transferID, upstream, st, amount)
	d.Deposit.Record, d.Deposit.Source, d.EventType = true, store.SourcePoll, "interlace.record"
	return d
}

func ledgerOf(t *testing.T, s *store.Store, id string) store.LedgerRow {
	t.Helper()
	row, err := s.Ledger(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

func TestTruth(t *testing.T) {
	t.Run("FinalNotificationWaitsForTheRecord", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, confirmFirst(deposit("n1", "t1", "Closed", store.DepositFinal, "10.5")), store.EffectCreated)
		if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 0 {
			t.Fatalf("a sweep exists before Interlace's record confirmed the deposit")
		}
		if row := ledgerOf(t, s, "t1"); row.SweepStatus != status.SweepWaiting || row.LastError == nil ||
			!strings.Contains(*row.LastError, "awaiting Interlace's record") {
			t.Fatalf("ledger %+v", row)
		}
		mustIngest(t, s, record("r1", "t1", "CLOSED", store.DepositFinal, "10.50"), store.EffectConfirmed)
		if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status='pending' AND amount = 10.5`); n != 1 {
			t.Fatalf("no pending sweep after confirmation")
		}
		if n := b.count(t, `SELECT count(*) FROM deposits WHERE confirmed_at IS NOT NULL AND confirmed_amount = 10.5`); n != 1 {
			t.Fatalf("confirmation not recorded")
		}
		if n := b.count(t, `SELECT count(*) FROM deposit_confirmations WHERE due_at IS NOT NULL`); n != 0 {
			t.Fatalf("confirmation still queued")
		}
		// The same record again is one delivery; nothing more happens.
		mustIngest(t, s, record("r1", "t1", "CLOSED", store.DepositFinal, "10.50"), store.EffectDuplicate)
	})

	t.Run("RecordThatDisagreesHoldsWithItsFigures", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, confirmFirst(deposit("n1", "t1", "Closed", store.DepositFinal, "10.5")), store.EffectCreated)
		mustIngest(t, s, record("r1", "t1", "Closed", store.DepositFinal, "9.5"), store.EffectHeld)
		row := ledgerOf(t, s, "t1")
		if row.SweepStatus != status.SweepHeld || row.LastError == nil || !strings.Contains(*row.LastError, "Interlace's record says Closed 9.5") {
			t.Fatalf("ledger %+v", row)
		}
		if n := b.count(t, `SELECT count(*) FROM sweeps WHERE amount = 9.5`); n != 1 {
			t.Fatalf("held sweep does not carry the confirmed amount")
		}
		if n := b.count(t, `SELECT count(*) FROM deposit_confirmations WHERE due_at IS NOT NULL`); n != 0 {
			t.Fatalf("held deposit still queued for confirmation")
		}
	})

	t.Run("RecordFindsDepositNoWebhookBrought", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, record("r1", "t1", "Closed", store.DepositFinal, "3"), store.EffectCreated)
		if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE source='poll' AND confirmed_at IS NOT NULL AND sweep_status='pending'`); n != 1 {
			t.Fatalf("found deposit not swept as confirmed poll deposit")
		}
		if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE signature_key IS NULL`); n != 1 {
			t.Fatalf("record stored with a signature key")
		}
		// The notification arriving late confirms nothing more and creates nothing.
		mustIngest(t, s, confirmFirst(deposit("n1", "t1", "Closed", store.DepositFinal, "3")), store.EffectUnchanged)
		if n := b.count(t, `SELECT count(*) FROM sweeps`); n != 1 {
			t.Fatal("second sweep")
		}
	})

	t.Run("RefundBeforeTheMoneyMovedHolds_AfterIsRecorded", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "5"), store.EffectCreated)
		mustIngest(t, s, deposit("n2", "t1", "Refunded", store.DepositFailed, "5"), store.EffectHeld)
		if row := ledgerOf(t, s, "t1"); row.SweepStatus != status.SweepHeld {
			t.Fatalf("ledger %+v", row)
		}
		mustIngest(t, s, deposit("n3", "t2", "Closed", store.DepositFinal, "5"), store.EffectCreated)
		if _, err := b.pool.Exec(b.ctx, `UPDATE sweeps SET status='succeeded', interlace_transfer_id='x' WHERE deposit_id='t2'`); err != nil {
			t.Fatal(err)
		}
		mustIngest(t, s, deposit("n4", "t2", "Refunded", store.DepositFailed, "5"), store.EffectConflict)
		if row := ledgerOf(t, s, "t2"); row.SweepStatus != status.SweepSucceeded {
			t.Fatalf("a swept deposit changed state: %+v", row)
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_events WHERE deposit_id='t2' AND reason LIKE 'contradicted after the sweep started%'`); n != 1 {
			t.Fatal("contradiction after the sweep not recorded")
		}
	})

	t.Run("RefundAfterARejectedSweepHoldsIt", func(t *testing.T) {
		// A definite rejection moved nothing (insufficient balance: the refund
		// got there first). Held, so that an operator's retry cannot sweep money
		// that left the wallet.
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "5"), store.EffectCreated)
		if _, err := b.pool.Exec(b.ctx, `UPDATE sweeps SET status = 'failed', last_error = 'insufficient balance'`); err != nil {
			t.Fatal(err)
		}
		mustIngest(t, s, record("r1", "t1", "Refunded", store.DepositFailed, "5"), store.EffectHeld)
		if row := ledgerOf(t, s, "t1"); row.SweepStatus != status.SweepHeld || !strings.Contains(*row.LastError, "record says Refunded") {
			t.Fatalf("ledger %+v", row)
		}
	})

	t.Run("RefundOfAnUnconfirmedDepositHolds", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, confirmFirst(deposit("n1", "t1", "Closed", store.DepositFinal, "5")), store.EffectCreated)
		mustIngest(t, s, confirmFirst(deposit("n2", "t1", "Refunded", store.DepositFailed, "5")), store.EffectHeld)
		if n := b.count(t, `SELECT count(*) FROM sweeps WHERE status='held'`); n != 1 {
			t.Fatal("not held")
		}
		if n := b.count(t, `SELECT count(*) FROM deposit_confirmations WHERE due_at IS NOT NULL`); n != 0 {
			t.Fatal("still queued for confirmation")
		}
	})

	t.Run("NeedsReviewIsVisibleHeldThenSettledByARecord", func(t *testing.T) {
		s, b := setup(t)
		d := deposit("n1", "t1", "Closed", store.DepositNeedsReview, "1")
		d.Outcome, d.Reason = store.OutcomeUnusable, "amount: abc"
		d.Deposit.Amount, d.Deposit.ReviewReason = decimal.Decimal{}, "amount: abc"
		mustIngest(t, s, d, store.EffectCreated)
		row := ledgerOf(t, s, "t1")
		if row.SweepStatus != status.SweepHeld || row.DepositStatus != status.DepositNeedsReview || row.LastError == nil ||
			*row.LastError != "needs review: amount: abc" {
			t.Fatalf("ledger %+v", row)
		}
		if n := b.count(t, `SELECT count(*) FROM deposits WHERE amount IS NULL`); n != 1 {
			t.Fatal("an unusable amount must be stored as unknown (NULL)")
		}
		mustIngest(t, s, record("r1", "t1", "Closed", store.DepositFinal, "7"), store.EffectAdvanced)
		if row := ledgerOf(t, s, "t1"); row.SweepStatus != status.SweepPending || !row.Amount.Equal(decimal.NewFromInt(7)) {
			t.Fatalf("ledger %+v", row)
		}
	})

	t.Run("LegacyDeliveryIsStoredUnverifiedAndMovesNothing", func(t *testing.T) {
		s, b := setup(t)
		d := store.Delivery{NotificationID: "legacy:x", EventType: "AssetsDeposit", Body: []byte(`{}`),
			Outcome: store.OutcomeUnverified, TransferID: "t1"}
		mustIngest(t, s, d, store.EffectUnverified)
		if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE outcome='unverified' AND signature_key IS NULL`); n != 1 {
			t.Fatal("not stored unverified")
		}
		if n := b.count(t, `SELECT count(*) FROM deposits`); n != 0 {
			t.Fatal("a legacy delivery made a deposit")
		}
	})

	t.Run("WaitingOverAnHourIsStuck", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, confirmFirst(deposit("n1", "t1", "Closed", store.DepositFinal, "1")), store.EffectCreated)
		mustIngest(t, s, deposit("n2", "t2", "Pending", store.DepositPending, "1"), store.EffectCreated)
		if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE stuck`); n != 0 {
			t.Fatal("stuck too early")
		}
		if _, err := b.pool.Exec(b.ctx, `UPDATE deposits SET received_at = now() - interval '61 minutes'`); err != nil {
			t.Fatal(err)
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE stuck AND sweep_status='waiting'`); n != 2 {
			t.Fatalf("stuck waiting = %d, want 2", n)
		}
		c, err := s.AttentionCounts(b.ctx)
		if err != nil || c.StuckWaiting != 2 {
			t.Fatalf("attention %+v %v", c, err)
		}
		waiting, err := s.WaitingDeposits(b.ctx, time.Hour, 10)
		if err != nil || len(waiting) != 1 || waiting[0] != "t2" {
			t.Fatalf("waiting %v %v", waiting, err)
		}
	})
}

func TestOperatorActions(t *testing.T) {
	by := store.Actor{Who: "alice", Note: "checked the explorer"}
	t.Run("ReleaseOnlyWhatTheRecordAgreesWith", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "5"), store.EffectCreated)
		mustIngest(t, s, deposit("n2", "t1", "Refunded", store.DepositFailed, "5"), store.EffectHeld)
		out, err := s.ReleaseDeposit(b.ctx, "t1", store.RecordFigures{Status: "Refunded"}, by)
		if err != nil || out != store.ReleaseRefused {
			t.Fatalf("release of a refunded deposit: %s %v", out, err)
		}
		if row := ledgerOf(t, s, "t1"); row.SweepStatus != status.SweepHeld || !strings.Contains(*row.LastError, "record says Refunded") {
			t.Fatalf("ledger %+v", row)
		}
		fig := store.RecordFigures{Status: "Closed", Final: true, WalletID: "wallet-1", Currency: "USDC", Amount: decimal.NewFromInt(4)}
		if out, _ := s.ReleaseDeposit(b.ctx, "t1", fig, by); out != store.ReleaseRefused {
			t.Fatalf("released with another amount: %s", out)
		}
		fig.Amount = decimal.RequireFromString("5.00")
		if out, err := s.ReleaseDeposit(b.ctx, "t1", fig, by); err != nil || out != store.ReleaseReleased {
			t.Fatalf("release: %s %v", out, err)
		}
		if row := ledgerOf(t, s, "t1"); row.SweepStatus != status.SweepPending {
			t.Fatalf("ledger %+v", row)
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_events WHERE reason LIKE 'released by alice (checked the explorer)%'`); n != 1 {
			t.Fatal("release event without who and why")
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_events WHERE actor = 'alice'`); n != 3 {
			t.Fatalf("%d sweep events name alice as the actor, want the 3 release attempts", n)
		}
		if n := b.count(t, `SELECT count(*) FROM deposit_events WHERE reason LIKE 'release by alice%'`); n != 3 {
			t.Fatal("every release attempt leaves a deposit event")
		}
	})

	t.Run("RetrySkippedAfterAConfigChange", func(t *testing.T) {
		s, b := setup(t)
		d := deposit("n1", "t1", "Closed", store.DepositFinal, "5")
		d.Deposit.Currency, d.Deposit.Origin = "USD", "blockchain"
		d.Deposit.SkipReason = "currency USD is not swept (SWEEPER_SWEEP_CURRENCIES)"
		mustIngest(t, s, d, store.EffectCreated)
		if row := ledgerOf(t, s, "t1"); row.SweepStatus != status.SweepSkipped {
			t.Fatalf("ledger %+v", row)
		}
		still := func(_, cur, _ string) string { return "currency " + cur + " is not swept" }
		p := store.RetryParams{SkipReason: still, ToCurrency: "USD", ClientTransactionID: ids.SweepTransactionID("t1")}
		if err := s.RetryDeposit(b.ctx, "t1", p, by); !errors.Is(err, store.ErrInvalidState) {
			t.Fatalf("retry while still skipped: %v", err)
		}
		p.SkipReason = func(_, _, _ string) string { return "" }
		if err := s.RetryDeposit(b.ctx, "t1", p, by); err != nil {
			t.Fatal(err)
		}
		row := ledgerOf(t, s, "t1")
		if row.SweepStatus != status.SweepPending || *row.ClientTransactionID != ids.SweepTransactionID("t1") {
			t.Fatalf("ledger %+v", row)
		}
		if err := s.RetryDeposit(b.ctx, "t1", p, by); !errors.Is(err, store.ErrInvalidState) {
			t.Fatalf("retry of a pending sweep: %v", err)
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_events WHERE actor = 'alice' AND to_status = 'pending'`); n != 1 {
			t.Fatal("the retry's sweep event does not name its actor")
		}
	})

	t.Run("RetryOfAFailedSweepWhoseDepositWasContradictedHoldsIt", func(t *testing.T) {
		s, b := setup(t)
		mustIngest(t, s, deposit("n1", "t1", "Closed", store.DepositFinal, "5"), store.EffectCreated)
		if _, err := b.pool.Exec(b.ctx, `UPDATE sweeps SET status = 'in_flight', lease_token = gen_random_uuid()`); err != nil {
			t.Fatal(err)
		}
		mustIngest(t, s, deposit("n2", "t1", "Refunded", store.DepositFailed, "5"), store.EffectConflict)
		if _, err := b.pool.Exec(b.ctx, `UPDATE sweeps SET status = 'failed', lease_token = NULL`); err != nil {
			t.Fatal(err)
		}
		p := store.RetryParams{SkipReason: func(_, _, _ string) string { return "" }, ToCurrency: "USD",
			ClientTransactionID: ids.SweepTransactionID("t1")}
		if err := s.RetryDeposit(b.ctx, "t1", p, by); !errors.Is(err, store.ErrInvalidState) {
			t.Fatalf("retry of a contradicted deposit: %v", err)
		}
		if row := ledgerOf(t, s, "t1"); row.SweepStatus != status.SweepHeld {
			t.Fatalf("ledger %+v", row)
		}
	})

	// A rejection recorded after a contradiction arrived mid-flight (a refund
	// took the money, so the transfer was rejected) ends held, not failed.
	t.Run("RejectedAfterAContradictionMidFlightIsHeld", func(t *testing.T) {
		s, b := setup(t)
		for _, id := range []string{"t1", "t2"} {
			mustIngest(t, s, deposit("n1-"+id, id, "Closed", store.DepositFinal, "5"), store.EffectCreated)
		}
		if _, err := b.pool.Exec(b.ctx, `UPDATE sweeps SET status = 'in_flight', lease_token = gen_random_uuid()`); err != nil {
			t.Fatal(err)
		}
		mustIngest(t, s, deposit("n2-t1", "t1", "Refunded", store.DepositFailed, "5"), store.EffectConflict)
		// A contradiction of a sweep that is still pending is the ingest's to hold,
		// not this: only a failed sweep changes.
		if held, err := s.HoldIfContradicted(b.ctx, "t1"); err != nil || held {
			t.Fatalf("in-flight sweep: held %t, %v", held, err)
		}
		if _, err := b.pool.Exec(b.ctx, `UPDATE sweeps SET status = 'failed', lease_token = NULL,
		    last_error = '010023 insufficient balance'`); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			id   string
			held bool
			want string
		}{{"t1", true, status.SweepHeld}, {"t2", false, status.SweepFailed}} {
			held, err := s.HoldIfContradicted(b.ctx, tc.id)
			if err != nil || held != tc.held {
				t.Fatalf("%s: held %t, %v; want %t", tc.id, held, err, tc.held)
			}
			if row := ledgerOf(t, s, tc.id); row.SweepStatus != tc.want {
				t.Fatalf("%s: ledger %+v, want %s", tc.id, row, tc.want)
			}
		}
		row := ledgerOf(t, s, "t1")
		if !strings.HasPrefix(*row.LastError, "010023 insufficient balance; the transfer was rejected and the deposit was contradicted") {
			t.Fatalf("held without both reasons: %q", *row.LastError)
		}
		if n := b.count(t, `SELECT count(*) FROM sweep_events WHERE deposit_id = 't1' AND from_status = 'failed' AND to_status = 'held'`); n != 1 {
			t.Fatal("no event for the hold")
		}
	})

	t.Run("RetrySkippedWaitsForConfirmation", func(t *testing.T) {
		s, b := setup(t)
		d := deposit("n1", "t1", "Closed", store.DepositFinal, "5")
		d.Deposit.SkipReason = "currency USDC is not swept"
		mustIngest(t, s, d, store.EffectCreated)
		p := store.RetryParams{SkipReason: func(_, _, _ string) string { return "" }, NeedConfirm: true,
			ToCurrency: "USD", ClientTransactionID: ids.SweepTransactionID("t1")}
		if err := s.RetryDeposit(b.ctx, "t1", p, by); err != nil {
			t.Fatal(err)
		}
		if n := b.count(t, `SELECT count(*) FROM deposit_confirmations WHERE due_at IS NOT NULL`); n != 1 {
			t.Fatal("retried unconfirmed deposit not queued for confirmation")
		}
	})
}

func TestPollLockElectsOne(t *testing.T) {
	s, b := setup(t)
	l1, ok, err := s.TryPollLock(b.ctx, "transfers")
	if err != nil || !ok {
		t.Fatalf("first: %v %v", ok, err)
	}
	if _, ok, err := s.TryPollLock(b.ctx, "transfers"); err != nil || ok {
		t.Fatalf("second replica elected too: %v %v", ok, err)
	}
	l1.Unlock()
	l2, ok, err := s.TryPollLock(b.ctx, "transfers")
	if err != nil || !ok {
		t.Fatalf("after unlock: %v %v", ok, err)
	}
	l2.Unlock()
	if _, err := s.PollFailed(b.ctx, "transfers", "boom"); err != nil {
		t.Fatal(err)
	}
	st, err := s.PollFailed(b.ctx, "transfers", "boom again")
	if err != nil || st.ConsecutiveFailures != 2 || *st.LastError != "boom again" {
		t.Fatalf("state %+v %v", st, err)
	}
	if err := s.PollAdvance(b.ctx, "transfers", time.Unix(1000, 0)); err != nil {
		t.Fatal(err)
	}
	st, err = s.PollSucceeded(b.ctx, "transfers", 3, 1)
	if err != nil || st.ConsecutiveFailures != 0 || st.LastSuccessAt == nil || st.Cursor == nil || st.LastFound != 1 {
		t.Fatalf("state %+v %v", st, err)
	}
}

func TestConfirmDepositsInOneStatement(t *testing.T) {
	s, b := setup(t)
	for _, id := range []string{"t1", "t2", "t3"} {
		mustIngest(t, s, confirmFirst(deposit("n-"+id, id, "Closed", store.DepositFinal, "4")), store.EffectCreated)
	}
	mustIngest(t, s, deposit("n-t4", "t4", "Pending", store.DepositPending, "4"), store.EffectCreated)
	conf := func(id, amount string) store.Confirmation {
		return store.Confirmation{DepositID: id, WalletID: "wallet-1", Currency: "USDC",
			Amount: decimal.RequireFromString(amount), UpstreamStatus: "CLOSED",
			ClientTransactionID: ids.SweepTransactionID(id), Record: []byte(`{"id":"` + id + `"}`)}
	}
	got, err := s.ConfirmDeposits(b.ctx, []store.Confirmation{conf("t3", "4"), conf("t1", "4.0"), conf("t2", "5"), conf("t4", "4")}, "acc", "USD")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "t1,t3" && strings.Join(got, ",") != "t3,t1" {
		t.Fatalf("confirmed %v, want t1 and t3 (t2's amount differs, t4 is not final)", got)
	}
	if n := b.count(t, `SELECT count(*) FROM sweep_ledger WHERE deposit_id IN ('t1', 't3') AND sweep_status = 'pending'
	    AND confirmed_at IS NOT NULL`); n != 2 {
		t.Fatal("confirmed deposits have no pending sweep")
	}
	if n := b.count(t, `SELECT count(*) FROM deposit_confirmations WHERE due_at IS NULL AND record IS NOT NULL`); n != 2 {
		t.Fatal("the records are not kept as evidence")
	}
	if n := b.count(t, `SELECT count(*) FROM sweeps WHERE deposit_id = 't2'`); n != 0 {
		t.Fatal("a deposit whose amount differs was swept")
	}
	again, err := s.ConfirmDeposits(b.ctx, []store.Confirmation{conf("t1", "4")}, "acc", "USD")
	if err != nil || len(again) != 0 {
		t.Fatalf("confirmed twice: %v %v", again, err)
	}
	if n := b.count(t, `SELECT count(*) FROM deposit_events WHERE reason = 'confirmed by Interlace''s record'`); n != 2 {
		t.Fatalf("confirmation events = %d", n)
	}
	// Another wallet in the record, or a deposit not waiting for its record
	// (confirmation was off when it came): nothing happens.
	mustIngest(t, s, confirmFirst(deposit("n-t5", "t5", "Closed", store.DepositFinal, "4")), store.EffectCreated)
	mustIngest(t, s, deposit("n-t6", "t6", "Closed", store.DepositFinal, "4"), store.EffectCreated)
	wrong := conf("t5", "4")
	wrong.WalletID = "wallet-2"
	if got, err := s.ConfirmDeposits(b.ctx, []store.Confirmation{wrong, conf("t6", "4")}, "acc", "USD"); err != nil || len(got) != 0 {
		t.Fatalf("confirmed %v %v", got, err)
	}
}
