package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/pgtest"
)

// TestConfirmPlansUseIndexesBeforeAnalyze checks that the confirmer's
// set-based statements look deposits and confirmations up by key even on tables
// PostgreSQL has no statistics for yet (a fresh deployment taking its first
// burst, a restore: autovacuum analyzes only after a minute). Joined plainly,
// the planner guessed a handful of rows and read all of deposits on every round
// — 4,899 full scans in one 10 s `sweeper bench e2e`.
func TestConfirmPlansUseIndexesBeforeAnalyze(t *testing.T) {
	ctx := context.Background()
	s := New(pgtest.NewPool(t))
	for _, tbl := range []string{"deposits", "deposit_confirmations", "sweeps"} {
		mustExec(t, ctx, s, `ALTER TABLE `+tbl+` SET (autovacuum_enabled = false)`) // no statistics during the test
	}
	const n = 5000
	mustExec(t, ctx, s, `INSERT INTO deposits (id, account_id, wallet_id, currency, amount, status, upstream_status, received_at, final_at)
SELECT 'dep-' || i, 'acc', 'w-' || (i % 100), 'USDC', 10, 'final', 'Closed', now(), now() FROM generate_series(1, $1) i`, n)
	// Three are due; the rest wait for later rounds.
	mustExec(t, ctx, s, `INSERT INTO deposit_confirmations (deposit_id, due_at)
SELECT 'dep-' || i, CASE WHEN i <= 3 THEN now() - interval '1 second' ELSE now() + interval '1 hour' END
  FROM generate_series(1, $1) i`, n)

	cs := []Confirmation{}
	for i := 1; i <= 3; i++ {
		id := "dep-" + string(rune('0'+i))
		cs = append(cs, Confirmation{DepositID: id, WalletID: "w-" + string(rune('0'+i)), Currency: "USDC",
			Amount: decimal.NewFromInt(10), UpstreamStatus: "Closed", ClientTransactionID: uuid.New(), Record: []byte(`{}`)})
	}
	ids, wallets, currencies, amounts, statuses, ctids, records := confirmArgs(cs)
	plans := []struct {
		name string
		sql  string
		args []any
	}{
		{"ClaimConfirmations", claimConfirmationsSQL, []any{100, 30 * time.Second}},
		{"ConfirmDeposits", confirmDepositsSQL, []any{ids, amounts, statuses, ctids, records, "acc", "USD", wallets, currencies}},
	}
	for _, p := range plans {
		var raw []byte
		if err := s.pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+p.sql, append([]any{replanned}, p.args...)...).Scan(&raw); err != nil {
			t.Fatalf("%s: explain: %v", p.name, err)
		}
		var doc []struct{ Plan planNode }
		if err := json.Unmarshal(raw, &doc); err != nil || len(doc) != 1 {
			t.Fatalf("%s: plan %s: %v", p.name, raw, err)
		}
		for _, scan := range seqScans(doc[0].Plan) {
			t.Errorf("%s reads all of %s (Seq Scan) on a table without statistics; plan: %s", p.name, scan, raw)
		}
	}
	// And the statements do their work on those tables.
	got, err := s.ClaimConfirmations(ctx, 100, 30*time.Second)
	if err != nil || len(got) != 3 {
		t.Fatalf("ClaimConfirmations = %d claims, %v; want the 3 due", len(got), err)
	}
	done, err := s.ConfirmDeposits(ctx, cs, "acc", "USD")
	if err != nil || len(done) != 3 {
		t.Fatalf("ConfirmDeposits = %v, %v; want the 3 deposits", done, err)
	}
}

// seqScans names the tables p reads sequentially.
func seqScans(p planNode) []string {
	var out []string
	if p.NodeType == "Seq Scan" {
		out = append(out, p.Relation)
	}
	for _, c := range p.Plans {
		out = append(out, seqScans(c)...)
	}
	return out
}

// Deposits due at the same moment (a batch recorded together) are claimed in
// the order Interlace created them, so that side-by-side rounds take adjacent
// stretches of the transfer list.
func TestClaimConfirmationsTakesOldestCreatedFirst(t *testing.T) {
	ctx := context.Background()
	s := New(pgtest.NewPool(t))
	// Ids in the opposite order of creation: an id order would pick dep-1 and dep-2, the newest.
	mustExec(t, ctx, s, `
INSERT INTO deposits (id, account_id, wallet_id, currency, amount, status, upstream_status, upstream_created_at, received_at, final_at)
SELECT 'dep-' || (10 - i), 'acc', 'w', 'USDC', 1, 'final', 'Closed', now() - interval '1 hour' + i * interval '1 second', now(), now()
  FROM generate_series(1, 9) i`)
	mustExec(t, ctx, s, `INSERT INTO deposit_confirmations (deposit_id, due_at) SELECT id, '2026-01-01' FROM deposits`)
	got, err := s.ClaimConfirmations(ctx, 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].DepositID != "dep-9" || got[1].DepositID != "dep-8" {
		t.Fatalf("claimed %+v, want the two created first (dep-9, dep-8)", got)
	}
}
