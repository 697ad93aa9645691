package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
)

// Delivery outcomes, as stored in webhook_deliveries.outcome.
const (
	OutcomeDeposit  = "deposit"
	OutcomeIgnored  = "ignored"
	OutcomeUnusable = "unusable"
	// OutcomeUnverified: a legacy-envelope delivery (contract §9), stored without a
	// signature key; it moves no money, it only wakes the poller.
	OutcomeUnverified = "unverified"
)

// Deposit statuses (deposits.status): internal/status's vocabulary.
const (
	DepositPending     = status.DepositPending
	DepositUnknown     = status.DepositUnknown
	DepositFinal       = status.DepositFinal
	DepositFailed      = status.DepositFailed
	DepositNeedsReview = status.DepositNeedsReview
)

// Sources of a deposit (deposits.source): what first brought it.
const (
	SourceWebhook = "webhook"
	SourcePoll    = "poll"
)

// Effect is what recording a delivery did.
type Effect string

// Effects returned by Ingest.
const (
	EffectDuplicate Effect = "duplicate" // the notification id was already recorded: nothing changed
	EffectIgnored   Effect = "ignored"   // stored; not a deposit
	EffectUnusable  Effect = "unusable"  // stored with its reason; nothing else
	EffectCreated   Effect = "created"   // first sight of the deposit
	EffectAdvanced  Effect = "advanced"  // the deposit moved forward
	EffectUnchanged Effect = "unchanged" // the same state again
	EffectStale     Effect = "stale"     // an older state, arriving late: ignored
	EffectConflict  Effect = "conflict"  // contradicts a terminal deposit whose sweep started or ended: kept and alerted
	// EffectUnverified: a legacy-envelope delivery, stored; the poller was woken.
	EffectUnverified Effect = "unverified"
	// EffectConfirmed: Interlace's record confirmed a final deposit (its sweep may now run).
	EffectConfirmed Effect = "confirmed"
	// EffectHeld: the delivery contradicts a final deposit before its money moved:
	// the sweep is held for a person.
	EffectHeld Effect = "held"
)

// Delivery is one webhook delivery (verified, or a legacy one kept unverified),
// or one transfer record read from Interlace, ready to record.
type Delivery struct {
	NotificationID string
	EventType      string
	SignatureKey   int // 0 current secret, 1 previous; stored NULL for unverified deliveries and records
	Body           []byte
	Outcome        string // OutcomeDeposit, OutcomeIgnored, OutcomeUnusable or OutcomeUnverified
	Reason         string // why it is unusable
	TransferID     string // set when known, even for unusable deposits
	// Deposit is the deposit the delivery describes: set for OutcomeDeposit, and
	// for an OutcomeUnusable deposit kept for review (Status DepositNeedsReview).
	Deposit *DepositInput
	// Withdrawal, on an ignored delivery, is a notification about one of our
	// withdrawals' blockchain transfers, applied in the delivery's transaction.
	Withdrawal *WithdrawalNotice
}

// DepositInput is the deposit a delivery describes.
type DepositInput struct {
	TransferID     string
	AccountID      string
	WalletID       string
	Chain          string
	SourceAddress  string
	DepositAddress string
	TxHash         string
	Currency       string
	Amount         decimal.Decimal
	Fees           any // serialised to JSON as-is
	// FeesJSON, when set, is stored instead of Fees: the fee lines exactly as sent.
	FeesJSON       json.RawMessage
	UpstreamStatus string
	// Status is a deposit state of internal/status (pending, unknown, final,
	// failed, needs_review).
	Status            string
	UpstreamCreatedAt time.Time
	UpstreamUpdatedAt time.Time
	// SkipReason, when set on a final deposit, records why it will never be swept.
	SkipReason string
	// The sweep job, created in the same transaction once the deposit is final.
	ClientTransactionID uuid.UUID
	SweepAccountID      string
	ToCurrency          string
	// Source is SourceWebhook or SourcePoll ("" = webhook).
	Source string
	// Origin is the transfer's source.type as sent.
	Origin string
	// ReviewReason says why a needs_review deposit is unusable.
	ReviewReason string
	// Record marks Interlace's own record of the transfer (read from its API):
	// a final record confirms the deposit (contract §9).
	Record bool
	// NeedConfirm makes a final deposit that is not Record wait for Interlace's
	// record before any sweep exists (SWEEPER_CONFIRM_DEPOSITS).
	NeedConfirm bool
}

const ingestSQL = `SELECT sweeper_ingest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
	$16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)`

func ingestArgs(d *Delivery) ([]any, error) {
	if d.NotificationID == "" {
		return nil, fmt.Errorf("store: delivery without notification id")
	}
	var sigKey any = int16(d.SignatureKey)
	if d.Outcome == OutcomeUnverified || (d.Deposit != nil && d.Deposit.Record) {
		sigKey = nil
	}
	args := []any{d.NotificationID, d.EventType, sigKey, d.Body, d.Outcome, nullString(d.Reason), nullString(d.TransferID)}
	if d.Deposit == nil {
		if d.Outcome == OutcomeDeposit {
			return nil, fmt.Errorf("store: deposit delivery %s without deposit", d.NotificationID)
		}
		return append(args, make([]any, 22)...), nil
	}
	p := d.Deposit
	var amount any = p.Amount
	if p.Status == DepositNeedsReview {
		if !p.Amount.IsPositive() {
			amount = nil // unusable: unknown, never a made-up figure
		}
	} else if !p.Amount.IsPositive() {
		return nil, fmt.Errorf("store: deposit %s: amount must be positive", p.TransferID)
	}
	fees := []byte(p.FeesJSON)
	if len(fees) == 0 || !json.Valid(fees) {
		var err error
		if fees, err = json.Marshal(p.Fees); err != nil {
			return nil, fmt.Errorf("store: deposit %s fees: %w", p.TransferID, err)
		}
		if p.Fees == nil {
			fees = []byte("[]")
		}
	}
	source := p.Source
	if source == "" {
		source = SourceWebhook
	}
	args[6] = p.TransferID
	return append(args, p.AccountID, p.WalletID, p.Chain, p.SourceAddress, p.DepositAddress, p.TxHash,
		p.Currency, amount, string(fees), p.UpstreamStatus, p.Status, nullTime(p.UpstreamCreatedAt),
		nullTime(p.UpstreamUpdatedAt), nullString(p.SkipReason), p.ClientTransactionID, p.SweepAccountID,
		p.ToCurrency, source, nullString(p.Origin), nullString(p.ReviewReason), p.Record, p.NeedConfirm), nil
}

// Ingest records one delivery in its own transaction (a single statement).
func (s *Store) Ingest(ctx context.Context, d Delivery) (Effect, error) {
	effects, err := s.IngestBatch(ctx, []Delivery{d})
	if err != nil {
		return "", err
	}
	return effects[0], nil
}

// IngestBatch records several deliveries in ONE transaction (group commit): one
// WAL flush for all of them. The whole transaction is a single round trip.
// Either all are recorded or none is. Deadlocks between concurrent batches are
// retried; effects come back in the order of ds.
func (s *Store) IngestBatch(ctx context.Context, ds []Delivery) ([]Effect, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	if hasWithdrawalNotice(ds) {
		return s.ingestWithNotices(ctx, ds)
	}
	// Lock rows in one global order (transfer id, then notification id) so that two
	// batches never wait on each other in a cycle.
	order := lockOrder(len(ds), func(a, b int) bool {
		da, db := &ds[a], &ds[b]
		if da.TransferID != db.TransferID {
			return da.TransferID < db.TransferID
		}
		return da.NotificationID < db.NotificationID
	})
	argsets := make([][]any, len(ds))
	for _, i := range order {
		a, err := ingestArgs(&ds[i])
		if err != nil {
			return nil, err
		}
		argsets[i] = a
	}
	effects := make([]Effect, len(ds))
	err := s.pipeline(ctx, order,
		func(b *pgx.Batch, i int) { b.Queue(ingestSQL, argsets[i]...) },
		func(row pgx.Row, i int) error { return row.Scan((*string)(&effects[i])) })
	if err != nil {
		return nil, translate("store: ingest", err)
	}
	return effects, nil
}

// lockOrder returns the indexes 0..n-1 sorted by less, the order in which a batch
// touches its rows: one order for every batch, so two never deadlock.
func lockOrder(n int, less func(a, b int) bool) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return less(order[a], order[b]) })
	return order
}

// pipeline queues one statement per item, in order, and scans each one's single
// row. Deadlocks and serialization failures are retried: the whole transaction
// simply runs again.
//
// It sends every statement in one pipeline without BEGIN/COMMIT: PostgreSQL runs
// the statements before the pipeline's Sync as one implicit transaction, so a
// batch costs one round trip instead of three, and commits (or rolls back as a
// whole) at the Sync. Results stream back before the commit, so a nil error means
// Close has seen the Sync's answer: only then is the batch durable.
func (s *Store) pipeline(ctx context.Context, order []int, queue func(b *pgx.Batch, i int),
	scan func(row pgx.Row, i int) error) error {
	var err error
	for try := 0; try < 5; try++ {
		err = s.pipelineOnce(ctx, order, queue, scan)
		if err == nil || !isRetryableTx(err) {
			break
		}
	}
	return err
}

func (s *Store) pipelineOnce(ctx context.Context, order []int, queue func(b *pgx.Batch, i int),
	scan func(row pgx.Row, i int) error) error {
	b := &pgx.Batch{}
	for _, i := range order {
		queue(b, i)
	}
	br := s.pool.SendBatch(ctx, b)
	for _, i := range order {
		if err := scan(br.QueryRow(), i); err != nil {
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
