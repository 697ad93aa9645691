package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sweeperhq/sweeper/internal/app"
	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/migrations"
)

func runServe(ctx context.Context, env config.Getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Runs the HTTP server (webhooks, /healthz, /readyz, /metrics, operator API) and the sweep worker.\n"+
		"Both run by default; -worker=false or -http=false runs one alone (e.g. to scale them apart).", stdout, config.Vars)
	httpOn := fs.Bool("http", true, "serve HTTP (webhooks, health, metrics, operator API)")
	workerOn := fs.Bool("worker", true, "run the sweep worker")
	migrate := fs.Bool("migrate", false, "apply migrations before starting (convenient for one replica; use `sweeper migrate` in a rollout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*httpOn && !*workerOn {
		return fmt.Errorf("nothing to run: -http=false and -worker=false")
	}
	cfg, err := config.Load(env, config.Need{Database: true, Interlace: true})
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if *migrate {
		if err := applyMigrations(ctx, cfg.DatabaseURL, io.Discard); err != nil {
			return err
		}
	}
	a, err := app.New(ctx, cfg, log, app.Options{HTTP: *httpOn, Worker: *workerOn})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func runMigrate(ctx context.Context, env config.Getenv, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("migrate", "Applies every embedded migration (safe to run from several replicas at once: a\n"+
		"Postgres session lock makes them take turns). `sweeper migrate status` lists migrations instead.",
		stdout, varsNamed("DATABASE_URL"))
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(env, config.Need{Database: true})
	if err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "":
		return applyMigrations(ctx, cfg.DatabaseURL, stdout)
	case "status":
		return withDB(ctx, cfg.DatabaseURL, func(db *sql.DB) error {
			st, err := migrations.Status(ctx, db)
			if err != nil {
				return err
			}
			for _, s := range st {
				state := "pending"
				if s.State == "applied" {
					state = "applied " + s.AppliedAt.Format("2006-01-02 15:04:05Z07:00")
				}
				fmt.Fprintf(stdout, "%05d  %-28s %s\n", s.Source.Version, s.Source.Path, state)
			}
			return nil
		})
	default:
		return fmt.Errorf("%w: unknown migrate argument %q", errUsage, fs.Arg(0))
	}
}

func applyMigrations(ctx context.Context, url string, out io.Writer) error {
	return withDB(ctx, url, func(db *sql.DB) error {
		res, err := migrations.UpVerbose(ctx, db)
		for _, r := range res {
			fmt.Fprintf(out, "applied %05d %s (%s)\n", r.Source.Version, r.Source.Path, r.Duration.Round(1e6))
		}
		if err != nil {
			return err
		}
		if len(res) == 0 {
			fmt.Fprintln(out, "database is up to date")
		}
		return nil
	})
}

func withDB(ctx context.Context, url string, fn func(*sql.DB) error) error {
	pool, err := store.OpenPool(ctx, url, store.PoolOptions{MaxConns: 2, MinConns: 1})
	if err != nil {
		return err
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return fn(db)
}
