package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
)

// Withdrawal statuses (withdrawals.status).
const (
	WithdrawalPending   = "pending"   // due at run_at (new, retrying, or waiting for the chain)
	WithdrawalRunning   = "running"   // leased by a runner until run_at
	WithdrawalCompleted = "completed" // on-chain transfer final, with its transaction hash
	WithdrawalFailed    = "failed"    // an upstream rejection; an operator may requeue it
	WithdrawalStopped   = "stopped"   // a guard stopped it before money left (fees); final
	// WithdrawalUnresolved: a money-moving step's outcome is unknown and a later
	// answer did not settle it (contract §11): never retried automatically, never
	// failed; an operator decides with Interlace's records.
	WithdrawalUnresolved = "unresolved"
)

// Withdrawal steps (withdrawals.step), in the order they run. The guide's optional
// previews run first, so that no USD moves before the fees are known.
const (
	StepQuote      = "quote"       // guide step 2: estimate quote (moves nothing)
	StepFeePreview = "fee_preview" // guide step 4 on the requested wallet and quoted amount (moves nothing)
	StepFund       = "fund"        // guide step 1: USD Infinity -> CryptoConnect wallet
	StepTrade      = "trade"       // guide step 3: USD -> crypto
	StepFee        = "fee"         // guide step 4 on the traded amount, checked again before money leaves
	StepTransfer   = "transfer"    // guide step 5: blockchain transfer
	StepConfirm    = "confirm"     // on-chain Pending -> Closed with transactionHash
	StepDone       = "done"
)

// WithdrawalInput is a new withdrawal, frozen at creation.
type WithdrawalInput struct {
	ID                uuid.UUID
	IdempotencyKey    string
	AccountID         string
	WalletID          string
	SourceCurrency    string
	Amount            decimal.Decimal
	Currency          string
	Chain             string
	Address           string
	MaxFeeRate        decimal.Decimal
	FundRequestID     uuid.UUID
	TradeRequestID    uuid.UUID
	TransferRequestID uuid.UUID
}

// Withdrawal is a stored withdrawal. Steps and Events are filled by Withdrawal (one)
// and by ClaimWithdrawals (Steps only); ListWithdrawals leaves them empty.
type Withdrawal struct {
	ID                uuid.UUID         `json:"id"`
	IdempotencyKey    string            `json:"idempotencyKey"`
	Status            string            `json:"status"`
	Step              string            `json:"step"`
	AccountID         string            `json:"accountId"`
	WalletID          string            `json:"walletId"`
	UserRef           *string           `json:"userRef,omitempty"`
	SourceCurrency    string            `json:"sourceCurrency"`
	Amount            decimal.Decimal   `json:"amount"`
	Currency          string            `json:"currency"`
	Chain             string            `json:"chain"`
	Address           string            `json:"address"`
	MaxFeeRate        decimal.Decimal   `json:"maxFeeRate"`
	FundRequestID     uuid.UUID         `json:"fundRequestId"`
	TradeRequestID    uuid.UUID         `json:"tradeRequestId"`
	TransferRequestID uuid.UUID         `json:"transferRequestId"`
	Attempts          int               `json:"attempts"`
	RunAt             time.Time         `json:"runAt"`
	InfinityWalletID  *string           `json:"infinityWalletId,omitempty"`
	BaseWalletID      *string           `json:"baseWalletId,omitempty"`
	BaseAmount        *decimal.Decimal  `json:"baseAmount,omitempty"`
	ChainTransferID   *string           `json:"chainTransferId,omitempty"`
	ChainStatus       *string           `json:"chainStatus,omitempty"`
	TxHash            *string           `json:"transactionHash,omitempty"`
	LastError         *string           `json:"lastError,omitempty"`
	LastErrorCode     *string           `json:"lastErrorCode,omitempty"`
	CreatedAt         time.Time         `json:"createdAt"`
	UpdatedAt         time.Time         `json:"updatedAt"`
	CompletedAt       *time.Time        `json:"completedAt,omitempty"`
	FailedAt          *time.Time        `json:"failedAt,omitempty"`
	Steps             []WithdrawalStep  `json:"steps,omitempty"`
	Events            []WithdrawalEvent `json:"events,omitempty"`
}

// StepResult returns the recorded result of a step, if any.
func (w *Withdrawal) StepResult(step string) (WithdrawalStep, bool) {
	for _, s := range w.Steps {
		if s.Step == step {
			return s, true
		}
	}
	return WithdrawalStep{}, false
}

// WithdrawalStep is the recorded result of one step.
type WithdrawalStep struct {
	Step           string           `json:"step"`
	RequestID      *uuid.UUID       `json:"requestId,omitempty"`
	UpstreamID     *string          `json:"upstreamId,omitempty"`
	UpstreamStatus *string          `json:"upstreamStatus,omitempty"`
	WalletID       *string          `json:"walletId,omitempty"`
	Amount         *decimal.Decimal `json:"amount,omitempty"`
	Currency       *string          `json:"currency,omitempty"`
	Fee            *decimal.Decimal `json:"fee,omitempty"`
	FeeCurrency    *string          `json:"feeCurrency,omitempty"`
	Rate           *decimal.Decimal `json:"rate,omitempty"`
	Response       json.RawMessage  `json:"response"`
	Attempts       int              `json:"attempts"`
	CompletedAt    time.Time        `json:"completedAt"`
}

// WithdrawalEvent is one recorded state change.
type WithdrawalEvent struct {
	At         time.Time `json:"at"`
	FromStatus *string   `json:"fromStatus,omitempty"`
	ToStatus   string    `json:"toStatus"`
	Step       string    `json:"step"`
	Reason     string    `json:"reason"`
}

// WithdrawalJob is a withdrawal claimed by a runner.
type WithdrawalJob struct {
	Withdrawal
	LeaseToken uuid.UUID
	// Reclaimed: a previous lease expired mid-step, so that step's outcome is
	// unknown and its (idempotent) request is replayed.
	Reclaimed bool
	// MaybeMoved: an earlier attempt of the current step had an unknown outcome
	// (timeout, 5xx, in progress, an expired lease), so a rejection now is no
	// proof that the step's money did not move.
	MaybeMoved bool
	// PendingFor is how long the current step has got nothing but "in progress".
	PendingFor time.Duration
	// LeaseUntil is when the lease expires, on the local clock (claim or last
	// recorded step, whichever is later).
	LeaseUntil time.Time
}

// CreateWithdrawal inserts a withdrawal, or returns the stored one for a repeated
// idempotency key (created false). The same key with a different request is
// ErrConflict: the operator must not believe a second, different payout was made.
func (s *Store) CreateWithdrawal(ctx context.Context, in WithdrawalInput) (Withdrawal, bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
WITH ins AS (
    INSERT INTO withdrawals (id, idempotency_key, account_id, wallet_id, source_currency, amount, currency, chain,
                             address, max_fee_rate, fund_request_id, trade_request_id, transfer_request_id, status, step)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', 'quote')
    ON CONFLICT DO NOTHING
    RETURNING id
), ev AS (
    INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
    SELECT id, NULL, 'pending', 'quote', 'created' FROM ins
), wake AS (
    SELECT pg_notify('`+WithdrawalsChannel+`', '') FROM ins
)
SELECT count(*) FROM ins, wake`, in.ID, in.IdempotencyKey, in.AccountID, in.WalletID, in.SourceCurrency, in.Amount,
		in.Currency, in.Chain, in.Address, in.MaxFeeRate, in.FundRequestID, in.TradeRequestID, in.TransferRequestID).Scan(&n)
	if err != nil {
		return Withdrawal{}, false, translate("store: create withdrawal", err)
	}
	w, err := s.Withdrawal(ctx, in.ID)
	if err != nil {
		return Withdrawal{}, false, err
	}
	if n == 1 {
		return w, true, nil
	}
	var diff []string
	if w.IdempotencyKey != in.IdempotencyKey {
		diff = append(diff, "idempotencyKey")
	}
	if w.AccountID != in.AccountID {
		diff = append(diff, "accountId")
	}
	if w.WalletID != in.WalletID {
		diff = append(diff, "walletId")
	}
	if !w.Amount.Equal(in.Amount) {
		diff = append(diff, "amount")
	}
	if w.SourceCurrency != in.SourceCurrency {
		diff = append(diff, "sourceCurrency")
	}
	if w.Currency != in.Currency {
		diff = append(diff, "currency")
	}
	if w.Chain != in.Chain {
		diff = append(diff, "chain")
	}
	if w.Address != in.Address {
		diff = append(diff, "address")
	}
	if len(diff) > 0 {
		return w, false, fmt.Errorf("store: idempotency key %q was used for withdrawal %s with a different %s: %w",
			in.IdempotencyKey, w.ID, strings.Join(diff, ", "), ErrConflict)
	}
	return w, false, nil
}

const withdrawalCols = `x.id, x.idempotency_key, x.status, x.step, x.account_id, x.wallet_id, wl.user_ref,
	x.source_currency, x.amount, x.currency, x.chain, x.address, x.max_fee_rate, x.fund_request_id,
	x.trade_request_id, x.transfer_request_id, x.attempts, x.run_at, x.infinity_wallet_id, x.base_wallet_id,
	x.base_amount, x.chain_transfer_id, x.chain_status, x.tx_hash, x.last_error, x.last_error_code, x.created_at,
	x.updated_at, x.completed_at, x.failed_at`

const withdrawalFrom = ` FROM withdrawals x LEFT JOIN wallets wl ON wl.id = x.wallet_id `

func scanWithdrawal(r pgx.CollectableRow) (Withdrawal, error) {
	var w Withdrawal
	err := r.Scan(&w.ID, &w.IdempotencyKey, &w.Status, &w.Step, &w.AccountID, &w.WalletID, &w.UserRef,
		&w.SourceCurrency, &w.Amount, &w.Currency, &w.Chain, &w.Address, &w.MaxFeeRate, &w.FundRequestID,
		&w.TradeRequestID, &w.TransferRequestID, &w.Attempts, &w.RunAt, &w.InfinityWalletID, &w.BaseWalletID,
		&w.BaseAmount, &w.ChainTransferID, &w.ChainStatus, &w.TxHash, &w.LastError, &w.LastErrorCode, &w.CreatedAt,
		&w.UpdatedAt, &w.CompletedAt, &w.FailedAt)
	return w, err
}

// Withdrawal returns a withdrawal with its steps and events.
func (s *Store) Withdrawal(ctx context.Context, id uuid.UUID) (Withdrawal, error) {
	op := "store: withdrawal " + id.String()
	rows, err := s.pool.Query(ctx, `SELECT `+withdrawalCols+withdrawalFrom+`WHERE x.id = $1`, id)
	if err != nil {
		return Withdrawal{}, translate(op, err)
	}
	w, err := pgx.CollectExactlyOneRow(rows, scanWithdrawal)
	if err != nil {
		return Withdrawal{}, translate(op, err)
	}
	ws := []Withdrawal{w}
	if err := s.loadSteps(ctx, ws); err != nil {
		return Withdrawal{}, err
	}
	rows, err = s.pool.Query(ctx, `SELECT at, from_status, to_status, step, reason FROM withdrawal_events
 WHERE withdrawal_id = $1 ORDER BY at, id`, id)
	if err != nil {
		return Withdrawal{}, translate(op, err)
	}
	ws[0].Events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (WithdrawalEvent, error) {
		var e WithdrawalEvent
		err := r.Scan(&e.At, &e.FromStatus, &e.ToStatus, &e.Step, &e.Reason)
		return e, err
	})
	return ws[0], translate(op, err)
}

func (s *Store) loadSteps(ctx context.Context, ws []Withdrawal) error {
	if len(ws) == 0 {
		return nil
	}
	idx := make(map[uuid.UUID]int, len(ws))
	ids := make([]uuid.UUID, len(ws))
	for i := range ws {
		idx[ws[i].ID] = i
		ids[i] = ws[i].ID
		ws[i].Steps = []WithdrawalStep{}
	}
	rows, err := s.pool.Query(ctx, `SELECT withdrawal_id, step, request_id, upstream_id, upstream_status, wallet_id,
       amount, currency, fee, fee_currency, rate, response, attempts, completed_at
  FROM withdrawal_steps WHERE withdrawal_id = ANY($1)
 ORDER BY withdrawal_id, completed_at, array_position(
       ARRAY['quote', 'fee_preview', 'fund', 'trade', 'fee', 'transfer', 'confirm'], step)`, ids)
	if err != nil {
		return translate("store: withdrawal steps", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var st WithdrawalStep
		var resp []byte
		if err := rows.Scan(&id, &st.Step, &st.RequestID, &st.UpstreamID, &st.UpstreamStatus, &st.WalletID,
			&st.Amount, &st.Currency, &st.Fee, &st.FeeCurrency, &st.Rate, &resp, &st.Attempts, &st.CompletedAt); err != nil {
			return translate("store: withdrawal steps", err)
		}
		st.Response = resp
		ws[idx[id]].Steps = append(ws[idx[id]].Steps, st)
	}
	return translate("store: withdrawal steps", rows.Err())
}

// WithdrawalFilter narrows ListWithdrawals.
type WithdrawalFilter struct {
	Status string // "" = any
	Limit  int    // default 100, at most 1000
	After  string // withdrawal id to continue after (keyset pagination by created_at, id)
}

// ListWithdrawals lists withdrawals newest first, without steps and events.
func (s *Store) ListWithdrawals(ctx context.Context, f WithdrawalFilter) ([]Withdrawal, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var after *uuid.UUID
	if f.After != "" {
		id, err := uuid.Parse(f.After)
		if err != nil {
			return nil, fmt.Errorf("store: list withdrawals: after %q is not a withdrawal id: %w", f.After, ErrNotFound)
		}
		after = &id
	}
	rows, err := s.pool.Query(ctx, `SELECT `+withdrawalCols+withdrawalFrom+`
 WHERE ($1 = '' OR x.status = $1)
   AND ($2::uuid IS NULL OR (x.created_at, x.id) < (SELECT created_at, id FROM withdrawals WHERE id = $2))
 ORDER BY x.created_at DESC, x.id DESC LIMIT $3`, f.Status, after, f.Limit)
	if err != nil {
		return nil, translate("store: list withdrawals", err)
	}
	out, err := pgx.CollectRows(rows, scanWithdrawal)
	return out, translate("store: list withdrawals", err)
}

// WithdrawalClaim tells ClaimWithdrawals who claims and for how long.
type WithdrawalClaim struct {
	Owner string
	Limit int
	// Lease must exceed the upstream timeout; every recorded step extends it.
	Lease time.Duration
	// InfinityWalletID is frozen into the withdrawal at its first claim, so a replay
	// of step 1 is byte-for-byte the first request even if the configuration changes.
	InfinityWalletID string
}

// ClaimWithdrawals leases up to c.Limit due withdrawals (FOR UPDATE SKIP LOCKED, as
// for sweeps). A withdrawal whose lease expired (its runner died mid-step) is due
// again and is resumed at the step it was in.
func (s *Store) ClaimWithdrawals(ctx context.Context, c WithdrawalClaim) ([]WithdrawalJob, error) {
	if c.Limit <= 0 {
		return nil, nil
	}
	start, lease := time.Now(), c.Lease
	rows, err := s.pool.Query(ctx, `
WITH due AS (
    SELECT id, status AS old_status
      FROM withdrawals
     WHERE status IN ('pending', 'running') AND run_at <= now()
     ORDER BY run_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
), upd AS (
    UPDATE withdrawals x
       SET status             = 'running',
           run_at             = now() + $2::interval,
           lease_owner        = $3,
           lease_token        = gen_random_uuid(),
           attempts           = x.attempts + 1,
           infinity_wallet_id = COALESCE(x.infinity_wallet_id, NULLIF($4, '')),
           maybe_moved_at     = CASE WHEN due.old_status = 'running' THEN COALESCE(x.maybe_moved_at, now())
                                     ELSE x.maybe_moved_at END,
           updated_at         = now()
      FROM due
     WHERE x.id = due.id
 RETURNING x.id, x.lease_token, x.step, due.old_status, x.maybe_moved_at IS NOT NULL AS maybe_moved,
           COALESCE(EXTRACT(EPOCH FROM now() - x.pending_since), 0)::float8 AS pending_for
), ev AS (
    -- A poll of the chain is not news; a claim of any other step, or a resumption, is.
    INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
    SELECT id, old_status, 'running', step,
           CASE WHEN old_status = 'running' THEN 'lease expired; resumed by ' || $3 ELSE 'claimed by ' || $3 END
      FROM upd
     WHERE old_status = 'running' OR step <> 'confirm'
)
SELECT id, lease_token, old_status = 'running', maybe_moved, pending_for FROM upd`, c.Limit, c.Lease, c.Owner, c.InfinityWalletID)
	if err != nil {
		return nil, translate("store: claim withdrawals", err)
	}
	type claimed struct {
		id, token             uuid.UUID
		reclaimed, maybeMoved bool
		pendingFor            float64
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		err := r.Scan(&c.id, &c.token, &c.reclaimed, &c.maybeMoved, &c.pendingFor)
		return c, err
	})
	if err != nil || len(got) == 0 {
		return nil, translate("store: claim withdrawals", err)
	}
	ids := make([]uuid.UUID, len(got))
	byID := make(map[uuid.UUID]claimed, len(got))
	for i, c := range got {
		ids[i] = c.id
		byID[c.id] = c
	}
	// We hold the leases: nobody else changes these rows until they expire.
	rows, err = s.pool.Query(ctx, `SELECT `+withdrawalCols+withdrawalFrom+`WHERE x.id = ANY($1) ORDER BY x.run_at`, ids)
	if err != nil {
		return nil, translate("store: claim withdrawals", err)
	}
	ws, err := pgx.CollectRows(rows, scanWithdrawal)
	if err != nil {
		return nil, translate("store: claim withdrawals", err)
	}
	if err := s.loadSteps(ctx, ws); err != nil {
		return nil, err
	}
	jobs := make([]WithdrawalJob, 0, len(ws))
	for _, w := range ws {
		c := byID[w.ID]
		jobs = append(jobs, WithdrawalJob{Withdrawal: w, LeaseToken: c.token, Reclaimed: c.reclaimed,
			MaybeMoved: c.maybeMoved, PendingFor: time.Duration(c.pendingFor * float64(time.Second)),
			LeaseUntil: start.Add(lease)})
	}
	return jobs, nil
}

// The outcome statements share one shape: change the withdrawal only while we still
// hold the lease and it is still at the step we ran, optionally record that step's
// result, and record the state change. $1 id, $2 lease token, $3 new status, $4
// reason, $5 the step that ran, $6..$17 the step row (NULL $6 = none), $18 whether
// to record an event; statement-specific arguments follow from $19.
const withdrawalOutcomeSQL = `
WITH upd AS (
    UPDATE withdrawals
       SET %s,
           updated_at = now()
     WHERE id = $1 AND lease_token = $2 AND status = 'running' AND step = $5::text
 RETURNING id
), st AS (
    INSERT INTO withdrawal_steps (withdrawal_id, step, request_id, upstream_id, upstream_status, wallet_id, amount,
                                  currency, fee, fee_currency, rate, response, attempts)
    SELECT id, $6::text, $7::uuid, $8::text, $9::text, $10::text, $11::numeric, $12::text, $13::numeric, $14::text,
           $15::numeric, $16::jsonb, $17::integer
      FROM upd
     WHERE $6::text IS NOT NULL
    ON CONFLICT (withdrawal_id, step) DO UPDATE
       SET request_id = EXCLUDED.request_id, upstream_id = EXCLUDED.upstream_id,
           upstream_status = EXCLUDED.upstream_status, wallet_id = EXCLUDED.wallet_id, amount = EXCLUDED.amount,
           currency = EXCLUDED.currency, fee = EXCLUDED.fee, fee_currency = EXCLUDED.fee_currency,
           rate = EXCLUDED.rate, response = EXCLUDED.response, attempts = EXCLUDED.attempts,
           completed_at = now()
), ev AS (
    INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
    SELECT id, 'running', $3::text, $5::text, $4::text FROM upd WHERE $18::boolean
)
SELECT count(*) FROM upd`

func (s *Store) withdrawalOutcome(ctx context.Context, op string, job WithdrawalJob, set, toStatus, reason string,
	step *WithdrawalStep, event bool, extra ...any) error {
	args := []any{job.ID, job.LeaseToken, toStatus, reason, job.Step}
	if step != nil {
		resp := step.Response
		if len(resp) == 0 {
			resp = json.RawMessage("{}")
		}
		args = append(args, step.Step, step.RequestID, step.UpstreamID, step.UpstreamStatus, step.WalletID, step.Amount,
			step.Currency, step.Fee, step.FeeCurrency, step.Rate, string(resp), job.Attempts)
	} else {
		args = append(args, make([]any, 12)...)
	}
	args = append(args, event)
	args = append(args, extra...)
	var n int
	if err := s.pool.QueryRow(ctx, fmt.Sprintf(withdrawalOutcomeSQL, set), args...).Scan(&n); err != nil {
		return translate(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %s at %s: %w", op, job.ID, job.Step, ErrLeaseLost)
	}
	return nil
}

// StepRecord is a completed step: its result and where the workflow goes next.
type StepRecord struct {
	Result WithdrawalStep
	Next   string
	Reason string
	// Lease is how much longer the runner keeps the withdrawal to run Next.
	Lease time.Duration
	// Values the later steps need, copied onto the withdrawal (nil = unchanged).
	BaseWalletID    *string
	BaseAmount      *decimal.Decimal
	ChainTransferID *string
	ChainStatus     *string
	TxHash          *string
}

// RecordWithdrawalStep commits one step's result and moves the withdrawal to the
// next step, in one transaction, extending the lease. Once it returns, a crash
// resumes at rec.Next; before it, at the same step (whose request is replayed).
func (s *Store) RecordWithdrawalStep(ctx context.Context, job *WithdrawalJob, rec StepRecord) error {
	start := time.Now()
	rec.Result.Step = job.Step
	err := s.withdrawalOutcome(ctx, "store: record withdrawal step", *job, `
           step              = $19::text,
           attempts          = 0,
           maybe_moved_at    = NULL,
           pending_since     = NULL,
           run_at            = now() + $20::interval,
           base_wallet_id    = COALESCE($21::text, base_wallet_id),
           base_amount       = COALESCE($22::numeric, base_amount),
           chain_transfer_id = COALESCE($23::text, chain_transfer_id),
           chain_status      = CASE WHEN sweeper_chain_class(chain_status) <> 'pending' THEN chain_status
                                    ELSE COALESCE($24::text, chain_status) END,
           tx_hash           = COALESCE(tx_hash, $25::text),
           last_error        = NULL,
           last_error_code   = NULL`,
		WithdrawalRunning, rec.Reason, &rec.Result, true,
		rec.Next, rec.Lease, rec.BaseWalletID, rec.BaseAmount, rec.ChainTransferID, rec.ChainStatus, rec.TxHash)
	if err != nil {
		return err
	}
	// Keep the job in step with the row, so the runner carries on from here.
	r := rec.Result
	r.Attempts = job.Attempts
	job.Steps = append(job.Steps, r)
	job.Step, job.Attempts = rec.Next, 0
	job.LeaseUntil = start.Add(rec.Lease)
	if rec.BaseWalletID != nil {
		job.BaseWalletID = rec.BaseWalletID
	}
	if rec.BaseAmount != nil {
		job.BaseAmount = rec.BaseAmount
	}
	if rec.ChainTransferID != nil {
		job.ChainTransferID = rec.ChainTransferID
	}
	if rec.ChainStatus != nil && (job.ChainStatus == nil || ChainClass(*job.ChainStatus) == "pending") {
		job.ChainStatus = rec.ChainStatus
	}
	if job.TxHash == nil && rec.TxHash != nil {
		job.TxHash = rec.TxHash
	}
	return nil
}

// ExtendWithdrawalLease renews a claimed withdrawal's lease for another lease
// period. ErrLeaseLost: another runner owns it.
func (s *Store) ExtendWithdrawalLease(ctx context.Context, job *WithdrawalJob, lease time.Duration) error {
	start := time.Now()
	tag, err := s.pool.Exec(ctx, `
UPDATE withdrawals SET run_at = now() + $3::interval, updated_at = now()
 WHERE id = $1 AND lease_token = $2 AND status = 'running'`, job.ID, job.LeaseToken, lease)
	if err != nil {
		return translate("store: extend withdrawal lease", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: extend withdrawal lease %s: %w", job.ID, ErrLeaseLost)
	}
	job.LeaseUntil = start.Add(lease)
	return nil
}

// FreezeInfinityWallet records, once, the Infinity balance a withdrawal pays from,
// before step 1 is first sent: every replay of step 1 then names the same balance.
// It returns the frozen id (the first one recorded wins).
func (s *Store) FreezeInfinityWallet(ctx context.Context, job *WithdrawalJob, id string) (string, error) {
	var frozen string
	err := s.pool.QueryRow(ctx, `
UPDATE withdrawals SET infinity_wallet_id = COALESCE(infinity_wallet_id, $3), updated_at = now()
 WHERE id = $1 AND lease_token = $2 AND status = 'running'
RETURNING infinity_wallet_id`, job.ID, job.LeaseToken, id).Scan(&frozen)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("store: freeze Infinity wallet of %s: %w", job.ID, ErrLeaseLost)
	}
	if err != nil {
		return "", translate("store: freeze Infinity wallet", err)
	}
	job.InfinityWalletID = &frozen
	return frozen, nil
}

// RetryWithdrawal hands the withdrawal back, due again after delay (database
// clock), at the same step: the same request id and body will be replayed. kind
// says what the attempt tells about the step's money (see RetryKind).
func (s *Store) RetryWithdrawal(ctx context.Context, job WithdrawalJob, delay time.Duration, code, reason string, kind RetryKind) error {
	return s.withdrawalOutcome(ctx, "store: retry withdrawal", job, `
           status = 'pending', run_at = now() + $19::interval, lease_owner = NULL, lease_token = NULL,
           last_error = $20::text, last_error_code = $21::text,
           maybe_moved_at = CASE WHEN $22::boolean THEN COALESCE(maybe_moved_at, now()) ELSE maybe_moved_at END,
           pending_since  = CASE WHEN $23::boolean THEN COALESCE(pending_since, now())
                                 WHEN $22::boolean THEN pending_since END`,
		WithdrawalPending, PGText("retry in "+delay.Round(time.Millisecond).String()+": "+reason, maxAttemptText), nil, true,
		delay, PGText(reason, maxAttemptText), nullString(PGText(code, maxIDText)), kind != RetryNotSent, kind == RetryInProgress)
}

// UnresolveWithdrawal ends the withdrawal unresolved: a money-moving step may
// have moved money that no answer accounts for. result, when set, records the
// answer that led here.
func (s *Store) UnresolveWithdrawal(ctx context.Context, job WithdrawalJob, code, reason string, result *WithdrawalStep) error {
	if result != nil {
		result.Step = job.Step
	}
	return s.withdrawalOutcome(ctx, "store: unresolved withdrawal", job, `
           status = 'unresolved', unresolved_at = now(), lease_owner = NULL, lease_token = NULL,
           last_error = $4::text, last_error_code = $19::text`,
		WithdrawalUnresolved, PGText(reason, maxAttemptText), result, true, nullString(PGText(code, maxIDText)))
}

// WaitWithdrawal hands a withdrawal whose on-chain transfer is not final yet back,
// to be polled again after delay. Polls are frequent and mostly say nothing new,
// so an event is recorded only when note is set or the chain status changed.
func (s *Store) WaitWithdrawal(ctx context.Context, job WithdrawalJob, delay time.Duration, chainStatus, txHash string, note bool) error {
	changed := note || job.ChainStatus == nil || *job.ChainStatus != chainStatus
	return s.withdrawalOutcome(ctx, "store: wait withdrawal", job, `
           status = 'pending', run_at = now() + $19::interval, lease_owner = NULL, lease_token = NULL, attempts = 0,
           chain_status = CASE WHEN sweeper_chain_class(chain_status) <> 'pending' THEN chain_status
                               ELSE COALESCE(NULLIF($20::text, ''), chain_status) END,
           tx_hash = COALESCE(tx_hash, NULLIF($21::text, '')),
           last_error = NULL, last_error_code = NULL`,
		WithdrawalPending, "on-chain transfer "+chainStatus+"; polling again in "+delay.Round(time.Millisecond).String(),
		nil, changed, delay, chainStatus, txHash)
}

// FailWithdrawal ends the withdrawal: status WithdrawalFailed (an upstream
// rejection, with Interlace's code and message) or WithdrawalStopped (a guard,
// before money left). result, when set, records the step's answer that led to it.
func (s *Store) FailWithdrawal(ctx context.Context, job WithdrawalJob, status, code, reason string, result *WithdrawalStep) error {
	if status != WithdrawalFailed && status != WithdrawalStopped {
		return fmt.Errorf("store: fail withdrawal: status %q is not an end", status)
	}
	if result != nil {
		result.Step = job.Step
	}
	return s.withdrawalOutcome(ctx, "store: fail withdrawal", job, `
           status = $3::text, failed_at = now(), lease_owner = NULL, lease_token = NULL,
           last_error = $4::text, last_error_code = $19::text`,
		status, PGText(reason, maxAttemptText), result, true, nullString(PGText(code, maxIDText)))
}

// CompleteWithdrawal records the final on-chain status and transaction hash.
func (s *Store) CompleteWithdrawal(ctx context.Context, job WithdrawalJob, chainStatus, txHash string, result WithdrawalStep) error {
	if txHash == "" {
		return fmt.Errorf("store: complete withdrawal %s: no transaction hash", job.ID)
	}
	result.Step = job.Step
	return s.withdrawalOutcome(ctx, "store: complete withdrawal", job, `
           status = 'completed', step = 'done', completed_at = now(), lease_owner = NULL, lease_token = NULL,
           chain_status = $19::text, tx_hash = $20::text, last_error = NULL, last_error_code = NULL, attempts = 0`,
		WithdrawalCompleted, "on-chain transfer "+chainStatus+", transactionHash "+txHash, &result, true,
		chainStatus, txHash)
}

// RequeueWithdrawal lets an operator retry a failed or stopped withdrawal at the
// step it ended in, with the same request ids: a step whose money did move is
// answered with its first result, never applied twice. A stopped withdrawal meets
// its guard again (the fee ceiling is frozen at creation), which is what an
// operator wants after funding a wallet's network fee, not after a fee stop.
func (s *Store) RequeueWithdrawal(ctx context.Context, id uuid.UUID, reason string) error {
	tag, err := s.pool.Exec(ctx, `
WITH old AS (
    SELECT id, status FROM withdrawals WHERE id = $1 AND status IN ('failed', 'stopped') FOR UPDATE
), upd AS (
    UPDATE withdrawals x
       SET status = 'pending', run_at = now(), failed_at = NULL, attempts = 0, updated_at = now()
      FROM old
     WHERE x.id = old.id
 RETURNING x.id, x.step, old.status AS old_status
)
INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
SELECT id, old_status, 'pending', step, $2 FROM upd
RETURNING pg_notify('`+WithdrawalsChannel+`', '')`, id, "requeued: "+reason)
	if err != nil {
		return translate("store: requeue withdrawal", err)
	}
	if tag.RowsAffected() == 0 {
		var status string
		err := s.pool.QueryRow(ctx, `SELECT status FROM withdrawals WHERE id = $1`, id).Scan(&status)
		if err != nil {
			return translate("store: requeue withdrawal "+id.String(), err)
		}
		return fmt.Errorf("store: requeue withdrawal %s is %s: %w", id, status, ErrInvalidState)
	}
	return nil
}

// ReleaseWithdrawalLeases hands back every withdrawal this owner still holds
// (graceful shutdown), due at once, at the step each was in.
func (s *Store) ReleaseWithdrawalLeases(ctx context.Context, owner string) (int, error) {
	tag, err := s.pool.Exec(ctx, `
WITH upd AS (
    UPDATE withdrawals SET status = 'pending', run_at = now(), lease_owner = NULL, lease_token = NULL, updated_at = now()
     WHERE status = 'running' AND lease_owner = $1
 RETURNING id, step
)
INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
SELECT id, 'running', 'pending', step, 'lease released at shutdown of ' || $1 FROM upd`, owner)
	if err != nil {
		return 0, translate("store: release withdrawal leases", err)
	}
	return int(tag.RowsAffected()), nil
}

// ChainClass is internal/status's class of an on-chain transfer status in the
// words the withdrawal workflow and the SQL function sweeper_chain_class use:
// "final", "failed" or "pending" (waiting and unknown statuses alike: the
// workflow keeps polling). store tests check the SQL function against it.
func ChainClass(s string) string {
	switch status.Classify(s) {
	case status.Final:
		return "final"
	case status.Failed:
		return "failed"
	default:
		return "pending"
	}
}
