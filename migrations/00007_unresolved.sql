-- Sweeps and withdrawals when the truth is uncertain (contract §11).
--
-- sweeps.maybe_moved_at  the first attempt whose outcome is unknown (timeout,
--                        dropped connection, 5xx, 429, in progress, a lease that
--                        expired mid-attempt). From then on a rejection is not
--                        proof that nothing moved: the sweep becomes unresolved,
--                        never failed. The worker decides this in Go; the column
--                        is the evidence it decides from.
-- sweeps.pending_since   the first of an unbroken run of "in progress"/PENDING
--                        answers; after SWEEPER_PENDING_MAX_AGE of them the sweep
--                        is unresolved.
-- sweeps.unresolved_at, resolved_at: when it became unresolved, when an operator
--                        closed it with evidence (POST /v1/deposits/{id}/resolve).
-- sweep_events.actor     who made a change by hand (NULL for the worker).
-- withdrawals            the same columns, and the status unresolved.
--
-- The withdrawal notification trigger of 00002 is dropped: the webhook handler
-- applies those notifications in Go, in the delivery's own transaction.

-- +goose Up
SET LOCAL lock_timeout = '5s';

ALTER TABLE sweeps ADD COLUMN maybe_moved_at timestamptz;
ALTER TABLE sweeps ADD COLUMN pending_since timestamptz;
ALTER TABLE sweeps ADD COLUMN unresolved_at timestamptz;
ALTER TABLE sweeps ADD COLUMN resolved_at timestamptz;
ALTER TABLE sweep_events ADD COLUMN actor text;

ALTER TABLE withdrawals DROP CONSTRAINT withdrawals_status_check;
ALTER TABLE withdrawals ADD CONSTRAINT withdrawals_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'stopped', 'unresolved')) NOT VALID;
ALTER TABLE withdrawals VALIDATE CONSTRAINT withdrawals_status_check;
ALTER TABLE withdrawals ADD COLUMN maybe_moved_at timestamptz;
ALTER TABLE withdrawals ADD COLUMN pending_since timestamptz;
ALTER TABLE withdrawals ADD COLUMN unresolved_at timestamptz;
CREATE INDEX withdrawals_unresolved ON withdrawals (unresolved_at) WHERE status = 'unresolved';

DROP TRIGGER IF EXISTS withdrawal_webhook ON webhook_deliveries;
DROP FUNCTION IF EXISTS sweeper_withdrawal_webhook();

-- withdrawal_ledger gains what the payout rule of §11 shows: the amount sent
-- on-chain (what the trade bought minus the network fee) and the fee withheld.
CREATE OR REPLACE VIEW withdrawal_ledger AS
SELECT x.id                     AS withdrawal_id,
       x.idempotency_key,
       x.account_id,
       x.wallet_id,
       w.user_ref,
       x.status,
       x.step,
       x.created_at,
       x.completed_at,
       x.failed_at,
       x.source_currency,
       x.amount                 AS requested_amount,
       x.max_fee_rate,
       fund.upstream_id         AS fund_transfer_id,
       fund.amount              AS usd_debited,
       fund.fee                 AS fund_fee,
       fund.fee_currency        AS fund_fee_currency,
       quote.amount             AS quoted_base_amount,
       quote.fee                AS quoted_trade_fee,
       trade.upstream_id        AS trade_id,
       trade.wallet_id          AS base_wallet_id,
       trade.rate               AS trade_rate,
       trade.fee                AS trade_fee,
       trade.fee_currency       AS trade_fee_currency,
       trade.amount             AS crypto_bought,
       x.currency,
       fee.fee                  AS quoted_network_fee,
       x.chain,
       x.address,
       transfer.upstream_id     AS chain_transfer_id,
       transfer.amount          AS crypto_withdrawn,
       transfer.fee             AS network_fee,
       transfer.fee_currency    AS network_fee_currency,
       x.chain_status,
       x.tx_hash,
       x.last_error,
       x.last_error_code,
       transfer.amount          AS amount_sent,
       trade.amount - transfer.amount AS network_fee_withheld,
       x.unresolved_at
  FROM withdrawals x
  LEFT JOIN wallets w ON w.id = x.wallet_id
  LEFT JOIN withdrawal_steps quote    ON quote.withdrawal_id = x.id    AND quote.step = 'quote'
  LEFT JOIN withdrawal_steps fund     ON fund.withdrawal_id = x.id     AND fund.step = 'fund'
  LEFT JOIN withdrawal_steps trade    ON trade.withdrawal_id = x.id    AND trade.step = 'trade'
  LEFT JOIN withdrawal_steps fee      ON fee.withdrawal_id = x.id      AND fee.step = 'fee'
  LEFT JOIN withdrawal_steps transfer ON transfer.withdrawal_id = x.id AND transfer.step = 'transfer';

-- +goose Down
SET LOCAL lock_timeout = '5s';
DROP VIEW withdrawal_ledger;
CREATE VIEW withdrawal_ledger AS
SELECT x.id                     AS withdrawal_id,
       x.idempotency_key,
       x.account_id,
       x.wallet_id,
       w.user_ref,
       x.status,
       x.step,
       x.created_at,
       x.completed_at,
       x.failed_at,
       x.source_currency,
       x.amount                 AS requested_amount,
       x.max_fee_rate,
       fund.upstream_id         AS fund_transfer_id,
       fund.amount              AS usd_debited,
       fund.fee                 AS fund_fee,
       fund.fee_currency        AS fund_fee_currency,
       quote.amount             AS quoted_base_amount,
       quote.fee                AS quoted_trade_fee,
       trade.upstream_id        AS trade_id,
       trade.wallet_id          AS base_wallet_id,
       trade.rate               AS trade_rate,
       trade.fee                AS trade_fee,
       trade.fee_currency       AS trade_fee_currency,
       trade.amount             AS crypto_bought,
       x.currency,
       fee.fee                  AS quoted_network_fee,
       x.chain,
       x.address,
       transfer.upstream_id     AS chain_transfer_id,
       transfer.amount          AS crypto_withdrawn,
       transfer.fee             AS network_fee,
       transfer.fee_currency    AS network_fee_currency,
       x.chain_status,
       x.tx_hash,
       x.last_error,
       x.last_error_code
  FROM withdrawals x
  LEFT JOIN wallets w ON w.id = x.wallet_id
  LEFT JOIN withdrawal_steps quote    ON quote.withdrawal_id = x.id    AND quote.step = 'quote'
  LEFT JOIN withdrawal_steps fund     ON fund.withdrawal_id = x.id     AND fund.step = 'fund'
  LEFT JOIN withdrawal_steps trade    ON trade.withdrawal_id = x.id    AND trade.step = 'trade'
  LEFT JOIN withdrawal_steps fee      ON fee.withdrawal_id = x.id      AND fee.step = 'fee'
  LEFT JOIN withdrawal_steps transfer ON transfer.withdrawal_id = x.id AND transfer.step = 'transfer';
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sweeper_finance') THEN
        GRANT SELECT ON withdrawal_ledger TO sweeper_finance;
    END IF;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
-- sweeper_withdrawal_webhook applies a notification about a blockchain transfer
-- (source a CryptoConnect wallet, destination a blockchain address) to the
-- withdrawal that sent it. The webhook handler stores such deliveries as
-- 'ignored'; this trigger reads the stored body in the same transaction. It never
-- fails the delivery: anything unexpected is logged and skipped, and the
-- workflow's polling of the transfer remains the source of truth.
CREATE FUNCTION sweeper_withdrawal_webhook() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r        jsonb;
    v_id     text;
    v_key    uuid;
    v_status text;
    v_hash   text;
    v_class  text;
    w        withdrawals%ROWTYPE;
BEGIN
    BEGIN
        r := ((convert_from(NEW.body, 'UTF8')::jsonb) ->> 'resource')::jsonb;
        IF r IS NULL OR jsonb_typeof(r) <> 'object'
           OR lower(btrim(r #>> '{destination,type}')) IS DISTINCT FROM 'blockchain' THEN
            RETURN NULL;
        END IF;
        v_id := NULLIF(r ->> 'id', '');
        IF (r ->> 'idempotencyKey') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
            v_key := (r ->> 'idempotencyKey')::uuid;
        END IF;
        v_status := NULLIF(btrim(r ->> 'status'), '');
        v_hash := NULLIF(btrim(COALESCE(r ->> 'transactionHash', r ->> 'txHash')), '');
        IF v_status IS NULL OR (v_id IS NULL AND v_key IS NULL) THEN
            RETURN NULL;
        END IF;

        SELECT * INTO w FROM withdrawals
         WHERE (v_key IS NOT NULL AND transfer_request_id = v_key)
            OR (v_id IS NOT NULL AND chain_transfer_id = v_id)
         LIMIT 1
           FOR UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        UPDATE webhook_deliveries SET effect = 'withdrawal', transfer_id = COALESCE(transfer_id, v_id)
         WHERE notification_id = NEW.notification_id;

        v_class := sweeper_chain_class(v_status);
        -- Updates may arrive late or repeated: a known final chain status is never overwritten.
        IF sweeper_chain_class(w.chain_status) <> 'pending' OR w.status IN ('completed', 'failed', 'stopped') THEN
            RETURN NULL;
        END IF;

        IF w.status = 'pending' AND w.step = 'confirm' AND v_class = 'final' AND v_hash IS NOT NULL THEN
            UPDATE withdrawals
               SET status = 'completed', step = 'done', chain_status = v_status, tx_hash = v_hash,
                   chain_transfer_id = COALESCE(chain_transfer_id, v_id), completed_at = now(), updated_at = now(),
                   last_error = NULL, last_error_code = NULL, attempts = 0
             WHERE id = w.id;
            INSERT INTO withdrawal_steps (withdrawal_id, step, upstream_id, upstream_status, response, attempts)
            VALUES (w.id, 'confirm', COALESCE(w.chain_transfer_id, v_id), v_status, r, 0)
            ON CONFLICT DO NOTHING;
            INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
            VALUES (w.id, 'pending', 'completed', 'confirm',
                    format('webhook %s: on-chain transfer %s, transactionHash %s', NEW.notification_id, v_status, v_hash));
        ELSIF w.status = 'pending' AND w.step = 'confirm' AND v_class = 'failed' THEN
            UPDATE withdrawals
               SET status = 'failed', chain_status = v_status, tx_hash = COALESCE(v_hash, tx_hash),
                   failed_at = now(), updated_at = now(), last_error = 'on-chain transfer ' || v_status
             WHERE id = w.id;
            INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
            VALUES (w.id, 'pending', 'failed', 'confirm',
                    format('webhook %s: on-chain transfer %s', NEW.notification_id, v_status));
        ELSIF w.chain_status IS DISTINCT FROM v_status OR (v_hash IS NOT NULL AND w.tx_hash IS DISTINCT FROM v_hash) THEN
            -- Not waiting for confirmation yet (or a runner holds it right now): note
            -- what the chain says; the runner's own poll decides.
            UPDATE withdrawals
               SET chain_status = v_status, tx_hash = COALESCE(v_hash, tx_hash), updated_at = now()
             WHERE id = w.id;
            INSERT INTO withdrawal_events (withdrawal_id, from_status, to_status, step, reason)
            VALUES (w.id, w.status, w.status, w.step,
                    format('webhook %s: on-chain transfer %s', NEW.notification_id, v_status));
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'sweeper_withdrawal_webhook: delivery % not applied: %', NEW.notification_id, SQLERRM;
    END;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER withdrawal_webhook AFTER INSERT ON webhook_deliveries
    FOR EACH ROW WHEN (NEW.outcome = 'ignored')
    EXECUTE FUNCTION sweeper_withdrawal_webhook();
DROP INDEX IF EXISTS withdrawals_unresolved;
ALTER TABLE withdrawals DROP COLUMN unresolved_at;
ALTER TABLE withdrawals DROP COLUMN pending_since;
ALTER TABLE withdrawals DROP COLUMN maybe_moved_at;
ALTER TABLE withdrawals DROP CONSTRAINT withdrawals_status_check;
ALTER TABLE withdrawals ADD CONSTRAINT withdrawals_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'stopped'));
ALTER TABLE sweep_events DROP COLUMN actor;
ALTER TABLE sweeps DROP COLUMN resolved_at;
ALTER TABLE sweeps DROP COLUMN unresolved_at;
ALTER TABLE sweeps DROP COLUMN pending_since;
ALTER TABLE sweeps DROP COLUMN maybe_moved_at;
