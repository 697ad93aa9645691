// Package chaos is the harness behind `sweeper chaos`: it runs several real
// `sweeper serve` processes against a real PostgreSQL and the sandbox, on
// loopback only, makes the sandbox deliver N deposits through a round-robin
// balancer (each notification once to three times, some concurrently, some out
// of order), injects upstream faults, kill -9s a random process every few
// seconds, crashes PostgreSQL once mid-run, and at the end compares the
// sandbox's ledger with sweep_ledger: nothing lost, nothing moved twice,
// nothing stuck.
package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgcluster"
	"github.com/sweeperhq/sweeper/internal/store"
)

// Config tunes a run. Zero values take the defaults in brackets.
type Config struct {
	Deposits int     // deposits the sandbox makes [2000]
	Workers  int     // `sweeper serve` processes [3]
	Rate     float64 // deposits per second [50]
	// Duration caps the whole run, setup and verdict included [15m]. What is
	// not done by then counts as stuck.
	Duration time.Duration
	// Settle bounds the wait, after the last deposit, for every sweep to end [3m].
	Settle time.Duration
	// KillEvery is how often a random serve process gets SIGKILL [3s]; negative: never.
	KillEvery time.Duration
	// DBRestart crashes and restarts PostgreSQL once, halfway through the
	// deposits. It needs the harness' own cluster (local initdb/postgres
	// binaries); a server given by URL is never restarted.
	DBRestart bool
	Seed      int64 // 0: from the clock

	// Upstream faults (PUT /sandbox/faults).
	ErrorRate              float64 // share of Interlace calls answered 5xx/429 without effect
	LatencyMs              int     // added to every Interlace call
	TimeoutAfterCommitRate float64 // share of calls applied, then answered by a dropped connection
	// DuplicateRate is the chance, per notification, of a sandbox duplicate and,
	// independently, of a balancer copy (so 1 to 3 deliveries), and, for a
	// Pending notification, of an out-of-order re-send under a new id.
	DuplicateRate float64

	// Realistic turns on the sandbox's realism (contract §12) and judges the
	// run with Judge instead of Reconcile: the fields below take their
	// realistic defaults unless set (a negative rate means 0).
	Realistic bool
	// DuplicateAnswer is what a repeated clientTransactionId gets ["error"].
	DuplicateAnswer string
	// PendingRate of internal transfers are answered PENDING and applied only
	// after PendingMs [0.1, 1500].
	PendingRate float64
	PendingMs   int
	// DropWebhookRate of deposits are never announced [0.1]; LegacyEnvelopeRate
	// are announced in the legacy envelope [0.2]; RefundAfterCloseRate are
	// refunded shortly after their Closed notification [0.05].
	DropWebhookRate      float64
	LegacyEnvelopeRate   float64
	RefundAfterCloseRate float64
	// PollInterval is the serve processes' SWEEPER_POLL_INTERVAL in a
	// realistic run [2s]: short, so deposits no webhook announced are found
	// within the settle time.
	PollInterval time.Duration

	// AdminURL is an admin-capable postgres:// URL, used when the harness does
	// not run its own cluster.
	AdminURL string

	// Exe and ServeArgs start one sweeper process ([os.Executable()], ["serve"]).
	Exe       string
	ServeArgs []string

	// Log receives progress lines; nil is quiet.
	Log io.Writer
	// KeepLogs keeps the serve processes' logs even when the run passes.
	KeepLogs bool
}

func (c *Config) defaults() error {
	if c.Deposits <= 0 {
		c.Deposits = 2000
	}
	if c.Workers <= 0 {
		c.Workers = 3
	}
	if c.Rate <= 0 {
		c.Rate = 50
	}
	if c.Duration <= 0 {
		c.Duration = 15 * time.Minute
	}
	if c.Settle <= 0 {
		c.Settle = 3 * time.Minute
	}
	if c.KillEvery == 0 {
		c.KillEvery = 3 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Realistic {
		def := func(v *float64, d float64) {
			switch {
			case *v == 0:
				*v = d
			case *v < 0:
				*v = 0
			}
		}
		def(&c.PendingRate, 0.1)
		def(&c.DropWebhookRate, 0.1)
		def(&c.LegacyEnvelopeRate, 0.2)
		def(&c.RefundAfterCloseRate, 0.05)
		if c.DuplicateAnswer == "" {
			c.DuplicateAnswer = "error"
		}
		if c.PendingMs == 0 {
			c.PendingMs = 1500
		}
		if c.PollInterval <= 0 {
			c.PollInterval = 2 * time.Second
		}
	}
	if c.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("chaos: find own executable: %w", err)
		}
		c.Exe = exe
	}
	if len(c.ServeArgs) == 0 {
		c.ServeArgs = []string{"serve"}
	}
	for name, v := range map[string]float64{"error rate": c.ErrorRate, "timeout-after-commit rate": c.TimeoutAfterCommitRate, "duplicate rate": c.DuplicateRate,
		"pending rate": c.PendingRate, "drop-webhook rate": c.DropWebhookRate, "legacy-envelope rate": c.LegacyEnvelopeRate,
		"refund-after-close rate": c.RefundAfterCloseRate} {
		if v < 0 || v > 1 {
			return fmt.Errorf("chaos: %s must be between 0 and 1, got %v", name, v)
		}
	}
	if c.ErrorRate+c.TimeoutAfterCommitRate >= 1 {
		return errors.New("chaos: error rate + timeout-after-commit rate must stay below 1, or nothing is ever swept")
	}
	if c.LatencyMs < 0 || c.LatencyMs > int(upstreamTimeout/time.Millisecond)/2 {
		return fmt.Errorf("chaos: latency must be between 0 and %d ms (half the upstream timeout)", upstreamTimeout/time.Millisecond/2)
	}
	return nil
}

// Settings of the serve processes: short enough that a run of a minute sees
// leases expire, retries back off and recover.
const (
	upstreamTimeout = 2 * time.Second
	sweepLease      = 13 * time.Second // above one attempt's worst case, 6 x upstreamTimeout
	retryMaxDelay   = 2 * time.Second
	// timeScale divides Interlace's webhook retry schedule (10 s, 30 s, 1 min…)
	// so a delivery refused during a kill or the database crash comes back in
	// a fraction of a second instead of ten.
	timeScale = 100
)

// Result is the outcome of a run.
type Result struct {
	Tally
	// Realistic runs are judged by Verdict (contract §12), friendly ones by Tally.
	Realistic bool
	Verdict   Verdict
	Elapsed   time.Duration
	Seed      int64

	Kills      int64 // SIGKILLs sent to serve processes
	Crashes    int64 // serve processes that exited on their own (e.g. could not start)
	DBRestarts int
	DBNote     string // which server, and why it was or was not restarted

	WebhookPosts     int64 // notification POSTs the sandbox made (retries and duplicates included)
	BalancerCopies   int64 // extra copies the balancer delivered
	OutOfOrder       int64 // stale Pending re-sends (new notification ids) delivered after the fact
	Rerouted         int64 // deliveries sent on to another backend because one was down
	Refused          int64 // deliveries no backend took (the sandbox retried them)
	UpstreamCalls    int   // transfer requests Interlace received for the deposits
	AttemptRows      int   // sweep_attempts rows
	AttemptRetries   int   // … with outcome retry
	Reclaimed        int   // sweeps taken over after a lease expired (worker killed mid-flight)
	LeaseLost        int   // outcomes that arrived after another worker took over
	StaleDeliveries  int   // deliveries recorded with effect 'stale' (updates older than the state)
	DepositsRecorded int   // deposits rows
	LogDir           string
}

// OK is the run's pass condition: the Verdict's in a realistic run, the
// Tally's otherwise.
func (r Result) OK() bool {
	if r.Realistic {
		return r.Verdict.OK()
	}
	return r.Tally.OK()
}

// Line is the one line the command prints.
func (r Result) Line() string {
	if r.Realistic {
		v := r.Verdict
		return fmt.Sprintf("chaos: deposits=%d swept=%d lost=%d doubled=%d stuck=%d failed=%d unresolved=%d held=%d misbooked=%d wrong_amount=%d elapsed=%s",
			v.Deposits, v.Swept, v.Lost, v.Doubled, v.Stuck, v.Failed, v.Unresolved, v.Held, v.Misbooked, v.WrongAmount,
			r.Elapsed.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("chaos: deposits=%d swept=%d lost=%d doubled=%d stuck=%d failed=%d elapsed=%s",
		r.Deposits, r.Swept, r.Lost, r.Doubled, r.Stuck, r.Failed, r.Elapsed.Round(100*time.Millisecond))
}

// Stats is a line of the run's other figures.
func (r Result) Stats() string {
	realism := ""
	if r.Realistic {
		v := r.Verdict
		realism = fmt.Sprintf(" refunded=%d refused_correctly=%d webhooks_dropped=%d legacy=%d ambiguous=%d ambiguity_mismatch=%d",
			v.Refunded, v.Refused, v.WebhooksDropped, v.Legacy, v.Ambiguous, v.AmbiguityMismatch)
	}
	return fmt.Sprintf("chaos: seed=%d kills=%d crashes=%d db_restarts=%d webhook_posts=%d balancer_copies=%d out_of_order=%d "+
		"rerouted=%d refused=%d stale_recorded=%d upstream_calls=%d attempt_rows=%d retries=%d reclaimed=%d lease_lost=%d",
		r.Seed, r.Kills, r.Crashes, r.DBRestarts, r.WebhookPosts, r.BalancerCopies, r.OutOfOrder, r.Rerouted, r.Refused,
		r.StaleDeliveries, r.UpstreamCalls, r.AttemptRows, r.AttemptRetries, r.Reclaimed, r.LeaseLost) + realism
}

// ProblemLines are the lines that explain the verdict.
func (r Result) ProblemLines() []string {
	if r.Realistic {
		return r.Verdict.Problems
	}
	return r.Tally.Problems
}

// Run performs one chaos run. An error means the harness itself could not do
// its job (no database, a process that never started); the verdict on sweeper
// is in the Result.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if err := cfg.defaults(); err != nil {
		return res, err
	}
	began := time.Now()
	res.Seed = cfg.Seed
	defer func() { res.Elapsed = time.Since(began) }()
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "chaos: "+format+"\n", args...)
		}
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	rng := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x5eed))
	var rngMu sync.Mutex
	randN := func(n int64) int64 {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.Int64N(n)
	}

	// The database.
	own, note := chooseServer(cfg)
	res.DBNote = note
	if !own && cfg.AdminURL == "" {
		return res, errors.New("chaos: no database: give -database-url (or SWEEPER_TEST_DATABASE_URL/DATABASE_URL), or install the PostgreSQL server binaries")
	}
	db, err := openDatabase(runCtx, cfg.AdminURL, own)
	if err != nil {
		return res, err
	}
	defer db.close(context.WithoutCancel(ctx))
	logf("database %s (%s)", db.name, note)

	logDir, err := os.MkdirTemp("", "sweeper-chaos-")
	if err != nil {
		return res, err
	}
	res.LogDir = logDir
	defer func() {
		if err == nil && res.OK() && !cfg.KeepLogs {
			_ = os.RemoveAll(logDir)
			res.LogDir = ""
		}
	}()

	// The sandbox, the balancer in front of the serve processes, the processes.
	webhookSecret, clientSecret, adminToken := randomHex(), randomHex(), randomHex()
	lbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	sbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = lbLn.Close()
		return res, err
	}
	res.Realistic = cfg.Realistic
	sb := sandbox.New(sandbox.Config{
		WebhookURL: "http://" + lbLn.Addr().String() + "/webhooks/interlace", WebhookSecret: webhookSecret,
		TimeScale: timeScale, Seed: cfg.Seed, Logger: zap.NewNop(),
	})
	defer sb.Close()
	sbURL := "http://" + sbLn.Addr().String()
	sbSrv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = sbSrv.Serve(sbLn) }()
	defer sbSrv.Close()

	env := []string{
		"DATABASE_URL=" + db.url,
		"INTERLACE_BASE_URL=" + sbURL,
		"INTERLACE_CLIENT_ID=sweeper-chaos",
		"INTERLACE_CLIENT_SECRET=" + clientSecret,
		"INTERLACE_ACCOUNT_ID=" + sandbox.DefaultAccountID,
		"INTERLACE_WEBHOOK_SECRET=" + webhookSecret,
		"SWEEPER_ADMIN_TOKEN=" + adminToken,
		"SWEEPER_SWEEP_LEASE=" + sweepLease.String(),
		"SWEEPER_UPSTREAM_TIMEOUT=" + upstreamTimeout.String(),
		"SWEEPER_RETRY_MAX_DELAY=" + retryMaxDelay.String(),
		"SWEEPER_SHUTDOWN_TIMEOUT=5s",
		"SWEEPER_DB_MAX_CONNS=10",
		"SWEEPER_WORKER_CONCURRENCY=16",
		"SWEEPER_LOG_FORMAT=json",
		"SWEEPER_LOG_LEVEL=info",
	}
	if cfg.Realistic {
		// Confirmation and the backfill poller (contract §9) are what a
		// realistic upstream needs; a sweeper that does not know them ignores them.
		env = append(env, "SWEEPER_CONFIRM_DEPOSITS=true", "SWEEPER_POLL_INTERVAL="+cfg.PollInterval.String())
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	fl, err := newFleet(cfg.Exe, cfg.ServeArgs, env, logDir, cfg.Workers,
		func() time.Duration { return time.Duration(randN(int64(time.Second))) })
	if err != nil {
		return res, err
	}
	extrasCtx, stopExtras := context.WithCancel(context.Background())
	defer stopExtras()
	lb := newBalancer(extrasCtx, fl.urls(), []byte(webhookSecret), cfg.DuplicateRate, uint64(cfg.Seed))
	lbSrv := &http.Server{Handler: lb, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = lbSrv.Serve(lbLn) }()
	defer lbSrv.Close()

	if err := fl.start(); err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			fl.stop(10 * time.Second)
		}
	}()
	readyCtx, readyCancel := context.WithTimeout(runCtx, 30*time.Second)
	err = fl.waitReady(readyCtx)
	readyCancel()
	if err != nil {
		return res, fmt.Errorf("chaos: %w (logs in %s)", err, logDir)
	}
	logf("%d serve processes ready on %s; sandbox %s", cfg.Workers, strings.Join(fl.urls(), ", "), sbURL)

	faults := sandbox.Faults{
		ErrorRate: cfg.ErrorRate, LatencyMs: cfg.LatencyMs,
		TimeoutAfterCommitRate: cfg.TimeoutAfterCommitRate, DuplicateDeliveryRate: cfg.DuplicateRate,
	}
	if cfg.Realistic {
		faults.DuplicateAnswer = cfg.DuplicateAnswer
		faults.PendingRate, faults.PendingMs = cfg.PendingRate, cfg.PendingMs
		faults.DropWebhookRate, faults.LegacyEnvelopeRate = cfg.DropWebhookRate, cfg.LegacyEnvelopeRate
		faults.RefundAfterCloseRate = cfg.RefundAfterCloseRate
		// A Budget USD balance listed before the Infinity one: discovery must
		// not sweep into it.
		faults.BudgetBalance = true
	}
	// The sandbox runs in this process: its faults and deposits are set by call,
	// not through its HTTP control endpoints. Config.defaults has checked the rates.
	sb.SetFaults(faults)

	// Chaos: deposits arrive at cfg.Rate while processes die and the database crashes.
	var chaosWG sync.WaitGroup
	creating, stopChaos := context.WithCancel(runCtx)
	if cfg.KillEvery > 0 {
		chaosWG.Add(1)
		go func() {
			defer chaosWG.Done()
			t := time.NewTicker(cfg.KillEvery)
			defer t.Stop()
			for {
				select {
				case <-creating.Done():
					return
				case <-t.C:
					i := int(randN(int64(cfg.Workers)))
					fl.kill(i)
					logf("kill -9 serve %d", i)
				}
			}
		}()
	}
	var dbRestarts atomic.Int64
	restartAt := -1
	if cfg.DBRestart && db.canRestart() {
		restartAt = cfg.Deposits / 2
	}
	for i := 0; i < cfg.Deposits; i++ {
		if d := time.Until(began.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))); d > 0 {
			select {
			case <-runCtx.Done():
			case <-time.After(d):
			}
		}
		if runCtx.Err() != nil {
			break
		}
		if i == restartAt {
			chaosWG.Add(1)
			go func() {
				defer chaosWG.Done()
				logf("crashing PostgreSQL (immediate shutdown) and restarting it")
				t0 := time.Now()
				if err := db.crash(runCtx); err != nil {
					logf("database restart failed: %v", err)
					return
				}
				dbRestarts.Add(1)
				logf("PostgreSQL back after %s", time.Since(t0).Round(time.Millisecond))
			}()
		}
		if _, err := sb.CreateDeposit(runCtx, newDeposit(randomAmount(randN))); err != nil {
			stopChaos()
			chaosWG.Wait()
			return res, fmt.Errorf("chaos: create deposit: %w", err)
		}
	}
	stopChaos()
	chaosWG.Wait()
	res.DBRestarts = int(dbRestarts.Load())
	logf("%d deposits made in %s; settling", cfg.Deposits, time.Since(began).Round(100*time.Millisecond))

	// Settle: faults off, every process up, until every sweep has ended. A
	// realistic run keeps what Interlace really is (duplicate answers, PENDING,
	// refunds, lost webhooks) and turns off only the injected failures.
	settled := sandbox.Faults{}
	if cfg.Realistic {
		settled = faults
		settled.ErrorRate, settled.TimeoutAfterCommitRate, settled.LatencyMs = 0, 0, 0
	}
	sb.SetFaults(settled)
	settleCtx, settleCancel := context.WithTimeout(runCtx, cfg.Settle)
	defer settleCancel()
	if err := fl.waitReady(settleCtx); err != nil {
		logf("%v", err)
	}
	pool, err := store.OpenPool(context.WithoutCancel(ctx), db.url, store.PoolOptions{MaxConns: 2, MinConns: 1})
	if err != nil {
		return res, err
	}
	defer pool.Close()
	for settleCtx.Err() == nil {
		var done int
		err := pool.QueryRow(settleCtx, `SELECT count(*) FROM sweep_ledger WHERE sweep_status IN ('succeeded', 'failed', 'skipped', 'held', 'unresolved')`).Scan(&done)
		if err == nil && done >= cfg.Deposits {
			break
		}
		select {
		case <-settleCtx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	stopExtras()
	lb.wait()
	fl.stop(15 * time.Second)
	stopped = true
	sb.Close()

	// The verdict.
	readCtx, readCancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer readCancel()
	led := sb.Ledger()
	rows, err := ledgerRows(readCtx, pool)
	if err != nil {
		return res, err
	}
	if cfg.Realistic {
		res.Verdict = Judge(led, rows)
	} else {
		res.Tally = Reconcile(led.Deposits, led.InternalTransfers, rows)
	}
	for _, d := range led.Deposits {
		res.WebhookPosts += d.DeliveryAttempts
		res.UpstreamCalls += led.RequestsByIdempotencyKey[ids.SweepTransactionID(d.ID).String()]
	}
	res.Kills, res.Crashes = fl.kills.Load(), fl.exits.Load()
	res.BalancerCopies, res.OutOfOrder = lb.copies.Load(), lb.stale.Load()
	res.Rerouted, res.Refused = lb.rerouted.Load(), lb.refused.Load()
	err = pool.QueryRow(readCtx, `
SELECT (SELECT count(*) FROM sweep_attempts),
       (SELECT count(*) FROM sweep_attempts WHERE outcome = 'retry'),
       (SELECT count(*) FROM sweep_attempts WHERE outcome = 'lease_lost'),
       (SELECT count(*) FROM sweep_events WHERE reason LIKE 'lease expired%'),
       (SELECT count(*) FROM webhook_deliveries WHERE effect = 'stale'),
       (SELECT count(*) FROM deposits)`).Scan(&res.AttemptRows, &res.AttemptRetries, &res.LeaseLost,
		&res.Reclaimed, &res.StaleDeliveries, &res.DepositsRecorded)
	if err != nil {
		return res, fmt.Errorf("chaos: read figures: %w", err)
	}
	return res, nil
}

// chooseServer decides between the harness' own cluster and the given URL.
func chooseServer(cfg Config) (own bool, note string) {
	avail := pgcluster.Available()
	switch {
	case cfg.DBRestart && avail == nil:
		return true, "own throwaway cluster, crashed and restarted once mid-run"
	case cfg.DBRestart:
		return false, fmt.Sprintf("given server; restart skipped: no local PostgreSQL binaries (%v)", avail)
	case cfg.AdminURL != "":
		return false, "given server; restart off"
	case avail == nil:
		return true, "own throwaway cluster; restart off"
	default:
		return false, "no server"
	}
}

// newDeposit is the sandbox deposit of amount: USDC, or USDT when the amount
// has six decimals, so both currencies and precisions are exercised.
func newDeposit(amount decimal.Decimal) sandbox.DepositRequest {
	cur := "USDC"
	if amount.Exponent() == -6 {
		cur = "USDT"
	}
	return sandbox.DepositRequest{Currency: cur, Amount: amount}
}

// randomAmount is 0.01–50.00 with cents, or, one time in four, with six
// decimals, so that precision is checked end to end as well.
func randomAmount(randN func(int64) int64) decimal.Decimal {
	if randN(4) == 0 {
		return decimal.New(randN(50_000_000)+1, -6)
	}
	return decimal.New(randN(5000)+1, -2)
}

func ledgerRows(ctx context.Context, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]LedgerRow, error) {
	rows, err := pool.Query(ctx, `SELECT deposit_id, sweep_status, COALESCE(client_transaction_id::text, ''),
       COALESCE(interlace_transfer_id, ''), credited_amount, COALESCE(last_error, '') FROM sweep_ledger`)
	if err != nil {
		return nil, fmt.Errorf("chaos: read sweep_ledger: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LedgerRow, error) {
		var l LedgerRow
		err := r.Scan(&l.DepositID, &l.SweepStatus, &l.ClientTransactionID, &l.InterlaceTransferID, &l.CreditedAmount, &l.LastError)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("chaos: read sweep_ledger: %w", err)
	}
	return out, nil
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
