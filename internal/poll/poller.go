package poll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/jobs"
	"github.com/sweeperhq/sweeper/internal/store"
)

// PollName is the poller's row in poll_state.
const PollName = "transfers"

// PollerConfig tunes the backfill poller. Zero values take the defaults in brackets.
type PollerConfig struct {
	// Owner names this process in poll_state.last_owner [required].
	Owner string
	// Interval is how often the cluster reads the transfer list
	// (SWEEPER_POLL_INTERVAL) [5m]. Shorter finds a lost deposit sooner and costs
	// one list call (or more, under heavy volume) per interval.
	Interval time.Duration
	// Overlap is how far before the cursor each poll starts again [10m]: a
	// transfer that became visible in the list late (or was created just before
	// the last window closed) is still read. Re-reading costs nothing: an
	// identical record is a duplicate delivery.
	Overlap time.Duration
	// Lookback is how far back the very first poll reads [24h], covering
	// Interlace's ~4¾ h of webhook retries with margin.
	Lookback time.Duration
	// Chunk is the largest window one series of pages covers [Lookback]; the
	// cursor advances chunk by chunk, so a poll that fails after days of backlog
	// keeps what it read. Not smaller by default: should Interlace ignore the
	// window, every chunk would read the same pages again.
	Chunk time.Duration
	// MaxPages bounds the pages read per chunk [100, i.e. 10,000 transfers].
	MaxPages int
	// WaitingAfter: deposits waiting (pending/unknown) longer than this are read
	// back one by one [1h]; at most WaitingBatch per poll [100].
	WaitingAfter time.Duration
	WaitingBatch int
	// MinGap is the least time between two polls that a wake-up (a legacy-envelope
	// delivery) may start, cluster-wide [5s]: a flood of them costs Interlace at
	// most one poll per MinGap.
	MinGap time.Duration
	// RetryBase is the first delay after a failed poll [5s]; failures back off
	// exponentially with jitter up to Interval.
	RetryBase time.Duration
}

func (c *PollerConfig) defaults() error {
	if c.Owner == "" {
		return errors.New("poll: Owner is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Interval, 5*time.Minute)
	def(&c.Overlap, 10*time.Minute)
	def(&c.Lookback, 24*time.Hour)
	def(&c.Chunk, c.Lookback)
	def(&c.WaitingAfter, time.Hour)
	def(&c.MinGap, 5*time.Second)
	def(&c.RetryBase, 5*time.Second)
	if c.MaxPages <= 0 {
		c.MaxPages = 100
	}
	if c.WaitingBatch <= 0 {
		c.WaitingBatch = 100
	}
	return nil
}

// Poller is the backfill poller of contract §9. Every replica runs one; a
// PostgreSQL advisory lock elects the one that polls, and poll_state (cursor,
// last success, last error) makes the cluster poll once per Interval whichever
// replica does it, across restarts.
type Poller struct {
	cfg  PollerConfig
	r    *Reader
	wake chan struct{}
	now  func() time.Time
}

// NewPoller builds a poller over r.
func NewPoller(cfg PollerConfig, r *Reader) (*Poller, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Poller{cfg: cfg, r: r, wake: make(chan struct{}, 1), now: time.Now}, nil
}

// Wake asks for a poll soon (coalesced: see MinGap). It never blocks.
func (p *Poller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends. Scheduling only: one poll is RunOnce.
func (p *Poller) Run(ctx context.Context) {
	go p.r.store.Listen(ctx, store.PollChannel, p.wake, nil)
	timer := time.NewTimer(jitter(2 * time.Second)) // soon after start, not all replicas at once
	defer timer.Stop()
	failures := 0
	for {
		woken := false
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.wake:
			woken = true
			timer.Stop()
		}
		err := p.RunOnce(ctx, woken)
		if ctx.Err() != nil {
			return
		}
		next := p.cfg.Interval
		if err != nil {
			failures++
			next = min(jobs.Backoff(failures, p.cfg.RetryBase, p.cfg.Interval, 0), p.cfg.Interval)
		} else {
			failures = 0
		}
		timer.Reset(next)
	}
}

// ErrNotElected: another replica holds the poll lock, or polled recently enough.
var ErrNotElected = errors.New("poll: another replica polls")

// RunOnce polls if this replica wins the election and the cluster's last poll
// is due (woken: MinGap after the last start; otherwise half an Interval after the
// last success), and records the outcome in poll_state, the metrics and the log.
// It returns nil when it had nothing to do.
func (p *Poller) RunOnce(ctx context.Context, woken bool) error {
	lock, ok, err := p.r.store.TryPollLock(ctx, PollName)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	defer lock.Unlock()
	st, err := p.r.store.GetPollState(ctx, PollName)
	if err != nil {
		return err
	}
	now := p.now()
	if woken && st.LastStartedAt != nil && now.Sub(*st.LastStartedAt) < p.cfg.MinGap {
		// Coalesced: a poll started moments ago; ask again after the gap so that
		// what this wake-up announced is read.
		time.AfterFunc(p.cfg.MinGap-now.Sub(*st.LastStartedAt), p.Wake)
		return nil
	}
	if !woken && st.LastSuccessAt != nil && now.Sub(*st.LastSuccessAt) < p.cfg.Interval/2 {
		return nil
	}
	if err := p.r.store.PollStarted(ctx, PollName, p.cfg.Owner); err != nil {
		return err
	}
	start := time.Now()
	read, found, pollErr := p.PollOnce(ctx, st)
	log := p.r.log.With(zap.Int("read", read), zap.Int("found", found), zap.Duration("duration", time.Since(start)),
		zap.Bool("woken", woken))
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if pollErr != nil {
		st, err := p.r.store.PollFailed(recCtx, PollName, pollErr.Error())
		last := time.Time{}
		if st.LastSuccessAt != nil {
			last = *st.LastSuccessAt
		}
		p.r.metrics.Poll(false, found, st.ConsecutiveFailures, last)
		log.Warn("poll of Interlace's transfers failed", zap.Error(pollErr),
			zap.Int("consecutive_failures", st.ConsecutiveFailures))
		return errors.Join(pollErr, err)
	}
	st, err = p.r.store.PollSucceeded(recCtx, PollName, read, found)
	if err != nil {
		return err
	}
	p.r.metrics.Poll(true, found, 0, *st.LastSuccessAt)
	if found > 0 {
		log.Warn("poll found deposits no notification brought")
	} else {
		log.Info("poll of Interlace's transfers done")
	}
	return nil
}

// PollOnce is one poll, whoever schedules it: read the transfer list from the
// cursor (minus the overlap) to now, chunk by chunk, page by page (100 a page),
// recording every deposit; advance the cursor after each complete chunk; then
// read back the deposits waiting longer than WaitingAfter. found counts the
// deposits no notification had brought.
func (p *Poller) PollOnce(ctx context.Context, st store.PollState) (read, found int, err error) {
	now := p.now()
	from := now.Add(-p.cfg.Lookback)
	if st.Cursor != nil {
		from = st.Cursor.Add(-p.cfg.Overlap)
	}
	for from.Before(now) {
		to := from.Add(p.cfg.Chunk)
		if to.After(now) {
			to = now
		}
		n, f, err := p.window(ctx, from, to)
		read, found = read+n, found+f
		if err != nil {
			return read, found, err
		}
		if err := p.r.store.PollAdvance(ctx, PollName, to); err != nil {
			return read, found, err
		}
		from = to
	}
	waiting, err := p.r.store.WaitingDeposits(ctx, p.cfg.WaitingAfter, p.cfg.WaitingBatch)
	if err != nil {
		return read, found, err
	}
	for _, id := range waiting {
		_, ok, err := p.r.ReadOne(ctx, id)
		switch {
		case err != nil && interlace.IsRetryable(err):
			return read, found, fmt.Errorf("poll: re-read waiting deposit %s: %w", id, err)
		case err != nil || !ok:
			// Interlace refuses this one id (unknown to it, say): the deposit keeps
			// waiting, visible as stuck; the poll itself is fine.
			p.r.log.Warn("waiting deposit not read back", zap.String("deposit_id", id), zap.Bool("found", ok), zap.Error(err))
		default:
			read++
		}
	}
	return read, found, nil
}

func (p *Poller) window(ctx context.Context, from, to time.Time) (read, found int, err error) {
	for page := 1; page <= p.cfg.MaxPages; page++ {
		pg, err := p.r.up.ListTransfers(ctx, interlace.ListTransfersParams{
			AccountID: p.r.accountID, Start: from, End: to, Page: page, Limit: interlace.MaxTransferPageSize,
		})
		if err != nil {
			return read, found, fmt.Errorf("poll: list transfers %s..%s page %d: %w",
				from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), page, err)
		}
		out, err := p.r.record(ctx, pg.List)
		if err != nil {
			return read, found, err
		}
		read += len(pg.List)
		for _, rec := range out {
			if rec.Effect == store.EffectCreated {
				found++
			}
		}
		total := int64(pg.Total)
		if len(pg.List) < interlace.MaxTransferPageSize || (total > 0 && int64(page*interlace.MaxTransferPageSize) >= total) ||
			olderThan(pg.List, from) {
			return read, found, nil
		}
	}
	return read, found, fmt.Errorf("poll: more than %d pages between %s and %s", p.cfg.MaxPages,
		from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
}

func jitter(d time.Duration) time.Duration { return jobs.Backoff(1, d, d, 0) }
