-- The core ledger: every webhook delivery, every deposit, every sweep and every
-- upstream attempt. Idempotency is a property of the unique keys here, never of
-- check-then-insert code: a delivery is unique by notification id, a deposit by
-- Interlace transfer id, a sweep by deposit id AND by clientTransactionId.

-- +goose Up
CREATE TABLE webhook_deliveries (
    notification_id text        PRIMARY KEY,
    event_type      text        NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now(),
    -- 0 = current webhook secret, 1 = previous (rotation); only signed bodies are stored.
    signature_key   smallint    NOT NULL,
    -- deposit: a deposit resource; ignored: a valid event that is not a deposit;
    -- unusable: signed but not usable (reason says why), kept for inspection.
    outcome         text        NOT NULL CHECK (outcome IN ('deposit', 'ignored', 'unusable')),
    reason          text,
    transfer_id     text,
    -- what the delivery did to the deposit: created, advanced, unchanged, stale, conflict.
    effect          text,
    -- the exact bytes received; bytea so that nothing is normalised away.
    body            bytea       NOT NULL
);
CREATE INDEX webhook_deliveries_received_at ON webhook_deliveries (received_at);
CREATE INDEX webhook_deliveries_unusable ON webhook_deliveries (received_at) WHERE outcome = 'unusable';
CREATE INDEX webhook_deliveries_transfer ON webhook_deliveries (transfer_id) WHERE transfer_id IS NOT NULL;

CREATE TABLE deposits (
    id                  text        PRIMARY KEY,           -- Interlace transfer id
    account_id          text        NOT NULL,
    wallet_id           text        NOT NULL,
    chain               text        NOT NULL DEFAULT '',
    source_address      text        NOT NULL DEFAULT '',
    deposit_address     text        NOT NULL DEFAULT '',
    tx_hash             text        NOT NULL DEFAULT '',
    currency            text        NOT NULL,
    amount              numeric     NOT NULL CHECK (amount > 0),
    fees                jsonb       NOT NULL DEFAULT '[]',
    -- pending -> final | failed; unknown is an unrecognised upstream status (never swept, counted).
    status              text        NOT NULL CHECK (status IN ('pending', 'unknown', 'final', 'failed')),
    upstream_status     text        NOT NULL,
    -- set when a final deposit will never be swept (currency not sweepable, foreign account).
    skip_reason         text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    final_at            timestamptz,
    upstream_created_at timestamptz,
    upstream_updated_at timestamptz
);
CREATE INDEX deposits_received_at ON deposits (received_at);
CREATE INDEX deposits_wallet ON deposits (wallet_id);

-- One row per state change of a deposit, with the reason and the delivery that caused it.
CREATE TABLE deposit_events (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deposit_id      text        NOT NULL REFERENCES deposits (id),
    at              timestamptz NOT NULL DEFAULT now(),
    from_status     text,
    to_status       text        NOT NULL,
    upstream_status text        NOT NULL,
    notification_id text,
    reason          text        NOT NULL
);
CREATE INDEX deposit_events_deposit ON deposit_events (deposit_id, at);

CREATE TABLE sweeps (
    deposit_id            text        PRIMARY KEY REFERENCES deposits (id),
    -- UUIDv5 of the deposit id: the same on every database, forever.
    client_transaction_id uuid        NOT NULL UNIQUE,
    status                text        NOT NULL CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed')),
    -- pending: when it is due; in_flight: when the lease expires. One column for
    -- both keeps the claim query on a single small partial index.
    run_at                timestamptz NOT NULL DEFAULT now(),
    lease_owner           text,
    lease_token           uuid,
    attempts              integer     NOT NULL DEFAULT 0,
    -- the request body, frozen at creation (to_wallet_id at the first claim), so a
    -- replay is byte-for-byte the same request.
    account_id            text        NOT NULL,
    from_wallet_id        text        NOT NULL,
    currency              text        NOT NULL,
    amount                numeric     NOT NULL CHECK (amount > 0),
    to_wallet_id          text,
    to_currency           text        NOT NULL,
    -- the upstream answer
    interlace_transfer_id text,
    upstream_status       text,
    credited_amount       numeric,
    credited_currency     text,
    fee_amount            numeric,
    fee_currency          text,
    last_error            text,
    last_error_code       text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    first_attempt_at      timestamptz,
    swept_at              timestamptz,
    failed_at             timestamptz,
    CHECK (status <> 'in_flight' OR lease_token IS NOT NULL),
    CHECK (status <> 'succeeded' OR interlace_transfer_id IS NOT NULL)
);
-- The worker's claim query reads only this index; finished sweeps leave it, so
-- history does not slow the claim down.
CREATE INDEX sweeps_due ON sweeps (run_at) WHERE status IN ('pending', 'in_flight');
CREATE INDEX sweeps_failed ON sweeps (failed_at) WHERE status = 'failed';

CREATE TABLE sweep_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deposit_id  text        NOT NULL REFERENCES sweeps (deposit_id),
    at          timestamptz NOT NULL DEFAULT now(),
    from_status text,
    to_status   text        NOT NULL,
    reason      text        NOT NULL
);
CREATE INDEX sweep_events_deposit ON sweep_events (deposit_id, at);

-- Every upstream call, whatever happened to the lease: the audit trail of money movement.
CREATE TABLE sweep_attempts (
    id                    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deposit_id            text        NOT NULL REFERENCES sweeps (deposit_id),
    attempt               integer     NOT NULL,
    client_transaction_id uuid        NOT NULL,
    worker                text        NOT NULL,
    started_at            timestamptz NOT NULL,
    duration              interval    NOT NULL,
    http_status           integer,
    code                  text,
    message               text,
    -- succeeded | retry | rejected | in_progress | lease_lost
    outcome               text        NOT NULL,
    error                 text
);
CREATE INDEX sweep_attempts_deposit ON sweep_attempts (deposit_id, started_at);

CREATE FUNCTION sweeper_deposit_rank(status text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status WHEN 'pending' THEN 1 WHEN 'unknown' THEN 1 WHEN 'final' THEN 2 WHEN 'failed' THEN 2 ELSE 0 END
$$;

-- +goose StatementBegin
-- sweeper_ingest records one verified delivery in one call: the delivery row, the
-- deposit (state only moves forward) with its event, and the sweep job when the
-- deposit is final. One round trip per delivery, and several of them can share a
-- transaction (group commit). Returns: duplicate | ignored | unusable | created |
-- advanced | unchanged | stale | conflict.
CREATE FUNCTION sweeper_ingest(
    p_notification_id     text,
    p_event_type          text,
    p_signature_key       smallint,
    p_body                bytea,
    p_outcome             text,
    p_reason              text,
    p_transfer_id         text,
    p_account_id          text,
    p_wallet_id           text,
    p_chain               text,
    p_source_address      text,
    p_deposit_address     text,
    p_tx_hash             text,
    p_currency            text,
    p_amount              numeric,
    p_fees                jsonb,
    p_upstream_status     text,
    p_status              text,
    p_upstream_created_at timestamptz,
    p_upstream_updated_at timestamptz,
    p_skip_reason         text,
    p_client_tx_id        uuid,
    p_sweep_account_id    text,
    p_to_currency         text
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    d        deposits%ROWTYPE;
    v_effect text;
    v_reason text;
BEGIN
    INSERT INTO webhook_deliveries (notification_id, event_type, signature_key, outcome, reason, transfer_id, body)
    VALUES (p_notification_id, p_event_type, p_signature_key, p_outcome, p_reason, p_transfer_id, p_body)
    ON CONFLICT (notification_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    IF p_outcome <> 'deposit' THEN
        RETURN p_outcome;
    END IF;

    INSERT INTO deposits (id, account_id, wallet_id, chain, source_address, deposit_address, tx_hash, currency,
                          amount, fees, status, upstream_status, received_at, updated_at, final_at,
                          upstream_created_at, upstream_updated_at)
    VALUES (p_transfer_id, p_account_id, p_wallet_id, p_chain, p_source_address, p_deposit_address, p_tx_hash,
            p_currency, p_amount, p_fees, p_status, p_upstream_status, now(), now(),
            CASE WHEN p_status = 'final' THEN now() END, p_upstream_created_at, p_upstream_updated_at)
    ON CONFLICT (id) DO NOTHING;

    IF FOUND THEN
        INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, notification_id, reason)
        VALUES (p_transfer_id, NULL, p_status, p_upstream_status, p_notification_id, 'first notification');
        v_effect := 'created';
    ELSE
        SELECT * INTO d FROM deposits WHERE id = p_transfer_id FOR UPDATE;
        IF sweeper_deposit_rank(d.status) = 2 THEN
            -- Terminal. A later delivery can only confirm it; anything that contradicts
            -- it is kept on the delivery row for a human, never applied.
            IF p_status = d.status AND p_amount = d.amount AND p_currency = d.currency THEN
                v_effect := 'unchanged';
            ELSIF sweeper_deposit_rank(p_status) < 2 THEN
                v_effect := 'stale';
            ELSE
                v_effect := 'conflict';
                v_reason := format('deposit is %s %s %s; this delivery says %s %s %s',
                                   d.status, d.amount, d.currency, p_status, p_amount, p_currency);
            END IF;
        ELSIF sweeper_deposit_rank(p_status) > sweeper_deposit_rank(d.status)
           OR (p_upstream_status IS DISTINCT FROM d.upstream_status
               AND (d.upstream_updated_at IS NULL OR p_upstream_updated_at IS NULL
                    OR p_upstream_updated_at >= d.upstream_updated_at)) THEN
            UPDATE deposits
               SET status              = p_status,
                   upstream_status     = p_upstream_status,
                   amount              = p_amount,
                   currency            = p_currency,
                   fees                = p_fees,
                   tx_hash             = CASE WHEN p_tx_hash <> '' THEN p_tx_hash ELSE tx_hash END,
                   deposit_address     = CASE WHEN p_deposit_address <> '' THEN p_deposit_address ELSE deposit_address END,
                   source_address      = CASE WHEN p_source_address <> '' THEN p_source_address ELSE source_address END,
                   upstream_updated_at = COALESCE(p_upstream_updated_at, upstream_updated_at),
                   updated_at          = now(),
                   final_at            = CASE WHEN p_status = 'final' THEN now() END
             WHERE id = p_transfer_id;
            INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, notification_id, reason)
            VALUES (p_transfer_id, d.status, p_status, p_upstream_status, p_notification_id,
                    format('upstream status %s -> %s', d.upstream_status, p_upstream_status));
            v_effect := 'advanced';
        ELSIF p_upstream_status IS NOT DISTINCT FROM d.upstream_status THEN
            v_effect := 'unchanged';
        ELSE
            v_effect := 'stale';
        END IF;
    END IF;

    IF v_effect IN ('created', 'advanced') AND p_status = 'final' THEN
        IF p_skip_reason IS NULL THEN
            INSERT INTO sweeps (deposit_id, client_transaction_id, status, run_at, account_id, from_wallet_id,
                                currency, amount, to_currency)
            VALUES (p_transfer_id, p_client_tx_id, 'pending', now(), p_sweep_account_id, p_wallet_id,
                    p_currency, p_amount, p_to_currency)
            ON CONFLICT DO NOTHING;
            IF FOUND THEN
                INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
                VALUES (p_transfer_id, NULL, 'pending', 'deposit final');
                PERFORM pg_notify('sweeper_sweeps', '');
            END IF;
        ELSE
            UPDATE deposits SET skip_reason = p_skip_reason WHERE id = p_transfer_id;
            INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, notification_id, reason)
            VALUES (p_transfer_id, 'final', 'final', p_upstream_status, p_notification_id, 'not swept: ' || p_skip_reason);
        END IF;
    END IF;

    UPDATE webhook_deliveries SET effect = v_effect, reason = COALESCE(v_reason, reason)
     WHERE notification_id = p_notification_id;
    RETURN v_effect;
END
$$;
-- +goose StatementEnd

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
-- Finance reads, never writes. Roles are cluster-wide and need CREATEROLE: when the
-- service's own role lacks it, a DBA creates sweeper_finance once (README) and the
-- grants below still apply.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sweeper_finance') THEN
        BEGIN
            CREATE ROLE sweeper_finance NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL; -- another database's migration won the race
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'sweeper_finance role not created: no CREATEROLE privilege';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sweeper_finance') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO sweeper_finance', current_schema());
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO sweeper_finance', current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO sweeper_finance', current_schema());
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW IF EXISTS sweep_ledger;
DROP FUNCTION IF EXISTS sweeper_ingest;
DROP FUNCTION IF EXISTS sweeper_deposit_rank;
DROP TABLE IF EXISTS sweep_attempts, sweep_events, sweeps, deposit_events, deposits, webhook_deliveries;
