package interlace_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

const sandboxSecret = "sandbox-client-secret"

// pathLog records the path of every request the sandbox gets, in order.
type pathLog struct {
	mu    sync.Mutex
	paths []string
}

func (p *pathLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (p *pathLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.paths
	p.paths = nil
	return out
}

func newAuthSandbox(t *testing.T, cfg sandbox.Config) (string, *pathLog) {
	t.Helper()
	sb := sandbox.New(cfg)
	log := &pathLog{}
	srv := httptest.NewServer(log.wrap(sb.Handler()))
	t.Cleanup(func() { sb.Close(); srv.Close() })
	return srv.URL, log
}

// TestAuthStyles runs every client style against every sandbox style, strict mode on, through a real
// API call (the Infinity balance list).
func TestAuthStyles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		served, client string
		wantStyle      string // "" = must fail
		wantFirst      string // path of the first request
	}{
		{sandbox.AuthStyleBoth, interlace.AuthStyleAuto, interlace.AuthStyleV3, "GET /open-api/v3/oauth/authorize"},
		{sandbox.AuthStyleV3, interlace.AuthStyleAuto, interlace.AuthStyleV3, "GET /open-api/v3/oauth/authorize"},
		{sandbox.AuthStyleLegacy, interlace.AuthStyleAuto, interlace.AuthStyleLegacy, "GET /open-api/v3/oauth/authorize"},
		{sandbox.AuthStyleBoth, interlace.AuthStyleLegacy, interlace.AuthStyleLegacy, "GET /open-api/oauth/authorize"},
		{sandbox.AuthStyleV3, interlace.AuthStyleV3, interlace.AuthStyleV3, "GET /open-api/v3/oauth/authorize"},
		{sandbox.AuthStyleLegacy, interlace.AuthStyleLegacy, interlace.AuthStyleLegacy, "GET /open-api/oauth/authorize"},
		// A pinned style never falls back: a wrong pin fails loudly.
		{sandbox.AuthStyleV3, interlace.AuthStyleLegacy, "", "GET /open-api/oauth/authorize"},
		{sandbox.AuthStyleLegacy, interlace.AuthStyleV3, "", "GET /open-api/v3/oauth/authorize"},
	} {
		t.Run(tc.served+"/"+tc.client, func(t *testing.T) {
			t.Parallel()
			url, log := newAuthSandbox(t, sandbox.Config{AuthStyle: tc.served, StrictTokens: true, ClientSecret: sandboxSecret})
			var reported []string
			var repMu sync.Mutex
			src := interlace.NewOAuthTokenSource(interlace.OAuthConfig{BaseURL: url, ClientID: "id",
				ClientSecret: sandboxSecret, Style: tc.client,
				OnStyle: func(s string) { repMu.Lock(); reported = append(reported, s); repMu.Unlock() }})
			c, err := interlace.New(interlace.Config{BaseURL: url, Tokens: src})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ListInfinityWallets(context.Background(), sandbox.DefaultAccountID)
			paths := log.take()
			if len(paths) == 0 || paths[0] != tc.wantFirst {
				t.Fatalf("requests %v, want the first to be %s", paths, tc.wantFirst)
			}
			if tc.wantStyle == "" {
				if !errors.Is(err, interlace.ErrNoToken) {
					t.Fatalf("err = %v, want ErrNoToken", err)
				}
				log.take()
				_, err = src.Token(context.Background())
				var ae *interlace.APIError
				if err == nil || !errors.As(err, &ae) || ae.HTTPStatus != http.StatusNotFound {
					t.Fatalf("err = %v, want the pinned style's 404", err)
				}
				if got := log.take(); len(got) != 0 {
					t.Fatalf("the pinned style fell back or retried at once: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := src.Style(); got != tc.wantStyle {
				t.Fatalf("Style() = %q, want %q", got, tc.wantStyle)
			}
			// Remembered: after a 401-style invalidation the pair is refreshed on the same style's endpoint,
			// and auto does not probe the v3 paths again.
			tok, _ := src.Token(context.Background())
			src.Invalidate(tok)
			if _, err := src.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := "POST /open-api/oauth/refresh-token"
			if tc.wantStyle == interlace.AuthStyleV3 {
				want = "POST /open-api/v3/oauth/refresh-token"
			}
			if got := log.take(); len(got) != 1 || got[0] != want {
				t.Fatalf("after Invalidate: %v, want only %s", got, want)
			}
			repMu.Lock()
			defer repMu.Unlock()
			if len(reported) != 1 || reported[0] != tc.wantStyle {
				t.Fatalf("OnStyle reported %v, want once %s", reported, tc.wantStyle)
			}
		})
	}
}

// TestStrictModeRefusesWrongSecret: in strict mode a wrong secret makes a wrong X-Signature (v3), and the
// unversioned style also refuses the secret in the body. Both are definite business errors, never 404s,
// so auto does not hide them behind the other style.
func TestStrictModeRefusesWrongSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		served   string
		strict   bool
		wantCode string
	}{
		{sandbox.AuthStyleV3, true, "010403"},
		{sandbox.AuthStyleBoth, true, "010403"},
		{sandbox.AuthStyleLegacy, false, "010401"},
	} {
		t.Run(tc.served, func(t *testing.T) {
			t.Parallel()
			url, log := newAuthSandbox(t, sandbox.Config{AuthStyle: tc.served, StrictTokens: tc.strict, ClientSecret: sandboxSecret})
			src := interlace.NewOAuthTokenSource(interlace.OAuthConfig{BaseURL: url, ClientID: "id", ClientSecret: "wrong-secret"})
			_, err := src.Token(context.Background())
			var ae *interlace.APIError
			if !errors.As(err, &ae) || ae.Endpoint != interlace.EndpointOAuthAccessToken || ae.Code != tc.wantCode {
				t.Fatalf("err = %v, want code %s from the access-token endpoint", err, tc.wantCode)
			}
			if strings.Contains(err.Error(), "wrong-secret") {
				t.Fatalf("error leaks the secret: %v", err)
			}
			// Backing off: the next call within the backoff does not reach the sandbox.
			log.take()
			_, err2 := src.Token(context.Background())
			if err2 == nil || !strings.Contains(err2.Error(), "next attempt in") || !errors.As(err2, &ae) {
				t.Fatalf("second call: %v, want the backed-off failure", err2)
			}
			if got := log.take(); len(got) != 0 {
				t.Fatalf("a backed-off call reached the sandbox: %v", got)
			}
		})
	}
}

// TestStrictModeNeedsFreshTimestamp: a client whose clock is 10 minutes off is refused.
func TestStrictModeNeedsFreshTimestamp(t *testing.T) {
	t.Parallel()
	url, _ := newAuthSandbox(t, sandbox.Config{StrictTokens: true, ClientSecret: sandboxSecret})
	src := interlace.NewOAuthTokenSource(interlace.OAuthConfig{BaseURL: url, ClientID: "id", ClientSecret: sandboxSecret,
		Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }})
	_, err := src.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "X-Timestamp") {
		t.Fatalf("err = %v, want the stale X-Timestamp refused", err)
	}
}

// TestSignTokenCall pins the documented (unconfirmed) string-to-sign, so a change to it is deliberate.
func TestSignTokenCall(t *testing.T) {
	t.Parallel()
	// printf 'clientId=abc&code=f00&timestamp=1700000000' | openssl dgst -sha256 -hmac s3cret
	got := interlace.SignTokenCall("s3cret", map[string]string{"code": "f00", "clientId": "abc"}, 1700000000)
	if want := "3f44de4ad0c7960fbb2ef22597e144075e324e4cd04979e29f064aeb48e0acd2"; got != want {
		t.Fatalf("SignTokenCall = %q", got)
	}
}

// TestTokenBackoff: after a failure no caller reaches the token endpoint until the backoff has passed;
// then one does, and a success clears the backoff.
func TestTokenBackoff(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	failing := true
	calls := 0
	sb := sandbox.New(sandbox.Config{})
	t.Cleanup(sb.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		f := failing
		mu.Unlock()
		if f {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		sb.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	now := time.Now()
	var clkMu sync.Mutex
	clk := func() time.Time { clkMu.Lock(); defer clkMu.Unlock(); return now }
	advance := func(d time.Duration) { clkMu.Lock(); now = now.Add(d); clkMu.Unlock() }
	src := interlace.NewOAuthTokenSource(interlace.OAuthConfig{BaseURL: srv.URL, ClientID: "id", ClientSecret: "s", Now: clk})
	count := func() int { mu.Lock(); defer mu.Unlock(); return calls }

	if _, err := src.Token(context.Background()); !interlace.IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable failure", err)
	}
	if count() != 1 {
		t.Fatalf("calls = %d, want 1 (a 503 is not a 404: no fallback)", count())
	}
	for range 10 {
		_, _ = src.Token(context.Background())
	}
	if count() != 1 {
		t.Fatalf("calls during the backoff = %d, want still 1", count())
	}
	advance(time.Second) // past the first backoff (at most 1 s)
	_, _ = src.Token(context.Background())
	if count() != 2 {
		t.Fatalf("calls after the backoff = %d, want 2", count())
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	advance(2 * time.Second)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}
