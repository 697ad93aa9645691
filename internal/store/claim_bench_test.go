package store_test

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/bench"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
)

var claimHistory = flag.String("claim.history", "0,1000,100000",
	"finished deposits already in the tables for BenchmarkClaimSweeps (e.g. 1000000)")

// BenchmarkClaimSweeps times the worker's claim (select due rows through the
// partial index sweeps_due, lease them, record the events: one statement and its
// commit) with history of finished sweeps present, which must not slow it down.
// A tiny lease leaves every claimed job due again at once, so each claim finds a
// full batch, and pays for reclaiming it.
//
//	go test -run '^$' -bench ClaimSweeps ./internal/store/ -claim.history 0,1000,100000,1000000
func BenchmarkClaimSweeps(b *testing.B) {
	for _, f := range strings.Split(*claimHistory, ",") {
		rows, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			b.Fatalf("-claim.history: %v", err)
		}
		b.Run(fmt.Sprintf("history=%d", int(rows)), func(b *testing.B) {
			ctx := context.Background()
			pool := pgtest.NewPool(b)
			if err := bench.LoadHistory(ctx, pool, int(rows)); err != nil {
				b.Fatal(err)
			}
			s := store.New(pool)
			batch := make([]store.Delivery, 256)
			for i := range batch {
				batch[i] = deposit(fmt.Sprintf("bn%d", i), fmt.Sprintf("bt%03d", i), "Closed", store.DepositFinal, "1")
			}
			if _, err := s.IngestBatch(ctx, batch); err != nil {
				b.Fatal(err)
			}
			b.Run("claim", func(b *testing.B) {
				p := store.ClaimParams{Owner: "bench", Limit: 32, Lease: time.Microsecond, ToWalletID: "infinity-1"}
				b.ReportAllocs()
				for b.Loop() {
					jobs, err := s.ClaimSweeps(ctx, p)
					if err != nil || len(jobs) != p.Limit {
						b.Fatalf("claimed %d: %v", len(jobs), err)
					}
				}
			})
			// The selection alone, without locks or a commit (whose WAL flush
			// dominates, and varies with the disk): the part history could slow down.
			b.Run("due-select", func(b *testing.B) {
				for b.Loop() {
					rows, err := pool.Query(ctx, `SELECT deposit_id FROM sweeps
 WHERE status IN ('pending', 'in_flight') AND run_at <= now() ORDER BY run_at LIMIT 32`)
					if err != nil {
						b.Fatal(err)
					}
					n := 0
					for rows.Next() {
						n++
					}
					if rows.Close(); rows.Err() != nil || n != 32 {
						b.Fatalf("selected %d: %v", n, rows.Err())
					}
				}
			})
		})
	}
}
