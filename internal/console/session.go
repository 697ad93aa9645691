package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sessions are stateless: the cookie carries a random session id and an expiry,
// signed with HMAC-SHA256 under a key derived from SWEEPER_ADMIN_TOKEN. Any
// replica holding the same token accepts it (sweeper runs several behind one
// Service, with no sticky sessions), nothing is stored, and rotating the token
// ends every session at once. The cookie never contains the token, and the key
// is not the token itself but HMAC(token, a fixed label), so a leaked cookie
// gives nothing to try offline but the MAC. The price of statelessness: signing
// out deletes the cookie, but a copy taken before stays valid until it
// expires (SessionTTL); rotate the token to end it sooner.
//
// CSRF tokens are HMAC(key, "csrf." + session id): bound to the session, the
// same on every replica, never stored. Before sign-in, a short-lived random
// cookie plays the session's part, so the sign-in form is protected the same
// way.

const (
	sessionCookie = "sweeper_console"
	loginCookie   = "sweeper_console_login"
	cookiePath    = "/console"
	loginTTL      = time.Hour
)

type sessions struct {
	key   []byte
	token [sha256.Size]byte // sha256 of the admin token, for the sign-in compare
	ttl   time.Duration
	now   func() time.Time
}

func newSessions(adminToken string, ttl time.Duration, now func() time.Time) *sessions {
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("sweeper console session key v1"))
	return &sessions{key: m.Sum(nil), token: sha256.Sum256([]byte(adminToken)), ttl: ttl, now: now}
}

// session is a signed-in operator.
type session struct {
	id      string
	expires time.Time
}

// actor names who acted in events: a prefix of the session id, enough to tell
// sessions apart in an audit, never enough to forge one.
func (s session) actor() string { return "console:" + s.id[:8] }

func (m *sessions) mac(parts ...string) string {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte(strings.Join(parts, ".")))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// checkToken compares a sign-in attempt with the admin token in constant time
// (both hashed first, so neither length nor content leaks through timing).
func (m *sessions) checkToken(got string) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], m.token[:]) == 1
}

func randomID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// issue starts a session and returns its cookie.
func (m *sessions) issue(r *http.Request) (*http.Cookie, session) {
	s := session{id: randomID(), expires: m.now().Add(m.ttl).Truncate(time.Second)}
	exp := strconv.FormatInt(s.expires.Unix(), 10)
	value := "v1." + s.id + "." + exp + "." + m.mac("v1", s.id, exp)
	return m.cookie(r, sessionCookie, value, s.expires), s
}

// current returns the request's session, if it carries a valid, unexpired one.
func (m *sessions) current(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 256 {
		return session{}, false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 || parts[0] != "v1" || len(parts[1]) < 16 {
		return session{}, false
	}
	if !hmac.Equal([]byte(parts[3]), []byte(m.mac("v1", parts[1], parts[2]))) {
		return session{}, false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !m.now().Before(time.Unix(exp, 0)) {
		return session{}, false
	}
	return session{id: parts[1], expires: time.Unix(exp, 0)}, true
}

// csrf is the token every state-changing form of this session carries.
func (m *sessions) csrf(s session) string { return m.mac("csrf", s.id) }

// validCSRF checks a form's token against the session's.
func (m *sessions) validCSRF(s session, got string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(m.csrf(s)))
}

// loginNonce returns the request's pre-sign-in nonce, or a new one with the
// cookie that carries it.
func (m *sessions) loginNonce(r *http.Request) (string, *http.Cookie) {
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 24 {
		return c.Value, nil
	}
	n := randomID()
	return n, m.cookie(r, loginCookie, n, m.now().Add(loginTTL))
}

// loginCSRF is the sign-in form's token for a nonce.
func (m *sessions) loginCSRF(nonce string) string { return m.mac("login", nonce) }

func (m *sessions) validLoginCSRF(r *http.Request, got string) bool {
	c, err := r.Cookie(loginCookie)
	return err == nil && got != "" && hmac.Equal([]byte(got), []byte(m.loginCSRF(c.Value)))
}

// cookie builds a console cookie: HttpOnly (no script reads it), SameSite=Strict
// (no other site's page sends it), Path=/console (the rest of the service never
// sees it), Secure when the request came over HTTPS (directly or through a
// proxy that says so; the attribute only restricts our own cookie).
func (m *sessions) cookie(r *http.Request, name, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: cookiePath, Expires: expires.UTC(),
		MaxAge:   int(expires.Sub(m.now()).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	}
}

// clear deletes a console cookie.
func (m *sessions) clear(r *http.Request, name string) *http.Cookie {
	c := m.cookie(r, name, "", time.Unix(0, 0))
	c.MaxAge = -1
	return c
}
