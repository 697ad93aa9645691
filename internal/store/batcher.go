package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

const commitTimeout = 15 * time.Second

// ErrClosed is returned by a Batcher that is shutting down.
var ErrClosed = errors.New("store: batcher closed")

// BatcherOptions tune group commit.
type BatcherOptions struct {
	// MaxBatch caps items per transaction [64].
	MaxBatch int
	// Committers caps the transactions open at once [2]. While one commits (its
	// single round trip, WAL flush included), arrivals gather for the next, so
	// batches form by themselves under load and cost nothing when idle: no timer
	// ever delays a lone item, which goes out at once when nothing is committing.
	Committers int
	// ParallelAt is how many items must be waiting before another transaction
	// opens beside a running one [MaxBatch/4]. Below it they wait for the running
	// one to finish and go out together: on a small database server that means
	// fewer, larger commits and less CPU per item; above it, one transaction at a
	// time could no longer keep up, and a second runs in parallel
	// (docs/PERFORMANCE.md).
	ParallelAt int
	// OnBatch observes each committed batch's size (metrics).
	OnBatch func(n int)
}

func (o *BatcherOptions) defaults() {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.Committers <= 0 {
		o.Committers = 2
	}
	if o.ParallelAt <= 0 {
		o.ParallelAt = max(1, o.MaxBatch/4)
	}
}

// Batcher records concurrent deliveries in shared transactions (group commit),
// answering each caller only after the transaction holding its delivery commits.
type Batcher struct {
	gc *groupCommit[Delivery, Effect]
}

// NewBatcher starts the committers.
func NewBatcher(st *Store, opts BatcherOptions) *Batcher {
	return &Batcher{gc: newGroupCommit(opts, st.IngestBatch, st.Ingest)}
}

// Ingest records d and returns once it is committed (or failed).
func (b *Batcher) Ingest(ctx context.Context, d Delivery) (Effect, error) { return b.gc.do(ctx, d) }

// Close stops accepting deliveries and waits for queued ones to commit.
func (b *Batcher) Close() { b.gc.close() }

// groupCommit runs concurrent calls of an all-or-nothing batch operation in
// shared transactions, answering each caller only after its batch committed. One
// dispatcher gathers arrivals and hands batches to the committers.
type groupCommit[T, R any] struct {
	opts BatcherOptions
	// batch records items in one transaction: all or none, results in item order.
	batch func(ctx context.Context, items []T) ([]R, error)
	// one records a single item, when a batch failed and its items are retried
	// apart so that one bad item cannot fail its neighbours.
	one      func(ctx context.Context, item T) (R, error)
	reqs     chan *gcReq[T, R]
	work     chan []*gcReq[T, R] // dispatcher -> an idle committer
	finished chan struct{}       // a committer -> dispatcher: one batch done
	wg       sync.WaitGroup
	mu       sync.RWMutex
	closed   bool
}

type gcReq[T, R any] struct {
	ctx  context.Context
	item T
	res  R
	err  error
	done chan struct{}
}

func newGroupCommit[T, R any](opts BatcherOptions, batch func(context.Context, []T) ([]R, error),
	one func(context.Context, T) (R, error)) *groupCommit[T, R] {
	opts.defaults()
	g := &groupCommit[T, R]{opts: opts, batch: batch, one: one,
		reqs:     make(chan *gcReq[T, R], opts.MaxBatch*opts.Committers),
		work:     make(chan []*gcReq[T, R]),
		finished: make(chan struct{}, opts.Committers),
	}
	for i := 0; i < opts.Committers; i++ {
		g.wg.Add(1)
		go g.committer()
	}
	g.wg.Add(1)
	go g.dispatch()
	return g
}

func (g *groupCommit[T, R]) do(ctx context.Context, item T) (R, error) {
	r := &gcReq[T, R]{ctx: ctx, item: item, done: make(chan struct{})}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return r.res, ErrClosed
	}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		g.mu.RUnlock()
		return r.res, ctx.Err()
	}
	g.mu.RUnlock()
	// Wait for the outcome even if ctx ends: the transaction may already be
	// committing, and the caller must not be told "failed" for an item that is in
	// fact stored (for a webhook, a duplicate redelivery would then be its only record).
	<-r.done
	return r.res, r.err
}

func (g *groupCommit[T, R]) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	close(g.reqs)
	g.mu.Unlock()
	g.wg.Wait()
}

func (g *groupCommit[T, R]) committer() {
	defer g.wg.Done()
	for b := range g.work {
		g.commit(b)
		g.finished <- struct{}{}
	}
}

// dispatch gathers arrivals into the next batch and hands it to an idle committer
// as soon as nothing is committing, or beside a running commit once ParallelAt
// items wait. It ends, and stops the committers, when the queue is closed and
// everything in it is committed.
func (g *groupCommit[T, R]) dispatch() {
	defer g.wg.Done()
	defer close(g.work)
	in := g.reqs
	busy := 0
	var pending []*gcReq[T, R]
	for {
		if len(pending) > 0 && busy < g.opts.Committers && (busy == 0 || len(pending) >= g.opts.ParallelAt) {
			g.work <- pending // a committer is idle: it takes this at once
			busy++
			pending = nil
			continue
		}
		if in == nil && len(pending) == 0 && busy == 0 {
			return
		}
		recv := in
		if len(pending) >= g.opts.MaxBatch {
			recv = nil // full: wait for a committer
		}
		select {
		case r, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			pending = append(pending, r)
			// Take whatever else is already queued, so that a burst goes out as one batch.
		drain:
			for len(pending) < g.opts.MaxBatch {
				select {
				case r, ok := <-in:
					if !ok {
						in = nil
						break drain
					}
					pending = append(pending, r)
				default:
					break drain
				}
			}
		case <-g.finished:
			busy--
		}
	}
}

func (g *groupCommit[T, R]) commit(batch []*gcReq[T, R]) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// The caller gave up before we started: nothing was written, say so.
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	items := make([]T, len(live))
	for i, r := range live {
		items[i] = r.item
	}
	// The transaction runs under its own context: one impatient caller must not
	// roll back the others' items.
	// Bounded, because a hung database must turn into an error (a webhook answers
	// 503 and Interlace retries), not into callers waiting forever.
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	results, err := g.batch(ctx, items)
	if err != nil && len(live) > 1 && !errors.Is(err, ErrUnavailable) {
		// One bad item must not fail its neighbours: record them one by one.
		for _, r := range live {
			r.res, r.err = g.one(ctx, r.item)
			close(r.done)
		}
		if g.opts.OnBatch != nil {
			g.opts.OnBatch(1)
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.err = err
		} else {
			r.res = results[i]
		}
		close(r.done)
	}
	if err == nil && g.opts.OnBatch != nil {
		g.opts.OnBatch(len(live))
	}
}
