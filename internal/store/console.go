package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
)

// The operator console's reads (contract §13). Every list is one page of a
// keyset (the last row's key, never OFFSET), and every filter that selects a
// rare state is narrowed through a small partial index first, so a page costs
// the same on a million deposits as on a hundred; TestConsoleQueryPlans checks
// the plans. sweep_ledger stays the one definition of a deposit's sweep state:
// the narrowing subqueries only ever select a superset of the view's rows.

// Console filters beyond the sweep states of package status.
const (
	// ConsoleAttention: what a person must look at: stuck, held or unresolved.
	ConsoleAttention = "attention"
	// ConsoleStuck: sweep_ledger.stuck (waiting or sweeping past its bound).
	ConsoleStuck = "stuck"
)

// ConsoleStatuses lists every status filter ConsoleDeposits accepts ("" = any).
func ConsoleStatuses() []string {
	return []string{ConsoleAttention, ConsoleStuck, status.SweepHeld, status.SweepUnresolved, status.SweepFailed,
		status.SweepWaiting, status.SweepPending, status.SweepInFlight, status.SweepSucceeded, status.SweepSkipped}
}

// Candidate sets: each selects a superset of the deposits in one sweep state,
// from a partial index (sweeps_attention, sweeps_failed, sweeps_due,
// deposits_open, deposits_skipped, deposit_confirmations_due). The view's own
// filter is applied on top. A deposit with no sweep row is waiting when it is
// pending or unknown, or final and waiting for Interlace's record: sweeper_ingest
// never leaves a final, unskipped deposit without either a sweep or a due
// confirmation (00005), which is what lets candWaiting stay small.
const (
	candHeld       = `SELECT deposit_id FROM sweeps WHERE status = 'held' UNION ALL SELECT id FROM deposits WHERE status = 'needs_review'`
	candUnresolved = `SELECT deposit_id FROM sweeps WHERE status = 'unresolved'`
	candFailed     = `SELECT deposit_id FROM sweeps WHERE status = 'failed'`
	candPending    = `SELECT deposit_id FROM sweeps WHERE status = 'pending'`
	candInFlight   = `SELECT deposit_id FROM sweeps WHERE status = 'in_flight'`
	candWaiting    = `SELECT id FROM deposits WHERE status IN ('pending', 'unknown') UNION ALL SELECT deposit_id FROM deposit_confirmations WHERE due_at IS NOT NULL`
	candStuck      = `SELECT deposit_id FROM sweeps WHERE status IN ('pending', 'in_flight') UNION ALL ` + candWaiting
	candSkipped    = `SELECT id FROM deposits WHERE status = 'failed' OR skip_reason IS NOT NULL`
	candAttention  = candHeld + ` UNION ALL ` + candUnresolved + ` UNION ALL ` + candStuck
)

// ConsoleDepositFilter narrows ConsoleDeposits. Unknown values are refused
// with ErrInvalidInput, never ignored.
type ConsoleDepositFilter struct {
	Status   string // "" = any; one of ConsoleStatuses
	Currency string // "" = any
	UserRef  string // "" = any
	After    string // deposit id of the previous page's last row
	Limit    int    // default 50, at most 200
}

// ConsoleDepositRow is one line of the console's deposits list.
type ConsoleDepositRow struct {
	DepositID        string
	Currency         string
	Amount           *decimal.Decimal // nil: a needs_review deposit whose amount was unusable
	DepositStatus    string
	SweepStatus      string
	ReceivedAt       time.Time
	UserRef          *string
	Stuck            bool
	LastError        *string
	Attempts         int
	CreditedAmount   *decimal.Decimal
	CreditedCurrency *string
	Source           string
}

// ConsoleDepositPage is one page; Next is the cursor of the following page
// ("" on the last one).
type ConsoleDepositPage struct {
	Rows []ConsoleDepositRow
	Next string
}

// ErrInvalidInput is a filter or cursor the store refuses.
var ErrInvalidInput = errors.New("store: invalid input")

// ConsoleDeposits returns one page of sweep_ledger, newest first.
func (s *Store) ConsoleDeposits(ctx context.Context, f ConsoleDepositFilter) (ConsoleDepositPage, error) {
	var wallet string
	if f.UserRef != "" {
		// The wallet first (user_ref is unique), so the page is one range of
		// deposits_wallet_received: a constant wallet id lets the planner read
		// it newest first and stop after a page, where a join would fetch and
		// sort every deposit of the user.
		err := s.pool.QueryRow(ctx, `SELECT id FROM wallets WHERE user_ref = $1`, f.UserRef).Scan(&wallet)
		if errors.Is(err, pgx.ErrNoRows) {
			return ConsoleDepositPage{}, nil
		}
		if err != nil {
			return ConsoleDepositPage{}, translate("store: console deposits", err)
		}
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	sql, args, err := consoleDepositsSQL(f, wallet)
	if err != nil {
		return ConsoleDepositPage{}, err
	}
	var out []ConsoleDepositRow
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// A page reads about one page of rows. The planner cannot estimate the
		// view's sweep_status (a CASE over two tables) and, expecting a long
		// walk, may start parallel workers that cost more than the page and read
		// ahead of it (measured: 1.3 s instead of milliseconds on a million).
		if _, err := tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsoleDepositRow, error) {
			var d ConsoleDepositRow
			err := r.Scan(&d.DepositID, &d.Currency, &d.Amount, &d.DepositStatus, &d.SweepStatus, &d.ReceivedAt,
				&d.UserRef, &d.Stuck, &d.LastError, &d.Attempts, &d.CreditedAmount, &d.CreditedCurrency, &d.Source)
			return d, err
		})
		return err
	})
	if err != nil {
		return ConsoleDepositPage{}, translate("store: console deposits", err)
	}
	page := ConsoleDepositPage{Rows: out}
	if len(out) > f.Limit {
		page.Rows = out[:f.Limit]
		page.Next = out[f.Limit-1].DepositID
	}
	return page, nil
}

// consoleDepositsSQL builds the page query with only the predicates the filter
// needs, so every shape gets a plan of its own (a catch-all "empty or equal"
// would let a generic plan scan the table). wallet is the id of f.UserRef's
// wallet. It asks for one row more than the page, to know whether another
// page follows.
func consoleDepositsSQL(f ConsoleDepositFilter, wallet string) (string, []any, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		return "", nil, fmt.Errorf("store: console deposits: limit %d not within 1 to 200: %w", f.Limit, ErrInvalidInput)
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	narrow := func(cand string) { where = append(where, "l.deposit_id IN ("+cand+")") }
	switch f.Status {
	case "":
	case ConsoleAttention:
		where = append(where, "(l.sweep_status IN ('held', 'unresolved') OR l.stuck)")
		narrow(candAttention)
	case ConsoleStuck:
		where = append(where, "l.stuck")
		narrow(candStuck)
	case status.SweepHeld, status.SweepUnresolved, status.SweepFailed, status.SweepPending, status.SweepInFlight,
		status.SweepSkipped, status.SweepWaiting, status.SweepSucceeded:
		where = append(where, "l.sweep_status = "+arg(f.Status))
		switch f.Status {
		case status.SweepHeld:
			narrow(candHeld)
		case status.SweepUnresolved:
			narrow(candUnresolved)
		case status.SweepFailed:
			narrow(candFailed)
		case status.SweepPending:
			narrow(candPending)
		case status.SweepInFlight:
			narrow(candInFlight)
		case status.SweepSkipped:
			narrow(candSkipped)
		case status.SweepWaiting:
			narrow(candWaiting)
			// succeeded has no superset on a small index (it is most deposits):
			// it walks the deposits newest first and stops after a page.
		}
	default:
		return "", nil, fmt.Errorf("store: console deposits: unknown status %q: %w", f.Status, ErrInvalidInput)
	}
	if f.Currency != "" {
		where = append(where, "l.currency = "+arg(f.Currency))
	}
	if f.UserRef != "" {
		where = append(where, "l.wallet_id = "+arg(wallet))
	}
	if f.After != "" {
		where = append(where, "(l.received_at, l.deposit_id) < (SELECT received_at, id FROM deposits WHERE id = "+arg(f.After)+")")
	}
	sql := `SELECT l.deposit_id, l.currency, l.amount, l.deposit_status, l.sweep_status, l.received_at, l.user_ref,
       l.stuck, l.last_error, l.attempts, l.credited_amount, l.credited_currency, l.source
  FROM sweep_ledger l`
	if len(where) > 0 {
		sql += "\n WHERE " + strings.Join(where, "\n   AND ")
	}
	sql += "\n ORDER BY l.received_at DESC, l.deposit_id DESC\n LIMIT " + arg(f.Limit+1)
	return sql, args, nil
}

// ConsoleCounts are the sizes of the operators' work lists.
type ConsoleCounts struct {
	Held, Unresolved, Stuck, Failed int
}

// ConsoleCounts counts held, unresolved, stuck and failed deposits, reading
// only the candidate sets (small in a healthy system) and classifying them
// through sweep_ledger.
func (s *Store) ConsoleCounts(ctx context.Context) (ConsoleCounts, error) {
	var c ConsoleCounts
	err := s.pool.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE sweep_status = 'held'),
       count(*) FILTER (WHERE sweep_status = 'unresolved'),
       count(*) FILTER (WHERE stuck),
       count(*) FILTER (WHERE sweep_status = 'failed')
  FROM sweep_ledger
 WHERE deposit_id IN (`+candAttention+` UNION ALL `+candFailed+`)`).Scan(&c.Held, &c.Unresolved, &c.Stuck, &c.Failed)
	return c, translate("store: console counts", err)
}

// ConsoleDeposit is one deposit's whole story, as stored.
type ConsoleDeposit struct {
	LedgerRow
	// AmountUnknown: the notification's amount was unusable (a needs_review
	// deposit stores none); LedgerRow.Amount is then zero and means nothing.
	AmountUnknown     bool
	Stuck             bool
	Source            string
	ConfirmedAt       *time.Time
	ConfirmedAmount   *decimal.Decimal
	UpstreamStatus    string
	SkipReason        *string
	SourceAddress     string
	DepositAddress    string
	DepositFees       json.RawMessage // the notification's fee lines, as received
	FinalAt           *time.Time
	UpdatedAt         time.Time
	UpstreamCreatedAt *time.Time
	UpstreamUpdatedAt *time.Time
	Sweep             *ConsoleSweep
	Deliveries        []ConsoleDelivery
	Events            []ConsoleEvent // deposit events
	SweepEvents       []ConsoleEvent
	Calls             []ConsoleAttempt // every upstream call of the sweep
}

// ConsoleSweep is the sweep job of a deposit: the frozen request and its state.
type ConsoleSweep struct {
	ClientTransactionID uuid.UUID
	Status              string
	Amount              decimal.Decimal
	Currency            string
	FromWalletID        string
	ToWalletID          *string
	ToCurrency          string
	Fees                json.RawMessage // every fee line of the answer (nil until answered)
	LastErrorCode       *string
	RunAt               time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
	FailedAt            *time.Time
}

// ConsoleDelivery is one stored webhook delivery, body byte for byte.
type ConsoleDelivery struct {
	NotificationID string
	EventType      string
	ReceivedAt     time.Time
	SignatureKey   *int16 // 0 current secret, 1 previous; nil unverified
	Outcome        string
	Reason         *string
	Effect         *string
	Body           []byte
}

// ConsoleEvent is one state change of a deposit or of its sweep.
type ConsoleEvent struct {
	At             time.Time
	From           *string
	To             string
	UpstreamStatus *string // deposit events only
	NotificationID *string // deposit events only
	Actor          *string // sweep events only: who changed it by hand (nil: the worker)
	Reason         string
}

// ConsoleAttempt is one upstream call of a sweep.
type ConsoleAttempt struct {
	Attempt             int
	ClientTransactionID uuid.UUID
	Worker              string
	StartedAt           time.Time
	Duration            time.Duration
	HTTPStatus          *int
	Code                *string
	Message             *string
	Outcome             string
	Error               *string
}

// ConsoleHistoryLimit bounds each of a deposit's lists (deliveries, events,
// attempts): a deposit retried for weeks must not make its page unbounded.
const ConsoleHistoryLimit = 500

// ConsoleDeposit reads one deposit with its deliveries, events and attempts.
// A missing deposit is ErrNotFound.
func (s *Store) ConsoleDeposit(ctx context.Context, id string) (ConsoleDeposit, error) {
	op := "store: console deposit " + id
	var d ConsoleDeposit
	var fees, sweepFees []byte
	var ctid *uuid.UUID
	var sw ConsoleSweep
	var swStatus, swCurrency, swFrom, swToCur *string
	var swAmount *decimal.Decimal
	var swRunAt, swCreated, swUpdated *time.Time
	var amount *decimal.Decimal
	l := &d.LedgerRow
	err := s.pool.QueryRow(ctx, `
SELECT l.deposit_id, l.account_id, l.wallet_id, l.chain, l.tx_hash, l.currency, l.amount, l.deposit_status,
       l.received_at, l.sweep_status, l.client_transaction_id, l.interlace_transfer_id, l.credited_amount,
       l.credited_currency, l.fee_amount, l.fee_currency, l.swept_at, l.last_error, l.attempts, l.user_ref,
       l.stuck, l.source, l.confirmed_at,
       d.confirmed_amount, d.upstream_status, d.skip_reason, d.source_address, d.deposit_address, d.fees, d.final_at,
       d.updated_at, d.upstream_created_at, d.upstream_updated_at,
       s.client_transaction_id, s.status, s.amount, s.currency, s.from_wallet_id, s.to_wallet_id, s.to_currency,
       s.fees, s.last_error_code, s.run_at, s.created_at, s.updated_at, s.failed_at
  FROM sweep_ledger l
  JOIN deposits d ON d.id = l.deposit_id
  LEFT JOIN sweeps s ON s.deposit_id = l.deposit_id
 WHERE l.deposit_id = $1`, id).Scan(
		&l.DepositID, &l.AccountID, &l.WalletID, &l.Chain, &l.TxHash, &l.Currency, &amount,
		&l.DepositStatus, &l.ReceivedAt, &l.SweepStatus, &l.ClientTransactionID, &l.InterlaceTransferID,
		&l.CreditedAmount, &l.CreditedCurrency, &l.FeeAmount, &l.FeeCurrency, &l.SweptAt, &l.LastError, &l.Attempts, &l.UserRef,
		&d.Stuck, &d.Source, &d.ConfirmedAt,
		&d.ConfirmedAmount, &d.UpstreamStatus, &d.SkipReason, &d.SourceAddress, &d.DepositAddress, &fees, &d.FinalAt,
		&d.UpdatedAt, &d.UpstreamCreatedAt, &d.UpstreamUpdatedAt,
		&ctid, &swStatus, &swAmount, &swCurrency, &swFrom, &sw.ToWalletID, &swToCur,
		&sweepFees, &sw.LastErrorCode, &swRunAt, &swCreated, &swUpdated, &sw.FailedAt)
	if err != nil {
		return ConsoleDeposit{}, translate(op, err)
	}
	d.DepositFees = fees
	if amount != nil {
		l.Amount = *amount
	}
	d.AmountUnknown = amount == nil
	if ctid != nil {
		sw.ClientTransactionID, sw.Status, sw.Amount, sw.Currency = *ctid, *swStatus, *swAmount, *swCurrency
		sw.FromWalletID, sw.ToCurrency, sw.RunAt, sw.CreatedAt, sw.UpdatedAt = *swFrom, *swToCur, *swRunAt, *swCreated, *swUpdated
		sw.Fees = sweepFees
		d.Sweep = &sw
	}

	batch := &pgx.Batch{}
	batch.Queue(`SELECT notification_id, event_type, received_at, signature_key, outcome, reason, effect, body
  FROM webhook_deliveries WHERE transfer_id = $1 ORDER BY received_at, notification_id LIMIT $2`, id, ConsoleHistoryLimit).
		Query(func(rows pgx.Rows) error {
			var err error
			d.Deliveries, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsoleDelivery, error) {
				var x ConsoleDelivery
				err := r.Scan(&x.NotificationID, &x.EventType, &x.ReceivedAt, &x.SignatureKey, &x.Outcome, &x.Reason, &x.Effect, &x.Body)
				return x, err
			})
			return err
		})
	batch.Queue(`SELECT at, from_status, to_status, upstream_status, notification_id, reason
  FROM deposit_events WHERE deposit_id = $1 ORDER BY at, id LIMIT $2`, id, ConsoleHistoryLimit).
		Query(func(rows pgx.Rows) error {
			var err error
			d.Events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsoleEvent, error) {
				var e ConsoleEvent
				var up string
				err := r.Scan(&e.At, &e.From, &e.To, &up, &e.NotificationID, &e.Reason)
				e.UpstreamStatus = &up
				return e, err
			})
			return err
		})
	batch.Queue(`SELECT at, from_status, to_status, actor, reason
  FROM sweep_events WHERE deposit_id = $1 ORDER BY at, id LIMIT $2`, id, ConsoleHistoryLimit).
		Query(func(rows pgx.Rows) error {
			var err error
			d.SweepEvents, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsoleEvent, error) {
				var e ConsoleEvent
				err := r.Scan(&e.At, &e.From, &e.To, &e.Actor, &e.Reason)
				return e, err
			})
			return err
		})
	batch.Queue(`SELECT attempt, client_transaction_id, worker, started_at, (EXTRACT(EPOCH FROM duration) * 1e6)::bigint,
       http_status, code, message, outcome, error
  FROM sweep_attempts WHERE deposit_id = $1 ORDER BY started_at, id LIMIT $2`, id, ConsoleHistoryLimit).
		Query(func(rows pgx.Rows) error {
			var err error
			d.Calls, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsoleAttempt, error) {
				var a ConsoleAttempt
				var us int64
				err := r.Scan(&a.Attempt, &a.ClientTransactionID, &a.Worker, &a.StartedAt, &us, &a.HTTPStatus,
					&a.Code, &a.Message, &a.Outcome, &a.Error)
				a.Duration = time.Duration(us) * time.Microsecond
				return a, err
			})
			return err
		})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return ConsoleDeposit{}, translate(op, err)
	}
	return d, nil
}

// ReconFilter bounds the reconciliation to deposits received in [From, To);
// zero times leave that side open.
type ReconFilter struct {
	From, To time.Time
}

// ReconLine is one currency's reconciliation: every deposit falls in exactly
// one part, so Deposits = Swept + Fees + InFlight + Held + Unresolved + Failed
// + Skipped + Other when the books balance. Swept and Fees are what the sweeps
// moved (their frozen request amount, net of the fees charged in the deposit's
// currency); every other part is the deposits' own amount. A sweep that moved
// a different amount from the deposit's, or a state nobody classified (Other),
// shows as a Difference.
type ReconLine struct {
	Currency string
	Count    int
	Deposits decimal.Decimal
	Swept    decimal.Decimal
	Fees     decimal.Decimal
	InFlight decimal.Decimal // waiting, pending and in_flight: not moved yet
	Held     decimal.Decimal
	// Unresolved: money that may or may not have moved.
	Unresolved decimal.Decimal
	Failed     decimal.Decimal
	Skipped    decimal.Decimal
	Other      decimal.Decimal // a sweep state this reconciliation does not know
	// FeesUnsplit counts succeeded sweeps whose fees are in another or in
	// several currencies: they are not in Fees (see the sweep's fee lines).
	FeesUnsplit int
	Counts      map[string]int // deposits per sweep state
}

// Difference is Deposits minus every part: zero when the currency balances.
func (r ReconLine) Difference() decimal.Decimal {
	return r.Deposits.Sub(r.Swept).Sub(r.Fees).Sub(r.InFlight).Sub(r.Held).Sub(r.Unresolved).Sub(r.Failed).
		Sub(r.Skipped).Sub(r.Other)
}

// Balanced reports whether the parts add up to the deposits exactly.
func (r ReconLine) Balanced() bool { return r.Difference().IsZero() }

// Reconciliation sums sweep_ledger per deposit currency and sweep state. It
// reads every deposit of the period once (one hash join, no sort); the
// period's bounds use deposits_received_at.
func (s *Store) Reconciliation(ctx context.Context, f ReconFilter) ([]ReconLine, error) {
	var from, to *time.Time
	if !f.From.IsZero() {
		from = &f.From
	}
	if !f.To.IsZero() {
		to = &f.To
	}
	rows, err := s.pool.Query(ctx, `
SELECT l.currency, l.sweep_status, count(*),
       COALESCE(sum(COALESCE(d.confirmed_amount, l.amount)), 0),
       COALESCE(sum(s.amount), 0),
       COALESCE(sum(l.fee_amount) FILTER (WHERE l.fee_currency = l.currency), 0),
       count(*) FILTER (WHERE s.status = 'succeeded' AND (l.fee_currency IS DISTINCT FROM l.currency)
                        AND (l.fee_amount IS NULL OR l.fee_amount <> 0)
                        AND (l.fee_amount IS NOT NULL OR COALESCE(jsonb_array_length(
                             CASE WHEN jsonb_typeof(s.fees) = 'array' THEN s.fees END), 0) > 0))
  FROM sweep_ledger l
  JOIN deposits d ON d.id = l.deposit_id
  LEFT JOIN sweeps s ON s.deposit_id = l.deposit_id
 WHERE ($1::timestamptz IS NULL OR l.received_at >= $1)
   AND ($2::timestamptz IS NULL OR l.received_at < $2)
 GROUP BY l.currency, l.sweep_status
 ORDER BY l.currency, l.sweep_status`, from, to)
	if err != nil {
		return nil, translate("store: reconciliation", err)
	}
	defer rows.Close()
	var out []ReconLine
	for rows.Next() {
		var cur, st string
		var n, unsplit int
		var deposits, moved, fee decimal.Decimal
		if err := rows.Scan(&cur, &st, &n, &deposits, &moved, &fee, &unsplit); err != nil {
			return nil, translate("store: reconciliation", err)
		}
		if len(out) == 0 || out[len(out)-1].Currency != cur {
			out = append(out, ReconLine{Currency: cur, Counts: map[string]int{}})
		}
		r := &out[len(out)-1]
		r.Count += n
		r.Counts[st] += n
		r.Deposits = r.Deposits.Add(deposits)
		switch st {
		case status.SweepSucceeded:
			r.Swept = r.Swept.Add(moved.Sub(fee))
			r.Fees = r.Fees.Add(fee)
			r.FeesUnsplit += unsplit
		case status.SweepWaiting, status.SweepPending, status.SweepInFlight:
			r.InFlight = r.InFlight.Add(deposits)
		case status.SweepHeld:
			r.Held = r.Held.Add(deposits)
		case status.SweepUnresolved:
			r.Unresolved = r.Unresolved.Add(deposits)
		case status.SweepFailed:
			r.Failed = r.Failed.Add(deposits)
		case status.SweepSkipped:
			r.Skipped = r.Skipped.Add(deposits)
		default:
			r.Other = r.Other.Add(deposits)
		}
	}
	return out, translate("store: reconciliation", rows.Err())
}
