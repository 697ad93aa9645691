package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sweeperhq/sweeper/internal/chaos"
	"github.com/sweeperhq/sweeper/internal/config"
)

// errChaosFailed makes the command exit non-zero after it has printed its verdict.
var errChaosFailed = errors.New("chaos run found lost, doubled, stuck, failed, misbooked or wrongly sized deposits")

func runChaos(ctx context.Context, env config.Getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("chaos", "Proves, on loopback only, that sweeper loses nothing and moves nothing twice: it starts\n"+
		"-workers `sweeper serve` processes on a fresh database and the sandbox, has the sandbox deliver\n"+
		"-deposits deposits (each notification 1-3 times, some concurrently, some out of order) through a\n"+
		"round-robin balancer, injects upstream faults, kill -9s a random process every -kill-every, crashes\n"+
		"PostgreSQL once mid-run, then compares the sandbox ledger with sweep_ledger and prints one line:\n"+
		"  chaos: deposits=N swept=N lost=0 doubled=0 stuck=0 failed=0 elapsed=…\n"+
		"It exits 1 unless lost, doubled, stuck and failed are all 0.\n\n"+
		"With -realistic the sandbox also disagrees with sweeper the way the real Interlace can (contract §12): a\n"+
		"repeated clientTransactionId answers an error, some transfers answer PENDING, some deposits are never\n"+
		"announced, some are announced in the legacy envelope, some are refunded after Closed. The verdict is then\n"+
		"computed from the sandbox's ledger and adds unresolved, held, misbooked and wrong_amount:\n"+
		"  chaos: deposits=N swept=N lost=0 doubled=0 stuck=0 failed=N unresolved=N held=N misbooked=0 wrong_amount=0 elapsed=…\n"+
		"and it exits 1 unless lost, doubled, stuck, misbooked and wrong_amount are all 0.", stdout, nil)
	deposits := fs.Int("deposits", 2000, "deposits the sandbox makes")
	workers := fs.Int("workers", 3, "number of sweeper serve processes")
	rate := fs.Float64("rate", 50, "deposits per second")
	duration := fs.Duration("duration", 15*time.Minute, "cap on the whole run; whatever is not done by then counts as stuck")
	settle := fs.Duration("settle", 3*time.Minute, "how long to wait, after the last deposit, for every sweep to end")
	killEvery := fs.Duration("kill-every", 3*time.Second, "kill -9 a random serve process this often (0: never)")
	dbRestart := fs.Bool("db-restart", true, "crash and restart PostgreSQL once mid-run; needs the local initdb/postgres binaries, "+
		"with which the harness runs its own throwaway cluster (a server given by URL is never restarted)")
	seed := fs.Int64("seed", 0, "random seed (0: from the clock; printed with -v)")
	errorRate := fs.Float64("error-rate", 0.3, "share of Interlace calls answered 500/502/503/429 without effect")
	latency := fs.Int("latency-ms", 20, "latency added to every Interlace call")
	tacRate := fs.Float64("timeout-after-commit-rate", 0.1, "share of Interlace calls applied, then answered by a dropped connection")
	dupRate := fs.Float64("duplicate-rate", 0.3, "per notification: chance of a sandbox duplicate, of a balancer copy, and of an out-of-order re-send")
	realistic := fs.Bool("realistic", false, "turn on the sandbox's realism (contract §12) and judge the run by the sandbox's ledger")
	dupAnswer := fs.String("duplicate-answer", "", "with -realistic: what a repeated clientTransactionId gets, first or error (default error)")
	pendingRate := fs.Float64("pending-rate", 0, "with -realistic: share of transfers answered PENDING first (default 0.1; negative: none)")
	pendingMs := fs.Int("pending-ms", 0, "with -realistic: how long a PENDING transfer takes to close (default 1500)")
	dropRate := fs.Float64("drop-webhook-rate", 0, "with -realistic: share of deposits never announced by a webhook (default 0.1; negative: none)")
	legacyRate := fs.Float64("legacy-envelope-rate", 0, "with -realistic: share of deposits announced in the legacy envelope (default 0.2; negative: none)")
	refundRate := fs.Float64("refund-after-close-rate", 0, "with -realistic: share of deposits refunded after Closed (default 0.05; negative: none)")
	pollInterval := fs.Duration("poll-interval", 0, "with -realistic: the serve processes' SWEEPER_POLL_INTERVAL (default 2s)")
	// No default value shown: the URL may hold a password, and --help is printed anywhere.
	dbURL := fs.String("database-url", "",
		"admin-capable postgres:// URL, used when the harness does not run its own cluster (default $SWEEPER_TEST_DATABASE_URL, else $DATABASE_URL)")
	verbose := fs.Bool("v", false, "print progress and the run's figures on stderr")
	keepLogs := fs.Bool("keep-logs", false, "keep the serve processes' logs even when the run passes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := chaos.Config{
		Deposits: *deposits, Workers: *workers, Rate: *rate, Duration: *duration, Settle: *settle,
		KillEvery: *killEvery, DBRestart: *dbRestart, Seed: *seed,
		ErrorRate: *errorRate, LatencyMs: *latency, TimeoutAfterCommitRate: *tacRate, DuplicateRate: *dupRate,
		Realistic: *realistic, DuplicateAnswer: *dupAnswer, PendingRate: *pendingRate, PendingMs: *pendingMs,
		DropWebhookRate: *dropRate, LegacyEnvelopeRate: *legacyRate, RefundAfterCloseRate: *refundRate, PollInterval: *pollInterval,
		AdminURL: firstNonEmpty(*dbURL, env("SWEEPER_TEST_DATABASE_URL"), env("DATABASE_URL")), Exe: exe, ServeArgs: []string{"serve"}, KeepLogs: *keepLogs,
	}
	if cfg.KillEvery == 0 {
		cfg.KillEvery = -1 // the flag's 0 means never; the package's zero means the default
	}
	if *verbose {
		cfg.Log = stderr
	}
	res, err := chaos.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.Line())
	if *verbose || !res.OK() {
		fmt.Fprintln(stderr, res.Stats())
		fmt.Fprintln(stderr, "chaos: database: "+res.DBNote)
	}
	if !res.OK() {
		problems := res.ProblemLines()
		for i, p := range problems {
			if i == 20 {
				fmt.Fprintf(stderr, "chaos: … and %d more\n", len(problems)-i)
				break
			}
			fmt.Fprintln(stderr, "chaos: "+p)
		}
		if res.LogDir != "" {
			fmt.Fprintln(stderr, "chaos: serve logs kept in "+res.LogDir)
		}
		return errChaosFailed
	}
	return nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
