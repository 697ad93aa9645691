package console

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/store"
)

// view is what every page template gets.
type view struct {
	Title  string
	Nav    string // the navigation entry to mark as current
	CSRF   string
	Actor  string
	Flash  string
	Status int
	Data   any
}

// httpError is an answer other than 200 with a message for the operator.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var errNotFound = &httpError{http.StatusNotFound, "There is nothing here."}

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

// maxQuery bounds a page's query string: every filter together fits in far less.
const maxQuery = 2048

// page wraps a GET page: without a session it shows only the sign-in form.
func (c *console) page(h func(http.ResponseWriter, *http.Request, *view) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s, ok := c.sessions.current(r)
		if !ok {
			status := http.StatusUnauthorized
			if r.URL.Path == "/console/" {
				status = http.StatusOK
			}
			c.signIn(w, r, status, "", r.URL.RequestURI())
			return
		}
		v := &view{CSRF: c.sessions.csrf(s), Actor: s.actor(), Status: http.StatusOK}
		var err error
		if len(r.URL.RawQuery) > maxQuery {
			err = badRequest("The address is too long.")
		} else {
			err = h(w, r, v)
		}
		if err != nil {
			c.fail(w, r, v, err)
		}
	}
}

// form wraps a state-changing POST: a session and its CSRF token are required
// (403 otherwise), and the body is small.
func (c *console) form(h func(http.ResponseWriter, *http.Request, *view) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !c.parseForm(w, r) {
			return
		}
		s, ok := c.sessions.current(r)
		if !ok || !c.sessions.validCSRF(s, r.PostForm.Get("csrf")) {
			c.forbidden(w, r, "This form is not valid any more (signed out, expired, or not sent by the console). Reload the page and try again.")
			return
		}
		v := &view{CSRF: c.sessions.csrf(s), Actor: s.actor(), Status: http.StatusOK}
		if err := h(w, r, v); err != nil {
			c.fail(w, r, v, err)
		}
	}
}

// parseForm reads a bounded form body; a request another site's page made is
// refused before anything else (browsers say so in Sec-Fetch-Site).
func (c *console) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		c.forbidden(w, r, "Forms of the console can only be sent from the console.")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.plain(w, http.StatusRequestEntityTooLarge, "The form is too large.")
			return false
		}
		c.plain(w, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	return true
}

func (c *console) forbidden(w http.ResponseWriter, r *http.Request, msg string) {
	if s, ok := c.sessions.current(r); ok {
		c.render(w, "error", &view{Title: "Forbidden", Status: http.StatusForbidden, CSRF: c.sessions.csrf(s),
			Actor: s.actor(), Data: msg})
		return
	}
	c.signIn(w, r, http.StatusForbidden, msg, "")
}

// fail renders an error page; unknown errors are logged and shown without
// their text.
func (c *console) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, store.ErrNotFound):
		he = errNotFound
	case errors.Is(err, store.ErrInvalidState):
		he = &httpError{http.StatusConflict, "This action does not fit the deposit's current state: " + err.Error()}
	case errors.Is(err, store.ErrInvalidInput):
		he = &httpError{http.StatusBadRequest, err.Error()}
	case errors.Is(err, store.ErrUnavailable):
		he = &httpError{http.StatusServiceUnavailable, "The database is not answering; try again shortly."}
	default:
		c.d.Logger.Error("console request failed", zap.String("path", r.URL.Path), zap.Error(err))
		he = &httpError{http.StatusInternalServerError, "Something went wrong; the service log has the details."}
	}
	v.Title, v.Status, v.Data = http.StatusText(he.status), he.status, he.msg
	c.render(w, "error", v)
}

// render executes a page into a buffer first, so a template error is a clean
// 500, never half a page.
func (c *console) render(w http.ResponseWriter, name string, v *view) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.d.Logger.Error("console template", zap.String("page", name), zap.Error(err))
		c.plain(w, http.StatusInternalServerError, "The page could not be rendered.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(v.Status)
	_, _ = w.Write(buf.Bytes())
}

func (c *console) plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

// signInData is the sign-in form's.
type signInData struct {
	Message string
	Next    string
}

// signIn shows the sign-in form, and nothing else.
func (c *console) signIn(w http.ResponseWriter, r *http.Request, status int, msg, next string) {
	nonce, cookie := c.sessions.loginNonce(r)
	if cookie != nil {
		http.SetCookie(w, cookie)
	}
	c.render(w, "signin", &view{Title: "Sign in", Status: status, CSRF: c.sessions.loginCSRF(nonce),
		Data: signInData{Message: msg, Next: safeNext(next)}})
}

// safeNext keeps a post-sign-in destination only when it is a console page of
// this site (never another host: no open redirect).
func safeNext(next string) string {
	if len(next) > 1024 || !strings.HasPrefix(next, "/console/") || strings.ContainsAny(next, "\\\r\n") ||
		strings.Contains(next, "//") {
		return ""
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return ""
	}
	return next
}

// login checks the admin token and starts a session.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !c.parseForm(w, r) {
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !c.sessions.validLoginCSRF(r, r.PostForm.Get("csrf")) {
		c.signIn(w, r, http.StatusForbidden, "The sign-in form expired or did not come from the console. Try again.", next)
		return
	}
	if !c.sessions.checkToken(r.PostForm.Get("token")) {
		c.d.Logger.Warn("console sign-in refused", zap.String("remote", r.RemoteAddr))
		c.signIn(w, r, http.StatusUnauthorized, "That is not the admin token.", next)
		return
	}
	cookie, s := c.sessions.issue(r)
	http.SetCookie(w, cookie)
	http.SetCookie(w, c.sessions.clear(r, loginCookie))
	c.d.Logger.Info("console sign-in", zap.String("actor", s.actor()), zap.String("remote", r.RemoteAddr))
	if next == "" {
		next = "/console/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request, v *view) error {
	http.SetCookie(w, c.sessions.clear(r, sessionCookie))
	c.d.Logger.Info("console sign-out", zap.String("actor", v.Actor))
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
	return nil
}
