// Package jobs is sweeper's one leased-job loop, shared by sweeps and
// withdrawals: claim due jobs with a lease (the store's SELECT … FOR UPDATE SKIP
// LOCKED), run each in its own slot, wake up on NOTIFY or a poll tick, back off
// failed attempts with jitter, and drain on shutdown. What a job is and how one
// is processed stays with each feature; this package only schedules.
package jobs

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Backoff is the delay before retry number attempt (1-based): exponential from
// base, capped, with "equal jitter" (half fixed, half random) so that a burst of
// failures does not come back as a burst, yet no retry comes sooner than half its
// step. A Retry-After from the upstream wins when it asks for longer (bounded by
// an hour).
func Backoff(attempt int, base, maxDelay, retryAfter time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, time.Hour)
	}
	return d
}

// Loop runs leased jobs of type J. Claim, Process and Release are required.
type Loop[J any] struct {
	// Name labels log lines ("sweeps", "withdrawals").
	Name string
	// Concurrency is how many jobs run at once (>= 1).
	Concurrency int
	// MaxClaim bounds one claim, whatever the free slots [256].
	MaxClaim int
	// PollInterval is the fallback when no wake-up arrives (retries falling due,
	// a lost LISTEN connection).
	PollInterval time.Duration
	// DrainTimeout is how long Run waits for running jobs after its context ends
	// before abandoning them to lease expiry.
	DrainTimeout time.Duration
	// Wake, when set, makes the loop claim at once (NOTIFY, an in-process nudge).
	Wake <-chan struct{}

	// Claim leases up to limit due jobs.
	Claim func(ctx context.Context, limit int) ([]J, error)
	// Process runs one claimed job to its next recorded state. Its context
	// outlives Run's: a shutdown must not cut a money movement in half; only the
	// drain deadline cancels it.
	Process func(ctx context.Context, job J)
	// Drained, when set, runs once every job has returned (or been abandoned),
	// before the leases are released (flush buffered outcomes there).
	Drained func()
	// Release hands back every lease this process still holds, so another
	// replica takes the jobs over at once instead of after the lease.
	Release func(ctx context.Context) (int, error)

	Log *zap.Logger
}

// Run claims and processes jobs until ctx ends, then stops claiming, waits up to
// DrainTimeout for running jobs, and releases the leases it still holds.
func (l *Loop[J]) Run(ctx context.Context) error {
	if l.Claim == nil || l.Process == nil || l.Release == nil || l.Concurrency < 1 || l.PollInterval <= 0 {
		return errors.New("jobs: Claim, Process, Release, Concurrency and PollInterval are required")
	}
	log := l.Log
	if log == nil {
		log = zap.NewNop()
	}
	maxClaim := l.MaxClaim
	if maxClaim <= 0 {
		maxClaim = 256
	}
	workCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()

	slots := make(chan struct{}, l.Concurrency)
	freed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	ticker := time.NewTicker(l.PollInterval)
	defer ticker.Stop()

	// due means there may be jobs to claim: at start, after a wake-up or a poll
	// tick, and after a claim that came back full. It survives while every slot is
	// busy, so the next freed slot claims at once instead of waiting for the tick.
	due := true
	for ctx.Err() == nil {
		if free := l.Concurrency - len(slots); due && free > 0 {
			want := min(free, maxClaim)
			jobs, err := l.Claim(ctx, want)
			if err != nil && ctx.Err() == nil {
				log.Warn("claim "+l.Name, zap.Error(err))
			}
			for _, job := range jobs {
				slots <- struct{}{}
				wg.Add(1)
				go func(job J) {
					defer func() {
						<-slots
						wg.Done()
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					l.Process(workCtx, job)
				}(job)
			}
			// A full batch means more may be due; otherwise the queue is drained
			// until the next wake-up or tick.
			due = err == nil && len(jobs) == want
			if due && len(slots) < l.Concurrency {
				continue
			}
		}
		select {
		case <-ctx.Done():
		case <-l.Wake:
			due = true
		case <-ticker.C:
			due = true
		case <-freed:
		}
	}

	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(l.DrainTimeout):
		log.Warn("drain timeout: abandoning running " + l.Name + " to lease expiry")
		abandon()
		<-drained
	}
	if l.Drained != nil {
		l.Drained()
	}
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if n, err := l.Release(relCtx); err != nil {
		log.Warn("release "+l.Name+" leases", zap.Error(err))
	} else if n > 0 {
		log.Info("released "+l.Name+" leases", zap.Int("count", n))
	}
	return nil
}
