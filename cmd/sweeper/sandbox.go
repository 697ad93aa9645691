package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

func runSandbox(ctx context.Context, env config.Getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sandbox", "Runs a fake Interlace over real HTTP: OAuth, every MoR guide endpoint with the guide's\n"+
		"response shapes, an in-memory ledger, idempotent transfers, fault injection (PUT /sandbox/faults),\n"+
		"deposits that deliver signed webhooks (POST /sandbox/deposits) and GET /sandbox/ledger.\n\n"+
		sandboxFaultsHelp, stdout, config.SandboxVars)
	if err := fs.Parse(args); err != nil {
		return err
	}
	get := func(name string) string {
		if v := env(name); v != "" {
			return v
		}
		for _, v := range config.SandboxVars {
			if v.Name == name {
				return v.Default
			}
		}
		return ""
	}
	cfg, err := sandboxConfig(get)
	if err != nil {
		return err
	}
	log, err := newLogger(orDefault(env("SWEEPER_LOG_FORMAT"), "json"), orDefault(env("SWEEPER_LOG_LEVEL"), "info"), stderr)
	if err != nil {
		return err
	}
	if err := sandboxTokenVars(get, &cfg); err != nil {
		return err
	}
	cfg.Logger = log.Named("sandbox")
	srv := sandbox.New(cfg)
	defer srv.Close()
	ln, err := net.Listen("tcp", get("SWEEPER_SANDBOX_ADDR"))
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	log.Info("sandbox listening", zap.String("addr", ln.Addr().String()), zap.String("webhook_url", get("SANDBOX_WEBHOOK_URL")))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// sandboxFaultsHelp documents the body of PUT /sandbox/faults (sandbox.Faults). Every fault is off at start;
// a PUT replaces them all.
const sandboxFaultsHelp = `Faults (PUT /sandbox/faults with a JSON object; every field off at start, a PUT replaces all):
  errorRate               share of API requests answered 500/502/503/429, not applied (0..1)
  latencyMs               delay before every API request is handled (0..60000)
  timeoutAfterCommitRate  share of requests applied, then answered by closing the connection (0..1)
  duplicateDeliveryRate   share of notifications delivered twice (0..1)
  duplicateAnswer         "first" (default: a repeated clientTransactionId/idempotencyKey answers the
                          transfer) or "error" (HTTP 200, code 100409 "duplicate clientTransactionId")
  pendingRate, pendingMs  share of internal transfers answered PENDING (0..1), applied - balance checked -
                          and CLOSED, or FAILED if short, pendingMs later (0..600000)
  dropWebhookRate         share of deposits with no notification at all; only GET transfers shows them (0..1)
  legacyEnvelopeRate      share of deposits notified in the legacy envelope {id,businessType,data,sign},
                          without Signature/Timestamp headers (0..1)
  refundAfterCloseRate    share of deposits refunded shortly after Closed, if the wallet still holds the
                          amount (0..1)
  budgetBalance           true: GET cards/wallets lists a Budget USD balance before the Infinity one unless
                          objectType=0 is asked for
Example: curl -X PUT localhost:8090/sandbox/faults -d '{"pendingRate":0.2,"pendingMs":3000,"duplicateAnswer":"error"}'`

// sandboxConfig reads the SANDBOX_* variables (get returns a variable or its default).
func sandboxConfig(get func(string) string) (sandbox.Config, error) {
	scale, err := strconv.ParseFloat(get("SANDBOX_TIME_SCALE"), 64)
	if err != nil || scale <= 0 {
		return sandbox.Config{}, fmt.Errorf("SANDBOX_TIME_SCALE must be a positive number, not %q", get("SANDBOX_TIME_SCALE"))
	}
	delay, err := time.ParseDuration(get("SANDBOX_WITHDRAWAL_DELAY"))
	if err != nil {
		return sandbox.Config{}, fmt.Errorf("SANDBOX_WITHDRAWAL_DELAY: %w", err)
	}
	fundMaster, err := strconv.ParseBool(get("SANDBOX_FUND_MASTER"))
	if err != nil {
		return sandbox.Config{}, fmt.Errorf("SANDBOX_FUND_MASTER must be true or false, not %q", get("SANDBOX_FUND_MASTER"))
	}
	return sandbox.Config{
		AccountID: get("SANDBOX_ACCOUNT_ID"), WebhookURL: get("SANDBOX_WEBHOOK_URL"),
		WebhookSecret: get("SANDBOX_WEBHOOK_SECRET"), SignedPart: get("SANDBOX_SIGNED_PART"),
		TimeScale: scale, WithdrawalDelay: delay, EmptyMaster: !fundMaster,
	}, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
