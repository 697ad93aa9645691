package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestConsoleMounting: the console is served at /console/ with the operator
// API's token, its stylesheet is embedded, and it is off (404) without a token,
// like /v1.
func TestConsoleMounting(t *testing.T) {
	t.Parallel()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(base, path string) (*http.Response, string) {
		t.Helper()
		resp, err := noRedirect.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	on := start(t, sysOpts{noWork: true})
	if resp, body := get(on.url, "/console/"); resp.StatusCode != 200 || !strings.Contains(body, `type="password"`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("/console/: %d %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if resp, _ := get(on.url, "/console"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/console/" {
		t.Errorf("/console: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := get(on.url, "/console/static/console.css"); resp.StatusCode != 200 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "focus-visible") {
		t.Errorf("stylesheet: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(on.url, "/console/static/"); resp.StatusCode != 404 {
		t.Errorf("static directory listing: %d", resp.StatusCode)
	}

	off := start(t, sysOpts{noWork: true, env: map[string]string{"SWEEPER_ADMIN_TOKEN": ""}})
	for _, path := range []string{"/console/", "/console/static/console.css", "/v1/deposits"} {
		if resp, _ := get(off.url, path); resp.StatusCode != 404 {
			t.Errorf("without SWEEPER_ADMIN_TOKEN %s answers %d", path, resp.StatusCode)
		}
	}
}

// TestConsoleResolvesThroughTheApp: the console's Resolve is the operator API's
// own operation (store.ResolveSweep), wired by the app: an unresolved sweep
// closed from the console is succeeded with the evidence, and its event names
// the console session and the note.
func TestConsoleResolvesThroughTheApp(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{noWork: true})
	transfer := uuid.NewString()
	if r := s.post(webhookSecret, uuid.NewString(), depositResource(transfer, masterWallet, "Closed", "12")); r.StatusCode != 200 {
		t.Fatalf("webhook status %d", r.StatusCode)
	}
	s.waitFor(transfer, "pending")
	// Arranged: an answer nobody could read left the sweep unresolved.
	if _, err := s.pool.Exec(context.Background(), `UPDATE sweeps SET status = 'unresolved' WHERE deposit_id = $1`, transfer); err != nil {
		t.Fatal(err)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d\n%s", resp.Request.URL, resp.StatusCode, b)
		}
		return string(b)
	}
	form := page(c.Get(s.url + "/console/"))
	page(c.PostForm(s.url+"/console/login", url.Values{"csrf": {csrf.FindStringSubmatch(form)[1]}, "token": {adminToken}}))
	dep := page(c.Get(s.url + "/console/deposits/" + transfer))
	if !strings.Contains(dep, "/console/deposits/"+transfer+"/resolve") {
		t.Fatal("the unresolved deposit offers no resolve form")
	}
	done := page(c.PostForm(s.url+"/console/deposits/"+transfer+"/resolve", url.Values{
		"csrf": {csrf.FindStringSubmatch(dep)[1]}, "outcome": {"succeeded"}, "interlaceTransferId": {"tr-from-statement"},
		"creditedAmount": {"11.9"}, "creditedCurrency": {"USD"}, "note": {"statement line 42"},
	}))
	if !strings.Contains(done, "Resolved") {
		t.Fatal("the page does not say it is resolved")
	}
	row := s.waitFor(transfer, "succeeded")
	if row.CreditedAmount == nil || row.CreditedAmount.String() != "11.9" || *row.InterlaceTransferID != "tr-from-statement" {
		t.Fatalf("resolved row %+v", row)
	}
	if n := s.count(`SELECT count(*) FROM sweep_events WHERE deposit_id = $1 AND actor LIKE 'console:%' AND reason LIKE '%statement line 42'`, transfer); n != 1 {
		t.Fatal("the resolution's event does not name the console session and the note")
	}
}
