// Package app assembles sweeper from its parts: it is the only package that knows
// all of them. cmd/sweeper calls it, and the end-to-end tests start the very same
// program on 127.0.0.1:0 and stop it.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/operator"
	"github.com/sweeperhq/sweeper/internal/poll"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/sweep"
	"github.com/sweeperhq/sweeper/internal/webhook"
	"github.com/sweeperhq/sweeper/internal/withdraw"
)

// Options choose what the process runs.
type Options struct {
	HTTP   bool // serve webhooks, health, metrics and the operator API
	Worker bool // run the sweep worker
	// Listener, when set, is used instead of listening on cfg.HTTPAddr (tests pass 127.0.0.1:0).
	Listener net.Listener
}

// App is one running sweeper process.
type App struct {
	cfg      *config.Config
	opts     Options
	log      *zap.Logger
	pool     *pgxpool.Pool
	store    *store.Store
	client   *interlace.Client
	metrics  *metrics.Metrics
	registry *prometheus.Registry
	worker   *sweep.Worker
	payouts  *withdraw.Service
	runner   *withdraw.Runner // executes withdrawals; with the sweep worker
	ingester *store.Batcher
	// truth reads Interlace's records (contract §9): confirmation, backfill, release.
	truth     *poll.Reader
	confirmer *poll.Confirmer // with the sweep worker
	poller    *poll.Poller    // with the sweep worker, unless SWEEPER_POLL_INTERVAL=0
	server    *http.Server
	listener  net.Listener
	owner     string
	stopping  atomic.Bool
}

// New connects to the database and builds every component; nothing runs until Run.
func New(ctx context.Context, cfg *config.Config, log *zap.Logger, opts Options) (*App, error) {
	a := &App{cfg: cfg, opts: opts, log: log, registry: prometheus.NewRegistry()}
	host, _ := os.Hostname()
	a.owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])

	pool, err := store.OpenPool(ctx, cfg.DatabaseURL, store.PoolOptions{MaxConns: int32(cfg.DBMaxConns)})
	if err != nil {
		return nil, err
	}
	a.pool = pool
	if err := a.build(); err != nil {
		pool.Close()
		return nil, err
	}
	return a, nil
}

// build assembles every component on the open pool.
func (a *App) build() error {
	cfg, log, opts := a.cfg, a.log, a.opts
	a.store = store.New(a.pool)
	a.metrics = metrics.New(a.registry, a.store.QueueStats)

	var tokens interlace.TokenSource
	if cfg.AccessToken != "" {
		tokens = interlace.StaticToken(cfg.AccessToken)
	} else {
		tokens = interlace.NewOAuthTokenSource(interlace.OAuthConfig{
			BaseURL: cfg.InterlaceBaseURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Style: cfg.AuthStyle, OnRefresh: a.metrics.TokenRefresh,
			OnStyle: func(style string) {
				log.Info("interlace token endpoints answered", zap.String("auth_style", style), zap.String("configured", cfg.AuthStyle))
			},
		})
	}
	var err error
	a.client, err = interlace.New(interlace.Config{
		BaseURL: cfg.InterlaceBaseURL, Tokens: tokens, Timeout: cfg.UpstreamTimeout, Observe: a.metrics.Upstream,
	})
	if err != nil {
		return fmt.Errorf("app: interlace client: %w", err)
	}

	a.truth, err = poll.NewReader(poll.ReaderConfig{
		AccountID: cfg.AccountID, TargetCurrency: cfg.TargetCurrency, ConfirmDeposits: cfg.ConfirmDeposits,
		Intake: webhook.NewIntake(a.intakeConfig()),
	}, a.client, a.store, log.Named("poll"), a.metrics)
	if err != nil {
		return err
	}
	if opts.Worker {
		// The confirmer runs even with SWEEPER_CONFIRM_DEPOSITS=false: deposits
		// queued while it was true still need their read-back.
		a.confirmer = poll.NewConfirmer(poll.ConfirmConfig{}, a.truth)
		if cfg.PollInterval > 0 {
			a.poller, err = poll.NewPoller(poll.PollerConfig{Owner: a.owner, Interval: cfg.PollInterval}, a.truth)
			if err != nil {
				return err
			}
		}
		a.worker, err = sweep.New(sweep.Config{
			Owner: a.owner, AccountID: cfg.AccountID, TargetCurrency: cfg.TargetCurrency,
			InfinityWalletID: cfg.InfinityWalletID, Concurrency: cfg.WorkerConcurrency, Lease: cfg.SweepLease,
			MaxDelay: cfg.RetryMaxDelay, DrainTimeout: cfg.ShutdownTimeout,
			PendingMaxAge: cfg.PendingMaxAge, AttemptTimeout: cfg.AttemptWorstCase(),
		}, a.store, a.client, log.Named("sweep"), a.metrics)
		if err != nil {
			return err
		}
		a.runner, err = withdraw.NewRunner(withdraw.RunnerConfig{
			Owner: a.owner, AccountID: cfg.AccountID, SourceCurrency: cfg.TargetCurrency,
			InfinityWalletID: cfg.InfinityWalletID, Lease: cfg.SweepLease, MaxDelay: cfg.RetryMaxDelay,
			DrainTimeout: cfg.ShutdownTimeout, PendingMaxAge: cfg.PendingMaxAge, AttemptTimeout: cfg.AttemptWorstCase(),
		}, a.store, a.client, log.Named("withdraw"), a.metrics)
		if err != nil {
			return err
		}
	}
	var wake func()
	if a.runner != nil {
		wake = a.runner.Wake
	}
	a.payouts, err = withdraw.NewService(withdraw.Config{
		AccountID: cfg.AccountID, SourceCurrency: cfg.TargetCurrency, MaxFeeRate: cfg.MaxFeeRate,
	}, a.store, a.client, wake)
	if err != nil {
		return err
	}
	if opts.HTTP {
		return a.buildHTTP()
	}
	return nil
}

// intakeConfig is the one set of intake rules, shared by the webhook handler and
// the poller (a deposit found by polling is recorded as a webhook would record it).
func (a *App) intakeConfig() webhook.IntakeConfig {
	return webhook.IntakeConfig{AccountID: a.cfg.AccountID, TargetCurrency: a.cfg.TargetCurrency,
		SweepCurrencies: a.cfg.SweepCurrencies, ConfirmDeposits: a.cfg.ConfirmDeposits}
}

func (a *App) buildHTTP() error {
	secrets := [][]byte{[]byte(a.cfg.WebhookSecret)}
	if a.cfg.WebhookSecretPrevious != "" {
		secrets = append(secrets, []byte(a.cfg.WebhookSecretPrevious))
	}
	verifier, err := webhook.NewVerifier(webhook.SignedPart(a.cfg.WebhookSignedPart), secrets...)
	if err != nil {
		return fmt.Errorf("app: webhook verifier: %w", err)
	}
	a.ingester = store.NewBatcher(a.store, store.BatcherOptions{OnBatch: a.metrics.IngestBatch})
	ic := a.intakeConfig()
	whOpts := webhook.Options{
		Verifier: verifier, Recorder: a.ingester, AccountID: ic.AccountID,
		TargetCurrency: ic.TargetCurrency, SweepCurrencies: ic.SweepCurrencies, ConfirmDeposits: ic.ConfirmDeposits,
		Logger: a.log.Named("webhook"), Metrics: a.metrics, Refused: store.NewRefusalSampler(a.store),
	}
	if a.poller != nil {
		whOpts.WakePoller = a.poller.Wake // other replicas' pollers hear the NOTIFY
	}
	wh, err := webhook.NewHandler(whOpts)
	if err != nil {
		return err
	}

	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Post("/webhooks/interlace", wh.ServeHTTP)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	r.Get("/readyz", a.readyz)
	r.Handle("/metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry}))
	if a.cfg.AdminToken != "" {
		r.Mount("/v1", a.operatorRoutes())
		if err := a.mountConsole(r); err != nil {
			return err
		}
	}

	ln := a.opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", a.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("app: listen %s: %w", a.cfg.HTTPAddr, err)
		}
	}
	a.listener = ln
	a.server = &http.Server{
		Handler: r,
		// Interlace waits 5 s for an answer; nothing legitimate needs longer to send
		// its headers or body, and slow clients must not pin connections.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(a.log.Named("http")),
	}
	return nil
}

// Addr is the address the HTTP server listens on ("" when HTTP is off).
func (a *App) Addr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// Store exposes the store (for tests and subcommands sharing the wiring).
func (a *App) Store() *store.Store { return a.store }

// Client exposes the Interlace client.
func (a *App) Client() *interlace.Client { return a.client }

func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if a.stopping.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"stopping"}` + "\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.store.Ready(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"not ready"}` + "\n"))
		a.log.Warn("not ready", zap.Error(err))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
}

// Run serves until ctx ends, then shuts down: fail readiness; stop accepting
// and finish in-flight requests while, side by side, the worker stops claiming
// and finishes in-flight sweeps (releasing their leases), both within
// SWEEPER_SHUTDOWN_TIMEOUT; close the pool.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("sweeper starting", zap.String("owner", a.owner), zap.String("addr", a.Addr()),
		zap.Bool("http", a.opts.HTTP), zap.Bool("worker", a.opts.Worker), zap.Stringer("config", a.cfg))
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()

	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	if a.worker != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.worker.Run(workerCtx); err != nil {
				errc <- fmt.Errorf("sweep worker: %w", err)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sweep.NewStuckMonitor(sweep.StuckConfig{}, a.store, a.log.Named("sweep"), a.metrics).Run(workerCtx)
		}()
	}
	var jobs []func(context.Context)
	if a.confirmer != nil {
		jobs = append(jobs, a.confirmer.Run)
	}
	if a.poller != nil {
		jobs = append(jobs, a.poller.Run)
	}
	for _, run := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(workerCtx)
		}()
	}
	if a.runner != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.runner.Run(workerCtx); err != nil {
				errc <- fmt.Errorf("withdrawal runner: %w", err)
			}
		}()
	}
	if a.server != nil {
		go func() {
			if err := a.server.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
				cancelRun()
			}
		}()
	}

	var runErr error
	select {
	case <-runCtx.Done():
	case runErr = <-errc:
	}
	a.log.Info("sweeper stopping")
	a.stopping.Store(true)
	// The worker stops claiming now and drains while HTTP drains: run one after
	// the other, the two waits would add up to twice SWEEPER_SHUTDOWN_TIMEOUT and
	// outlast the pod's termination grace period.
	stopWorker()
	deadline := a.cfg.ShutdownTimeout
	if a.server != nil {
		sctx, cancel := context.WithTimeout(context.Background(), deadline)
		if err := a.server.Shutdown(sctx); err != nil {
			a.log.Warn("http shutdown", zap.Error(err))
		}
		cancel()
	}
	if a.ingester != nil {
		a.ingester.Close()
	}
	wg.Wait()
	a.pool.Close()
	a.log.Info("sweeper stopped")
	return runErr
}

func (a *App) operatorRoutes() http.Handler {
	d := operator.Deps{Store: a.store, Logger: a.log.Named("operator"), Token: a.cfg.AdminToken, Payouts: a.payouts,
		Deposits: a.truth}
	if a.runner != nil {
		d.Wake = a.runner.Wake
	}
	return operator.Routes(d)
}
