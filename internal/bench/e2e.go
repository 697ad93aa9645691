package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/store"
)

// E2EConfig tunes the commit-to-transfer latency benchmark (P3).
type E2EConfig struct {
	Rate     int           // deposits per second, sent open-loop [500]
	Duration time.Duration // [10s]
}

// E2EResult is one P3 measurement: for each deposit, from sweeps.created_at (the
// database clock in the transaction that recorded the final deposit, i.e. at or
// just before its commit) to the sandbox receiving the transfer request.
type E2EResult struct {
	Rate     int
	Achieved float64 // deposits acknowledged per second
	Deposits int
	P50, P99 time.Duration
	Max      time.Duration
}

// Line is the bench's one-line summary.
func (r E2EResult) Line() string {
	return fmt.Sprintf("bench e2e: rate=%d p50_ms=%s p99_ms=%s", r.Rate, ms(r.P50), ms(r.P99))
}

// E2E runs P3: the whole program (`sweeper serve`: webhooks and worker) against the
// sandbox, fed final-deposit webhooks at a fixed rate.
func E2E(ctx context.Context, env *Env, cfg E2EConfig) (E2EResult, error) {
	if cfg.Rate <= 0 {
		cfg.Rate = 500
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	n := max(1, int(float64(cfg.Rate)*cfg.Duration.Seconds()))
	res := E2EResult{Rate: cfg.Rate, Deposits: n}

	env.noteBackground(ctx, "e2e")
	dbs, dbURL, err := newFreshDatabase(ctx, env)
	if err != nil {
		return res, err
	}
	defer dbs.close()
	// The deposits are created at the sandbox below: they fund the wallet.
	up, err := startUpstream(0, decimal.Zero, true)
	if err != nil {
		return res, err
	}
	defer up.close()
	a, err := startApp(ctx, env, appOptions{dbURL: dbURL, interlaceURL: up.url, http: true, worker: true})
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = a.stop()
		}
	}()
	if _, err := a.waitReady(ctx, 10*time.Second); err != nil {
		return res, err
	}
	pool, err := store.OpenPool(ctx, dbURL, store.PoolOptions{MaxConns: 2})
	if err != nil {
		return res, err
	}
	defer pool.Close()

	env.logf("e2e: %d deposits at %d/s", n, cfg.Rate)
	// Open loop: deposit i is due at start + i/Rate whatever happened to the others;
	// enough senders that a slow answer never delays the schedule.
	client := newWebhookClient(a.addr, 64)
	defer client.close()
	queue := make(chan notification, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for note := range queue {
				if err := client.send(note); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(cfg.Rate)
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			if sleepCtx(ctx, d) != nil {
				break
			}
		}
		// The deposit arrives at the sandbox (Interlace's record, its createTime
		// now) just before its notification is sent, as on the real chain: what
		// confirmation reads back.
		d, err := up.sb.CreateDeposit(ctx, sandbox.DepositRequest{Amount: decimal.NewFromInt(1)})
		if err != nil {
			close(queue)
			wg.Wait()
			return res, err
		}
		queue <- depositNotification(d)
	}
	close(queue)
	wg.Wait()
	res.Achieved = float64(n) / time.Since(start).Seconds()
	if firstErr != nil {
		return res, fmt.Errorf("bench: e2e: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	deadline := time.Now().Add(time.Minute)
	for {
		var left int
		// Deposits, not sweeps: with confirmation on, a sweep exists only once
		// Interlace's record confirmed its deposit.
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM deposits d LEFT JOIN sweeps s ON s.deposit_id = d.id
		    WHERE s.status IS DISTINCT FROM 'succeeded'`).Scan(&left); err != nil {
			return res, err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bench: e2e: %d sweeps unfinished after a minute; app log: %s", left, a.tail())
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return res, err
		}
	}
	stopped = true
	if err := a.stop(); err != nil {
		return res, err
	}

	received, requests := up.receipts()
	// From the deposit's commit (not the sweep row's, which confirmation delays)
	// to the transfer request: confirmation's cost is inside the figure.
	rows, err := pool.Query(ctx, `SELECT s.client_transaction_id, d.received_at FROM sweeps s JOIN deposits d ON d.id = s.deposit_id`)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	lat := make([]time.Duration, 0, n)
	for rows.Next() {
		var ctid uuid.UUID
		var created time.Time
		if err := rows.Scan(&ctid, &created); err != nil {
			return res, err
		}
		at, ok := received[ctid.String()]
		if !ok {
			return res, fmt.Errorf("bench: e2e: sweep %s succeeded but the sandbox never saw it", ctid)
		}
		lat = append(lat, at.Sub(created))
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	if len(lat) != n || up.transfers() != n {
		return res, fmt.Errorf("bench: e2e: %d deposits sent, %d sweeps, %d transfers upstream (%d requests)",
			n, len(lat), up.transfers(), requests)
	}
	sortDurations(lat)
	res.P50, res.P99, res.Max = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	return res, nil
}
