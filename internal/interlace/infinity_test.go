package interlace_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

func TestInfinityWalletResolver(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); srv.Close() })
	c, err := interlace.New(interlace.Config{BaseURL: srv.URL, Tokens: interlace.NewOAuthTokenSource(interlace.OAuthConfig{
		BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret"})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	r := interlace.NewInfinityWalletResolver(c, sandbox.DefaultAccountID, "usd", "")
	if r.Known() != "" {
		t.Fatal("known before discovery")
	}
	id, err := r.ID(ctx)
	if err != nil || id != sandbox.DefaultInfinityWalletID || r.Known() != id {
		t.Fatalf("discovered %q %v", id, err)
	}

	if id, _ := interlace.NewInfinityWalletResolver(c, sandbox.DefaultAccountID, "USD", "configured").ID(ctx); id != "configured" {
		t.Fatalf("configured id ignored: %q", id)
	}
	if _, err := interlace.NewInfinityWalletResolver(c, sandbox.DefaultAccountID, "EUR", "").ID(ctx); err == nil || !strings.Contains(err.Error(), "EUR") {
		t.Fatalf("missing currency: %v", err)
	}
	// A failed discovery is not cached: the next call asks again and succeeds.
	sb.SetFaults(sandbox.Faults{ErrorRate: 1})
	flaky := interlace.NewInfinityWalletResolver(c, sandbox.DefaultAccountID, "USD", "")
	if _, err := flaky.ID(ctx); err == nil {
		t.Fatal("discovery through a failing upstream succeeded")
	}
	sb.SetFaults(sandbox.Faults{})
	if id, err := flaky.ID(ctx); err != nil || id != sandbox.DefaultInfinityWalletID {
		t.Fatalf("after recovery: %q %v", id, err)
	}
}
