-- The refused-delivery sample of contract §10: the newest webhook deliveries
-- refused with 401, kept so that `sweeper doctor` can tell the operator which
-- signed part and which secret Interlace really uses.
--
-- Never a way to fill the disk: the table is a ring of at most 20 slots (the
-- primary key's CHECK makes a 21st row impossible), each body is cut to 64 KiB
-- and each header to 512 bytes (CHECKs again), and a new sample overwrites the
-- oldest slot (slot = sequence value mod 20). Overwriting in place needs no
-- DELETE, which the runtime role does not have (docs/RELIABILITY.md). How often
-- a sample may be written is bounded in Go (store.RefusalSampler), so a flood of
-- garbage costs at most a bounded write rate.

-- +goose Up
CREATE SEQUENCE webhook_refusal_seq;

CREATE TABLE webhook_refusals (
    slot             smallint    PRIMARY KEY CHECK (slot BETWEEN 0 AND 19),
    seq              bigint      NOT NULL,                  -- higher is newer
    received_at      timestamptz NOT NULL DEFAULT now(),
    reason           text        NOT NULL CHECK (octet_length(reason) <= 512),
    signature        text        NOT NULL CHECK (octet_length(signature) <= 512),
    timestamp_header text        NOT NULL CHECK (octet_length(timestamp_header) <= 512),
    signature_method text        NOT NULL CHECK (octet_length(signature_method) <= 512),
    body             bytea       NOT NULL CHECK (octet_length(body) <= 65536),
    body_size        integer     NOT NULL,                  -- the whole body's size; more than the stored bytes when cut
    body_sha256      bytea       NOT NULL                   -- of the whole body: Interlace's retries of one delivery are kept once
);

-- +goose Down
DROP TABLE webhook_refusals;
DROP SEQUENCE webhook_refusal_seq;
