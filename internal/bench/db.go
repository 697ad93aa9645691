package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/migrations"
)

var lookPath = exec.LookPath

var dbSeq atomic.Int64

// databases creates fresh databases for one run: the first is migrated and then
// used as the template of the others, which makes every further one cost a file
// copy instead of a migration.
type databases struct {
	env      *Env
	template string
	created  []string
}

func newDatabases(ctx context.Context, env *Env) (*databases, error) {
	d := &databases{env: env}
	name, err := d.create(ctx, "")
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, d.url(name)); err != nil {
		d.close()
		return nil, err
	}
	d.template = name
	return d, nil
}

// copyOf returns the URL of a copy of the database at dbURL (which must have no
// connections), by file copy: much faster than replaying a large one through WAL.
func (d *databases) copyOf(ctx context.Context, dbURL string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("sweeper_bench_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, dbSeq.Add(1))
	src := strings.TrimPrefix(u.Path, "/")
	if err := d.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+
		pgx.Identifier{src}.Sanitize()+" STRATEGY FILE_COPY"); err != nil {
		return "", fmt.Errorf("bench: copy database: %w", err)
	}
	d.created = append(d.created, name)
	return d.url(name), nil
}

// fresh returns the URL of a new, migrated database.
func (d *databases) fresh(ctx context.Context) (string, error) {
	name, err := d.create(ctx, d.template)
	if err != nil {
		return "", err
	}
	return d.url(name), nil
}

func (d *databases) create(ctx context.Context, template string) (string, error) {
	name := fmt.Sprintf("sweeper_bench_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, dbSeq.Add(1))
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := d.admin(ctx, sql); err != nil {
		return "", fmt.Errorf("bench: create database: %w", err)
	}
	d.created = append(d.created, name)
	return name, nil
}

func (d *databases) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, d.env.AdminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func (d *databases) url(name string) string {
	u, err := url.Parse(d.env.AdminURL)
	if err != nil {
		return d.env.AdminURL
	}
	u.Path = "/" + name
	return u.String()
}

// newFreshDatabase is newDatabases plus one fresh migrated database, what most
// benchmarks need. The caller closes the returned set.
func newFreshDatabase(ctx context.Context, env *Env) (*databases, string, error) {
	dbs, err := newDatabases(ctx, env)
	if err != nil {
		return nil, "", err
	}
	url, err := dbs.fresh(ctx)
	if err != nil {
		dbs.close()
		return nil, "", err
	}
	return dbs, url, nil
}

// close drops every database of the run (unless Env.Keep).
func (d *databases) close() {
	if d.env.Keep {
		for _, n := range d.created {
			d.env.logf("kept database %s", n)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := len(d.created) - 1; i >= 0; i-- {
		if err := d.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.created[i]}.Sanitize()+" WITH (FORCE)"); err != nil {
			d.env.logf("drop database %s: %v", d.created[i], err)
		}
	}
}

func migrate(ctx context.Context, dbURL string) error {
	pool, err := store.OpenPool(ctx, dbURL, store.PoolOptions{MaxConns: 2, MinConns: 1})
	if err != nil {
		return err
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	if err := migrations.Up(ctx, db); err != nil {
		return fmt.Errorf("bench: migrate: %w", err)
	}
	return nil
}

// durability reports the server settings that would make figures meaningless.
func durability(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", fmt.Errorf("bench: connect: %w", err)
	}
	defer conn.Close(ctx)
	var fsync, syncCommit string
	if err := conn.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit); err != nil {
		return "", err
	}
	if fsync != "on" || syncCommit == "off" {
		return fmt.Sprintf("fsync=%s synchronous_commit=%s: commits are NOT durable, figures are not comparable", fsync, syncCommit), nil
	}
	return "", nil
}
