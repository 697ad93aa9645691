package webhook

import (
	"errors"
	"strings"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// Intake holds the rules of contract §4 and §9 that turn a transfer object (a
// notification's resource, or a record read from Interlace's API) into what is
// recorded. The webhook handler and the poller share it, so a deposit found by
// polling is recorded exactly as a webhook would record it.
type Intake struct {
	accountID string
	target    string
	sweepable map[string]bool
	confirm   bool
}

// IntakeConfig configures an Intake.
type IntakeConfig struct {
	// AccountID is the merchant account; a deposit naming another one is recorded, never swept.
	AccountID string
	// TargetCurrency is what the Infinity Account is credited in [USD].
	TargetCurrency string
	// SweepCurrencies are the deposit currencies that are swept.
	SweepCurrencies []string
	// ConfirmDeposits: a final deposit from a notification waits for Interlace's
	// own record before its sweep exists (SWEEPER_CONFIRM_DEPOSITS).
	ConfirmDeposits bool
}

// NewIntake builds an Intake.
func NewIntake(c IntakeConfig) *Intake {
	in := &Intake{accountID: c.AccountID, target: c.TargetCurrency, sweepable: map[string]bool{}, confirm: c.ConfirmDeposits}
	if in.target == "" {
		in.target = "USD"
	}
	for _, cur := range c.SweepCurrencies {
		in.sweepable[strings.ToUpper(strings.TrimSpace(cur))] = true
	}
	return in
}

// ReviewIDPrefix marks the deposit id of a needs_review deposit whose transfer id
// itself is unusable: the row exists (visible, held) under the delivery's id.
const ReviewIDPrefix = "review:"

// Delivery classifies resource and returns base (whose NotificationID,
// EventType, SignatureKey and Body the caller set) completed with the outcome and
// the deposit. source is store.SourceWebhook or store.SourcePoll; record says the
// resource is Interlace's own record of the transfer (read from its API).
func (in *Intake) Delivery(base store.Delivery, resource, source string, record bool) store.Delivery {
	d := base
	d.Outcome = store.OutcomeIgnored
	c, err := ClassifyResource(resource)
	if c.Kind != KindDeposit || c.Deposit == nil {
		if err != nil {
			d.Outcome, d.Reason, d.TransferID = store.OutcomeUnusable, err.Error(), c.TransferID
		}
		return d
	}
	dep := c.Deposit
	in2 := &store.DepositInput{
		TransferID: dep.TransferID, AccountID: dep.AccountID, WalletID: dep.WalletID, Chain: dep.Chain,
		SourceAddress: dep.SourceAddress, DepositAddress: dep.DepositAddress, TxHash: dep.TxHash,
		Currency: dep.Currency, Amount: dep.Amount, Fees: dep.Fees, FeesJSON: dep.FeesJSON,
		UpstreamStatus: dep.Status, Status: DepositState(dep.Class),
		UpstreamCreatedAt: dep.CreatedAt, UpstreamUpdatedAt: dep.UpdatedAt,
		SweepAccountID: in.accountID, ToCurrency: in.target,
		Source: source, Origin: dep.Origin, Record: record, NeedConfirm: in.confirm,
	}
	if in2.AccountID == "" {
		in2.AccountID = in.accountID
	}
	if err != nil || dep.Review != "" {
		// A signed deposit with an unusable money field: kept, held for a person,
		// never dropped (contract §4). Its id is the transfer's when that reads.
		reason := dep.Review
		if reason == "" && err != nil {
			reason = strings.TrimPrefix(err.Error(), ErrUnusable.Error()+": ")
		}
		if in2.TransferID == "" {
			in2.TransferID = ReviewIDPrefix + base.NotificationID
		}
		in2.Status, in2.ReviewReason = status.DepositNeedsReview, reason
		d.Outcome, d.Reason = store.OutcomeUnusable, reason
	} else {
		d.Outcome = store.OutcomeDeposit
		in2.SkipReason = in.SkipReason(in2.AccountID, in2.Currency, dep.Origin)
	}
	in2.ClientTransactionID = ids.SweepTransactionID(in2.TransferID)
	d.TransferID, d.Deposit = in2.TransferID, in2
	return d
}

// SkipReason says why a final deposit of this account, currency and origin
// (source.type) will never be swept under the current configuration, or "".
// The operator's retry of a skipped deposit asks it again.
func (in *Intake) SkipReason(accountID, currency, origin string) string {
	switch {
	case !asciiEqualFold(strings.TrimSpace(origin), "blockchain"):
		return "a credit from " + quoteShort(origin) + ", not from the chain: not a deposit to sweep"
	case accountID != in.accountID:
		return "deposit belongs to account " + accountID + ", not the configured account"
	case !in.sweepable[currency]:
		return "currency " + currency + " is not swept (SWEEPER_SWEEP_CURRENCIES)"
	}
	return ""
}

// DepositState is the deposit state (deposits.status) of a status class.
func DepositState(c status.Class) string {
	switch c {
	case status.Final:
		return status.DepositFinal
	case status.Failed:
		return status.DepositFailed
	case status.Waiting:
		return status.DepositPending
	default:
		return status.DepositUnknown
	}
}

// IsUnusable reports whether err says a resource could not be used.
func IsUnusable(err error) bool { return errors.Is(err, ErrUnusable) }
