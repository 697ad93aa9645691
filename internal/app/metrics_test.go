package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sweeperhq/sweeper/internal/webhook"
)

// scrape is one parsed GET /metrics.
type scrape map[string]*dto.MetricFamily

func (s *system) scrape() scrape {
	s.t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		s.t.Fatalf("/metrics is not valid Prometheus text: %v\n%s", err, body)
	}
	return fams
}

// series finds the sample of name whose labels are exactly want (nil when absent).
func (sc scrape) series(name string, want map[string]string) *dto.Metric {
	f := sc[name]
	if f == nil {
		return nil
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(want) {
			continue
		}
		match := true
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// value is a counter's or gauge's value, -1 when the series is absent.
func (sc scrape) value(name string, labels map[string]string) float64 {
	m := sc.series(name, labels)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// describe lists a family's samples, for failure messages.
func (sc scrape) describe(name string) string {
	f := sc[name]
	if f == nil {
		return name + ": absent"
	}
	var out []string
	for _, m := range f.Metric {
		var ls []string
		for _, l := range m.Label {
			ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		v := "histogram"
		if m.Counter != nil {
			v = fmt.Sprint(m.Counter.GetValue())
		} else if m.Gauge != nil {
			v = fmt.Sprint(m.Gauge.GetValue())
		} else if m.Histogram != nil {
			v = fmt.Sprintf("histogram count=%d", m.Histogram.GetSampleCount())
		}
		out = append(out, "{"+strings.Join(ls, ",")+"} "+v)
	}
	sort.Strings(out)
	return name + ": " + strings.Join(out, "; ")
}

// scrapeUntil scrapes until ready holds: counters are bumped just after the
// commit a test waits for, so the first scrape may come a moment early.
func (s *system) scrapeUntil(ready func(scrape) bool) scrape {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sc := s.scrape()
		if ready(sc) || time.Now().After(deadline) {
			return sc
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every series of contract §3 (and the token refresh counter) is exported with
// the right type and the values one sweep must leave behind.
func TestMetricsAfterASweep(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{})
	d := s.deposit("10")
	s.waitFor(d.ID, "succeeded")
	// One forged delivery, so the refusal side is counted too.
	if r := s.post("not-the-secret", uuid.NewString(), depositResource(uuid.NewString(), masterWallet, "Closed", "1")); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d", r.StatusCode)
	}

	sc := s.scrapeUntil(func(sc scrape) bool {
		return sc.value("sweeper_sweeps_total", map[string]string{"outcome": "succeeded"}) == 1 &&
			sc.value("sweeper_webhooks_received_total", map[string]string{"outcome": "deposit"}) == 2
	})

	types := map[string]dto.MetricType{
		"sweeper_webhooks_received_total":           dto.MetricType_COUNTER,
		"sweeper_deposits_total":                    dto.MetricType_COUNTER,
		"sweeper_sweeps_total":                      dto.MetricType_COUNTER,
		"sweeper_sweep_duration_seconds":            dto.MetricType_HISTOGRAM,
		"sweeper_upstream_requests_total":           dto.MetricType_COUNTER,
		"sweeper_upstream_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"sweeper_queue_depth":                       dto.MetricType_GAUGE,
		"sweeper_queue_oldest_age_seconds":          dto.MetricType_GAUGE,
		"sweeper_token_refreshes_total":             dto.MetricType_COUNTER,
	}
	for name, typ := range types {
		f := sc[name]
		if f == nil {
			t.Errorf("%s not exported", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s is a %s, want %s", name, f.GetType(), typ)
		}
		if strings.TrimSpace(f.GetHelp()) == "" {
			t.Errorf("%s has no HELP text", name)
		}
	}

	// The sandbox delivers the deposit twice (Pending, then Closed): two deposit
	// deliveries, one pending and one final state change, one sweep.
	counters := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sweeper_webhooks_received_total", map[string]string{"outcome": "deposit"}, 2},
		{"sweeper_webhooks_received_total", map[string]string{"outcome": "bad_signature"}, 1},
		{"sweeper_deposits_total", map[string]string{"status": "pending"}, 1},
		{"sweeper_deposits_total", map[string]string{"status": "final"}, 1},
		{"sweeper_sweeps_total", map[string]string{"outcome": "succeeded"}, 1},
		{"sweeper_upstream_requests_total", map[string]string{"endpoint": "internal_transfer", "code": "200"}, 1},
		{"sweeper_upstream_requests_total", map[string]string{"endpoint": "list_infinity_wallets", "code": "200"}, 1},
		{"sweeper_queue_depth", nil, 0},
		{"sweeper_queue_oldest_age_seconds", nil, 0},
		{"sweeper_queue_stats_up", nil, 1},
	}
	for _, c := range counters {
		if got := sc.value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v\n%s", c.name, c.labels, got, c.want, sc.describe(c.name))
		}
	}
	// A sweep that failed or was retried would show up here.
	if f := sc["sweeper_sweeps_total"]; f != nil {
		for _, m := range f.Metric {
			if m.Label[0].GetValue() != "succeeded" && m.Counter.GetValue() != 0 {
				t.Errorf("unexpected sweep outcomes: %s", sc.describe("sweeper_sweeps_total"))
			}
		}
	}
	// OAuth client credentials are configured: at least the first token was fetched.
	if got := sc.value("sweeper_token_refreshes_total", nil); got < 1 {
		t.Errorf("sweeper_token_refreshes_total = %v, want >= 1", got)
	}

	histograms := []struct {
		name   string
		labels map[string]string
	}{
		{"sweeper_sweep_duration_seconds", nil},
		{"sweeper_upstream_request_duration_seconds", map[string]string{"endpoint": "internal_transfer"}},
	}
	for _, h := range histograms {
		m := sc.series(h.name, h.labels)
		if m == nil || m.Histogram == nil {
			t.Errorf("%s%v: no histogram\n%s", h.name, h.labels, sc.describe(h.name))
			continue
		}
		hist := m.Histogram
		if hist.GetSampleCount() != 1 || hist.GetSampleSum() <= 0 || hist.GetSampleSum() > 15 {
			t.Errorf("%s%v: count %d sum %v, want one observation of a few ms", h.name, h.labels, hist.GetSampleCount(), hist.GetSampleSum())
		}
		if len(hist.Bucket) < 5 {
			t.Errorf("%s: only %d buckets", h.name, len(hist.Bucket))
		}
	}
	checkDeployReferences(t, sc)
}

var (
	promSelector = regexp.MustCompile(`\b(sweeper_[a-z_]+)(\{[^}]*\})?`)
	promEqual    = regexp.MustCompile(`([a-z_]+)="([^"$]*)"`)
)

// checkDeployReferences ties deploy/'s alert rules and dashboard to what this
// very binary exports: every sweeper_* name they query, and every label value
// they match exactly, must appear in a real scrape. The deploy module checks
// the files against the contract's list; this checks the list against the code.
func checkDeployReferences(t *testing.T, sc scrape) {
	t.Helper()
	var exprs []string
	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	exprs = append(exprs, string(rules))
	dash, err := os.ReadFile("../../deploy/grafana/sweeper-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var model any
	if err := json.Unmarshal(dash, &model); err != nil {
		t.Fatal(err)
	}
	var collect func(v any)
	collect = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, s)
				}
				collect(e)
			}
		case []any:
			for _, e := range x {
				collect(e)
			}
		}
	}
	collect(model)

	seen := 0
	for _, text := range exprs {
		for _, m := range promSelector.FindAllStringSubmatch(text, -1) {
			seen++
			name := m[1]
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base := strings.TrimSuffix(name, suffix); base != name && sc[base] != nil && sc[base].GetType() == dto.MetricType_HISTOGRAM {
					name = base
				}
			}
			fam := sc[name]
			if fam == nil {
				t.Errorf("deploy/ queries %s, which sweeper does not export", m[1])
				continue
			}
			for _, lv := range promEqual.FindAllStringSubmatch(m[2], -1) {
				found := false
				for _, s := range fam.Metric {
					for _, l := range s.Label {
						if l.GetName() == lv[1] && l.GetValue() == lv[2] {
							found = true
						}
					}
				}
				if !found {
					t.Errorf("deploy/ matches %s{%s=%q}: no such series (have %s)", name, lv[1], lv[2], sc.describe(name))
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d sweeper_* selectors found in deploy/: the parsing is broken", seen)
	}
}

// The queue gauges read the database: a final deposit with no worker running
// is one sweep waiting, and its age grows.
func TestQueueGaugesShowWaitingSweeps(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	for i := 0; i < 2; i++ {
		res := depositResource(uuid.NewString(), masterWallet, "Closed", "2.5")
		if r := s.post(webhookSecret, uuid.NewString(), res); r.StatusCode != http.StatusOK {
			t.Fatalf("webhook: %d", r.StatusCode)
		}
	}
	time.Sleep(50 * time.Millisecond)
	sc := s.scrape()
	if got := sc.value("sweeper_queue_depth", nil); got != 2 {
		t.Errorf("sweeper_queue_depth = %v, want 2", got)
	}
	first := sc.value("sweeper_queue_oldest_age_seconds", nil)
	if first < 0.04 || first > 10 {
		t.Errorf("sweeper_queue_oldest_age_seconds = %v, want the ~0.05 s since the first commit", first)
	}
	time.Sleep(100 * time.Millisecond)
	if later := s.scrape().value("sweeper_queue_oldest_age_seconds", nil); later < first+0.09 {
		t.Errorf("oldest age went from %v to %v in 100 ms", first, later)
	}
	if got := sc.value("sweeper_deposits_total", map[string]string{"status": "final"}); got != 2 {
		t.Errorf("sweeper_deposits_total{status=final} = %v, want 2", got)
	}
}

// Every outcome label the webhook handler can produce is one the alert rules
// and dashboard may select (deploy/prometheus/alerts.yaml relies on
// bad_signature and unavailable).
func TestWebhookOutcomeLabels(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	// Before any traffic, the series the alerts watch already exist at zero, so
	// the first failure after a restart is an increase Prometheus can see.
	zero := s.scrape()
	for _, c := range []struct{ name, label, value string }{
		{"sweeper_webhooks_received_total", "outcome", "bad_signature"},
		{"sweeper_webhooks_received_total", "outcome", "unavailable"},
		{"sweeper_deposits_total", "status", "unknown"},
		{"sweeper_sweeps_total", "outcome", "failed"},
	} {
		if got := zero.value(c.name, map[string]string{c.label: c.value}); got != 0 {
			t.Errorf("%s{%s=%q} = %v at start, want 0", c.name, c.label, c.value, got)
		}
	}
	res := depositResource(uuid.NewString(), masterWallet, "Pending", "1")
	resJSON := mustJSON(res)
	okBody := func(id string) []byte {
		return mustJSON(map[string]any{"id": id, "eventType": "CRYPTO_TRANSFER.UPDATED", "apiVersion": "v3",
			"code": "000000", "resource": string(resJSON), "createTime": "1"})
	}
	sig := webhook.Sign([]byte(webhookSecret), resJSON)
	dup := uuid.NewString()
	sends := []struct {
		sig  string
		body []byte
	}{
		{sig, okBody(dup)},
		{sig, okBody(dup)}, // duplicate
		{"", okBody(uuid.NewString())},
		{sig, []byte("not json")},
		{sig, append(okBody(uuid.NewString()), bytes.Repeat([]byte(" "), webhook.MaxBodyBytes)...)},
	}
	for _, x := range sends {
		s.postRaw(x.sig, x.body)
	}
	ignored := map[string]any{"id": "card-1", "kind": "something else"}
	s.post(webhookSecret, uuid.NewString(), ignored)

	sc := s.scrape()
	for outcome, want := range map[string]float64{
		"deposit": 1, "duplicate": 1, "bad_signature": 1, "bad_request": 1, "too_large": 1, "ignored": 1,
	} {
		if got := sc.value("sweeper_webhooks_received_total", map[string]string{"outcome": outcome}); got != want {
			t.Errorf("outcome %s = %v, want %v\n%s", outcome, got, want, sc.describe("sweeper_webhooks_received_total"))
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
