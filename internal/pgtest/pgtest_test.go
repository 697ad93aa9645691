package pgtest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

func TestMain(m *testing.M) { Main(m) }

// connect opens a plain connection to dbURL, closed when the test ends.
func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(dbURL), err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func queryInt(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// databaseExists asks the server directly, not through pgtest.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	admin := connect(t, AdminURL(t))
	return queryInt(t, admin, "SELECT count(*) FROM pg_database WHERE datname = $1", name) == 1
}

func TestAdminURLIsAdminCapable(t *testing.T) {
	t.Parallel()
	conn := connect(t, AdminURL(t))
	if got := queryString(t, conn, "SELECT current_database()"); got != "postgres" {
		t.Errorf("admin database = %q, want postgres", got)
	}
	var canCreate bool
	if err := conn.QueryRow(context.Background(),
		"SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user").Scan(&canCreate); err != nil {
		t.Fatal(err)
	}
	if !canCreate {
		t.Error("admin role can neither create databases nor is superuser")
	}
}

func TestNewDatabaseDistinctEmptyUsable(t *testing.T) {
	t.Parallel()
	a, b := connect(t, NewDatabase(t)), connect(t, NewDatabase(t))
	ctx := context.Background()

	nameA := queryString(t, a, "SELECT current_database()")
	nameB := queryString(t, b, "SELECT current_database()")
	if nameA == nameB {
		t.Fatalf("both databases are %q", nameA)
	}
	for _, conn := range []*pgx.Conn{a, b} {
		if n := queryInt(t, conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"); n != 0 {
			t.Errorf("fresh database has %d relations in public", n)
		}
	}

	if _, err := a.Exec(ctx, "CREATE TABLE t (v numeric); INSERT INTO t VALUES (1.5)"); err != nil {
		t.Fatalf("database not usable: %v", err)
	}
	if got := queryString(t, a, "SELECT v::text FROM t"); got != "1.5" {
		t.Errorf("read back %q, want 1.5", got)
	}
	if got := queryString(t, b, "SELECT coalesce(to_regclass('public.t')::text, 'absent')"); got != "absent" {
		t.Errorf("table created in %s is visible in %s", nameA, nameB)
	}
}

func TestNewDatabaseDroppedOnCleanup(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("user", func(t *testing.T) {
		// A connection left open must not prevent the drop.
		name = queryString(t, connect(t, NewDatabase(t)), "SELECT current_database()")
		if !databaseExists(t, name) {
			t.Fatalf("database %s does not exist during the test", name)
		}
	})
	if databaseExists(t, name) {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestNewMigratedDatabase(t *testing.T) {
	t.Parallel()
	conn := connect(t, NewMigratedDatabase(t))
	for _, table := range []string{"public.deposits", "public.goose_db_version"} {
		if got := queryString(t, conn, "SELECT coalesce(to_regclass($1)::text, '')", table); got == "" {
			t.Errorf("table %s missing", table)
		}
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied"); n == 0 {
		t.Error("no migration recorded as applied")
	}
	db := queryString(t, conn, "SELECT current_database()")
	if strings.HasPrefix(db, templatePrefix) {
		t.Errorf("handed out the template %s itself", db)
	}
}

// Parallel tests must each get their own database, even with identical
// schemas and identical data.
func TestParallelDatabasesDoNotCollide(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]string{}
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			conn := connect(t, NewMigratedDatabase(t))
			name := queryString(t, conn, "SELECT current_database()")
			mu.Lock()
			if other, dup := seen[name]; dup {
				t.Errorf("subtests %s and %s share database %s", other, t.Name(), name)
			}
			seen[name] = t.Name()
			mu.Unlock()

			ctx := context.Background()
			if _, err := conn.Exec(ctx, "CREATE TABLE marker (who text PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "INSERT INTO marker VALUES ($1)", t.Name()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // let the others write too
			if n := queryInt(t, conn, "SELECT count(*) FROM marker"); n != 1 {
				t.Errorf("marker has %d rows, want only this subtest's", n)
			}
		})
	}
}

func TestNewPool(t *testing.T) {
	t.Parallel()
	pool := NewPool(t)
	ctx := context.Background()

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, v := range []any{decimal.Decimal{}, decimal.NullDecimal{}} {
		if _, ok := conn.Conn().TypeMap().TypeForValue(v); !ok {
			t.Errorf("%T not registered on pool connections", v)
		}
	}

	// Beyond float64 precision: survives only as a real decimal.
	want := decimal.RequireFromString("123456789012345678901234.000000000000000001")
	var got decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT $1::numeric", want).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Errorf("numeric round trip = %s, want %s", got, want)
	}
	var regclass *string
	if err := conn.QueryRow(ctx, "SELECT to_regclass('public.deposits')::text").Scan(&regclass); err != nil || regclass == nil {
		t.Errorf("pool database is not migrated (err %v)", err)
	}
}

func TestNewPoolClosedBeforeDrop(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("user", func(t *testing.T) {
		pool := NewPool(t)
		if err := pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	if databaseExists(t, name) {
		t.Errorf("database %s of a pool test still exists", name)
	}
}

// recorder is a testing.TB whose Fatal ends only the goroutine, as the real
// one does, and remembers the message.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func TestRefusesWithoutMain(t *testing.T) {
	t.Parallel()
	s := &server{} // Main was never called for this one
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.get(r)
		t.Error("get returned without Main")
	}()
	<-done
	if !strings.Contains(r.msg, "pgtest.Main") {
		t.Errorf("failure %q does not say how to fix it", r.msg)
	}
	if s.admin != nil {
		t.Error("a server was started without Main")
	}
}

func TestNoServerMessageNamesAllOptions(t *testing.T) {
	t.Parallel()
	err := noServerError(errors.New("docker: no socket"), errors.New("initdb not found"))
	for _, want := range []string{EnvDatabaseURL, "Docker", "initdb", "docker: no socket", "initdb not found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%s", want, err)
		}
	}
}

func TestDockerProbeIsQuick(t *testing.T) {
	t.Parallel()
	start := time.Now()
	err := dockerAvailable(context.Background())
	elapsed := time.Since(start)
	t.Logf("docker probe: %v after %s", err, elapsed)
	if elapsed > dockerProbeTimeout+time.Second {
		t.Errorf("docker probe took %s, want at most about %s", elapsed, dockerProbeTimeout)
	}
}

func TestDropStale(t *testing.T) {
	t.Parallel()
	s := shared.get(t)
	ctx := context.Background()
	old, err := newDatabaseName(time.Now().Add(-staleAfter - time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := newDatabaseName(time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{old, fresh} {
		if err := createDatabase(ctx, s.admin, name, "template0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dropDatabase(context.Background(), s.admin, name) })
	}
	dropStale(ctx, s.admin)
	if databaseExists(t, old) {
		t.Errorf("stale database %s survived", old)
	}
	if !databaseExists(t, fresh) {
		t.Errorf("recent database %s was dropped", fresh)
	}
}
