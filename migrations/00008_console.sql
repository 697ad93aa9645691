-- The operator console (contract §13) lists deposits by sweep state, a page at a
-- time. Every state an operator filters on is found through a small partial
-- index first (sweeps_attention, sweeps_failed, sweeps_due, deposits_open),
-- except skipped deposits, which had none: this adds it, so "skipped" reads the
-- skipped deposits instead of walking every deposit ever received. A user's
-- deposits, newest first, are one range of (wallet_id, received_at, id) instead of
-- a walk of every deposit filtered by wallet.
--
-- CONCURRENTLY builds the index without blocking webhook writes on a hot table
-- with millions of rows; it cannot run inside a transaction, hence NO
-- TRANSACTION (goose then runs each statement on its own). A build interrupted
-- half-way leaves an INVALID index, which IF NOT EXISTS would keep: the DROP
-- first makes a retried migration rebuild it.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS deposits_skipped;
CREATE INDEX CONCURRENTLY deposits_skipped ON deposits (received_at) WHERE status = 'failed' OR skip_reason IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS deposits_wallet_received;
CREATE INDEX CONCURRENTLY deposits_wallet_received ON deposits (wallet_id, received_at, id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS deposits_wallet_received;
DROP INDEX CONCURRENTLY IF EXISTS deposits_skipped;
