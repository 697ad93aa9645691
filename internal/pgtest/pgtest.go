// Package pgtest gives every test that touches storage a real, fresh
// PostgreSQL database. There is deliberately no mock: the store's behaviour
// (idempotency keys, row locks, numeric precision) is PostgreSQL's behaviour.
//
// A package that uses pgtest must route its tests through Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The server is found once per test binary, in this order:
//
//  1. SWEEPER_TEST_DATABASE_URL, an admin-capable URL such as
//     postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable;
//  2. a postgres:16-alpine container via testcontainers-go, if a Docker
//     engine answers within two seconds;
//  3. a throwaway cluster built with the local initdb and postgres binaries
//     (PATH, then /usr/lib/postgresql/*/bin), on a free port of 127.0.0.1.
//
// If none is available every test asking for a database fails (never skips):
// a storage test that silently does not run is worse than a red build.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvDatabaseURL names the variable that points pgtest at an existing server.
const EnvDatabaseURL = "SWEEPER_TEST_DATABASE_URL"

// dbPrefix marks every per-test database so that leftovers of a killed test
// binary can be recognised (and dropped) by later runs; templatePrefix must
// not share it, because templates are meant to outlive a run.
const (
	dbPrefix       = "pgtest_db_"
	templatePrefix = "pgtest_tmpl_"
	// staleAfter is far beyond any sane `go test -timeout`, so a database this
	// old belongs to a binary that died before its cleanup ran.
	staleAfter = 6 * time.Hour
)

// server is everything pgtest knows about the PostgreSQL server of this test
// binary. Fields are written once inside the sync.Once functions and then
// only read, so tests never see them change.
type server struct {
	mainCalled atomic.Bool

	once     sync.Once
	adminURL string
	admin    *pgxpool.Pool
	err      error

	tmplOnce sync.Once
	tmplName string
	tmplErr  error

	mu    sync.Mutex
	stops []func(context.Context) error // undone by shutdown, last first
}

// shared is the one server of this test binary. A package-level instance is
// deliberate: go test runs each package as one process, starting a server (or
// a container, or migrating a template) per test would cost seconds each, and
// only Main — which owns the process lifetime — can tear it down after
// m.Run(). It is created lazily so binaries that never ask for a database
// never start one.
var shared = &server{}

// Main runs the tests of the package and then stops whatever server pgtest
// started for them, before exiting with the tests' status. Call it from
// TestMain; pgtest refuses to work without it because a cluster or container
// started without Main would outlive the test binary.
func Main(m *testing.M) {
	shared.mainCalled.Store(true)
	code := m.Run()
	if err := shared.shutdown(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: shutting down the test server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// AdminURL returns the URL of the test server's "postgres" database, with
// rights to create and drop databases.
func AdminURL(t testing.TB) string {
	t.Helper()
	s := shared.get(t)
	return s.adminURL
}

// NewDatabase creates an empty database with a unique name, returns its URL
// and drops it (forcibly, even if connections are left open) when the test
// ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return shared.get(t).newDatabase(t, "template0")
}

// NewMigratedDatabase is NewDatabase with every migration applied. The
// migrations run once per migration set into a template database; each call
// only copies that template, which is what makes it cheap enough to call in
// every test.
func NewMigratedDatabase(t testing.TB) string {
	t.Helper()
	s := shared.get(t)
	tmpl, err := s.template()
	if err != nil {
		t.Fatalf("pgtest: preparing the migrated template database: %v", err)
	}
	return s.newDatabase(t, tmpl)
}

// NewPool returns a pool on a fresh migrated database (see
// NewMigratedDatabase), closed when the test ends. Every connection knows
// shopspring decimals, as the production pool does.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := NewMigratedDatabase(t)
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("pgtest: parsing database URL: %v", err)
	}
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgxdecimal.Register(conn.TypeMap())
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: opening pool: %v", err)
	}
	// Registered after NewMigratedDatabase's drop, so it runs first: the pool
	// is closed before its database is dropped.
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pgtest: pinging new pool: %v", err)
	}
	return pool
}

// get returns the server, finding or starting it on first use, or fails the
// test with the reason none is available.
func (s *server) get(t testing.TB) *server {
	t.Helper()
	if !s.mainCalled.Load() {
		t.Fatal("pgtest: the package must run its tests through pgtest.Main, so the test server is stopped afterwards; add\n\tfunc TestMain(m *testing.M) { pgtest.Main(m) }")
	}
	s.once.Do(func() { s.err = s.start() })
	if s.err != nil {
		t.Fatalf("pgtest: %v", s.err)
	}
	return s
}

// start discovers the server (see the package comment) and opens the admin
// pool shared by every test of the binary.
func (s *server) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	adminURL, err := s.discover(ctx)
	if err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return fmt.Errorf("parsing admin URL: %w", err)
	}
	// CREATE/DROP DATABASE are short; a few connections serve many parallel
	// tests without crowding the server's connection limit.
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to test server: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("connecting to test server %s: %w", redact(adminURL), err)
	}
	s.adminURL = adminURL
	s.admin = pool
	s.onShutdown(func(context.Context) error { pool.Close(); return nil })
	dropStale(ctx, pool)
	return nil
}

// onShutdown registers undo work for Main; it runs in reverse order, so a
// pool on a server is closed before the server stops.
func (s *server) onShutdown(f func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = append(s.stops, f)
}

func (s *server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		if err := stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newDatabase creates a uniquely named copy of tmpl and drops it when the
// test ends.
func (s *server) newDatabase(t testing.TB, tmpl string) string {
	t.Helper()
	name, err := newDatabaseName(time.Now())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := createDatabase(ctx, s.admin, name, tmpl); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// A failed drop is a leaked database: loud, but not fatal, because
		// the test itself has already decided its outcome.
		if err := dropDatabase(ctx, s.admin, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	dbURL, err := withDatabase(s.adminURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dbURL
}

// newDatabaseName embeds the creation time so that a later run can tell a
// leftover of a killed binary from a database a running test still uses, and
// random bytes so parallel tests and parallel test binaries never collide.
func newDatabaseName(now time.Time) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating database name: %w", err)
	}
	return dbPrefix + strconv.FormatInt(now.Unix(), 10) + "_" + hex.EncodeToString(b[:]), nil
}

// createdAt recovers the time newDatabaseName embedded; ok is false for names
// pgtest did not generate.
func createdAt(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, dbPrefix)
	if !ok {
		return time.Time{}, false
	}
	secs, _, ok := strings.Cut(rest, "_")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

func createDatabase(ctx context.Context, admin *pgxpool.Pool, name, tmpl string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{tmpl}.Sanitize()
	if _, err := admin.Exec(ctx, sql); err != nil {
		return fmt.Errorf("creating database %s from %s: %w", name, tmpl, err)
	}
	return nil
}

func dropDatabase(ctx context.Context, admin *pgxpool.Pool, name string) error {
	// FORCE (PostgreSQL 13+) disconnects whatever the test left open, e.g.
	// a pool it forgot to close, which would otherwise block the drop.
	sql := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
	if _, err := admin.Exec(ctx, sql); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// dropStale removes per-test databases of binaries that were killed before
// their cleanup ran (e.g. by `go test -timeout`). It is best effort: a
// failure here must not fail tests that have nothing to do with it.
func dropStale(ctx context.Context, admin *pgxpool.Pool) {
	rows, err := admin.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", dbPrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		if at, ok := createdAt(name); ok && time.Since(at) > staleAfter {
			_ = dropDatabase(ctx, admin, name)
		}
	}
}

// withDatabase returns rawURL pointing at database name instead. Both URL
// and keyword/value connection strings are accepted, since either is a valid
// SWEEPER_TEST_DATABASE_URL for pgx.
func withDatabase(rawURL, name string) (string, error) {
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		u, err := url.Parse(rawURL)
		if err != nil {
			return "", fmt.Errorf("parsing server URL: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In keyword/value form the last occurrence of a keyword wins.
	return rawURL + " dbname='" + name + "'", nil
}

// redact hides a password in a URL that ends up in a test failure message.
func redact(rawURL string) string {
	if !strings.HasPrefix(rawURL, "postgres://") && !strings.HasPrefix(rawURL, "postgresql://") {
		return "(keyword/value connection string)"
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
