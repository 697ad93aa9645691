package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sweeperhq/sweeper/internal/bench"
	"github.com/sweeperhq/sweeper/internal/config"
)

const benchModes = "ingest | sweep | e2e | ready | all | history"

func runBench(ctx context.Context, env config.Getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "Measures sweeper against its performance targets (docs/PERFORMANCE.md) and prints one line per figure:\n"+
		"  ingest   P1: signed deposit webhooks/s at -senders concurrent keep-alive senders vs pgbench running the\n"+
		"           same durable transaction one per request (-senders 1,4,16,64 prints one line each)\n"+
		"  sweep    P2: sweeps/s against the sandbox at 0 ms and at 100 ms upstream latency\n"+
		"  e2e      P3: latency from the webhook's commit to the sandbox receiving the transfer, at -rate deposits/s\n"+
		"  ready    P4: time from process start to /readyz 200\n"+
		"  all      all of the above, then the memory line (P4)\n"+
		"  history  claim-query cost and ingest rate with -rows rows of history already in the tables\n"+
		"Creates (and drops) databases on -db, runs `sweeper serve` as a child process on 127.0.0.1 and the\n"+
		"sandbox in this process. Every acknowledgement is durable: do not turn fsync or synchronous_commit off.\n\n"+
		"The first argument picks the benchmark: "+benchModes+" (default all).", stdout, nil)
	defURL := env("SWEEPER_BENCH_DATABASE_URL")
	if defURL == "" {
		defURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	dbURL := fs.String("db", defURL, "PostgreSQL URL of a role that may CREATE DATABASE (env SWEEPER_BENCH_DATABASE_URL)")
	duration := fs.Duration("duration", 10*time.Second, "measured time of each ingest run (and of pgbench), and of the e2e run")
	rounds := fs.Int("rounds", 2, "split the ingest time into this many alternating app/pgbench windows")
	senders := fs.String("senders", "16", "concurrent webhook senders (comma list for a load table)")
	pgbench := fs.String("pgbench", "", "pgbench binary (default: PATH, then /usr/lib/postgresql/*/bin)")
	sweeps := fs.Int("sweeps", 20000, "deposits preloaded for the 0 ms sweep run")
	latencies := fs.String("latency", "0,100", "upstream latencies (ms) of the sweep runs")
	rate := fs.Int("rate", 500, "deposits per second of the e2e run")
	rows := fs.String("rows", "1000,100000,1000000", "history sizes for the history benchmark")
	keep := fs.Bool("keep", false, "keep the databases")
	inProcess := fs.Bool("in-process", false, "run the app inside the bench instead of as a child (RSS then includes the bench)")
	quiet := fs.Bool("q", false, "no progress on stderr")
	verbose := fs.Bool("v", false, "add senders, CPU per request/sweep and RSS to the ingest and sweep lines")

	mode := "all"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		mode = fs.Arg(0)
	}
	usageErr := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintln(stderr, "sweeper bench: "+msg)
		return fmt.Errorf("%w: %s", errUsage, msg)
	}
	senderList, err := intList(*senders, 1)
	if err != nil {
		return usageErr("-senders: %v", err)
	}
	rowList, err := intList(*rows, 1)
	if err != nil {
		return usageErr("-rows: %v", err)
	}
	e := &bench.Env{AdminURL: *dbURL, Keep: *keep, Log: stderr}
	if *quiet {
		e.Log = nil
	}
	if !*inProcess {
		if e.Exe, err = os.Executable(); err != nil {
			return err
		}
	}
	print := func(line string) { fmt.Fprintln(stdout, line) }
	ingest := func() ([]bench.IngestResult, error) {
		var out []bench.IngestResult
		for _, n := range senderList {
			r, err := bench.Ingest(ctx, e, bench.IngestConfig{Senders: n, Duration: *duration, Rounds: *rounds, Pgbench: *pgbench})
			if err != nil {
				return out, err
			}
			if len(senderList) > 1 || *verbose {
				print(r.CostLine())
			} else {
				print(r.Line())
			}
			out = append(out, r)
		}
		return out, nil
	}
	sweep := func() ([]bench.SweepResult, error) {
		var out []bench.SweepResult
		lats, err := intList(*latencies, 0)
		if err != nil {
			return nil, usageErr("-latency: %v", err)
		}
		for _, l := range lats {
			c := bench.SweepConfig{LatencyMs: l}
			if l == 0 {
				c.Deposits = *sweeps
			}
			r, err := bench.Sweep(ctx, e, c)
			if err != nil {
				return out, err
			}
			if *verbose {
				print(r.CostLine())
			} else {
				print(r.Line())
			}
			out = append(out, r)
		}
		return out, nil
	}
	e2e := func() error {
		r, err := bench.E2E(ctx, e, bench.E2EConfig{Rate: *rate, Duration: *duration})
		if err == nil {
			print(r.Line())
		}
		return err
	}
	ready := func() (bench.ReadyResult, error) {
		r, err := bench.Ready(ctx, e, 3)
		return r, err
	}

	switch mode {
	case "ingest":
		_, err = ingest()
	case "sweep":
		_, err = sweep()
	case "e2e":
		err = e2e()
	case "ready":
		var r bench.ReadyResult
		if r, err = ready(); err == nil {
			print(r.Line())
		}
	case "history":
		for _, n := range rowList {
			r, herr := bench.History(ctx, e, bench.HistoryConfig{Rows: n, Pgbench: *pgbench})
			if herr != nil {
				return herr
			}
			print(r.Line())
		}
	case "all":
		senderList = senderList[:1]
		ing, err := ingest()
		if err != nil {
			return err
		}
		sw, err := sweep()
		if err != nil {
			return err
		}
		if err := e2e(); err != nil {
			return err
		}
		r, err := ready()
		if err != nil {
			return err
		}
		print(bench.MemoryLine(ing[0], sw, r))
	default:
		return usageErr("unknown benchmark %q (want %s)", mode, benchModes)
	}
	return err
}

func intList(s string, least int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64) // accepts 1e6
		if err != nil || v < float64(least) || v != float64(int(v)) {
			return nil, fmt.Errorf("%q is not an integer >= %d", f, least)
		}
		out = append(out, int(v))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}
