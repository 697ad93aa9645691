package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
)

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tokenSniffer records every string the sandbox's OAuth endpoints hand out
// (authorization code, access and refresh tokens): the secrets sweeper is
// given at run time rather than by configuration.
type tokenSniffer struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (s *tokenSniffer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/open-api/oauth/") && !strings.HasPrefix(r.URL.Path, "/open-api/v3/oauth/") {
		s.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	var v any
	if json.Unmarshal(rec.Body.Bytes(), &v) == nil {
		s.mu.Lock()
		collectTokens(v, "", &s.seen)
		s.mu.Unlock()
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (s *tokenSniffer) tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func collectTokens(v any, key string, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			collectTokens(e, k, out)
		}
	case []any:
		for _, e := range x {
			collectTokens(e, key, out)
		}
	case string:
		k := strings.ToLower(key)
		if (strings.Contains(k, "token") || k == "code") && len(x) >= 8 {
			*out = append(*out, x)
		}
	}
}

// Secrets come only from the environment or *_FILE files, and the logs never
// carry them: the program runs at debug level (SWEEPER_LOG_LEVEL=debug) with
// the production JSON encoder into a buffer, through the OAuth flow, a sweep,
// a forged webhook and refused operator calls; then every byte logged is
// searched for every secret, including the tokens the sandbox issued.
func TestLogsNeverCarrySecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clientSecret := "client-secret-" + uuid.NewString()
	adminTok := "admin-token-" + uuid.NewString()
	hookSecret := "webhook-secret-" + uuid.NewString()
	oldHookSecret := "webhook-previous-" + uuid.NewString()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// A password in DATABASE_URL: the local servers trust 127.0.0.1 and ignore
	// it; a server that checks passwords already has one in the URL.
	dbURL := pgtest.NewMigratedDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	dbPassword, hasPassword := u.User.Password()
	if !hasPassword {
		dbPassword = "db-password-" + uuid.NewString()
		u.User = url.UserPassword(u.User.Username(), dbPassword)
		dbURL = u.String()
	}

	env := map[string]string{
		"INTERLACE_CLIENT_SECRET":                "", // from the file instead
		"INTERLACE_CLIENT_SECRET_FILE":           write("client-secret", clientSecret),
		"SWEEPER_ADMIN_TOKEN":                    "",
		"SWEEPER_ADMIN_TOKEN_FILE":               write("admin-token", adminTok),
		"INTERLACE_WEBHOOK_SECRET":               hookSecret,
		"INTERLACE_WEBHOOK_SECRET_PREVIOUS_FILE": write("webhook-previous", oldHookSecret),
		"SWEEPER_LOG_LEVEL":                      "debug",
		"DATABASE_URL":                           dbURL,
	}
	// The level comes from the configuration, as in `sweeper serve`.
	base := map[string]string{"INTERLACE_ACCOUNT_ID": accountID, "INTERLACE_CLIENT_ID": "client-id", "DATABASE_URL": dbURL}
	cfg, err := config.Load(func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return base[k]
	}, config.Need{Database: true, Interlace: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientSecret != clientSecret || cfg.AdminToken != adminTok || cfg.WebhookSecretPrevious != oldHookSecret {
		t.Fatal("secrets not read from their *_FILE")
	}
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil || level != zapcore.DebugLevel {
		t.Fatalf("log level %q: %v", cfg.LogLevel, err)
	}
	var logs lockedBuffer
	ec := zap.NewProductionEncoderConfig()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(&logs), level))

	sb := sandbox.New(sandbox.Config{WebhookSecret: hookSecret, Logger: zap.NewNop()}) // no webhook URL: we post
	sniffer := &tokenSniffer{next: sb.Handler()}
	sbSrv := httptest.NewServer(sniffer)
	t.Cleanup(func() { sb.Close(); sbSrv.Close() })
	s := start(t, sysOpts{dbURL: dbURL, sandbox: sb, sbURL: sbSrv.URL, env: env, logger: logger})

	// A sweep, which needs an OAuth token.
	d, err := sb.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: decimal.RequireFromString("5")})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.post(hookSecret, uuid.NewString(), depositResource(d.ID, d.WalletID, "Closed", "5")); r.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d", r.StatusCode)
	}
	s.waitFor(d.ID, "succeeded")
	// A webhook under the previous secret, a forged one and an unsigned one.
	if r := s.post(oldHookSecret, uuid.NewString(), depositResource(uuid.NewString(), masterWallet, "Pending", "1")); r.StatusCode != http.StatusOK {
		t.Fatalf("previous-secret webhook: %d", r.StatusCode)
	}
	if r := s.post("forged-"+hookSecret, uuid.NewString(), depositResource(uuid.NewString(), masterWallet, "Closed", "1")); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d", r.StatusCode)
	}
	if r := s.post("", uuid.NewString(), depositResource(uuid.NewString(), masterWallet, "Closed", "1")); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned webhook: %d", r.StatusCode)
	}
	// Operator calls with near-miss tokens, and one with the right token.
	for _, auth := range []string{"Bearer " + adminTok[:len(adminTok)-1], "Bearer " + adminTok + "x", "Basic " + adminTok, "Bearer " + adminTok} {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/deposits/"+d.ID, nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	tokens := sniffer.tokens()
	if len(tokens) < 2 {
		t.Fatalf("the sandbox issued no OAuth code/token (%d seen): the OAuth flow did not run", len(tokens))
	}
	s.stop() // flush the shutdown lines too

	out := logs.String()
	if !strings.Contains(out, `"sweeper starting"`) || !strings.Contains(out, `"sweep succeeded"`) || !strings.Contains(out, `"webhook refused"`) {
		t.Fatalf("the logs do not cover the run:\n%s", out)
	}
	secrets := map[string]string{
		"client secret": clientSecret, "admin token": adminTok, "webhook secret": hookSecret,
		"previous webhook secret": oldHookSecret, "database password": dbPassword,
	}
	for i, tok := range tokens {
		secrets["oauth value "+string(rune('a'+i))] = tok
	}
	for name, secret := range secrets {
		if strings.Contains(out, secret) {
			for line := range strings.Lines(out) {
				if strings.Contains(line, secret) {
					t.Errorf("%s leaked: %s", name, line)
				}
			}
		}
	}
}

// The operator API answers 401 to anything but the exact bearer token, before
// doing any work, in the contract's error shape.
func TestOperatorAPIRefusesMissingAndWrongTokens(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	tests := []struct {
		name   string
		header string
		query  string
		want   int
	}{
		{"Missing", "", "", 401},
		{"Empty", "Bearer ", "", 401},
		{"WrongToken", "Bearer not-the-token", "", 401},
		{"Prefix", "Bearer " + adminToken[:len(adminToken)-1], "", 401},
		{"Extended", "Bearer " + adminToken + "0", "", 401},
		{"CaseChanged", "Bearer " + strings.ToUpper(adminToken), "", 401},
		{"WrongScheme", "Basic " + adminToken, "", 401},
		{"NoScheme", adminToken, "", 401},
		{"LowercaseScheme", "bearer " + adminToken, "", 401},
		{"DoubleSpace", "Bearer  " + adminToken, "", 401},
		{"InQueryString", "", "?access_token=" + adminToken, 401},
		{"Right", "Bearer " + adminToken, "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/deposits", "/v1/deposits/nope/retry"} {
				method := http.MethodGet
				if strings.HasSuffix(path, "/retry") {
					method = http.MethodPost
				}
				req, _ := http.NewRequest(method, s.url+path+tc.query, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := tc.want
				if want == 200 && method == http.MethodPost {
					want = http.StatusNotFound // authorised, and no such deposit
				}
				if resp.StatusCode != want {
					t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, body)
				}
				if want == 401 && !bytes.Contains(body, []byte(`"code": "unauthorized"`)) {
					t.Fatalf("401 body %s", body)
				}
			}
		})
	}
}

// Request headers over 64 KiB are refused before any handler runs, and a
// client that never finishes its headers is cut off (ReadHeaderTimeout)
// instead of holding a connection.
func TestServerLimits(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	t.Run("HugeHeader", func(t *testing.T) {
		t.Parallel()
		before := s.count(`SELECT count(*) FROM webhook_deliveries`)
		req, _ := http.NewRequest(http.MethodPost, s.url+"/webhooks/interlace", strings.NewReader(`{}`))
		req.Header.Set("Signature", strings.Repeat("A", 70<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("70 KiB header: %d, want 431", resp.StatusCode)
		}
		if s.count(`SELECT count(*) FROM webhook_deliveries`) != before {
			t.Fatal("stored something")
		}
		// Just under the limit is served normally (and refused for its signature).
		req, _ = http.NewRequest(http.MethodGet, s.url+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("A", 60<<10))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("60 KiB header: %d", resp.StatusCode)
		}
	})
	t.Run("SlowHeaders", func(t *testing.T) {
		t.Parallel()
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("POST /webhooks/interlace HTTP/1.1\r\nHost: x\r\nSignature: ")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err = bufio.NewReader(conn).ReadString('\n') // blocks until the server gives up on us
		if waited := time.Since(start); waited > 10*time.Second || waited < 4*time.Second {
			t.Fatalf("connection with unfinished headers closed after %s (err %v), want ~5s", waited, err)
		}
	})
}
