// Package store owns every SQL statement of sweeper. Its public methods own their
// transaction; unique indexes, not check-then-insert code, are the idempotency guard.
package store

import (
	"context"
	"errors"
	"fmt"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound is returned when a row the caller names does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrLeaseLost means another worker reclaimed the sweep (our lease expired); the
	// other worker replays the same idempotent request, so the caller just stops.
	ErrLeaseLost = errors.New("store: sweep lease lost")
	// ErrInvalidState is returned when an operator action does not fit the row's state.
	ErrInvalidState = errors.New("store: invalid state for this action")
	// ErrUnavailable wraps connection-level failures, so callers can answer 503.
	ErrUnavailable = errors.New("store: database unavailable")
)

// PoolOptions sizes the connection pool. The pgx default (max(4, NumCPU)) is too
// small for a webhook burst plus a sweep worker sharing one process.
type PoolOptions struct {
	MaxConns int32 // default 16
	MinConns int32 // default 2
}

// OpenPool connects to PostgreSQL with numeric <-> decimal.Decimal registered, so
// that no amount ever passes through a float.
func OpenPool(ctx context.Context, url string, opts PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: parse DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 16
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.MinConns = 2
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if cfg.MinConns > cfg.MaxConns {
		cfg.MinConns = cfg.MaxConns
	}
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgxdecimal.Register(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open pool: %w", err)
	}
	return pool, nil
}

// Store is the single gateway to the database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// translate maps driver errors onto the package's sentinels.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if isConnError(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isConnError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 = connection exception, 57P = operator intervention (shutdown), 53 = resources.
		c := pgErr.Code
		return len(c) >= 2 && (c[:2] == "08" || c[:2] == "53" || (len(c) >= 3 && c[:3] == "57P"))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isNetError(err)
}

// isRetryableTx reports errors that the same transaction may succeed on if simply
// run again (deadlock, serialization failure).
func isRetryableTx(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001"
	}
	return false
}
