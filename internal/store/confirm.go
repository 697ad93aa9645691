package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// Channels sweeper_ingest notifies on (besides the sweep worker's).
const (
	// ConfirmChannel: a final deposit now waits for Interlace's record.
	ConfirmChannel = "sweeper_confirm"
	// PollChannel: a legacy-envelope delivery asks for a poll.
	PollChannel = "sweeper_poll"
)

// Unconfirmed is a final deposit whose money waits for Interlace's own record
// (deposit_confirmations), as claimed by ClaimConfirmations.
type Unconfirmed struct {
	DepositID string
	WalletID  string
	Currency  string
	Amount    decimal.Decimal
	// CreatedAt is Interlace's createTime when the notification carried one, else
	// when sweeper received it: the list window to look in.
	CreatedAt time.Time
	// CreatedKnown: CreatedAt is Interlace's own createTime of the transfer.
	CreatedKnown bool
	ReceivedAt   time.Time
	Attempts     int // including this claim
}

// replanned runs a set-based statement with a plan made for this execution's
// arguments and the tables as they are now (pgx's unnamed statement; its
// description is still cached, so it is one round trip). A cached prepared
// statement switches PostgreSQL to a generic plan after five runs, and one made
// while deposits and deposit_confirmations held a handful of rows (a fresh
// deployment, a restore) reads them sequentially, and goes on doing so as they
// grow until autovacuum's ANALYZE invalidates it. The statements are also
// shaped so that even a plan made on small or unanalyzed tables looks rows up
// by key (LATERAL per row, = ANY(ARRAY(...)) instead of a join the planner may
// hash): TestConfirmPlansUseIndexesBeforeAnalyze. Measured in `sweeper bench
// e2e` before: 4,899 full scans of deposits in 10 s, the machine 95 % busy; now
// index scans only. Planning costs well under a millisecond, and these run once
// per batch. The per-sweep statements (claim, outcome) keep cached generic
// plans: planning each one cost 50 % more machine CPU per sweep in P2.
const replanned = pgx.QueryExecModeCacheDescribe

const claimConfirmationsSQL = `
WITH due AS (
    SELECT q.deposit_id FROM deposit_confirmations q
     CROSS JOIN LATERAL (SELECT COALESCE(d.upstream_created_at, d.received_at) AS created
                           FROM deposits d WHERE d.id = q.deposit_id OFFSET 0) d
     WHERE q.due_at IS NOT NULL AND q.due_at <= now()
     ORDER BY q.due_at, d.created, q.deposit_id
     LIMIT $1
       FOR UPDATE OF q SKIP LOCKED
), upd AS (
    UPDATE deposit_confirmations c
       SET due_at = now() + $2::interval, attempts = c.attempts + 1, updated_at = now()
     WHERE c.deposit_id = ANY (ARRAY(SELECT deposit_id FROM due))
 RETURNING c.deposit_id, c.attempts
)
SELECT d.id, d.wallet_id, d.currency, d.amount, COALESCE(d.upstream_created_at, d.received_at),
       d.upstream_created_at IS NOT NULL, d.received_at, upd.attempts
  FROM upd CROSS JOIN LATERAL (SELECT * FROM deposits d WHERE d.id = upd.deposit_id OFFSET 0) d
 ORDER BY 5, 1`

// ClaimConfirmations leases up to limit due confirmations for lease (the due time
// doubles as the lease: a confirmer that dies leaves them due again after it).
// SKIP LOCKED lets every replica's confirmer claim side by side. Deposits due at
// the same time (a batch recorded together, a backlog) are taken in the order
// Interlace created them, so that side-by-side rounds claim adjacent stretches
// of the transfer list and read disjoint pages, instead of each taking every
// fifth deposit of the same stretch and all reading all of it.
func (s *Store) ClaimConfirmations(ctx context.Context, limit int, lease time.Duration) ([]Unconfirmed, error) {
	rows, err := s.pool.Query(ctx, claimConfirmationsSQL, replanned, limit, lease)
	if err != nil {
		return nil, translate("store: claim confirmations", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Unconfirmed, error) {
		var u Unconfirmed
		err := r.Scan(&u.DepositID, &u.WalletID, &u.Currency, &u.Amount, &u.CreatedAt, &u.CreatedKnown, &u.ReceivedAt, &u.Attempts)
		return u, err
	})
	return out, translate("store: claim confirmations", err)
}

// DeferConfirmation puts a claimed confirmation back, due after delay, with the
// reason it is not confirmed yet (shown in sweep_ledger.last_error). A
// confirmation that Interlace's record settled in the meantime is gone already:
// nothing happens.
func (s *Store) DeferConfirmation(ctx context.Context, depositID string, delay time.Duration, reason string) error {
	_, err := s.pool.Exec(ctx, `
UPDATE deposit_confirmations SET due_at = now() + $2::interval, last_error = $3, updated_at = now()
 WHERE deposit_id = $1 AND due_at IS NOT NULL`, depositID, delay, reason)
	return translate("store: defer confirmation", err)
}

// ReleaseConfirmations hands back claims a round could not finish (the process
// is stopping): due again now, the interrupted attempt not counted, so a
// replica or the next process reads them at once instead of after the claim's
// lease. Nothing is confirmed here: a released deposit still waits for
// Interlace's record. A row whose attempts moved on was claimed again by someone
// else since (its lease ran out) and is left alone, as is one settled meanwhile.
func (s *Store) ReleaseConfirmations(ctx context.Context, claims []Unconfirmed) error {
	if len(claims) == 0 {
		return nil
	}
	ids := make([]string, len(claims))
	attempts := make([]int32, len(claims))
	for i, c := range claims {
		ids[i], attempts[i] = c.DepositID, int32(c.Attempts)
	}
	_, err := s.pool.Exec(ctx, `
UPDATE deposit_confirmations dc
   SET due_at = now(), attempts = dc.attempts - 1, updated_at = now()
  FROM unnest($1::text[], $2::int[]) AS r(id, attempts)
 WHERE dc.deposit_id = r.id AND dc.attempts = r.attempts AND dc.due_at IS NOT NULL`, replanned, ids, attempts)
	return translate("store: release confirmations", err)
}

// WaitingDeposits returns up to limit deposits that have waited longer than
// olderThan without becoming final (pending or unknown, no sweep), oldest first:
// the poller reads each one back from Interlace (contract §9). It reads the
// deposits_open partial index only.
func (s *Store) WaitingDeposits(ctx context.Context, olderThan time.Duration, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
SELECT d.id FROM deposits d
 WHERE d.status IN ('pending', 'unknown') AND d.received_at < now() - $1::interval
   AND NOT EXISTS (SELECT 1 FROM sweeps s WHERE s.deposit_id = d.id)
 ORDER BY d.received_at
 LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, translate("store: waiting deposits", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, translate("store: waiting deposits", err)
}

// Unconfirmed reports which of ids still wait for Interlace's record.
func (s *Store) Unconfirmed(ctx context.Context, ids []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT deposit_id FROM deposit_confirmations WHERE deposit_id = ANY($1) AND due_at IS NOT NULL`, replanned, ids)
	if err != nil {
		return nil, translate("store: unconfirmed", err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, translate("store: unconfirmed", err)
	}
	out := make(map[string]bool, len(list))
	for _, id := range list {
		out[id] = true
	}
	return out, nil
}

// Confirmation is a deposit whose record Interlace's API returned final, with
// the figures the notification gave (the caller compared them).
type Confirmation struct {
	DepositID           string
	WalletID            string
	Currency            string
	Amount              decimal.Decimal // the confirmed amount: the one swept
	UpstreamStatus      string          // the record's status, as sent
	ClientTransactionID uuid.UUID
	Record              []byte // the record as read: kept as the evidence
}

const confirmDepositsSQL = `
WITH c AS (
    SELECT * FROM unnest($1::text[], $2::numeric[], $3::text[], $4::uuid[], $5::bytea[], $8::text[], $9::text[])
             WITH ORDINALITY AS c(id, amount, upstream, ctid, record, wallet, currency, n)
), locked AS (
    SELECT d.id, d.wallet_id, d.currency, c.amount, c.upstream, c.ctid, c.record
      FROM c CROSS JOIN LATERAL (
           SELECT d.id, d.wallet_id, d.currency FROM deposits d
            WHERE d.id = c.id AND d.status = 'final' AND d.confirmed_at IS NULL AND d.skip_reason IS NULL
              AND d.amount = c.amount AND d.wallet_id = c.wallet AND d.currency = c.currency
              AND EXISTS (SELECT 1 FROM deposit_confirmations q WHERE q.deposit_id = d.id AND q.due_at IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM sweeps s WHERE s.deposit_id = d.id)
              FOR UPDATE) d
     ORDER BY c.n
), upd AS (
    UPDATE deposits d SET confirmed_at = now(), confirmed_amount = l.amount, updated_at = now()
      FROM locked l WHERE d.id = l.id
 RETURNING d.id
), ev AS (
    INSERT INTO deposit_events (deposit_id, from_status, to_status, upstream_status, reason)
    SELECT id, 'final', 'final', upstream, 'confirmed by Interlace''s record' FROM locked
), sw AS (
    INSERT INTO sweeps (deposit_id, client_transaction_id, status, run_at, account_id, from_wallet_id, currency,
                        amount, to_currency)
    SELECT id, ctid, 'pending', now(), $6, wallet_id, currency, amount, $7 FROM locked
 RETURNING deposit_id
), swev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
    SELECT deposit_id, NULL, 'pending', 'deposit final, confirmed by Interlace''s record' FROM sw
), q AS (
    UPDATE deposit_confirmations dc SET due_at = NULL, record = l.record, last_error = NULL, updated_at = now()
      FROM locked l WHERE dc.deposit_id = l.id
)
SELECT upd.id FROM upd, LATERAL (SELECT pg_notify('sweeper_sweeps', '')) AS n`

// ConfirmDeposits confirms many deposits in one statement: confirmed_at and
// confirmed_amount, an event, the sweep with the confirmed amount (and its
// event), the record kept on the confirmation row, one NOTIFY for the workers.
// Only deposits waiting for their record are confirmed, and only when the
// record's wallet, currency and amount are the row's (checked here, whatever the
// caller compared: a notification may have changed the row since); any other is
// left as it is and not in the returned ids.
func (s *Store) ConfirmDeposits(ctx context.Context, cs []Confirmation, sweepAccountID, toCurrency string) ([]string, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	ids, wallets, currencies, amounts, statuses, ctids, records := confirmArgs(cs)
	var out []string
	err := s.retryTx(ctx, func() error {
		rows, err := s.pool.Query(ctx, confirmDepositsSQL,
			replanned, ids, amounts, statuses, ctids, records, sweepAccountID, toCurrency, wallets, currencies)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, translate("store: confirm deposits", err)
	}
	return out, nil
}

// confirmArgs lays cs out as confirmDepositsSQL's arrays, in the one lock order
// of every writer of these rows (see lockOrder).
func confirmArgs(cs []Confirmation) (ids, wallets, currencies []string, amounts []decimal.Decimal, statuses []string,
	ctids []uuid.UUID, records [][]byte) {
	order := lockOrder(len(cs), func(a, b int) bool { return cs[a].DepositID < cs[b].DepositID })
	ids, wallets, currencies = make([]string, len(cs)), make([]string, len(cs)), make([]string, len(cs))
	amounts, statuses = make([]decimal.Decimal, len(cs)), make([]string, len(cs))
	ctids, records = make([]uuid.UUID, len(cs)), make([][]byte, len(cs))
	for i, j := range order {
		c := cs[j]
		ids[i], amounts[i], statuses[i], ctids[i], records[i] = c.DepositID, c.Amount, c.UpstreamStatus, c.ClientTransactionID, c.Record
		wallets[i], currencies[i] = c.WalletID, c.Currency
	}
	return
}

// retryTx runs f again on a deadlock or serialization failure (a statement
// that locks many rows, against concurrent ingests).
func (s *Store) retryTx(ctx context.Context, f func() error) error {
	var err error
	for try := 0; try < 5; try++ {
		if err = f(); err == nil || !isRetryableTx(err) {
			return err
		}
	}
	return err
}
