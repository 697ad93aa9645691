// Package poll makes Interlace's own records decide (contract §9): the confirmer
// reads back every final deposit a notification announced before its money may
// move, the backfill poller lists the account's transfers to find deposits no
// notification brought, and the operator's release re-reads one record. All of
// them record what they read through the same ingest path as a webhook
// (webhook.Intake, store.IngestBatch), with source poll: a record is a
// notification that cannot lie about the money.
package poll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/webhook"
)

// Upstream is what reading Interlace's records needs; *interlace.Client has it.
type Upstream interface {
	ListTransfers(ctx context.Context, p interlace.ListTransfersParams) (*interlace.TransferPage, error)
	GetTransferRecord(ctx context.Context, id string) (json.RawMessage, error)
}

// RecordEventType is webhook_deliveries.event_type of a record read from the API.
const RecordEventType = "interlace.record"

// Reader reads transfer records and records them.
type Reader struct {
	up        Upstream
	store     *store.Store
	intake    *webhook.Intake
	accountID string
	target    string
	confirm   bool
	log       *zap.Logger
	metrics   *metrics.Metrics
}

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	AccountID      string
	TargetCurrency string
	// Intake must be configured like the webhook handler's (same account,
	// currencies and confirmation setting): one rule set for both paths.
	Intake          *webhook.Intake
	ConfirmDeposits bool
}

// NewReader builds a Reader.
func NewReader(c ReaderConfig, up Upstream, st *store.Store, log *zap.Logger, m *metrics.Metrics) (*Reader, error) {
	if c.AccountID == "" || c.Intake == nil || up == nil || st == nil {
		return nil, errors.New("poll: AccountID, Intake, upstream and store are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if c.TargetCurrency == "" {
		c.TargetCurrency = "USD"
	}
	return &Reader{up: up, store: st, intake: c.Intake, accountID: c.AccountID, target: c.TargetCurrency,
		confirm: c.ConfirmDeposits, log: log, metrics: m}, nil
}

// recorded is what recording one record did.
type recorded struct {
	TransferID string
	Effect     store.Effect
	Delivery   store.Delivery
}

// delivery turns one record into a delivery, or reports false when it is not
// about a deposit (withdrawals and other transfers are Interlace's to keep; the
// withdrawal workflow reads its own).
func (r *Reader) delivery(raw json.RawMessage) (store.Delivery, bool) {
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	// The same record read twice is one delivery; a changed record is a new one.
	base := store.Delivery{NotificationID: "record:" + hash, EventType: RecordEventType, Body: raw}
	d := r.intake.Delivery(base, string(raw), store.SourcePoll, true)
	if d.Deposit == nil {
		return d, false
	}
	if id := d.Deposit.TransferID; !strings.HasPrefix(id, webhook.ReviewIDPrefix) {
		d.NotificationID = "record:" + id + ":" + hash[:16]
	}
	return d, true
}

// record records every deposit among raws in one transaction.
func (r *Reader) record(ctx context.Context, raws []json.RawMessage) ([]recorded, error) {
	var ds []store.Delivery
	for _, raw := range raws {
		if d, ok := r.delivery(raw); ok {
			ds = append(ds, d)
		}
	}
	return r.recordDeliveries(ctx, ds)
}

// recordDeliveries records deliveries made by delivery, in one transaction.
func (r *Reader) recordDeliveries(ctx context.Context, ds []store.Delivery) ([]recorded, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	effects, err := r.store.IngestBatch(ctx, ds)
	if err != nil {
		return nil, fmt.Errorf("poll: record transfers: %w", err)
	}
	out := make([]recorded, len(ds))
	for i, d := range ds {
		out[i] = recorded{TransferID: d.Deposit.TransferID, Effect: effects[i], Delivery: d}
		switch effects[i] {
		case store.EffectCreated:
			r.metrics.Deposit(d.Deposit.Status)
			r.log.Info("deposit found in Interlace's records", zap.String("deposit_id", d.Deposit.TransferID),
				zap.String("status", d.Deposit.UpstreamStatus), zap.String("amount", d.Deposit.Amount.String()+" "+d.Deposit.Currency))
		case store.EffectAdvanced:
			r.metrics.Deposit(d.Deposit.Status)
		case store.EffectHeld, store.EffectConflict:
			r.metrics.DepositConflict(string(effects[i]))
			r.log.Warn("Interlace's record contradicts a final deposit", zap.String("deposit_id", d.Deposit.TransferID),
				zap.String("effect", string(effects[i])), zap.String("record_status", d.Deposit.UpstreamStatus))
		}
		if d.Outcome == store.OutcomeUnusable && effects[i] == store.EffectCreated {
			r.log.Warn("deposit record needs review", zap.String("deposit_id", d.Deposit.TransferID), zap.String("reason", d.Reason))
		}
	}
	return out, nil
}

// isNotFound: Interlace says the transfer does not exist (yet).
func isNotFound(err error) bool {
	var ae *interlace.APIError
	return errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound
}

// ReadOne reads one transfer's record and records it. found is false when
// Interlace does not know the transfer.
func (r *Reader) ReadOne(ctx context.Context, id string) (rec recorded, found bool, err error) {
	raw, err := r.up.GetTransferRecord(ctx, id)
	if isNotFound(err) {
		return recorded{}, false, nil
	}
	if err != nil {
		return recorded{}, false, err
	}
	out, err := r.record(ctx, []json.RawMessage{raw})
	if err != nil {
		return recorded{}, true, err
	}
	if len(out) == 0 {
		d, _ := r.delivery(raw)
		return recorded{Delivery: d}, true, nil
	}
	return out[0], true, nil
}

// Release is the operator's release (contract §9): re-read Interlace's record
// of the deposit, record it like any record, and let the store release the held
// sweep if the record is final and agrees. It returns store.Release*.
func (r *Reader) Release(ctx context.Context, depositID string, by store.Actor) (string, error) {
	var fig store.RecordFigures
	if strings.HasPrefix(depositID, webhook.ReviewIDPrefix) {
		fig.Problem = "no Interlace transfer id to read back: the notification's id was unusable"
	} else {
		rec, found, err := r.ReadOne(ctx, depositID)
		switch {
		case err != nil:
			return "", fmt.Errorf("poll: release %s: %w", depositID, err)
		case !found:
			fig.Problem = "Interlace has no record of transfer " + depositID
		case rec.Delivery.Deposit == nil:
			fig.Problem = "Interlace's record of " + depositID + " is not a deposit"
		case rec.Delivery.Deposit.Status == status.DepositNeedsReview:
			fig.Problem = "Interlace's record is unusable: " + rec.Delivery.Deposit.ReviewReason
		default:
			dep := rec.Delivery.Deposit
			fig = store.RecordFigures{Status: dep.UpstreamStatus, Final: dep.Status == status.DepositFinal,
				WalletID: dep.WalletID, Currency: dep.Currency, Amount: dep.Amount}
		}
	}
	return r.store.ReleaseDeposit(ctx, depositID, fig, by)
}

// Retry is the operator's retry: a failed sweep is requeued, a skipped deposit
// is swept if the current configuration no longer skips it (same
// clientTransactionId).
func (r *Reader) Retry(ctx context.Context, depositID string, by store.Actor) error {
	return r.store.RetryDeposit(ctx, depositID, store.RetryParams{
		SkipReason: r.intake.SkipReason, NeedConfirm: r.confirm, ToCurrency: r.target,
		ClientTransactionID: ids.SweepTransactionID(depositID),
	}, by)
}

// createTime reads a record's createTime (ms epoch as string or number, or RFC
// 3339); zero when absent or unreadable.
func createTime(raw json.RawMessage) time.Time {
	var v struct {
		CreateTime json.RawMessage `json:"createTime"`
	}
	if json.Unmarshal(raw, &v) != nil || len(v.CreateTime) == 0 {
		return time.Time{}
	}
	s := strings.Trim(string(v.CreateTime), `"`)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms)
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	return time.Time{}
}
