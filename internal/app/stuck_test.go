package app_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sweeperhq/sweeper/internal/store"
)

// The stuck-sweep monitor as the program runs it (started by app.Run beside the
// worker, with its built-in bounds: stuck after 15 minutes, checked at start and
// then every minute) makes a sweep that does not finish visible three ways: the
// sweeper_sweeps_stuck gauge on /metrics, a log line naming the deposit, and its
// sweep_ledger row (pending or in_flight). Pending (nobody works on it) and in
// flight (a worker claimed it and vanished) are both caught; a sweep 14 minutes
// old is not stuck yet. When they end, the next check clears the gauge and says so.
func TestStuckSweepsAreVisible(t *testing.T) {
	t.Parallel()
	// Phase 1: the deposits are recorded by a process without a worker.
	s := start(t, sysOpts{noWork: true})
	waiting, claimed, young := s.deposit("2"), s.deposit("3"), s.deposit("4")
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM sweeps WHERE deposit_id IN ($1, $2, $3)`, waiting.ID, claimed.ID, young.ID) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("sweeps never created")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A worker claims one and is never heard of again.
	if _, err := s.pool.Exec(context.Background(), `UPDATE sweeps SET run_at = now() + interval '1 hour' WHERE deposit_id IN ($1, $2)`, waiting.ID, young.ID); err != nil {
		t.Fatal(err)
	}
	st := store.New(s.pool)
	jobs, err := st.ClaimSweeps(context.Background(), store.ClaimParams{Owner: "vanished", Limit: 5, Lease: time.Hour, ToWalletID: "63b2af21-1e8c-407b-8df9-10adc05963aa"})
	if err != nil || len(jobs) != 1 || jobs[0].DepositID != claimed.ID {
		t.Fatalf("claim: %+v %v", jobs, err)
	}
	// Time passes: two of them became final 16 minutes ago, one 14 minutes ago.
	if _, err := s.pool.Exec(context.Background(), `UPDATE sweeps SET created_at = now() - CASE deposit_id WHEN $3 THEN interval '14 minutes' ELSE interval '16 minutes' END
 WHERE deposit_id IN ($1, $2, $3)`, waiting.ID, claimed.ID, young.ID); err != nil {
		t.Fatal(err)
	}
	s.stop()

	// Phase 2: the program with its worker, and so its stuck monitor, starts.
	core, logs := observer.New(zapcore.InfoLevel)
	s2 := start(t, sysOpts{dbURL: s.dbURL, sandbox: s.sandbox, sbURL: s.sbURL, logger: zap.New(core)})
	waitGauge := func(want float64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		var got float64
		for {
			got = stuckGauge(t, s2.url)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sweeper_sweeps_stuck = %v after %s, want %v", got, within, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitGauge(2, 10*time.Second) // the monitor checks at start

	if n := logs.FilterMessage("sweeps stuck").Len(); n == 0 {
		t.Fatal("no summary line")
	}
	for _, e := range logs.FilterMessage("sweeps stuck").All() {
		if m := e.ContextMap(); m["count"] != int64(2) || m["bound"] != 15*time.Minute {
			t.Errorf("summary line %v, want count 2 and the 15m bound", m)
		}
	}
	status := map[string]string{}
	for _, e := range logs.FilterMessage("sweep stuck").All() {
		m := e.ContextMap()
		id, _ := m["deposit_id"].(string)
		status[id], _ = m["status"].(string)
		if e.Level != zapcore.WarnLevel || m["age"] == nil || m["attempts"] == nil {
			t.Errorf("stuck line %v at %s", m, e.Level)
		}
	}
	if len(status) != 2 || status[waiting.ID] != "pending" || status[claimed.ID] != "in_flight" {
		t.Fatalf("stuck lines by deposit: %v; want %s pending and %s in_flight, and not the 14-minute-old %s",
			status, waiting.ID, claimed.ID, young.ID)
	}
	st2 := store.New(s2.pool)
	for id, want := range map[string]string{waiting.ID: "pending", claimed.ID: "in_flight"} {
		if row, err := st2.Ledger(context.Background(), id); err != nil || row.SweepStatus != want {
			t.Fatalf("sweep_ledger %s: %+v %v", id, row, err)
		}
	}

	// Once they are done, the monitor's next check (a minute later) drops the
	// gauge and logs the all-clear. (The young one ends too: by then it would be
	// 15 minutes old.)
	if _, err := s2.pool.Exec(context.Background(), `UPDATE sweeps SET status = 'failed', lease_token = NULL, failed_at = now() WHERE deposit_id IN ($1, $2, $3)`, waiting.ID, claimed.ID, young.ID); err != nil {
		t.Fatal(err)
	}
	waitGauge(0, 75*time.Second)
	deadline = time.Now().Add(5 * time.Second)
	for logs.FilterMessage("no sweep stuck any more").Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no all-clear line")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stuckGauge reads sweeper_sweeps_stuck from the program's /metrics.
func stuckGauge(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "sweeper_sweeps_stuck "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("sweeper_sweeps_stuck %q: %v", v, err)
			}
			return f
		}
	}
	t.Fatal("sweeper_sweeps_stuck not on /metrics")
	return -1
}
