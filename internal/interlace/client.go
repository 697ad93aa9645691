// Package interlace is a typed client for the Interlace Open API endpoints a CryptoConnect
// Merchant-of-Record integration uses (see the MoR guide). Every method returns either a decoded answer
// or an *APIError that says whether repeating the identical request is safe and useful.
package interlace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Endpoint names used in APIError.Endpoint and passed to Config.Observe. They are fixed and few, so
// they are safe as metric label values.
const (
	EndpointCreateWallet             = "create_wallet"
	EndpointGetWallet                = "get_wallet"
	EndpointCreateAddress            = "create_address"
	EndpointListInfinityWallets      = "list_infinity_wallets"
	EndpointInternalTransfer         = "internal_transfer"
	EndpointEstimateQuote            = "estimate_quote"
	EndpointCreateTrade              = "create_trade"
	EndpointTransferFeeAndQuota      = "transfer_fee_and_quota"
	EndpointCreateBlockchainTransfer = "create_blockchain_transfer"
	EndpointGetBlockchainTransfer    = "get_blockchain_transfer"
	EndpointListTransfers            = "list_transfers"
	EndpointOAuthAuthorize           = "oauth_authorize"
	EndpointOAuthAccessToken         = "oauth_access_token"
	EndpointOAuthRefreshToken        = "oauth_refresh_token"
)

// Status labels passed to Config.Observe when no HTTP answer arrived.
const (
	StatusTimeout  = "timeout"
	StatusNetwork  = "network"
	StatusCanceled = "canceled" // the caller's context was cancelled (shutdown), not an upstream fault
)

const (
	defaultTimeout = 10 * time.Second
	// maxBodyBytes caps what is read from any answer; the largest legitimate answer is a few KiB.
	maxBodyBytes = 4 << 20
	userAgent    = "sweeper-interlace/1"
)

// Config configures New.
type Config struct {
	BaseURL    string
	Tokens     TokenSource
	HTTPClient *http.Client  // optional; NewHTTPClient() when nil
	Timeout    time.Duration // per HTTP request; default 10s
	// Observe, when set, is called once per HTTP request with a fixed endpoint name, the HTTP status as
	// text (or StatusTimeout / StatusNetwork / StatusCanceled) and the time the request took.
	Observe func(endpoint string, status string, d time.Duration)
}

// Client calls Interlace. It is safe for concurrent use.
type Client struct {
	base    string
	tokens  TokenSource
	http    *http.Client
	timeout time.Duration
	observe func(string, string, time.Duration)
	now     func() time.Time
}

// New checks cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("interlace: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("interlace: BaseURL must not carry a query, fragment or credentials")
	}
	if cfg.Tokens == nil {
		return nil, errors.New("interlace: Tokens is required")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("interlace: negative Timeout %s", cfg.Timeout)
	}
	c := &Client{
		base:    base,
		tokens:  cfg.Tokens,
		http:    cfg.HTTPClient,
		timeout: cfg.Timeout,
		observe: cfg.Observe,
		now:     time.Now,
	}
	if c.http == nil {
		c.http = NewHTTPClient()
	}
	if c.timeout == 0 {
		c.timeout = defaultTimeout
	}
	if c.observe == nil {
		c.observe = func(string, string, time.Duration) {}
	}
	return c, nil
}

// NewHTTPClient is the default transport: enough idle connections per host for a busy sweep worker
// (the default of 2 would make most requests open a new TLS connection), bounded dial and handshake
// times, and no redirect following. Redirects are refused because Go forwards custom headers such as
// x-access-token to the redirect target, and because a redirected POST silently turns into a GET.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// call describes one API request.
type call struct {
	endpoint string
	method   string
	path     string // escaped path below the base URL
	query    url.Values
	body     any    // JSON-encoded when not nil
	idemKey  string // Idempotency-Key header when not empty
}

// token waits for an access token at most as long as a token fetch takes, two
// requests (authorize, access-token) under the request timeout, so that one call
// has a known worst case (AttemptWorstCase). A fetch still running carries on for
// later callers.
func (c *Client) token(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, tokenRequests*c.timeout)
	defer cancel()
	return c.tokens.Token(ctx)
}

// do sends the request and decodes the answer's data into out (when not nil). A 401 invalidates the
// token and replays the identical request once with a fresh token.
func (c *Client) do(ctx context.Context, r call, out any) error {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return &APIError{Endpoint: r.endpoint, Message: "encoding request", Err: fmt.Errorf("%w: %w", ErrInvalidRequest, err)}
		}
	}
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}

	for attempt := 0; ; attempt++ {
		token, err := c.token(ctx)
		if err != nil {
			// Retryable: missing credentials must delay a money movement, never fail it for good.
			return &APIError{Endpoint: r.endpoint, Retryable: true, Err: fmt.Errorf("%w: %w", ErrNoToken, err)}
		}
		if token == "" {
			return &APIError{Endpoint: r.endpoint, Retryable: true, Err: ErrNoToken}
		}
		status, header, body, err := c.roundTrip(ctx, r, target, payload, token)
		if err != nil {
			return scrub(err, token)
		}
		if status == http.StatusUnauthorized {
			c.tokens.Invalidate(token)
			if attempt == 0 {
				continue
			}
		}
		return scrub(decodeResponse(r.endpoint, status, header, body, c.now(), out), token)
	}
}

// roundTrip performs one HTTP exchange under the per-request timeout. It returns an *APIError only
// when no complete answer arrived.
func (c *Client) roundTrip(ctx context.Context, r call, target string, payload []byte, token string) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, rd)
	if err != nil {
		return 0, nil, nil, &APIError{Endpoint: r.endpoint, Message: "building request", Err: fmt.Errorf("%w: %w", ErrInvalidRequest, err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("x-access-token", token)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.idemKey != "" {
		req.Header.Set("Idempotency-Key", r.idemKey)
	}
	// net/http replays a request carrying an Idempotency-Key by itself when a
	// reused connection closes before the answer: exactly the "applied, answer
	// lost" case. That hidden second attempt would hide the first one's unknown
	// outcome (its answer, a duplicate error, would look like a first rejection).
	// Without GetBody the transport cannot replay: every attempt is the caller's,
	// recorded as such.
	req.GetBody = nil

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		label := transportLabel(err)
		c.observe(r.endpoint, label, time.Since(start))
		return 0, nil, nil, &APIError{Endpoint: r.endpoint, Message: label, Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	c.observe(r.endpoint, strconv.Itoa(resp.StatusCode), time.Since(start))
	if err != nil {
		// The status line arrived but the body did not. Whatever the status said, there is no complete
		// answer, so this counts as "no HTTP answer" (HTTPStatus 0) and the outcome is unknown.
		return 0, nil, nil, &APIError{Endpoint: r.endpoint,
			Message:   fmt.Sprintf("HTTP %d answer cut short: %s", resp.StatusCode, transportLabel(err)),
			Retryable: true, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now()), Err: err}
	}
	return resp.StatusCode, resp.Header, body, nil
}

// transportLabel classifies a failed exchange for metrics and messages.
func transportLabel(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return StatusTimeout
	case errors.Is(err, context.Canceled):
		return StatusCanceled
	default:
		return StatusNetwork
	}
}
