package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/store"
)

// SweepConfig tunes the sweep-throughput benchmark (P2).
type SweepConfig struct {
	// LatencyMs is injected before the sandbox handles each transfer.
	LatencyMs int
	// Deposits preloaded as final, each one sweep [20000 at 0 ms; otherwise about
	// 5 s worth at the expected throughput].
	Deposits int
	// Concurrency sets SWEEPER_WORKER_CONCURRENCY; 0 keeps the app's setting.
	Concurrency int
}

// SweepResult is one P2 measurement.
type SweepResult struct {
	LatencyMs   int
	Concurrency int
	Deposits    int
	Elapsed     time.Duration // worker process start -> every sweep recorded succeeded
	PerSecond   float64
	Expected    float64 // Concurrency / latency; 0 at 0 ms
	Ratio       float64
	RSSPeak     uint64
	// CPU per sweep: the worker process alone, and the whole machine (worker,
	// PostgreSQL, the sandbox in the bench process).
	AppCPUPerSweep, MachineCPUPerSweep time.Duration
}

// CostLine adds the CPU cost per sweep.
func (r SweepResult) CostLine() string {
	return fmt.Sprintf("%s app_cpu_us_per_sweep=%.0f machine_cpu_us_per_sweep=%.0f rss_mib=%s",
		r.Line(), us(r.AppCPUPerSweep), us(r.MachineCPUPerSweep), mib(r.RSSPeak))
}

// Line is the bench's one-line summary.
func (r SweepResult) Line() string {
	if r.LatencyMs == 0 {
		return fmt.Sprintf("bench sweep: latency_ms=0 concurrency=%d sweeps_per_s=%.0f", r.Concurrency, r.PerSecond)
	}
	return fmt.Sprintf("bench sweep: latency_ms=%d concurrency=%d sweeps_per_s=%.0f expected=%.0f ratio=%.2f",
		r.LatencyMs, r.Concurrency, r.PerSecond, r.Expected, r.Ratio)
}

// appSetting is the value the app under test will see for a variable.
func appSetting(env *Env, name string) string {
	if v := env.AppEnv[name]; v != "" {
		return v
	}
	if v := os.Getenv(name); v != "" {
		return v
	}
	for _, v := range config.Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// Sweep runs P2: Deposits final deposits are recorded through the store, then the
// real worker (`sweeper serve -http=false`) starts against the sandbox, and the
// clock runs until every sweep is recorded as succeeded.
func Sweep(ctx context.Context, env *Env, cfg SweepConfig) (SweepResult, error) {
	res := SweepResult{LatencyMs: cfg.LatencyMs}
	if cfg.Concurrency > 0 {
		e := *env
		e.AppEnv = map[string]string{}
		for k, v := range env.AppEnv {
			e.AppEnv[k] = v
		}
		e.AppEnv["SWEEPER_WORKER_CONCURRENCY"] = strconv.Itoa(cfg.Concurrency)
		env = &e
	}
	conc, err := strconv.Atoi(appSetting(env, "SWEEPER_WORKER_CONCURRENCY"))
	if err != nil || conc < 1 {
		return res, fmt.Errorf("bench: SWEEPER_WORKER_CONCURRENCY %q", appSetting(env, "SWEEPER_WORKER_CONCURRENCY"))
	}
	res.Concurrency = conc
	if cfg.LatencyMs > 0 {
		res.Expected = float64(conc) / (float64(cfg.LatencyMs) / 1000)
	}
	res.Deposits = cfg.Deposits
	if res.Deposits <= 0 {
		res.Deposits = 20000
		if res.Expected > 0 {
			res.Deposits = int(res.Expected * 5)
		}
	}

	env.noteBackground(ctx, "sweep")
	dbs, dbURL, err := newFreshDatabase(ctx, env)
	if err != nil {
		return res, err
	}
	defer dbs.close()
	const amount = 1
	confirm, _ := strconv.ParseBool(appSetting(env, "SWEEPER_CONFIRM_DEPOSITS"))
	funds := decimal.NewFromInt(int64(res.Deposits*amount + 1))
	if confirm {
		funds = decimal.Zero // the deposits, created at the sandbox, fund the wallet
	}
	up, err := startUpstream(cfg.LatencyMs, funds, false)
	if err != nil {
		return res, err
	}
	defer up.close()

	pool, err := store.OpenPool(ctx, dbURL, store.PoolOptions{MaxConns: 4})
	if err != nil {
		return res, err
	}
	defer pool.Close()
	st := store.New(pool)
	env.logf("sweep: preloading %d final deposits (upstream latency %d ms, confirmation %t)", res.Deposits, cfg.LatencyMs, confirm)
	if confirm {
		// The deposits exist at the sandbox and wait for its record: the clock
		// then covers confirmation as well as the sweeps. The sweep tables start
		// empty, as on a fresh deployment hit by a backlog (the poller's first
		// backfill): the worker's cached plans must not be made for an empty table
		// and kept (store.AnalyzeYoungSweeps).
		err = preloadUnconfirmed(ctx, st, up.sb, res.Deposits, amount)
	} else {
		err = preload(ctx, st, res.Deposits, strconv.Itoa(amount))
	}
	if err != nil {
		return res, err
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		return res, err
	}

	busy0, _ := machineCPU()
	a, err := startApp(ctx, env, appOptions{dbURL: dbURL, interlaceURL: up.url, worker: true})
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = a.stop()
		}
	}()
	// Wait in memory until the sandbox has seen every transfer, then for the last
	// outcomes to be recorded: polling the database all along would cost it CPU.
	deadline := time.Now().Add(3*time.Minute + time.Duration(res.Deposits)*time.Millisecond)
	for up.requests.Load() < int64(res.Deposits) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bench: sweep: %d of %d transfers requested; app log: %s",
				up.requests.Load(), res.Deposits, a.tail())
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return res, err
		}
	}
	for {
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM sweeps WHERE status IN ('pending', 'in_flight')`).Scan(&left); err != nil {
			return res, err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bench: sweep: %d of %d sweeps still open; app log: %s", left, res.Deposits, a.tail())
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.Elapsed = time.Since(a.started)
	busy1, _ := machineCPU()
	res.AppCPUPerSweep = a.cpu() / time.Duration(res.Deposits)
	res.MachineCPUPerSweep = (busy1 - busy0) / time.Duration(res.Deposits)
	_, res.RSSPeak = a.memory()
	stopped = true
	if err := a.stop(); err != nil {
		return res, err
	}
	res.PerSecond = float64(res.Deposits) / res.Elapsed.Seconds()
	if res.Expected > 0 {
		res.Ratio = res.PerSecond / res.Expected
	}

	// Every sweep succeeded, and the sandbox moved money exactly once for each.
	var ok int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sweeps WHERE status = 'succeeded'`).Scan(&ok); err != nil {
		return res, err
	}
	if n := up.transfers(); ok != res.Deposits || n != res.Deposits {
		return res, fmt.Errorf("bench: sweep: %d deposits, %d sweeps succeeded, %d transfers upstream", res.Deposits, ok, n)
	}
	return res, nil
}

// preload records n new final deposits into the sandbox master wallet, 500 per
// transaction.
func preload(ctx context.Context, st *store.Store, n int, amount string) error {
	const chunk = 500
	batch := make([]store.Delivery, 0, chunk)
	for i := 0; i < n; i++ {
		batch = append(batch, deliveryOf(finalDeposit(amount), amount))
		if len(batch) == chunk || i == n-1 {
			if _, err := st.IngestBatch(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// preloadUnconfirmed creates n deposits at the sandbox and records each one's
// Closed notification as the webhook handler does with confirmation on: final,
// waiting for Interlace's record, no sweep yet.
func preloadUnconfirmed(ctx context.Context, st *store.Store, sb *sandbox.Server, n int, amount int64) error {
	const chunk = 500
	batch := make([]store.Delivery, 0, chunk)
	for i := 0; i < n; i++ {
		d, err := sb.CreateDeposit(ctx, sandbox.DepositRequest{Amount: decimal.NewFromInt(amount)})
		if err != nil {
			return err
		}
		del := deliveryOf(depositNotification(d), d.Amount.String())
		del.Deposit.NeedConfirm, del.Deposit.Origin = true, "blockchain"
		if ms, err := strconv.ParseInt(d.CreateTime, 10, 64); err == nil {
			del.Deposit.UpstreamCreatedAt = time.UnixMilli(ms) // as the handler reads createTime
		}
		batch = append(batch, del)
		if len(batch) == chunk || i == n-1 {
			if _, err := st.IngestBatch(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// deliveryOf is what the webhook handler records for a finalDeposit notification.
func deliveryOf(n notification, amount string) store.Delivery {
	return store.Delivery{
		NotificationID: n.id, EventType: "CRYPTO_TRANSFER.UPDATED", Body: n.body, Outcome: store.OutcomeDeposit,
		TransferID: n.transferID,
		Deposit: &store.DepositInput{
			TransferID: n.transferID, AccountID: sandbox.DefaultAccountID, WalletID: sandbox.DefaultMasterWalletID,
			Chain: "ETH", Currency: "USDC", Amount: decimal.RequireFromString(amount), UpstreamStatus: "Closed",
			Status: store.DepositFinal, ClientTransactionID: ids.SweepTransactionID(n.transferID),
			SweepAccountID: sandbox.DefaultAccountID, ToCurrency: "USD",
		},
	}
}
