package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireBinaries skips only when this machine has no PostgreSQL binaries at
// all (e.g. a Docker-only CI); the fallback cannot be exercised there.
func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := findBinDir(); err != nil {
		t.Skipf("local cluster fallback not testable here: %v", err)
	}
}

// The fallback used when neither a URL nor Docker is there, exercised
// regardless of SWEEPER_TEST_DATABASE_URL.
func TestLocalClusterFallback(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s := &server{}
	start := time.Now()
	adminURL, err := s.startServer(ctx, func(context.Context) error { return errors.New("no docker in this test") })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("throwaway cluster ready in %s", time.Since(start))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.shutdown(context.Background())
		}
	})

	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	var dataDir, fsync string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory'), current_setting('fsync')").Scan(&dataDir, &fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" {
		t.Errorf("fsync = %s, want off", fsync)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE probe"); err != nil {
		t.Errorf("admin URL cannot create databases: %v", err)
	}
	_ = conn.Close(ctx)

	pid := postmasterPID(t, dataDir)
	if uid := processUID(t, pid); os.Geteuid() == 0 && uid == 0 {
		t.Errorf("postmaster %d runs as root", pid)
	} else {
		t.Logf("postmaster %d runs as uid %d", pid, uid)
	}

	if err := s.shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	stopped = true
	if _, err := os.Stat(filepath.Dir(dataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s not removed: %v", filepath.Dir(dataDir), err)
	}
	if processAlive(pid) {
		t.Errorf("postmaster %d still running after shutdown", pid)
	}
}

// TestHelperCluster is not a test: TestClusterDiesWithTestBinary runs it in a
// child process, which starts a cluster, reports it and waits to be killed.
func TestHelperCluster(t *testing.T) {
	if os.Getenv("PGTEST_HELPER_CLUSTER") != "1" {
		return
	}
	c, err := startCluster(context.Background())
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("cluster %s %d\n", c.Dir(), c.PID())
	time.Sleep(time.Minute)
	os.Exit(1)
}

// A test binary killed by go test's timeout never reaches Main's cleanup; its
// cluster must stop anyway instead of lingering.
func TestClusterDiesWithTestBinary(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCluster$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PGTEST_HELPER_CLUSTER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper said nothing: %v", err)
	}
	var dir string
	var pid int
	if _, err := fmt.Sscanf(line, "cluster %s %d", &dir, &pid); err != nil {
		t.Fatalf("helper: %q", line)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) }) // the binary cannot, by design
	if !processAlive(pid) {
		t.Fatalf("postmaster %d not running while its binary lives", pid)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postmaster %d outlived its killed test binary", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

func processUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid, err := strconv.Atoi(strings.Fields(rest)[1]) // effective
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return -1
}

// processAlive treats a zombie as dead: it has exited and only awaits reaping
// by a parent that may itself be gone.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(after, "Z")
}
