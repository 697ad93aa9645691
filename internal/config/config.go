// Package config reads sweeper's configuration from the environment (contract §1).
// Every variable may instead be given as NAME_FILE, a path whose content is the
// value, which is how secrets are mounted in Kubernetes. Secrets are never printed.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace"
)

// Var documents one environment variable, for --help and the README.
type Var struct {
	Name    string
	Default string
	Secret  bool
	Usage   string
}

// Vars lists every variable sweeper reads, in the order --help prints them.
var Vars = []Var{
	{"DATABASE_URL", "", true, "PostgreSQL connection string (required)"},
	{"SWEEPER_HTTP_ADDR", ":8080", false, "listen address of the webhook/operator HTTP server"},
	{"INTERLACE_BASE_URL", "https://api-sandbox.interlace.money", false, "Interlace API root"},
	{"INTERLACE_CLIENT_ID", "", false, "OAuth client id (required unless INTERLACE_ACCESS_TOKEN)"},
	{"INTERLACE_CLIENT_SECRET", "", true, "OAuth client secret (required unless INTERLACE_ACCESS_TOKEN)"},
	{"INTERLACE_ACCESS_TOKEN", "", true, "a pre-issued access token; skips the OAuth flow"},
	{"INTERLACE_AUTH_STYLE", "auto", false, "token endpoints: auto (v3, then unversioned after a 404), v3 or legacy"},
	{"INTERLACE_ACCOUNT_ID", "", false, "the merchant's Interlace account id (required)"},
	{"INTERLACE_WEBHOOK_SECRET", "INTERLACE_CLIENT_SECRET", true, "HMAC key for webhook signatures"},
	{"INTERLACE_WEBHOOK_SECRET_PREVIOUS", "", true, "a second accepted webhook key, for rotation"},
	{"INTERLACE_WEBHOOK_SIGNED_PART", "resource", false, "what the signature covers: resource or body"},
	{"SWEEPER_INFINITY_WALLET_ID", "", false, "Infinity balance id to sweep into; discovered and cached when empty"},
	{"SWEEPER_TARGET_CURRENCY", "USD", false, "currency credited in the Infinity Account"},
	{"SWEEPER_SWEEP_CURRENCIES", "USDC,USDT,WUSD", false, "deposit currencies that are swept; others are recorded and skipped (USD is not: a USD credit to a wallet is a payout's own funding)"},
	// Confirmation trades one upstream list call per batch of up to 90 deposits
	// (and a round trip of latency) for never moving money on a notification alone.
	{"SWEEPER_CONFIRM_DEPOSITS", "true", false, "read every deposit back from Interlace's records before its money moves (true or false)"},
	// Shorter finds a deposit whose webhooks were lost sooner, for one list call
	// (more under heavy volume) per interval across the cluster.
	{"SWEEPER_POLL_INTERVAL", "5m", false, "how often Interlace's transfer list is read for deposits no webhook brought; from 1s; 0 turns it off"},
	{"SWEEPER_ADMIN_TOKEN", "", true, "bearer token for the operator API (/v1/...); empty turns it off"},
	{"SWEEPER_MAX_FEE_RATE", "0.02", false, "a redemption stops before money leaves when fees exceed this share"},
	{"SWEEPER_WORKER_CONCURRENCY", "32", false, "sweeps in flight at once per process (throughput ~ concurrency / upstream latency)"},
	// The lease must exceed one attempt's worst case: a token fetch (2 requests), the request, a
	// refresh after a 401 (2 requests), the request again: 6 x SWEEPER_UPSTREAM_TIMEOUT with OAuth
	// (60s by default), 2 x with a static token. Shorter, and a second worker may replay a request
	// still running; longer, and a crashed worker's sweeps wait that much longer to be resumed.
	{"SWEEPER_SWEEP_LEASE", "90s", false, "how long a claimed sweep or withdrawal is held before another worker may resume it; must exceed one attempt's worst case (2 token fetches + 2 requests)"},
	// An hour of "in progress" answers is far beyond Interlace's normal minutes; shorter hands a slow
	// transfer to a person sooner, longer waits out an upstream incident unattended.
	{"SWEEPER_PENDING_MAX_AGE", "1h", false, "how long a sweep may get nothing but in-progress/PENDING answers before it is unresolved"},
	{"SWEEPER_RETRY_MAX_DELAY", "5m", false, "cap of the exponential retry backoff"},
	{"SWEEPER_UPSTREAM_TIMEOUT", "10s", false, "per-request timeout for Interlace calls (a token fetch waits at most two of them)"},
	{"SWEEPER_DB_MAX_CONNS", "16", false, "PostgreSQL pool size"},
	{"SWEEPER_LOG_FORMAT", "json", false, "json (production) or console (development)"},
	{"SWEEPER_LOG_LEVEL", "info", false, "debug, info, warn or error"},
	{"SWEEPER_SHUTDOWN_TIMEOUT", "25s", false, "how long SIGTERM waits for in-flight requests and sweeps"},
}

// SandboxVars are read only by `sweeper sandbox`.
var SandboxVars = []Var{
	{Name: "SWEEPER_SANDBOX_ADDR", Default: ":8090", Usage: "listen address of the fake Interlace"},
	{Name: "SANDBOX_WEBHOOK_URL", Default: "", Usage: "where deposit/withdrawal notifications are delivered (e.g. http://localhost:8080/webhooks/interlace)"},
	{Name: "SANDBOX_WEBHOOK_SECRET", Default: "", Secret: true, Usage: "HMAC key the notifications are signed with (match INTERLACE_WEBHOOK_SECRET)"},
	{Name: "SANDBOX_TIME_SCALE", Default: "1", Usage: "divide Interlace's webhook retry schedule by this"},
	{Name: "SANDBOX_ACCOUNT_ID", Default: "b27c8873-e400-47cd-adc1-035cfa0d5347", Usage: "the one account the sandbox serves"},
	{Name: "SANDBOX_FUND_MASTER", Default: "true", Usage: "start the master wallet with 1000 USDC and 1000 USDT (false: empty, as a new account's)"},
	{Name: "SANDBOX_SIGNED_PART", Default: "resource", Usage: "what the signature covers: resource or body"},
	{Name: "SANDBOX_AUTH_STYLE", Default: "both", Usage: "token endpoints served: both, v3 (unversioned 404) or legacy (v3 404)"},
	{Name: "SANDBOX_STRICT_TOKENS", Default: "false", Usage: "strict access token mode: token calls need X-Timestamp and a valid X-Signature"},
	{Name: "SANDBOX_CLIENT_SECRET", Default: "", Secret: true, Usage: "when set, the one client secret accepted (legacy body, strict X-Signature)"},
	{Name: "SANDBOX_WITHDRAWAL_DELAY", Default: "2s", Usage: "how long a withdrawal stays Pending before Closed"},
}

// Config is the parsed configuration.
type Config struct {
	DatabaseURL           string
	HTTPAddr              string
	InterlaceBaseURL      string
	ClientID              string
	ClientSecret          string
	AccessToken           string
	AccountID             string
	WebhookSecret         string
	WebhookSecretPrevious string
	WebhookSignedPart     string
	InfinityWalletID      string
	TargetCurrency        string
	SweepCurrencies       []string
	AdminToken            string
	MaxFeeRate            decimal.Decimal
	WorkerConcurrency     int
	SweepLease            time.Duration
	PendingMaxAge         time.Duration
	RetryMaxDelay         time.Duration
	UpstreamTimeout       time.Duration
	DBMaxConns            int
	LogFormat             string
	LogLevel              string
	ShutdownTimeout       time.Duration
	// ConfirmDeposits: no money moves until Interlace's own record agrees (contract §9).
	ConfirmDeposits bool
	// PollInterval is the backfill poll's period; 0 turns the poller off.
	PollInterval time.Duration

	// AuthStyle picks Interlace's token endpoints (INTERLACE_AUTH_STYLE, contract §10). Default "auto":
	// the v3 ones (/open-api/v3/oauth/*, wrapped answers) first, the unversioned ones
	// (/open-api/oauth/*, with clientSecret) after a 404, remembered for the life of the process. auto
	// costs one extra 404 per process start on accounts that only have the old endpoints; "v3" or
	// "legacy" pin the style `sweeper doctor` reported, so a wrong pin fails loudly instead of falling
	// back.
	AuthStyle string
}

// Getenv is os.Getenv's shape, so tests pass a map instead of touching the process.
type Getenv func(string) string

// ErrMissing is wrapped by every "required variable is missing" error.
var ErrMissing = errors.New("missing required configuration")

// Need says which parts of the configuration a command uses.
type Need struct {
	Database  bool
	Interlace bool
}

// Load reads the configuration. The first problem is returned as one clear line
// naming the variable.
func Load(getenv Getenv, need Need) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{
		DatabaseURL:           r.str("DATABASE_URL"),
		HTTPAddr:              r.str("SWEEPER_HTTP_ADDR"),
		InterlaceBaseURL:      strings.TrimRight(r.str("INTERLACE_BASE_URL"), "/"),
		ClientID:              r.str("INTERLACE_CLIENT_ID"),
		ClientSecret:          r.str("INTERLACE_CLIENT_SECRET"),
		AccessToken:           r.str("INTERLACE_ACCESS_TOKEN"),
		AccountID:             r.str("INTERLACE_ACCOUNT_ID"),
		WebhookSecret:         r.str("INTERLACE_WEBHOOK_SECRET"),
		WebhookSecretPrevious: r.str("INTERLACE_WEBHOOK_SECRET_PREVIOUS"),
		WebhookSignedPart:     strings.ToLower(r.str("INTERLACE_WEBHOOK_SIGNED_PART")),
		InfinityWalletID:      r.str("SWEEPER_INFINITY_WALLET_ID"),
		TargetCurrency:        strings.ToUpper(r.str("SWEEPER_TARGET_CURRENCY")),
		AdminToken:            r.str("SWEEPER_ADMIN_TOKEN"),
		MaxFeeRate:            r.dec("SWEEPER_MAX_FEE_RATE"),
		WorkerConcurrency:     r.int("SWEEPER_WORKER_CONCURRENCY"),
		SweepLease:            r.dur("SWEEPER_SWEEP_LEASE"),
		PendingMaxAge:         r.dur("SWEEPER_PENDING_MAX_AGE"),
		RetryMaxDelay:         r.dur("SWEEPER_RETRY_MAX_DELAY"),
		UpstreamTimeout:       r.dur("SWEEPER_UPSTREAM_TIMEOUT"),
		DBMaxConns:            r.int("SWEEPER_DB_MAX_CONNS"),
		LogFormat:             strings.ToLower(r.str("SWEEPER_LOG_FORMAT")),
		LogLevel:              strings.ToLower(r.str("SWEEPER_LOG_LEVEL")),
		ShutdownTimeout:       r.dur("SWEEPER_SHUTDOWN_TIMEOUT"),
		ConfirmDeposits:       r.boolean("SWEEPER_CONFIRM_DEPOSITS"),
		PollInterval:          r.pollInterval("SWEEPER_POLL_INTERVAL"),
	}
	c.AuthStyle = strings.ToLower(r.str("INTERLACE_AUTH_STYLE"))
	for _, cur := range strings.Split(r.str("SWEEPER_SWEEP_CURRENCIES"), ",") {
		if cur = strings.ToUpper(strings.TrimSpace(cur)); cur != "" {
			c.SweepCurrencies = append(c.SweepCurrencies, cur)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if c.WebhookSecret == "" {
		c.WebhookSecret = c.ClientSecret
	}
	if need.Database && c.DatabaseURL == "" {
		return nil, fmt.Errorf("%w: DATABASE_URL", ErrMissing)
	}
	if need.Interlace {
		switch {
		case c.AccountID == "":
			return nil, fmt.Errorf("%w: INTERLACE_ACCOUNT_ID", ErrMissing)
		case c.AccessToken == "" && c.ClientID == "":
			return nil, fmt.Errorf("%w: INTERLACE_CLIENT_ID (or INTERLACE_ACCESS_TOKEN)", ErrMissing)
		case c.AccessToken == "" && c.ClientSecret == "":
			return nil, fmt.Errorf("%w: INTERLACE_CLIENT_SECRET (or INTERLACE_ACCESS_TOKEN)", ErrMissing)
		case c.WebhookSecret == "":
			return nil, fmt.Errorf("%w: INTERLACE_WEBHOOK_SECRET (or INTERLACE_CLIENT_SECRET)", ErrMissing)
		}
	}
	if c.WebhookSignedPart != "resource" && c.WebhookSignedPart != "body" {
		return nil, fmt.Errorf("INTERLACE_WEBHOOK_SIGNED_PART must be resource or body, not %q", c.WebhookSignedPart)
	}
	if c.AuthStyle != "auto" && c.AuthStyle != "v3" && c.AuthStyle != "legacy" {
		return nil, fmt.Errorf("INTERLACE_AUTH_STYLE must be auto, v3 or legacy, not %q", c.AuthStyle)
	}
	if c.MaxFeeRate.IsNegative() || c.MaxFeeRate.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return nil, fmt.Errorf("SWEEPER_MAX_FEE_RATE must be in [0, 1), not %s", c.MaxFeeRate)
	}
	if c.WorkerConcurrency < 1 || c.DBMaxConns < 2 {
		return nil, fmt.Errorf("SWEEPER_WORKER_CONCURRENCY must be >= 1 and SWEEPER_DB_MAX_CONNS >= 2")
	}
	if worst := c.AttemptWorstCase(); c.SweepLease <= worst {
		return nil, fmt.Errorf("SWEEPER_SWEEP_LEASE (%s) must exceed the longest one attempt can take, %s "+
			"(token fetch, request, one refresh after a 401, the request again, with SWEEPER_UPSTREAM_TIMEOUT %s)",
			c.SweepLease, worst, c.UpstreamTimeout)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return nil, fmt.Errorf("SWEEPER_LOG_FORMAT must be json or console, not %q", c.LogFormat)
	}
	return c, nil
}

// AttemptWorstCase is the longest one upstream attempt can take with this
// configuration (see interlace.AttemptWorstCase).
func (c *Config) AttemptWorstCase() time.Duration {
	return interlace.AttemptWorstCase(c.UpstreamTimeout, c.AccessToken == "")
}

// String prints the configuration with every secret masked.
func (c *Config) String() string {
	mask := func(s string) string {
		if s == "" {
			return `""`
		}
		return "***"
	}
	return fmt.Sprintf("http=%s interlace=%s account=%s client_id=%s client_secret=%s access_token=%s "+
		"webhook_secret=%s webhook_secret_previous=%s signed_part=%s infinity_wallet=%q target=%s sweep_currencies=%v "+
		"admin_token=%s database_url=%s concurrency=%d lease=%s confirm_deposits=%t poll_interval=%s",
		c.HTTPAddr, c.InterlaceBaseURL, c.AccountID, c.ClientID, mask(c.ClientSecret), mask(c.AccessToken),
		mask(c.WebhookSecret), mask(c.WebhookSecretPrevious), c.WebhookSignedPart, c.InfinityWalletID,
		c.TargetCurrency, c.SweepCurrencies, mask(c.AdminToken), mask(c.DatabaseURL), c.WorkerConcurrency, c.SweepLease, c.ConfirmDeposits, c.PollInterval)
}

type reader struct {
	getenv Getenv
	err    error
}

func defaultOf(name string) string {
	for _, v := range Vars {
		if v.Name == name {
			if strings.HasPrefix(v.Default, "INTERLACE_") {
				return "" // a default that names another variable is resolved by Load
			}
			return v.Default
		}
	}
	return ""
}

func (r *reader) str(name string) string {
	if v := r.getenv(name); v != "" {
		return v
	}
	if path := r.getenv(name + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			if r.err == nil {
				// The path is not secret; the content would be, and is never echoed.
				r.err = fmt.Errorf("%s_FILE: %w", name, err)
			}
			return ""
		}
		return strings.TrimRight(string(b), "\r\n")
	}
	return defaultOf(name)
}

func (r *reader) int(name string) int {
	s := r.str(name)
	n, err := strconv.Atoi(s)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s must be an integer, not %q", name, s)
	}
	return n
}

func (r *reader) dur(name string) time.Duration {
	s := r.str(name)
	d, err := time.ParseDuration(s)
	if (err != nil || d <= 0) && r.err == nil {
		r.err = fmt.Errorf("%s must be a positive duration like 30s, not %q", name, s)
	}
	return d
}

func (r *reader) boolean(name string) bool {
	s := r.str(name)
	b, err := strconv.ParseBool(s)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s must be true or false, not %q", name, s)
	}
	return b
}

// pollInterval reads a duration of at least a second, or 0 (off).
func (r *reader) pollInterval(name string) time.Duration {
	s := r.str(name)
	if s == "0" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if (err != nil || (d != 0 && d < time.Second) || d < 0) && r.err == nil {
		r.err = fmt.Errorf("%s must be 0 (off) or a duration of at least 1s like 5m, not %q", name, s)
	}
	return d
}

func (r *reader) dec(name string) decimal.Decimal {
	s := r.str(name)
	d, err := decimal.NewFromString(s)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s must be a decimal number, not %q", name, s)
	}
	return d
}
