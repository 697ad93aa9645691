package bench

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// These tests run each benchmark in miniature, with the app in-process, to prove
// the harness works and checks what it claims (every acknowledged delivery
// stored, every deposit swept exactly once). They assert no timing.

func testEnv(t *testing.T) *Env {
	t.Helper()
	return &Env{AdminURL: pgtest.AdminURL(t), Log: testWriter{t}}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestIngestSmall(t *testing.T) {
	t.Parallel()
	cfg := IngestConfig{Senders: 2, Duration: 600 * time.Millisecond, Warmup: -1, Rounds: 1, SkipPgbench: true}
	if _, err := findPgbench(""); err == nil {
		cfg.SkipPgbench = false
		cfg.Duration = time.Second // pgbench -T counts whole seconds
	}
	r, err := Ingest(context.Background(), testEnv(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Rows < r.Requests || r.P50 <= 0 || r.P99 < r.P50 {
		t.Fatalf("result %+v", r)
	}
	if !cfg.SkipPgbench && (r.PgbenchTPS <= 0 || r.Ratio <= 0) {
		t.Fatalf("pgbench did not run: %+v", r)
	}
	if !regexp.MustCompile(`^bench ingest: rps=\d+ p50_ms=[\d.]+ p99_ms=[\d.]+ pgbench_tps=\d+ ratio=[\d.]+ rss_mib=[\d.]+$`).MatchString(r.Line()) {
		t.Fatalf("line %q", r.Line())
	}
}

func TestSweepSmall(t *testing.T) {
	t.Parallel()
	for _, c := range []SweepConfig{{Deposits: 60, Concurrency: 8}, {Deposits: 16, LatencyMs: 50, Concurrency: 8}} {
		r, err := Sweep(context.Background(), testEnv(t), c)
		if err != nil {
			t.Fatal(err) // includes: not every deposit swept exactly once upstream
		}
		if r.Concurrency != 8 || r.Deposits != c.Deposits || r.PerSecond <= 0 {
			t.Fatalf("result %+v", r)
		}
		if c.LatencyMs > 0 && (r.Expected != 160 || !strings.Contains(r.Line(), "expected=160 ratio=")) {
			t.Fatalf("line %q", r.Line())
		}
	}
}

func TestE2ESmall(t *testing.T) {
	t.Parallel()
	r, err := E2E(context.Background(), testEnv(t), E2EConfig{Rate: 100, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Deposits != 30 || r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
		t.Fatalf("result %+v", r)
	}
}

func TestReadyAndMemoryLine(t *testing.T) {
	t.Parallel()
	r, err := Ready(context.Background(), testEnv(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != 1 || r.Worst <= 0 {
		t.Fatalf("result %+v", r)
	}
	line := MemoryLine(IngestResult{RSSPeak: 20 << 20}, []SweepResult{{RSSPeak: 30 << 20}, {RSSPeak: 25 << 20}}, r)
	if !strings.HasPrefix(line, "bench memory: ingest_rss_mib=20.0 sweep_rss_mib=30.0 ready_ms=") {
		t.Fatalf("line %q", line)
	}
}

func TestHistorySmall(t *testing.T) {
	t.Parallel()
	r, err := History(context.Background(), testEnv(t), HistoryConfig{Rows: 500, Pending: 40, Claims: 3, IngestDuration: -1})
	if err != nil {
		t.Fatal(err)
	}
	if r.DuePlan != "Index Scan using sweeps_due" || r.ClaimMean <= 0 || r.DueBuffers <= 0 {
		t.Fatalf("result %+v", r)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("p%.2f = %d, want %d", c.p, got, c.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty")
	}
}

func TestSummarisePlan(t *testing.T) {
	t.Parallel()
	plan := `Limit  (cost=0.15..4.18 rows=1 width=22) (actual time=0.014..0.036 rows=32 loops=1)
  Buffers: shared hit=35 read=2
  ->  LockRows  (cost=0.15..4.18 rows=1 width=22) (actual time=0.013..0.034 rows=32 loops=1)
        ->  Index Scan using sweeps_due on sweeps  (cost=0.15..4.17 rows=1 width=22)
Execution Time: 0.048 ms`
	path, exec, buffers := summarisePlan(plan)
	if path != "Index Scan using sweeps_due" || exec != 48*time.Microsecond || buffers != 37 {
		t.Fatalf("%q %s %d", path, exec, buffers)
	}
}
