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
		"deposits that deliver signed webhooks (POST /sandbox/deposits) and GET /sandbox/ledger.", stdout, config.SandboxVars)
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
	scale, err := strconv.ParseFloat(get("SANDBOX_TIME_SCALE"), 64)
	if err != nil || scale <= 0 {
		return fmt.Errorf("SANDBOX_TIME_SCALE must be a positive number, not %q", get("SANDBOX_TIME_SCALE"))
	}
	delay, err := time.ParseDuration(get("SANDBOX_WITHDRAWAL_DELAY"))
	if err != nil {
		return fmt.Errorf("SANDBOX_WITHDRAWAL_DELAY: %w", err)
	}
	log, err := newLogger(orDefault(env("SWEEPER_LOG_FORMAT"), "json"), orDefault(env("SWEEPER_LOG_LEVEL"), "info"), stderr)
	if err != nil {
		return err
	}
	cfg := sandbox.Config{
		AccountID: get("SANDBOX_ACCOUNT_ID"), WebhookURL: get("SANDBOX_WEBHOOK_URL"),
		WebhookSecret: get("SANDBOX_WEBHOOK_SECRET"), SignedPart: get("SANDBOX_SIGNED_PART"),
		TimeScale: scale, WithdrawalDelay: delay, Logger: log.Named("sandbox"),
	}
	if err := sandboxTokenVars(get, &cfg); err != nil {
		return err
	}
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

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
