package console_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/console"
	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/pgtest"
	"github.com/sweeperhq/sweeper/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const token = "console-test-admin-token"

// harness is a console over a real, fresh database, with a clock the test moves.
type harness struct {
	t     *testing.T
	url   string
	pool  *pgxpool.Pool
	store *store.Store
	mu    sync.Mutex
	now   time.Time
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func newHarness(t *testing.T, actions func(*store.Store) console.Actions) *harness {
	t.Helper()
	t.Parallel()
	pool := pgtest.NewPool(t)
	h := &harness{t: t, pool: pool, store: store.New(pool), now: time.Now()}
	a := console.Actions{Retry: func(ctx context.Context, id, actor, note string) error {
		return h.store.RequeueSweep(ctx, id, store.Actor{Who: actor, Note: note})
	}}
	if actions != nil {
		a = actions(h.store)
	}
	handler, err := console.New(console.Deps{Store: h.store, Token: token, Actions: a, Now: h.clock, SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// client is a browser without redirects: every answer is seen as sent.
func (h *harness) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status int
	body   string
	header http.Header
}

func (h *harness) do(c *http.Client, method, path string, form url.Values, hdr ...string) answer {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", page)
	}
	return m[1]
}

// signIn signs a fresh client in and returns it with its session's CSRF token.
func (h *harness) signIn() (*http.Client, string) {
	h.t.Helper()
	c := h.client()
	form := h.do(c, "GET", "/console/", nil)
	a := h.do(c, "POST", "/console/login", url.Values{"csrf": {csrfOf(h.t, form.body)}, "token": {token}})
	if a.status != http.StatusSeeOther {
		h.t.Fatalf("sign-in: %d %s", a.status, a.body)
	}
	page := h.do(c, "GET", "/console/", nil)
	if page.status != 200 {
		h.t.Fatalf("after sign-in: %d", page.status)
	}
	return c, csrfOf(h.t, page.body)
}

// deposit records a final deposit through the real ingest path, with body as
// its webhook delivery, and returns its id.
func (h *harness) deposit(id, currency, amount string, body []byte) string {
	h.t.Helper()
	_, err := h.store.Ingest(context.Background(), store.Delivery{
		NotificationID: "n-" + id, EventType: "CRYPTO_TRANSFER.UPDATED", Body: body,
		Outcome: store.OutcomeDeposit, TransferID: id,
		Deposit: &store.DepositInput{
			TransferID: id, AccountID: "acc", WalletID: "wallet-1", Chain: "ETH", Currency: currency,
			Amount: decimal.RequireFromString(amount), UpstreamStatus: "Closed", Status: store.DepositFinal,
			ClientTransactionID: ids.SweepTransactionID(id), SweepAccountID: "acc", ToCurrency: "USD",
		},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// setSweep puts a sweep in a state no code path reaches quickly (the test's
// arrangement; the console only reads it).
func (h *harness) setSweep(id, status string) {
	h.t.Helper()
	_, err := h.pool.Exec(context.Background(), `UPDATE sweeps SET status = $2, last_error = 'Interlace code 100500: insufficient balance',
       failed_at = CASE WHEN $2 = 'failed' THEN now() END,
       interlace_transfer_id = CASE WHEN $2 = 'succeeded' THEN 'tr-' || deposit_id END WHERE deposit_id = $1`, id, status)
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) sweepStatus(id string) string {
	h.t.Helper()
	var s string
	if err := h.pool.QueryRow(context.Background(), `SELECT status FROM sweeps WHERE deposit_id = $1`, id).Scan(&s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func cookieNamed(hdr http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestSignIn: without a session there is only the sign-in form; the session
// cookie is HttpOnly, SameSite=Strict, scoped to /console, expiring, and is not
// the token; it stops working when it expires or is altered, and any replica
// with the same token accepts it.
func TestSignIn(t *testing.T) {
	h := newHarness(t, nil)
	h.deposit("dep-visible", "USDC", "12.5", []byte(`{}`))

	t.Run("no session shows only the sign-in form", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			status int
		}{
			{"/console/", 200},
			{"/console/?status=failed", 200},
			{"/console/deposits/dep-visible", 401},
			{"/console/withdrawals", 401},
			{"/console/reconciliation", 401},
		} {
			a := h.do(h.client(), "GET", c.path, nil)
			if a.status != c.status || !strings.Contains(a.body, `type="password"`) {
				t.Errorf("GET %s: %d, want %d with the sign-in form", c.path, a.status, c.status)
			}
			for _, secret := range []string{"12.5", "USDC", "Withdrawals", "Reconciliation", "/console/logout", "<table"} {
				if strings.Contains(a.body, secret) {
					t.Errorf("GET %s without a session shows %q", c.path, secret)
				}
			}
		}
	})

	t.Run("sign-in attempts", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			csrf   func(page string) string
			token  string
			status int
		}{
			{"right token", func(p string) string { return csrfOf(t, p) }, token, http.StatusSeeOther},
			{"wrong token", func(p string) string { return csrfOf(t, p) }, token + "x", http.StatusUnauthorized},
			{"empty token", func(p string) string { return csrfOf(t, p) }, "", http.StatusUnauthorized},
			{"token prefix", func(p string) string { return csrfOf(t, p) }, token[:10], http.StatusUnauthorized},
			{"no csrf", func(string) string { return "" }, token, http.StatusForbidden},
			{"wrong csrf", func(string) string { return "AAAA" }, token, http.StatusForbidden},
		} {
			t.Run(c.name, func(t *testing.T) {
				cl := h.client()
				form := h.do(cl, "GET", "/console/", nil)
				a := h.do(cl, "POST", "/console/login", url.Values{"csrf": {c.csrf(form.body)}, "token": {c.token}})
				if a.status != c.status {
					t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
				}
				session := cookieNamed(a.header, "sweeper_console")
				if (session != nil) != (c.status == http.StatusSeeOther) {
					t.Fatalf("session cookie %v after status %d", session, a.status)
				}
				if session == nil {
					if after := h.do(cl, "GET", "/console/deposits/dep-visible", nil); after.status != 401 {
						t.Fatalf("after a refused sign-in the deposit page answers %d", after.status)
					}
				}
			})
		}
	})

	t.Run("cookie attributes", func(t *testing.T) {
		cl := h.client()
		form := h.do(cl, "GET", "/console/", nil)
		a := h.do(cl, "POST", "/console/login", url.Values{"csrf": {csrfOf(t, form.body)}, "token": {token}})
		c := cookieNamed(a.header, "sweeper_console")
		if c == nil {
			t.Fatal("no session cookie")
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console" {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console", c)
		}
		if c.Expires.IsZero() || c.Expires.After(h.clock().Add(time.Hour+time.Minute)) || c.MaxAge <= 0 || c.MaxAge > 3600 {
			t.Errorf("cookie expiry %v / max-age %d: want within the hour", c.Expires, c.MaxAge)
		}
		if strings.Contains(c.Value, token) || strings.Contains(a.header.Get("Set-Cookie"), token) {
			t.Errorf("the cookie carries the token: %q", c.Value)
		}
		if loc := a.header.Get("Location"); loc != "/console/" {
			t.Errorf("redirect to %q", loc)
		}
		if a := h.do(cl, "GET", "/console/", nil); !strings.Contains(a.body, "dep-visible") {
			t.Errorf("signed in, the deposits page does not list the deposit: %d", a.status)
		}
	})

	t.Run("altered, foreign and expired sessions", func(t *testing.T) {
		cl, _ := h.signIn()
		u, _ := url.Parse(h.url + "/console/")
		good := cl.Jar.Cookies(u)[0].Value
		use := func(value string) int {
			c := h.client()
			c.Jar.SetCookies(u, []*http.Cookie{{Name: "sweeper_console", Value: value, Path: "/console"}})
			return h.do(c, "GET", "/console/deposits/dep-visible", nil).status
		}
		parts := strings.Split(good, ".")
		later := strings.Join([]string{parts[0], parts[1], "99999999999", parts[3]}, ".")
		otherID := strings.Join([]string{parts[0], "B" + parts[1][1:], parts[2], parts[3]}, ".")
		for _, c := range []struct {
			name, value string
			status      int
		}{
			{"as issued", good, 200},
			{"expiry pushed back", later, 401},
			{"session id changed", otherID, 401},
			{"the token itself", token, 401},
			{"empty", "", 401},
			{"huge", strings.Repeat("a", 5000), 401},
		} {
			if got := use(c.value); got != c.status {
				t.Errorf("%s: %d, want %d", c.name, got, c.status)
			}
		}

		// Another replica with the same token accepts the session; one with
		// another token does not.
		for _, c := range []struct {
			token  string
			status int
		}{{token, 200}, {"another-token", 401}} {
			other, err := console.New(console.Deps{Store: h.store, Token: c.token, Now: h.clock})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/console/deposits/dep-visible", nil)
			req.AddCookie(&http.Cookie{Name: "sweeper_console", Value: good})
			rec := httptest.NewRecorder()
			other.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Errorf("replica with token %q: %d, want %d", c.token, rec.Code, c.status)
			}
		}

		h.advance(59 * time.Minute)
		if got := use(good); got != 200 {
			t.Errorf("a minute before expiry: %d", got)
		}
		h.advance(2 * time.Minute)
		if got := use(good); got != 401 {
			t.Errorf("after expiry: %d, want 401", got)
		}
		if a := h.do(cl, "GET", "/console/", nil); !strings.Contains(a.body, `type="password"`) || strings.Contains(a.body, "dep-visible") {
			t.Error("after expiry /console/ is not the sign-in form alone")
		}
	})

	t.Run("sign out", func(t *testing.T) {
		cl, csrf := h.signIn()
		a := h.do(cl, "POST", "/console/logout", url.Values{"csrf": {csrf}})
		c := cookieNamed(a.header, "sweeper_console")
		if a.status != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
			t.Fatalf("logout: %d, cookie %+v", a.status, c)
		}
		if a := h.do(cl, "GET", "/console/deposits/dep-visible", nil); a.status != 401 {
			t.Errorf("after sign-out: %d", a.status)
		}
	})
}

// TestCSRF: a state-changing POST without the session's CSRF token is 403 and
// changes nothing; with it, the action runs and its event names who and why.
func TestCSRF(t *testing.T) {
	h := newHarness(t, nil)
	id := h.deposit("dep-failed", "USDC", "40", []byte(`{}`))
	h.setSweep(id, "failed")
	cl, csrf := h.signIn()
	other, otherCSRF := h.signIn()
	_ = other

	for _, c := range []struct {
		name   string
		client *http.Client
		form   url.Values
		hdr    []string
		status int
	}{
		{"no session", h.client(), url.Values{"csrf": {csrf}, "note": {"x"}}, nil, 403},
		{"no token", cl, url.Values{"note": {"x"}}, nil, 403},
		{"empty token", cl, url.Values{"csrf": {""}, "note": {"x"}}, nil, 403},
		{"wrong token", cl, url.Values{"csrf": {csrf[:len(csrf)-2] + "AA"}, "note": {"x"}}, nil, 403},
		{"another session's token", cl, url.Values{"csrf": {otherCSRF}, "note": {"x"}}, nil, 403},
		{"the sign-in form's token", cl, url.Values{"csrf": {csrfOf(t, h.do(h.client(), "GET", "/console/", nil).body)}, "note": {"x"}}, nil, 403},
		{"cross-site", cl, url.Values{"csrf": {csrf}, "note": {"x"}}, []string{"Sec-Fetch-Site", "cross-site"}, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := h.do(c.client, "POST", "/console/deposits/"+id+"/retry", c.form, c.hdr...)
			if a.status != c.status {
				t.Fatalf("status %d, want %d", a.status, c.status)
			}
			if st := h.sweepStatus(id); st != "failed" {
				t.Fatalf("a refused form changed the sweep to %s", st)
			}
		})
	}
	t.Run("logout without token", func(t *testing.T) {
		if a := h.do(cl, "POST", "/console/logout", url.Values{}); a.status != 403 {
			t.Fatalf("logout without csrf: %d", a.status)
		}
		if a := h.do(cl, "GET", "/console/deposits/"+id, nil); a.status != 200 {
			t.Fatalf("a refused logout signed out: %d", a.status)
		}
	})

	t.Run("with the token the action runs and names who and why", func(t *testing.T) {
		a := h.do(cl, "POST", "/console/deposits/"+id+"/retry", url.Values{"csrf": {csrf}, "note": {"balance topped up"}})
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/deposits/"+id+"?done=retry" {
			t.Fatalf("retry: %d %s", a.status, a.header.Get("Location"))
		}
		if st := h.sweepStatus(id); st != "pending" {
			t.Fatalf("sweep %s after retry", st)
		}
		var reason, actor string
		err := h.pool.QueryRow(context.Background(), `SELECT reason, actor FROM sweep_events WHERE deposit_id = $1 ORDER BY id DESC LIMIT 1`, id).Scan(&reason, &actor)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^requeued by console:[A-Za-z0-9_-]{8} \(balance topped up\)$`).MatchString(reason) ||
			!regexp.MustCompile(`^console:[A-Za-z0-9_-]{8}$`).MatchString(actor) {
			t.Fatalf("event reason %q, actor %q: they do not say who and why", reason, actor)
		}
		page := h.do(cl, "GET", "/console/deposits/"+id+"?done=retry", nil)
		if !strings.Contains(page.body, "Retry requested") || !strings.Contains(page.body, "balance topped up") {
			t.Fatal("the deposit page does not show the retry and its event")
		}
	})
}

// TestBadInput: every malformed parameter is refused with a clear status,
// never passed to the database as is, never a 500.
func TestBadInput(t *testing.T) {
	h := newHarness(t, nil)
	failed := h.deposit("dep-bad-failed", "USDC", "3", []byte(`{}`))
	h.setSweep(failed, "failed")
	done := h.deposit("dep-bad-done", "USDC", "4", []byte(`{}`))
	h.setSweep(done, "succeeded")
	cl, csrf := h.signIn()
	long := strings.Repeat("x", 3000)
	post := func(note string) url.Values { return url.Values{"csrf": {csrf}, "note": {note}} }
	for _, c := range []struct {
		name, method, path string
		form               url.Values
		status             int
	}{
		{"unknown status", "GET", "/console/?status=bogus", nil, 400},
		{"status with markup", "GET", "/console/?status=%3Cb%3E", nil, 400},
		{"long currency", "GET", "/console/?currency=" + strings.Repeat("A", 17), nil, 400},
		{"control character in user", "GET", "/console/?user=a%00b", nil, 400},
		{"long user", "GET", "/console/?user=" + strings.Repeat("u", 201), nil, 400},
		{"huge query", "GET", "/console/?after=" + long, nil, 400},
		{"unknown cursor is an empty page", "GET", "/console/?after=nope", nil, 200},
		{"known filters", "GET", "/console/?status=failed&currency=usdc&user=someone", nil, 200},
		{"long deposit id", "GET", "/console/deposits/" + strings.Repeat("d", 201), nil, 400},
		{"unknown deposit", "GET", "/console/deposits/nope", nil, 404},
		{"withdrawal id not a uuid", "GET", "/console/withdrawals/nope", nil, 400},
		{"unknown withdrawal", "GET", "/console/withdrawals/6f1c9d2e-2b8a-4c55-9a43-0c4bde2f6d10", nil, 404},
		{"unknown withdrawal status", "GET", "/console/withdrawals?status=bogus", nil, 400},
		{"withdrawal cursor not a uuid", "GET", "/console/withdrawals?after=bogus", nil, 400},
		{"bad date", "GET", "/console/reconciliation?from=yesterday", nil, 400},
		{"period backwards", "GET", "/console/reconciliation?from=2026-02-01&to=2026-01-01", nil, 400},
		{"year zero", "GET", "/console/reconciliation?from=0000-01-01", nil, 400},
		{"unknown page", "GET", "/console/nope", nil, 404},
		{"retry without a note", "POST", "/console/deposits/" + failed + "/retry", post(" "), 400},
		{"retry with a huge note", "POST", "/console/deposits/" + failed + "/retry", post(strings.Repeat("n", 1001)), 400},
		{"form body over 16 KiB", "POST", "/console/deposits/" + failed + "/retry", post(strings.Repeat("n", 20000)), 413},
		{"retry of a succeeded sweep", "POST", "/console/deposits/" + done + "/retry", post("why not"), 409},
		{"retry of an unknown deposit", "POST", "/console/deposits/nope/retry", post("why not"), 404},
		{"release not offered", "POST", "/console/deposits/" + failed + "/release", post("why not"), 404},
		{"unknown action", "POST", "/console/deposits/" + failed + "/delete", post("why not"), 404},
		{"GET on an action", "GET", "/console/deposits/" + failed + "/retry", nil, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := h.do(cl, c.method, c.path, c.form)
			if a.status != c.status {
				t.Fatalf("%s %s: %d, want %d\n%s", c.method, c.path, a.status, c.status, a.body)
			}
			if strings.Contains(a.body, "<b>") || strings.Contains(a.body, long) {
				t.Fatal("the answer echoes the input unescaped or whole")
			}
		})
	}
	if st := h.sweepStatus(failed); st != "failed" {
		t.Fatalf("a refused request changed the sweep to %s", st)
	}
}

// TestDepositPage: one deposit's whole story, the delivery byte for byte but
// escaped, and each action offered only when the app provides it and the
// state fits.
func TestDepositPage(t *testing.T) {
	var released, resolved []string
	h := newHarness(t, func(s *store.Store) console.Actions {
		return console.Actions{
			Retry: func(ctx context.Context, id, actor, note string) error {
				return s.RequeueSweep(ctx, id, store.Actor{Who: actor, Note: note})
			},
			Release: func(_ context.Context, id, actor, note string) (string, error) {
				released = append(released, id+"|"+note)
				return "refused", nil
			},
			Resolve: func(_ context.Context, id string, r console.Resolution) error {
				if r.CreditedAmount == nil {
					return errors.New("Interlace did not answer <in time>")
				}
				resolved = append(resolved, id+"|"+r.Outcome+"|"+r.CreditedAmount.String()+"|"+r.Note)
				return nil
			},
		}
	})
	body := []byte("{\"resource\":\"<script>alert(1)</script>\",\"x\":\"\u00e9\"}")
	id := h.deposit("dep-story", "USDT", "250.000001", body)
	binary := h.deposit("dep-binary", "USDC", "1", []byte{0xff, 0xfe, '<', 'b', '>'})
	held := h.deposit("dep-held", "USDC", "2", []byte(`{}`))
	h.setSweep(held, "held")
	unresolved := h.deposit("dep-unresolved", "USDC", "3", []byte(`{}`))
	h.setSweep(unresolved, "unresolved")
	cl, csrf := h.signIn()

	page := h.do(cl, "GET", "/console/deposits/"+id, nil)
	if page.status != 200 {
		t.Fatalf("status %d", page.status)
	}
	for _, want := range []string{"250.000001 USDT", "&lt;script&gt;alert(1)&lt;/script&gt;", "\u00e9", "first notification",
		"deposit final", "n-dep-story", ids.SweepTransactionID(id).String(), "current secret"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("deposit page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "<script>") {
		t.Error("the delivery body is not escaped")
	}
	if strings.Contains(page.body, "/retry") || strings.Contains(page.body, "/release") || strings.Contains(page.body, "/resolve") {
		t.Error("a pending sweep offers an action")
	}
	bin := h.do(cl, "GET", "/console/deposits/"+binary, nil)
	if !strings.Contains(bin.body, "not UTF-8") || !strings.Contains(bin.body, "ff fe 3c 62 3e") || strings.Contains(bin.body, "<b>") {
		t.Error("a non-UTF-8 body is not shown as hex")
	}

	hp := h.do(cl, "GET", "/console/deposits/"+held, nil)
	if !strings.Contains(hp.body, "/console/deposits/"+held+"/release") || strings.Contains(hp.body, "/retry\"") {
		t.Error("a held deposit does not offer release alone")
	}
	a := h.do(cl, "POST", "/console/deposits/"+held+"/release", url.Values{"csrf": {csrf}, "note": {"Interlace agrees now"}})
	if a.status != 303 || a.header.Get("Location") != "/console/deposits/"+held+"?done=release-refused" {
		t.Fatalf("release: %d to %s", a.status, a.header.Get("Location"))
	}
	if p := h.do(cl, "GET", a.header.Get("Location"), nil); !strings.Contains(p.body, "Not released") {
		t.Error("the refused release is not told")
	}
	if p := h.do(cl, "GET", "/console/deposits/"+held+"?done=release-%3Cb%3E", nil); strings.Contains(p.body, `class="flash"`) {
		t.Error("an unknown outcome with markup is repeated")
	}
	if len(released) != 1 || released[0] != held+"|Interlace agrees now" {
		t.Fatalf("release calls %v", released)
	}

	up := h.do(cl, "GET", "/console/deposits/"+unresolved, nil)
	if !strings.Contains(up.body, "/console/deposits/"+unresolved+"/resolve") {
		t.Error("an unresolved deposit does not offer resolve")
	}
	for _, c := range []struct {
		form   url.Values
		status int
	}{
		{url.Values{"outcome": {"maybe"}, "note": {"n"}}, 400},
		{url.Values{"outcome": {"succeeded"}, "creditedAmount": {"-1"}, "note": {"n"}}, 400},
		{url.Values{"outcome": {"succeeded"}, "creditedAmount": {"1e3"}, "note": {"n"}}, 400},
		{url.Values{"outcome": {"failed"}, "creditedAmount": {"1"}, "creditedCurrency": {"USD"}, "note": {"n"}}, 400},
		{url.Values{"outcome": {"succeeded"}, "creditedAmount": {"1"}, "note": {"n"}}, 400},
		{url.Values{"outcome": {"succeeded"}, "interlaceTransferId": {"a b"}, "note": {"n"}}, 400},
		{url.Values{"outcome": {"succeeded"}, "creditedAmount": {"1"}, "creditedCurrency": {"U$D"}, "note": {"n"}}, 400},
		{url.Values{"outcome": {"failed"}, "note": {"n"}}, 502},
		{url.Values{"outcome": {"succeeded"}, "creditedAmount": {"2.99"}, "creditedCurrency": {"usd"}, "note": {"statement line 7"}}, 303},
	} {
		c.form.Set("csrf", csrf)
		if a := h.do(cl, "POST", "/console/deposits/"+unresolved+"/resolve", c.form); a.status != c.status {
			t.Errorf("resolve %v: %d, want %d", c.form, a.status, c.status)
		}
	}
	if a := h.do(cl, "POST", "/console/deposits/"+unresolved+"/resolve", url.Values{"csrf": {csrf}, "outcome": {"failed"}, "note": {"n"}}); !strings.Contains(a.body, "Interlace did not answer &lt;in time&gt;") {
		t.Error("a failed action does not say why (escaped)")
	}
	if len(resolved) != 1 || resolved[0] != unresolved+"|succeeded|2.99|statement line 7" {
		t.Fatalf("resolve calls %v", resolved)
	}

	// The list puts what needs attention first, and the filters narrow it.
	list := h.do(cl, "GET", "/console/", nil)
	att := strings.Index(list.body, "Needs attention")
	all := strings.Index(list.body, "All deposits")
	if att < 0 || all < att || !strings.Contains(list.body[att:all], held) || !strings.Contains(list.body[att:all], unresolved) ||
		strings.Contains(list.body[att:all], id) {
		t.Error("held and unresolved deposits are not listed first, apart")
	}
	f := h.do(cl, "GET", "/console/?currency=usdt", nil)
	if !strings.Contains(f.body, id) || strings.Contains(f.body, held) {
		t.Error("the currency filter does not narrow the list")
	}

	if _, err := h.pool.Exec(context.Background(), `INSERT INTO wallets (id, user_ref, reference_id, account_id)
VALUES ('wallet-1', 'alice', gen_random_uuid(), 'acc')`); err != nil {
		t.Fatal(err)
	}
	if u := h.do(cl, "GET", "/console/?user=alice&status=held", nil); !strings.Contains(u.body, held) || strings.Contains(u.body, id) {
		t.Error("the user and status filters do not narrow the list")
	}
	if u := h.do(cl, "GET", "/console/?user=bob", nil); u.status != 200 || strings.Contains(u.body, held) {
		t.Error("an unknown user shows deposits")
	}

	rec := h.do(cl, "GET", "/console/reconciliation", nil)
	if rec.status != 200 || !strings.Contains(rec.body, "250.000001") || !strings.Contains(rec.body, "balances") {
		t.Errorf("reconciliation: %d", rec.status)
	}
	if w := h.do(cl, "GET", "/console/withdrawals", nil); w.status != 200 || !strings.Contains(w.body, "No withdrawals") {
		t.Errorf("withdrawals: %d", w.status)
	}
}

// TestWithdrawalPages: the withdrawals list (with its keyset pages) and one
// withdrawal with its events.
func TestWithdrawalPages(t *testing.T) {
	h := newHarness(t, nil)
	var ids []uuid.UUID
	for i := range 53 {
		id := uuid.New()
		ids = append(ids, id)
		_, _, err := h.store.CreateWithdrawal(context.Background(), store.WithdrawalInput{
			ID: id, IdempotencyKey: id.String(), AccountID: "acc", WalletID: "acc", SourceCurrency: "USD",
			Amount: decimal.New(int64(100+i), 0), Currency: "USDC", Chain: "ETH",
			Address: "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2", MaxFeeRate: decimal.RequireFromString("0.02"),
			FundRequestID: uuid.New(), TradeRequestID: uuid.New(), TransferRequestID: uuid.New(),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cl, _ := h.signIn()
	first := h.do(cl, "GET", "/console/withdrawals", nil)
	next := regexp.MustCompile(`href="(/console/withdrawals\?after=[^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if first.status != 200 || next == nil || strings.Count(first.body, `href="/console/withdrawals/`) != 50 {
		t.Fatalf("first page: %d, next %v, %d rows", first.status, next, strings.Count(first.body, `href="/console/withdrawals/`))
	}
	second := h.do(cl, "GET", strings.ReplaceAll(next[1], "&amp;", "&"), nil)
	if n := strings.Count(second.body, `href="/console/withdrawals/`); second.status != 200 || n != 3 || strings.Contains(second.body, `rel="next"`) {
		t.Fatalf("second page: %d with %d rows", second.status, n)
	}
	one := h.do(cl, "GET", "/console/withdrawals/"+ids[0].String(), nil)
	if one.status != 200 || !strings.Contains(one.body, "100 USDC on ETH") || !strings.Contains(one.body, "0xd8b5f8e714d70e5cff389c5c2bf51d27e61c92c2") {
		t.Fatalf("one withdrawal: %d", one.status)
	}
	if f := h.do(cl, "GET", "/console/withdrawals?status=completed", nil); !strings.Contains(f.body, "No withdrawals") {
		t.Error("the status filter does not narrow the withdrawals")
	}
}
