package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// truthMetrics are the series of contract §9: conflicts, confirmation, the
// backfill poll, and the deposits that wait for a person.
type truthMetrics struct {
	conflicts     *prometheus.CounterVec
	confirmations *prometheus.CounterVec
	polls         *prometheus.CounterVec
	pollFound     prometheus.Counter
	pollFailures  prometheus.Gauge
	pollLastOK    prometheus.Gauge
	attention     *prometheus.GaugeVec
}

func newTruthMetrics(reg prometheus.Registerer) *truthMetrics {
	t := &truthMetrics{
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sweeper_deposit_conflicts_total",
			Help: "Notifications or records contradicting a final deposit: effect held (before its money moved: the sweep is held) or conflict (after: recorded, needs a person).",
		}, []string{"effect"}),
		confirmations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sweeper_deposit_confirmations_total",
			Help: "Deposits read back from Interlace's records before their money moves, by outcome (confirmed, held, waiting, not_found, error).",
		}, []string{"outcome"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sweeper_polls_total",
			Help: "Backfill polls of Interlace's transfer list run by this process, by outcome (ok, error).",
		}, []string{"outcome"}),
		pollFound: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sweeper_poll_deposits_found_total",
			Help: "Deposits the backfill poll found that no notification had brought.",
		}),
		pollFailures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sweeper_poll_consecutive_failures",
			Help: "Backfill polls that failed in a row (the cluster's, read from poll_state by the process that polls).",
		}),
		pollLastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sweeper_poll_last_success_timestamp_seconds",
			Help: "Unix time of the last successful backfill poll (poll_state.last_success_at); 0 before the first.",
		}),
		attention: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sweeper_deposits_attention",
			Help: "Deposits waiting for a person or stuck, by state: held (sweep held), needs_review (unusable money field), unresolved, stuck_waiting (waiting over 1h, e.g. for Interlace's record).",
		}, []string{"state"}),
	}
	reg.MustRegister(t.conflicts, t.confirmations, t.polls, t.pollFound, t.pollFailures, t.pollLastOK, t.attention)
	for _, e := range []string{"held", "conflict"} {
		t.conflicts.WithLabelValues(e)
	}
	for _, o := range []string{"confirmed", "held", "waiting", "not_found", "error"} {
		t.confirmations.WithLabelValues(o)
	}
	for _, o := range []string{"ok", "error"} {
		t.polls.WithLabelValues(o)
	}
	for _, s := range []string{"held", "needs_review", "unresolved", "stuck_waiting"} {
		t.attention.WithLabelValues(s)
	}
	return t
}

// DepositConflict counts a contradiction of a final deposit (effect held or conflict).
func (m *Metrics) DepositConflict(effect string) {
	if m != nil {
		m.truth.conflicts.WithLabelValues(effect).Inc()
	}
}

// Confirmation counts n deposits read back from Interlace with one outcome.
func (m *Metrics) Confirmation(outcome string, n int) {
	if m != nil && n > 0 {
		m.truth.confirmations.WithLabelValues(outcome).Add(float64(n))
	}
}

// Poll records one backfill poll: its outcome, the deposits it found that no
// notification brought, and the cluster's poll state.
func (m *Metrics) Poll(ok bool, found int, consecutiveFailures int, lastSuccess time.Time) {
	if m == nil {
		return
	}
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	m.truth.polls.WithLabelValues(outcome).Inc()
	m.truth.pollFound.Add(float64(found))
	m.truth.pollFailures.Set(float64(consecutiveFailures))
	if !lastSuccess.IsZero() {
		m.truth.pollLastOK.Set(float64(lastSuccess.Unix()))
	}
}

// Attention sets the number of deposits in one attention state.
func (m *Metrics) Attention(state string, n int) {
	if m != nil {
		m.truth.attention.WithLabelValues(state).Set(float64(n))
	}
}
