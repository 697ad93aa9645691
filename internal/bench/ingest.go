package bench

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// IngestConfig tunes the ingest benchmark (P1).
type IngestConfig struct {
	Senders  int           // concurrent keep-alive senders [16]
	Duration time.Duration // measured window, also pgbench -T [10s]
	Warmup   time.Duration // sent but not measured, before the window [1s]
	// Pgbench is the pgbench binary; "" finds it. SkipPgbench leaves the ratio out.
	Pgbench     string
	SkipPgbench bool
	// Rounds splits Duration into alternating app and pgbench windows [2].
	Rounds int
	// DBURL and PgbenchDBURL, when set, are used instead of fresh databases
	// (history runs give both the same history).
	DBURL, PgbenchDBURL string
}

func (c *IngestConfig) defaults() {
	if c.Senders <= 0 {
		c.Senders = 16
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 2
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	} else if c.Warmup == 0 {
		c.Warmup = time.Second
	}
}

// IngestResult is one P1 measurement.
type IngestResult struct {
	Senders    int
	Requests   int     // answered 200 inside the window
	RPS        float64 // Requests / window
	P50, P99   time.Duration
	PgbenchTPS float64 // 0 when skipped
	Ratio      float64 // RPS / PgbenchTPS
	RSSPeak    uint64  // VmHWM of the app, bytes
	// CPU cost per request inside the window: the app process alone, and the whole
	// machine (app + PostgreSQL + the senders); MachineCPUPerTx is pgbench's.
	AppCPUPerReq, MachineCPUPerReq, MachineCPUPerTx time.Duration
	Rows                                            int // webhook_deliveries after the run (acknowledged ⊆ stored)
	// BatchMean is the mean number of deliveries per commit (the app's
	// sweeper_ingest_batch_size histogram over the whole run, warm-up included).
	BatchMean float64
}

// Line is the bench's one-line summary.
func (r IngestResult) Line() string {
	return fmt.Sprintf("bench ingest: rps=%.0f p50_ms=%s p99_ms=%s pgbench_tps=%.0f ratio=%.2f rss_mib=%s",
		r.RPS, ms(r.P50), ms(r.P99), r.PgbenchTPS, r.Ratio, mib(r.RSSPeak))
}

// CostLine adds the senders and CPU cost, for the load table of docs/PERFORMANCE.md.
func (r IngestResult) CostLine() string {
	return fmt.Sprintf("bench ingest: senders=%d rps=%.0f p50_ms=%s p99_ms=%s pgbench_tps=%.0f ratio=%.2f "+
		"batch_mean=%.1f app_cpu_us_per_req=%.0f machine_cpu_us_per_req=%.0f pgbench_machine_cpu_us_per_tx=%.0f rss_mib=%s",
		r.Senders, r.RPS, ms(r.P50), ms(r.P99), r.PgbenchTPS, r.Ratio, r.BatchMean,
		us(r.AppCPUPerReq), us(r.MachineCPUPerReq), us(r.MachineCPUPerTx), mib(r.RSSPeak))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Ingest runs P1: the real app (HTTP only) on a fresh database, Senders signed
// deposit webhooks at a time, and pgbench with as many clients running the same
// durable transaction one per request on another fresh database. The measured
// time is split into Rounds alternating windows (app, pgbench, app, pgbench, …) so
// that whatever else the machine is doing weighs on both sides alike.
func Ingest(ctx context.Context, env *Env, cfg IngestConfig) (IngestResult, error) {
	cfg.defaults()
	res := IngestResult{Senders: cfg.Senders}
	dbs, err := newDatabases(ctx, env)
	if err != nil {
		return res, err
	}
	defer dbs.close()
	dbURL := cfg.DBURL
	if dbURL == "" {
		if dbURL, err = dbs.fresh(ctx); err != nil {
			return res, err
		}
	}
	if warn, err := durability(ctx, dbURL); err != nil {
		return res, err
	} else if warn != "" {
		env.logf("WARNING: %s", warn)
	}
	env.noteBackground(ctx, "ingest")
	var pg *pgbenchRunner
	if !cfg.SkipPgbench {
		pgURL := cfg.PgbenchDBURL
		if pgURL == "" {
			if pgURL, err = dbs.fresh(ctx); err != nil {
				return res, err
			}
		}
		if pg, err = newPgbench(cfg, pgURL); err != nil {
			return res, err
		}
		defer pg.close()
	}

	a, err := startApp(ctx, env, appOptions{dbURL: dbURL, http: true})
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
	client := newWebhookClient(a.addr, cfg.Senders)
	defer client.close()
	env.logf("ingest: %d senders, %s warm-up, %d x %s measured", cfg.Senders, cfg.Warmup, cfg.Rounds, cfg.Duration/time.Duration(cfg.Rounds))
	start := time.Now()
	if _, err := sendFor(ctx, client, cfg.Senders, cfg.Warmup, a); err != nil {
		return res, err
	}
	var (
		all             []time.Duration
		acked           int
		appCPU, machine time.Duration
		pgTPS, pgCPU    float64
		window          = cfg.Duration / time.Duration(cfg.Rounds)
	)
	for round := 0; round < cfg.Rounds; round++ {
		w, err := sendFor(ctx, client, cfg.Senders, window, a)
		if err != nil {
			return res, err
		}
		all = append(all, w.latencies...)
		acked += w.acked
		appCPU += w.appCPU
		machine += w.machineCPU
		if pg != nil {
			tps, cpuPerTx, err := pg.run(ctx, env, window)
			if err != nil {
				return res, err
			}
			pgTPS += tps / float64(cfg.Rounds)
			pgCPU += float64(cpuPerTx) / float64(cfg.Rounds)
		}
	}
	_, res.RSSPeak = a.memory()
	res.BatchMean = a.batchMean()
	stopped = true
	if err := a.stop(); err != nil {
		return res, err
	}

	sortDurations(all)
	res.Requests = len(all)
	res.RPS = float64(res.Requests) / cfg.Duration.Seconds()
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
	if res.Requests > 0 {
		res.AppCPUPerReq = appCPU / time.Duration(res.Requests)
		res.MachineCPUPerReq = machine / time.Duration(res.Requests)
	}
	res.PgbenchTPS, res.MachineCPUPerTx = pgTPS, time.Duration(pgCPU)
	if pgTPS > 0 {
		res.Ratio = res.RPS / pgTPS
	}
	if err := checkStored(ctx, dbURL, start, &res); err != nil {
		return res, err
	}
	return res, nil
}

// checkStored verifies that every acknowledged delivery is stored, with its sweep job.
func checkStored(ctx context.Context, dbURL string, since time.Time, res *IngestResult) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var deliveries, sweeps int
	// A final deposit gets its sweep job at once, or (confirmation on) its place
	// in the queue waiting for Interlace's record: one or the other, per delivery.
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM webhook_deliveries WHERE received_at >= $1),
		(SELECT count(*) FROM sweeps WHERE created_at >= $1) + (SELECT count(*) FROM deposit_confirmations WHERE created_at >= $1)`,
		since.Add(-time.Second)).Scan(&deliveries, &sweeps); err != nil {
		return err
	}
	res.Rows = deliveries
	if deliveries < res.Requests || sweeps != deliveries {
		return fmt.Errorf("bench: ingest: %d deliveries acknowledged in the windows but %d stored with %d sweeps",
			res.Requests, deliveries, sweeps)
	}
	return nil
}

// window is what one sending window measured.
type window struct {
	latencies          []time.Duration // of requests answered inside the window
	acked              int
	appCPU, machineCPU time.Duration
}

// sendFor runs senders keep-alive senders for d, each posting a new signed final
// deposit as soon as the previous one is answered (closed loop), and measures the
// requests answered inside the window.
func sendFor(ctx context.Context, client *webhookClient, senders int, d time.Duration, a *appUnderTest) (window, error) {
	var (
		w        window
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	appCPU0 := a.cpu()
	busy0, _ := machineCPU()
	from := time.Now()
	to := from.Add(d)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			defer func() {
				mu.Lock()
				w.latencies = append(w.latencies, lat...)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				n := finalDeposit("10.5")
				t0 := time.Now()
				if !t0.Before(to) {
					return
				}
				if err := client.send(n); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if t1 := time.Now(); t1.Before(to) {
					lat = append(lat, t1.Sub(t0))
				}
			}
		}()
	}
	_ = sleepCtx(ctx, d)
	w.appCPU = a.cpu() - appCPU0
	busy1, _ := machineCPU()
	w.machineCPU = busy1 - busy0
	wg.Wait()
	w.acked = len(w.latencies)
	if err := ctx.Err(); err != nil {
		return w, err
	}
	if firstErr != nil {
		return w, fmt.Errorf("bench: ingest: %w", firstErr)
	}
	return w, nil
}

var tpsRE = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)

// pgbenchRunner runs the reference: pgbench with one client per sender, each
// transaction the same durable sweeper_ingest call a webhook makes (a new final
// deposit with its sweep job), one commit per request, prepared statements.
type pgbenchRunner struct {
	bin, script, dbURL string
	clients            int
}

func newPgbench(cfg IngestConfig, dbURL string) (*pgbenchRunner, error) {
	bin, err := findPgbench(cfg.Pgbench)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "sweeper-bench-*.pgbench")
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(pgbenchScript())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &pgbenchRunner{bin: bin, script: f.Name(), dbURL: dbURL, clients: cfg.Senders}, nil
}

func (p *pgbenchRunner) close() { os.Remove(p.script) }

// run runs pgbench for d (whole seconds, at least one) and returns its tps
// (without connection set-up, as pgbench reports it) and the machine's CPU per
// transaction meanwhile.
func (p *pgbenchRunner) run(ctx context.Context, env *Env, d time.Duration) (float64, time.Duration, error) {
	threads := min(2, p.clients)
	secs := max(1, int(d.Round(time.Second)/time.Second))
	env.logf("pgbench -c %d -j %d -T %d (same transaction, one commit per request)", p.clients, threads, secs)
	cmd := exec.CommandContext(ctx, p.bin, "-n", "-M", "prepared", "-c", strconv.Itoa(p.clients),
		"-j", strconv.Itoa(threads), "-T", strconv.Itoa(secs), "-f", p.script, p.dbURL)
	busy0, _ := machineCPU()
	out, err := cmd.CombinedOutput()
	busy1, _ := machineCPU()
	if err != nil {
		return 0, 0, fmt.Errorf("bench: pgbench: %w\n%s", err, out)
	}
	if strings.Contains(string(out), "aborted") {
		return 0, 0, errors.New("bench: pgbench run aborted:\n" + string(out))
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("bench: no tps in pgbench output:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	var cpuPerTx time.Duration
	if txs := tps * float64(secs); txs > 0 {
		cpuPerTx = time.Duration(float64(busy1-busy0) / txs)
	}
	return tps, cpuPerTx, nil
}

// pgbenchScript is the per-request transaction of the reference: exactly the call
// the app makes for a new final deposit (same function, same argument values, a
// body of the same size, confirmation on as by default), with random ids.
func pgbenchScript() string {
	n := finalDeposit("10.5")
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	return fmt.Sprintf(`\set id random(1, 1000000000000000)
SELECT sweeper_ingest('bench-n-' || :id, 'CRYPTO_TRANSFER.UPDATED', 0::smallint, '\x%s'::bytea, 'deposit', NULL,
  'bench-t-' || :id, %s, %s, 'ETH', '0x8f3c2b1a9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a',
  '0x2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f', %s, 'USDC', 10.5,
  '[{"amount":"0","currency":"USDC","type":"GAS"}]'::jsonb, 'Closed', 'final', now(), now(), NULL,
  md5(:id::text)::uuid, %s, 'USD', 'webhook', 'blockchain', NULL, false, true);
`, hex.EncodeToString(n.body), q(sandbox.DefaultAccountID), q(sandbox.DefaultMasterWalletID),
		q("0x"+hex64(n.transferID)), q(sandbox.DefaultAccountID))
}
