package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// chromium finds the headless browser of the console's browser test: Debian's
// chromium package (or SWEEPER_CHROMIUM). Missing, the test fails and says
// what to install, unless SWEEPER_SKIP_BROWSER=1 opts out explicitly (CI does
// not set it: it installs chromium).
func chromium(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/chromium", "chromium", "chromium-browser"}
	if p := os.Getenv("SWEEPER_CHROMIUM"); p != "" {
		candidates = []string{p}
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SWEEPER_SKIP_BROWSER") == "1" {
		t.Skip("SWEEPER_SKIP_BROWSER=1: the console's browser test does not run")
	}
	t.Fatalf("the console's browser test needs a headless Chromium and found none (looked for %s): install Debian's "+
		"chromium package (apt-get install chromium, which provides /usr/bin/chromium) or set SWEEPER_CHROMIUM to a "+
		"Chromium binary; SWEEPER_SKIP_BROWSER=1 skips this test explicitly", strings.Join(candidates, ", "))
	return ""
}

// artifactDir is where the browser test leaves its screenshots: the directory
// SWEEPER_TEST_ARTIFACTS names, else a new temporary one (kept, and logged).
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("SWEEPER_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d, err := os.MkdirTemp("", "sweeper-console-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// webhookGate forwards the sandbox's notifications to sweeper until it is
// closed; then it answers them 200 and drops them (the test funds a wallet
// without telling sweeper about it).
type webhookGate struct {
	target atomic.Value // string: sweeper's base URL
	closed atomic.Bool
}

func (g *webhookGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target, _ := g.target.Load().(string)
	if g.closed.Load() || target == "" {
		_, _ = io.WriteString(w, `{"received":true}`)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestConsoleInBrowser drives the console in a real headless Chromium, from
// the keyboard: sign in, filter the deposits to the failed ones, open the
// failed deposit, retry it with a note, and see it swept. Screenshots of the
// deposits page (on a laptop and on a phone) and of the deposit are saved.
func TestConsoleInBrowser(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	gate := &webhookGate{}
	hook := httptest.NewServer(gate)
	t.Cleanup(hook.Close)
	sb := sandbox.New(sandbox.Config{
		WebhookURL: hook.URL + "/webhooks/interlace", WebhookSecret: webhookSecret,
		TimeScale: 1000, Logger: zap.NewNop(),
	})
	sbSrv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); sbSrv.Close() })
	s := start(t, sysOpts{sandbox: sb, sbURL: sbSrv.URL, env: map[string]string{"SWEEPER_CONFIRM_DEPOSITS": "false"}})
	gate.target.Store(s.url)

	// A few ordinary deposits, swept.
	for _, d := range []sandbox.DepositRequest{
		{Amount: decimal.RequireFromString("10")},
		{Amount: decimal.RequireFromString("25.5"), Currency: "USDT"},
		{Amount: decimal.RequireFromString("7.125")},
	} {
		dep, err := sb.CreateDeposit(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		s.waitFor(dep.ID, "succeeded")
	}
	// A deposit the master wallet cannot cover yet: Interlace rejects its sweep.
	failed := uuid.NewString()
	if r := s.post(webhookSecret, uuid.NewString(), depositResource(failed, masterWallet, "Closed", "1500")); r.StatusCode != 200 {
		t.Fatalf("webhook status %d", r.StatusCode)
	}
	s.waitFor(failed, "failed")
	// The wallet is topped up behind sweeper's back, as an operator would
	// before retrying.
	gate.closed.Store(true)
	if _, err := sb.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: decimal.RequireFromString("500")}); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, browser, s.url+"/console/")
	do, text, eval, shot := b.do, b.text, b.eval, b.shot

	do("sign in from the keyboard",
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken+"\r"),
		chromedp.WaitVisible(chromedp.ID("list-title")),
		// The first Tab lands on the skip link, and Enter on it moves the focus
		// past the navigation to the page's content.
		chromedp.KeyEvent("\t"),
	)
	if got := eval(`document.activeElement.className`); got != "skip" {
		t.Errorf("the first Tab focuses %q, not the skip link", got)
	}
	do("skip to the content", chromedp.KeyEvent("\r"))
	if got := eval(`document.activeElement.id`); got != "main" {
		t.Errorf("the skip link moves the focus to %q, not the content", got)
	}
	if main := text("main"); !strings.Contains(main, "1 failed") || !strings.Contains(main, "25.5 USDT") {
		t.Fatalf("the deposits page after sign-in:\n%s", main)
	}
	shot("console-deposits.png")
	do("the deposits page on a phone",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("list-title")),
	)
	if fits := eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); fits != "true" {
		t.Error("on a phone-sized screen the page is wider than the screen (tables must scroll inside their box)")
	}
	shot("console-deposits-phone.png")
	do("back to a laptop", chromedp.EmulateViewport(1280, 900))

	do("filter to the failed USDC deposits",
		chromedp.SetValue(chromedp.ID("status"), "failed"),
		chromedp.Focus(chromedp.ID("currency")),
		chromedp.SendKeys(chromedp.ID("currency"), "usdc\r"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/deposits/`+failed+`"]`)),
	)
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if main := text("main"); !strings.Contains(loc, "status=failed") || strings.Contains(main, "25.5 USDT") || strings.Contains(main, "7.125") {
		t.Fatalf("the failed-USDC filter (%s) shows:\n%s", loc, main)
	}

	do("open the failed deposit",
		chromedp.Focus(chromedp.CSS(`a[href="/console/deposits/`+failed+`"]`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.ID("retry-note")),
	)
	main := text("main")
	for _, want := range []string{"1500 USDC", "failed", "Webhook deliveries, byte for byte", "Attempts"} {
		if !strings.Contains(main, want) {
			t.Errorf("the deposit page lacks %q:\n%s", want, main)
		}
	}

	do("retry it with a note",
		chromedp.Focus(chromedp.ID("retry-note")),
		chromedp.SendKeys(chromedp.ID("retry-note"), "master wallet topped up\r"),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	)
	// Sweeping takes a moment: reload until the page says succeeded.
	b.waitText("p.state", "succeeded", 20*time.Second)
	if main := text("main"); !strings.Contains(main, "master wallet topped up") || !strings.Contains(main, "requeued by console:") {
		t.Errorf("the sweep events do not show who retried and why:\n%s", main)
	}
	shot("console-deposit-retried.png")
	s.waitFor(failed, "succeeded")

	do("the reconciliation, from the navigation",
		chromedp.Focus(chromedp.CSS(`nav a[href="/console/reconciliation"]`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("table.recon")),
	)
	// USDC: 10 + 7.125 + 1500 swept; USDT: 25.5; nothing in flight, held or lost.
	if recon := text("table.recon"); strings.Count(recon, "does not balance") != 0 || strings.Count(recon, "balances") != 2 ||
		!strings.Contains(recon, "1517.125") {
		t.Errorf("the reconciliation after the retry:\n%s", recon)
	}
	shot("console-reconciliation.png")
}

// browser is one headless Chromium tab, with the test's shorthand for driving
// it: each step fails the test with its name.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

// newBrowser starts Chromium with the flags of a closed machine (no
// background networking, no component updates, a fresh profile) on url.
func newBrowser(t *testing.T, path, url string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	// The first call starts the browser and must not carry a timeout (it
	// would stop the browser); later steps share one deadline.
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	return &browser{t: t, ctx: ctx, dir: artifactDir(t)}
}

func (b *browser) do(step string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// shot saves a full-page screenshot as a test artefact and logs its path.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// waitText reloads the page until sel's text contains want.
func (b *browser) waitText(sel, want string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for got := b.text(sel); !strings.Contains(got, want); got = b.text(sel) {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never said %q: %q", sel, want, got)
		}
		time.Sleep(200 * time.Millisecond)
		b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(sel)))
	}
}

// TestConsoleReleaseInBrowser is the console's "done when": a person signs in,
// finds a held deposit, releases it and sees it swept. Interlace's record of
// the deposit says 5 USDC; a notification claiming 50 holds the sweep; the
// release re-reads the record and sweeps the record's amount.
func TestConsoleReleaseInBrowser(t *testing.T) {
	path := chromium(t)
	t.Parallel()
	gate := &webhookGate{}
	gate.closed.Store(true) // Interlace's own notifications never arrive: only the record and the lie
	hook := httptest.NewServer(gate)
	t.Cleanup(hook.Close)
	sb := sandbox.New(sandbox.Config{
		WebhookURL: hook.URL + "/webhooks/interlace", WebhookSecret: webhookSecret,
		TimeScale: 1000, Logger: zap.NewNop(),
	})
	sbSrv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sb.Close(); sbSrv.Close() })
	s := start(t, sysOpts{sandbox: sb, sbURL: sbSrv.URL, env: map[string]string{"SWEEPER_CONFIRM_DEPOSITS": "true", "SWEEPER_POLL_INTERVAL": "0"}})
	d, err := sb.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: decimal.RequireFromString("5")})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.post(webhookSecret, uuid.NewString(), depositResource(d.ID, d.WalletID, "Closed", "50")); r.StatusCode != 200 {
		t.Fatalf("webhook status %d", r.StatusCode)
	}
	s.waitFor(d.ID, "held")

	b := newBrowser(t, path, s.url+"/console/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken+"\r"),
		chromedp.WaitVisible(chromedp.ID("attention-title")),
	)
	if att := b.text("section.attention"); !strings.Contains(att, "1 held") || !strings.Contains(att, d.ID) {
		t.Fatalf("the held deposit is not first, under Needs attention:\n%s", att)
	}
	b.do("find the held deposit with the filter",
		chromedp.SetValue(chromedp.ID("status"), "held"),
		chromedp.Focus(chromedp.ID("user")),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`#list-title ~ div a[href="/console/deposits/`+d.ID+`"]`)),
		chromedp.Focus(chromedp.CSS(`#list-title ~ div a[href="/console/deposits/`+d.ID+`"]`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.ID("release-note")),
	)
	if main := b.text("main"); !strings.Contains(main, "held") || !strings.Contains(main, "50 USDC") {
		t.Fatalf("the held deposit's page:\n%s", main)
	}
	b.shot("console-deposit-held.png")
	b.do("release it with a note",
		chromedp.Focus(chromedp.ID("release-note")),
		chromedp.SendKeys(chromedp.ID("release-note"), "checked Interlace's record: 5 USDC\r"),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	)
	if flash := b.text("p.flash"); !strings.Contains(flash, "Released") {
		t.Fatalf("after release: %q", flash)
	}
	b.waitText("p.state", "succeeded", 20*time.Second)
	if main := b.text("main"); !strings.Contains(main, "checked Interlace's record: 5 USDC") {
		t.Errorf("the events do not show who released and why:\n%s", main)
	}
	b.shot("console-deposit-released.png")
	if n := s.count(`SELECT count(*) FROM sweeps WHERE deposit_id = $1 AND amount = 5 AND status = 'succeeded'`, d.ID); n != 1 {
		t.Fatal("the record's amount was not the one swept")
	}
}
