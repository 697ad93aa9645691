package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/doctor"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
)

const clientSecret = "client-secret-value" // what start() configures

// newSandbox serves a sandbox over real HTTP for the test's lifetime.
func newSandbox(t *testing.T, cfg sandbox.Config) (*sandbox.Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1000
	}
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); srv.Close() })
	return sb, srv.URL
}

// runDoctor runs `sweeper doctor`'s checks with the configuration the service would read from env.
func runDoctor(t *testing.T, env map[string]string) *doctor.Report {
	t.Helper()
	full := map[string]string{
		"INTERLACE_CLIENT_ID":      "client-id",
		"INTERLACE_CLIENT_SECRET":  clientSecret,
		"INTERLACE_ACCOUNT_ID":     accountID,
		"INTERLACE_WEBHOOK_SECRET": webhookSecret,
		"SWEEPER_UPSTREAM_TIMEOUT": "2s",
		"SWEEPER_SWEEP_LEASE":      "13s", // above one attempt's worst case, 6 x the timeout
	}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := config.Load(func(k string) string { return full[k] }, config.Need{Database: true, Interlace: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep := doctor.Run(ctx, cfg, doctor.Options{CheckTimeout: 10 * time.Second})
	var b strings.Builder
	_ = rep.Write(&b)
	t.Logf("sweeper doctor:\n%s", b.String())
	return rep
}

// line returns the report's line for check (failing the test when there is none).
func line(t *testing.T, rep *doctor.Report, check string) doctor.Line {
	t.Helper()
	for _, l := range rep.Lines {
		if l.Check == check {
			return l
		}
	}
	t.Fatalf("no %q line", check)
	return doctor.Line{}
}

// expectFail: the report fails, and the check's line is a FAIL naming every fix in names.
func expectFail(t *testing.T, rep *doctor.Report, check string, names ...string) {
	t.Helper()
	if !rep.Failed() {
		t.Fatal("report did not fail")
	}
	l := line(t, rep, check)
	if l.Level != doctor.Fail {
		t.Fatalf("%s line is %s, want FAIL: %s", check, l.Level, l.Text)
	}
	for _, n := range names {
		if !strings.Contains(l.Text, n) {
			t.Fatalf("%s line does not name %q: %s", check, n, l.Text)
		}
	}
}

// TestDoctorFreshDatabaseDefaultSandbox: the done-when of issue 13 — only ok lines, exit 0.
func TestDoctorFreshDatabaseDefaultSandbox(t *testing.T) {
	t.Parallel()
	_, url := newSandbox(t, sandbox.Config{})
	rep := runDoctor(t, map[string]string{"DATABASE_URL": pgtest.NewMigratedDatabase(t), "INTERLACE_BASE_URL": url})
	if rep.Failed() {
		t.Fatal("report failed")
	}
	for _, l := range rep.Lines {
		if l.Level != doctor.OK {
			t.Errorf("not ok: %s", l)
		}
	}
	for _, c := range []string{doctor.CheckDatabase, doctor.CheckToken, doctor.CheckInfinity, doctor.CheckTransfers, doctor.CheckWebhooks} {
		line(t, rep, c)
	}
	if l := line(t, rep, doctor.CheckToken); !strings.Contains(l.Text, "strict access token mode is off") {
		t.Fatalf("token line does not say strict mode is off: %s", l.Text)
	}
	if l := line(t, rep, doctor.CheckInfinity); !strings.Contains(l.Text, sandbox.DefaultInfinityWalletID) {
		t.Fatalf("infinity line does not name the balance: %s", l.Text)
	}
}

// TestDoctorAuthStyles: each style the sandbox can demand, strict access token mode on; the token line
// says which style answered.
func TestDoctorAuthStyles(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	for _, tc := range []struct {
		served, configured string
		want               string // text of the token line; "" = must FAIL naming fix
		fix                string
	}{
		{sandbox.AuthStyleBoth, "auto", "the v3 token endpoints answered", ""},
		{sandbox.AuthStyleV3, "auto", "the v3 token endpoints answered", ""},
		{sandbox.AuthStyleLegacy, "auto", "the legacy token endpoints answered", ""},
		{sandbox.AuthStyleV3, "v3", "the v3 token endpoints answered", ""},
		{sandbox.AuthStyleLegacy, "legacy", "the legacy token endpoints answered", ""},
		{sandbox.AuthStyleV3, "legacy", "", "INTERLACE_AUTH_STYLE=auto"},
		{sandbox.AuthStyleLegacy, "v3", "", "INTERLACE_AUTH_STYLE=auto"},
	} {
		t.Run(tc.served+"/"+tc.configured, func(t *testing.T) {
			t.Parallel()
			_, url := newSandbox(t, sandbox.Config{AuthStyle: tc.served, StrictTokens: true, ClientSecret: clientSecret})
			rep := runDoctor(t, map[string]string{"DATABASE_URL": db, "INTERLACE_BASE_URL": url, "INTERLACE_AUTH_STYLE": tc.configured})
			if tc.want == "" {
				expectFail(t, rep, doctor.CheckToken, tc.fix)
				return
			}
			if rep.Failed() {
				t.Fatal("report failed")
			}
			if l := line(t, rep, doctor.CheckToken); l.Level != doctor.OK || !strings.Contains(l.Text, tc.want) || !strings.Contains(l.Text, "strict access token mode is on") {
				t.Fatalf("token line: %s", l)
			}
		})
	}
}

// TestDoctorWrongCredentials: strict mode refuses a wrong secret's signature; the unversioned style
// refuses the secret itself. Both FAIL on the token line naming INTERLACE_CLIENT_SECRET.
func TestDoctorWrongCredentials(t *testing.T) {
	t.Parallel()
	db := pgtest.NewMigratedDatabase(t)
	for _, tc := range []struct {
		name   string
		cfg    sandbox.Config
		detail string
	}{
		{"StrictV3", sandbox.Config{AuthStyle: sandbox.AuthStyleV3, StrictTokens: true, ClientSecret: clientSecret}, "strict access token mode"},
		{"Legacy", sandbox.Config{AuthStyle: sandbox.AuthStyleLegacy, ClientSecret: clientSecret}, "credentials were refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, url := newSandbox(t, tc.cfg)
			rep := runDoctor(t, map[string]string{"DATABASE_URL": db, "INTERLACE_BASE_URL": url,
				"INTERLACE_CLIENT_SECRET": "not-the-secret", "INTERLACE_WEBHOOK_SECRET": webhookSecret})
			expectFail(t, rep, doctor.CheckToken, "INTERLACE_CLIENT_SECRET", tc.detail)
			if l := line(t, rep, doctor.CheckToken); strings.Contains(l.Text, "not-the-secret") {
				t.Fatalf("the token line prints the secret: %s", l.Text)
			}
		})
	}
}

// TestDoctorUnreachableHost: nothing listens at INTERLACE_BASE_URL.
func TestDoctorUnreachableHost(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	rep := runDoctor(t, map[string]string{"DATABASE_URL": pgtest.NewMigratedDatabase(t), "INTERLACE_BASE_URL": dead})
	expectFail(t, rep, doctor.CheckToken, "cannot reach", "INTERLACE_BASE_URL")
	if l := line(t, rep, doctor.CheckInfinity); l.Level == doctor.OK {
		t.Fatalf("infinity line ok without a token: %s", l)
	}
}

// TestDoctorDatabase: an unmigrated database and an unreachable one each FAIL naming the fix.
func TestDoctorDatabase(t *testing.T) {
	t.Parallel()
	_, url := newSandbox(t, sandbox.Config{})
	rep := runDoctor(t, map[string]string{"DATABASE_URL": pgtest.NewDatabase(t), "INTERLACE_BASE_URL": url})
	expectFail(t, rep, doctor.CheckDatabase, "sweeper migrate")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	rep = runDoctor(t, map[string]string{"DATABASE_URL": "postgres://nobody@" + addr + "/x?sslmode=disable&connect_timeout=2", "INTERLACE_BASE_URL": url})
	expectFail(t, rep, doctor.CheckDatabase, "DATABASE_URL")
}

// TestDoctorNamesTheSignedPart: Interlace (the sandbox) signs the raw body while the service expects the
// resource. The real service refuses the deliveries with 401 and keeps them; doctor names `body`, and
// once that is set, says the refused deliveries verify.
func TestDoctorNamesTheSignedPart(t *testing.T) {
	t.Parallel()
	s := startWithSandbox(t, sandbox.Config{SignedPart: sandbox.SignedPartBody})
	s.deposit("5")
	waitRefused(t, s)

	env := map[string]string{"DATABASE_URL": s.dbURL, "INTERLACE_BASE_URL": s.sbURL}
	rep := runDoctor(t, env)
	expectFail(t, rep, doctor.CheckWebhooks, "signed over body with the current secret", "INTERLACE_WEBHOOK_SIGNED_PART=body")

	env["INTERLACE_WEBHOOK_SIGNED_PART"] = "body"
	if l := line(t, runDoctor(t, env), doctor.CheckWebhooks); l.Level != doctor.OK {
		t.Fatalf("with the right part: %s", l)
	}
}

// TestDoctorWrongWebhookSecret: deliveries signed with a secret the service does not have match nothing;
// doctor says to set INTERLACE_WEBHOOK_SECRET, and recognises the previous secret once it is given.
func TestDoctorWrongWebhookSecret(t *testing.T) {
	t.Parallel()
	s := startWithSandbox(t, sandbox.Config{WebhookSecret: oldSecret})
	s.deposit("5")
	waitRefused(t, s)

	env := map[string]string{"DATABASE_URL": s.dbURL, "INTERLACE_BASE_URL": s.sbURL}
	expectFail(t, runDoctor(t, env), doctor.CheckWebhooks, "match no signed part", "INTERLACE_WEBHOOK_SECRET")

	env["INTERLACE_WEBHOOK_SECRET_PREVIOUS"] = oldSecret
	if l := line(t, runDoctor(t, env), doctor.CheckWebhooks); l.Level != doctor.OK || !strings.Contains(l.Text, "resource with the previous secret") {
		t.Fatalf("with the previous secret configured: %s", l)
	}
}

// TestSweepWithV3OnlyTokenEndpoints: the real program sweeps a deposit against an account that only has
// the v3 token endpoints, in strict access token mode.
func TestSweepWithV3OnlyTokenEndpoints(t *testing.T) {
	t.Parallel()
	s := startWithSandbox(t, sandbox.Config{AuthStyle: sandbox.AuthStyleV3, StrictTokens: true, ClientSecret: clientSecret})
	d := s.deposit("7")
	s.waitFor(d.ID, "succeeded")
}

// startWithSandbox starts the real program against a sandbox built from cfg, delivering its webhooks to
// the program.
func startWithSandbox(t *testing.T, cfg sandbox.Config) *system {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.WebhookURL = "http://" + ln.Addr().String() + "/webhooks/interlace"
	if cfg.WebhookSecret == "" {
		cfg.WebhookSecret = webhookSecret
	}
	cfg.WithdrawalDelay = 200 * time.Millisecond
	sb, url := newSandbox(t, cfg)
	return start(t, sysOpts{sandbox: sb, sbURL: url, listener: ln})
}

// waitRefused waits until the service has kept a refused delivery.
func waitRefused(t *testing.T, s *system) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if s.count("SELECT count(*) FROM webhook_refusals") > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no refused delivery was kept")
}

// TestDoctorWarnsWhenWalletTypeAlonePicksABudget: an account whose balance list ignores the filter and
// shows a Budget USD balance (objectType 1, walletType 0) before the Infinity one, as the stricter
// sandbox does. A scripted upstream answers that list and hands every other call to the sandbox.
func TestDoctorWarnsWhenWalletTypeAlonePicksABudget(t *testing.T) {
	t.Parallel()
	sb, _ := newSandbox(t, sandbox.Config{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/open-api/v3/cards/wallets" {
			sb.Handler().ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"code":"000000","message":"success","data":{"list":[
{"id":"budget-usd","accountId":"`+accountID+`","currency":"USD","walletType":0,"objectType":1,"available":"10"},
{"id":"`+sandbox.DefaultInfinityWalletID+`","accountId":"`+accountID+`","currency":"USD","walletType":0,"objectType":0,"available":"56846.52"}],"total":"2"}}`)
	}))
	t.Cleanup(front.Close)
	rep := runDoctor(t, map[string]string{"DATABASE_URL": pgtest.NewMigratedDatabase(t), "INTERLACE_BASE_URL": front.URL})
	l := line(t, rep, doctor.CheckInfinity)
	for _, want := range []string{"would sweep into " + sandbox.DefaultInfinityWalletID, "objectType=0", "walletType=0 alone would have picked budget-usd",
		"SWEEPER_INFINITY_WALLET_ID=" + sandbox.DefaultInfinityWalletID} {
		if !strings.Contains(l.Text, want) {
			t.Fatalf("infinity line lacks %q: %s", want, l)
		}
	}
	if l.Level != doctor.Warn || rep.Failed() {
		t.Fatalf("want a WARN and no failure: %s", l)
	}
}

// TestDoctorPollerState: without poll_state (this branch's schema) there is no poller line; with the
// table issue 11's migration adds, the poller's last success and error are reported, an error newer than
// the last success as a WARN. The table is created here as that migration defines it.
func TestDoctorPollerState(t *testing.T) {
	t.Parallel()
	_, url := newSandbox(t, sandbox.Config{})
	db := pgtest.NewMigratedDatabase(t)
	env := map[string]string{"DATABASE_URL": db, "INTERLACE_BASE_URL": url}
	pool, err := store.OpenPool(context.Background(), db, store.PoolOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var migrated bool // once issue 11's migration is merged, the schema has poll_state already
	if err := pool.QueryRow(context.Background(), `SELECT to_regclass('poll_state') IS NOT NULL`).Scan(&migrated); err != nil {
		t.Fatal(err)
	}
	if !migrated {
		for _, l := range runDoctor(t, env).Lines {
			if l.Check == doctor.CheckPoller {
				t.Fatalf("a poller line without poll_state: %s", l)
			}
		}
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE IF NOT EXISTS poll_state (name text PRIMARY KEY, cursor_at timestamptz, last_started_at timestamptz,
		last_success_at timestamptz, last_error_at timestamptz, last_error text, consecutive_failures integer NOT NULL DEFAULT 0,
		last_read integer NOT NULL DEFAULT 0, last_found integer NOT NULL DEFAULT 0, last_owner text, updated_at timestamptz NOT NULL DEFAULT now())`)
	if l := line(t, runDoctor(t, env), doctor.CheckPoller); l.Level != doctor.OK || !strings.Contains(l.Text, "has not run") {
		t.Fatalf("empty poll_state: %s", l)
	}
	exec(`INSERT INTO poll_state (name, last_success_at, last_error_at, last_error, consecutive_failures)
		VALUES ('transfers', now() - interval '1 hour', now(), 'interlace list_transfers: HTTP 503', 3)`)
	l := line(t, runDoctor(t, env), doctor.CheckPoller)
	if l.Level != doctor.Warn || !strings.Contains(l.Text, "3 failure(s) in a row") || !strings.Contains(l.Text, "HTTP 503") {
		t.Fatalf("failing poller: %s", l)
	}
	exec(`UPDATE poll_state SET last_success_at = now()`)
	if l := line(t, runDoctor(t, env), doctor.CheckPoller); l.Level != doctor.OK {
		t.Fatalf("recovered poller: %s", l)
	}
}

// TestDoctorNoInfinityBalance: no Infinity balance in the target currency fails naming the setting;
// with SWEEPER_INFINITY_WALLET_ID set (no discovery in the service) it only warns.
func TestDoctorNoInfinityBalance(t *testing.T) {
	t.Parallel()
	_, url := newSandbox(t, sandbox.Config{})
	env := map[string]string{"DATABASE_URL": pgtest.NewMigratedDatabase(t), "INTERLACE_BASE_URL": url, "SWEEPER_TARGET_CURRENCY": "EUR"}
	expectFail(t, runDoctor(t, env), doctor.CheckInfinity, "none an Infinity Account balance in EUR", "SWEEPER_TARGET_CURRENCY")
	env["SWEEPER_INFINITY_WALLET_ID"] = "pinned"
	if l := line(t, runDoctor(t, env), doctor.CheckInfinity); l.Level != doctor.Warn {
		t.Fatalf("with a pinned balance: %s", l)
	}
}
