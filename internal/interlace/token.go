package interlace

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// TokenSource supplies the x-access-token header.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	// Invalidate is called after a 401 with the token that was refused. The next Token call fetches a
	// fresh one, but only if token is still the current one (another caller may have refreshed already).
	Invalidate(token string)
}

// StaticToken serves one pre-issued token forever (INTERLACE_ACCESS_TOKEN). Invalidate is a no-op:
// there is nothing to refresh, so a 401 is reported to the caller.
func StaticToken(token string) TokenSource { return &staticToken{token: token} }

type staticToken struct{ token string }

func (s *staticToken) Token(context.Context) (string, error) {
	if s.token == "" {
		return "", fmt.Errorf("%w: static token is empty", ErrNoToken)
	}
	return s.token, nil
}

func (s *staticToken) Invalidate(string) {}

// String and GoString keep the token out of anything that prints a Config with %v or %#v.
func (s *staticToken) String() string   { return "interlace.StaticToken(" + redacted + ")" }
func (s *staticToken) GoString() string { return s.String() }

// OAuthConfig configures NewOAuthTokenSource.
type OAuthConfig struct {
	BaseURL      string
	ClientID     string
	ClientSecret string
	HTTPClient   *http.Client     // optional; defaults to NewHTTPClient()
	Now          func() time.Time // optional; defaults to time.Now (tests move the clock)
	OnRefresh    func()           // optional; called after every successful token fetch (metrics)
}

// String and GoString keep the client secret out of logs.
func (c OAuthConfig) String() string {
	return fmt.Sprintf("OAuthConfig{BaseURL:%s ClientID:%s ClientSecret:%s}", c.BaseURL, c.ClientID, redacted)
}
func (c OAuthConfig) GoString() string { return c.String() }

const (
	// oauthFetchTimeout bounds one authorize + access-token exchange. The fetch runs detached from the
	// caller that started it (others share it), so it needs its own limit.
	oauthFetchTimeout = 20 * time.Second
	// defaultTokenLifetime is assumed when the answer has no usable expiresIn. The docs say 24 h; one
	// hour costs a few extra fetches a day and never serves a token Interlace has already dropped for long.
	defaultTokenLifetime = time.Hour
	maxRefreshMargin     = 5 * time.Minute
	refreshRetryDelay    = 5 * time.Second
)

// NewOAuthTokenSource fetches tokens with Interlace's two-step OAuth flow and caches them. Once a token
// is inside its refresh margin (5 minutes or 10% of its lifetime, whichever is smaller) it is still
// served while a fresh one is fetched in the background; callers only wait when there is no usable
// token. Concurrent callers share one fetch.
func NewOAuthTokenSource(cfg OAuthConfig) TokenSource {
	s := &oauthSource{
		base:      strings.TrimRight(cfg.BaseURL, "/"),
		clientID:  cfg.ClientID,
		secret:    cfg.ClientSecret,
		http:      cfg.HTTPClient,
		now:       cfg.Now,
		onRefresh: cfg.OnRefresh,
	}
	if s.http == nil {
		s.http = NewHTTPClient()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

type oauthSource struct {
	base, clientID, secret string
	http                   *http.Client
	now                    func() time.Time
	onRefresh              func()

	mu        sync.Mutex
	token     string
	refreshAt time.Time // from here on a background refresh starts; the token is still served
	expiresAt time.Time // from here on the token is not served; callers wait for a fresh one
	retryAt   time.Time // no background refresh before this (set after a failed fetch)
	inflight  *tokenFetch
}

type tokenFetch struct {
	done  chan struct{}
	token string
	err   error
}

func (s *oauthSource) String() string   { return "interlace.OAuthTokenSource(" + s.clientID + ")" }
func (s *oauthSource) GoString() string { return s.String() }

func (s *oauthSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	now := s.now()
	if s.token != "" && now.Before(s.expiresAt) {
		// Inside the refresh margin the current token still works: refresh in the background so no
		// caller waits for the OAuth round trip (or for a hanging OAuth endpoint).
		if !now.Before(s.refreshAt) && s.inflight == nil && !now.Before(s.retryAt) {
			s.startFetch(ctx)
		}
		t := s.token
		s.mu.Unlock()
		return t, nil
	}
	f := s.inflight
	if f == nil {
		f = s.startFetch(ctx)
	}
	s.mu.Unlock()

	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// startFetch must be called with s.mu held. The fetch is detached from ctx (values kept, cancellation
// dropped): callers that give up must not cancel the fetch the others wait for.
func (s *oauthSource) startFetch(ctx context.Context) *tokenFetch {
	f := &tokenFetch{done: make(chan struct{})}
	s.inflight = f
	go s.fetch(context.WithoutCancel(ctx), f)
	return f
}

func (s *oauthSource) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token != "" && token == s.token {
		s.token, s.refreshAt, s.expiresAt, s.retryAt = "", time.Time{}, time.Time{}, time.Time{}
	}
}

func (s *oauthSource) fetch(ctx context.Context, f *tokenFetch) {
	ctx, cancel := context.WithTimeout(ctx, oauthFetchTimeout)
	defer cancel()
	start := s.now() // the lifetime counts from before the request, so we never overestimate it
	token, lifetime, err := s.exchange(ctx)

	s.mu.Lock()
	if err == nil {
		s.token = token
		s.expiresAt = start.Add(lifetime)
		s.refreshAt = s.expiresAt.Add(-refreshMargin(lifetime))
	} else {
		// Background refreshes after a failure wait a little, so that a failing OAuth endpoint is not
		// hit by every API call inside the margin.
		s.retryAt = s.now().Add(refreshRetryDelay)
	}
	s.inflight = nil
	s.mu.Unlock()

	if err == nil && s.onRefresh != nil {
		s.onRefresh() // before waking the waiters, so the count is current when they continue
	}
	f.token, f.err = token, err
	close(f.done)
}

// refreshMargin is 5 minutes or 10% of the lifetime, whichever is smaller, so short-lived tokens
// (sandboxes, tests) are not refreshed on every call.
func refreshMargin(lifetime time.Duration) time.Duration {
	return min(maxRefreshMargin, lifetime/10)
}

func (s *oauthSource) exchange(ctx context.Context) (string, time.Duration, error) {
	u := s.base + "/open-api/oauth/authorize?" + url.Values{"clientId": {s.clientID}}.Encode()
	body, err := s.roundTrip(ctx, EndpointOAuthAuthorize, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	code, err := parseAuthorize(body)
	if err != nil {
		return "", 0, scrub(err, s.secret)
	}

	payload, err := json.Marshal(map[string]string{"clientId": s.clientID, "clientSecret": s.secret, "code": code})
	if err != nil {
		return "", 0, err
	}
	body, err = s.roundTrip(ctx, EndpointOAuthAccessToken, http.MethodPost, s.base+"/open-api/oauth/access-token", payload)
	if err != nil {
		return "", 0, scrub(err, s.secret, code)
	}
	token, lifetime, err := parseAccessToken(body)
	if err != nil {
		return "", 0, scrub(err, s.secret, code)
	}
	return token, lifetime, nil
}

// roundTrip returns the body of a 2xx answer, or an *APIError.
func (s *oauthSource) roundTrip(ctx context.Context, endpoint, method, u string, payload []byte) ([]byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &APIError{Endpoint: endpoint, Message: "bad OAuth URL", Err: fmt.Errorf("%w: %w", ErrInvalidRequest, err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, &APIError{Endpoint: endpoint, Message: transportLabel(err), Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, &APIError{Endpoint: endpoint, HTTPStatus: resp.StatusCode, Message: "reading body", Retryable: true, Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 || len(body) > maxBodyBytes {
		// Reuse the generic classification (status, code, message, Retry-After).
		return nil, decodeResponse(endpoint, resp.StatusCode, resp.Header, body, s.now(), nil)
	}
	return body, nil
}

// parseAuthorize accepts {"timestamp","code"} bare, or inside {"code":"000000","data":{…}}.
func parseAuthorize(body []byte) (string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return "", oauthMalformed(EndpointOAuthAuthorize, "undecodable answer", err)
	}
	env, _ := parseEnvelope(body)
	if d, ok := raw["data"]; ok && !isNull(d) {
		if env.hasCode && !env.success() {
			return "", oauthRejected(EndpointOAuthAuthorize, env)
		}
		var inner struct {
			Code string `json:"code"`
		}
		if err := json.Unmarshal(d, &inner); err != nil || inner.Code == "" {
			return "", oauthMalformed(EndpointOAuthAuthorize, "no authorization code in data", err)
		}
		return inner.Code, nil
	}
	if _, ok := raw["message"]; ok {
		// {"code":"…","message":"…"} without data is an error envelope, not a bare answer whose
		// "code" would be the authorization code.
		return "", oauthRejected(EndpointOAuthAuthorize, env)
	}
	var bare struct {
		Code string `json:"code"`
	}
	// A success code with nothing else is an envelope without data, not an authorization code.
	if err := json.Unmarshal(body, &bare); err != nil || bare.Code == "" || env.success() {
		return "", oauthMalformed(EndpointOAuthAuthorize, "no authorization code", err)
	}
	return bare.Code, nil
}

type accessTokenAnswer struct {
	AccessToken string  `json:"accessToken"`
	ExpiresIn   FlexInt `json:"expiresIn"` // seconds
}

// parseAccessToken accepts {"accessToken",…} bare, or inside {"code":"000000","data":{…}}.
func parseAccessToken(body []byte) (string, time.Duration, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return "", 0, oauthMalformed(EndpointOAuthAccessToken, "undecodable answer", err)
	}
	env, _ := parseEnvelope(body)
	var ans accessTokenAnswer
	switch {
	case !isNull(raw["accessToken"]):
		if err := json.Unmarshal(body, &ans); err != nil {
			return "", 0, oauthMalformed(EndpointOAuthAccessToken, "undecodable answer", err)
		}
	case !isNull(raw["data"]):
		if env.hasCode && !env.success() {
			return "", 0, oauthRejected(EndpointOAuthAccessToken, env)
		}
		if err := json.Unmarshal(raw["data"], &ans); err != nil {
			return "", 0, oauthMalformed(EndpointOAuthAccessToken, "undecodable data", err)
		}
	default:
		return "", 0, oauthRejected(EndpointOAuthAccessToken, env)
	}
	if ans.AccessToken == "" {
		return "", 0, oauthMalformed(EndpointOAuthAccessToken, "empty accessToken", nil)
	}
	lifetime := time.Duration(ans.ExpiresIn) * time.Second
	if ans.ExpiresIn <= 0 || ans.ExpiresIn > FlexInt(10*365*24*3600) {
		lifetime = defaultTokenLifetime
	}
	return ans.AccessToken, lifetime, nil
}

// OAuth answers that are 2xx but unusable are retryable: the credentials may be fine and the next
// attempt may succeed. Only an explicit error code is a definite refusal.
func oauthMalformed(endpoint, msg string, err error) error {
	if err == nil {
		err = ErrMalformedResponse
	} else {
		err = fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	return &APIError{Endpoint: endpoint, HTTPStatus: http.StatusOK, Message: msg, Retryable: true, Err: err}
}

func oauthRejected(endpoint string, env envelope) error {
	msg := env.message
	if msg == "" {
		msg = "token request refused"
	}
	return &APIError{Endpoint: endpoint, HTTPStatus: http.StatusOK, Code: env.code, Message: msg, Retryable: inProgress(msg)}
}
