package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sweeperhq/sweeper/internal/ids"
)

// The operations contract for logs: one line per webhook and per sweep attempt
// carrying the deposit id, the client transaction id, the outcome and the
// duration; never a secret.
func TestLogLinesPerWebhookAndSweepAttempt(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	s := start(t, sysOpts{logger: zap.New(core)})

	d := s.deposit("10")
	s.waitFor(d.ID, "succeeded")
	// A rejected sweep: a signed deposit the sandbox never credited overdraws the wallet.
	rejected := uuid.NewString()
	if r := s.post(webhookSecret, uuid.NewString(), depositResource(rejected, masterWallet, "Closed", "1000000")); r.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d", r.StatusCode)
	}
	s.waitFor(rejected, "failed")
	forged := uuid.NewString()
	if r := s.post("wrong-secret", forged, depositResource(uuid.NewString(), masterWallet, "Closed", "1")); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d", r.StatusCode)
	}
	s.stop() // flushes every line, including shutdown's

	entries := logs.All()
	required := func(e observer.LoggedEntry, fields ...string) error {
		m := e.ContextMap()
		for _, f := range fields {
			v, ok := m[f]
			if !ok || v == "" {
				return fmt.Errorf("%q lacks %s: %v", e.Message, f, m)
			}
		}
		if dur, ok := m["duration"].(time.Duration); !ok || dur <= 0 || dur > 15*time.Second {
			return fmt.Errorf("%q: duration %v (%T)", e.Message, m["duration"], m["duration"])
		}
		return nil
	}
	find := func(msg, depositID, outcome string) []observer.LoggedEntry {
		var out []observer.LoggedEntry
		for _, e := range entries {
			m := e.ContextMap()
			if e.Message == msg && m["deposit_id"] == depositID && m["outcome"] == outcome {
				out = append(out, e)
			}
		}
		return out
	}

	for _, tc := range []struct {
		name, msg, deposit, outcome string
		want                        int
	}{
		{"WebhooksOfSweptDeposit", "webhook recorded", d.ID, "deposit", 2}, // Pending, then Closed
		{"WebhookOfRejectedDeposit", "webhook recorded", rejected, "deposit", 1},
		{"SweepSucceeded", "sweep succeeded", d.ID, "succeeded", 1},
		{"SweepRejected", "sweep rejected", rejected, "failed", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := find(tc.msg, tc.deposit, tc.outcome)
			if len(got) != tc.want {
				t.Fatalf("%d %q lines for %s with outcome %s, want %d", len(got), tc.msg, tc.deposit, tc.outcome, tc.want)
			}
			for _, e := range got {
				if err := required(e, "deposit_id", "client_transaction_id", "outcome"); err != nil {
					t.Error(err)
				}
				if ctid := e.ContextMap()["client_transaction_id"]; ctid != ids.SweepTransactionID(tc.deposit).String() {
					t.Errorf("%q: client_transaction_id %v, want the deposit's", e.Message, ctid)
				}
			}
		})
	}
	t.Run("RefusedWebhook", func(t *testing.T) {
		n := 0
		for _, e := range entries {
			m := e.ContextMap()
			if e.Message == "webhook refused" && m["outcome"] == "bad_signature" {
				n++
				if err := required(e, "outcome", "notification_id"); err != nil {
					t.Error(err)
				}
				if m["notification_id"] != forged || m["status"] != int64(http.StatusUnauthorized) {
					t.Errorf("refusal line %v", m)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%d refusal lines, want 1", n)
		}
	})

	t.Run("NoSecrets", func(t *testing.T) {
		secrets := []string{"client-secret-value", webhookSecret, adminToken}
		for _, e := range entries {
			line := e.Message + " " + fmt.Sprint(e.ContextMap())
			for _, sec := range secrets {
				if strings.Contains(line, sec) {
					t.Errorf("log line leaks a secret: %s", line)
				}
			}
		}
		// The start line describes the configuration: it must be there, redacted.
		seen := false
		for _, e := range entries {
			if e.Message == "sweeper starting" {
				seen = true
			}
		}
		if !seen {
			t.Error("no start line")
		}
	})
}
