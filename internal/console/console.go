// Package console serves the operator console under /console/ (contract §13):
// server-rendered pages (html/template, one embedded stylesheet, no script),
// signed in with the admin token, that show what came in, what is stuck and
// why, one deposit's whole story, withdrawals and the reconciliation, and offer
// the operator actions as plain forms. It reads through package store and acts
// only through the Actions the application gives it: the rules of an action
// live with the action, not here.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/sweeperhq/sweeper/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Actions are the operator actions the console offers on a deposit's page. A
// nil action is not offered (its button is not rendered and its route answers
// 404). actor names who acts ("console:<session prefix>"), note says why; the
// action records both in the event it writes.
type Actions struct {
	// Retry requeues a failed (or skipped) sweep under the same clientTransactionId.
	Retry func(ctx context.Context, depositID, actor, note string) error
	// RetryStates are the sweep states Retry accepts, so the button shows only
	// there. Default: failed (requeue); the deposit-truth retry adds skipped.
	RetryStates []string
	// Release re-reads a held deposit from Interlace and sweeps it if it agrees;
	// the outcome (e.g. released, refused, not_held) is shown to the operator.
	Release func(ctx context.Context, depositID, actor, note string) (outcome string, err error)
	// Resolve closes an unresolved sweep with the operator's evidence.
	Resolve func(ctx context.Context, depositID string, r Resolution) error
}

// Resolution is the evidence an operator gives to close an unresolved sweep
// (the fields of POST /v1/deposits/{id}/resolve; the same shape as
// store.Resolution, so the app converts one into the other).
type Resolution struct {
	Outcome             string // succeeded | failed
	Note                string
	Actor               string
	InterlaceTransferID string           // optional
	CreditedAmount      *decimal.Decimal // optional
	CreditedCurrency    string           // optional
}

// Deps are what the console works with.
type Deps struct {
	Store   *store.Store
	Logger  *zap.Logger
	Actions Actions
	// Token is SWEEPER_ADMIN_TOKEN: the sign-in password and the root of the
	// session key. The console is off without it (New refuses an empty one).
	Token string
	// SessionTTL is how long a sign-in lasts. Default 8h (a working day):
	// shorter means signing in more often, longer means a copied cookie stays
	// usable longer (sessions are stateless; see session.go).
	SessionTTL time.Duration
	// Now is the clock (tests move it). Default time.Now.
	Now func() time.Time
}

// New returns the console's handler. It serves full paths under /console/, so
// it is mounted as is (no prefix stripping).
func New(d Deps) (http.Handler, error) {
	if d.Token == "" {
		return nil, errors.New("console: no admin token: the console is off without SWEEPER_ADMIN_TOKEN")
	}
	if d.Store == nil {
		return nil, errors.New("console: no store")
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.SessionTTL <= 0 {
		d.SessionTTL = 8 * time.Hour
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static: %w", err)
	}
	c := &console{d: d, sessions: newSessions(d.Token, d.SessionTTL, d.Now), pages: pages}

	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", staticHandler(static)))
	mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("POST /console/login", c.login)
	mux.HandleFunc("GET /console/{$}", c.page(c.deposits))
	mux.HandleFunc("GET /console/deposits/{id}", c.page(c.deposit))
	mux.HandleFunc("GET /console/withdrawals", c.page(c.withdrawals))
	mux.HandleFunc("GET /console/withdrawals/{id}", c.page(c.withdrawal))
	mux.HandleFunc("GET /console/reconciliation", c.page(c.reconciliation))
	mux.HandleFunc("POST /console/logout", c.form(c.logout))
	mux.HandleFunc("POST /console/deposits/{id}/{action}", c.form(c.act))
	mux.HandleFunc("/console/", c.page(func(w http.ResponseWriter, r *http.Request, v *view) error {
		return errNotFound
	}))
	return securityHeaders(mux), nil
}

type console struct {
	d        Deps
	sessions *sessions
	pages    map[string]*template.Template
}

// securityHeaders: nothing but our own stylesheet loads, no script runs, no
// other site may frame the console or submit its forms elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func staticHandler(static fs.FS) http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Embedded files change only with the binary.
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}
