package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sweeperhq/sweeper/migrations"
)

func TestTemplateName(t *testing.T) {
	t.Parallel()
	base := fstest.MapFS{
		"00001_a.sql": {Data: []byte("CREATE TABLE a ();")},
		"00002_b.sql": {Data: []byte("CREATE TABLE b ();")},
	}
	name := func(fsys fstest.MapFS) string {
		t.Helper()
		n, err := templateName(fsys)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ref := name(base)
	if !strings.HasPrefix(ref, templatePrefix) || len(ref) > 63 {
		t.Fatalf("bad template name %q", ref)
	}
	if again := name(base); again != ref {
		t.Errorf("same migrations, different names: %s, %s", ref, again)
	}
	tests := map[string]fstest.MapFS{
		"changed body": {
			"00001_a.sql": {Data: []byte("CREATE TABLE a ();")},
			"00002_b.sql": {Data: []byte("CREATE TABLE b (x int);")},
		},
		"renamed file": {
			"00001_a.sql": {Data: []byte("CREATE TABLE a ();")},
			"00003_b.sql": {Data: []byte("CREATE TABLE b ();")},
		},
		"added file": {
			"00001_a.sql": {Data: []byte("CREATE TABLE a ();")},
			"00002_b.sql": {Data: []byte("CREATE TABLE b ();")},
			"00003_c.sql": {Data: []byte("")},
		},
		"bytes moved between name and body": {
			"00001_a.sql":  {Data: []byte("CREATE TABLE a ();")},
			"00002_b.sqlC": {Data: []byte("REATE TABLE b ();")},
		},
	}
	for what, fsys := range tests {
		if got := name(fsys); got == ref {
			t.Errorf("%s: template name unchanged (%s)", what, got)
		}
	}
}

// Parallel test binaries share one server: the template must be migrated
// exactly once, and everyone must see it complete.
func TestEnsureTemplateConcurrent(t *testing.T) {
	t.Parallel()
	s := shared.get(t)
	name := uniqueTemplate(t, s)

	var runs atomic.Int32
	up := func(ctx context.Context, db *sql.DB) error {
		runs.Add(1)
		time.Sleep(200 * time.Millisecond) // widen the race window
		return migrations.Up(ctx, db)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = ensureTemplate(ctx, s.adminURL, name, up) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("migrations ran %d times, want 1", n)
	}
	copyHasDeposits(t, s, name)
}

// A binary that dies mid-migration leaves a template without the completion
// mark; the next one must rebuild it, not copy a half schema.
func TestEnsureTemplateRebuildsIncomplete(t *testing.T) {
	t.Parallel()
	s := shared.get(t)
	name := uniqueTemplate(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	crashed := errors.New("killed mid-migration")
	err := ensureTemplate(ctx, s.adminURL, name, func(ctx context.Context, db *sql.DB) error {
		if _, err := db.ExecContext(ctx, "CREATE TABLE half_done (x int)"); err != nil {
			return err
		}
		return crashed
	})
	if !errors.Is(err, crashed) {
		t.Fatalf("err = %v, want %v", err, crashed)
	}

	var runs int
	err = ensureTemplate(ctx, s.adminURL, name, func(ctx context.Context, db *sql.DB) error {
		runs++
		return migrations.Up(ctx, db)
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Fatalf("incomplete template reused without migrating (runs = %d)", runs)
	}
	conn := copyHasDeposits(t, s, name)
	var half *string
	if err := conn.QueryRow(ctx, "SELECT to_regclass('public.half_done')::text").Scan(&half); err != nil {
		t.Fatal(err)
	}
	if half != nil {
		t.Error("rebuilt template still holds the half-migrated table")
	}
}

// uniqueTemplate returns a template name no other test uses, dropped at the
// end of the test.
func uniqueTemplate(t *testing.T, s *server) string {
	t.Helper()
	n, err := newDatabaseName(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	name := templatePrefix + "test_" + strings.TrimPrefix(n, dbPrefix)
	t.Cleanup(func() { _ = dropDatabase(context.Background(), s.admin, name) })
	return name
}

// copyHasDeposits copies the template as NewMigratedDatabase would and
// checks the copy carries the schema.
func copyHasDeposits(t *testing.T, s *server, tmpl string) *pgx.Conn {
	t.Helper()
	conn := connect(t, s.newDatabase(t, tmpl))
	var reg *string
	if err := conn.QueryRow(context.Background(), "SELECT to_regclass('public.deposits')::text").Scan(&reg); err != nil {
		t.Fatal(err)
	}
	if reg == nil {
		t.Fatalf("copy of %s has no deposits table", tmpl)
	}
	return conn
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/db1?sslmode=disable"},
		{"postgresql://u:p%40ss@h/postgres", "postgresql://u:p%40ss@h/db1"},
		{"postgres://h:5432", "postgres://h:5432/db1"},
		{"host=h user=postgres dbname=postgres", "host=h user=postgres dbname=postgres dbname='db1'"},
	}
	for _, tc := range tests {
		got, err := withDatabase(tc.in, "db1")
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil {
			t.Errorf("%q does not parse: %v", got, err)
		} else if cfg.Database != "db1" {
			t.Errorf("%q connects to %q", got, cfg.Database)
		}
	}
}

func TestDatabaseNames(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_700_000_000, 0)
	a, err := newDatabaseName(at)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newDatabaseName(at)
	if a == b {
		t.Errorf("two names in the same second collide: %s", a)
	}
	if len(a) > 63 {
		t.Errorf("%s exceeds PostgreSQL's 63-byte identifiers", a)
	}
	if got, ok := createdAt(a); !ok || !got.Equal(at) {
		t.Errorf("createdAt(%s) = %v, %v; want %v", a, got, ok, at)
	}
	for _, foreign := range []string{"postgres", templatePrefix + "abc", dbPrefix + "x_y", dbPrefix + "123"} {
		if _, ok := createdAt(foreign); ok {
			t.Errorf("createdAt accepted %q, which pgtest did not name", foreign)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"postgres://u:secret@h/db",
		"host=h password=secret",
	} {
		if got := redact(in); strings.Contains(got, "secret") {
			t.Errorf("redact(%q) = %q", in, got)
		}
	}
}
