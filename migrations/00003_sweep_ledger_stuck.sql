-- Stuck sweeps are visible to finance and operators in plain SQL: sweep_ledger
-- gains when a sweep started waiting, since when it is in flight, and whether it
-- is stuck. Columns are appended (CREATE OR REPLACE VIEW keeps grants).

-- +goose Up
CREATE OR REPLACE VIEW sweep_ledger AS
SELECT d.id                  AS deposit_id,
       d.account_id,
       d.wallet_id,
       d.chain,
       d.tx_hash,
       d.currency,
       d.amount,
       d.status              AS deposit_status,
       d.received_at,
       CASE
           WHEN s.deposit_id IS NOT NULL THEN s.status
           WHEN d.status = 'failed' OR d.skip_reason IS NOT NULL THEN 'skipped'
           ELSE 'waiting'
       END                   AS sweep_status,
       s.client_transaction_id,
       s.interlace_transfer_id,
       s.credited_amount,
       s.credited_currency,
       s.fee_amount,
       s.fee_currency,
       s.swept_at,
       COALESCE(s.last_error, d.skip_reason,
                CASE WHEN d.status = 'failed' THEN 'deposit ' || d.upstream_status END,
                CASE WHEN d.status = 'unknown' THEN 'unknown upstream status ' || d.upstream_status END)
                             AS last_error,
       COALESCE(s.attempts, 0) AS attempts,
       w.user_ref,
       -- Money waiting to reach the Infinity Account: since when, and whether it
       -- has waited past the stuck bound (the same 15 minutes the stuck-sweep
       -- monitor alerts on).
       CASE WHEN s.status IN ('pending', 'in_flight') THEN s.created_at END AS pending_since,
       CASE WHEN s.status = 'in_flight' THEN s.updated_at END             AS in_flight_since,
       COALESCE(s.status IN ('pending', 'in_flight') AND s.created_at < now() - interval '15 minutes', false) AS stuck
  FROM deposits d
  LEFT JOIN sweeps s ON s.deposit_id = d.id
  LEFT JOIN wallets w ON w.id = d.wallet_id;

-- +goose Down
DROP VIEW sweep_ledger;
CREATE VIEW sweep_ledger AS
SELECT d.id                  AS deposit_id,
       d.account_id,
       d.wallet_id,
       d.chain,
       d.tx_hash,
       d.currency,
       d.amount,
       d.status              AS deposit_status,
       d.received_at,
       CASE
           WHEN s.deposit_id IS NOT NULL THEN s.status
           WHEN d.status = 'failed' OR d.skip_reason IS NOT NULL THEN 'skipped'
           ELSE 'waiting'
       END                   AS sweep_status,
       s.client_transaction_id,
       s.interlace_transfer_id,
       s.credited_amount,
       s.credited_currency,
       s.fee_amount,
       s.fee_currency,
       s.swept_at,
       COALESCE(s.last_error, d.skip_reason,
                CASE WHEN d.status = 'failed' THEN 'deposit ' || d.upstream_status END,
                CASE WHEN d.status = 'unknown' THEN 'unknown upstream status ' || d.upstream_status END)
                             AS last_error,
       COALESCE(s.attempts, 0) AS attempts,
       w.user_ref
  FROM deposits d
  LEFT JOIN sweeps s ON s.deposit_id = d.id
  LEFT JOIN wallets w ON w.id = d.wallet_id;

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sweeper_finance') THEN
        GRANT SELECT ON sweep_ledger TO sweeper_finance;
    END IF;
END
$$;
-- +goose StatementEnd
