package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sweeperhq/sweeper/internal/pgcluster"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/migrations"
)

// database is the fresh, migrated database of one run, on the harness' own
// throwaway cluster (which it may crash and restart) or on a given server
// (which it never restarts: other tests may be using it).
type database struct {
	adminURL string
	url      string
	name     string
	cluster  *pgcluster.Cluster
}

// openDatabase starts a cluster when own is set, else uses adminURL; then it
// creates and migrates a database named for this run.
func openDatabase(ctx context.Context, adminURL string, own bool) (_ *database, err error) {
	db := &database{adminURL: adminURL}
	if own {
		// Every acknowledged commit must survive the crash the harness
		// inflicts; the cluster's default (off, for test speed) could lose the
		// last few, and the harness would report as lost what PostgreSQL lost.
		db.cluster, err = pgcluster.Start(ctx, pgcluster.Options{Settings: []string{"synchronous_commit=on"}})
		if err != nil {
			return nil, fmt.Errorf("chaos: start a PostgreSQL cluster: %w", err)
		}
		db.adminURL = db.cluster.AdminURL()
	}
	defer func() {
		if err != nil {
			db.close(context.WithoutCancel(ctx))
		}
	}()
	if !strings.HasPrefix(db.adminURL, "postgres://") && !strings.HasPrefix(db.adminURL, "postgresql://") {
		return nil, errors.New("chaos: the database URL must be a postgres:// URL")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	db.name = fmt.Sprintf("sweeper_chaos_%d_%s", time.Now().Unix(), hex.EncodeToString(b[:]))
	u, err := url.Parse(db.adminURL)
	if err != nil {
		return nil, fmt.Errorf("chaos: database URL: %w", err)
	}
	u.Path = "/" + db.name
	db.url = u.String()

	conn, err := pgx.Connect(ctx, db.adminURL)
	if err != nil {
		return nil, fmt.Errorf("chaos: connect to %s: %w", u.Redacted(), err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db.name}.Sanitize())
	_ = conn.Close(ctx)
	if err != nil {
		db.name = "" // nothing to drop
		return nil, fmt.Errorf("chaos: create database: %w", err)
	}
	pool, err := store.OpenPool(ctx, db.url, store.PoolOptions{MaxConns: 2, MinConns: 1})
	if err != nil {
		return nil, err
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	err = migrations.Up(ctx, sqlDB)
	_ = sqlDB.Close()
	pool.Close()
	if err != nil {
		return nil, fmt.Errorf("chaos: migrate: %w", err)
	}
	return db, nil
}

// canRestart reports whether the server is the harness' own.
func (db *database) canRestart() bool { return db.cluster != nil }

// crash kills PostgreSQL (immediate shutdown: every backend dies, no
// checkpoint) and starts it again on the same port.
func (db *database) crash(ctx context.Context) error {
	if db.cluster == nil {
		return errors.New("chaos: not the harness' own server; it is never restarted")
	}
	return db.cluster.Restart(ctx, true)
}

// close drops the run's database, or the whole cluster when it is ours.
func (db *database) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if db.cluster != nil {
		_ = db.cluster.Stop(ctx)
		return
	}
	if db.name == "" {
		return
	}
	if conn, err := pgx.Connect(ctx, db.adminURL); err == nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db.name}.Sanitize()+" WITH (FORCE)")
		_ = conn.Close(ctx)
	}
}
