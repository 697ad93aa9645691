package interlace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testClientID     = "client-id-1"
	testClientSecret = "client-secret-canary-9f2e"
)

// fakeAuth is a fake Interlace that implements the OAuth flow and one API endpoint (GetWallet) which
// only accepts tokens it has issued and not revoked.
type fakeAuth struct {
	srv *httptest.Server

	wrap       string // "" bare answers, otherwise the envelope code literal (`"000000"`, `0`)
	expiresIn  string // JSON literal
	tokenDelay time.Duration

	mu        sync.Mutex
	issued    int
	valid     map[string]bool
	codes     map[string]bool
	failToken bool // access-token answers 503 while set
	refuseAll bool // the API refuses every token while set

	authorizeHits atomic.Int32
	tokenHits     atomic.Int32
	apiHits       atomic.Int32
	apiTokens     []string
	apiBodies     []string
	apiIdemKeys   []string
}

func newFakeAuth(t *testing.T, wrap, expiresIn string) *fakeAuth {
	t.Helper()
	f := &fakeAuth{wrap: wrap, expiresIn: expiresIn, valid: map[string]bool{}, codes: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /open-api/oauth/authorize", f.authorize)
	mux.HandleFunc("POST /open-api/oauth/access-token", f.accessToken)
	mux.HandleFunc("/open-api/v3/cryptoconnect/wallets/", f.api)
	mux.HandleFunc("POST /open-api/v3/cryptoconnect/wallets", f.api)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAuth) write(w http.ResponseWriter, data string) {
	w.Header().Set("Content-Type", "application/json")
	if f.wrap == "" {
		_, _ = w.Write([]byte(data))
		return
	}
	fmt.Fprintf(w, `{"code":%s,"message":"success","data":%s}`, f.wrap, data)
}

func (f *fakeAuth) authorize(w http.ResponseWriter, r *http.Request) {
	n := f.authorizeHits.Add(1)
	if r.URL.Query().Get("clientId") != testClientID {
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"code":"010001","message":"unknown clientId"}`))
		return
	}
	code := fmt.Sprintf("%032x", n)
	f.mu.Lock()
	f.codes[code] = true
	f.mu.Unlock()
	f.write(w, fmt.Sprintf(`{"timestamp":%d,"code":%q}`, time.Now().Unix(), code))
}

func (f *fakeAuth) accessToken(w http.ResponseWriter, r *http.Request) {
	f.tokenHits.Add(1)
	f.mu.Lock()
	delay := f.tokenDelay
	f.mu.Unlock()
	time.Sleep(delay)
	var req struct{ ClientID, ClientSecret, Code string }
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failToken {
		w.WriteHeader(503)
		return
	}
	if req.ClientID != testClientID || req.ClientSecret != testClientSecret || !f.codes[req.Code] {
		w.WriteHeader(200)
		// Echo the secret, as a careless server might: the client must not pass it on.
		fmt.Fprintf(w, `{"code":"010401","message":"bad credentials %s / %s"}`, req.ClientSecret, req.Code)
		return
	}
	delete(f.codes, req.Code) // authorization codes are single-use
	f.issued++
	token := fmt.Sprintf("tok-%d", f.issued)
	f.valid[token] = true
	f.write(w, fmt.Sprintf(`{"accessToken":%q,"refreshToken":"r-%d","expiresIn":%s,"timestamp":%d}`,
		token, f.issued, f.expiresIn, time.Now().Unix()))
}

func (f *fakeAuth) api(w http.ResponseWriter, r *http.Request) {
	f.apiHits.Add(1)
	tok := r.Header.Get("x-access-token")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.apiTokens = append(f.apiTokens, tok)
	f.apiBodies = append(f.apiBodies, string(body))
	f.apiIdemKeys = append(f.apiIdemKeys, r.Header.Get("Idempotency-Key"))
	ok := f.valid[tok] && !f.refuseAll
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"code":"010401","message":"token invalid"}`))
		return
	}
	_, _ = w.Write(guideWalletJSON)
}

var guideWalletJSON = []byte(`{"code":"000000","message":"success","data":{"id":"60c667cd-06f4-48c0-85ca-24e570097685",
"referenceId":"92a86ee7-5bb7-4272-afdb-3865bea9a2d5","accountId":"b27c8873-e400-47cd-adc1-035cfa0d5347",
"nickname":"Developer","master":false,"balances":[],"addresses":[]}}`)

func (f *fakeAuth) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valid = map[string]bool{}
}

// clock is a settable Now for the token source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSource(f *fakeAuth, clk *clock, refreshes *atomic.Int32) TokenSource {
	cfg := OAuthConfig{BaseURL: f.srv.URL + "/", ClientID: testClientID, ClientSecret: testClientSecret}
	if clk != nil {
		cfg.Now = clk.Now
	}
	if refreshes != nil {
		cfg.OnRefresh = func() { refreshes.Add(1) }
	}
	return NewOAuthTokenSource(cfg)
}

func TestOAuthAcceptsBareAndWrappedAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, wrap, expiresIn string }{
		{"Bare", "", "86400"},
		{"WrappedStringCode", `"000000"`, "86400"},
		{"WrappedNumericCode", `0`, "86400"},
		{"ExpiresInAsString", "", `"86400"`},
		{"WrappedExpiresInAsString", `"0"`, `"86400"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAuth(t, tc.wrap, tc.expiresIn)
			var refreshes atomic.Int32
			src := newSource(f, nil, &refreshes)
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "token", tok, "tok-1")
			eq(t, "authorize hits", f.authorizeHits.Load(), 1)
			eq(t, "token hits", f.tokenHits.Load(), 1)
			eq(t, "OnRefresh calls", refreshes.Load(), 1)

			// The token works against the API.
			c, err := New(Config{BaseURL: f.srv.URL, Tokens: src})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetWallet(context.Background(), guideWallet); err != nil {
				t.Fatal(err)
			}
			eq(t, "token hits after API call", f.tokenHits.Load(), 1)
		})
	}
}

func TestOAuthCachesTokenAcrossCalls(t *testing.T) {
	t.Parallel()
	f := newFakeAuth(t, "", "86400")
	src := newSource(f, nil, nil)
	c, err := New(Config{BaseURL: f.srv.URL, Tokens: src})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.GetWallet(context.Background(), guideWallet); err != nil {
			t.Fatal(err)
		}
	}
	eq(t, "token fetches", f.tokenHits.Load(), 1)
	eq(t, "API calls", f.apiHits.Load(), 20)
}

func TestOAuthConcurrentCallersShareOneFetch(t *testing.T) {
	t.Parallel()
	f := newFakeAuth(t, `"000000"`, "86400")
	f.tokenDelay = 100 * time.Millisecond // keep the fetch open while everyone arrives
	var refreshes atomic.Int32
	src := newSource(f, nil, &refreshes)
	c, err := New(Config{BaseURL: f.srv.URL, Tokens: src})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := c.GetWallet(context.Background(), guideWallet); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eq(t, "authorize hits", f.authorizeHits.Load(), 1)
	eq(t, "token fetches", f.tokenHits.Load(), 1)
	eq(t, "OnRefresh calls", refreshes.Load(), 1)
	eq(t, "API calls", f.apiHits.Load(), 50)
}

// A caller that gives up must not cancel the fetch other callers wait for.
func TestOAuthCancelledCallerDoesNotCancelSharedFetch(t *testing.T) {
	t.Parallel()
	f := newFakeAuth(t, "", "86400")
	f.tokenDelay = 100 * time.Millisecond
	src := newSource(f, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := src.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "token", tok, "tok-1")
	eq(t, "token fetches", f.tokenHits.Load(), 1)
}

// waitFor polls cond; background refreshes finish on their own schedule.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestOAuthRefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		expiresIn     string
		before, after time.Duration // still cached at before, refreshed at after (both before expiry)
	}{
		// 24 h: margin is the 5-minute cap.
		{"Day", "86400", 24*time.Hour - 5*time.Minute - time.Second, 24*time.Hour - 5*time.Minute + time.Second},
		// 10 minutes: margin is 10% (1 minute), smaller than 5 minutes.
		{"TenMinutes", "600", 9*time.Minute - time.Second, 9*time.Minute + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAuth(t, "", tc.expiresIn)
			clk := &clock{t: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)}
			var refreshes atomic.Int32
			src := newSource(f, clk, &refreshes)
			ctx := context.Background()
			first, err := src.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(tc.before)
			for range 5 {
				tok, err := src.Token(ctx)
				if err != nil {
					t.Fatal(err)
				}
				eq(t, "token just before the margin", tok, first)
			}
			eq(t, "fetches before the margin", f.tokenHits.Load(), 1)

			// Inside the margin the old token is still served while the new one is fetched.
			clk.Advance(tc.after - tc.before)
			tok, err := src.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "token while refreshing", tok, first)
			waitFor(t, "the background refresh", func() bool { return refreshes.Load() == 2 })
			tok, err = src.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "token after the refresh", tok, "tok-2")
			eq(t, "fetches", f.tokenHits.Load(), 2)
		})
	}
}

// A slow OAuth endpoint must not delay API calls while the cached token is still valid.
func TestOAuthBackgroundRefreshDoesNotBlock(t *testing.T) {
	t.Parallel()
	f := newFakeAuth(t, "", "3600")
	clk := &clock{t: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)}
	var refreshes atomic.Int32
	src := newSource(f, clk, &refreshes)
	ctx := context.Background()
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.tokenDelay = 300 * time.Millisecond
	f.mu.Unlock()
	clk.Advance(56 * time.Minute)
	start := time.Now()
	for range 10 {
		tok, err := src.Token(ctx)
		if err != nil || tok != first {
			t.Fatalf("Token = %q, %v; want the cached token", tok, err)
		}
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Token blocked for %s during a background refresh", d)
	}
	waitFor(t, "the background refresh", func() bool { return refreshes.Load() == 2 })
	eq(t, "fetches", f.tokenHits.Load(), 2)
}

func TestOAuthFailedRefreshServesTokenUntilExpiry(t *testing.T) {
	t.Parallel()
	f := newFakeAuth(t, "", "3600")
	clk := &clock{t: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)}
	src := newSource(f, clk, nil)
	ctx := context.Background()
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.failToken = true
	f.mu.Unlock()

	clk.Advance(56 * time.Minute) // inside the margin, before expiry
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatalf("inside the margin: %v", err)
	}
	eq(t, "token", tok, first)
	waitFor(t, "the failed background refresh", func() bool { return f.tokenHits.Load() == 2 })
	// The failed refresh is not retried on every call: the next attempt waits a few seconds.
	for range 5 {
		if tok, err := src.Token(ctx); err != nil || tok != first {
			t.Fatalf("Token = %q, %v; want the cached token", tok, err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	eq(t, "fetches right after a failure", f.tokenHits.Load(), 2)

	clk.Advance(5 * time.Minute) // past expiry: callers wait for a fetch, which fails
	_, err = src.Token(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Endpoint != EndpointOAuthAccessToken || ae.HTTPStatus != 503 || !ae.Retryable {
		t.Fatalf("err = %v, want a retryable 503 from the access-token endpoint", err)
	}
}

// A 401 invalidates the token, fetches exactly one new one and replays the identical request once.
func TestUnauthorizedRefreshesOnceAndReplays(t *testing.T) {
	t.Parallel()
	f := newFakeAuth(t, "", "86400")
	var refreshes atomic.Int32
	src := newSource(f, nil, &refreshes)
	obs := &observer{}
	c, err := New(Config{BaseURL: f.srv.URL, Tokens: src, Observe: obs.observe})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := src.Token(ctx); err != nil { // tok-1 cached
		t.Fatal(err)
	}
	f.revokeAll() // Interlace dropped tok-1 early

	req := CreateWalletRequest{ReferenceID: "92a86ee7-5bb7-4272-afdb-3865bea9a2d5", AccountID: guideAccount, Nickname: "Developer"}
	w, err := c.CreateWallet(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "wallet", w.ID, guideWallet)
	eq(t, "token fetches", f.tokenHits.Load(), 2)
	eq(t, "OnRefresh calls", refreshes.Load(), 2)
	eq(t, "API calls", f.apiHits.Load(), 2)
	f.mu.Lock()
	defer f.mu.Unlock()
	eq(t, "first token", f.apiTokens[0], "tok-1")
	eq(t, "replay token", f.apiTokens[1], "tok-2")
	eq(t, "replayed body", f.apiBodies[1], f.apiBodies[0])
	eq(t, "replayed Idempotency-Key", f.apiIdemKeys[1], f.apiIdemKeys[0])
	eq(t, "Idempotency-Key", f.apiIdemKeys[0], req.ReferenceID)
	if got := obs.all(); len(got) != 2 || got[0].status != "401" || got[1].status != "200" {
		t.Errorf("observed %v, want 401 then 200", got)
	}
}

func TestUnauthorizedTwiceIsRetryable401(t *testing.T) {
	t.Parallel()
	f := newFakeAuth(t, "", "86400")
	f.mu.Lock()
	f.refuseAll = true // tokens are issued, but the API accepts none of them
	f.mu.Unlock()
	c, err := New(Config{BaseURL: f.srv.URL, Tokens: newSource(f, nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.GetWallet(ctx, guideWallet)
	var ae *APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != 401 || !ae.Retryable || ae.Code != "010401" {
		t.Fatalf("err = %v, want a retryable 401", err)
	}
	eq(t, "API calls", f.apiHits.Load(), 2)
	eq(t, "token fetches", f.tokenHits.Load(), 2)

	// The refused token is dropped too: the next call starts with a fresh one.
	_, _ = c.GetWallet(ctx, guideWallet)
	eq(t, "token fetches after next call", f.tokenHits.Load(), 4)
	f.mu.Lock()
	defer f.mu.Unlock()
	eq(t, "tokens used", strings.Join(f.apiTokens, ","), "tok-1,tok-2,tok-3,tok-4")
}

func TestStaticTokenUnauthorizedReplaysOnce(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(401) })
	c, _ := newTestClient(t, up.URL)
	_, err := c.InternalTransfer(context.Background(), sweepRequest())
	var ae *APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != 401 || !ae.Retryable {
		t.Fatalf("err = %v, want a retryable 401", err)
	}
	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests, want 2", len(reqs))
	}
	eq(t, "replayed body", string(reqs[1].Body), string(reqs[0].Body))
	eq(t, "replayed key", reqs[1].Header.Get("Idempotency-Key"), reqs[0].Header.Get("Idempotency-Key"))
}

// Many requests refused at once with the same token cause one refresh, not one each.
func TestConcurrentUnauthorizedShareOneRefresh(t *testing.T) {
	t.Parallel()
	f := newFakeAuth(t, "", "86400")
	src := newSource(f, nil, nil)
	c, err := New(Config{BaseURL: f.srv.URL, Tokens: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	f.revokeAll()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.GetWallet(ctx, guideWallet); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	eq(t, "token fetches", f.tokenHits.Load(), 2)
}

func TestOAuthRejectionsAndSecrets(t *testing.T) {
	t.Parallel()
	t.Run("WrongSecretIsRejectedWithoutLeakingIt", func(t *testing.T) {
		t.Parallel()
		f := newFakeAuth(t, "", "86400")
		src := NewOAuthTokenSource(OAuthConfig{BaseURL: f.srv.URL, ClientID: testClientID, ClientSecret: "wrong-secret-canary"})
		_, err := src.Token(context.Background())
		var ae *APIError
		if !errors.As(err, &ae) || ae.Endpoint != EndpointOAuthAccessToken || ae.Code != "010401" || ae.Retryable {
			t.Fatalf("err = %v, want a definite rejection from the access-token endpoint", err)
		}
		secretFree(t, err, "wrong-secret-canary")
		secretFree(t, err, fmt.Sprintf("%032x", 1)) // the authorization code

		// Through the client the same trouble is retryable: it must not fail a money movement.
		c, err := New(Config{BaseURL: f.srv.URL, Tokens: src})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.InternalTransfer(context.Background(), sweepRequest())
		if !errors.Is(err, ErrNoToken) || !IsRetryable(err) {
			t.Fatalf("err = %v, want retryable ErrNoToken", err)
		}
		secretFree(t, err, "wrong-secret-canary")
		eq(t, "API calls", f.apiHits.Load(), 0)
	})
	t.Run("AuthorizeErrorEnvelopeIsNotACode", func(t *testing.T) {
		t.Parallel()
		f := newFakeAuth(t, "", "86400")
		src := NewOAuthTokenSource(OAuthConfig{BaseURL: f.srv.URL, ClientID: "unknown", ClientSecret: testClientSecret})
		_, err := src.Token(context.Background())
		var ae *APIError
		if !errors.As(err, &ae) || ae.Endpoint != EndpointOAuthAuthorize || ae.HTTPStatus != 400 {
			t.Fatalf("err = %v, want a 400 from authorize", err)
		}
		eq(t, "token hits", f.tokenHits.Load(), 0)
	})
}

func TestParseOAuthAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body, code string
		ok         bool
	}{
		{`{"timestamp":1732400000,"code":"abc"}`, "abc", true},
		{`{"code":"000000","message":"success","data":{"timestamp":1,"code":"abc"}}`, "abc", true},
		{`{"code":0,"data":{"code":"abc"}}`, "abc", true},
		{`{"code":"010401","message":"bad client"}`, "", false},
		{`{"code":"010401","message":"bad client","data":{"code":"abc"}}`, "", false},
		{`{"code":"000000","message":"success"}`, "", false},
		{`{"code":"000000"}`, "", false},
		{`{"timestamp":1}`, "", false},
		{`[]`, "", false},
		{`null`, "", false},
	} {
		code, err := parseAuthorize([]byte(tc.body))
		if (err == nil) != tc.ok || code != tc.code {
			t.Errorf("parseAuthorize(%s) = %q, %v", tc.body, code, err)
		}
	}
	for _, tc := range []struct {
		body     string
		token    string
		lifetime time.Duration
		ok       bool
	}{
		{`{"accessToken":"t","refreshToken":"r","expiresIn":86400,"timestamp":1}`, "t", 24 * time.Hour, true},
		{`{"code":"000000","message":"success","data":{"accessToken":"t","expiresIn":"600"}}`, "t", 10 * time.Minute, true},
		{`{"code":0,"data":{"accessToken":"t"}}`, "t", defaultTokenLifetime, true},
		{`{"accessToken":"t","expiresIn":-5}`, "t", defaultTokenLifetime, true},
		{`{"code":"010401","message":"bad secret","data":{"accessToken":"t"}}`, "", 0, false},
		{`{"code":"010401","message":"bad secret"}`, "", 0, false},
		{`{"accessToken":""}`, "", 0, false},
		{`{"accessToken":5}`, "", 0, false},
		{`{"code":"000000","data":{}}`, "", 0, false},
	} {
		tok, lifetime, err := parseAccessToken([]byte(tc.body))
		if (err == nil) != tc.ok || tok != tc.token || lifetime != tc.lifetime {
			t.Errorf("parseAccessToken(%s) = %q, %s, %v", tc.body, tok, lifetime, err)
		}
	}
}

func TestRefreshMargin(t *testing.T) {
	t.Parallel()
	eq(t, "24h", refreshMargin(24*time.Hour), 5*time.Minute)
	eq(t, "50m", refreshMargin(50*time.Minute), 5*time.Minute)
	eq(t, "10m", refreshMargin(10*time.Minute), time.Minute)
	eq(t, "60s", refreshMargin(time.Minute), 6*time.Second)
}
