package bench

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/store"
)

// HistoryConfig tunes the history benchmark: how the claim and ingest costs grow
// with rows already in the tables.
type HistoryConfig struct {
	Rows int // finished deposits (delivery, deposit, event, succeeded sweep, event, attempt) [1e6]
	// Pending sweeps due while the claim is measured [1000].
	Pending int
	// Claims is how many claims of ClaimLimit jobs are timed [300 of 32].
	Claims, ClaimLimit int
	// IngestDuration of the ingest run on top of the history (16 senders) [5s]; <0 skips it.
	IngestDuration time.Duration
	Pgbench        string
}

// HistoryResult is the cost of the hot queries with Rows of history present.
type HistoryResult struct {
	Rows       int
	Load       time.Duration // bulk load + VACUUM ANALYZE
	ClaimMean  time.Duration // ClaimSweeps(32): select due, lease, insert events — one statement
	ClaimP99   time.Duration
	DueExec    time.Duration // EXPLAIN ANALYZE execution time of the due-row selection
	DuePlan    string        // its access path, e.g. "Index Scan using sweeps_due"
	DueBuffers int           // shared buffers it touched
	Ingest     IngestResult
}

// Line is the bench's one-line summary.
func (r HistoryResult) Line() string {
	s := fmt.Sprintf("bench history: rows=%d claim_ms_mean=%s claim_ms_p99=%s due_select_ms=%.3f due_buffers=%d due_plan=%q",
		r.Rows, ms(r.ClaimMean), ms(r.ClaimP99), float64(r.DueExec)/float64(time.Millisecond), r.DueBuffers, r.DuePlan)
	if r.Ingest.Requests > 0 {
		s += fmt.Sprintf(" ingest_rps=%.0f ingest_p50_ms=%s ingest_p99_ms=%s pgbench_tps=%.0f ratio=%.2f",
			r.Ingest.RPS, ms(r.Ingest.P50), ms(r.Ingest.P99), r.Ingest.PgbenchTPS, r.Ingest.Ratio)
	}
	return s + fmt.Sprintf(" load_s=%.0f", r.Load.Seconds())
}

// dueSelect is the row selection of the worker's claim (store.ClaimSweeps), the
// only part whose cost could depend on history.
const dueSelect = `SELECT deposit_id FROM sweeps
 WHERE status IN ('pending', 'in_flight') AND run_at <= now()
 ORDER BY run_at LIMIT 32 FOR UPDATE SKIP LOCKED`

// History loads cfg.Rows finished deposits into a fresh database, then measures
// the claim (and, unless skipped, 16-sender ingest) on top of them.
func History(ctx context.Context, env *Env, cfg HistoryConfig) (HistoryResult, error) {
	if cfg.Rows <= 0 {
		cfg.Rows = 1_000_000
	}
	if cfg.Pending <= 0 {
		cfg.Pending = 1000
	}
	if cfg.Claims <= 0 {
		cfg.Claims = 300
	}
	if cfg.ClaimLimit <= 0 {
		cfg.ClaimLimit = 32
	}
	if cfg.IngestDuration == 0 {
		cfg.IngestDuration = 5 * time.Second
	}
	res := HistoryResult{Rows: cfg.Rows}
	dbs, dbURL, err := newFreshDatabase(ctx, env)
	if err != nil {
		return res, err
	}
	defer dbs.close()
	pool, err := store.OpenPool(ctx, dbURL, store.PoolOptions{MaxConns: 4})
	if err != nil {
		return res, err
	}
	defer pool.Close()

	env.logf("history: loading %d finished deposits", cfg.Rows)
	t0 := time.Now()
	if err := LoadHistory(ctx, pool, cfg.Rows); err != nil {
		return res, err
	}
	res.Load = time.Since(t0)
	st := store.New(pool)
	if err := preload(ctx, st, cfg.Pending, "1"); err != nil {
		return res, err
	}

	// The due-row selection: plan, buffers and time, rolled back.
	plan, err := explain(ctx, pool, dueSelect)
	if err != nil {
		return res, err
	}
	res.DuePlan, res.DueExec, res.DueBuffers = summarisePlan(plan)
	env.logf("history rows=%d: EXPLAIN (ANALYZE, BUFFERS) of the due selection:\n%s", cfg.Rows, plan)

	// The claim itself, timed through the store. A zero lease leaves each claimed job
	// due again at once, so every claim finds work (and pays for reclaiming it).
	lat := make([]time.Duration, 0, cfg.Claims)
	for range cfg.Claims {
		t := time.Now()
		jobs, err := st.ClaimSweeps(ctx, store.ClaimParams{Owner: "bench", Limit: cfg.ClaimLimit,
			Lease: time.Microsecond, ToWalletID: sandbox.DefaultInfinityWalletID})
		if err != nil {
			return res, err
		}
		if len(jobs) != cfg.ClaimLimit {
			return res, fmt.Errorf("bench: history: claimed %d, want %d", len(jobs), cfg.ClaimLimit)
		}
		lat = append(lat, time.Since(t))
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	res.ClaimMean = sum / time.Duration(len(lat))
	sortDurations(lat)
	res.ClaimP99 = percentile(lat, 0.99)

	if cfg.IngestDuration > 0 {
		pool.Close() // the app gets the connections, and the copy needs none
		ic := IngestConfig{Senders: 16, Duration: cfg.IngestDuration, Rounds: 1, DBURL: dbURL, Pgbench: cfg.Pgbench}
		if _, err := findPgbench(cfg.Pgbench); err != nil {
			ic.SkipPgbench = true
		} else if ic.PgbenchDBURL, err = dbs.copyOf(ctx, dbURL); err != nil {
			return res, err
		}
		res.Ingest, err = Ingest(ctx, env, ic)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// LoadHistory writes rows finished deposits (see historySQL) into a migrated
// database, then VACUUM ANALYZEs it as autovacuum would have by then.
func LoadHistory(ctx context.Context, pool *pgxpool.Pool, rows int) error {
	body := finalDeposit("1").body
	const step = 100_000
	for lo := 1; lo <= rows; lo += step {
		hi := min(rows, lo+step-1)
		if _, err := pool.Exec(ctx, historySQL, lo, hi, body, sandbox.DefaultAccountID, sandbox.DefaultMasterWalletID,
			sandbox.DefaultInfinityWalletID); err != nil {
			return fmt.Errorf("bench: history load: %w", err)
		}
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return fmt.Errorf("bench: history vacuum: %w", err)
	}
	return nil
}

// historySQL writes rows lo..hi of finished history: each a delivery, a final
// deposit with its event, a succeeded sweep with its event and its attempt.
const historySQL = `
WITH s AS (SELECT i, 'hist-' || i AS t FROM generate_series($1::int, $2::int) AS i),
d AS (
    INSERT INTO webhook_deliveries (notification_id, event_type, signature_key, outcome, transfer_id, effect, body, received_at)
    SELECT 'hist-n-' || i, 'CRYPTO_TRANSFER.UPDATED', 0, 'deposit', t, 'created', $3::bytea, now() - make_interval(secs => i)
      FROM s
), dep AS (
    INSERT INTO deposits (id, account_id, wallet_id, chain, currency, amount, status, upstream_status, received_at, final_at)
    SELECT t, $4, $5, 'ETH', 'USDC', 1, 'final', 'Closed', now() - make_interval(secs => i), now() - make_interval(secs => i)
      FROM s
    RETURNING id
), dev AS (
    INSERT INTO deposit_events (deposit_id, to_status, upstream_status, reason)
    SELECT id, 'final', 'Closed', 'first notification' FROM dep
), sw AS (
    INSERT INTO sweeps (deposit_id, client_transaction_id, status, run_at, attempts, account_id, from_wallet_id,
                        currency, amount, to_wallet_id, to_currency, interlace_transfer_id, upstream_status,
                        credited_amount, credited_currency, fee_amount, fee_currency, created_at, swept_at)
    SELECT id, md5(id)::uuid, 'succeeded', now(), 1, $4, $5, 'USDC', 1, $6, 'USD', 'it-' || id, 'CLOSED',
           0.995, 'USD', 0.005, 'USDC', now(), now()
      FROM dep
    RETURNING deposit_id, client_transaction_id
), sev AS (
    INSERT INTO sweep_events (deposit_id, from_status, to_status, reason)
    SELECT deposit_id, 'in_flight', 'succeeded', 'history' FROM sw
)
INSERT INTO sweep_attempts (deposit_id, attempt, client_transaction_id, worker, started_at, duration, http_status,
                            code, outcome)
SELECT deposit_id, 1, client_transaction_id, 'bench', now(), interval '10 ms', 200, '000000', 'succeeded' FROM sw`

// explain runs EXPLAIN (ANALYZE, BUFFERS) of sql in a transaction it rolls back
// (FOR UPDATE takes locks; nothing else changes).
func explain(ctx context.Context, pool *pgxpool.Pool, sql string) (string, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("bench: explain: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

var (
	execRE    = regexp.MustCompile(`Execution Time: ([0-9.]+) ms`)
	buffersRE = regexp.MustCompile(`Buffers: shared hit=(\d+)(?: read=(\d+))?`)
	scanRE    = regexp.MustCompile(`(Index Only Scan|Index Scan|Bitmap Heap Scan|Seq Scan)( using \w+)?`)
)

// summarisePlan pulls the access path, the execution time and the top node's
// buffers out of an EXPLAIN (ANALYZE, BUFFERS) text.
func summarisePlan(plan string) (path string, exec time.Duration, buffers int) {
	if m := scanRE.FindStringSubmatch(plan); m != nil {
		path = m[1] + m[2]
	}
	if m := execRE.FindStringSubmatch(plan); m != nil {
		f, _ := strconv.ParseFloat(m[1], 64)
		exec = time.Duration(f * float64(time.Millisecond))
	}
	if m := buffersRE.FindStringSubmatch(plan); m != nil {
		hit, _ := strconv.Atoi(m[1])
		read, _ := strconv.Atoi(m[2])
		buffers = hit + read
	}
	return strings.TrimSpace(path), exec, buffers
}
