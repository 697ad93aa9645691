package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/sweep"
)

// A sweep that does not finish within the bound shows up three ways: the
// sweeper_sweeps_stuck gauge, a log line naming the deposit, and its
// sweep_ledger row (pending or in_flight). Pending (nobody works on it) and in
// flight (a worker claimed it and vanished) are both caught.
func TestStuckSweepsAreVisible(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true}) // no worker: whatever is recorded stays pending
	waiting := s.deposit("2")
	claimed := s.deposit("3")
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM sweeps WHERE deposit_id IN ($1, $2)`, waiting.ID, claimed.ID) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("sweeps never created")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A worker claims one and is never heard of again.
	st := store.New(s.pool)
	if _, err := s.pool.Exec(context.Background(), `UPDATE sweeps SET run_at = now() + interval '1 hour' WHERE deposit_id = $1`, waiting.ID); err != nil {
		t.Fatal(err)
	}
	jobs, err := st.ClaimSweeps(context.Background(), store.ClaimParams{Owner: "vanished", Limit: 5, Lease: time.Hour, ToWalletID: "63b2af21-1e8c-407b-8df9-10adc05963aa"})
	if err != nil || len(jobs) != 1 || jobs[0].DepositID != claimed.ID {
		t.Fatalf("claim: %+v %v", jobs, err)
	}
	time.Sleep(50 * time.Millisecond)

	core, logs := observer.New(zapcore.InfoLevel)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	gauge := func() float64 {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "sweeper_sweeps_stuck" {
				return f.Metric[0].GetGauge().GetValue()
			}
		}
		t.Fatal("sweeper_sweeps_stuck not registered")
		return -1
	}

	n, err := sweep.NewStuckMonitor(sweep.StuckConfig{Bound: time.Hour}, st, zap.New(core), m).Check(context.Background())
	if err != nil || n != 0 || gauge() != 0 || logs.Len() != 0 {
		t.Fatalf("fresh sweeps reported stuck: n=%d gauge=%v logs=%d err=%v", n, gauge(), logs.Len(), err)
	}

	mon := sweep.NewStuckMonitor(sweep.StuckConfig{Bound: 10 * time.Millisecond}, st, zap.New(core), m)
	if n, err := mon.Check(context.Background()); err != nil || n != 2 {
		t.Fatalf("stuck = %d, %v; want 2", n, err)
	}
	if g := gauge(); g != 2 {
		t.Fatalf("sweeper_sweeps_stuck = %v, want 2", g)
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
	if status[waiting.ID] != "pending" || status[claimed.ID] != "in_flight" {
		t.Fatalf("stuck lines by deposit: %v", status)
	}
	for id, want := range map[string]string{waiting.ID: "pending", claimed.ID: "in_flight"} {
		if row, err := st.Ledger(context.Background(), id); err != nil || row.SweepStatus != want {
			t.Fatalf("sweep_ledger %s: %+v %v", id, row, err)
		}
	}

	// Once they are done the gauge drops and the all-clear is logged.
	if _, err := s.pool.Exec(context.Background(), `UPDATE sweeps SET status = 'failed', lease_token = NULL, failed_at = now() WHERE deposit_id IN ($1, $2)`, waiting.ID, claimed.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := mon.Check(context.Background()); err != nil || n != 0 || gauge() != 0 {
		t.Fatalf("after they ended: n=%d gauge=%v err=%v", n, gauge(), err)
	}
	if logs.FilterMessage("no sweep stuck any more").Len() != 1 {
		t.Fatal("no all-clear line")
	}
}
