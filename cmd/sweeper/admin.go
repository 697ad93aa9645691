package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sweeperhq/sweeper/internal/config"
)

// The wallet and withdraw commands are thin clients of the operator API (contract
// §3): they run anywhere the API is reachable, need no database or Interlace
// credentials, and every rule (validation, idempotency) is the server's.

const defaultAdminURL = "http://localhost:8080"

var adminVars = []config.Var{
	{Name: "SWEEPER_ADMIN_URL", Default: defaultAdminURL, Usage: "base URL of a running `sweeper serve` (the operator API is under /v1)"},
	{Name: "SWEEPER_ADMIN_TOKEN", Secret: true, Usage: "the operator API bearer token (or SWEEPER_ADMIN_TOKEN_FILE)"},
}

type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func newAdminClient(env config.Getenv, base string) (*adminClient, error) {
	if base == "" {
		base = env("SWEEPER_ADMIN_URL")
	}
	if base == "" {
		base = defaultAdminURL
	}
	token := env("SWEEPER_ADMIN_TOKEN")
	if token == "" {
		if path := env("SWEEPER_ADMIN_TOKEN_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("SWEEPER_ADMIN_TOKEN_FILE: %w", err)
			}
			token = strings.TrimRight(string(b), "\r\n")
		}
	}
	if token == "" {
		return nil, fmt.Errorf("%w: SWEEPER_ADMIN_TOKEN", config.ErrMissing)
	}
	return &adminClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// apiError is an operator API error answer, printed as one line.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// call sends one request and returns the raw JSON answer of a 2xx, or an *apiError.
func (c *adminClient) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/v1"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return raw, nil
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" {
		return nil, &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	}
	return nil, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
}

// print writes the API's answer as indented JSON.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// subcommand is one verb of `sweeper wallet` or `sweeper withdraw`.
type subcommand struct {
	name, args, summary string
	run                 func(ctx context.Context, c *adminClient, fs *flag.FlagSet, args []string, stdout io.Writer) error
	flags               func(fs *flag.FlagSet)
}

// runGroup dispatches `sweeper <group> <verb> [flags] [args]`.
func runGroup(ctx context.Context, group, about string, subs []subcommand, env config.Getenv, args []string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: sweeper %s <command> [flags] [args]   (flags before args)\n\n%s\n\nCommands:\n", group, about)
		for _, s := range subs {
			fmt.Fprintf(w, "  %-7s %-22s %s\n", s.name, s.args, s.summary)
		}
		fmt.Fprintf(w, "\nEvery command takes -url (default $SWEEPER_ADMIN_URL, else %s).\n\nEnvironment:\n", defaultAdminURL)
		printVars(w, adminVars)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			usage(stderr)
			return errUsage
		}
		usage(stdout)
		return nil
	}
	for _, s := range subs {
		if s.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet(group+" "+s.name, flag.ContinueOnError)
		fs.SetOutput(stdout)
		baseURL := fs.String("url", "", "operator API base URL (default $SWEEPER_ADMIN_URL, else "+defaultAdminURL+")")
		if s.flags != nil {
			s.flags(fs)
		}
		fs.Usage = func() {
			fmt.Fprintf(stdout, "Usage: sweeper %s %s [flags] %s\n\n%s\n\nFlags:\n", group, s.name, s.args, s.summary)
			fs.PrintDefaults()
			fmt.Fprintln(stdout, "\nEnvironment:")
			printVars(stdout, adminVars)
		}
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		c, err := newAdminClient(env, *baseURL)
		if err != nil {
			return err
		}
		err = s.run(ctx, c, fs, fs.Args(), stdout)
		if errors.Is(err, errUsage) && !errors.Is(err, flag.ErrHelp) {
			// main exits 2 without a word on usage errors: say what was wrong here.
			fmt.Fprintf(stderr, "sweeper %s %s: %v\n", group, s.name, err)
		}
		return err
	}
	fmt.Fprintf(stderr, "sweeper %s: unknown command %q\n\n", group, args[0])
	usage(stderr)
	return errUsage
}

func oneArg(name string, args []string) (string, error) {
	if len(args) != 1 || args[0] == "" {
		return "", fmt.Errorf("%w: want exactly one argument, the %s", errUsage, name)
	}
	return args[0], nil
}

func noArgs(args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: unexpected arguments %q (flags go before arguments)", errUsage, args)
	}
	return nil
}

// pageQuery builds ?k=v&… from the non-empty pairs.
func pageQuery(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		if b.Len() == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(pairs[i] + "=" + url.QueryEscape(pairs[i+1]))
	}
	return b.String()
}
