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
	// MaxBatch caps deliveries per transaction [64].
	MaxBatch int
	// Committers is how many transactions may be open at once [4]. While one
	// commits (waiting on the WAL flush), new arrivals gather for the next, so
	// batches form by themselves under load and cost nothing when idle: no timer
	// ever delays a lone delivery.
	Committers int
	// OnBatch observes each committed batch's size (metrics).
	OnBatch func(n int)
}

// Batcher records concurrent deliveries in shared transactions (group commit),
// answering each caller only after the transaction holding its delivery commits.
type Batcher struct {
	st      *Store
	opts    BatcherOptions
	reqs    chan *ingestReq
	wg      sync.WaitGroup
	mu      sync.RWMutex
	closed  bool
}

type ingestReq struct {
	ctx    context.Context
	d      Delivery
	effect Effect
	err    error
	done   chan struct{}
}

// NewBatcher starts the committers.
func NewBatcher(st *Store, opts BatcherOptions) *Batcher {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	if opts.Committers <= 0 {
		opts.Committers = 4
	}
	b := &Batcher{st: st, opts: opts, reqs: make(chan *ingestReq, opts.MaxBatch*opts.Committers)}
	for i := 0; i < opts.Committers; i++ {
		b.wg.Add(1)
		go b.run()
	}
	return b
}

// Ingest records d and returns once it is committed (or failed).
func (b *Batcher) Ingest(ctx context.Context, d Delivery) (Effect, error) {
	r := &ingestReq{ctx: ctx, d: d, done: make(chan struct{})}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return "", ErrClosed
	}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.mu.RUnlock()
		return "", ctx.Err()
	}
	b.mu.RUnlock()
	// Wait for the outcome even if ctx ends: the transaction may already be
	// committing, and the caller must not be told "failed" for a delivery that is
	// in fact stored (a duplicate redelivery would then be the only record).
	<-r.done
	return r.effect, r.err
}

// Close stops accepting deliveries and waits for queued ones to commit.
func (b *Batcher) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.reqs)
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Batcher) run() {
	defer b.wg.Done()
	batch := make([]*ingestReq, 0, b.opts.MaxBatch)
	for first := range b.reqs {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < b.opts.MaxBatch {
			select {
			case r, ok := <-b.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.commit(batch)
	}
}

func (b *Batcher) commit(batch []*ingestReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// The sender gave up before we started: nothing was written, say so.
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ds := make([]Delivery, len(live))
	for i, r := range live {
		ds[i] = r.d
	}
	// The transaction runs under its own context: one impatient sender must not
	// roll back the others' deliveries.
	// Bounded, because a hung database must turn into a 503 (Interlace retries),
	// not into senders waiting forever.
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	effects, err := b.st.IngestBatch(ctx, ds)
	if err != nil && len(live) > 1 && !errors.Is(err, ErrUnavailable) {
		// One bad delivery must not fail its neighbours: record them one by one.
		for _, r := range live {
			r.effect, r.err = b.st.Ingest(ctx, r.d)
			close(r.done)
		}
		if b.opts.OnBatch != nil {
			b.opts.OnBatch(1)
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.err = err
		} else {
			r.effect = effects[i]
		}
		close(r.done)
	}
	if err == nil && b.opts.OnBatch != nil {
		b.opts.OnBatch(len(live))
	}
}
