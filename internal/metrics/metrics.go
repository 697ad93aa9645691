// Package metrics defines every Prometheus series sweeper exports (contract §3).
// One registry per process, passed in; no default-registry globals. Every method
// is safe on a nil *Metrics, so packages and tests that do not care can pass nil.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors.
type Metrics struct {
	webhooks       *prometheus.CounterVec
	deposits       *prometheus.CounterVec
	sweeps         *prometheus.CounterVec
	sweepDuration  prometheus.Histogram
	upstream       *prometheus.CounterVec
	upstreamDur    *prometheus.HistogramVec
	tokenRefreshes prometheus.Counter
	ingestBatch    prometheus.Histogram
	workflows      *prometheus.CounterVec
	stuck          prometheus.Gauge
	truth          *truthMetrics
	unresolved     unresolvedGauges
}

// QueueStats is read at scrape time for the queue gauges.
type QueueStats func(ctx context.Context) (depth int, oldest time.Duration, err error)

// New registers every series on reg. queue may be nil (no queue gauges).
func New(reg prometheus.Registerer, queue QueueStats) *Metrics {
	m := &Metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sweeper_webhooks_received_total",
			Help: "Webhook deliveries by outcome (deposit, ignored, unusable, duplicate, bad_signature, too_large, bad_request, unavailable).",
		}, []string{"outcome"}),
		deposits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sweeper_deposits_total",
			Help: "Deposit state changes recorded, by the status reached (pending, final, failed, unknown).",
		}, []string{"status"}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sweeper_sweeps_total",
			Help: "Sweep attempt outcomes (succeeded, retry, failed, in_progress, lease_lost, unresolved).",
		}, []string{"outcome"}),
		sweepDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sweeper_sweep_duration_seconds",
			Help:    "Time from the deposit's final webhook commit to the transfer being done.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sweeper_upstream_requests_total",
			Help: "Interlace API calls by endpoint and HTTP code (or timeout/network).",
		}, []string{"endpoint", "code"}),
		upstreamDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sweeper_upstream_request_duration_seconds",
			Help:    "Interlace API call latency by endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		tokenRefreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sweeper_token_refreshes_total",
			Help: "OAuth access tokens fetched.",
		}),
		ingestBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sweeper_ingest_batch_size",
			Help:    "Webhook deliveries committed per transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		workflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sweeper_withdrawals_total",
			Help: "Withdrawal workflow step outcomes.",
		}, []string{"step", "outcome"}),
	}
	m.stuck = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sweeper_sweeps_stuck",
		Help: "Sweeps still pending or in flight longer than the stuck bound (15m) after their deposit became final, plus deposits waiting over 1h (not final, or waiting for Interlace's record); set by the processes that run the sweep worker.",
	})
	m.unresolved = newUnresolved()
	reg.MustRegister(m.webhooks, m.deposits, m.sweeps, m.sweepDuration, m.upstream, m.upstreamDur,
		m.tokenRefreshes, m.ingestBatch, m.workflows, m.stuck, m.unresolved.sweeps, m.unresolved.withdrawals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if queue != nil {
		reg.MustRegister(newQueueCollector(queue))
	}
	m.truth = newTruthMetrics(reg)
	// Create the known series at zero, so that the first failure after a restart
	// is an increase() that alerts can see, not a series appearing from nowhere.
	for _, o := range []string{"deposit", "ignored", "unusable", "unverified", "duplicate", "bad_signature", "too_large", "bad_request", "unavailable"} {
		m.webhooks.WithLabelValues(o)
	}
	for _, s := range []string{"pending", "final", "failed", "unknown", "needs_review"} {
		m.deposits.WithLabelValues(s)
	}
	for _, o := range []string{"succeeded", "retry", "failed", "in_progress", "lease_lost", "unresolved"} {
		m.sweeps.WithLabelValues(o)
	}
	return m
}

// Webhook counts one delivery.
func (m *Metrics) Webhook(outcome string) {
	if m != nil {
		m.webhooks.WithLabelValues(outcome).Inc()
	}
}

// Deposit counts a deposit reaching status.
func (m *Metrics) Deposit(status string) {
	if m != nil {
		m.deposits.WithLabelValues(status).Inc()
	}
}

// Sweep counts a sweep attempt outcome; for succeeded, sinceCommit feeds the histogram.
func (m *Metrics) Sweep(outcome string, sinceCommit time.Duration) {
	if m == nil {
		return
	}
	m.sweeps.WithLabelValues(outcome).Inc()
	if outcome == "succeeded" && sinceCommit > 0 {
		m.sweepDuration.Observe(sinceCommit.Seconds())
	}
}

// Upstream records one Interlace call; it matches interlace.Config.Observe.
func (m *Metrics) Upstream(endpoint, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(endpoint, code).Inc()
	m.upstreamDur.WithLabelValues(endpoint).Observe(d.Seconds())
}

// TokenRefresh counts a fetched token.
func (m *Metrics) TokenRefresh() {
	if m != nil {
		m.tokenRefreshes.Inc()
	}
}

// IngestBatch records how many deliveries one commit carried.
func (m *Metrics) IngestBatch(n int) {
	if m != nil {
		m.ingestBatch.Observe(float64(n))
	}
}

// Withdrawal counts a withdrawal workflow step outcome.
func (m *Metrics) Withdrawal(step, outcome string) {
	if m != nil {
		m.workflows.WithLabelValues(step, outcome).Inc()
	}
}

// SweepsStuck sets the number of stuck sweeps (see sweep.StuckMonitor).
func (m *Metrics) SweepsStuck(n int) {
	if m != nil {
		m.stuck.Set(float64(n))
	}
}

type queueCollector struct {
	stats  QueueStats
	depth  *prometheus.Desc
	oldest *prometheus.Desc
	up     *prometheus.Desc
}

func newQueueCollector(stats QueueStats) *queueCollector {
	return &queueCollector{
		stats:  stats,
		depth:  prometheus.NewDesc("sweeper_queue_depth", "Sweeps pending or in flight.", nil, nil),
		oldest: prometheus.NewDesc("sweeper_queue_oldest_age_seconds", "Age of the oldest sweep not yet done, since its deposit became final.", nil, nil),
		up:     prometheus.NewDesc("sweeper_queue_stats_up", "1 when the queue gauges could be read from the database.", nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldest
	ch <- c.up
}

// Collect queries the database at scrape time: the queue lives there, not in
// memory, and every replica reports the same shared figure.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	depth, oldest, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(depth))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest.Seconds())
}
