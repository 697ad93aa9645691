package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/migrations"
)

// LedgerRow is one row of the sweep_ledger view (contract §6).
type LedgerRow struct {
	DepositID           string           `json:"depositId"`
	AccountID           string           `json:"accountId"`
	WalletID            string           `json:"walletId"`
	Chain               string           `json:"chain"`
	TxHash              string           `json:"txHash"`
	Currency            string           `json:"currency"`
	Amount              decimal.Decimal  `json:"amount"`
	DepositStatus       string           `json:"depositStatus"`
	ReceivedAt          time.Time        `json:"receivedAt"`
	SweepStatus         string           `json:"sweepStatus"`
	ClientTransactionID *uuid.UUID       `json:"clientTransactionId,omitempty"`
	InterlaceTransferID *string          `json:"interlaceTransferId,omitempty"`
	CreditedAmount      *decimal.Decimal `json:"creditedAmount,omitempty"`
	CreditedCurrency    *string          `json:"creditedCurrency,omitempty"`
	FeeAmount           *decimal.Decimal `json:"feeAmount,omitempty"`
	FeeCurrency         *string          `json:"feeCurrency,omitempty"`
	SweptAt             *time.Time       `json:"sweptAt,omitempty"`
	LastError           *string          `json:"lastError,omitempty"`
	Attempts            int              `json:"attempts"`
	UserRef             *string          `json:"userRef,omitempty"`
}

// A needs_review deposit whose amount was unusable has none (NULL in
// sweep_ledger); the API shows 0 beside depositStatus needs_review rather than
// change the row's shape.
const ledgerCols = `deposit_id, account_id, wallet_id, chain, tx_hash, currency, COALESCE(amount, 0), deposit_status, received_at,
	sweep_status, client_transaction_id, interlace_transfer_id, credited_amount, credited_currency, fee_amount,
	fee_currency, swept_at, last_error, attempts, user_ref`

func scanLedger(r pgx.CollectableRow) (LedgerRow, error) {
	var l LedgerRow
	err := r.Scan(&l.DepositID, &l.AccountID, &l.WalletID, &l.Chain, &l.TxHash, &l.Currency, &l.Amount,
		&l.DepositStatus, &l.ReceivedAt, &l.SweepStatus, &l.ClientTransactionID, &l.InterlaceTransferID,
		&l.CreditedAmount, &l.CreditedCurrency, &l.FeeAmount, &l.FeeCurrency, &l.SweptAt, &l.LastError, &l.Attempts, &l.UserRef)
	return l, err
}

// Ledger returns one deposit's row of sweep_ledger.
func (s *Store) Ledger(ctx context.Context, depositID string) (LedgerRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+ledgerCols+` FROM sweep_ledger WHERE deposit_id = $1`, depositID)
	if err != nil {
		return LedgerRow{}, translate("store: ledger", err)
	}
	row, err := pgx.CollectExactlyOneRow(rows, scanLedger)
	return row, translate("store: ledger "+depositID, err)
}

// LedgerFilter narrows ListLedger.
type LedgerFilter struct {
	SweepStatus string // "" = any
	Limit       int    // default 100, at most 1000
	After       string // deposit id to continue after (keyset pagination by received_at, deposit_id)
}

// ListLedger lists sweep_ledger rows, newest first.
func (s *Store) ListLedger(ctx context.Context, f LedgerFilter) ([]LedgerRow, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+ledgerCols+` FROM sweep_ledger
 WHERE ($1 = '' OR sweep_status = $1)
   AND ($2 = '' OR (received_at, deposit_id) < (SELECT received_at, id FROM deposits WHERE id = $2))
 ORDER BY received_at DESC, deposit_id DESC LIMIT $3`, f.SweepStatus, f.After, f.Limit)
	if err != nil {
		return nil, translate("store: list ledger", err)
	}
	out, err := pgx.CollectRows(rows, scanLedger)
	return out, translate("store: list ledger", err)
}

// Ready reports whether the database answers and carries every migration this
// binary knows (readiness must fail while a rollout's migration has not run).
func (s *Store) Ready(ctx context.Context) error {
	want, err := migrations.Latest()
	if err != nil {
		return fmt.Errorf("store: ready: %w", err)
	}
	var have int64
	err = s.pool.QueryRow(ctx, `SELECT COALESCE(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&have)
	if err != nil {
		return translate("store: ready", err)
	}
	if have < want {
		return fmt.Errorf("store: ready: database at migration %d, binary needs %d", have, want)
	}
	return nil
}
