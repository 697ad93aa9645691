-- The states of uncertainty (contract §6, §9, §11), shared by the deposit and
-- the sweep work that builds on them:
--   deposits.status  gains needs_review: a signed notification whose money fields
--                    are unusable, kept (never dropped) and held for a person;
--   deposits.source  what first brought the deposit (webhook or poll);
--   deposits.confirmed_at / confirmed_amount: when Interlace's own record said the
--                    deposit is final, and the amount it said (the one swept);
--   sweeps.status    gains held (never moves money by itself; an operator
--                    releases it) and unresolved (money may have moved; an
--                    operator resolves it with evidence);
--   sweeps.fees      every fee line of the upstream answer, as given;
--   webhook_deliveries: legacy-envelope deliveries are stored unverified
--                    (outcome 'unverified', no signature key).
-- sweep_ledger gains fees, confirmed_at and source, and shows held for
-- needs_review deposits and stuck for deposits waiting over an hour.
--
-- Every ALTER here takes an ACCESS EXCLUSIVE lock on a hot table; lock_timeout
-- makes the migration fail fast (and be retried by the next start) instead of
-- queueing behind a long transaction and stalling every webhook behind it. The
-- CHECK constraints are added NOT VALID and validated afterwards, which only
-- needs a SHARE UPDATE EXCLUSIVE lock while it scans.

-- +goose Up
SET LOCAL lock_timeout = '5s';

ALTER TABLE webhook_deliveries ALTER COLUMN signature_key DROP NOT NULL;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_outcome_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_outcome_check
    CHECK (outcome IN ('deposit', 'ignored', 'unusable', 'unverified')) NOT VALID;
ALTER TABLE webhook_deliveries VALIDATE CONSTRAINT webhook_deliveries_outcome_check;

ALTER TABLE deposits DROP CONSTRAINT deposits_status_check;
ALTER TABLE deposits ADD CONSTRAINT deposits_status_check
    CHECK (status IN ('pending', 'unknown', 'final', 'failed', 'needs_review')) NOT VALID;
ALTER TABLE deposits VALIDATE CONSTRAINT deposits_status_check;
-- A constant default is metadata only in PostgreSQL 11+: no table rewrite.
ALTER TABLE deposits ADD COLUMN source text NOT NULL DEFAULT 'webhook';
ALTER TABLE deposits ADD CONSTRAINT deposits_source_check CHECK (source IN ('webhook', 'poll')) NOT VALID;
ALTER TABLE deposits VALIDATE CONSTRAINT deposits_source_check;
ALTER TABLE deposits ADD COLUMN confirmed_at timestamptz;
ALTER TABLE deposits ADD COLUMN confirmed_amount numeric;

ALTER TABLE sweeps DROP CONSTRAINT sweeps_status_check;
ALTER TABLE sweeps ADD CONSTRAINT sweeps_status_check
    CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed', 'held', 'unresolved')) NOT VALID;
ALTER TABLE sweeps VALIDATE CONSTRAINT sweeps_status_check;
ALTER TABLE sweeps ADD COLUMN fees jsonb;

-- Operators' work lists: small partial indexes, empty in a healthy system.
CREATE INDEX sweeps_attention ON sweeps (updated_at) WHERE status IN ('held', 'unresolved');
CREATE INDEX deposits_open ON deposits (received_at) WHERE status IN ('pending', 'unknown', 'needs_review');

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
           WHEN d.status = 'needs_review' THEN 'held'
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
       CASE WHEN s.status IN ('pending', 'in_flight') THEN s.created_at END AS pending_since,
       CASE WHEN s.status = 'in_flight' THEN s.updated_at END             AS in_flight_since,
       COALESCE(
           (s.status IN ('pending', 'in_flight') AND s.created_at < now() - interval '15 minutes')
           OR (s.deposit_id IS NULL AND d.skip_reason IS NULL AND d.status IN ('pending', 'unknown')
               AND d.received_at < now() - interval '1 hour'),
           false)            AS stuck,
       s.fees,
       d.confirmed_at,
       d.source
  FROM deposits d
  LEFT JOIN sweeps s ON s.deposit_id = d.id
  LEFT JOIN wallets w ON w.id = d.wallet_id;

-- +goose Down
SET LOCAL lock_timeout = '5s';
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
       w.user_ref,
       CASE WHEN s.status IN ('pending', 'in_flight') THEN s.created_at END AS pending_since,
       CASE WHEN s.status = 'in_flight' THEN s.updated_at END             AS in_flight_since,
       COALESCE(s.status IN ('pending', 'in_flight') AND s.created_at < now() - interval '15 minutes', false) AS stuck
  FROM deposits d
  LEFT JOIN sweeps s ON s.deposit_id = d.id
  LEFT JOIN wallets w ON w.id = d.wallet_id;
DROP INDEX IF EXISTS deposits_open;
DROP INDEX IF EXISTS sweeps_attention;
ALTER TABLE sweeps DROP COLUMN fees;
ALTER TABLE sweeps DROP CONSTRAINT sweeps_status_check;
ALTER TABLE sweeps ADD CONSTRAINT sweeps_status_check CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed'));
ALTER TABLE deposits DROP COLUMN confirmed_amount;
ALTER TABLE deposits DROP COLUMN confirmed_at;
ALTER TABLE deposits DROP COLUMN source;
ALTER TABLE deposits DROP CONSTRAINT deposits_status_check;
ALTER TABLE deposits ADD CONSTRAINT deposits_status_check CHECK (status IN ('pending', 'unknown', 'final', 'failed'));
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_outcome_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_outcome_check CHECK (outcome IN ('deposit', 'ignored', 'unusable'));
ALTER TABLE webhook_deliveries ALTER COLUMN signature_key SET NOT NULL;
