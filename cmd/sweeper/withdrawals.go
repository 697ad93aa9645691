package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/sweeperhq/sweeper/internal/config"
)

func runWithdraw(ctx context.Context, env config.Getenv, args []string, stdout, stderr io.Writer) error {
	var (
		key, wallet, amount, sourceCurrency, currency, chain, address string
		status, after, limit                                          string
		wait                                                          bool
		waitTimeout                                                   time.Duration
	)
	subs := []subcommand{
		{
			name: "create", summary: "pay out: USD from the Infinity Account converted and sent on-chain (POST /v1/withdrawals)",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&key, "key", "", "idempotency key (required): the same key is the same withdrawal, however often it is sent")
				fs.StringVar(&wallet, "wallet", "", "CryptoConnect wallet id to pay through (from 'sweeper wallet create'), or the account id for the master wallet (required)")
				fs.StringVar(&amount, "amount", "", "amount of the source currency to pay out, e.g. 100.50 (required)")
				fs.StringVar(&sourceCurrency, "source-currency", "USD", "currency taken from the Infinity Account")
				fs.StringVar(&currency, "currency", "USDC", "crypto currency sent: USDC, USDT or WUSD")
				fs.StringVar(&chain, "chain", "", "Interlace chain code, e.g. ETH, ARB, TRON (required)")
				fs.StringVar(&address, "address", "", "destination address on that chain (required)")
				fs.BoolVar(&wait, "wait", false, "wait until the withdrawal completes, fails or stops, and print it (exit 1 unless completed)")
				fs.DurationVar(&waitTimeout, "wait-timeout", 10*time.Minute, "how long -wait waits")
			},
			run: func(ctx context.Context, c *adminClient, _ *flag.FlagSet, args []string, stdout io.Writer) error {
				if err := noArgs(args); err != nil {
					return err
				}
				body := map[string]any{"idempotencyKey": key, "walletId": wallet, "sourceCurrency": sourceCurrency,
					"currency": currency, "chain": chain, "address": address}
				if amount != "" {
					// The amount travels as the string typed, never through a float.
					body["amount"] = amount
				}
				raw, err := c.call(ctx, http.MethodPost, "/withdrawals", body)
				if err != nil {
					return err
				}
				if !wait {
					return printJSON(stdout, raw)
				}
				var accepted struct{ ID string }
				if err := json.Unmarshal(raw, &accepted); err != nil || accepted.ID == "" {
					return fmt.Errorf("unexpected answer %s", raw)
				}
				return waitWithdrawal(ctx, c, accepted.ID, waitTimeout, stdout)
			},
		},
		{
			name: "get", args: "<withdrawal-id>", summary: "show a withdrawal: every step, amounts, fees, events, on-chain status and hash",
			run: func(ctx context.Context, c *adminClient, _ *flag.FlagSet, args []string, stdout io.Writer) error {
				id, err := oneArg("withdrawal id", args)
				if err != nil {
					return err
				}
				raw, err := c.call(ctx, http.MethodGet, "/withdrawals/"+url.PathEscape(id), nil)
				if err != nil {
					return err
				}
				return printJSON(stdout, raw)
			},
		},
		{
			name: "list", summary: "list withdrawals, newest first (GET /v1/withdrawals)",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&status, "status", "", "pending, running, completed, failed or stopped")
				fs.StringVar(&after, "after", "", "continue after this withdrawal id")
				fs.StringVar(&limit, "limit", "", "at most this many (default 100, max 1000)")
			},
			run: func(ctx context.Context, c *adminClient, _ *flag.FlagSet, args []string, stdout io.Writer) error {
				if err := noArgs(args); err != nil {
					return err
				}
				raw, err := c.call(ctx, http.MethodGet, "/withdrawals"+pageQuery("status", status, "after", after, "limit", limit), nil)
				if err != nil {
					return err
				}
				return printJSON(stdout, raw)
			},
		},
		{
			name: "retry", args: "<withdrawal-id>", summary: "requeue a failed or stopped withdrawal at its step, with the same request ids",
			run: func(ctx context.Context, c *adminClient, _ *flag.FlagSet, args []string, stdout io.Writer) error {
				id, err := oneArg("withdrawal id", args)
				if err != nil {
					return err
				}
				raw, err := c.call(ctx, http.MethodPost, "/withdrawals/"+url.PathEscape(id)+"/retry", nil)
				if err != nil {
					return err
				}
				return printJSON(stdout, raw)
			},
		},
	}
	return runGroup(ctx, "withdraw", "Pays money out (guide: \"Convert & Withdraw\") through the operator API of a running\n"+
		"`sweeper serve`: USD leaves the Infinity Account, is converted, and is sent on-chain as a durable\n"+
		"workflow. Fees are checked against SWEEPER_MAX_FEE_RATE before any money moves.", subs, env, args, stdout, stderr)
}

func waitWithdrawal(ctx context.Context, c *adminClient, id string, timeout time.Duration, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		raw, err := c.call(ctx, http.MethodGet, "/withdrawals/"+url.PathEscape(id), nil)
		if err != nil {
			return err
		}
		var w struct {
			Status    string
			Step      string
			LastError string
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
		switch w.Status {
		case "completed":
			return printJSON(stdout, raw)
		case "failed", "stopped":
			if err := printJSON(stdout, raw); err != nil {
				return err
			}
			return fmt.Errorf("withdrawal %s %s at step %s: %s", id, w.Status, w.Step, w.LastError)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("withdrawal %s still %s at step %s after %s", id, w.Status, w.Step, timeout)
		case <-tick.C:
		}
	}
}
