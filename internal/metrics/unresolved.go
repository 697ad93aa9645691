package metrics

import "github.com/prometheus/client_golang/prometheus"

// unresolvedGauges are sweeper_sweeps_unresolved and sweeper_withdrawals_unresolved:
// the database's count of jobs whose money may have moved and that wait for an
// operator. Every replica reports the same figure: alert on max, not sum.
type unresolvedGauges struct{ sweeps, withdrawals prometheus.Gauge }

func newUnresolved() unresolvedGauges {
	return unresolvedGauges{
		sweeps: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sweeper_sweeps_unresolved",
			Help: "Sweeps that are unresolved: the money may have moved; an operator resolves each with POST /v1/deposits/{id}/resolve. Set by the processes that run the sweep worker.",
		}),
		withdrawals: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sweeper_withdrawals_unresolved",
			Help: "Withdrawals that are unresolved: a money-moving step may have moved money no answer accounts for. Set by the processes that run the sweep worker.",
		}),
	}
}

// Unresolved sets the number of unresolved sweeps and withdrawals.
func (m *Metrics) Unresolved(sweeps, withdrawals int) {
	if m != nil {
		m.unresolved.sweeps.Set(float64(sweeps))
		m.unresolved.withdrawals.Set(float64(withdrawals))
	}
}
