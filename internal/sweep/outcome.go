package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// Attempt outcomes this file adds to store's (sweep_attempts.outcome).
const (
	// attemptMismatch: a success answer that does not describe the request sent.
	attemptMismatch = "mismatch"
)

type outcomeKind int

const (
	outcomeRetry      outcomeKind = iota
	outcomeSucceeded              // booked: transfer id and credited amount
	outcomeRejected               // failed: a definite rejection, nothing unknown before it
	outcomeUnresolved             // money may have moved: an operator decides (contract §11)
)

type outcome struct {
	kind       outcomeKind
	reason     string
	retry      store.RetryKind
	delay      time.Duration
	retryAfter time.Duration
	result     store.SweepResult
	// what the answer named, kept on an unresolved sweep for the operator
	transferID, upstreamStatus string
}

// classify turns the upstream answer into what to do next, filling the attempt
// row. It is the one place where contract §11's rules are decided:
//   - a definite rejection is failed only when no earlier attempt's outcome is
//     unknown (job.MaybeMoved); otherwise it is unresolved;
//   - a success answer is checked against the request; a mismatch, or an answer
//     PostgreSQL could not store, is unresolved, never booked;
//   - "in progress" (the status field, or a known code) is replayed with the
//     normal backoff, and becomes unresolved after pendingMaxAge of nothing else.
func classify(res *interlace.InternalTransfer, err error, att *store.Attempt, job store.Sweep, pendingMaxAge time.Duration) outcome {
	if err != nil {
		return classifyError(err, att, job, pendingMaxAge)
	}
	att.HTTPStatus = http.StatusOK
	att.Code = "000000"
	att.Message = res.Status
	if problem := unstorable(res); problem != "" {
		att.Outcome = store.AttemptPoison
		att.Message = "answer not storable: " + problem
		return outcome{kind: outcomeUnresolved,
			reason: "the success answer cannot be stored as given (" + problem + "); the transfer may have been applied"}
	}
	switch status.Classify(res.Status) {
	case status.Final:
		if problem := mismatch(res, job); problem != "" {
			att.Outcome = attemptMismatch
			att.Message = res.Status + ": " + problem
			return outcome{kind: outcomeUnresolved, transferID: res.ID, upstreamStatus: res.Status,
				reason: "transfer " + res.ID + " " + res.Status + " does not match the request: " + problem}
		}
		att.Outcome = store.AttemptSucceeded
		return outcome{kind: outcomeSucceeded, result: result(res)}
	case status.Failed:
		att.Outcome = store.AttemptRejected
		return rejection(job, "transfer "+res.ID+" status "+res.Status, res.ID, res.Status)
	default:
		// Waiting (PENDING, PROCESSING, …) or a status we do not know: accepted,
		// not done. Replaying the same request later returns its final state.
		att.Outcome = store.AttemptInProgress
		return inProgress(job, "transfer "+res.ID+" status "+res.Status, pendingMaxAge, res.ID, res.Status)
	}
}

func classifyError(err error, att *store.Attempt, job store.Sweep, pendingMaxAge time.Duration) outcome {
	var ae *interlace.APIError
	if errors.As(err, &ae) {
		att.HTTPStatus, att.Code, att.Message = ae.HTTPStatus, ae.Code, ae.Message
	}
	att.Error = err.Error()
	switch {
	case ae != nil && ae.InProgress:
		att.Outcome = store.AttemptInProgress
		return inProgress(job, "in progress: "+describe(ae, err), pendingMaxAge, "", "")
	case ae != nil && ae.HTTPStatus >= 200 && ae.HTTPStatus < 300 && successCode(ae.Code) && errors.Is(err, interlace.ErrMalformedResponse):
		// Interlace said yes, in an answer we cannot read (a number beyond any
		// decoder, a missing transfer id). Replays return the same first answer, so
		// retrying would loop forever: the money may have moved; a person decides.
		att.Outcome = store.AttemptPoison
		return outcome{kind: outcomeUnresolved, reason: "a success answer that cannot be read: " + describe(ae, err) +
			"; the transfer may have been applied"}
	case ae != nil && !ae.Retryable && ae.HTTPStatus >= 200 && ae.HTTPStatus < 300 && errors.Is(err, interlace.ErrMalformedResponse):
		// A success answer that is not about our request (another clientTransactionId):
		// something was applied somewhere; never book it, never call it failed.
		att.Outcome = attemptMismatch
		return outcome{kind: outcomeUnresolved, reason: "the answer does not match the request: " + describe(ae, err)}
	case ae != nil && !ae.Retryable:
		att.Outcome = store.AttemptRejected
		return rejection(job, describe(ae, err), "", "")
	}
	att.Outcome = store.AttemptRetry
	o := outcome{kind: outcomeRetry, reason: err.Error(), retry: store.RetryUnknown}
	if ae != nil {
		o.retryAfter = ae.RetryAfter
		// Refused before it was looked at: nothing can have moved.
		if ae.HTTPStatus == http.StatusUnauthorized || errors.Is(err, interlace.ErrNoToken) {
			o.retry = store.RetryNotSent
		}
	}
	return o
}

func successCode(code string) bool { return code == "000000" || code == "0" }

func describe(ae *interlace.APIError, err error) string {
	reason := ae.Message
	if reason == "" {
		reason = err.Error()
	}
	if ae.Code != "" {
		reason = ae.Code + " " + reason
	}
	return reason
}

// rejection is a definite "no": failed, unless an earlier attempt's outcome is
// unknown, in which case this "no" may be about the replay of a transfer that
// was applied (a duplicate clientTransactionId, or the balance it already moved
// being gone): unresolved.
func rejection(job store.Sweep, reason, transferID, upstreamStatus string) outcome {
	if job.MaybeMoved {
		return outcome{kind: outcomeUnresolved, transferID: transferID, upstreamStatus: upstreamStatus,
			reason: "rejected after an attempt whose outcome is unknown, so the money may have moved: " + reason}
	}
	return outcome{kind: outcomeRejected, reason: reason}
}

func inProgress(job store.Sweep, reason string, pendingMaxAge time.Duration, transferID, upstreamStatus string) outcome {
	if pendingMaxAge > 0 && job.PendingFor >= pendingMaxAge {
		return outcome{kind: outcomeUnresolved, transferID: transferID, upstreamStatus: upstreamStatus,
			reason: fmt.Sprintf("nothing but in-progress answers for %s (SWEEPER_PENDING_MAX_AGE %s): %s",
				job.PendingFor.Round(time.Second), pendingMaxAge, reason)}
	}
	return outcome{kind: outcomeRetry, reason: reason, retry: store.RetryInProgress}
}

// mismatch checks a success answer against the request it answers (contract
// §11): the same clientTransactionId, amount, currency and wallets. A field the
// answer leaves out is a mismatch when the ledger needs it (id, amount,
// currencies); the wallet ids are compared when the answer states them.
func mismatch(res *interlace.InternalTransfer, job store.Sweep) string {
	var p []string
	if !strings.EqualFold(res.ClientTransactionID, job.ClientTransactionID.String()) {
		p = append(p, fmt.Sprintf("clientTransactionId %q, sent %s", res.ClientTransactionID, job.ClientTransactionID))
	}
	if !res.From.Amount.Equal(job.Amount) {
		p = append(p, fmt.Sprintf("amount %s, sent %s", res.From.Amount, job.Amount))
	}
	if !strings.EqualFold(res.From.Currency, job.Currency) {
		p = append(p, fmt.Sprintf("currency %q, sent %s", res.From.Currency, job.Currency))
	}
	if res.From.ID != "" && res.From.ID != job.FromWalletID {
		p = append(p, fmt.Sprintf("from wallet %q, sent %s", res.From.ID, job.FromWalletID))
	}
	if res.To.ID != "" && res.To.ID != job.ToWalletID {
		p = append(p, fmt.Sprintf("to balance %q, sent %s", res.To.ID, job.ToWalletID))
	}
	if !strings.EqualFold(res.To.Currency, job.ToCurrency) {
		p = append(p, fmt.Sprintf("credited currency %q, sent %s", res.To.Currency, job.ToCurrency))
	}
	if !res.To.Amount.IsPositive() {
		p = append(p, fmt.Sprintf("credited amount %s", res.To.Amount))
	}
	return strings.Join(p, "; ")
}

// Bounds of what a sweep row stores from an answer. They are far beyond any real
// transfer and well inside PostgreSQL's limits, so an answer that passes them is
// storable and one that does not is absurd.
const (
	maxIntegerDigits  = 30
	maxFractionDigits = 30
	maxStoredText     = 200
)

// unstorable names the first field of a success answer that the sweep row could
// not keep as given (or "" when all can be): text with NUL bytes, invalid UTF-8
// or absurd length, or a number with absurd magnitude or precision.
func unstorable(res *interlace.InternalTransfer) string {
	texts := map[string]string{"id": res.ID, "status": res.Status, "to.currency": res.To.Currency,
		"from.currency": res.From.Currency, "clientTransactionId": res.ClientTransactionID}
	nums := map[string]decimal.Decimal{"to.amount": res.To.Amount, "from.amount": res.From.Amount}
	for i, f := range res.From.Fees {
		texts[fmt.Sprintf("from.fees[%d].currency", i)] = f.Currency
		nums[fmt.Sprintf("from.fees[%d].amount", i)] = f.Amount
	}
	for i, f := range res.To.Fees {
		texts[fmt.Sprintf("to.fees[%d].currency", i)] = f.Currency
		nums[fmt.Sprintf("to.fees[%d].amount", i)] = f.Amount
	}
	var p []string
	for name, v := range texts {
		switch {
		case strings.IndexByte(v, 0) >= 0:
			p = append(p, name+" contains a NUL byte")
		case !utf8.ValidString(v):
			p = append(p, name+" is not UTF-8")
		case len(v) > maxStoredText:
			p = append(p, fmt.Sprintf("%s is %d bytes long", name, len(v)))
		}
	}
	for name, d := range nums {
		if !storableNumber(d) {
			p = append(p, fmt.Sprintf("%s has %d digits at exponent %d", name, d.NumDigits(), d.Exponent()))
		}
	}
	if len(p) == 0 {
		return ""
	}
	slices.Sort(p) // map order is random; the reason must read the same every time
	return strings.Join(p, "; ")
}

func storableNumber(d decimal.Decimal) bool {
	exp := int64(d.Exponent())
	integer := int64(d.NumDigits()) + exp
	return integer <= maxIntegerDigits && -exp <= maxFractionDigits
}

// result is what a checked success answer books: the credited side, the from
// side's fee total (NULL when in more than one currency) and every fee line.
func result(res *interlace.InternalTransfer) store.SweepResult {
	r := store.SweepResult{
		InterlaceTransferID: res.ID, UpstreamStatus: res.Status,
		CreditedAmount: res.To.Amount, CreditedCurrency: res.To.Currency,
		Fees: feeLines(res),
	}
	if fee, cur, err := res.From.TotalFees(); err == nil {
		r.FeeAmount, r.FeeCurrency = &fee, cur
	}
	return r
}

// feeLine is one fee line of the answer, as given; side says which leg charged it.
type feeLine struct {
	Side     string          `json:"side"`
	FeeType  int             `json:"feeType"`
	Amount   decimal.Decimal `json:"amount"`
	Currency string          `json:"currency"`
}

func feeLines(res *interlace.InternalTransfer) []byte {
	lines := []feeLine{}
	for _, f := range res.From.Fees {
		lines = append(lines, feeLine{Side: "from", FeeType: f.FeeType, Amount: f.Amount, Currency: f.Currency})
	}
	for _, f := range res.To.Fees {
		lines = append(lines, feeLine{Side: "to", FeeType: f.FeeType, Amount: f.Amount, Currency: f.Currency})
	}
	b, err := json.Marshal(lines)
	if err != nil {
		return []byte("[]") // decimals and strings always encode
	}
	return b
}
