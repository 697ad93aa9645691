package interlace

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sweeperhq/sweeper/internal/jobs"
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

// Token endpoint styles (INTERLACE_AUTH_STYLE, contract §10).
const (
	// AuthStyleAuto tries the v3 endpoints and falls back to the unversioned ones on a 404.
	AuthStyleAuto = "auto"
	// AuthStyleV3 is /open-api/v3/oauth/*: {clientId, code}, answers in the code:"000000" envelope.
	AuthStyleV3 = "v3"
	// AuthStyleLegacy is /open-api/oauth/*: {clientId, clientSecret, code}, bare answers.
	AuthStyleLegacy = "legacy"
)

// tokenPaths is one style's set of endpoints.
type tokenPaths struct {
	style, authorize, access, refresh string
	// sendSecret: the unversioned access-token call carries clientSecret in its body; the v3 one does not
	// (there the secret only keys the strict-mode signature).
	sendSecret bool
}

var (
	v3Paths = tokenPaths{style: AuthStyleV3, authorize: "/open-api/v3/oauth/authorize",
		access: "/open-api/v3/oauth/access-token", refresh: "/open-api/v3/oauth/refresh-token"}
	legacyPaths = tokenPaths{style: AuthStyleLegacy, authorize: "/open-api/oauth/authorize",
		access: "/open-api/oauth/access-token", refresh: "/open-api/oauth/refresh-token", sendSecret: true}
)

// TokenSigner computes the X-Signature header of a token call (Interlace's "strict access token mode",
// on by default for new integrations) from the client secret, the POST body's parameters and the
// X-Timestamp value (Unix seconds). OAuthConfig.Sign replaces the default, SignTokenCall. A signer that
// returns "" sends neither header (UnsignedTokenCalls; `sweeper doctor` uses it to tell whether an account
// is in strict mode).
type TokenSigner func(clientSecret string, params map[string]string, timestamp int64) string

// SignTokenCall is sweeper's strict-mode signature. UNCONFIRMED: Interlace documents that X-Signature is
// "generated using the POST body parameters and client_secret" with X-Timestamp in Unix seconds, but the
// page's string-to-sign was not legible (interlace-api-facts.md §4.1). This is the most common scheme of
// that description, chosen until Interlace's text says otherwise:
//
//	string-to-sign = the body's parameters sorted by name, each "name=value", joined with "&",
//	                 then "&timestamp=" and the X-Timestamp value
//	X-Signature    = lowercase hex of HMAC-SHA256(key = client_secret, string-to-sign)
//
// For example {"clientId":"abc","code":"f00"} at 1700000000 signs "clientId=abc&code=f00&timestamp=1700000000".
// If a real account refuses it, `sweeper doctor` says so; replace this one function (or pass
// OAuthConfig.Sign) and nothing else changes.
func SignTokenCall(clientSecret string, params map[string]string, timestamp int64) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
		b.WriteByte('&')
	}
	b.WriteString("timestamp=")
	b.WriteString(strconv.FormatInt(timestamp, 10))
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(b.String()))
	return hex.EncodeToString(m.Sum(nil))
}

// UnsignedTokenCalls is a TokenSigner that sends no strict-mode headers.
func UnsignedTokenCalls(string, map[string]string, int64) string { return "" }

// OAuthConfig configures NewOAuthTokenSource.
type OAuthConfig struct {
	BaseURL      string
	ClientID     string
	ClientSecret string
	Style        string           // AuthStyleAuto (also when empty), AuthStyleV3 or AuthStyleLegacy
	Sign         TokenSigner      // optional; SignTokenCall by default
	HTTPClient   *http.Client     // optional; defaults to NewHTTPClient()
	Now          func() time.Time // optional; defaults to time.Now (tests move the clock)
	OnRefresh    func()           // optional; called after every successful token fetch (metrics)
	// OnStyle, optional, is told the style whose endpoints answered, on the first token and whenever it
	// changes (auto fell back), so the process can report what it detected.
	OnStyle func(style string)
}

// String and GoString keep the client secret out of logs.
func (c OAuthConfig) String() string {
	return fmt.Sprintf("OAuthConfig{BaseURL:%s ClientID:%s ClientSecret:%s Style:%s}", c.BaseURL, c.ClientID, redacted, c.Style)
}
func (c OAuthConfig) GoString() string { return c.String() }

const (
	// oauthFetchTimeout bounds one token fetch (a refresh, or authorize + access-token, possibly in both
	// styles). The fetch runs detached from the caller that started it (others share it), so it needs
	// its own limit.
	oauthFetchTimeout = 20 * time.Second
	// defaultTokenLifetime is assumed when the answer has no usable expiresIn. The docs say 24 h; one
	// hour costs a few extra fetches a day and never serves a token Interlace has already dropped for long.
	defaultTokenLifetime = time.Hour
	maxRefreshMargin     = 5 * time.Minute
	// After a failed token fetch or Infinity discovery no caller triggers another before a backoff of
	// 1 s, 2 s, 4 s … up to one minute. Without it every API call of every sweep would hit a failing
	// endpoint; with it a recovered endpoint is noticed within a minute.
	failureBackoffBase = time.Second
	failureBackoffMax  = time.Minute
)

// NewOAuthTokenSource fetches tokens with Interlace's two-step OAuth flow and caches them. Once a token
// is inside its refresh margin (5 minutes or 10% of its lifetime, whichever is smaller) it is still
// served while a fresh one is fetched in the background (with the refresh token when there is one);
// callers only wait when there is no usable token. Concurrent callers share one fetch. Token calls carry
// the strict-mode headers X-Timestamp and X-Signature (see SignTokenCall); servers that do not ask for
// them ignore them.
func NewOAuthTokenSource(cfg OAuthConfig) *OAuthSource {
	s := &OAuthSource{
		base:      strings.TrimRight(cfg.BaseURL, "/"),
		clientID:  cfg.ClientID,
		secret:    cfg.ClientSecret,
		pinned:    cfg.Style,
		sign:      cfg.Sign,
		http:      cfg.HTTPClient,
		now:       cfg.Now,
		onRefresh: cfg.OnRefresh,
		onStyle:   cfg.OnStyle,
	}
	if s.pinned != AuthStyleV3 && s.pinned != AuthStyleLegacy {
		s.pinned = "" // auto; config.Load has already refused anything else
	}
	if s.sign == nil {
		s.sign = SignTokenCall
	}
	if s.http == nil {
		s.http = NewHTTPClient()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// OAuthSource is the TokenSource of NewOAuthTokenSource.
type OAuthSource struct {
	base, clientID, secret string
	pinned                 string // AuthStyleV3 or AuthStyleLegacy when configured; "" = auto
	sign                   TokenSigner
	http                   *http.Client
	now                    func() time.Time
	onRefresh              func()
	onStyle                func(string)

	mu        sync.Mutex
	token     string
	refresh   string    // refresh token of the current pair ("" when the answer had none)
	style     string    // the style whose endpoints issued the current pair; kept for the process
	refreshAt time.Time // from here on a background refresh starts; the token is still served
	expiresAt time.Time // from here on the token is not served; callers wait for a fresh one
	failures  int       // fetches failed in a row
	retryAt   time.Time // no fetch before this (set after a failed fetch)
	lastErr   error     // the last failure, returned while backing off
	inflight  *tokenFetch
}

type tokenFetch struct {
	done  chan struct{}
	token string
	err   error
}

func (s *OAuthSource) String() string   { return "interlace.OAuthTokenSource(" + s.clientID + ")" }
func (s *OAuthSource) GoString() string { return s.String() }

// Style reports which token endpoints answered (AuthStyleV3 or AuthStyleLegacy); "" before the first
// token.
func (s *OAuthSource) Style() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.style
}

// Token returns a usable access token. While a failed fetch is backing off it returns that failure
// (wrapped) without calling Interlace.
func (s *OAuthSource) Token(ctx context.Context) (string, error) {
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
		if now.Before(s.retryAt) && s.lastErr != nil {
			err := fmt.Errorf("token fetch failed %d time(s) in a row, next attempt in %s: %w",
				s.failures, s.retryAt.Sub(now).Round(time.Millisecond), s.lastErr)
			s.mu.Unlock()
			return "", err
		}
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
func (s *OAuthSource) startFetch(ctx context.Context) *tokenFetch {
	f := &tokenFetch{done: make(chan struct{})}
	s.inflight = f
	go s.fetch(context.WithoutCancel(ctx), f)
	return f
}

// Invalidate drops token if it is still the current one. The refresh token is kept: the next fetch
// tries it first ("refresh once on a 401", contract §1).
func (s *OAuthSource) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token != "" && token == s.token {
		s.token, s.refreshAt, s.expiresAt = "", time.Time{}, time.Time{}
	}
}

func (s *OAuthSource) fetch(ctx context.Context, f *tokenFetch) {
	ctx, cancel := context.WithTimeout(ctx, oauthFetchTimeout)
	defer cancel()
	start := s.now() // the lifetime counts from before the request, so we never overestimate it
	ans, style, err := s.obtain(ctx)

	s.mu.Lock()
	changed := err == nil && style != s.style
	if err == nil {
		s.token, s.refresh, s.style = ans.token, ans.refresh, style
		s.expiresAt = start.Add(ans.lifetime)
		s.refreshAt = s.expiresAt.Add(-refreshMargin(ans.lifetime))
		s.failures, s.retryAt, s.lastErr = 0, time.Time{}, nil
	} else {
		// Failures are not cached as results: after the backoff the next caller fetches again.
		s.failures++
		s.retryAt = s.now().Add(backoff(s.failures))
		s.lastErr = err
	}
	s.inflight = nil
	s.mu.Unlock()

	if err == nil && s.onRefresh != nil {
		s.onRefresh() // before waking the waiters, so the count is current when they continue
	}
	if changed && s.onStyle != nil {
		s.onStyle(style)
	}
	f.token, f.err = ans.token, err
	close(f.done)
}

// backoff is the wait after n failed calls in a row (a token fetch, an Infinity discovery): the project's
// one retry policy (exponential from failureBackoffBase up to failureBackoffMax, equal jitter, so that
// replicas do not retry in step).
func backoff(n int) time.Duration {
	return jobs.Backoff(n, failureBackoffBase, failureBackoffMax, 0)
}

// refreshMargin is 5 minutes or 10% of the lifetime, whichever is smaller, so short-lived tokens
// (sandboxes, tests) are not refreshed on every call.
func refreshMargin(lifetime time.Duration) time.Duration {
	return min(maxRefreshMargin, lifetime/10)
}

// obtain refreshes the current pair when it can, and otherwise runs the full flow.
func (s *OAuthSource) obtain(ctx context.Context) (tokenAnswer, string, error) {
	s.mu.Lock()
	refresh, style := s.refresh, s.style
	s.mu.Unlock()
	if refresh != "" && style != "" {
		ans, err := s.refreshWith(ctx, pathsOf(style), refresh)
		if err == nil {
			return ans, style, nil
		}
		// The refresh token may have gone with the access token (or never worked on this account); the
		// full flow needs nothing the refresh had.
	}
	var tried []string
	for _, p := range s.candidates(style) {
		ans, err := s.exchange(ctx, p)
		if err == nil {
			return ans, p.style, nil
		}
		if s.pinned == "" && isNotFound(err) && len(tried) == 0 {
			tried = append(tried, p.style+" token endpoints answered 404")
			continue // auto: the other style's endpoints may exist
		}
		if len(tried) > 0 {
			return tokenAnswer{}, "", fmt.Errorf("%s; %s token endpoints: %w", tried[0], p.style, err)
		}
		return tokenAnswer{}, "", fmt.Errorf("%s token endpoints: %w", p.style, err)
	}
	return tokenAnswer{}, "", errors.New("no token endpoint style to try") // unreachable: candidates is never empty
}

// candidates lists the styles to try, in order: the pinned one alone; in auto mode the one that worked
// last (remembered), then the other.
func (s *OAuthSource) candidates(remembered string) []tokenPaths {
	switch {
	case s.pinned != "":
		return []tokenPaths{pathsOf(s.pinned)}
	case remembered == AuthStyleLegacy:
		return []tokenPaths{legacyPaths, v3Paths}
	default:
		return []tokenPaths{v3Paths, legacyPaths}
	}
}

func pathsOf(style string) tokenPaths {
	if style == AuthStyleLegacy {
		return legacyPaths
	}
	return v3Paths
}

// isNotFound: the endpoint does not exist on this server (the only answer that makes auto fall back;
// a refusal of the credentials must be reported, not hidden behind the other style).
func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound
}

func (s *OAuthSource) exchange(ctx context.Context, p tokenPaths) (tokenAnswer, error) {
	u := s.base + p.authorize + "?" + url.Values{"clientId": {s.clientID}}.Encode()
	body, err := s.roundTrip(ctx, EndpointOAuthAuthorize, http.MethodGet, u, nil)
	if err != nil {
		return tokenAnswer{}, err
	}
	code, err := parseAuthorize(body)
	if err != nil {
		return tokenAnswer{}, scrub(err, s.secret)
	}
	params := map[string]string{"clientId": s.clientID, "code": code}
	if p.sendSecret {
		params["clientSecret"] = s.secret
	}
	ans, err := s.post(ctx, EndpointOAuthAccessToken, s.base+p.access, params)
	if err != nil {
		return tokenAnswer{}, scrub(err, s.secret, code)
	}
	return ans, nil
}

func (s *OAuthSource) refreshWith(ctx context.Context, p tokenPaths, refresh string) (tokenAnswer, error) {
	ans, err := s.post(ctx, EndpointOAuthRefreshToken, s.base+p.refresh,
		map[string]string{"clientId": s.clientID, "refreshToken": refresh})
	if err != nil {
		return tokenAnswer{}, scrub(err, s.secret, refresh)
	}
	return ans, nil
}

// post sends a signed token call and parses the token pair it answers.
func (s *OAuthSource) post(ctx context.Context, endpoint, u string, params map[string]string) (tokenAnswer, error) {
	payload, err := json.Marshal(params)
	if err != nil {
		return tokenAnswer{}, err
	}
	ts := s.now().Unix()
	h := http.Header{}
	if sig := s.sign(s.secret, params, ts); sig != "" {
		h.Set("X-Timestamp", strconv.FormatInt(ts, 10))
		h.Set("X-Signature", sig)
	}
	body, err := s.roundTripWith(ctx, endpoint, http.MethodPost, u, payload, h)
	if err != nil {
		return tokenAnswer{}, err
	}
	return parseTokenAnswer(endpoint, body)
}

// roundTrip returns the body of a 2xx answer, or an *APIError.
func (s *OAuthSource) roundTrip(ctx context.Context, endpoint, method, u string, payload []byte) ([]byte, error) {
	return s.roundTripWith(ctx, endpoint, method, u, payload, nil)
}

func (s *OAuthSource) roundTripWith(ctx context.Context, endpoint, method, u string, payload []byte, extra http.Header) ([]byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &APIError{Endpoint: endpoint, Message: "bad OAuth URL", Err: fmt.Errorf("%w: %w", ErrInvalidRequest, err)}
	}
	for k, v := range extra {
		req.Header[k] = v
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
	AccessToken  string  `json:"accessToken"`
	RefreshToken string  `json:"refreshToken"`
	ExpiresIn    FlexInt `json:"expiresIn"` // seconds
}

// tokenAnswer is a parsed access-token or refresh-token answer.
type tokenAnswer struct {
	token, refresh string
	lifetime       time.Duration
}

// parseAccessToken accepts {"accessToken",…} bare, or inside {"code":"000000","data":{…}}.
func parseAccessToken(body []byte) (string, time.Duration, error) {
	ans, err := parseTokenAnswer(EndpointOAuthAccessToken, body)
	return ans.token, ans.lifetime, err
}

// parseTokenAnswer reads an access-token or refresh-token answer, bare or wrapped.
func parseTokenAnswer(endpoint string, body []byte) (tokenAnswer, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return tokenAnswer{}, oauthMalformed(endpoint, "undecodable answer", err)
	}
	env, _ := parseEnvelope(body)
	var ans accessTokenAnswer
	switch {
	case !isNull(raw["accessToken"]):
		if err := json.Unmarshal(body, &ans); err != nil {
			return tokenAnswer{}, oauthMalformed(endpoint, "undecodable answer", err)
		}
	case !isNull(raw["data"]):
		if env.hasCode && !env.success() {
			return tokenAnswer{}, oauthRejected(endpoint, env)
		}
		if err := json.Unmarshal(raw["data"], &ans); err != nil {
			return tokenAnswer{}, oauthMalformed(endpoint, "undecodable data", err)
		}
	default:
		return tokenAnswer{}, oauthRejected(endpoint, env)
	}
	if ans.AccessToken == "" {
		return tokenAnswer{}, oauthMalformed(endpoint, "empty accessToken", nil)
	}
	lifetime := time.Duration(ans.ExpiresIn) * time.Second
	if ans.ExpiresIn <= 0 || ans.ExpiresIn > FlexInt(10*365*24*3600) {
		lifetime = defaultTokenLifetime
	}
	return tokenAnswer{token: ans.AccessToken, refresh: ans.RefreshToken, lifetime: lifetime}, nil
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
