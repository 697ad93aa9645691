package sandbox_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

const (
	acct     = sandbox.DefaultAccountID
	infinity = sandbox.DefaultInfinityWalletID
	master   = sandbox.DefaultMasterWalletID
)

// env is a sandbox on a real loopback HTTP server with a token obtained through the OAuth flow.
type env struct {
	t     testing.TB
	srv   *sandbox.Server
	ts    *httptest.Server
	token string
}

func setup(t testing.TB, cfg sandbox.Config) *env {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	srv := sandbox.New(cfg)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	e := &env{t: t, srv: srv, ts: ts}
	e.token = e.oauth()
	return e
}

func (e *env) oauth() string {
	e.t.Helper()
	st, m, _ := e.request(http.MethodGet, "/open-api/oauth/authorize?clientId=cid", nil, nil)
	if st != http.StatusOK {
		e.t.Fatalf("authorize: HTTP %d %v", st, m)
	}
	st, m, _ = e.request(http.MethodPost, "/open-api/oauth/access-token",
		map[string]any{"clientId": "cid", "clientSecret": "secret", "code": m["code"]}, nil)
	if st != http.StatusOK {
		e.t.Fatalf("access-token: HTTP %d %v", st, m)
	}
	return m["accessToken"].(string)
}

// request sends JSON (nil body = none) and decodes a JSON object answer.
func (e *env) request(method, path string, body any, hdr map[string]string) (int, map[string]any, []byte) {
	e.t.Helper()
	resp, err := e.send(e.ts.Client(), method, path, body, hdr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	var m map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, m, raw
}

func (e *env) send(c *http.Client, method, path string, body any, hdr map[string]string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.token != "" {
		req.Header.Set("x-access-token", e.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.Do(req)
}

// api calls an /open-api endpoint that must answer HTTP 200 and returns the whole envelope.
func (e *env) api(method, path string, body any, hdr map[string]string) map[string]any {
	e.t.Helper()
	st, m, raw := e.request(method, path, body, hdr)
	if st != http.StatusOK {
		e.t.Fatalf("%s %s: HTTP %d %s", method, path, st, raw)
	}
	return m
}

// ok calls an endpoint that must succeed (either envelope) and returns data.
func (e *env) ok(method, path string, body any) map[string]any {
	e.t.Helper()
	m := e.api(method, path, body, nil)
	if c := m["code"]; c != "000000" && c != float64(0) {
		e.t.Fatalf("%s %s: not a success: %v", method, path, m)
	}
	d, _ := m["data"].(map[string]any)
	return d
}

func (e *env) ledger() sandbox.Ledger { return e.srv.Ledger() }

func (e *env) walletBalance(id, cur string) decimal.Decimal {
	e.t.Helper()
	w, ok := e.srv.Wallet(id)
	if !ok {
		e.t.Fatalf("wallet %s not found", id)
	}
	return w.Balances[cur]
}

func transferBody(ctid, fromID, fromCur, toID, toCur string, fromType, toType int, amount string) map[string]any {
	return map[string]any{
		"clientTransactionId": ctid,
		"accountId":           acct,
		"from":                map[string]any{"businessType": fromType, "id": fromID, "currency": fromCur},
		"to":                  map[string]any{"businessType": toType, "id": toID, "currency": toCur},
		"amount":              amount,
	}
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func requireDec(t testing.TB, what string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(dec(want)) {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// assertShape checks that got has exactly the keys of want, recursively, with the same JSON types. Array
// elements of got are compared with want's first element; an empty want array accepts any elements.
func assertShape(t testing.TB, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: got %T (%v), want an object", path, got, got)
			return
		}
		if wk, gk := keys(w), keys(g); wk != gk {
			t.Errorf("%s: keys %s, want %s", path, gk, wk)
		}
		for k, wv := range w {
			if gv, ok := g[k]; ok {
				assertShape(t, path+"."+k, wv, gv)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("%s: got %T, want an array", path, got)
			return
		}
		if len(w) == 0 {
			return
		}
		for i, gv := range g {
			assertShape(t, fmt.Sprintf("%s[%d]", path, i), w[0], gv)
		}
	default:
		if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
			t.Errorf("%s: got %T (%v), want %T (%v)", path, got, got, want, want)
		}
	}
}

func keys(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func mustJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad fixture: %v", err)
	}
	return v
}

// ---- webhook receiver ----

type delivery struct {
	at       time.Time
	header   http.Header
	body     []byte
	id       string
	event    string
	resource string
	res      map[string]any
}

// receiver is a real HTTP webhook endpoint. status decides the answer to the n-th (1-based) delivery of a
// notification id; nil answers 200.
type receiver struct {
	mu     sync.Mutex
	got    []delivery
	byID   map[string]int
	status func(id string, n int) int
	ts     *httptest.Server
}

func newReceiver(t testing.TB, status func(id string, n int) int) *receiver {
	r := &receiver{byID: map[string]int{}, status: status}
	r.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var env struct {
			ID        string `json:"id"`
			EventType string `json:"eventType"`
			Resource  string `json:"resource"`
		}
		_ = json.Unmarshal(body, &env)
		var res map[string]any
		_ = json.Unmarshal([]byte(env.Resource), &res)
		r.mu.Lock()
		r.byID[env.ID]++
		n := r.byID[env.ID]
		r.got = append(r.got, delivery{
			at: time.Now(), header: req.Header.Clone(), body: body, id: env.ID, event: env.EventType,
			resource: env.Resource, res: res,
		})
		r.mu.Unlock()
		st := http.StatusOK
		if r.status != nil {
			st = r.status(env.ID, n)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(r.ts.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func sign(secret string, msg []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
