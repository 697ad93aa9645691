package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// The dispatcher's rules, with a batch operation that holds each transaction open
// until the test releases it: a lone item goes out at once; while a transaction
// runs, arrivals wait for it unless ParallelAt of them are waiting, in which case
// exactly those open a second transaction; nothing is lost at Close.
func TestGroupCommitDispatch(t *testing.T) {
	t.Parallel()
	started := make(chan []int, 10)
	release := make(chan struct{})
	batch := func(_ context.Context, items []int) ([]int, error) {
		started <- append([]int(nil), items...)
		<-release
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = v * 10
		}
		return out, nil
	}
	one := func(context.Context, int) (int, error) { return 0, errors.New("unexpected single") }
	g := newGroupCommit(BatcherOptions{MaxBatch: 16, Committers: 2, ParallelAt: 4}, batch, one)

	var wg sync.WaitGroup
	results := make([]int, 8)
	send := func(v int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.do(context.Background(), v)
			if err != nil {
				t.Errorf("item %d: %v", v, err)
			}
			results[v] = r
		}()
	}
	// A dispatcher that stopped forming batches must fail here, not hang the package.
	next := func() []int {
		t.Helper()
		select {
		case b := <-started:
			return b
		case <-time.After(10 * time.Second):
			t.Fatal("no batch reached the batch operation within 10s (were the items committed apart?)")
			return nil
		}
	}
	send(0)
	if b := next(); len(b) != 1 || b[0] != 0 {
		t.Fatalf("first batch %v, want the lone item at once", b)
	}
	// Three wait behind the running transaction; the fourth reaches ParallelAt.
	for v := 1; v <= 4; v++ {
		send(v)
	}
	if b := next(); len(b) != 4 {
		t.Fatalf("second batch %v, want exactly the 4 waiting items", b)
	}
	// Both committers busy: these wait, however many.
	for v := 5; v <= 7; v++ {
		send(v)
	}
	close(release)
	wg.Wait()
	g.close()
	for v, r := range results {
		if r != v*10 {
			t.Fatalf("item %d answered %d", v, r)
		}
	}
	if _, err := g.do(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}
