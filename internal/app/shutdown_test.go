package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/webhook"
)

// buildSweeper compiles cmd/sweeper into the test's temporary directory: the
// shutdown test must signal the real program, not a goroutine pretending to be it.
func buildSweeper(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sweeper")
	// `go test` puts its own toolchain first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/sweeperhq/sweeper/cmd/sweeper")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// child is a running `sweeper serve`.
type child struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan struct{}
	err    error // valid once done is closed
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startChild runs `sweeper serve` with exactly env (nothing inherited) and
// waits until /readyz answers 200.
func startChild(t *testing.T, bin, addr string, env map[string]string) *child {
	t.Helper()
	c := &child{url: "http://" + addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(bin, "serve")
	c.cmd.Env = []string{"SWEEPER_HTTP_ADDR=" + addr}
	for k, v := range env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	c.cmd.Stdout = c.stderr
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("sweeper %s output:\n%s", addr, c.stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-c.done:
			t.Fatalf("sweeper exited during start: %v\n%s", c.err, c.stderr.String())
		default:
		}
		if resp, err := http.Get(c.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sweeper never ready\n%s", c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// terminate sends SIGTERM and waits for the exit.
func (c *child) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.wait(t, within)
}

func (c *child) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(within):
		t.Fatalf("sweeper still running %s after SIGTERM", within)
	}
	if c.err != nil || c.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("sweeper exit: %v (code %d), want 0", c.err, c.cmd.ProcessState.ExitCode())
	}
}

// SIGTERM in the middle of a stream of deposits and webhooks loses nothing:
// every webhook answered 200 is committed, every transfer that reached Interlace
// is recorded, no lease is left behind, the process exits 0, and a new process
// sweeps every deposit exactly once.
func TestSIGTERMUnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	bin := buildSweeper(t)
	dbURL := pgtest.NewMigratedDatabase(t)
	addr := freeAddr(t)

	// Slow upstream: sweeps are in flight when the signal comes. The retry
	// schedule is scaled so deliveries refused while no process listens come
	// back within a second or two.
	sb := sandbox.New(sandbox.Config{
		WebhookURL: "http://" + addr + "/webhooks/interlace", WebhookSecret: webhookSecret,
		TimeScale: 300, Logger: zap.NewNop(),
	})
	sbSrv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); sbSrv.Close() })
	sb.SetFaults(sandbox.Faults{LatencyMs: 150})
	before := sb.Ledger().Infinity.Available

	env := map[string]string{
		"DATABASE_URL":             dbURL,
		"INTERLACE_BASE_URL":       sbSrv.URL,
		"INTERLACE_CLIENT_ID":      "client-id",
		"INTERLACE_CLIENT_SECRET":  "client-secret-value",
		"INTERLACE_ACCOUNT_ID":     accountID,
		"INTERLACE_WEBHOOK_SECRET": webhookSecret,
		"SWEEPER_SWEEP_LEASE":      "5s",
		"SWEEPER_UPSTREAM_TIMEOUT": "800ms",
		"SWEEPER_RETRY_MAX_DELAY":  "1s",
		"SWEEPER_SHUTDOWN_TIMEOUT": "10s",
		"SWEEPER_LOG_FORMAT":       "json",
	}
	p1 := startChild(t, bin, addr, env)
	pool, err := store.OpenPool(context.Background(), dbURL, store.PoolOptions{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	// Load: deposits arriving on chain (the sandbox notifies sweeper, Pending
	// then Closed), and our own redeliveries of their Closed notification under
	// fresh notification ids, straight to the webhook endpoint.
	var (
		mu       sync.Mutex
		deposits []sandbox.Deposit
		sent     []string // notification ids we posted ourselves
		acked    []string // those answered 200
		bad      []string // answers that are neither 200 nor a refused connection
	)
	stopLoad := make(chan struct{})
	var load sync.WaitGroup
	load.Add(1)
	go func() {
		defer load.Done()
		for i := 1; i <= 60; i++ {
			select {
			case <-stopLoad:
				return
			case <-time.After(10 * time.Millisecond):
			}
			amt := decimal.New(int64(i)*1_000_001, -6) // 1.000001, 2.000002, ... exact
			d, err := sb.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: amt})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			deposits = append(deposits, d)
			mu.Unlock()
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 4; w++ {
		load.Add(1)
		go func() {
			defer load.Done()
			for n := 0; ; n++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				mu.Lock()
				var d sandbox.Deposit
				if len(deposits) > 0 {
					d = deposits[(n*7+w)%len(deposits)]
				}
				mu.Unlock()
				if d.ID == "" {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				id := uuid.NewString()
				status, err := postSigned(client, p1.url, id, depositResource(d.ID, d.WalletID, "Closed", d.Amount.String()))
				mu.Lock()
				sent = append(sent, id)
				switch {
				case err == nil && status == http.StatusOK:
					acked = append(acked, id)
				case err == nil:
					bad = append(bad, fmt.Sprintf("%s: status %d", id, status))
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // the server is gone; do not spin
				}
			}
		}()
	}

	// Mid-load: some sweeps done, some in flight right now.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var done, inFlight int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'succeeded'),
       count(*) FILTER (WHERE status = 'in_flight') FROM sweeps`).Scan(&done, &inFlight); err != nil {
			t.Fatal(err)
		}
		if done >= 3 && inFlight >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("load never reached the mid-point: %d swept, %d in flight", done, inFlight)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()

	// Readiness goes away once stopping and does not come back before the exit.
	var readyAfter atomic.Int32
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		notReady := false
		for {
			select {
			case <-p1.done:
				return
			default:
			}
			resp, err := http.Get(p1.url + "/readyz")
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			if !ok {
				notReady = true
			} else if notReady || time.Since(signalled) > 500*time.Millisecond {
				readyAfter.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	p1.wait(t, 20*time.Second)
	<-probeDone
	if n := readyAfter.Load(); n > 0 {
		t.Errorf("/readyz answered 200 %d times after SIGTERM", n)
	}
	log1 := p1.stderr.String()
	for _, want := range []string{`"sweeper stopping"`, `"sweeper stopped"`} {
		if !strings.Contains(log1, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(log1, "drain timeout") {
		t.Error("in-flight sweeps were abandoned instead of finished")
	}

	// What the first process acknowledged or sent upstream, frozen at its exit.
	led := sb.Ledger()
	mu.Lock()
	ackedNow := append([]string(nil), acked...)
	sentNow := append([]string(nil), sent...)
	badNow := append([]string(nil), bad...)
	mu.Unlock()
	if len(badNow) > 0 {
		t.Errorf("webhooks answered neither 200 nor refused during shutdown: %v", badNow)
	}
	if len(ackedNow) == 0 {
		t.Fatal("no direct webhook was acknowledged: the load did not run")
	}
	var missing int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM unnest($1::text[]) AS a(id)
 WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries w WHERE w.notification_id = a.id)`, ackedNow).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing > 0 {
		t.Errorf("%d of %d webhooks answered 200 are not in the database", missing, len(ackedNow))
	}
	assertSandboxAcksCommitted(t, pool, led, sentNow)
	assertNoLeases(t, pool)
	assertNoConfirmationClaims(t, pool)
	// Every transfer that reached Interlace before the exit is recorded as done:
	// the in-flight sweeps were finished, not cut off.
	for _, tr := range led.InternalTransfers {
		var status string
		var transferID *string
		err := pool.QueryRow(context.Background(), `SELECT status, interlace_transfer_id FROM sweeps WHERE client_transaction_id = $1`,
			tr.ClientTransactionID).Scan(&status, &transferID)
		if err != nil {
			t.Fatalf("upstream transfer %s (%s): %v", tr.ID, tr.ClientTransactionID, err)
		}
		if status != store.SweepSucceeded || transferID == nil || *transferID != tr.ID {
			t.Errorf("upstream transfer %s is recorded as %s %v", tr.ID, status, transferID)
		}
	}
	t.Logf("first process: %d deposits, %d transfers, %d direct webhooks acked, stopped %s after SIGTERM",
		len(led.Deposits), len(led.InternalTransfers), len(ackedNow), time.Since(signalled).Round(time.Millisecond))

	// The load stops; a new process on the same address gets the deliveries
	// Interlace retries and the sweeps left pending.
	close(stopLoad)
	load.Wait()
	p2 := startChild(t, bin, addr, env)
	sb.SetFaults(sandbox.Faults{})
	mu.Lock()
	all := append([]sandbox.Deposit(nil), deposits...)
	mu.Unlock()
	deadline = time.Now().Add(20 * time.Second)
	for {
		var swept int
		ids := make([]string, len(all))
		for i, d := range all {
			ids[i] = d.ID
		}
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM sweep_ledger
 WHERE deposit_id = ANY($1) AND sweep_status = 'succeeded'`, ids).Scan(&swept); err != nil {
			t.Fatal(err)
		}
		if swept == len(all) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deposits swept after the restart; not swept:\n%s", swept, len(all), notSwept(t, pool, ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p2.terminate(t, 15*time.Second)
	assertNoLeases(t, pool)

	// Exactly once upstream, for the amount received, and the Infinity balance
	// moved by exactly what the ledger says was credited.
	led = sb.Ledger()
	byCTID := map[string][]sandbox.InternalTransfer{}
	for _, tr := range led.InternalTransfers {
		byCTID[tr.ClientTransactionID] = append(byCTID[tr.ClientTransactionID], tr)
	}
	credited := decimal.Zero
	for _, d := range all {
		ctid := ids.SweepTransactionID(d.ID).String()
		trs := byCTID[ctid]
		if len(trs) != 1 {
			t.Errorf("deposit %s swept %d times upstream", d.ID, len(trs))
			continue
		}
		if !trs[0].Amount.Equal(d.Amount) {
			t.Errorf("deposit %s of %s swept as %s", d.ID, d.Amount, trs[0].Amount)
		}
		var c decimal.Decimal
		if err := pool.QueryRow(context.Background(), `SELECT credited_amount FROM sweep_ledger WHERE deposit_id = $1`, d.ID).Scan(&c); err != nil {
			t.Fatal(err)
		}
		credited = credited.Add(c)
	}
	if len(led.InternalTransfers) != len(all) {
		t.Errorf("%d upstream transfers for %d deposits", len(led.InternalTransfers), len(all))
	}
	if len(led.IdempotencyConflicts) > 0 {
		t.Errorf("a replay differed from its first request: %v", led.IdempotencyConflicts)
	}
	if moved := led.Infinity.Available.Sub(before); !moved.Equal(credited) {
		t.Errorf("Infinity balance moved by %s, ledger credited %s", moved, credited)
	}
}

// assertSandboxAcksCommitted checks that every notification the sandbox saw
// acknowledged is in the database. The sandbox counts acknowledged distinct
// notifications per deposit; ours (ids in own) are left out of the count.
func assertSandboxAcksCommitted(t *testing.T, pool *pgxpool.Pool, led sandbox.Ledger, own []string) {
	t.Helper()
	for _, d := range led.Deposits {
		var stored int64
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries
 WHERE transfer_id = $1 AND NOT notification_id = ANY($2)`, d.ID, own).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored < d.NotificationsSent {
			t.Errorf("deposit %s: the sandbox had %d notifications acknowledged, %d are stored", d.ID, d.NotificationsSent, stored)
		}
	}
}

func assertNoLeases(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var held int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM sweeps
 WHERE status = 'in_flight' OR lease_owner IS NOT NULL OR lease_token IS NOT NULL`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held > 0 {
		t.Errorf("%d sweeps still leased after the process exited", held)
	}
}

// postSigned delivers one signed notification; err is set when no HTTP answer came.
func postSigned(client *http.Client, base, notificationID string, resource any) (int, error) {
	res := mustJSON(resource)
	body := mustJSON(map[string]any{
		"id": notificationID, "eventType": "CRYPTO_TRANSFER.UPDATED", "apiVersion": "v3", "code": "000000",
		"message": "", "resource": string(res), "createTime": "1767225600000",
	})
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/interlace", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Signature-Method", "HMAC-SHA256")
	req.Header.Set("Signature", webhook.Sign([]byte(webhookSecret), res))
	req.Header.Set("Timestamp", "1767225600000")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil && !errors.Is(err, net.ErrClosed) {
		return 0, err
	}
	return resp.StatusCode, nil
}

// SWEEPER_SHUTDOWN_TIMEOUT bounds the whole shutdown, not each of its phases:
// a request that never finishes and a transfer stuck upstream are waited for
// side by side, then abandoned; the abandoned sweep's lease is released and the
// next process finishes it under the same id, once.
func TestShutdownIsBoundedByOneDeadline(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{env: map[string]string{
		"SWEEPER_SHUTDOWN_TIMEOUT": "1s", "SWEEPER_UPSTREAM_TIMEOUT": "8s", "SWEEPER_SWEEP_LEASE": "50s",
	}})
	s.waitFor(s.deposit("1").ID, "succeeded") // the Infinity wallet is known before the upstream slows down

	s.sandbox.SetFaults(sandbox.Faults{LatencyMs: 5000})
	d := s.deposit("2")
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM sweeps WHERE deposit_id = $1 AND status = 'in_flight'`, d.ID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("sweep never claimed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A client that sends its headers and never the body it announced.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /webhooks/interlace HTTP/1.1\r\nHost: x\r\nSignature: x\r\nContent-Length: 100\r\n\r\n{")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	began := time.Now()
	s.stop()
	// The abandoned handler logs when its client goes: let that happen while
	// the test (and its logger) still runs.
	conn.Close()
	if took := time.Since(began); took > 1800*time.Millisecond {
		t.Errorf("shutdown took %s with a 1s SWEEPER_SHUTDOWN_TIMEOUT", took)
	}
	if n := s.count(`SELECT count(*) FROM sweeps WHERE lease_token IS NOT NULL OR status = 'in_flight'`); n != 0 {
		t.Fatalf("%d leases left after shutdown", n)
	}
	if n := s.count(`SELECT count(*) FROM sweeps WHERE deposit_id = $1 AND status = 'pending'`, d.ID); n != 1 {
		t.Errorf("abandoned sweep is not pending again")
	}

	s.sandbox.SetFaults(sandbox.Faults{})
	s2 := start(t, sysOpts{dbURL: s.dbURL, sandbox: s.sandbox, sbURL: s.sbURL})
	s2.waitFor(d.ID, "succeeded")
	n := 0
	for _, tr := range s.sandbox.Ledger().InternalTransfers {
		if tr.ClientTransactionID == ids.SweepTransactionID(d.ID).String() {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("deposit transferred %d times upstream", n)
	}
}

// assertNoConfirmationClaims: a process that exited gracefully left no
// confirmation claimed. A claim is due again only after the confirmer's lease
// (30 s, poll.ConfirmConfig's default); a deferral after Interlace's answer is
// due after its backoff (2 s doubling per attempt, a few attempts here at
// most). A due time more than 15 s ahead is therefore a claim left behind, and
// its deposit would be neither confirmed nor swept by the next process for that
// long.
func assertNoConfirmationClaims(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT deposit_id, attempts, (due_at - now())::text
  FROM deposit_confirmations WHERE due_at > now() + interval '15 seconds'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, in string
		var attempts int
		if err := rows.Scan(&id, &attempts, &in); err != nil {
			t.Fatal(err)
		}
		t.Errorf("confirmation of deposit %s (attempt %d) still claimed after the exit: due in %s", id, attempts, in)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// notSwept describes, for a failure message, the deposits of ids not swept yet:
// their ledger row and their confirmation row.
func notSwept(t *testing.T, pool *pgxpool.Pool, ids []string) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT l.deposit_id, l.deposit_status, COALESCE(l.sweep_status, ''),
       COALESCE(l.last_error, ''), COALESCE(c.attempts, -1), COALESCE((c.due_at - now())::text, 'null')
  FROM sweep_ledger l LEFT JOIN deposit_confirmations c ON c.deposit_id = l.deposit_id
 WHERE l.deposit_id = ANY($1) AND l.sweep_status IS DISTINCT FROM 'succeeded'`, ids)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, dep, sw, last, due string
		var attempts int
		if err := rows.Scan(&id, &dep, &sw, &last, &attempts, &due); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "  %s deposit=%s sweep=%s last_error=%q confirmation attempts=%d due_in=%s\n", id, dep, sw, last, attempts, due)
	}
	return b.String()
}
