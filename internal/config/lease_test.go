package config

import (
	"strings"
	"testing"
	"time"
)

// TestLeaseMustExceedOneAttempt: SWEEPER_SWEEP_LEASE is refused at start unless
// it exceeds token fetch + request + refresh after a 401 + request (contract §11).
func TestLeaseMustExceedOneAttempt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		worst time.Duration
		ok    bool
	}{
		{"DefaultsOAuth", nil, 60 * time.Second, true},
		{"LeaseEqualToWorstCase", map[string]string{"SWEEPER_SWEEP_LEASE": "60s"}, 60 * time.Second, false},
		{"LeaseJustAboveTimeoutIsNotEnough", map[string]string{"SWEEPER_SWEEP_LEASE": "11s"}, 60 * time.Second, false},
		{"LongerTimeout", map[string]string{"SWEEPER_UPSTREAM_TIMEOUT": "20s"}, 120 * time.Second, false},
		{"LongerTimeoutLongerLease", map[string]string{"SWEEPER_UPSTREAM_TIMEOUT": "20s", "SWEEPER_SWEEP_LEASE": "121s"}, 120 * time.Second, true},
		{"StaticTokenHasNoFetch", map[string]string{"INTERLACE_ACCESS_TOKEN": "tok", "SWEEPER_SWEEP_LEASE": "21s"}, 20 * time.Second, true},
		{"StaticTokenTooShort", map[string]string{"INTERLACE_ACCESS_TOKEN": "tok", "SWEEPER_SWEEP_LEASE": "20s"}, 20 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := full()
			for k, v := range tc.env {
				m[k] = v
			}
			c, err := Load(env(m), Need{Database: true, Interlace: true})
			if tc.ok != (err == nil) {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "SWEEPER_SWEEP_LEASE") || !strings.Contains(err.Error(), tc.worst.String()) {
					t.Fatalf("error does not name the variable and the bound: %v", err)
				}
				return
			}
			if got := c.AttemptWorstCase(); got != tc.worst {
				t.Fatalf("worst case %s, want %s", got, tc.worst)
			}
		})
	}
}

func TestPendingMaxAge(t *testing.T) {
	c, err := Load(env(full()), Need{})
	if err != nil || c.PendingMaxAge != time.Hour {
		t.Fatalf("default %v %v", c, err)
	}
	m := full()
	m["SWEEPER_PENDING_MAX_AGE"] = "0s"
	if _, err := Load(env(m), Need{}); err == nil || !strings.Contains(err.Error(), "SWEEPER_PENDING_MAX_AGE") {
		t.Fatalf("zero accepted: %v", err)
	}
}
