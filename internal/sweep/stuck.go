package sweep

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/store"
)

// StuckConfig tunes the stuck-sweep check. Zero values take the defaults in brackets.
type StuckConfig struct {
	// Bound is how long after its deposit became final a sweep may still be
	// pending or in flight before it counts as stuck [15m]. With the default
	// 5-minute backoff cap that is several failed attempts in a row, or a worker
	// that died holding a lease nobody took over.
	Bound time.Duration
	// Every is how often the check runs [1m].
	Every time.Duration
	// Sample is how many stuck sweeps get a log line of their own per check [10].
	Sample int
}

// StuckMonitor makes sweeps that do not finish visible: the gauge
// sweeper_sweeps_stuck, a warning per stuck sweep (deposit id, status, attempts,
// age, last error), and the rows themselves in sweep_ledger (sweep_status
// pending or in_flight). It never changes a sweep: a stuck one needs a human or
// a healthy upstream, not a second request under a new id.
type StuckMonitor struct {
	cfg     StuckConfig
	store   *store.Store
	log     *zap.Logger
	metrics *metrics.Metrics
	was     int
}

// NewStuckMonitor builds a monitor; m may be nil.
func NewStuckMonitor(cfg StuckConfig, st *store.Store, log *zap.Logger, m *metrics.Metrics) *StuckMonitor {
	if cfg.Bound <= 0 {
		cfg.Bound = 15 * time.Minute
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Sample <= 0 {
		cfg.Sample = 10
	}
	return &StuckMonitor{cfg: cfg, store: st, log: log, metrics: m}
}

// Run checks at once and then every cfg.Every until ctx ends.
func (s *StuckMonitor) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		if _, err := s.Check(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("stuck sweep check failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check runs one pass: it sets the gauge and logs, and returns the number of
// stuck sweeps.
func (s *StuckMonitor) Check(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, sample, err := s.store.StuckSweeps(ctx, s.cfg.Bound, s.cfg.Sample)
	if err != nil {
		return 0, err
	}
	// Deposits waiting over an hour (not final, or final and waiting for
	// Interlace's record) are stuck too (contract §9), and the states that wait
	// for a person are counted for their alerts.
	att, err := s.store.AttentionCounts(ctx)
	if err != nil {
		return 0, err
	}
	s.metrics.Attention("held", att.Held)
	s.metrics.Attention("needs_review", att.NeedsReview)
	s.metrics.Attention("unresolved", att.Unresolved)
	s.metrics.Attention("stuck_waiting", att.StuckWaiting)
	if att.StuckWaiting > 0 {
		s.log.Warn("deposits waiting over an hour", zap.Int("count", att.StuckWaiting))
	}
	n += att.StuckWaiting
	s.metrics.SweepsStuck(n)
	// Unresolved sweeps and withdrawals are counted here too: they never change by
	// themselves, so a once-a-minute figure is as good as a scrape-time one.
	us, uw, err := s.store.UnresolvedCounts(ctx)
	if err != nil {
		return n, err
	}
	s.metrics.Unresolved(us, uw)
	if us+uw > 0 {
		s.log.Warn("unresolved: money may have moved; an operator must resolve each",
			zap.Int("sweeps", us), zap.Int("withdrawals", uw))
	}
	switch {
	case n > 0:
		s.log.Warn("sweeps stuck", zap.Int("count", n), zap.Duration("bound", s.cfg.Bound))
		for _, st := range sample {
			s.log.Warn("sweep stuck", zap.String("deposit_id", st.DepositID), zap.String("status", st.Status),
				zap.Int("attempts", st.Attempts), zap.Duration("age", st.Age.Round(time.Second)),
				zap.Duration("in_flight_for", st.InFlightFor.Round(time.Second)), zap.String("last_error", st.LastError))
		}
	case s.was > 0:
		s.log.Info("no sweep stuck any more", zap.Duration("bound", s.cfg.Bound))
	}
	s.was = n
	return n, nil
}
