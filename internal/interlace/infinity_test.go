package interlace_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
	// A failed discovery is not cached, but not retried on every call either: within the backoff the
	// failure is returned without asking; after it, the next call asks again and succeeds.
	sb.SetFaults(sandbox.Faults{ErrorRate: 1})
	now := time.Now()
	flaky := interlace.NewInfinityWalletResolver(c, sandbox.DefaultAccountID, "USD", "").WithClock(func() time.Time { return now })
	if _, err := flaky.ID(ctx); err == nil {
		t.Fatal("discovery through a failing upstream succeeded")
	}
	sb.SetFaults(sandbox.Faults{})
	if _, err := flaky.ID(ctx); err == nil || !strings.Contains(err.Error(), "next attempt in") {
		t.Fatalf("within the backoff: %v, want the remembered failure", err)
	}
	now = now.Add(time.Second)
	if id, err := flaky.ID(ctx); err != nil || id != sandbox.DefaultInfinityWalletID {
		t.Fatalf("after recovery: %q %v", id, err)
	}
}

func intp(v int) *int { return &v }

func TestPickInfinityWallet(t *testing.T) {
	t.Parallel()
	budget := interlace.InfinityWallet{ID: "budget-usd", Currency: "USD", WalletType: 0, ObjectType: intp(1)}
	card := interlace.InfinityWallet{ID: "card-usd", Currency: "USD", WalletType: 2, ObjectType: intp(2)}
	inf := interlace.InfinityWallet{ID: "inf-usd", Currency: "USD", WalletType: 0, ObjectType: intp(0)}
	infEUR := interlace.InfinityWallet{ID: "inf-eur", Currency: "EUR", WalletType: 0, ObjectType: intp(0)}
	guide := interlace.InfinityWallet{ID: "guide-usd", Currency: "USD", WalletType: 0} // no objectType, as in the guide
	guideBudget := interlace.InfinityWallet{ID: "guide-budget", Currency: "USD", WalletType: 1}
	for _, tc := range []struct {
		name     string
		list     []interlace.InfinityWallet
		want, by string
		naive    string // WalletTypeOnly's id, "" when nil
		others   int
	}{
		{"budget listed first", []interlace.InfinityWallet{budget, card, inf}, "inf-usd", interlace.ByObjectType, "budget-usd", 2},
		{"only infinity", []interlace.InfinityWallet{infEUR, inf}, "inf-usd", interlace.ByObjectType, "", 0},
		{"guide shape", []interlace.InfinityWallet{guideBudget, guide}, "guide-usd", interlace.ByWalletType, "", 1},
		{"budget only", []interlace.InfinityWallet{budget, card}, "", "", "", 2},
		{"other currency only", []interlace.InfinityWallet{infEUR}, "", "", "", 0},
		{"empty", nil, "", "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := interlace.PickInfinityWallet(tc.list, "usd")
			if tc.want == "" {
				if !errors.Is(err, interlace.ErrNoInfinityBalance) {
					t.Fatalf("err = %v, want ErrNoInfinityBalance (picked %q)", err, p.Wallet.ID)
				}
				return
			}
			if err != nil || p.Wallet.ID != tc.want || p.By != tc.by || p.Others != tc.others {
				t.Fatalf("picked %q by %q (others %d), %v; want %q by %q (others %d)", p.Wallet.ID, p.By, p.Others, err, tc.want, tc.by, tc.others)
			}
			got := ""
			if p.WalletTypeOnly != nil {
				got = p.WalletTypeOnly.ID
			}
			if got != tc.naive {
				t.Fatalf("WalletTypeOnly = %q, want %q", got, tc.naive)
			}
		})
	}
}

// TestDiscoveryIgnoresBudgetListedFirst: an upstream that ignores the filters and lists a Budget USD
// balance (objectType 1, walletType 0) before the Infinity one (as the stricter sandbox does). The
// scripted server also checks that the documented filter objectType=0 is sent.
func TestDiscoveryIgnoresBudgetListedFirst(t *testing.T) {
	t.Parallel()
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"code":"000000","message":"success","data":{"list":[
{"id":"budget-usd","accountId":"a","currency":"USD","walletType":0,"objectType":1,"available":"5"},
{"id":"infinity-usd","accountId":"a","currency":"USD","walletType":0,"objectType":0,"available":"7"}],"total":"2"}}`))
	}))
	t.Cleanup(srv.Close)
	c, err := interlace.New(interlace.Config{BaseURL: srv.URL, Tokens: interlace.StaticToken("t")})
	if err != nil {
		t.Fatal(err)
	}
	id, err := interlace.NewInfinityWalletResolver(c, "a", "USD", "").ID(context.Background())
	if err != nil || id != "infinity-usd" {
		t.Fatalf("discovered %q, %v; want infinity-usd", id, err)
	}
	if !strings.Contains(query, "objectType=0") {
		t.Fatalf("query %q lacks the documented objectType=0 filter", query)
	}
}
