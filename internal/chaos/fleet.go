package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fleet supervises the `sweeper serve` processes: each keeps its port across
// restarts (the balancer knows it), is restarted whenever it exits while the
// fleet runs, and dies with the harness (parent-death signal).
type fleet struct {
	exe  string
	args []string
	env  []string
	dir  string // logs
	// restartDelay picks how long a dead process stays dead.
	restartDelay func() time.Duration

	procs    []*proc
	stopping atomic.Bool
	wg       sync.WaitGroup
	kills    atomic.Int64
	exits    atomic.Int64 // exits nobody asked for (crashes), kills excluded
}

type proc struct {
	index int
	port  int
	log   string

	mu     sync.Mutex
	pid    int
	exited chan struct{} // closed when the current process has been reaped
	killed bool          // the current process was killed by the harness
	starts int
}

func (p *proc) url() string { return "http://127.0.0.1:" + strconv.Itoa(p.port) }

func newFleet(exe string, args, env []string, dir string, n int, restartDelay func() time.Duration) (*fleet, error) {
	f := &fleet{exe: exe, args: args, env: env, dir: dir, restartDelay: restartDelay}
	for i := range n {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		f.procs = append(f.procs, &proc{index: i, port: port, log: filepath.Join(dir, fmt.Sprintf("serve-%d.log", i))})
	}
	return f, nil
}

func (f *fleet) urls() []string {
	out := make([]string, len(f.procs))
	for i, p := range f.procs {
		out[i] = p.url()
	}
	return out
}

// start launches every process and keeps each one running until stop.
func (f *fleet) start() error {
	for _, p := range f.procs {
		exited, err := f.launch(p)
		if err != nil {
			return err
		}
		f.wg.Add(1)
		go f.supervise(p, exited)
	}
	return nil
}

func (f *fleet) supervise(p *proc, exited chan struct{}) {
	defer f.wg.Done()
	for {
		<-exited
		if f.stopping.Load() {
			return
		}
		p.mu.Lock()
		if !p.killed {
			f.exits.Add(1)
		}
		p.mu.Unlock()
		time.Sleep(f.restartDelay())
		if f.stopping.Load() {
			return
		}
		var err error
		for exited, err = f.launch(p); err != nil; exited, err = f.launch(p) {
			time.Sleep(time.Second)
			if f.stopping.Load() {
				return
			}
		}
		if f.stopping.Load() {
			// stop() may have signalled the previous process only.
			p.mu.Lock()
			_ = syscall.Kill(p.pid, syscall.SIGTERM)
			p.mu.Unlock()
		}
	}
}

// launch starts p's process. The goroutine that forks it stays locked to its
// OS thread until the process is reaped: the parent-death signal fires when
// that thread exits, not when the harness does.
func (f *fleet) launch(p *proc) (chan struct{}, error) {
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(f.exe, f.args...)
	cmd.Env = append(append([]string(nil), f.env...), "SWEEPER_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(p.port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer logFile.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", f.exe, err)
	}
	p.mu.Lock()
	p.pid, p.exited, p.killed = cmd.Process.Pid, exited, false
	p.starts++
	p.mu.Unlock()
	return exited, nil
}

// kill sends SIGKILL to process i and waits until it is gone; the supervisor
// restarts it after restartDelay.
func (f *fleet) kill(i int) {
	p := f.procs[i]
	p.mu.Lock()
	pid, exited := p.pid, p.exited
	p.killed = true
	p.mu.Unlock()
	if pid == 0 {
		return
	}
	select {
	case <-exited:
		return // already dead (crashed, or still being restarted)
	default:
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
		f.kills.Add(1)
	}
	<-exited
}

// waitReady waits until every process answers /readyz with 200.
func (f *fleet) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	for _, p := range f.procs {
		for {
			resp, err := client.Get(p.url() + "/readyz")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("serve %d (port %d) not ready: %w", p.index, p.port, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// stop asks every process to shut down (SIGTERM: graceful, leases released)
// and kills what is still running after grace.
func (f *fleet) stop(grace time.Duration) {
	f.stopping.Store(true)
	var chans []chan struct{}
	for _, p := range f.procs {
		p.mu.Lock()
		pid, exited := p.pid, p.exited
		p.mu.Unlock()
		if exited == nil {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		chans = append(chans, exited)
	}
	deadline := time.After(grace)
	for i, ch := range chans {
		select {
		case <-ch:
		case <-deadline:
			for _, p := range f.procs[i:] {
				p.mu.Lock()
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
				p.mu.Unlock()
			}
			<-ch
		}
	}
	for _, ch := range chans {
		<-ch
	}
	f.wg.Wait()
}

// freePort asks the kernel for a port that is free now. Something else may
// take it before the child binds; the child then exits and is restarted, which
// the harness sees as a crash in its figures.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
