package jobs

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// queue is a fake source of due jobs, in memory: the loop is scheduling only,
// the claims themselves are the store's (tested there on PostgreSQL).
type queue struct {
	mu       sync.Mutex
	due      []int
	released atomic.Int32
}

func (q *queue) claim(_ context.Context, limit int) ([]int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(limit, len(q.due))
	out := append([]int(nil), q.due[:n]...)
	q.due = q.due[n:]
	return out, nil
}

func (q *queue) add(ids ...int) {
	q.mu.Lock()
	q.due = append(q.due, ids...)
	q.mu.Unlock()
}

func TestLoop(t *testing.T) {
	t.Run("WakeClaimsAtOnceAndSlotsBoundConcurrency", func(t *testing.T) {
		t.Parallel()
		q := &queue{}
		wake := make(chan struct{}, 1)
		var running, peak atomic.Int32
		done := make(chan int, 100)
		l := Loop[int]{Name: "t", Concurrency: 3, PollInterval: time.Hour, DrainTimeout: time.Second, Wake: wake,
			Claim: q.claim,
			Process: func(ctx context.Context, j int) {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				running.Add(-1)
				done <- j
			},
			Release: func(context.Context) (int, error) { q.released.Add(1); return 0, nil },
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { _ = l.Run(ctx); close(stopped) }()
		time.Sleep(20 * time.Millisecond) // the first claim found nothing; only a wake-up can start work now
		q.add(1, 2, 3, 4, 5, 6, 7)
		wake <- struct{}{}
		deadline := time.After(2 * time.Second)
		for i := 0; i < 7; i++ {
			select {
			case <-done:
			case <-deadline:
				t.Fatalf("only %d of 7 jobs ran: a wake-up (or a freed slot) did not claim", i)
			}
		}
		if p := peak.Load(); p > 3 {
			t.Fatalf("%d jobs ran at once with 3 slots", p)
		}
		cancel()
		<-stopped
		if q.released.Load() != 1 {
			t.Fatal("leases not released at shutdown")
		}
	})

	t.Run("ShutdownDrainsRunningJobsThenAbandonsAtTheDeadline", func(t *testing.T) {
		t.Parallel()
		q := &queue{due: []int{1, 2}}
		var finished, abandoned atomic.Int32
		l := Loop[int]{Name: "t", Concurrency: 2, PollInterval: 5 * time.Millisecond, DrainTimeout: 150 * time.Millisecond,
			Claim: q.claim,
			Process: func(ctx context.Context, j int) {
				d := 50 * time.Millisecond
				if j == 2 {
					d = time.Hour // a transfer stuck upstream
				}
				select {
				case <-time.After(d):
					finished.Add(1)
				case <-ctx.Done():
					abandoned.Add(1)
				}
			},
			Release: func(context.Context) (int, error) { q.released.Add(1); return 1, nil },
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { _ = l.Run(ctx); close(stopped) }()
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		cancel() // the shutdown signal must not cut the running jobs...
		<-stopped
		if finished.Load() != 1 || abandoned.Load() != 1 {
			t.Fatalf("finished %d abandoned %d", finished.Load(), abandoned.Load())
		}
		// ...only the drain deadline does.
		if el := time.Since(start); el < 140*time.Millisecond || el > time.Second {
			t.Fatalf("drain took %s", el)
		}
		if q.released.Load() != 1 {
			t.Fatal("leases not released after the drain")
		}
	})
}
