package main

import (
	"fmt"
	"strconv"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// sandboxTokenVars applies the token endpoint variants (contract §10) of SANDBOX_AUTH_STYLE,
// SANDBOX_STRICT_TOKENS and SANDBOX_CLIENT_SECRET to cfg; get returns a variable or its default.
func sandboxTokenVars(get func(string) string, cfg *sandbox.Config) error {
	style := get("SANDBOX_AUTH_STYLE")
	if style != sandbox.AuthStyleBoth && style != sandbox.AuthStyleV3 && style != sandbox.AuthStyleLegacy {
		return fmt.Errorf("SANDBOX_AUTH_STYLE must be both, v3 or legacy, not %q", style)
	}
	strict, err := strconv.ParseBool(get("SANDBOX_STRICT_TOKENS"))
	if err != nil {
		return fmt.Errorf("SANDBOX_STRICT_TOKENS must be true or false, not %q", get("SANDBOX_STRICT_TOKENS"))
	}
	cfg.AuthStyle, cfg.StrictTokens, cfg.ClientSecret = style, strict, get("SANDBOX_CLIENT_SECRET")
	return nil
}
