package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/migrations"
)

// The database grants docs/RELIABILITY.md documents, applied literally: an
// owner role (no superuser, no CREATEDB, no CREATEROLE) that owns the database
// and runs the migrations, and a runtime role that may only read and write
// rows. Each of them runs the real program through a whole sweep, and the
// runtime role is shown unable to delete rows or change the schema.
func TestRunsWithoutSuperuser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	suffix := randomSuffix(t)
	owner, runtime, dbName := "sweeper_owner_"+suffix, "sweeper_app_"+suffix, "sweeper_roles_"+suffix
	password := "pw-" + suffix
	exec := func(conn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	// What a DBA runs once (docs/RELIABILITY.md, "Database roles").
	for _, sql := range []string{
		"CREATE ROLE " + owner + " LOGIN PASSWORD '" + password + "' NOSUPERUSER NOCREATEDB NOCREATEROLE",
		"CREATE ROLE " + runtime + " LOGIN PASSWORD '" + password + "' NOSUPERUSER NOCREATEDB NOCREATEROLE",
		"CREATE DATABASE " + dbName + " OWNER " + owner,
		"REVOKE ALL ON DATABASE " + dbName + " FROM PUBLIC",
		"GRANT CONNECT, TEMPORARY ON DATABASE " + dbName + " TO " + runtime,
	} {
		exec(admin, sql)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+runtime)
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+owner)
	})
	ownerURL, runtimeURL := roleURL(t, owner, password, dbName), roleURL(t, runtime, password, dbName)

	// The owner migrates (as `sweeper migrate` does) and grants the runtime role its rows.
	pool, err := store.OpenPool(ctx, ownerURL, store.PoolOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	err = migrations.Up(ctx, db)
	_ = db.Close()
	pool.Close()
	if err != nil {
		t.Fatalf("migrations as a non-superuser owner: %v", err)
	}
	ownerConn, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer ownerConn.Close(ctx)
	var super, createRole, createDB bool
	if err := ownerConn.QueryRow(ctx, "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user").Scan(&super, &createRole, &createDB); err != nil || super || createRole || createDB {
		t.Fatalf("owner role is privileged: super=%v createrole=%v createdb=%v %v", super, createRole, createDB, err)
	}
	for _, sql := range runtimeGrants(owner, runtime) {
		exec(ownerConn, sql)
	}

	for _, role := range []struct{ name, url string }{{"Owner", ownerURL}, {"Runtime", runtimeURL}} {
		t.Run(role.name+"SweepsADeposit", func(t *testing.T) {
			s := start(t, sysOpts{dbURL: role.url})
			d := s.deposit("3")
			s.waitFor(d.ID, "succeeded")
			s.stop()
		})
	}

	t.Run("RuntimeCannotDeleteOrAlter", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, runtimeURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, sql := range []string{
			"DELETE FROM sweep_attempts",
			"TRUNCATE sweeps CASCADE",
			"DROP TABLE sweep_attempts",
			"ALTER TABLE sweeps ADD COLUMN x int",
			"CREATE TABLE sneaky (x int)",
			"CREATE ROLE sneaky",
		} {
			_, err := conn.Exec(ctx, sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && !strings.Contains(pgErr.Message, "must be owner")) {
				t.Errorf("%s: %v, want permission denied", sql, err)
			}
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM sweep_ledger WHERE sweep_status = 'succeeded'").Scan(&n); err != nil || n != 2 {
			t.Fatalf("runtime role reads sweep_ledger: %d %v", n, err)
		}
	})
}

// runtimeGrants are the statements docs/RELIABILITY.md gives, run by the owner
// after the migrations. Default privileges cover tables later migrations add.
func runtimeGrants(owner, runtime string) []string {
	return []string{
		"GRANT USAGE ON SCHEMA public TO " + runtime,
		"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO " + runtime,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + runtime,
		"ALTER DEFAULT PRIVILEGES FOR ROLE " + owner + " IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO " + runtime,
		"ALTER DEFAULT PRIVILEGES FOR ROLE " + owner + " IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO " + runtime,
	}
}

func roleURL(t *testing.T, role, password, dbName string) string {
	t.Helper()
	u, err := url.Parse(pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, password)
	u.Path = "/" + dbName
	return u.String()
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
