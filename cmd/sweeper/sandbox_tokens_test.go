package main

import (
	"strings"
	"testing"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

func TestSandboxTokenVars(t *testing.T) {
	t.Parallel()
	getter := func(set map[string]string) func(string) string {
		return func(name string) string {
			if v, ok := set[name]; ok {
				return v
			}
			for _, v := range config.SandboxVars {
				if v.Name == name {
					return v.Default
				}
			}
			return ""
		}
	}
	var cfg sandbox.Config
	if err := sandboxTokenVars(getter(nil), &cfg); err != nil || cfg.AuthStyle != sandbox.AuthStyleBoth || cfg.StrictTokens || cfg.ClientSecret != "" {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	set := map[string]string{"SANDBOX_AUTH_STYLE": "v3", "SANDBOX_STRICT_TOKENS": "true", "SANDBOX_CLIENT_SECRET": "s"}
	if err := sandboxTokenVars(getter(set), &cfg); err != nil || cfg.AuthStyle != sandbox.AuthStyleV3 || !cfg.StrictTokens || cfg.ClientSecret != "s" {
		t.Fatalf("set: %+v %v", cfg, err)
	}
	for name, bad := range map[string]string{"SANDBOX_AUTH_STYLE": "v2", "SANDBOX_STRICT_TOKENS": "maybe"} {
		if err := sandboxTokenVars(getter(map[string]string{name: bad}), &cfg); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v, want a refusal naming it", name, bad, err)
		}
	}
}
