package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	alertsFile    = "prometheus/alerts.yaml"
	dashboardFile = "grafana/sweeper-dashboard.json"
)

// contractMetrics are the series of contract §3 plus the token refresh
// counter; the two histograms are queried through their classic series.
var contractMetrics = []string{
	"sweeper_webhooks_received_total",
	"sweeper_deposits_total",
	"sweeper_sweeps_total",
	"sweeper_sweep_duration_seconds",
	"sweeper_upstream_requests_total",
	"sweeper_upstream_request_duration_seconds",
	"sweeper_queue_depth",
	"sweeper_queue_oldest_age_seconds",
	"sweeper_token_refreshes_total",
}

// extraMetrics are sweeper's own series beyond the contract that alerts may use.
var extraMetrics = []string{"sweeper_sweeps_stuck", "sweeper_sweeps_unresolved", "sweeper_withdrawals_unresolved",
	"sweeper_deposits_attention", "sweeper_poll_consecutive_failures", "sweeper_deposit_conflicts_total",
	"sweeper_polls_total", "sweeper_poll_deposits_found_total", "sweeper_poll_last_success_timestamp_seconds",
	"sweeper_deposit_confirmations_total"}

var histograms = []string{"sweeper_sweep_duration_seconds", "sweeper_upstream_request_duration_seconds"}

// allowedMetric reports whether an expression may select name, and which
// contract metric it belongs to.
func allowedMetric(name string) (string, bool) {
	if name == "up" {
		return name, true
	}
	if slices.Contains(contractMetrics, name) || slices.Contains(extraMetrics, name) {
		return name, true
	}
	for _, h := range histograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if name == h+suffix {
				return h, true
			}
		}
	}
	return "", false
}

func newPromQLParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// selectors parses expr and returns every vector selector in it.
func selectors(p parser.Parser, expr string) ([]*parser.VectorSelector, error) {
	ast, err := p.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []*parser.VectorSelector
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out, nil
}

// checkExprMetrics parses expr and returns the contract metrics it selects;
// a selector without a literal metric name, or with a name outside the
// contract, is an error.
func checkExprMetrics(p parser.Parser, expr string) ([]string, error) {
	vss, err := selectors(p, expr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var used []string
	for _, vs := range vss {
		if vs.Name == "" {
			return nil, fmt.Errorf("%q: selector %s has no metric name", expr, vs)
		}
		m, ok := allowedMetric(vs.Name)
		if !ok {
			return nil, fmt.Errorf("%q: %s is not a sweeper metric of the contract (nor `up`)", expr, vs.Name)
		}
		used = append(used, m)
	}
	return used, nil
}

// The checker must reject what it should, or the tests below prove little.
func TestCheckExprMetrics(t *testing.T) {
	t.Parallel()
	p := newPromQLParser()
	tests := []struct {
		expr string
		ok   bool
	}{
		{`sum(rate(sweeper_sweeps_total{outcome="failed"}[5m])) > 0`, true},
		{`histogram_quantile(0.99, sum by (le) (rate(sweeper_sweep_duration_seconds_bucket[5m])))`, true},
		{`up == 0`, true},
		{`rate(sweeper_sweeps_totl[5m])`, false},                // misspelt
		{`rate(http_requests_total[5m])`, false},                // foreign metric
		{`{__name__=~"sweeper_.+"}`, false},                     // no literal name
		{`sum(rate(sweeper_sweeps_total[5m])`, false},           // syntax
		{`rate(sweeper_sweeps_total[$__rate_interval])`, false}, // unsubstituted Grafana macro
		{`sweeper_queue_depth > bool on() group_left sweeper_queue_depth`, true},
	}
	for _, tt := range tests {
		_, err := checkExprMetrics(p, tt.expr)
		if (err == nil) != tt.ok {
			t.Errorf("checkExprMetrics(%q) error = %v, want ok=%v", tt.expr, err, tt.ok)
		}
	}
}

func TestAlertRules(t *testing.T) {
	t.Parallel()
	p := newPromQLParser()
	// rulefmt is what `promtool check rules` runs: strict YAML (unknown fields
	// are errors), every expr parsed, every label and annotation template
	// checked.
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", alertsFile, errors.Join(errs...))
	}
	type alert struct {
		rule rulefmt.Rule
		sels []*parser.VectorSelector
	}
	alerts := map[string]alert{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: recording rule %q; this file holds alerts only", g.Name, r.Record)
				continue
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			if _, err := checkExprMetrics(p, r.Expr); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			sels, _ := selectors(p, r.Expr)
			alerts[r.Alert] = alert{r, sels}
			switch sev := r.Labels["severity"]; sev {
			case "critical", "warning", "info":
			default:
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, sev)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: annotation %s is empty", r.Alert, a)
				}
			}
		}
	}

	// selects reports whether the alert selects metric with label=value.
	selects := func(a alert, metric, label, value string) bool {
		for _, vs := range a.sels {
			if vs.Name != metric {
				continue
			}
			if label == "" {
				return true
			}
			for _, m := range vs.LabelMatchers {
				if m.Name == label && m.Type == labels.MatchEqual && m.Value == value {
					return true
				}
			}
		}
		return false
	}
	required := []struct {
		name, metric, label, value string
		minFor                     time.Duration
	}{
		{"SweepsFailing", "sweeper_sweeps_total", "outcome", "failed", 0},
		{"SweepsUnresolved", "sweeper_sweeps_unresolved", "", "", time.Minute},
		{"OldestPendingSweepTooOld", "sweeper_queue_oldest_age_seconds", "", "", 5 * time.Minute},
		{"WebhookSignatureFailuresRising", "sweeper_webhooks_received_total", "outcome", "bad_signature", 10 * time.Minute},
		{"UpstreamErrorsHigh", "sweeper_upstream_requests_total", "", "", time.Minute},
		{"SweeperDown", "up", "", "", time.Minute},
		// Contract §9: held, needs_review, stuck waiting, poll failing.
		{"DepositsHeld", "sweeper_deposits_attention", "state", "held", 5 * time.Minute},
		{"DepositsNeedReview", "sweeper_deposits_attention", "state", "needs_review", 5 * time.Minute},
		{"DepositsWaitingTooLong", "sweeper_deposits_attention", "state", "stuck_waiting", 5 * time.Minute},
		{"PollFailing", "sweeper_poll_consecutive_failures", "", "", time.Minute},
		{"DepositContradictedAfterSweep", "sweeper_deposit_conflicts_total", "effect", "conflict", 0},
	}
	for _, req := range required {
		a, ok := alerts[req.name]
		if !ok {
			t.Errorf("alert %s missing", req.name)
			continue
		}
		if !selects(a, req.metric, req.label, req.value) {
			want := req.metric
			if req.label != "" {
				want += fmt.Sprintf("{%s=%q}", req.label, req.value)
			}
			t.Errorf("alert %s does not select %s: %s", req.name, want, a.rule.Expr)
		}
		if got := time.Duration(a.rule.For); got < req.minFor {
			t.Errorf("alert %s: for = %s, want >= %s", req.name, got, req.minFor)
		}
	}
	if a, ok := alerts["OldestPendingSweepTooOld"]; ok && !strings.Contains(a.rule.Expr, "> 600") {
		t.Errorf("OldestPendingSweepTooOld: threshold is not 600 s: %s", a.rule.Expr)
	}
	if a, ok := alerts["WebhookSignatureFailuresRising"]; ok && !strings.Contains(a.rule.Expr, "> 0.1") {
		t.Errorf("WebhookSignatureFailuresRising: threshold is not 0.1/s: %s", a.rule.Expr)
	}
}

// dashboard holds the parts of a Grafana dashboard model the test checks.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *dsRef          `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *dsRef                   `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource *dsRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's children
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaMacros are the interval variables Grafana substitutes before the
// query reaches Prometheus; the test does the same so that the parser sees
// what Prometheus will.
var grafanaMacros = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "6h")

var labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

func TestDashboard(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for a stable import", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion = %d, want 36..41 (Grafana 9-11)", d.SchemaVersion)
	}
	const dsVar = "${datasource}"
	p := newPromQLParser()
	hasDSVar := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil || q != "prometheus" {
				t.Errorf("variable %s: query %s, want \"prometheus\"", v.Name, v.Query)
			}
			if "${"+v.Name+"}" == dsVar {
				hasDSVar = true
			}
		case "query":
			if v.Datasource == nil || v.Datasource.UID != dsVar {
				t.Errorf("variable %s: datasource %+v, want uid %s", v.Name, v.Datasource, dsVar)
			}
			m := labelValuesRe.FindStringSubmatch(v.Definition)
			if m == nil {
				t.Errorf("variable %s: %q is not label_values(<selector>, <label>)", v.Name, v.Definition)
				continue
			}
			if _, err := checkExprMetrics(p, m[1]); err != nil {
				t.Errorf("variable %s: %v", v.Name, err)
			}
		}
	}
	if !hasDSVar {
		t.Errorf("no datasource variable named datasource (query prometheus)")
	}

	used := map[string]bool{}
	ids := map[int]string{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, pn := range ps {
			if prev, dup := ids[pn.ID]; dup || pn.ID == 0 {
				t.Errorf("panel %q: id %d missing or shared with %q", pn.Title, pn.ID, prev)
			}
			ids[pn.ID] = pn.Title
			g := pn.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", pn.Title, g)
			}
			if pn.Type == "row" {
				walk(pn.Panels)
				continue
			}
			if pn.Title == "" {
				t.Errorf("panel %d has no title", pn.ID)
			}
			if pn.Datasource == nil || pn.Datasource.UID != dsVar {
				t.Errorf("panel %q: datasource %+v, want uid %s", pn.Title, pn.Datasource, dsVar)
			}
			if len(pn.Targets) == 0 {
				t.Errorf("panel %q has no query", pn.Title)
			}
			refs := map[string]bool{}
			for _, tg := range pn.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("panel %q: refId %q empty or repeated", pn.Title, tg.RefID)
				}
				refs[tg.RefID] = true
				if tg.Datasource != nil && tg.Datasource.UID != dsVar {
					t.Errorf("panel %q: target datasource %+v, want uid %s", pn.Title, tg.Datasource, dsVar)
				}
				metrics, err := checkExprMetrics(p, grafanaMacros.Replace(tg.Expr))
				if err != nil {
					t.Errorf("panel %q: %v", pn.Title, err)
				}
				for _, m := range metrics {
					used[m] = true
				}
			}
		}
	}
	walk(d.Panels)
	for _, m := range contractMetrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
	// The latency panels must be quantiles over the histogram buckets.
	for _, h := range histograms {
		for q, name := range map[string]string{"0.5": "p50", "0.99": "p99"} {
			want := fmt.Sprintf("histogram_quantile(%s, sum by (le", q)
			found := false
			for _, pn := range flatten(d.Panels) {
				for _, tg := range pn.Targets {
					if strings.Contains(tg.Expr, want) && strings.Contains(tg.Expr, h+"_bucket") {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("no %s quantile over %s_bucket", name, h)
			}
		}
	}
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}
