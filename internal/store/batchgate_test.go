package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/store"
)

// batchGate stands in front of a group commit's real batch operation: every batch announces its size on
// arrived and waits at the door until release is closed, then runs for real; ran keeps each batch's size and
// error. With the dispatcher's rules (a second transaction opens beside a running one only once ParallelAt
// items wait), holding the first batch at the door makes the next batch's size a certainty instead of a
// matter of timing.
type batchGate struct {
	arrived chan int
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	ran     []batchRun
}

type batchRun struct {
	size int
	err  error
}

// newBatchGate returns a closed door; it opens at the end of the test whatever happens, so that a failed
// test does not leave batches (and Close) waiting forever.
func newBatchGate(t *testing.T) *batchGate {
	g := &batchGate{arrived: make(chan int, 1024), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

// open lets every waiting and future batch run.
func (g *batchGate) open() { g.once.Do(func() { close(g.release) }) }

func gateBatches[T, R any](g *batchGate) func(store.BatchFunc[T, R]) store.BatchFunc[T, R] {
	return func(real store.BatchFunc[T, R]) store.BatchFunc[T, R] {
		return func(ctx context.Context, items []T) ([]R, error) {
			g.arrived <- len(items)
			<-g.release
			res, err := real(ctx, items)
			g.mu.Lock()
			g.ran = append(g.ran, batchRun{size: len(items), err: err})
			g.mu.Unlock()
			return res, err
		}
	}
}

// next waits for the next batch to reach the door and returns its size.
func (g *batchGate) next(t *testing.T) int {
	t.Helper()
	select {
	case n := <-g.arrived:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no batch reached the batch operation within 10s (were the items committed apart?)")
		return 0
	}
}

// runs returns the batches that ran, in the order they finished.
func (g *batchGate) runs() []batchRun {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]batchRun(nil), g.ran...)
}

// failedRuns returns the sizes of the batches whose transaction failed.
func (g *batchGate) failedRuns() []int {
	var out []int
	for _, r := range g.runs() {
		if r.err != nil {
			out = append(out, r.size)
		}
	}
	return out
}
