package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/webhook"
)

func withdrawalInput(key string) store.WithdrawalInput {
	id := ids.WithdrawalID(key)
	return store.WithdrawalInput{
		ID: id, IdempotencyKey: key, AccountID: "acc", WalletID: "acc", SourceCurrency: "USD",
		Amount: decimal.RequireFromString("100"), Currency: "USDC", Chain: "ETH",
		Address: "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2", MaxFeeRate: decimal.RequireFromString("0.02"),
		FundRequestID:     ids.WithdrawalStepID(id, store.StepFund),
		TradeRequestID:    ids.WithdrawalStepID(id, store.StepTrade),
		TransferRequestID: ids.WithdrawalStepID(id, store.StepTransfer),
	}
}

func claimW(t *testing.T, s *store.Store, owner string, lease time.Duration) []store.WithdrawalJob {
	t.Helper()
	got, err := s.ClaimWithdrawals(t.Context(), store.WithdrawalClaim{Owner: owner, Limit: 10, Lease: lease, InfinityWalletID: "inf-1"})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func d(s string) *decimal.Decimal { v := decimal.RequireFromString(s); return &v }
func sp(s string) *string         { return &s }

// advance records the current step with a small result and goes to next.
func advance(t *testing.T, s *store.Store, job *store.WithdrawalJob, next string, rec store.StepRecord) {
	t.Helper()
	rec.Next, rec.Lease = next, time.Minute
	if rec.Result.Response == nil {
		rec.Result.Response = json.RawMessage(`{"ok":true}`)
	}
	if err := s.RecordWithdrawalStep(t.Context(), job, rec); err != nil {
		t.Fatalf("record %s: %v", job.Step, err)
	}
}

// toConfirm takes a new withdrawal through every step up to a Pending on-chain
// transfer "ct-1", leaving it due for a confirmation poll.
func toConfirm(t *testing.T, s *store.Store, key string) store.WithdrawalJob {
	t.Helper()
	if _, created, err := s.CreateWithdrawal(t.Context(), withdrawalInput(key)); err != nil || !created {
		t.Fatal(created, err)
	}
	jobs := claimW(t, s, "w", time.Minute)
	if len(jobs) != 1 {
		t.Fatalf("claimed %d", len(jobs))
	}
	job := jobs[0]
	advance(t, s, &job, store.StepFeePreview, store.StepRecord{Result: store.WithdrawalStep{Amount: d("99.5"), Fee: d("0.5"), FeeCurrency: sp("USD"), Rate: d("1")}})
	advance(t, s, &job, store.StepFund, store.StepRecord{Result: store.WithdrawalStep{Fee: d("0.2")}})
	advance(t, s, &job, store.StepTrade, store.StepRecord{Result: store.WithdrawalStep{RequestID: &job.FundRequestID, UpstreamID: sp("it-1"), Amount: d("100"), Fee: d("0"), FeeCurrency: sp("USD")}})
	advance(t, s, &job, store.StepFee, store.StepRecord{Result: store.WithdrawalStep{UpstreamID: sp("tr-1"), WalletID: sp("bw"), Amount: d("99.5"), Fee: d("0.5"), FeeCurrency: sp("USD"), Rate: d("1")},
		BaseWalletID: sp("bw"), BaseAmount: d("99.5")})
	advance(t, s, &job, store.StepTransfer, store.StepRecord{Result: store.WithdrawalStep{Fee: d("0.2")}})
	advance(t, s, &job, store.StepConfirm, store.StepRecord{Result: store.WithdrawalStep{UpstreamID: sp("ct-1"), UpstreamStatus: sp("Pending"), Amount: d("99.5"), Fee: d("0.2"), FeeCurrency: sp("USDC")},
		ChainTransferID: sp("ct-1"), ChainStatus: sp("Pending")})
	if err := s.WaitWithdrawal(t.Context(), job, 0, "Pending", "", true); err != nil {
		t.Fatal(err)
	}
	return job
}

// chainNotification is a signed-looking delivery about a blockchain transfer, as
// the webhook handler stores it (outcome ignored, the raw body, the notice the
// handler read from it).
func chainNotification(notificationID, transferID, key, status, hash string) store.Delivery {
	res, _ := json.Marshal(map[string]any{
		"id": transferID, "idempotencyKey": key, "accountId": "acc",
		"source":      map[string]any{"type": "cryptoconnect_wallet", "id": "bw"},
		"destination": map[string]any{"type": "blockchain", "chain": "ETH", "address": "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2"},
		"amount":      map[string]any{"amount": "99.5", "currency": "USDC"}, "status": status, "transactionHash": hash,
	})
	body, _ := json.Marshal(map[string]any{"id": notificationID, "eventType": "CRYPTO_TRANSFER.UPDATED", "apiVersion": "v3",
		"code": "000000", "resource": string(res), "createTime": "1767225600000"})
	n := &store.WithdrawalNotice{TransferID: transferID, Status: status, TxHash: hash, Resource: res}
	if k, err := uuid.Parse(key); err == nil {
		n.IdempotencyKey = k
	}
	return store.Delivery{NotificationID: notificationID, EventType: "CRYPTO_TRANSFER.UPDATED", Body: body,
		Outcome: store.OutcomeIgnored, TransferID: transferID, Withdrawal: n}
}

func TestCreateWithdrawal(t *testing.T) {
	s, b := setup(t)
	in := withdrawalInput("k1")
	w, created, err := s.CreateWithdrawal(b.ctx, in)
	if err != nil || !created || w.Status != store.WithdrawalPending || w.Step != store.StepQuote || len(w.Events) != 1 {
		t.Fatalf("create: %+v %v %v", w, created, err)
	}
	in.Amount = decimal.RequireFromString("100.000")
	if again, created, err := s.CreateWithdrawal(b.ctx, in); err != nil || created || again.ID != w.ID {
		t.Fatalf("repeat: %v %v", created, err)
	}
	in.Address, in.Chain = "0x0000000000000000000000000000000000000001", "ARB"
	_, _, err = s.CreateWithdrawal(b.ctx, in)
	if !errors.Is(err, store.ErrConflict) || !containsAll(err.Error(), "chain", "address") {
		t.Fatalf("conflicting repeat: %v", err)
	}
	if n := b.count(t, `SELECT count(*) FROM withdrawals`); n != 1 {
		t.Fatalf("withdrawals = %d", n)
	}
	if _, err := s.Withdrawal(b.ctx, uuid.New()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !contains(s, sub) {
			return false
		}
	}
	return true
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestClaimWithdrawals(t *testing.T) {
	t.Run("ConcurrentClaimersNeverShare", func(t *testing.T) {
		s, _ := setup(t)
		for i := 0; i < 40; i++ {
			if _, _, err := s.CreateWithdrawal(t.Context(), withdrawalInput(fmt.Sprint("k", i))); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[uuid.UUID]string{}
		var wg sync.WaitGroup
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func(owner string) {
				defer wg.Done()
				for {
					got, err := s.ClaimWithdrawals(t.Context(), store.WithdrawalClaim{Owner: owner, Limit: 3, Lease: time.Minute})
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, j := range got {
						if prev, dup := seen[j.ID]; dup {
							t.Errorf("%s claimed by %s and %s", j.ID, prev, owner)
						}
						seen[j.ID] = owner
					}
					mu.Unlock()
				}
			}(fmt.Sprint("c", c))
		}
		wg.Wait()
		if len(seen) != 40 {
			t.Fatalf("claimed %d of 40", len(seen))
		}
	})

	t.Run("ExpiredLeaseResumesAtTheStepAndFencesTheOldHolder", func(t *testing.T) {
		s, b := setup(t)
		if _, _, err := s.CreateWithdrawal(b.ctx, withdrawalInput("k")); err != nil {
			t.Fatal(err)
		}
		first := claimW(t, s, "dead", 50*time.Millisecond)[0]
		advance(t, s, &first, store.StepFeePreview, store.StepRecord{Result: store.WithdrawalStep{Amount: d("99.5")}})
		if first.InfinityWalletID == nil || *first.InfinityWalletID != "inf-1" {
			t.Fatalf("Infinity wallet not frozen at claim: %v", first.InfinityWalletID)
		}
		// RecordWithdrawalStep extended the lease by a minute: nobody may take it yet.
		if got := claimW(t, s, "other", time.Minute); len(got) != 0 {
			t.Fatal("a live lease was claimed twice")
		}
		if _, err := b.pool.Exec(b.ctx, `UPDATE withdrawals SET run_at = now() - interval '1s'`); err != nil {
			t.Fatal(err)
		}
		second := claimW(t, s, "other", time.Minute)
		if len(second) != 1 || !second[0].Reclaimed || second[0].Step != store.StepFeePreview || len(second[0].Steps) != 1 ||
			!second[0].Steps[0].Amount.Equal(decimal.RequireFromString("99.5")) {
			t.Fatalf("resumed %+v", second)
		}
		// The dead runner wakes up and tries to record: fenced off by the lease token.
		err := s.RecordWithdrawalStep(b.ctx, &first, store.StepRecord{Next: store.StepFund, Lease: time.Minute,
			Result: store.WithdrawalStep{Response: json.RawMessage(`{}`)}})
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale holder: %v", err)
		}
		if err := s.RetryWithdrawal(b.ctx, first, time.Second, "", "x", store.RetryUnknown); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale retry: %v", err)
		}
		if _, err := s.FreezeInfinityWallet(b.ctx, &first, "inf-2"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale freeze: %v", err)
		}
		if n := b.count(t, `SELECT count(*) FROM withdrawal_events WHERE reason = 'lease expired; resumed by other' AND step = 'fee_preview'`); n != 1 {
			t.Fatal("resumption not recorded")
		}
		// Shutdown hands the lease back at once.
		if n, err := s.ReleaseWithdrawalLeases(b.ctx, "other"); n != 1 || err != nil {
			t.Fatalf("release %d %v", n, err)
		}
		if got := claimW(t, s, "third", time.Minute); len(got) != 1 || got[0].Reclaimed {
			t.Fatalf("after release %+v", got)
		}
	})

	t.Run("FailRequeueAndEnds", func(t *testing.T) {
		s, b := setup(t)
		w, _, _ := s.CreateWithdrawal(b.ctx, withdrawalInput("k"))
		job := claimW(t, s, "w", time.Minute)[0]
		if err := s.RetryWithdrawal(b.ctx, job, time.Hour, "010500", "HTTP 503", store.RetryUnknown); err != nil {
			t.Fatal(err)
		}
		if got := claimW(t, s, "w", time.Minute); len(got) != 0 {
			t.Fatal("retry claimed before it was due")
		}
		if _, err := b.pool.Exec(b.ctx, `UPDATE withdrawals SET run_at = now()`); err != nil {
			t.Fatal(err)
		}
		job = claimW(t, s, "w", time.Minute)[0]
		if job.Attempts != 2 || job.LastErrorCode == nil || *job.LastErrorCode != "010500" {
			t.Fatalf("second claim %+v", job)
		}
		if err := s.FailWithdrawal(b.ctx, job, store.WithdrawalFailed, "010023", "insufficient balance", nil); err != nil {
			t.Fatal(err)
		}
		if err := s.RequeueWithdrawal(b.ctx, w.ID, "topped up"); err != nil {
			t.Fatal(err)
		}
		if err := s.RequeueWithdrawal(b.ctx, w.ID, "again"); !errors.Is(err, store.ErrInvalidState) {
			t.Fatalf("requeue of a pending withdrawal: %v", err)
		}
		job = claimW(t, s, "w", time.Minute)[0]
		if job.Step != store.StepQuote || job.Attempts != 1 {
			t.Fatalf("requeued %+v", job)
		}
		if err := s.FailWithdrawal(b.ctx, job, store.WithdrawalCompleted, "", "x", nil); err == nil {
			t.Fatal("FailWithdrawal accepted a non-end status")
		}
		if err := s.CompleteWithdrawal(b.ctx, job, "Closed", "", store.WithdrawalStep{}); err == nil {
			t.Fatal("completed without a transaction hash")
		}
		got, _ := s.Withdrawal(b.ctx, w.ID)
		want := []string{"created", "claimed by w", "retry in 1h0m0s: HTTP 503", "claimed by w", "insufficient balance",
			"requeued: topped up", "claimed by w"}
		if len(got.Events) != len(want) {
			t.Fatalf("events %+v", got.Events)
		}
		for i, ev := range got.Events {
			if ev.Reason != want[i] {
				t.Fatalf("event %d: %q, want %q", i, ev.Reason, want[i])
			}
		}
	})
}

func TestWithdrawalCompletionAndLedger(t *testing.T) {
	s, b := setup(t)
	job := toConfirm(t, s, "k")
	jobs := claimW(t, s, "w", time.Minute)
	if len(jobs) != 1 || jobs[0].Step != store.StepConfirm || *jobs[0].ChainTransferID != "ct-1" {
		t.Fatalf("confirm claim %+v", jobs)
	}
	if n := b.count(t, `SELECT count(*) FROM withdrawal_events WHERE withdrawal_id = $1 AND reason LIKE 'claimed%' AND step = 'confirm'`, job.ID); n != 0 {
		t.Fatal("a confirmation poll was recorded as news")
	}
	if err := s.CompleteWithdrawal(b.ctx, jobs[0], "Closed", "0xhash", store.WithdrawalStep{UpstreamID: sp("ct-1"), Response: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	w, _ := s.Withdrawal(b.ctx, job.ID)
	if w.Status != store.WithdrawalCompleted || w.Step != store.StepDone || *w.TxHash != "0xhash" || w.CompletedAt == nil || len(w.Steps) != 7 {
		t.Fatalf("completed %+v", w)
	}
	var usd, tradeFee, bought, withdrawn, network decimal.Decimal
	var status, hash string
	if err := b.pool.QueryRow(b.ctx, `SELECT usd_debited, trade_fee, crypto_bought, crypto_withdrawn, network_fee, status, tx_hash
		FROM withdrawal_ledger WHERE withdrawal_id = $1`, job.ID).Scan(&usd, &tradeFee, &bought, &withdrawn, &network, &status, &hash); err != nil {
		t.Fatal(err)
	}
	if !usd.Equal(decimal.NewFromInt(100)) || !tradeFee.Equal(decimal.RequireFromString("0.5")) || !bought.Equal(decimal.RequireFromString("99.5")) ||
		!withdrawn.Equal(decimal.RequireFromString("99.5")) || !network.Equal(decimal.RequireFromString("0.2")) || status != "completed" || hash != "0xhash" {
		t.Fatalf("ledger %s %s %s %s %s %s %s", usd, tradeFee, bought, withdrawn, network, status, hash)
	}
}

// The webhook path: a notification about the withdrawal's blockchain transfer,
// stored by the handler as 'ignored', completes it in the same transaction.
func TestChainWebhookCompletesWithdrawal(t *testing.T) {
	t.Run("ClosedCompletesAndLatePendingIsIgnored", func(t *testing.T) {
		s, b := setup(t)
		job := toConfirm(t, s, "k")
		key := job.TransferRequestID.String()
		mustIngest(t, s, chainNotification("n1", "ct-1", key, "Closed", "0xfeed"), store.EffectWithdrawal)
		w, _ := s.Withdrawal(b.ctx, job.ID)
		if w.Status != store.WithdrawalCompleted || *w.TxHash != "0xfeed" || *w.ChainStatus != "Closed" {
			t.Fatalf("after webhook %s %v %v", w.Status, w.TxHash, w.ChainStatus)
		}
		mustIngest(t, s, chainNotification("n0", "ct-1", key, "Pending", ""), store.EffectWithdrawal)
		w, _ = s.Withdrawal(b.ctx, job.ID)
		if *w.ChainStatus != "Closed" || *w.TxHash != "0xfeed" {
			t.Fatalf("late Pending moved it back: %v %v", w.ChainStatus, w.TxHash)
		}
		if n := b.count(t, `SELECT count(*) FROM webhook_deliveries WHERE effect = 'withdrawal' AND transfer_id = 'ct-1'`); n != 2 {
			t.Fatalf("deliveries linked = %d", n)
		}
		if got := claimW(t, s, "w", time.Minute); len(got) != 0 {
			t.Fatal("a completed withdrawal is still due")
		}
	})

	t.Run("MatchedByIdempotencyKeyBeforeTheTransferIdIsKnown", func(t *testing.T) {
		s, b := setup(t)
		if _, _, err := s.CreateWithdrawal(b.ctx, withdrawalInput("k")); err != nil {
			t.Fatal(err)
		}
		job := claimW(t, s, "w", time.Minute)[0]
		// Runner is mid-flight (running, no transfer id recorded): the webhook only notes the chain.
		mustIngest(t, s, chainNotification("n1", "ct-9", job.TransferRequestID.String(), "Closed", "0xbeef"), store.EffectWithdrawal)
		w, _ := s.Withdrawal(b.ctx, job.ID)
		if w.Status != store.WithdrawalRunning || w.ChainStatus == nil || *w.ChainStatus != "Closed" || *w.TxHash != "0xbeef" {
			t.Fatalf("noted %s %v %v", w.Status, w.ChainStatus, w.TxHash)
		}
		// The runner's own (older) answer "Pending" must not overwrite what the chain said.
		advance(t, s, &job, store.StepFeePreview, store.StepRecord{ChainStatus: sp("Pending"), ChainTransferID: sp("ct-9")})
		w, _ = s.Withdrawal(b.ctx, job.ID)
		if *w.ChainStatus != "Closed" || *w.ChainTransferID != "ct-9" {
			t.Fatalf("overwritten: %v", *w.ChainStatus)
		}
	})

	t.Run("OnChainFailureFails", func(t *testing.T) {
		s, b := setup(t)
		job := toConfirm(t, s, "k")
		mustIngest(t, s, chainNotification("n1", "ct-1", "", "Failed", ""), store.EffectWithdrawal)
		w, _ := s.Withdrawal(b.ctx, job.ID)
		if w.Status != store.WithdrawalFailed || *w.LastError != "on-chain transfer Failed" {
			t.Fatalf("%s %v", w.Status, w.LastError)
		}
	})

	t.Run("GarbageAndStrangersNeverFailTheDelivery", func(t *testing.T) {
		s, b := setup(t)
		job := toConfirm(t, s, "k")
		for i, body := range []string{`not json`, `{"resource":"not json"}`, `{"resource":"[1,2]"}`,
			`{"resource":"{\"destination\":{\"type\":\"blockchain\"},\"status\":\"Closed\",\"idempotencyKey\":\"not-a-uuid\"}"}`,
			`{"resource":"{\"destination\":{\"type\":\"blockchain\"},\"id\":{\"x\":1},\"status\":\"Closed\"}"}`} {
			mustIngest(t, s, store.Delivery{NotificationID: fmt.Sprint("g", i), Body: []byte(body), Outcome: store.OutcomeIgnored}, store.EffectIgnored)
		}
		mustIngest(t, s, chainNotification("stranger", "ct-other", uuid.NewString(), "Closed", "0x1"), store.EffectIgnored)
		w, _ := s.Withdrawal(b.ctx, job.ID)
		if w.Status != store.WithdrawalPending || *w.ChainStatus != "Pending" {
			t.Fatalf("changed by garbage: %s %v", w.Status, *w.ChainStatus)
		}
		if n := b.count(t, `SELECT count(*) FROM webhook_deliveries`); n != 6 {
			t.Fatalf("deliveries stored = %d", n)
		}
	})

	t.Run("ThroughTheRealHandlerShape", func(t *testing.T) {
		// The handler classifies a blockchain-destination resource as not a deposit,
		// and reads the withdrawal notice from it.
		res := `{"id":"ct-1","source":{"type":"cryptoconnect_wallet","id":"bw"},"destination":{"type":"blockchain","chain":"ETH","address":"0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2"},"amount":{"amount":"1","currency":"USDC"},"status":"Closed"}`
		c, err := webhook.ClassifyResource(res)
		if err != nil || c.Kind != webhook.KindOther {
			t.Fatalf("withdrawal resource classified as %v (%v)", c.Kind, err)
		}
		n, err := webhook.ClassifyWithdrawal(res)
		if err != nil || n == nil || n.TransferID != "ct-1" || n.Status != "Closed" {
			t.Fatalf("notice %+v %v", n, err)
		}
	})
}
