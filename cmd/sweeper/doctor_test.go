package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestDoctorCommand runs `sweeper doctor` as main does: exit 0 and only ok lines against the default
// sandbox on a fresh database; exit 1 with the FAIL line that names the fix when Interlace is
// unreachable. `sweeper --help` lists the command.
func TestDoctorCommand(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); srv.Close() })
	env := map[string]string{
		"DATABASE_URL":            pgtest.NewMigratedDatabase(t),
		"INTERLACE_BASE_URL":      srv.URL,
		"INTERLACE_CLIENT_ID":     "id",
		"INTERLACE_CLIENT_SECRET": "secret",
		"INTERLACE_ACCOUNT_ID":    sandbox.DefaultAccountID,
	}
	doctor := func() (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), func(k string) string { return env[k] }, []string{"doctor"}, &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := doctor()
	if code != 0 {
		t.Fatalf("exit %d against the default sandbox:\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 {
		t.Fatalf("want a line per check, got:\n%s", out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "ok ") {
			t.Errorf("not an ok line: %s", l)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env["INTERLACE_BASE_URL"] = "http://" + ln.Addr().String()
	_ = ln.Close()
	code, out, errOut = doctor()
	if code != 1 || !strings.Contains(out, "FAIL token: cannot reach Interlace") || !strings.Contains(out, "set INTERLACE_BASE_URL") {
		t.Fatalf("exit %d with Interlace unreachable, want 1 and the token FAIL line:\n%s%s", code, out, errOut)
	}

	var help bytes.Buffer
	if run(context.Background(), func(string) string { return "" }, []string{"--help"}, &help, &help); !strings.Contains(help.String(), "  doctor ") ||
		!strings.Contains(help.String(), "INTERLACE_AUTH_STYLE") {
		t.Fatalf("--help does not list doctor and INTERLACE_AUTH_STYLE:\n%s", help.String())
	}
}
