package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
)

// ErrConflict is returned when a write contradicts a stored row: a user already
// owning another wallet, or an idempotency key reused with a different request.
var ErrConflict = errors.New("store: conflicts with the stored record")

// Wallet is a user's CryptoConnect wallet as sweeper stores it.
type Wallet struct {
	ID          string          `json:"id"`
	UserRef     string          `json:"userRef"`
	ReferenceID uuid.UUID       `json:"referenceId"`
	AccountID   string          `json:"accountId"`
	Nickname    string          `json:"nickname"`
	Master      bool            `json:"master"`
	Balances    []WalletBalance `json:"balances"`
	Addresses   []WalletAddress `json:"addresses"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	RefreshedAt *time.Time      `json:"refreshedAt,omitempty"`
}

// WalletBalance is one currency's balance as last read from Interlace.
type WalletBalance struct {
	Currency  string          `json:"currency"`
	Available decimal.Decimal `json:"available"`
	Frozen    decimal.Decimal `json:"frozen"`
}

// WalletAddress is a deposit address of a wallet.
type WalletAddress struct {
	Currency  string    `json:"currency"`
	Chain     string    `json:"chain"`
	Address   string    `json:"address"`
	Selected  bool      `json:"selected"`
	CreatedAt time.Time `json:"createdAt"`
}

// WalletInput is what SaveWallet writes. Balances nil leaves the stored ones.
type WalletInput struct {
	ID          string
	UserRef     string
	ReferenceID uuid.UUID
	AccountID   string
	Nickname    string
	Master      bool
	Balances    []WalletBalance
	// Refreshed marks the write as a fresh read of the wallet from Interlace.
	Refreshed bool
}

// SaveWallet stores the wallet of a user, or updates what Interlace says about it
// (nickname, balances). created reports that this call inserted the row. A wallet
// id already bound to another user, or a user already owning another wallet, is
// ErrConflict: one user, one wallet.
func (s *Store) SaveWallet(ctx context.Context, in WalletInput) (created bool, err error) {
	if in.ID == "" || in.UserRef == "" || in.AccountID == "" {
		return false, fmt.Errorf("store: save wallet: id, user ref and account id are required")
	}
	var balances any
	if in.Balances != nil {
		b, err := json.Marshal(in.Balances)
		if err != nil {
			return false, fmt.Errorf("store: save wallet balances: %w", err)
		}
		balances = string(b)
	}
	// A concurrent first save of the same wallet can surface as a unique violation
	// on user_ref (not the ON CONFLICT arbiter) instead of a conflict on id; run
	// once more, and the row it committed is found and updated.
	for try := 0; ; try++ {
		created, err = s.saveWallet(ctx, in, balances)
		var pgErr *pgconn.PgError
		if try == 0 && errors.As(err, &pgErr) && pgErr.Code == "23505" {
			continue
		}
		break
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, fmt.Errorf("store: wallet %s belongs to another user: %w", in.ID, ErrConflict)
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return false, fmt.Errorf("store: user %q already owns another wallet: %w", in.UserRef, ErrConflict)
	case err != nil:
		return false, translate("store: save wallet", err)
	}
	return created, nil
}

func (s *Store) saveWallet(ctx context.Context, in WalletInput, balances any) (created bool, err error) {
	err = s.pool.QueryRow(ctx, `
INSERT INTO wallets AS w (id, user_ref, reference_id, account_id, nickname, master, balances, refreshed_at)
VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::jsonb, '[]'), CASE WHEN $8 THEN now() END)
ON CONFLICT (id) DO UPDATE
   SET nickname     = EXCLUDED.nickname,
       master       = EXCLUDED.master,
       balances     = COALESCE($7::jsonb, w.balances),
       refreshed_at = CASE WHEN $8 THEN now() ELSE w.refreshed_at END,
       updated_at   = now()
 WHERE w.user_ref = EXCLUDED.user_ref
RETURNING (xmax = 0)`, in.ID, in.UserRef, in.ReferenceID, in.AccountID, in.Nickname, in.Master, balances,
		in.Refreshed).Scan(&created)
	return created, err
}

// SaveAddresses records (or updates) deposit addresses of a stored wallet.
func (s *Store) SaveAddresses(ctx context.Context, walletID string, addrs []WalletAddress) error {
	if len(addrs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, a := range addrs {
		b.Queue(`
INSERT INTO wallet_addresses (wallet_id, currency, chain, address, selected) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (wallet_id, currency, chain) DO UPDATE
   SET address = EXCLUDED.address, selected = EXCLUDED.selected, updated_at = now()
 WHERE (wallet_addresses.address, wallet_addresses.selected) IS DISTINCT FROM (EXCLUDED.address, EXCLUDED.selected)`,
			walletID, a.Currency, a.Chain, a.Address, a.Selected)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return fmt.Errorf("store: save addresses of wallet %s: %w", walletID, ErrNotFound)
	}
	return translate("store: save addresses", err)
}

const walletCols = `id, user_ref, reference_id, account_id, nickname, master, balances, created_at, updated_at, refreshed_at`

func scanWallet(r pgx.CollectableRow) (Wallet, error) {
	var w Wallet
	var balances []byte
	err := r.Scan(&w.ID, &w.UserRef, &w.ReferenceID, &w.AccountID, &w.Nickname, &w.Master, &balances,
		&w.CreatedAt, &w.UpdatedAt, &w.RefreshedAt)
	if err != nil {
		return w, err
	}
	if err := json.Unmarshal(balances, &w.Balances); err != nil {
		return w, fmt.Errorf("wallet %s balances: %w", w.ID, err)
	}
	if w.Balances == nil {
		w.Balances = []WalletBalance{}
	}
	return w, nil
}

// Wallet returns a stored wallet (by Interlace wallet id) with its addresses.
func (s *Store) Wallet(ctx context.Context, id string) (Wallet, error) {
	return s.oneWallet(ctx, "store: wallet "+id, `SELECT `+walletCols+` FROM wallets WHERE id = $1`, id)
}

// WalletByUserRef returns the wallet a user owns.
func (s *Store) WalletByUserRef(ctx context.Context, userRef string) (Wallet, error) {
	return s.oneWallet(ctx, "store: wallet of user "+userRef, `SELECT `+walletCols+` FROM wallets WHERE user_ref = $1`, userRef)
}

func (s *Store) oneWallet(ctx context.Context, op, sql string, arg string) (Wallet, error) {
	rows, err := s.pool.Query(ctx, sql, arg)
	if err != nil {
		return Wallet{}, translate(op, err)
	}
	w, err := pgx.CollectExactlyOneRow(rows, scanWallet)
	if err != nil {
		return Wallet{}, translate(op, err)
	}
	ws := []Wallet{w}
	if err := s.loadAddresses(ctx, ws); err != nil {
		return Wallet{}, err
	}
	return ws[0], nil
}

// WalletFilter narrows ListWallets.
type WalletFilter struct {
	UserRef string // "" = any
	Limit   int    // default 100, at most 1000
	After   string // wallet id to continue after (keyset pagination by created_at, id)
}

// ListWallets lists stored wallets, newest first.
func (s *Store) ListWallets(ctx context.Context, f WalletFilter) ([]Wallet, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+walletCols+` FROM wallets
 WHERE ($1 = '' OR user_ref = $1)
   AND ($2 = '' OR (created_at, id) < (SELECT created_at, id FROM wallets WHERE id = $2))
 ORDER BY created_at DESC, id DESC LIMIT $3`, f.UserRef, f.After, f.Limit)
	if err != nil {
		return nil, translate("store: list wallets", err)
	}
	ws, err := pgx.CollectRows(rows, scanWallet)
	if err != nil {
		return nil, translate("store: list wallets", err)
	}
	if err := s.loadAddresses(ctx, ws); err != nil {
		return nil, err
	}
	return ws, nil
}

func (s *Store) loadAddresses(ctx context.Context, ws []Wallet) error {
	if len(ws) == 0 {
		return nil
	}
	idx := make(map[string]int, len(ws))
	ids := make([]string, len(ws))
	for i := range ws {
		idx[ws[i].ID] = i
		ids[i] = ws[i].ID
		ws[i].Addresses = []WalletAddress{}
	}
	rows, err := s.pool.Query(ctx, `SELECT wallet_id, currency, chain, address, selected, created_at
  FROM wallet_addresses WHERE wallet_id = ANY($1) ORDER BY wallet_id, created_at, currency, chain`, ids)
	if err != nil {
		return translate("store: wallet addresses", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a WalletAddress
		if err := rows.Scan(&id, &a.Currency, &a.Chain, &a.Address, &a.Selected, &a.CreatedAt); err != nil {
			return translate("store: wallet addresses", err)
		}
		ws[idx[id]].Addresses = append(ws[idx[id]].Addresses, a)
	}
	return translate("store: wallet addresses", rows.Err())
}

// WalletExists reports whether a wallet id is stored (cheap check before a withdrawal).
func (s *Store) WalletExists(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM wallets WHERE id = $1)`, id).Scan(&ok)
	return ok, translate("store: wallet exists", err)
}
