package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func full() map[string]string {
	return map[string]string{
		"DATABASE_URL": "postgres://x", "INTERLACE_CLIENT_ID": "id", "INTERLACE_CLIENT_SECRET": "client-secret-xyz",
		"INTERLACE_ACCOUNT_ID": "acc",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(full()), Need{Database: true, Interlace: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.InterlaceBaseURL != "https://api-sandbox.interlace.money" || c.TargetCurrency != "USD" ||
		c.WebhookSignedPart != "resource" || c.MaxFeeRate.String() != "0.02" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.WebhookSecret != "client-secret-xyz" {
		t.Fatal("webhook secret must default to the client secret")
	}
	if strings.Join(c.SweepCurrencies, ",") != "USDC,USDT,WUSD" {
		t.Fatalf("sweep currencies %v", c.SweepCurrencies)
	}
}

func TestMissingRequiredNamesTheVariable(t *testing.T) {
	tests := []struct {
		drop string
		want string
	}{
		{"DATABASE_URL", "DATABASE_URL"},
		{"INTERLACE_ACCOUNT_ID", "INTERLACE_ACCOUNT_ID"},
		{"INTERLACE_CLIENT_ID", "INTERLACE_CLIENT_ID"},
		{"INTERLACE_CLIENT_SECRET", "INTERLACE_CLIENT_SECRET"},
	}
	for _, tc := range tests {
		t.Run(tc.drop, func(t *testing.T) {
			m := full()
			delete(m, tc.drop)
			_, err := Load(env(m), Need{Database: true, Interlace: true})
			if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func TestStaticTokenReplacesClientCredentials(t *testing.T) {
	m := full()
	delete(m, "INTERLACE_CLIENT_ID")
	delete(m, "INTERLACE_CLIENT_SECRET")
	m["INTERLACE_ACCESS_TOKEN"] = "tok"
	m["INTERLACE_WEBHOOK_SECRET"] = "wh"
	if _, err := Load(env(m), Need{Database: true, Interlace: true}); err != nil {
		t.Fatal(err)
	}
}

func TestFileVariants(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := full()
	delete(m, "INTERLACE_CLIENT_SECRET")
	m["INTERLACE_CLIENT_SECRET_FILE"] = path
	c, err := Load(env(m), Need{Database: true, Interlace: true})
	if err != nil || c.ClientSecret != "from-file" {
		t.Fatalf("%v %q", err, c.ClientSecret)
	}
	m["INTERLACE_CLIENT_SECRET_FILE"] = filepath.Join(dir, "missing")
	if _, err := Load(env(m), Need{}); err == nil || !strings.Contains(err.Error(), "INTERLACE_CLIENT_SECRET_FILE") {
		t.Fatalf("err %v", err)
	}
}

func TestInvalidValuesAreRefused(t *testing.T) {
	for k, v := range map[string]string{
		"INTERLACE_WEBHOOK_SIGNED_PART": "timestamp", "SWEEPER_MAX_FEE_RATE": "1.5", "SWEEPER_WORKER_CONCURRENCY": "zero",
		"SWEEPER_SWEEP_LEASE": "5s", "SWEEPER_LOG_FORMAT": "xml", "SWEEPER_RETRY_MAX_DELAY": "-1s",
	} {
		m := full()
		m[k] = v
		if _, err := Load(env(m), Need{Database: true, Interlace: true}); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}

func TestStringMasksSecrets(t *testing.T) {
	m := full()
	m["SWEEPER_ADMIN_TOKEN"] = "admin-token-abc"
	m["INTERLACE_WEBHOOK_SECRET_PREVIOUS"] = "previous-secret-def"
	m["DATABASE_URL"] = "postgres://user:dbpass-ghi@host/db"
	c, err := Load(env(m), Need{Database: true, Interlace: true})
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	for _, secret := range []string{"client-secret-xyz", "admin-token-abc", "previous-secret-def", "dbpass-ghi"} {
		if strings.Contains(s, secret) {
			t.Fatalf("String() leaks %s: %s", secret, s)
		}
	}
}

func TestTruthKnobs(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		confirm  bool
		interval time.Duration
		bad      bool
	}{
		{env: map[string]string{}, confirm: true, interval: 5 * time.Minute},
		{env: map[string]string{"SWEEPER_CONFIRM_DEPOSITS": "false", "SWEEPER_POLL_INTERVAL": "0"}, confirm: false, interval: 0},
		{env: map[string]string{"SWEEPER_POLL_INTERVAL": "1s"}, confirm: true, interval: time.Second},
		{env: map[string]string{"SWEEPER_POLL_INTERVAL": "500ms"}, bad: true},
		{env: map[string]string{"SWEEPER_POLL_INTERVAL": "-1m"}, bad: true},
		{env: map[string]string{"SWEEPER_CONFIRM_DEPOSITS": "maybe"}, bad: true},
	} {
		vars := full()
		for k, v := range tc.env {
			vars[k] = v
		}
		c, err := Load(env(vars), Need{Database: true, Interlace: true})
		if tc.bad {
			if err == nil {
				t.Errorf("%v: accepted", tc.env)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if c.ConfirmDeposits != tc.confirm || c.PollInterval != tc.interval {
			t.Errorf("%v: confirm=%t interval=%s", tc.env, c.ConfirmDeposits, c.PollInterval)
		}
	}
}

func TestAuthStyle(t *testing.T) {
	for in, want := range map[string]string{"": "auto", "V3": "v3", "legacy": "legacy", "v2": ""} {
		m := full()
		m["INTERLACE_AUTH_STYLE"] = in
		c, err := Load(env(m), Need{Database: true, Interlace: true})
		switch {
		case want == "" && (err == nil || !strings.Contains(err.Error(), "INTERLACE_AUTH_STYLE")):
			t.Errorf("%q: %v, want a refusal naming INTERLACE_AUTH_STYLE", in, err)
		case want != "" && (err != nil || c.AuthStyle != want):
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
