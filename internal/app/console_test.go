package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
