package withdraw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/jobs"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

type outcomeKind int

const (
	outcomeAdvance    outcomeKind = iota // record the step's result, go on with the next step
	outcomeRetry                         // replay the same step (same request id) after delay
	outcomeWait                          // on-chain transfer not final yet: poll again after delay
	outcomeFail                          // upstream rejection: failed, with Interlace's code and message
	outcomeStop                          // a guard: stopped before money left
	outcomeComplete                      // final on-chain status with its hash
	outcomeUnresolved                    // a money-moving step may have moved money no answer accounts for
)

func (k outcomeKind) String() string {
	return [...]string{"advanced", "retry", "wait", "failed", "stopped", "completed", "unresolved"}[k]
}

type outcome struct {
	kind        outcomeKind
	record      store.StepRecord      // advance
	delay       time.Duration         // retry, wait
	retry       store.RetryKind       // retry: what the attempt tells about the step's money
	status      string                // fail, stop
	code        string                // retry, fail, unresolved
	reason      string                // retry, fail, stop, unresolved
	result      *store.WithdrawalStep // fail/stop/unresolved (optional), complete
	chainStatus string                // wait, complete
	txHash      string                // wait, complete
	note        bool                  // wait: record an event even if the chain status did not change
}

func (r *Runner) runStep(ctx context.Context, job *store.WithdrawalJob, justTransferred bool) outcome {
	switch job.Step {
	case store.StepQuote:
		return r.stepQuote(ctx, job)
	case store.StepFeePreview:
		return r.stepFeePreview(ctx, job)
	case store.StepFund:
		return r.stepFund(ctx, job)
	case store.StepTrade:
		return r.stepTrade(ctx, job)
	case store.StepFee:
		return r.stepFee(ctx, job)
	case store.StepTransfer:
		return r.stepTransfer(ctx, job)
	case store.StepConfirm:
		return r.stepConfirm(ctx, job, justTransferred)
	}
	return outcome{kind: outcomeFail, status: store.WithdrawalFailed, reason: "unknown step " + job.Step}
}

// movesMoney reports the steps whose request moves money (contract §8 steps 1,
// 3 and 5). Only for those can an unknown outcome hide a movement.
func movesMoney(step string) bool {
	return step == store.StepFund || step == store.StepTrade || step == store.StepTransfer
}

// upstreamError turns a failed call into a retry (ambiguous or transient: the same
// request is replayed later), a failure (a definite rejection, with Interlace's
// code and message) or, for a money-moving step, unresolved: a rejection after an
// attempt whose outcome is unknown, or a success answer that is not about our
// request, is no proof that the money did not move (contract §11).
func (r *Runner) upstreamError(job *store.WithdrawalJob, what string, err error) outcome {
	var ae *interlace.APIError
	errors.As(err, &ae)
	reasonOf := func() string {
		reason := ae.Message
		if reason == "" {
			reason = err.Error()
		}
		if ae.Code != "" {
			reason = "Interlace code " + ae.Code + ": " + reason
		}
		return reason
	}
	switch {
	case ae != nil && ae.InProgress:
		return r.inProgress(job, what, "", "in progress ("+reasonOf()+")")
	case ae != nil && movesMoney(job.Step) && ae.HTTPStatus >= 200 && ae.HTTPStatus < 300 &&
		errors.Is(err, interlace.ErrMalformedResponse) && (!ae.Retryable || ae.Code == "000000" || ae.Code == "0"):
		// A success-coded answer we cannot read, or one about another request:
		// something may have moved; replays return the same answer.
		return outcome{kind: outcomeUnresolved, code: ae.Code,
			reason: what + ": an answer that cannot be booked (" + reasonOf() + "); the money may have moved"}
	case ae != nil && !ae.Retryable:
		if movesMoney(job.Step) && job.MaybeMoved {
			return outcome{kind: outcomeUnresolved, code: ae.Code, reason: what + " rejected after an attempt whose " +
				"outcome is unknown, so the money may have moved: " + reasonOf()}
		}
		return outcome{kind: outcomeFail, status: store.WithdrawalFailed, code: ae.Code, reason: what + " rejected: " + reasonOf()}
	}
	o := outcome{kind: outcomeRetry, reason: what + ": " + err.Error(), retry: store.RetryUnknown}
	var retryAfter time.Duration
	if ae != nil {
		o.code, retryAfter = ae.Code, ae.RetryAfter
		if ae.HTTPStatus == 401 || errors.Is(err, interlace.ErrNoToken) {
			o.retry = store.RetryNotSent
		}
	}
	o.delay = r.backoff(job, retryAfter)
	return o
}

// backoff is the retry delay of the job's current attempt (the one policy of
// every leased job).
func (r *Runner) backoff(job *store.WithdrawalJob, retryAfter time.Duration) time.Duration {
	return jobs.Backoff(job.Attempts, r.cfg.BaseDelay, r.cfg.MaxDelay, retryAfter)
}

// inProgress replays an accepted-but-not-done step with the normal backoff, and
// hands it to a person after PendingMaxAge of nothing else.
func (r *Runner) inProgress(job *store.WithdrawalJob, what, id, st string) outcome {
	reason := fmt.Sprintf("%s %s is %s; replaying the same request for its final state", what, id, st)
	if job.PendingFor >= r.cfg.PendingMaxAge {
		return outcome{kind: outcomeUnresolved, code: "pending_max_age", reason: fmt.Sprintf(
			"nothing but in-progress answers for %s (SWEEPER_PENDING_MAX_AGE %s): %s", job.PendingFor.Round(time.Second),
			r.cfg.PendingMaxAge, reason)}
	}
	return outcome{kind: outcomeRetry, delay: r.backoff(job, 0), retry: store.RetryInProgress, reason: reason}
}

// rejected is a definite "no" in a success envelope (status FAILED and the
// like): failed, or unresolved when an earlier attempt of this money-moving step
// had an unknown outcome.
func rejected(job *store.WithdrawalJob, reason string, result *store.WithdrawalStep) outcome {
	if movesMoney(job.Step) && job.MaybeMoved {
		return outcome{kind: outcomeUnresolved, result: result,
			reason: reason + " after an attempt whose outcome is unknown, so the money may have moved"}
	}
	return outcome{kind: outcomeFail, status: store.WithdrawalFailed, result: result, reason: reason}
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(fmt.Sprintf(`{"unencodable":%q}`, err.Error()))
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// unresolved: a money-moving step's success answer cannot be booked as given;
// the money may have moved in some other way than asked.
func unresolved(code, reason string) outcome {
	return outcome{kind: outcomeUnresolved, code: code, reason: reason + "; the money may have moved: check Interlace"}
}

func fail(reason string) outcome {
	return outcome{kind: outcomeFail, status: store.WithdrawalFailed, reason: reason}
}

// stepQuote is the guide's step 2 (estimate quote), run first: it moves nothing,
// and its numbers feed the fee check before any USD moves.
func (r *Runner) stepQuote(ctx context.Context, job *store.WithdrawalJob) outcome {
	q, err := r.up.EstimateQuote(ctx, interlace.QuoteRequest{
		AccountID: job.AccountID, BaseCurrency: job.Currency, QuoteCurrency: job.SourceCurrency, Side: "BUY",
		RFQCurrency: job.SourceCurrency, RFQAmount: job.Amount,
	})
	if err != nil {
		return r.upstreamError(job, "estimate quote", err)
	}
	if !q.BaseAmount.IsPositive() || q.Fee.IsNegative() {
		return fail(fmt.Sprintf("estimate quote %s is unusable: baseAmount %s, fee %s", q.ID, q.BaseAmount, q.Fee))
	}
	if q.BaseCurrency != "" && !strings.EqualFold(q.BaseCurrency, job.Currency) {
		return fail(fmt.Sprintf("estimate quote %s is for %s, not %s", q.ID, q.BaseCurrency, job.Currency))
	}
	return outcome{kind: outcomeAdvance, record: store.StepRecord{
		Next: store.StepFeePreview,
		Result: store.WithdrawalStep{
			UpstreamID: strPtr(q.ID), Amount: ptr(q.BaseAmount), Currency: ptr(job.Currency), Fee: ptr(q.Fee),
			FeeCurrency: ptr(orDefault(q.FeeCurrency, job.SourceCurrency)), Rate: ptr(q.Rate), Response: raw(q),
		},
		Reason: fmt.Sprintf("quote %s: %s %s buys %s %s at rate %s, fee %s %s", q.ID, job.Amount, job.SourceCurrency,
			q.BaseAmount, job.Currency, q.Rate, q.Fee, orDefault(q.FeeCurrency, job.SourceCurrency)),
	}}
}

func (r *Runner) feeQuota(ctx context.Context, job *store.WithdrawalJob, walletID string, amount decimal.Decimal) (*interlace.FeeQuota, error) {
	return r.up.TransferFeeAndQuota(ctx, interlace.FeeQuotaRequest{
		AccountID:   job.AccountID,
		Source:      interlace.Source{Type: "WALLET", ID: walletID},
		Destination: interlace.Destination{Type: "BLOCKCHAIN", Chain: job.Chain, Address: job.Address},
		Amount:      interlace.Money{Amount: amount, Currency: job.Currency},
	})
}

// stepFeePreview is the guide's step 4 (fee-and-quota) run before step 1, on the
// requested wallet and the quoted amount. Nothing has moved yet, so a stop here
// leaves every balance untouched. The network fee will come out of what the
// trade buys (contract §11), so the wallet's own balance is never needed.
func (r *Runner) stepFeePreview(ctx context.Context, job *store.WithdrawalJob) outcome {
	quote, ok := job.StepResult(store.StepQuote)
	if !ok || quote.Amount == nil {
		return fail("internal: fee preview without a recorded quote")
	}
	fq, err := r.feeQuota(ctx, job, job.WalletID, *quote.Amount)
	if err != nil {
		return r.upstreamError(job, "fee-and-quota preview", err)
	}
	v := FeeCheck{
		Amount: job.Amount, SourceCurrency: job.SourceCurrency, MaxRate: job.MaxFeeRate,
		TradeFee: deref(quote.Fee), TradeFeeCurrency: derefS(quote.FeeCurrency), Rate: deref(quote.Rate),
		Withdrawn: *quote.Amount, Currency: job.Currency, NetworkFees: fq.Fees,
	}.Evaluate()
	result := &store.WithdrawalStep{
		WalletID: ptr(job.WalletID), Amount: quote.Amount, Currency: ptr(job.Currency), Fee: ptr(v.NetworkFee),
		FeeCurrency: ptr(job.Currency), Response: raw(fq),
	}
	if v.Stop != "" {
		return outcome{kind: outcomeStop, status: store.WithdrawalStopped, code: "fee_limit", result: result,
			reason: "stopped before any money moved: " + v.Stop}
	}
	return outcome{kind: outcomeAdvance, record: store.StepRecord{
		Next: store.StepFund, Result: *result,
		Reason: fmt.Sprintf("fees %s %s within the limit %s %s (network fee %s %s)", v.Total, job.Currency, v.Limit,
			job.Currency, v.NetworkFee, job.Currency),
	}}
}

// stepFund is the guide's step 1: USD from the Infinity Account to the
// CryptoConnect wallet (or the account id: the master wallet).
func (r *Runner) stepFund(ctx context.Context, job *store.WithdrawalJob) outcome {
	if job.InfinityWalletID == nil || *job.InfinityWalletID == "" {
		id, err := r.infinityWallet(ctx)
		if err != nil {
			return r.discoveryFailed(job, err)
		}
		// Frozen before the first send, so that every replay names the same balance.
		if _, err := r.store.FreezeInfinityWallet(ctx, job, id); err != nil {
			return outcome{kind: outcomeRetry, delay: r.backoff(job, 0),
				reason: "record the Infinity Account balance id: " + err.Error()}
		}
	}
	id := job.FundRequestID.String()
	t, err := r.up.InternalTransfer(ctx, interlace.InternalTransferRequest{
		ClientTransactionID: id, AccountID: job.AccountID,
		From:   interlace.TransferEndpoint{BusinessType: interlace.BusinessTypeInfinity, ID: *job.InfinityWalletID, Currency: job.SourceCurrency},
		To:     interlace.TransferEndpoint{BusinessType: interlace.BusinessTypeCryptoConnect, ID: job.WalletID, Currency: job.SourceCurrency},
		Amount: job.Amount,
	})
	if err != nil {
		return r.upstreamError(job, "internal transfer", err)
	}
	switch status.Classify(t.Status) {
	case status.Failed:
		return rejected(job, fmt.Sprintf("internal transfer %s status %s", t.ID, t.Status), nil)
	case status.Waiting, status.Unknown:
		return r.inProgress(job, "internal transfer", t.ID, t.Status)
	}
	debited := t.From.Amount
	if debited.IsZero() {
		debited = job.Amount
	}
	if !debited.Equal(job.Amount) || (t.From.Currency != "" && !strings.EqualFold(t.From.Currency, job.SourceCurrency)) {
		return unresolved("mismatch", fmt.Sprintf("internal transfer %s %s moved %s %s, sent %s %s", t.ID, t.Status,
			debited, t.From.Currency, job.Amount, job.SourceCurrency))
	}
	// Fees in several currencies are not one figure: NULL, the lines stay in the response.
	var feePtr *decimal.Decimal
	var feeCurPtr *string
	if fee, feeCur, ferr := t.From.TotalFees(); ferr == nil {
		feePtr, feeCurPtr = &fee, &feeCur
	}
	return outcome{kind: outcomeAdvance, record: store.StepRecord{
		Next: store.StepTrade,
		Result: store.WithdrawalStep{
			RequestID: ptr(job.FundRequestID), UpstreamID: strPtr(t.ID), UpstreamStatus: strPtr(t.Status),
			WalletID: ptr(job.WalletID), Amount: ptr(debited), Currency: ptr(orDefault(t.From.Currency, job.SourceCurrency)),
			Fee: feePtr, FeeCurrency: feeCurPtr, Response: raw(t),
		},
		Reason: fmt.Sprintf("internal transfer %s %s: %s %s from Infinity %s to wallet %s", t.ID, t.Status, debited,
			job.SourceCurrency, *job.InfinityWalletID, job.WalletID),
	}}
}

// discoveryFailed: the fund step could not learn the Infinity balance to pay
// from, so its transfer was not sent. The retry says so (the money cannot have
// moved: a later rejection of the transfer is a plain failure) and falls due no
// sooner than the resolver will ask again; retrying earlier only records its
// refusal again.
func (r *Runner) discoveryFailed(job *store.WithdrawalJob, err error) outcome {
	o := r.upstreamError(job, "discover the Infinity Account balance", err)
	if o.kind != outcomeRetry {
		return o
	}
	o.retry = store.RetryNotSent
	if be, ok := errors.AsType[*interlace.DiscoveryBackoffError](err); ok {
		o.delay = max(o.delay, be.RetryIn)
	}
	return o
}

// stepTrade is the guide's step 3: buy the crypto with the USD step 1 moved.
func (r *Runner) stepTrade(ctx context.Context, job *store.WithdrawalJob) outcome {
	t, err := r.up.CreateTrade(ctx, interlace.TradeRequest{
		ReferenceID: job.TradeRequestID.String(), AccountID: job.AccountID, BaseCurrency: job.Currency,
		QuoteCurrency: job.SourceCurrency, Side: "BUY", RFQCurrency: job.SourceCurrency, RFQAmount: job.Amount,
	})
	if err != nil {
		return r.upstreamError(job, "trade", err)
	}
	switch status.Classify(t.Status) {
	case status.Failed:
		return rejected(job, fmt.Sprintf("trade %s status %s", t.ID, t.Status), nil)
	case status.Waiting, status.Unknown:
		return r.inProgress(job, "trade", t.ID, t.Status)
	}
	// The trade executed: an answer that does not add up is no proof that nothing
	// was bought, so it is unresolved, never failed.
	if !t.BaseAmount.IsPositive() {
		return unresolved("mismatch", fmt.Sprintf("trade %s %s answers %s %s bought", t.ID, t.Status, t.BaseAmount, t.BaseCurrency))
	}
	if t.BaseCurrency != "" && !strings.EqualFold(t.BaseCurrency, job.Currency) {
		return unresolved("mismatch", fmt.Sprintf("trade %s %s bought %s, not %s", t.ID, t.Status, t.BaseCurrency, job.Currency))
	}
	// Contract §8: step 5 withdraws from the wallet the trade answers as baseWalletId.
	wallet, note := t.BaseWalletID, ""
	if wallet == "" {
		wallet, note = job.WalletID, " (no baseWalletId in the answer: using the funded wallet)"
	}
	return outcome{kind: outcomeAdvance, record: store.StepRecord{
		Next: store.StepFee,
		Result: store.WithdrawalStep{
			RequestID: ptr(job.TradeRequestID), UpstreamID: strPtr(t.ID), UpstreamStatus: strPtr(t.Status),
			WalletID: ptr(wallet), Amount: ptr(t.BaseAmount), Currency: ptr(job.Currency), Fee: ptr(t.Fee),
			FeeCurrency: ptr(orDefault(t.FeeCurrency, job.SourceCurrency)), Rate: ptr(t.Rate), Response: raw(t),
		},
		BaseWalletID: ptr(wallet), BaseAmount: ptr(t.BaseAmount),
		Reason: fmt.Sprintf("trade %s %s: %s %s bought %s %s into wallet %s at rate %s, fee %s %s%s", t.ID, t.Status,
			job.Amount, job.SourceCurrency, t.BaseAmount, job.Currency, wallet, t.Rate, t.Fee,
			orDefault(t.FeeCurrency, job.SourceCurrency), note),
	}}
}

// stepFee is the guide's step 4 on what the trade actually bought, with the fee
// check repeated on the executed trade: the last point before money leaves.
func (r *Runner) stepFee(ctx context.Context, job *store.WithdrawalJob) outcome {
	trade, ok := job.StepResult(store.StepTrade)
	if !ok || job.BaseWalletID == nil || job.BaseAmount == nil {
		return fail("internal: fee step without a recorded trade")
	}
	fq, err := r.feeQuota(ctx, job, *job.BaseWalletID, *job.BaseAmount)
	if err != nil {
		return r.upstreamError(job, "fee-and-quota", err)
	}
	v := FeeCheck{
		Amount: job.Amount, SourceCurrency: job.SourceCurrency, MaxRate: job.MaxFeeRate,
		TradeFee: deref(trade.Fee), TradeFeeCurrency: derefS(trade.FeeCurrency), Rate: deref(trade.Rate),
		Withdrawn: *job.BaseAmount, Currency: job.Currency, NetworkFees: fq.Fees,
	}.Evaluate()
	result := &store.WithdrawalStep{
		WalletID: job.BaseWalletID, Amount: job.BaseAmount, Currency: ptr(job.Currency), Fee: ptr(v.NetworkFee),
		FeeCurrency: ptr(job.Currency), Response: raw(fq),
	}
	if v.Stop != "" {
		return outcome{kind: outcomeStop, status: store.WithdrawalStopped, code: "fee_limit", result: result,
			reason: fmt.Sprintf("stopped before the money left the account: %s; the %s %s bought stay in wallet %s",
				v.Stop, *job.BaseAmount, job.Currency, *job.BaseWalletID)}
	}
	return outcome{kind: outcomeAdvance, record: store.StepRecord{
		Next: store.StepTransfer, Result: *result,
		Reason: fmt.Sprintf("fees %s %s within the limit %s %s (network fee %s %s)", v.Total, job.Currency, v.Limit,
			job.Currency, v.NetworkFee, job.Currency),
	}}
}

// stepTransfer is the guide's step 5: withdraw from baseWalletId what the
// trade bought minus the network fee fee-and-quota quoted (contract §11: a
// payout never spends money it did not bring). Interlace charges the fee on top
// of the amount sent, so amount + fee is exactly what the trade put in the
// wallet, whatever else the wallet holds (the master wallet's other funds, a
// user's deposits not yet swept).
func (r *Runner) stepTransfer(ctx context.Context, job *store.WithdrawalJob) outcome {
	if job.BaseWalletID == nil || job.BaseAmount == nil {
		return fail("internal: transfer without a recorded trade")
	}
	feeStep, ok := job.StepResult(store.StepFee)
	if !ok || feeStep.Fee == nil {
		return fail("internal: transfer without a recorded network fee")
	}
	send := job.BaseAmount.Sub(*feeStep.Fee)
	if !send.IsPositive() {
		return outcome{kind: outcomeStop, status: store.WithdrawalStopped, code: "fee_limit", reason: fmt.Sprintf(
			"stopped before the money left the account: network fee %s %s leaves nothing of the %s %s bought",
			*feeStep.Fee, job.Currency, *job.BaseAmount, job.Currency)}
	}
	t, err := r.up.CreateBlockchainTransfer(ctx, interlace.BlockchainTransferRequest{
		IdempotencyKey: job.TransferRequestID.String(), AccountID: job.AccountID,
		Source:      interlace.Source{Type: "cryptoconnect_wallet", ID: *job.BaseWalletID},
		Destination: interlace.Destination{Type: "blockchain", Chain: job.Chain, Address: job.Address},
		Amount:      interlace.Money{Amount: send, Currency: job.Currency},
	})
	if err != nil {
		return r.upstreamError(job, "blockchain transfer", err)
	}
	amount := t.Amount.Amount
	if amount.IsZero() {
		amount = send
	}
	var fee *decimal.Decimal
	var feeCur *string
	sum, cur := decimal.Zero, ""
	mixed := false
	for _, f := range t.Fees {
		if f.Amount.IsZero() {
			continue
		}
		if cur != "" && !strings.EqualFold(f.Currency, cur) {
			mixed = true
		}
		cur = f.Currency
		sum = sum.Add(f.Amount)
	}
	if !mixed {
		fee, feeCur = &sum, ptr(orDefault(cur, job.Currency))
	}
	result := store.WithdrawalStep{
		RequestID: ptr(job.TransferRequestID), UpstreamID: strPtr(t.ID), UpstreamStatus: strPtr(t.Status),
		WalletID: job.BaseWalletID, Amount: ptr(amount), Currency: ptr(orDefault(t.Amount.Currency, job.Currency)),
		Fee: fee, FeeCurrency: feeCur, Response: raw(t),
	}
	if status.Classify(t.Status) == status.Failed {
		return rejected(job, fmt.Sprintf("blockchain transfer %s status %s", t.ID, t.Status), &result)
	}
	if !amount.Equal(send) || (t.Amount.Currency != "" && !strings.EqualFold(t.Amount.Currency, job.Currency)) {
		return outcome{kind: outcomeUnresolved, code: "mismatch", result: &result, reason: fmt.Sprintf(
			"blockchain transfer %s answers %s %s, sent %s %s: the money may have moved in another amount",
			t.ID, amount, t.Amount.Currency, send, job.Currency)}
	}
	feeText := "in several currencies"
	if fee != nil {
		feeText = fee.String() + " " + *feeCur
	}
	return outcome{kind: outcomeAdvance, record: store.StepRecord{
		Next: store.StepConfirm, Result: result,
		ChainTransferID: strPtr(t.ID), ChainStatus: strPtr(t.Status), TxHash: strPtr(t.TransactionHash),
		Reason: fmt.Sprintf("blockchain transfer %s %s: %s %s from wallet %s to %s on %s (bought %s, network fee %s "+
			"withheld), fee charged %s", t.ID, t.Status, amount, job.Currency, *job.BaseWalletID, job.Address, job.Chain,
			job.BaseAmount, feeStep.Fee, feeText),
	}}
}

// stepConfirm waits for the on-chain transfer: Pending, then Closed with its
// transactionHash. A webhook usually completes the withdrawal first (see the
// sweeper_withdrawal_webhook trigger); polling is the fallback. Money has left by
// now, so no upstream error fails the withdrawal here: it keeps polling.
func (r *Runner) stepConfirm(ctx context.Context, job *store.WithdrawalJob, justTransferred bool) outcome {
	if job.ChainTransferID == nil {
		return fail("internal: confirm without a recorded blockchain transfer")
	}
	status, hash := derefS(job.ChainStatus), derefS(job.TxHash)
	if store.ChainClass(status) == "final" && hash != "" {
		// Already known (the transfer's own answer, or a webhook noted while we ran).
		return outcome{kind: outcomeComplete, chainStatus: status, txHash: hash, result: &store.WithdrawalStep{
			UpstreamID: job.ChainTransferID, UpstreamStatus: &status,
			Response: raw(map[string]string{"id": *job.ChainTransferID, "status": status, "transactionHash": hash}),
		}}
	}
	if justTransferred {
		return outcome{kind: outcomeWait, delay: r.cfg.ConfirmInterval, chainStatus: status, txHash: hash, note: true}
	}
	t, err := r.up.GetBlockchainTransfer(ctx, *job.ChainTransferID)
	if err != nil {
		o := r.upstreamError(job, "get blockchain transfer", err)
		if o.kind == outcomeFail {
			o = outcome{kind: outcomeRetry, code: o.code, reason: o.reason + " (still polling: the money has left)",
				delay: r.backoff(job, 0)}
		}
		return o
	}
	result := &store.WithdrawalStep{
		UpstreamID: strPtr(t.ID), UpstreamStatus: strPtr(t.Status), Amount: ptr(t.Amount.Amount),
		Currency: strPtr(t.Amount.Currency), Response: raw(t),
	}
	switch store.ChainClass(t.Status) {
	case "final":
		if t.TransactionHash != "" {
			return outcome{kind: outcomeComplete, chainStatus: t.Status, txHash: t.TransactionHash, result: result}
		}
	case "failed":
		return outcome{kind: outcomeFail, status: store.WithdrawalFailed, result: result,
			reason: fmt.Sprintf("on-chain transfer %s status %s", t.ID, t.Status)}
	}
	return outcome{kind: outcomeWait, delay: r.cfg.ConfirmInterval, chainStatus: t.Status, txHash: t.TransactionHash}
}

func deref(d *decimal.Decimal) decimal.Decimal {
	if d == nil {
		return decimal.Zero
	}
	return *d
}

func derefS(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
