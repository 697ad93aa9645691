-- The truth about deposits (contract §4, §6, §9), on top of 00004's states:
--   deposits.amount  may be NULL, only for a needs_review deposit (a signed
--                    notification whose amount was unusable is kept, never dropped);
--   deposits.origin  the transfer's source.type as sent (only 'blockchain' is swept);
--   deposits.review_reason  why a deposit needs review;
--   deposit_confirmations  the queue of final deposits waiting for Interlace's own
--                    record (SWEEPER_CONFIRM_DEPOSITS): no sweep row exists, so no
--                    money can move, until the record agrees;
--   poll_state       the backfill poller's cursor and its last success / error
--                    (read by `sweeper doctor` and operators);
--   sweeper_ingest   takes the source (webhook/poll), whether the call carries
--                    Interlace's own record, and holds contradicted sweeps;
--   sweeper_chain_class knows every status word of internal/status (fail, expired…);
--   sweep_ledger     waiting for confirmation is 'waiting', stuck after an hour.
--
-- Nothing here rewrites or scans a hot table under a lock that blocks writes: the
-- new columns are nullable (catalog only), the new CHECK is added NOT VALID and
-- validated under SHARE UPDATE EXCLUSIVE, and the confirmation queue is its own
-- table rather than an index built over deposits. lock_timeout makes the
-- migration fail fast instead of queueing every webhook behind it.

-- +goose Up
SET LOCAL lock_timeout = '5s';

ALTER TABLE deposits ALTER COLUMN amount DROP NOT NULL;
ALTER TABLE deposits ADD CONSTRAINT deposits_amount_known
    CHECK (amount IS NOT NULL OR status = 'needs_review') NOT VALID;
ALTER TABLE deposits VALIDATE CONSTRAINT deposits_amount_known;
ALTER TABLE deposits ADD COLUMN origin text;
ALTER TABLE deposits ADD COLUMN review_reason text;

-- One row per final deposit whose money waited for Interlace's record. The
-- confirmer claims due rows (SKIP LOCKED, due_at doubles as the lease) and reads
-- the records; when a record settles the deposit (confirmed, held, skipped) due_at
-- becomes NULL. Rows are never deleted (the runtime role has no DELETE): they are
-- the history of how long each deposit waited and why (attempts, last_error).
CREATE TABLE deposit_confirmations (
    deposit_id  text        PRIMARY KEY REFERENCES deposits (id),
    due_at      timestamptz DEFAULT now(), -- NULL: settled
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    -- Interlace's record that confirmed the deposit, exactly as read (the evidence)
    record      bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deposit_confirmations_due ON deposit_confirmations (due_at) WHERE due_at IS NOT NULL;

-- The backfill poller's state: one row per poller (today only 'transfers').
CREATE TABLE poll_state (
    name                 text        PRIMARY KEY,
    -- the end of the last window read completely; the next poll starts here
    -- minus the overlap
    cursor_at            timestamptz,
    last_started_at      timestamptz,
    last_success_at      timestamptz,
    last_error_at        timestamptz,
    last_error           text,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    -- figures of the last successful poll
    last_read            integer     NOT NULL DEFAULT 0,
    last_found           integer     NOT NULL DEFAULT 0,
    last_owner           text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Every word internal/status knows (store tests compare the two).
CREATE OR REPLACE FUNCTION sweeper_chain_class(status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN lower(btrim(status)) IN ('closed', 'completed', 'complete', 'success', 'succeeded') THEN 'final'
        WHEN lower(btrim(status)) IN ('fail', 'failed', 'rejected', 'refunded', 'cancelled', 'canceled', 'expired')
            THEN 'failed'
        ELSE 'pending' END
$$;

DROP FUNCTION sweeper_ingest(text, text, smallint, bytea, text, text, text, text, text, text, text, text, text,
                             text, numeric, jsonb, text, text, timestamptz, timestamptz, text, uuid, text, text);

-- +goose StatementBegin
-- sweeper_ingest records one delivery, or one transfer record read from
-- Interlace, in one call: the delivery row, the deposit (state only moves
-- forward) with its event, and then either the sweep job, or the wait for
-- Interlace's record (deposit_confirmations), or a held sweep when the new
-- information contradicts a final deposit before its money moved. The decisions
-- of what a status means, what is swept and what is unusable are made in Go
-- (internal/status, internal/webhook); this function applies them atomically with
-- the delivery. Returns: duplicate | ignored | unusable | unverified | created |
-- advanced | confirmed | unchanged | stale | held | conflict.
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
    p_status              text,     -- NULL: the delivery describes no deposit
    p_upstream_created_at timestamptz,
    p_upstream_updated_at timestamptz,
    p_skip_reason         text,
    p_client_tx_id        uuid,
    p_sweep_account_id    text,
    p_to_currency         text,
    p_source              text,     -- webhook | poll
    p_origin              text,     -- source.type as sent
    p_review_reason       text,     -- set with p_status needs_review
    p_record              boolean,  -- this is Interlace's own record of the transfer
    p_need_confirm        boolean   -- a final deposit waits for Interlace's record
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    d        deposits%ROWTYPE;
    v_sweep  text;
    v_effect text;
    v_reason text;
    v_final  boolean := p_status = 'final';
    v_ok     boolean := p_record AND p_status = 'final';
BEGIN
    INSERT INTO webhook_deliveries (notification_id, event_type, signature_key, outcome, reason, transfer_id, body)
    VALUES (p_notification_id, p_event_type, p_signature_key, p_outcome, p_reason, p_transfer_id, p_body)
    ON CONFLICT (notification_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    IF p_outcome = 'unverified' THEN
        -- A legacy-envelope delivery moves nothing: it only wakes the poller.
        PERFORM pg_notify('sweeper_poll', '');
    END IF;
    IF p_status IS NULL OR p_transfer_id IS NULL THEN
        RETURN p_outcome;
    END IF;

    INSERT INTO deposits (id, account_id, wallet_id, chain, source_address, deposit_address, tx_hash, currency,
                          amount, fees, status, upstream_status, received_at, updated_at, final_at,
                          upstream_created_at, upstream_updated_at, source, origin, review_reason,
                          confirmed_at, confirmed_amount)
    VALUES (p_transfer_id, p_account_id, p_wallet_id, p_chain, p_source_address, p_deposit_address, p_tx_hash,
            p_currency, p_amount, p_fees, p_status, p_upstream_status, now(), now(),
            CASE WHEN v_final THEN now() END, p_upstream_created_at, p_upstream_updated_at, p_source, p_origin,
            p_review_reason, CASE WHEN v_ok THEN now() END, CASE WHEN v_ok THEN p_amount END)
    ON CONFLICT (id) DO NOTHING;

    IF FOUND THEN
        INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, notification_id, reason)
        VALUES (p_transfer_id, NULL, p_status, p_upstream_status, p_notification_id,
                CASE WHEN p_source = 'poll' THEN 'found in Interlace''s records' ELSE 'first notification' END
                || COALESCE(': ' || p_review_reason, ''));
        v_effect := 'created';
    ELSE
        SELECT * INTO d FROM deposits WHERE id = p_transfer_id FOR UPDATE;
        IF p_status = 'needs_review' THEN
            -- An unusable notification never overwrites what we know.
            v_effect := CASE WHEN d.status = 'needs_review' THEN 'unchanged' ELSE 'stale' END;
        ELSIF d.status = 'needs_review'
           OR sweeper_deposit_rank(d.status) < 2
              AND (sweeper_deposit_rank(p_status) > sweeper_deposit_rank(d.status)
                   OR (p_upstream_status IS DISTINCT FROM d.upstream_status
                       AND (d.upstream_updated_at IS NULL OR p_upstream_updated_at IS NULL
                            OR p_upstream_updated_at >= d.upstream_updated_at))) THEN
            UPDATE deposits
               SET status              = p_status,
                   upstream_status     = p_upstream_status,
                   account_id          = p_account_id,
                   wallet_id           = p_wallet_id,
                   amount              = p_amount,
                   currency            = p_currency,
                   fees                = p_fees,
                   origin              = p_origin,
                   review_reason       = NULL,
                   chain               = CASE WHEN p_chain <> '' THEN p_chain ELSE chain END,
                   tx_hash             = CASE WHEN p_tx_hash <> '' THEN p_tx_hash ELSE tx_hash END,
                   deposit_address     = CASE WHEN p_deposit_address <> '' THEN p_deposit_address ELSE deposit_address END,
                   source_address      = CASE WHEN p_source_address <> '' THEN p_source_address ELSE source_address END,
                   upstream_created_at = COALESCE(upstream_created_at, p_upstream_created_at),
                   upstream_updated_at = COALESCE(p_upstream_updated_at, upstream_updated_at),
                   updated_at          = now(),
                   final_at            = CASE WHEN v_final THEN now() END,
                   confirmed_at        = CASE WHEN v_ok THEN now() END,
                   confirmed_amount    = CASE WHEN v_ok THEN p_amount END
             WHERE id = p_transfer_id;
            INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, notification_id, reason)
            VALUES (p_transfer_id, d.status, p_status, p_upstream_status, p_notification_id,
                    format('upstream status %s -> %s', d.upstream_status, p_upstream_status)
                    || CASE WHEN p_record THEN ' (Interlace''s record)' ELSE '' END);
            v_effect := 'advanced';
        ELSIF sweeper_deposit_rank(d.status) < 2 THEN
            v_effect := CASE WHEN p_upstream_status IS NOT DISTINCT FROM d.upstream_status THEN 'unchanged' ELSE 'stale' END;
        ELSIF p_status = d.status AND p_amount = d.amount AND p_currency = d.currency AND p_wallet_id = d.wallet_id THEN
            v_effect := 'unchanged';
            IF v_ok AND d.confirmed_at IS NULL THEN
                UPDATE deposits SET confirmed_at = now(), confirmed_amount = p_amount, updated_at = now()
                 WHERE id = p_transfer_id;
                INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, notification_id, reason)
                VALUES (p_transfer_id, d.status, d.status, p_upstream_status, p_notification_id,
                        'confirmed by Interlace''s record');
                v_effect := 'confirmed';
            END IF;
        ELSIF sweeper_deposit_rank(p_status) < 2 THEN
            v_effect := 'stale';
        ELSE
            -- Terminal and contradicted (refunded or failed after final, another
            -- amount, currency or wallet). Before the money moved the sweep is held;
            -- after, the contradiction is recorded and alerted on.
            v_reason := format('deposit is %s %s %s in wallet %s; %s says %s %s %s in wallet %s',
                               d.upstream_status, d.amount, d.currency, d.wallet_id,
                               CASE WHEN p_record THEN 'Interlace''s record' ELSE 'a later notification' END,
                               p_upstream_status, p_amount, p_currency, p_wallet_id);
            SELECT status INTO v_sweep FROM sweeps WHERE deposit_id = p_transfer_id FOR UPDATE;
            IF v_sweep IN ('pending', 'failed') THEN
                -- Not moved: waiting for its turn, or definitely rejected (a refund may
                -- be why). Held, so that no retry can sweep money that left.
                UPDATE sweeps SET status = 'held', last_error = v_reason, updated_at = now()
                 WHERE deposit_id = p_transfer_id;
                INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
                VALUES (p_transfer_id, v_sweep, 'held', 'held: ' || v_reason);
                v_effect := 'held';
            ELSIF v_sweep IS NULL AND d.skip_reason IS NULL AND p_skip_reason IS NULL
                  AND (d.status = 'final' OR v_ok) THEN
                -- Not swept yet: hold it, with Interlace's figures when this is its
                -- record (the amount swept is the confirmed one).
                INSERT INTO sweeps (deposit_id, client_transaction_id, status, run_at, account_id, from_wallet_id,
                                    currency, amount, to_currency, last_error)
                VALUES (p_transfer_id, p_client_tx_id, 'held', now(), p_sweep_account_id,
                        CASE WHEN v_ok THEN p_wallet_id ELSE d.wallet_id END,
                        CASE WHEN v_ok THEN p_currency ELSE d.currency END,
                        CASE WHEN v_ok THEN p_amount ELSE d.amount END, p_to_currency, v_reason);
                INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
                VALUES (p_transfer_id, NULL, 'held', 'held: ' || v_reason);
                IF v_ok THEN
                    UPDATE deposits SET confirmed_at = now(), confirmed_amount = p_amount, updated_at = now()
                     WHERE id = p_transfer_id;
                END IF;
                UPDATE deposit_confirmations SET due_at = NULL, updated_at = now()
             WHERE deposit_id = p_transfer_id AND due_at IS NOT NULL;
                v_effect := 'held';
            ELSE
                IF v_sweep IS NOT NULL THEN
                    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
                    VALUES (p_transfer_id, v_sweep, v_sweep, 'contradicted after the sweep started: ' || v_reason);
                END IF;
                v_effect := 'conflict';
            END IF;
            INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, notification_id, reason)
            VALUES (p_transfer_id, d.status, d.status, p_upstream_status, p_notification_id, 'contradicted: ' || v_reason);
        END IF;
    END IF;

    IF v_effect IN ('created', 'advanced', 'confirmed') AND v_final THEN
        IF p_skip_reason IS NOT NULL THEN
            UPDATE deposits SET skip_reason = p_skip_reason WHERE id = p_transfer_id;
            UPDATE deposit_confirmations SET due_at = NULL, updated_at = now()
             WHERE deposit_id = p_transfer_id AND due_at IS NOT NULL;
            IF v_effect <> 'confirmed' THEN
                INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, notification_id, reason)
                VALUES (p_transfer_id, 'final', 'final', p_upstream_status, p_notification_id, 'not swept: ' || p_skip_reason);
            END IF;
        ELSIF p_record OR NOT p_need_confirm THEN
            INSERT INTO sweeps (deposit_id, client_transaction_id, status, run_at, account_id, from_wallet_id,
                                currency, amount, to_currency)
            VALUES (p_transfer_id, p_client_tx_id, 'pending', now(), p_sweep_account_id, p_wallet_id,
                    p_currency, p_amount, p_to_currency)
            ON CONFLICT DO NOTHING;
            IF FOUND THEN
                INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
                VALUES (p_transfer_id, NULL, 'pending',
                        CASE WHEN p_record THEN 'deposit final, confirmed by Interlace''s record' ELSE 'deposit final' END);
                PERFORM pg_notify('sweeper_sweeps', '');
            END IF;
            UPDATE deposit_confirmations SET due_at = NULL, updated_at = now()
             WHERE deposit_id = p_transfer_id AND due_at IS NOT NULL;
        ELSE
            INSERT INTO deposit_confirmations (deposit_id) VALUES (p_transfer_id)
            ON CONFLICT (deposit_id) DO UPDATE SET due_at = COALESCE(deposit_confirmations.due_at, now()), updated_at = now();
            PERFORM pg_notify('sweeper_confirm', '');
        END IF;
    END IF;

    UPDATE webhook_deliveries SET effect = v_effect, reason = COALESCE(v_reason, reason)
     WHERE notification_id = p_notification_id;
    RETURN v_effect;
END
$$;
-- +goose StatementEnd

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
                CASE WHEN d.status = 'needs_review' THEN 'needs review: ' || COALESCE(d.review_reason, 'unusable notification') END,
                CASE WHEN c.due_at IS NOT NULL THEN 'awaiting Interlace''s record' || COALESCE(': ' || c.last_error, '') END,
                CASE WHEN d.status = 'failed' THEN 'deposit ' || d.upstream_status END,
                CASE WHEN d.status = 'unknown' THEN 'unknown upstream status ' || d.upstream_status END)
                             AS last_error,
       COALESCE(s.attempts, 0) AS attempts,
       w.user_ref,
       CASE WHEN s.status IN ('pending', 'in_flight') THEN s.created_at END AS pending_since,
       CASE WHEN s.status = 'in_flight' THEN s.updated_at END             AS in_flight_since,
       COALESCE(
           (s.status IN ('pending', 'in_flight') AND s.created_at < now() - interval '15 minutes')
           OR (s.deposit_id IS NULL AND d.skip_reason IS NULL AND d.status IN ('pending', 'unknown', 'final')
               AND d.received_at < now() - interval '1 hour'),
           false)            AS stuck,
       s.fees,
       d.confirmed_at,
       d.source
  FROM deposits d
  LEFT JOIN sweeps s ON s.deposit_id = d.id
  LEFT JOIN deposit_confirmations c ON c.deposit_id = d.id
  LEFT JOIN wallets w ON w.id = d.wallet_id;

-- +goose Down
SET LOCAL lock_timeout = '5s';
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
DROP FUNCTION sweeper_ingest(text, text, smallint, bytea, text, text, text, text, text, text, text, text, text,
                             text, numeric, jsonb, text, text, timestamptz, timestamptz, text, uuid, text, text,
                             text, text, text, boolean, boolean);
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
CREATE OR REPLACE FUNCTION sweeper_chain_class(status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN lower(btrim(status)) IN ('closed', 'completed', 'success') THEN 'final'
        WHEN lower(btrim(status)) IN ('failed', 'rejected', 'refunded', 'cancelled', 'canceled') THEN 'failed'
        ELSE 'pending' END
$$;
DROP TABLE poll_state;
DROP TABLE deposit_confirmations;
ALTER TABLE deposits DROP COLUMN review_reason;
ALTER TABLE deposits DROP COLUMN origin;
ALTER TABLE deposits DROP CONSTRAINT deposits_amount_known;
ALTER TABLE deposits ALTER COLUMN amount SET NOT NULL;
