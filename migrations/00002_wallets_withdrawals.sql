-- Wallet provisioning and redemption (the MoR guide's "Generate a Wallet Address"
-- and "Convert & Withdraw"). A user owns at most one CryptoConnect wallet (unique
-- user_ref, and a referenceId derived from it upstream); a withdrawal is unique by
-- the operator's idempotency key, and each of its money-moving steps by a request
-- id derived from the withdrawal id. Each step's answer is committed before the
-- next step starts, so a crash resumes exactly where it stopped.

-- +goose Up
CREATE TABLE wallets (
    id           text        PRIMARY KEY,            -- Interlace wallet id
    user_ref     text        NOT NULL UNIQUE,        -- the operator's user reference
    reference_id uuid        NOT NULL UNIQUE,        -- UUIDv5(user_ref): the wallet's referenceId upstream
    account_id   text        NOT NULL,
    nickname     text        NOT NULL DEFAULT '',
    master       boolean     NOT NULL DEFAULT false,
    -- as last read from Interlace (create or refresh); informative, never used to move money.
    balances     jsonb       NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz
);

CREATE TABLE wallet_addresses (
    wallet_id  text        NOT NULL REFERENCES wallets (id),
    currency   text        NOT NULL,
    chain      text        NOT NULL,
    address    text        NOT NULL,
    selected   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, currency, chain)
);
CREATE INDEX wallet_addresses_address ON wallet_addresses (address);

CREATE TABLE withdrawals (
    id                  uuid        PRIMARY KEY,     -- UUIDv5 of idempotency_key
    idempotency_key     text        NOT NULL UNIQUE,
    -- the request, frozen at creation: every replay sends the same bodies.
    account_id          text        NOT NULL,
    wallet_id           text        NOT NULL,        -- CryptoConnect wallet step 1 funds (or the account id: master wallet)
    source_currency     text        NOT NULL,
    amount              numeric     NOT NULL CHECK (amount > 0),
    currency            text        NOT NULL,
    chain               text        NOT NULL,
    address             text        NOT NULL,
    max_fee_rate        numeric     NOT NULL CHECK (max_fee_rate >= 0 AND max_fee_rate < 1),
    fund_request_id     uuid        NOT NULL UNIQUE, -- step 1 clientTransactionId
    trade_request_id    uuid        NOT NULL UNIQUE, -- step 3 referenceId
    transfer_request_id uuid        NOT NULL UNIQUE, -- step 5 idempotencyKey
    -- pending (due at run_at) | running (leased until run_at) | completed | failed | stopped
    status              text        NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'stopped')),
    -- the step to run next; done once completed
    step                text        NOT NULL CHECK (step IN ('quote', 'fee_preview', 'fund', 'trade', 'fee', 'transfer', 'confirm', 'done')),
    run_at              timestamptz NOT NULL DEFAULT now(),
    lease_owner         text,
    lease_token         uuid,
    attempts            integer     NOT NULL DEFAULT 0, -- claims of the current step
    infinity_wallet_id  text,                           -- frozen at the first claim
    -- results the later steps need (copied from withdrawal_steps when recorded)
    base_wallet_id      text,
    base_amount         numeric,
    chain_transfer_id   text,
    chain_status        text,
    tx_hash             text,
    last_error          text,
    last_error_code     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    failed_at           timestamptz,
    CHECK (status <> 'running' OR lease_token IS NOT NULL),
    CHECK (status <> 'completed' OR (step = 'done' AND tx_hash IS NOT NULL))
);
CREATE INDEX withdrawals_due ON withdrawals (run_at) WHERE status IN ('pending', 'running');
CREATE INDEX withdrawals_chain_transfer ON withdrawals (chain_transfer_id) WHERE chain_transfer_id IS NOT NULL;
CREATE INDEX withdrawals_created ON withdrawals (created_at);

-- One row per completed step: the upstream answer and the figures finance needs.
CREATE TABLE withdrawal_steps (
    withdrawal_id   uuid        NOT NULL REFERENCES withdrawals (id),
    step            text        NOT NULL,
    request_id      uuid,                  -- the idempotency id sent (money-moving steps)
    upstream_id     text,                  -- Interlace's id of the quote, transfer or trade
    upstream_status text,
    wallet_id       text,
    amount          numeric,
    currency        text,
    fee             numeric,
    fee_currency    text,
    rate            numeric,
    response        jsonb       NOT NULL,
    attempts        integer     NOT NULL,
    completed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (withdrawal_id, step)
);

CREATE TABLE withdrawal_events (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    withdrawal_id uuid        NOT NULL REFERENCES withdrawals (id),
    at            timestamptz NOT NULL DEFAULT now(),
    from_status   text,
    to_status     text        NOT NULL,
    step          text        NOT NULL,
    reason        text        NOT NULL
);
CREATE INDEX withdrawal_events_withdrawal ON withdrawal_events (withdrawal_id, at);

-- The class of an on-chain transfer status (contract §4's classes): final, failed
-- or pending (anything else, including unknown values, is still in progress).
CREATE FUNCTION sweeper_chain_class(status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN lower(btrim(status)) IN ('closed', 'completed', 'success') THEN 'final'
        WHEN lower(btrim(status)) IN ('failed', 'rejected', 'refunded', 'cancelled', 'canceled') THEN 'failed'
        ELSE 'pending' END
$$;

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

-- The same columns as 00001's sweep_ledger, in the same order, plus the user who
-- owns the receiving wallet (CREATE OR REPLACE VIEW may only append columns).
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
       w.user_ref
  FROM deposits d
  LEFT JOIN sweeps s ON s.deposit_id = d.id
  LEFT JOIN wallets w ON w.id = d.wallet_id;

-- One row per withdrawal with every amount and fee, for finance.
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
-- Finance reads the new tables and views too (00001's default privileges cover
-- them only when the same role created both; grant explicitly).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sweeper_finance') THEN
        GRANT SELECT ON wallets, wallet_addresses, withdrawals, withdrawal_steps, withdrawal_events,
                        sweep_ledger, withdrawal_ledger TO sweeper_finance;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW IF EXISTS withdrawal_ledger;
DROP VIEW IF EXISTS sweep_ledger;
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
       COALESCE(s.attempts, 0) AS attempts
  FROM deposits d
  LEFT JOIN sweeps s ON s.deposit_id = d.id;
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sweeper_finance') THEN
        GRANT SELECT ON sweep_ledger TO sweeper_finance;
    END IF;
END
$$;
-- +goose StatementEnd
DROP TRIGGER IF EXISTS withdrawal_webhook ON webhook_deliveries;
DROP FUNCTION IF EXISTS sweeper_withdrawal_webhook;
DROP FUNCTION IF EXISTS sweeper_chain_class;
DROP TABLE IF EXISTS withdrawal_events, withdrawal_steps, withdrawals, wallet_addresses, wallets;
