package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sweeperhq/sweeper/internal/config"
)

// addressList is the repeatable -address CURRENCY:CHAIN flag.
type addressList []map[string]string

func (a *addressList) String() string {
	parts := make([]string, 0, len(*a))
	for _, p := range *a {
		parts = append(parts, p["currency"]+":"+p["chain"])
	}
	return strings.Join(parts, ",")
}

func (a *addressList) Set(v string) error {
	for _, pair := range strings.Split(v, ",") {
		cur, chain, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok || cur == "" || chain == "" {
			return fmt.Errorf("want CURRENCY:CHAIN (e.g. USDC:ETH), got %q", pair)
		}
		*a = append(*a, map[string]string{"currency": cur, "chain": chain})
	}
	return nil
}

func runWallet(ctx context.Context, env config.Getenv, args []string, stdout, stderr io.Writer) error {
	var (
		userRef, nickname, after, limit string
		refresh                         bool
		addrs                           addressList
	)
	subs := []subcommand{
		{
			name: "create", summary: "give a user their CryptoConnect wallet and deposit addresses (POST /v1/wallets; 201 new, 200 existing)",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&userRef, "user-ref", "", "your reference of the user (required); the same user always gets the same wallet")
				fs.StringVar(&nickname, "nickname", "", "wallet nickname shown by Interlace")
				fs.Var(&addrs, "address", "a deposit address to create, CURRENCY:CHAIN (repeatable or comma-separated), e.g. USDC:ETH")
			},
			run: func(ctx context.Context, c *adminClient, _ *flag.FlagSet, args []string, stdout io.Writer) error {
				if err := noArgs(args); err != nil {
					return err
				}
				body := map[string]any{"userRef": userRef, "nickname": nickname, "addresses": []map[string]string(addrs)}
				if addrs == nil {
					body["addresses"] = []map[string]string{}
				}
				raw, err := c.call(ctx, http.MethodPost, "/wallets", body)
				if err != nil {
					return err
				}
				return printJSON(stdout, raw)
			},
		},
		{
			name: "get", args: "<wallet-id>", summary: "show a stored wallet (GET /v1/wallets/{id}); -refresh reads it from Interlace first",
			flags: func(fs *flag.FlagSet) {
				fs.BoolVar(&refresh, "refresh", false, "refresh balances and addresses from Interlace")
			},
			run: func(ctx context.Context, c *adminClient, _ *flag.FlagSet, args []string, stdout io.Writer) error {
				id, err := oneArg("wallet id", args)
				if err != nil {
					return err
				}
				path := "/wallets/" + url.PathEscape(id)
				if refresh {
					path += "?refresh=true"
				}
				raw, err := c.call(ctx, http.MethodGet, path, nil)
				if err != nil {
					return err
				}
				return printJSON(stdout, raw)
			},
		},
		{
			name: "list", summary: "list stored wallets, newest first (GET /v1/wallets)",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&userRef, "user-ref", "", "only this user's wallet")
				fs.StringVar(&after, "after", "", "continue after this wallet id")
				fs.StringVar(&limit, "limit", "", "at most this many (default 100, max 1000)")
			},
			run: func(ctx context.Context, c *adminClient, _ *flag.FlagSet, args []string, stdout io.Writer) error {
				if err := noArgs(args); err != nil {
					return err
				}
				raw, err := c.call(ctx, http.MethodGet, "/wallets"+pageQuery("userRef", userRef, "after", after, "limit", limit), nil)
				if err != nil {
					return err
				}
				return printJSON(stdout, raw)
			},
		},
	}
	return runGroup(ctx, "wallet", "Provisions users' CryptoConnect wallets and deposit addresses through the operator API\n"+
		"of a running `sweeper serve` (guide: \"Generate a Wallet Address\").", subs, env, args, stdout, stderr)
}
