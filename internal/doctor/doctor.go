// Package doctor is `sweeper doctor` (contract §10): first contact with an Interlace account. With the
// service's own configuration it checks, one line each, what a new account may do differently from the
// documentation — the database, the token endpoints, the Infinity balance, the transfer list, the
// webhook signatures of refused deliveries — and says what it saw and what to set. It moves no money:
// every Interlace call it makes is a token call or a GET.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/store"
)

// Levels of a line.
const (
	OK   = "ok"
	Fail = "FAIL"
	Warn = "WARN"
)

// Line is one check's verdict.
type Line struct {
	Level string
	Check string
	Text  string // what was seen, then what to set
}

func (l Line) String() string { return fmt.Sprintf("%-4s %s: %s", l.Level, l.Check, l.Text) }

// Report is every line, in the order the checks ran.
type Report struct{ Lines []Line }

// Failed reports whether any line is a FAIL.
func (r *Report) Failed() bool {
	for _, l := range r.Lines {
		if l.Level == Fail {
			return true
		}
	}
	return false
}

// Write prints one line per check.
func (r *Report) Write(w io.Writer) error {
	for _, l := range r.Lines {
		if _, err := fmt.Fprintln(w, l.String()); err != nil {
			return err
		}
	}
	return nil
}

func (r *Report) add(level, check, format string, args ...any) {
	r.Lines = append(r.Lines, Line{Level: level, Check: check, Text: fmt.Sprintf(format, args...)})
}

// Options tune a run; the zero value is what the command uses.
type Options struct {
	// CheckTimeout bounds each check [15s].
	CheckTimeout time.Duration
	// HTTPClient reaches Interlace [interlace.NewHTTPClient()].
	HTTPClient *http.Client
}

// Check names, as printed.
const (
	CheckDatabase  = "database"
	CheckToken     = "token"
	CheckInfinity  = "infinity balance"
	CheckTransfers = "transfer list"
	CheckWebhooks  = "webhook signatures"
	CheckPoller    = "poller"
)

// Run runs every check against cfg and returns the report; it never moves money.
func Run(ctx context.Context, cfg *config.Config, opts Options) *Report {
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 15 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = interlace.NewHTTPClient()
	}
	d := &run{cfg: cfg, opts: opts, rep: &Report{}}

	pool := d.database(ctx)
	if pool != nil {
		defer pool.Close()
	}
	client := d.token(ctx)
	if client != nil {
		d.infinity(ctx, client)
		d.transfers(ctx, client)
	} else {
		d.rep.add(Warn, CheckInfinity, "not checked: no access token (fix the token line first)")
		d.rep.add(Warn, CheckTransfers, "not checked: no access token (fix the token line first)")
	}
	if pool != nil {
		d.webhooks(ctx, store.New(pool))
		d.poller(ctx, pool)
	} else {
		d.rep.add(Warn, CheckWebhooks, "not checked: the database is not usable (fix the database line first)")
	}
	return d.rep
}

type run struct {
	cfg  *config.Config
	opts Options
	rep  *Report
}

func (d *run) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.opts.CheckTimeout)
}

// errText is an error's text on one line.
func errText(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// token fetches a token the way the service does and returns a client using it (nil on failure).
func (d *run) token(ctx context.Context) *interlace.Client {
	cfg := d.cfg
	var tokens interlace.TokenSource
	var oauth *interlace.OAuthSource
	if cfg.AccessToken != "" {
		tokens = interlace.StaticToken(cfg.AccessToken)
	} else {
		oauth = interlace.NewOAuthTokenSource(interlace.OAuthConfig{
			BaseURL: cfg.InterlaceBaseURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Style: cfg.AuthStyle, HTTPClient: d.opts.HTTPClient,
		})
		tokens = oauth
	}
	client, err := interlace.New(interlace.Config{BaseURL: cfg.InterlaceBaseURL, Tokens: tokens,
		HTTPClient: d.opts.HTTPClient, Timeout: cfg.UpstreamTimeout})
	if err != nil {
		d.rep.add(Fail, CheckToken, "%s; set INTERLACE_BASE_URL to Interlace's API root (e.g. https://api-sandbox.interlace.money)", errText(err))
		return nil
	}
	if oauth == nil {
		d.rep.add(OK, CheckToken, "INTERLACE_ACCESS_TOKEN is set, so the OAuth flow is skipped; the next lines show whether Interlace accepts it")
		return client
	}
	tctx, cancel := d.timeout(ctx)
	defer cancel()
	if _, err := oauth.Token(tctx); err != nil {
		d.rep.add(Fail, CheckToken, "%s", tokenFailure(err, cfg))
		return nil
	}
	style := oauth.Style()
	paths := "/open-api/v3/oauth/* (clientId and code, wrapped answers)"
	if style == interlace.AuthStyleLegacy {
		paths = "/open-api/oauth/* (clientId, clientSecret and code, bare answers)"
	}
	hint := ""
	if cfg.AuthStyle == interlace.AuthStyleAuto {
		hint = fmt.Sprintf("; INTERLACE_AUTH_STYLE=%s skips the detection", style)
	}
	d.rep.add(OK, CheckToken, "the %s token endpoints answered: %s; %s%s", style, paths, d.strictMode(ctx, style), hint)
	return client
}

// strictMode tells whether the account demands signed token calls, by asking once more for a token
// without the X-Timestamp/X-Signature headers (a token call; nothing else changes). When it does, the
// signed calls that just succeeded confirm sweeper's string-to-sign for this account.
func (d *run) strictMode(ctx context.Context, style string) string {
	ctx, cancel := d.timeout(ctx)
	defer cancel()
	cfg := d.cfg
	_, err := interlace.NewOAuthTokenSource(interlace.OAuthConfig{
		BaseURL: cfg.InterlaceBaseURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Style: style, Sign: interlace.UnsignedTokenCalls, HTTPClient: d.opts.HTTPClient,
	}).Token(ctx)
	var ae *interlace.APIError
	switch {
	case err == nil:
		return "strict access token mode is off (an unsigned token call was accepted; sweeper signs its calls anyway)"
	case errors.As(err, &ae) && ae.HTTPStatus != 0 && !ae.Retryable:
		return fmt.Sprintf("strict access token mode is on (an unsigned token call was refused: %s) and sweeper's "+
			"X-Timestamp/X-Signature were accepted, so its string-to-sign fits this account", ae.Message)
	default:
		return fmt.Sprintf("strict access token mode unknown (the unsigned probe failed: %s); sweeper's signed calls were accepted", errText(err))
	}
}

// tokenFailure explains a failed token fetch and names the setting that fixes it.
func tokenFailure(err error, cfg *config.Config) string {
	seen := errText(err)
	var ae *interlace.APIError
	if !errors.As(err, &ae) {
		return seen
	}
	msg := strings.ToLower(ae.Message)
	switch {
	case ae.HTTPStatus == 0:
		return fmt.Sprintf("cannot reach Interlace at %s (%s); set INTERLACE_BASE_URL to Interlace's API root "+
			"(e.g. https://api-sandbox.interlace.money) and check the network path to it", cfg.InterlaceBaseURL, seen)
	case ae.HTTPStatus == http.StatusNotFound && cfg.AuthStyle != interlace.AuthStyleAuto:
		other := interlace.AuthStyleV3
		if cfg.AuthStyle == interlace.AuthStyleV3 {
			other = interlace.AuthStyleLegacy
		}
		return fmt.Sprintf("the %s token endpoints do not exist here (%s); set INTERLACE_AUTH_STYLE=auto (or %s)",
			cfg.AuthStyle, seen, other)
	case ae.HTTPStatus == http.StatusNotFound:
		return fmt.Sprintf("neither the v3 nor the unversioned token endpoints exist at %s (%s); set INTERLACE_BASE_URL "+
			"to Interlace's API root (e.g. https://api-sandbox.interlace.money)", cfg.InterlaceBaseURL, seen)
	case strings.Contains(msg, "signature") || strings.Contains(msg, "x-timestamp"):
		return fmt.Sprintf("strict access token mode refused the signed token call (%s); set INTERLACE_CLIENT_SECRET "+
			"to the account's client secret; if it is right, Interlace's string-to-sign differs from sweeper's "+
			"(unconfirmed, see interlace.SignTokenCall): set INTERLACE_ACCESS_TOKEN to a token from the dashboard "+
			"meanwhile, and check this machine's clock", seen)
	case ae.Endpoint == interlace.EndpointOAuthAuthorize:
		return fmt.Sprintf("authorize refused the client id (%s); set INTERLACE_CLIENT_ID to the account's client id", seen)
	case ae.HTTPStatus >= 500 || ae.HTTPStatus == http.StatusTooManyRequests:
		return fmt.Sprintf("Interlace's token endpoint is failing (%s); nothing to set: run sweeper doctor again later", seen)
	default:
		return fmt.Sprintf("the credentials were refused (%s); set INTERLACE_CLIENT_ID and INTERLACE_CLIENT_SECRET "+
			"to the account's API credentials", seen)
	}
}

// upstreamFailure explains a failed business call.
func upstreamFailure(err error, cfg *config.Config) string {
	seen := errText(err)
	var ae *interlace.APIError
	switch {
	case !errors.As(err, &ae):
		return seen
	case ae.HTTPStatus == 0:
		return fmt.Sprintf("no answer from %s (%s); check INTERLACE_BASE_URL and the network", cfg.InterlaceBaseURL, seen)
	case ae.HTTPStatus == http.StatusUnauthorized:
		return fmt.Sprintf("Interlace refused the access token (%s); set INTERLACE_ACCESS_TOKEN to a valid token, "+
			"or unset it to use INTERLACE_CLIENT_ID and INTERLACE_CLIENT_SECRET", seen)
	case ae.HTTPStatus == http.StatusNotFound:
		return fmt.Sprintf("the endpoint does not exist at %s (%s); set INTERLACE_BASE_URL to Interlace's API root", cfg.InterlaceBaseURL, seen)
	case strings.Contains(strings.ToLower(ae.Message), "account"):
		return fmt.Sprintf("%s; set INTERLACE_ACCOUNT_ID to the merchant's Interlace account id", seen)
	default:
		return seen
	}
}

// database checks that the database answers and carries every migration this binary knows; it returns
// the pool when the database is usable.
func (d *run) database(ctx context.Context) *pgxpool.Pool {
	ctx, cancel := d.timeout(ctx)
	defer cancel()
	pool, err := store.OpenPool(ctx, d.cfg.DatabaseURL, store.PoolOptions{MaxConns: 2, MinConns: 1})
	if err != nil {
		d.rep.add(Fail, CheckDatabase, "%s; set DATABASE_URL to a PostgreSQL connection string", errText(err))
		return nil
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		d.rep.add(Fail, CheckDatabase, "cannot connect (%s); set DATABASE_URL to a reachable PostgreSQL", errText(err))
		return nil
	}
	st, err := migrationState(ctx, pool)
	switch {
	case err != nil:
		d.rep.add(Fail, CheckDatabase, "reachable, but the migration state is unreadable (%s); run sweeper migrate", errText(err))
		pool.Close()
		return nil
	case st.applied < st.latest:
		d.rep.add(Fail, CheckDatabase, "reachable, schema at migration %d of %d; run sweeper migrate", st.applied, st.latest)
		pool.Close()
		return nil
	case st.applied > st.latest:
		d.rep.add(Warn, CheckDatabase, "reachable, schema at migration %d, newer than this binary's %d; run the newer sweeper", st.applied, st.latest)
	default:
		d.rep.add(OK, CheckDatabase, "reachable and migrated (migration %d)", st.applied)
	}
	return pool
}
