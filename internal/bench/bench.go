// Package bench measures sweeper against the performance targets of issue 6
// (docs/PERFORMANCE.md): webhook ingest against pgbench doing the same durable
// transaction one per request, sweep throughput against the sandbox, latency from
// webhook commit to the transfer request, and memory/readiness.
//
// Everything runs on loopback: fresh databases on the given PostgreSQL server, the
// real program (by default `sweeper serve` as a child process, so that its resident
// set is its own), and the sandbox inside the bench process. Every figure is
// durable: an acknowledgement is only ever sent after the commit that holds it.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Env is what every benchmark needs.
type Env struct {
	// AdminURL names a PostgreSQL server and a role that may CREATE DATABASE; every
	// run gets fresh databases there, dropped afterwards unless Keep.
	AdminURL string
	// Exe is the sweeper binary started as `sweeper serve` for the app under test.
	// Empty runs the app in-process instead (tests); its RSS then includes the bench.
	Exe string
	// Log receives progress and diagnostics (the result lines go to the caller).
	Log io.Writer
	// Keep leaves the databases in place for inspection.
	Keep bool
	// AppEnv adds or overrides variables of the app under test (SWEEPER_DB_MAX_CONNS=…).
	AppEnv map[string]string
}

func (e *Env) logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, "bench: "+format+"\n", args...)
	}
}

// noteBackground logs how busy the machine is before a benchmark starts: on a
// shared machine, other work competes for the same cores and every figure moves.
func (e *Env) noteBackground(ctx context.Context, name string) {
	busy0, total0 := machineCPU()
	if sleepCtx(ctx, 500*time.Millisecond) != nil {
		return
	}
	busy1, total1 := machineCPU()
	if total1 > total0 {
		pct := 100 * float64(busy1-busy0) / float64(total1-total0)
		note := ""
		if pct > 10 {
			note = ": something else is running, figures will be lower and noisier"
		}
		e.logf("%s: machine %.0f%% busy before start%s", name, pct, note)
	}
}

// Shared identities: the sandbox's defaults, so a deposit recorded by the app can be
// swept by the sandbox without any setup.
const (
	benchSecret = "bench-webhook-secret"
	benchToken  = "bench-access-token"
)

// percentile returns the p-quantile (0..1) of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sortDurations(d []time.Duration) { slices.Sort(d) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func mib(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// findPgbench returns pgbench from PATH, else the newest /usr/lib/postgresql/*/bin/pgbench.
func findPgbench(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p, err := lookPath("pgbench"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode()&0o111 != 0 {
			return m, nil
		}
	}
	return "", fmt.Errorf("bench: pgbench not found in PATH or /usr/lib/postgresql/*/bin (install postgresql-client)")
}

func versionOf(path string) int {
	var v int
	_, _ = fmt.Sscanf(strings.TrimPrefix(path, "/usr/lib/postgresql/"), "%d", &v)
	return v
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
