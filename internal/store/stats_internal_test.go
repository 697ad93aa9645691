package store

import (
	"context"
	"testing"

	"github.com/sweeperhq/sweeper/internal/pgtest"
)

// The worker analyzes the sweeps table while it is young and has changed by
// its own size since the last statistics, and leaves it to autovacuum otherwise.
func TestAnalyzeYoungSweeps(t *testing.T) {
	ctx := context.Background()
	s := New(pgtest.NewPool(t))
	mustExec(t, ctx, s, `ALTER TABLE sweeps SET (autovacuum_enabled = false)`)
	// insert writes n sweeps (and their deposits) on one connection and makes
	// it report its statistics at once instead of within the next second.
	next := 0
	insert := func(n int) {
		t.Helper()
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		for _, sql := range []string{
			`INSERT INTO deposits (id, account_id, wallet_id, currency, amount, status, upstream_status, received_at, final_at)
SELECT 'dep-' || i, 'acc', 'w', 'USDC', 1, 'final', 'Closed', now(), now() FROM generate_series($1::int, $2::int) i`,
			`INSERT INTO sweeps (deposit_id, client_transaction_id, status, account_id, from_wallet_id, currency, amount, to_currency)
SELECT 'dep-' || i, md5('dep-' || i)::uuid, 'pending', 'acc', 'w', 'USDC', 1, 'USD' FROM generate_series($1::int, $2::int) i`,
		} {
			if _, err := conn.Exec(ctx, sql, next+1, next+n); err != nil {
				t.Fatal(err)
			}
		}
		next += n
		if _, err := conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `SELECT 1`); err != nil { // the flush happens at this transaction's end
			t.Fatal(err)
		}
	}
	reltuples := func() float64 {
		var n float64
		if err := s.pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'sweeps'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		name    string
		add     int
		analyze bool
		rows    float64 // reltuples afterwards
	}{
		{"too few changes to matter", 50, false, -1},
		{"a young table that changed: analyzed", 100, true, 150},
		{"changed by less than its size", 100, false, 150},
		{"changed by its size again", 100, true, 350},
		{"past youngRows: autovacuum's", youngRows, true, 350 + youngRows},
		{"an old table is left alone, however much it changed", 2 * youngRows, false, 350 + youngRows},
	}
	for _, st := range steps {
		insert(st.add)
		done, err := s.AnalyzeYoungSweeps(ctx)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if done != st.analyze || reltuples() != st.rows {
			t.Fatalf("%s: analyzed %t, reltuples %.0f; want %t, %.0f", st.name, done, reltuples(), st.analyze, st.rows)
		}
	}
}
