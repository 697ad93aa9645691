package pgcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestRemoveStaleClusters(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	tests := []struct {
		name     string
		age      time.Time
		pidFile  bool
		wantKept bool
	}{
		{clusterDirPrefix + "dead", old, false, false},
		{clusterDirPrefix + "running", old, true, true},
		{clusterDirPrefix + "initdb-in-progress", now, false, true},
		{"someone-elses", old, false, true},
	}
	for _, tc := range tests {
		dir := filepath.Join(base, tc.name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if tc.pidFile {
			if err := os.WriteFile(filepath.Join(dir, "data", "postmaster.pid"), []byte("1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, tc.age, tc.age); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleClusters(base, now)
	for _, tc := range tests {
		_, err := os.Stat(filepath.Join(base, tc.name))
		if kept := err == nil; kept != tc.wantKept {
			t.Errorf("%s: kept = %v, want %v", tc.name, kept, tc.wantKept)
		}
	}
}

func TestSortByVersionDesc(t *testing.T) {
	t.Parallel()
	dirs := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/weird/bin",
		"/usr/lib/postgresql/10/bin",
	}
	sortByVersionDesc(dirs)
	want := []string{
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/weird/bin",
	}
	if strings.Join(dirs, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", dirs, want)
	}
}

// The chaos harness crashes its server mid-run and counts on two things: the
// same URL works again afterwards, and nothing acknowledged as committed is
// gone (which needs synchronous_commit=on; the default is off, for speed).
func TestRestartKeepsURLAndCommittedData(t *testing.T) {
	t.Parallel()
	if err := Available(); err != nil {
		t.Skipf("no PostgreSQL binaries here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Settings: []string{"synchronous_commit=on"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := c.Dir()
	t.Cleanup(func() { _ = c.Stop(context.Background()) })

	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	before := c.PID()
	for _, crash := range []bool{true, false} {
		if err := c.Restart(ctx, crash); err != nil {
			t.Fatalf("restart (crash=%v): %v", crash, err)
		}
		if c.PID() == before {
			t.Fatal("postmaster pid unchanged: not restarted")
		}
		conn, err := pgx.Connect(ctx, c.AdminURL())
		if err != nil {
			t.Fatalf("same URL after restart: %v", err)
		}
		var v int
		var sync string
		err = conn.QueryRow(ctx, "SELECT v, current_setting('synchronous_commit') FROM kept").Scan(&v, &sync)
		_ = conn.Close(ctx)
		if err != nil || v != 42 || sync != "on" {
			t.Fatalf("after restart: v=%d synchronous_commit=%s err=%v", v, sync, err)
		}
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s left behind: %v", dir, err)
	}
}
