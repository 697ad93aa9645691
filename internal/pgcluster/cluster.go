// Package pgcluster runs a throwaway PostgreSQL cluster from the local initdb and
// postgres binaries: on a free port of 127.0.0.1, in a temporary directory,
// as an unprivileged user when the caller is root, and stopped with its parent.
// pgtest uses it when no server is configured; the chaos harness uses it to
// have a server of its own that it may restart mid-run.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// clusterDirPrefix names the temporary directories of throwaway clusters, so
// that leftovers of killed processes can be found and removed.
const clusterDirPrefix = "pgtest-cluster-"

// errPortTaken means another process bound the port between our probe and
// postgres' bind; the start is retried on another port.
var errPortTaken = errors.New("port already in use")

// Options tune a cluster. The zero value is what tests want.
type Options struct {
	// Settings are extra `-c name=value` server settings, applied after (and so
	// overriding) the defaults, e.g. "synchronous_commit=on" for a cluster that
	// is crashed on purpose and must keep every acknowledged commit.
	Settings []string
}

// Cluster is a throwaway PostgreSQL cluster owned by this process.
//
// The postmaster is run in the foreground as our child rather than daemonised
// with pg_ctl: with a parent-death signal it shuts down even when its parent is
// killed (go test -timeout, ^C) before any cleanup runs, instead of lingering
// on the machine.
type Cluster struct {
	dir   string // owns data/, sock/ and postgres.log; removed by Stop
	port  int
	bin   string
	runAs *osUser
	opts  Options

	mu     sync.Mutex // guards proc and exited across Restart
	proc   *os.Process
	exited chan struct{} // closed once the postmaster has been reaped
}

// osUser is the unprivileged account initdb and postgres run as when the
// caller is root (both refuse to run as root).
type osUser struct {
	name     string
	uid, gid uint32
}

// AdminURL is the URL of the "postgres" database as the superuser postgres.
func (c *Cluster) AdminURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Dir is the cluster's directory (data/ holds the data directory).
func (c *Cluster) Dir() string { return c.dir }

// PID is the postmaster's process id.
func (c *Cluster) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc.Pid
}

// Available reports whether initdb and postgres binaries can be found here.
func Available() error {
	_, err := BinDir()
	return err
}

// Start creates a cluster in a temporary directory and starts it on a free
// port of 127.0.0.1.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	runAs, err := unprivilegedUser()
	if err != nil {
		return nil, err
	}
	base := tempBase(runAs != nil)
	removeStaleClusters(base, time.Now())

	dir, err := os.MkdirTemp(base, clusterDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("creating cluster directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	sock := filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return nil, fmt.Errorf("creating socket directory: %w", err)
	}
	if runAs != nil {
		for _, d := range []string{dir, sock} {
			if err := os.Chown(d, int(runAs.uid), int(runAs.gid)); err != nil {
				return nil, fmt.Errorf("handing %s to user %s: %w", d, runAs.name, err)
			}
		}
	}

	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir // initdb cannot work from a cwd the unprivileged user cannot read
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: runAs.credential()}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", initdb, err, out)
	}

	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c := &Cluster{dir: dir, port: port, bin: bin, runAs: runAs, opts: opts}
		err = c.launch(ctx)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 2 {
			return nil, err
		}
	}
}

// launch starts the postmaster and waits until it accepts connections.
func (c *Cluster) launch(ctx context.Context) error {
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening server log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor

	args := []string{
		"-D", filepath.Join(c.dir, "data"),
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + filepath.Join(c.dir, "sock"),
		// Durability is worthless for a cluster deleted at the end of the run
		// and costs most of the time of CREATE DATABASE and commits.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "autovacuum=off",
		// Parallel tests each hold a pool; the default 100 is tight.
		"-c", "max_connections=300",
	}
	for _, s := range c.opts.Settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
	cmd.Dir = c.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.runAs.credential(),
		// SIGINT is PostgreSQL's fast shutdown.
		Pdeathsig: syscall.SIGINT,
		// Out of the terminal's process group: the owner decides when the
		// server stops, not a ^C that reaches both at once.
		Setpgid: true,
	}

	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the *thread* that forked the
		// child exits, not the process. Pinning this goroutine to its thread
		// until the postmaster is reaped keeps the Go runtime from retiring
		// that thread while the server should still run.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c.mu.Lock()
	c.proc, c.exited = cmd.Process, exited
	c.mu.Unlock()

	if err := c.waitReady(ctx, logPath); err != nil {
		_ = c.halt(syscall.SIGINT, 10*time.Second)
		return err
	}
	return nil
}

// waitReady polls until the server accepts connections, the postmaster dies
// or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			if bytes.Contains(log, []byte("Address already in use")) {
				return fmt.Errorf("postgres on port %d: %w", c.port, errPortTaken)
			}
			return fmt.Errorf("postgres exited during startup:\n%s", log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections: %w\n%s", ctx.Err(), log)
		case <-time.After(50 * time.Millisecond):
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(attempt, c.AdminURL())
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
	}
}

// Restart stops the server and starts it again on the same port and data. With
// crash set it is an immediate shutdown (SIGQUIT: no checkpoint, every backend
// killed, crash recovery at the next start), as close to a database crash as
// one can get without losing the machine; otherwise a fast shutdown.
func (c *Cluster) Restart(ctx context.Context, crash bool) error {
	sig := syscall.SIGINT
	if crash {
		sig = syscall.SIGQUIT
	}
	if err := c.halt(sig, 15*time.Second); err != nil {
		return err
	}
	var err error
	// The port was ours a moment ago; a client's ephemeral port may sit on it
	// briefly, so retry the same port (the admin URL must not change).
	for attempt := 0; attempt < 5; attempt++ {
		if err = c.launch(ctx); err == nil || !errors.Is(err, errPortTaken) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// Stop shuts the server down and deletes its directory.
func (c *Cluster) Stop(context.Context) error {
	return errors.Join(c.halt(syscall.SIGINT, 15*time.Second), os.RemoveAll(c.dir))
}

// halt sends sig (SIGINT: fast shutdown, SIGQUIT: immediate) and kills the
// postmaster if it has not exited within grace.
func (c *Cluster) halt(sig syscall.Signal, grace time.Duration) error {
	c.mu.Lock()
	proc, exited := c.proc, c.exited
	c.mu.Unlock()
	if err := proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling postgres: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
	}
	_ = proc.Kill()
	<-exited
	return fmt.Errorf("postgres did not stop within %s and was killed", grace)
}

// credential is nil (run as ourselves) unless we run as root.
func (u *osUser) credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	// Groups left empty drops root's supplementary groups too.
	return &syscall.Credential{Uid: u.uid, Gid: u.gid}
}

// unprivilegedUser picks the account to run initdb and postgres as: nil when
// not root, else the postgres system user, else nobody.
func unprivilegedUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("uid of %s: %w", name, err)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("gid of %s: %w", name, err)
		}
		return &osUser{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root, and no unprivileged user to run postgres as: %w", errors.Join(errs...))
}

// BinDir returns the directory holding initdb and postgres: the one of the
// initdb in PATH, else the highest version under /usr/lib/postgresql.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		// initdb is often a symlink into the versioned directory, and the
		// postgres binary must be of the same version as initdb.
		candidates := []string{filepath.Dir(p)}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append([]string{filepath.Dir(real)}, candidates...)
		}
		for _, dir := range candidates {
			if isExecutable(filepath.Join(dir, "postgres")) {
				return dir, nil
			}
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	dirs := make([]string, 0, len(found))
	for _, p := range found {
		dirs = append(dirs, filepath.Dir(p))
	}
	sortByVersionDesc(dirs)
	for _, dir := range dirs {
		if isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", errors.New("initdb and postgres not found in PATH or /usr/lib/postgresql/*/bin")
}

// sortByVersionDesc orders .../postgresql/<version>/bin directories newest
// first, comparing versions numerically so that 16 beats 9.6.
func sortByVersionDesc(dirs []string) {
	version := func(dir string) float64 {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err != nil {
			return -1
		}
		return v
	}
	sort.SliceStable(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// tempBase is where cluster directories go. An unprivileged server must be
// able to reach its directory, which a root-only TMPDIR (e.g. under /root)
// would prevent; /tmp is world-traversable by convention.
func tempBase(dropsPrivileges bool) string {
	base := os.TempDir()
	if !dropsPrivileges {
		return base
	}
	for d := base; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return base
		}
	}
}

// removeStaleClusters deletes cluster directories left by killed test
// binaries. A directory still holding postmaster.pid belongs to a running
// server; one without it that is an hour old is past initdb and unused.
func removeStaleClusters(base string, now time.Time) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), clusterDirPrefix) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < time.Hour {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// freePort asks the kernel for a currently unused port. Another process may
// take it before postgres binds; launch's caller retries in that case.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
