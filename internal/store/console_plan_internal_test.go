package store

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sweeperhq/sweeper/internal/pgtest"
)

// mustExec runs sql on s's pool or fails the test.
func mustExec(t *testing.T, ctx context.Context, s *Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// seedConsolePlanData fills a fresh database with n deposits shaped like a
// healthy production system: almost all swept, a few in each state an
// operator looks for, ten currencies, a thousand users. One in a thousand is
// final with no sweep yet (waiting for Interlace's record, issue 11), so a
// filter whose candidates forget that state fails the row check.
func seedConsolePlanData(t *testing.T, ctx context.Context, s *Store, n int) {
	t.Helper()
	mustExec(t, ctx, s, `INSERT INTO wallets (id, user_ref, reference_id, account_id)
SELECT 'w-' || k, 'user-' || k, md5('w-' || k)::uuid, 'acc' FROM generate_series(0, 999) k`)
	mustExec(t, ctx, s, `INSERT INTO deposits (id, account_id, wallet_id, currency, amount, status, upstream_status, skip_reason, received_at, final_at)
SELECT 'dep-' || i, 'acc', 'w-' || (i % 1000), CASE WHEN i % 10 = 0 THEN 'USDT' ELSE 'USDC' END, 10 + i % 7,
       CASE i % 1000 WHEN 6 THEN 'pending' WHEN 7 THEN 'needs_review' WHEN 8 THEN 'failed' ELSE 'final' END,
       'Closed', CASE WHEN i % 1000 = 9 THEN 'currency not swept' END,
       now() - i * interval '1 second', now() - i * interval '1 second'
  FROM generate_series(1, $1) i`, n)
	mustExec(t, ctx, s, `INSERT INTO sweeps (deposit_id, client_transaction_id, status, lease_token, account_id, from_wallet_id, currency,
                    amount, to_currency, interlace_transfer_id, created_at, failed_at)
SELECT 'dep-' || i, md5('dep-' || i)::uuid,
       CASE i % 1000 WHEN 1 THEN 'failed' WHEN 2 THEN 'held' WHEN 3 THEN 'unresolved' WHEN 4 THEN 'pending'
                     WHEN 5 THEN 'in_flight' ELSE 'succeeded' END,
       CASE WHEN i % 1000 = 5 THEN md5('l' || i)::uuid END, 'acc', 'w-' || (i % 1000),
       CASE WHEN i % 10 = 0 THEN 'USDT' ELSE 'USDC' END, 10 + i % 7, 'USD',
       CASE WHEN i % 1000 > 9 OR i % 1000 = 0 THEN 'tr-' || i END,
       now() - i * interval '1 second', CASE WHEN i % 1000 = 1 THEN now() END
  FROM generate_series(1, $1) i WHERE i % 1000 NOT IN (6, 7, 8, 9, 10)`, n)
	// The final deposits with no sweep wait for Interlace's record.
	mustExec(t, ctx, s, `INSERT INTO deposit_confirmations (deposit_id) SELECT 'dep-' || i FROM generate_series(1, $1) i WHERE i % 1000 = 10`, n)
	mustExec(t, ctx, s, `ANALYZE`)
}

// TestConsoleQueryPlans checks that every page of the console's deposits list
// reads a bounded number of rows, whatever the table size: the plan is run
// (EXPLAIN ANALYZE) on a generated table and the rows each scan node returns
// are summed. SWEEPER_CONSOLE_PLAN_ROWS sets the size (default 100,000; the
// documented check in docs/OPERATOR.md used 1,000,000).
func TestConsoleQueryPlans(t *testing.T) {
	n := 100_000
	if v := os.Getenv("SWEEPER_CONSOLE_PLAN_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("SWEEPER_CONSOLE_PLAN_ROWS=%q: %v", v, err)
		}
	}
	ctx := context.Background()
	s := New(pgtest.NewPool(t))
	start := time.Now()
	seedConsolePlanData(t, ctx, s, n)
	t.Logf("seeded %d deposits in %s", n, time.Since(start).Round(time.Millisecond))

	// bound: rows a page may read from deposits and sweeps together. Walks
	// (no filter, currency, succeeded) stop after the page; the narrowed
	// filters read their candidate sets, a few per thousand deposits here.
	bound := func(cands int) int { return 4*51 + 4*cands + 200 }
	perMille := n / 1000
	cases := []struct {
		name string
		f    ConsoleDepositFilter
		max  int
	}{
		{"all", ConsoleDepositFilter{}, bound(0)},
		{"all page 2", ConsoleDepositFilter{After: "dep-500"}, bound(0)},
		{"currency", ConsoleDepositFilter{Currency: "USDT"}, bound(0) * 10},
		{"user", ConsoleDepositFilter{UserRef: "user-17"}, bound(0)},
		{"attention", ConsoleDepositFilter{Status: ConsoleAttention}, bound(7 * perMille)},
		{"stuck", ConsoleDepositFilter{Status: ConsoleStuck}, bound(4 * perMille)},
		{"held", ConsoleDepositFilter{Status: "held"}, bound(2 * perMille)},
		{"unresolved", ConsoleDepositFilter{Status: "unresolved"}, bound(perMille)},
		{"failed", ConsoleDepositFilter{Status: "failed"}, bound(perMille)},
		{"failed page 2", ConsoleDepositFilter{Status: "failed", After: "dep-50001"}, bound(perMille)},
		{"pending", ConsoleDepositFilter{Status: "pending"}, bound(perMille)},
		{"in_flight", ConsoleDepositFilter{Status: "in_flight"}, bound(perMille)},
		{"skipped", ConsoleDepositFilter{Status: "skipped"}, bound(2 * perMille)},
		{"waiting", ConsoleDepositFilter{Status: "waiting"}, bound(2 * perMille)},
		{"succeeded", ConsoleDepositFilter{Status: "succeeded"}, bound(0)},
		{"failed USDC of a user", ConsoleDepositFilter{Status: "failed", Currency: "USDC", UserRef: "user-1"}, bound(perMille)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wallet := ""
			if c.f.UserRef != "" {
				wallet = "w-" + strings.TrimPrefix(c.f.UserRef, "user-")
			}
			f := c.f
			f.Limit = 50 // the console's page
			sql, args, err := consoleDepositsSQL(f, wallet)
			if err != nil {
				t.Fatal(err)
			}
			var raw []byte
			err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
					return err
				}
				return tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&raw)
			})
			if err != nil {
				t.Fatalf("explain: %v\n%s", err, sql)
			}
			if _, err := s.ConsoleDeposits(ctx, c.f); err != nil {
				t.Fatalf("the query itself: %v", err)
			}
			var plans []struct {
				Plan          planNode `json:"Plan"`
				ExecutionTime float64  `json:"Execution Time"`
			}
			if err := json.Unmarshal(raw, &plans); err != nil {
				t.Fatal(err)
			}
			read, seq := plans[0].Plan.rowsRead()
			t.Logf("%s: read %d rows, %.1f ms", c.name, read, plans[0].ExecutionTime)
			if len(seq) > 0 || read > c.max {
				t.Errorf("plan reads %d rows (bound %d), sequential scans of %v:\n%s\n%s", read, c.max, seq, sql, raw)
			}
		})
	}
	// Each filter returns exactly the view's rows in that state, page after
	// page: the candidate sets are supersets, and the keyset neither skips
	// nor repeats a row.
	exact := map[string]string{
		"": "true", ConsoleAttention: "(sweep_status IN ('held', 'unresolved') OR stuck)", ConsoleStuck: "stuck",
	}
	for _, st := range ConsoleStatuses() {
		if _, ok := exact[st]; !ok {
			exact[st] = "sweep_status = '" + st + "'"
		}
	}
	for _, c := range cases {
		if c.f.After != "" {
			continue
		}
		t.Run("rows of "+c.name, func(t *testing.T) {
			const pages, per = 3, 200
			cond := exact[c.f.Status]
			if c.f.Currency != "" {
				cond += " AND currency = '" + c.f.Currency + "'"
			}
			if c.f.UserRef != "" {
				cond += " AND user_ref = '" + c.f.UserRef + "'"
			}
			rows, err := s.pool.Query(ctx, `SELECT deposit_id FROM sweep_ledger WHERE `+cond+`
 ORDER BY received_at DESC, deposit_id DESC LIMIT $1`, pages*per)
			if err != nil {
				t.Fatal(err)
			}
			want, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			f := c.f
			f.Limit = per
			for range pages {
				page, err := s.ConsoleDeposits(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page.Rows {
					got = append(got, r.DepositID)
				}
				if page.Next == "" {
					break
				}
				f.After = page.Next
			}
			if len(want) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("%d rows, the view has %d (first differences matter):\ngot  %.200v\nwant %.200v", len(got), len(want), got, want)
			}
		})
	}
	t.Run("reconciliation", func(t *testing.T) {
		start := time.Now()
		lines, err := s.Reconciliation(ctx, ReconFilter{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("reconciliation of %d deposits in %s", n, time.Since(start).Round(time.Millisecond))
		for _, l := range lines {
			if !l.Balanced() {
				t.Errorf("%s does not balance: %+v", l.Currency, l)
			}
		}
	})
}

type planNode struct {
	NodeType   string     `json:"Node Type"`
	Relation   string     `json:"Relation Name"`
	ActualRows float64    `json:"Actual Rows"`
	Removed    float64    `json:"Rows Removed by Filter"`
	Loops      float64    `json:"Actual Loops"`
	Plans      []planNode `json:"Plans"`
}

// rowsRead sums the rows the scan nodes of the big tables returned, and names
// those read sequentially.
func (p planNode) rowsRead() (int, []string) {
	n, seq := 0, []string(nil)
	switch p.Relation {
	case "deposits", "sweeps":
		n += int((p.ActualRows + p.Removed) * p.Loops)
		if p.NodeType == "Seq Scan" {
			seq = append(seq, p.Relation)
		}
	}
	for _, c := range p.Plans {
		cn, cs := c.rowsRead()
		n += cn
		seq = append(seq, cs...)
	}
	return n, seq
}
