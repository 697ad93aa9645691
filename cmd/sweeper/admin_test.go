package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// operatorStub is a real HTTP server standing in for `sweeper serve`'s operator
// API: it records what the CLI sends and answers what the test scripted. The API
// itself is tested end to end in internal/app.
type operatorStub struct {
	mu       sync.Mutex
	requests []recorded
	answer   func(r recorded) (int, string)
}

type recorded struct {
	Method, Path, Query, Auth string
	Body                      map[string]any
}

func newStub(t *testing.T, answer func(r recorded) (int, string)) (*operatorStub, string) {
	t.Helper()
	s := &operatorStub{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization")}
		if len(raw) > 0 {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&rec.Body); err != nil {
				t.Errorf("CLI sent invalid JSON %q", raw)
			}
		}
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		status, body := s.answer(rec)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *operatorStub) all() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.requests...)
}

func runCLI(env map[string]string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), func(k string) string { return env[k] }, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestWalletCommands(t *testing.T) {
	t.Parallel()
	stub, url := newStub(t, func(r recorded) (int, string) {
		if r.Method == http.MethodPost {
			return 201, `{"id":"w-1","userRef":"alice"}`
		}
		return 200, `{"id":"w-1"}`
	})
	env := map[string]string{"SWEEPER_ADMIN_URL": url, "SWEEPER_ADMIN_TOKEN": "tok"}
	code, out, errOut := runCLI(env, "wallet", "create", "-user-ref", "alice", "-nickname", "Alice",
		"-address", "USDC:ETH", "-address", "USDT:TRON,USDC:ARB")
	if code != 0 || !strings.Contains(out, `"id": "w-1"`) {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(env, "wallet", "get", "-refresh", "w-1"); code != 0 {
		t.Fatalf("get: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(env, "wallet", "list", "-user-ref", "a b", "-limit", "5"); code != 0 {
		t.Fatalf("list: %d %s", code, errOut)
	}
	reqs := stub.all()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	create := reqs[0]
	addrs, _ := json.Marshal(create.Body["addresses"])
	if create.Method != "POST" || create.Path != "/v1/wallets" || create.Auth != "Bearer tok" || create.Body["userRef"] != "alice" ||
		create.Body["nickname"] != "Alice" ||
		string(addrs) != `[{"chain":"ETH","currency":"USDC"},{"chain":"TRON","currency":"USDT"},{"chain":"ARB","currency":"USDC"}]` {
		t.Fatalf("create sent %+v %s", create, addrs)
	}
	if reqs[1].Path != "/v1/wallets/w-1" || reqs[1].Query != "refresh=true" {
		t.Fatalf("get sent %+v", reqs[1])
	}
	if reqs[2].Path != "/v1/wallets" || reqs[2].Query != "userRef=a+b&limit=5" {
		t.Fatalf("list sent %+v", reqs[2])
	}
}

func TestWithdrawCommands(t *testing.T) {
	t.Parallel()
	var polls int
	var mu sync.Mutex
	stub, url := newStub(t, func(r recorded) (int, string) {
		switch {
		case r.Method == http.MethodPost && r.Path == "/v1/withdrawals" && r.Body["idempotencyKey"] == "bad":
			return 422, `{"error":{"code":"invalid_address","message":"address: not a valid ETH address"}}`
		case r.Method == http.MethodPost && r.Path == "/v1/withdrawals":
			return 202, `{"id":"` + r.Body["idempotencyKey"].(string) + `","status":"pending"}`
		case r.Path == "/v1/withdrawals/slow":
			mu.Lock()
			defer mu.Unlock()
			if polls++; polls < 3 {
				return 200, `{"id":"slow","status":"running","step":"trade"}`
			}
			return 200, `{"id":"slow","status":"completed","step":"done","transactionHash":"0xabc"}`
		case r.Path == "/v1/withdrawals/tiny":
			return 200, `{"id":"tiny","status":"stopped","step":"fee_preview","lastError":"fees exceed"}`
		}
		return 200, `{"withdrawals":[]}`
	})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("filetok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SWEEPER_ADMIN_TOKEN_FILE": tokenFile}
	args := func(key string, extra ...string) []string {
		return append([]string{"withdraw", "create", "-url", url, "-key", key, "-wallet", "w-1", "-amount", "100.10",
			"-chain", "ETH", "-address", "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2"}, extra...)
	}
	code, out, errOut := runCLI(env, args("k1")...)
	if code != 0 || !strings.Contains(out, `"status": "pending"`) {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	sent := stub.all()[0]
	if sent.Auth != "Bearer filetok" || sent.Body["amount"] != "100.10" || sent.Body["currency"] != "USDC" ||
		sent.Body["sourceCurrency"] != "USD" || sent.Body["walletId"] != "w-1" {
		t.Fatalf("create sent %+v", sent)
	}
	code, _, errOut = runCLI(env, args("bad")...)
	if code != 1 || !strings.Contains(errOut, "HTTP 422 invalid_address: address: not a valid ETH address") {
		t.Fatalf("rejected: %d %q", code, errOut)
	}
	code, out, errOut = runCLI(env, args("slow", "-wait")...)
	if code != 0 || !strings.Contains(out, `"transactionHash": "0xabc"`) {
		t.Fatalf("wait: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI(env, args("tiny", "-wait")...)
	if code != 1 || !strings.Contains(out, `"stopped"`) || !strings.Contains(errOut, "stopped at step fee_preview: fees exceed") {
		t.Fatalf("wait on a stopped one: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(env, "withdraw", "list", "-url", url, "-status", "failed"); code != 0 {
		t.Fatalf("list: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(env, "withdraw", "retry", "-url", url, "k1"); code != 0 {
		t.Fatalf("retry: %d %s", code, errOut)
	}
	reqs := stub.all()
	if last := reqs[len(reqs)-1]; last.Method != "POST" || last.Path != "/v1/withdrawals/k1/retry" {
		t.Fatalf("retry sent %+v", last)
	}
	if prev := reqs[len(reqs)-2]; prev.Path != "/v1/withdrawals" || prev.Query != "status=failed" {
		t.Fatalf("list sent %+v", prev)
	}
}

func TestAdminCommandErrors(t *testing.T) {
	t.Parallel()
	_, url := newStub(t, func(recorded) (int, string) { return 200, `{}` })
	withToken := map[string]string{"SWEEPER_ADMIN_URL": url, "SWEEPER_ADMIN_TOKEN": "t"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"NoToken", map[string]string{"SWEEPER_ADMIN_URL": url}, []string{"wallet", "list"}, 1, "SWEEPER_ADMIN_TOKEN"},
		{"NoVerb", withToken, []string{"withdraw"}, 2, "Usage: sweeper withdraw"},
		{"UnknownVerb", withToken, []string{"wallet", "delete"}, 2, `unknown command "delete"`},
		{"GetWithoutID", withToken, []string{"withdraw", "get"}, 2, "want exactly one argument, the withdrawal id"},
		{"FlagAfterArg", withToken, []string{"wallet", "get", "w-1", "-refresh"}, 2, "want exactly one argument"},
		{"BadAddressFlag", withToken, []string{"wallet", "create", "-address", "USDC"}, 2, ""},
		{"Unreachable", map[string]string{"SWEEPER_ADMIN_URL": "http://127.0.0.1:1", "SWEEPER_ADMIN_TOKEN": "t"}, []string{"wallet", "list"}, 1, "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, errOut, tc.code, tc.msg)
			}
		})
	}
	if code, out, _ := runCLI(withToken, "wallet", "--help"); code != 0 || !strings.Contains(out, "SWEEPER_ADMIN_URL") {
		t.Fatalf("help: %d %q", code, out)
	}
	if code, out, _ := runCLI(withToken, "withdraw", "create", "--help"); code != 0 || !strings.Contains(out, "-wait") {
		t.Fatalf("create help: %d %q", code, out)
	}
}
