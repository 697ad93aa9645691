package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/app"
	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// appOptions choose what the app under test runs and where it points.
type appOptions struct {
	dbURL        string
	interlaceURL string // "" when nothing calls upstream (ingest only)
	http, worker bool
}

// appUnderTest is one running sweeper: a child `sweeper serve` process, or
// (Env.Exe == "") app.New/Run in this process.
type appUnderTest struct {
	addr    string // host:port of the HTTP server; "" when HTTP is off
	started time.Time

	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	exitErr error

	cancel  context.CancelFunc
	runDone chan error
}

func (o appOptions) vars(env *Env, addr string) map[string]string {
	up := o.interlaceURL
	if up == "" {
		up = "http://127.0.0.1:9" // discard port: nothing in an ingest-only run calls it
	}
	v := map[string]string{
		"DATABASE_URL":               o.dbURL,
		"SWEEPER_HTTP_ADDR":          addr,
		"INTERLACE_BASE_URL":         up,
		"INTERLACE_ACCESS_TOKEN":     benchToken,
		"INTERLACE_ACCOUNT_ID":       sandbox.DefaultAccountID,
		"INTERLACE_WEBHOOK_SECRET":   benchSecret,
		"SWEEPER_INFINITY_WALLET_ID": sandbox.DefaultInfinityWalletID,
		"SWEEPER_SHUTDOWN_TIMEOUT":   "10s",
		// The backfill poll is a background job every 5 minutes, not what is
		// measured; left on, it would also find (and sweep) the sandbox's funding
		// deposit. Confirmation stays at its default (on) and is measured.
		"SWEEPER_POLL_INTERVAL": "0",
	}
	for k, val := range env.AppEnv {
		v[k] = val
	}
	return v
}

// freeAddr picks a loopback port for a child to listen on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func startApp(ctx context.Context, env *Env, o appOptions) (*appUnderTest, error) {
	if env.Exe == "" {
		return startInProcess(ctx, env, o)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	vars := o.vars(env, addr)
	logf, err := os.CreateTemp("", "sweeper-bench-app-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(env.Exe, "serve", "-http="+strconv.FormatBool(o.http), "-worker="+strconv.FormatBool(o.worker))
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); vars[k] == "" && !strings.HasSuffix(k, "_FILE") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	a := &appUnderTest{cmd: cmd, logPath: logf.Name(), exited: make(chan struct{})}
	if o.http {
		a.addr = addr
	}
	a.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start %s serve: %w", env.Exe, err)
	}
	go func() {
		a.exitErr = cmd.Wait()
		logf.Close()
		close(a.exited)
	}()
	return a, nil
}

func startInProcess(ctx context.Context, env *Env, o appOptions) (*appUnderTest, error) {
	a := &appUnderTest{started: time.Now()}
	var ln net.Listener
	if o.http {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		a.addr = ln.Addr().String()
	}
	vars := o.vars(env, "127.0.0.1:0")
	cfg, err := config.Load(func(k string) string { return vars[k] }, config.Need{Database: true, Interlace: true})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ap, err := app.New(runCtx, cfg, zap.NewNop(), app.Options{HTTP: o.http, Worker: o.worker, Listener: ln})
	if err != nil {
		cancel()
		return nil, err
	}
	a.cancel = cancel
	a.runDone = make(chan error, 1)
	go func() { a.runDone <- ap.Run(runCtx) }()
	return a, nil
}

// waitReady polls /readyz until it answers 200 and returns the time since start.
func (a *appUnderTest) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	if a.addr == "" {
		return 0, errors.New("bench: readiness needs the HTTP server")
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + a.addr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(a.started), nil
			}
		}
		if a.exited != nil {
			select {
			case <-a.exited:
				return 0, fmt.Errorf("bench: app exited before ready (%v); log: %s", a.exitErr, a.tail())
			default:
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: app not ready after %s (last error %v); log: %s", timeout, err, a.tail())
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// batchMean scrapes the app's /metrics for the mean ingest batch size (0 if unknown).
func (a *appUnderTest) batchMean() float64 {
	if a.addr == "" {
		return 0
	}
	resp, err := http.Get("http://" + a.addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum, count float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "sweeper_ingest_batch_size_sum":
			sum, _ = strconv.ParseFloat(val, 64)
		case "sweeper_ingest_batch_size_count":
			count, _ = strconv.ParseFloat(val, 64)
		}
	}
	if count == 0 {
		return 0
	}
	return sum / count
}

// memory returns the resident set now and its peak (VmRSS, VmHWM) in bytes.
func (a *appUnderTest) memory() (rss, peak uint64) {
	pid := "self"
	if a.cmd != nil && a.cmd.Process != nil {
		pid = strconv.Itoa(a.cmd.Process.Pid)
	}
	return procStatus(pid)
}

// cpu returns the user+system CPU time the app has used so far.
func (a *appUnderTest) cpu() time.Duration {
	pid := "self"
	if a.cmd != nil && a.cmd.Process != nil {
		pid = strconv.Itoa(a.cmd.Process.Pid)
	}
	return procCPU(pid)
}

// stop sends SIGTERM (cancels Run in-process) and waits for a clean exit.
func (a *appUnderTest) stop() error {
	if a.cmd == nil {
		a.cancel()
		select {
		case err := <-a.runDone:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("bench: in-process app did not stop")
		}
	}
	select {
	case <-a.exited:
	default:
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(30 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.exited
			return fmt.Errorf("bench: app ignored SIGTERM for 30s; log: %s", a.tail())
		}
	}
	if a.exitErr != nil {
		return fmt.Errorf("bench: app exited: %w; log: %s", a.exitErr, a.tail())
	}
	_ = os.Remove(a.logPath)
	return nil
}

// tail is the end of the child's log, for error messages.
func (a *appUnderTest) tail() string {
	if a.logPath == "" {
		return "(in-process)"
	}
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return a.logPath
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return a.logPath + "\n" + string(b)
}

// procStatus reads VmRSS and VmHWM of /proc/<pid>/status (0 where unavailable).
func procStatus(pid string) (rss, peak uint64) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch k {
		case "VmRSS":
			dst = &rss
		case "VmHWM":
			dst = &peak
		default:
			continue
		}
		if kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			*dst = kb << 10
		}
	}
	return rss, peak
}

// clockTick is USER_HZ, 100 on every Linux the bench targets.
const clockTick = 10 * time.Millisecond

// procCPU reads utime+stime of /proc/<pid>/stat.
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is parenthesised and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// machineCPU reads the busy and total time of all CPUs from /proc/stat.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle uint64
	for i, s := range f[1:] {
		n, _ := strconv.ParseUint(s, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * clockTick, time.Duration(sum) * clockTick
}
