package bench

import (
	"context"
	"fmt"
	"time"
)

// ReadyResult is the start-up half of P4: process start to the first /readyz 200,
// against a database whose migrations are current.
type ReadyResult struct {
	Runs  []time.Duration
	Worst time.Duration
}

// Line is the bench's one-line summary.
func (r ReadyResult) Line() string {
	return fmt.Sprintf("bench ready: runs=%d worst_ms=%s", len(r.Runs), ms(r.Worst))
}

// Ready starts `sweeper serve` (HTTP and worker, as deployed) runs times and
// reports the slowest time to ready.
func Ready(ctx context.Context, env *Env, runs int) (ReadyResult, error) {
	var res ReadyResult
	dbs, dbURL, err := newFreshDatabase(ctx, env)
	if err != nil {
		return res, err
	}
	defer dbs.close()
	for range max(1, runs) {
		a, err := startApp(ctx, env, appOptions{dbURL: dbURL, http: true, worker: true})
		if err != nil {
			return res, err
		}
		d, err := a.waitReady(ctx, 10*time.Second)
		if serr := a.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, d)
		res.Worst = max(res.Worst, d)
	}
	return res, nil
}

// MemoryLine is P4: the app's peak resident set during the ingest run and during
// the sweep runs, and the slowest time to ready.
func MemoryLine(ingest IngestResult, sweeps []SweepResult, ready ReadyResult) string {
	var sweepPeak uint64
	for _, s := range sweeps {
		sweepPeak = max(sweepPeak, s.RSSPeak)
	}
	return fmt.Sprintf("bench memory: ingest_rss_mib=%s sweep_rss_mib=%s ready_ms=%s",
		mib(ingest.RSSPeak), mib(sweepPeak), ms(ready.Worst))
}
