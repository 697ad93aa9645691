package interlace

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// testToken is long and distinctive so that a leak into any message is easy to detect.
const testToken = "tok-7d1f0c2a-9b3e-4e55-leak-canary"

// seen is one request as the fake upstream received it.
type seen struct {
	Method   string
	Path     string // escaped path
	RawQuery string
	Header   http.Header
	Body     []byte
}

// upstream is a fake Interlace over real HTTP. It records every request and answers with respond.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []seen
	respond func(w http.ResponseWriter, r *http.Request, n int) // n counts requests from 1
}

func newUpstream(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int)) *upstream {
	t.Helper()
	u := &upstream{respond: respond}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		n := len(u.reqs)
		u.mu.Unlock()
		u.respond(w, r, n)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func (u *upstream) only(t *testing.T) seen {
	t.Helper()
	reqs := u.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// answer writes a canned body.
func answer(status int, body []byte) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// observation is one call of Config.Observe.
type observation struct{ endpoint, status string }

type observer struct {
	mu  sync.Mutex
	obs []observation
}

func (o *observer) observe(endpoint, status string, d time.Duration) {
	if d < 0 {
		panic("negative duration")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.obs = append(o.obs, observation{endpoint, status})
}

func (o *observer) all() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observation(nil), o.obs...)
}

func newTestClient(t *testing.T, baseURL string, mod ...func(*Config)) (*Client, *observer) {
	t.Helper()
	obs := &observer{}
	cfg := Config{BaseURL: baseURL, Tokens: StaticToken(testToken), Timeout: 2 * time.Second, Observe: obs.observe}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, obs
}

func eq[T comparable](t *testing.T, name string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func dec(t *testing.T, name string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(decimal.RequireFromString(want)) {
		t.Errorf("%s = %s, want %s", name, got, want)
	}
}

func ms(t *testing.T, name string, got Millis, want int64) {
	t.Helper()
	if got.UnixMilli() != want || got.Location() != time.UTC {
		t.Errorf("%s = %v (%d ms, %v), want %d ms UTC", name, got.Time, got.UnixMilli(), got.Location(), want)
	}
}

// sameJSON compares JSON documents by value with numbers kept as literals, so "10" and 10 differ:
// that is how the tests check that amounts go out as strings.
func sameJSON(t *testing.T, name string, got []byte, want string) {
	t.Helper()
	g, err := decodeUseNumber(got)
	if err != nil {
		t.Fatalf("%s: sent body is not JSON: %v\n%s", name, err, got)
	}
	w, err := decodeUseNumber([]byte(want))
	if err != nil {
		t.Fatalf("%s: expected body is not JSON: %v", name, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", name, got, want)
	}
}

func decodeUseNumber(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// checkHeaders verifies what every request carries, and the Idempotency-Key (absent when idem is "").
func checkHeaders(t *testing.T, r seen, idem string) {
	t.Helper()
	eq(t, "x-access-token", r.Header.Get("x-access-token"), testToken)
	eq(t, "Accept", r.Header.Get("Accept"), "application/json")
	if r.Method == http.MethodPost {
		eq(t, "Content-Type", r.Header.Get("Content-Type"), "application/json")
	}
	if got := r.Header.Values("Idempotency-Key"); idem == "" && len(got) != 0 {
		t.Errorf("Idempotency-Key = %q, want none", got)
	} else if idem != "" && (len(got) != 1 || got[0] != idem) {
		t.Errorf("Idempotency-Key = %q, want %q", got, idem)
	}
}
