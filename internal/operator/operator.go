// Package operator serves the operator API under /v1/ (contract §3): bearer-token
// auth, JSON in and out, one error shape, invalid input refused before any
// upstream call.
package operator

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	sts "github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/withdraw"
)

// Error is the operator API's one application error; Code maps to an HTTP status.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// WriteError writes any error in the contract's shape; unknown errors become 500
// without leaking their text.
func WriteError(w http.ResponseWriter, log *zap.Logger, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, store.ErrNotFound):
		e = Errorf(http.StatusNotFound, "not_found", "no such resource")
	case errors.Is(err, store.ErrInvalidState):
		e = Errorf(http.StatusConflict, "invalid_state", err.Error())
	case errors.Is(err, store.ErrConflict):
		e = Errorf(http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, store.ErrUnavailable):
		e = Errorf(http.StatusServiceUnavailable, "unavailable", "database unavailable")
	default:
		log.Error("operator request failed", zap.Error(err))
		e = Errorf(http.StatusInternalServerError, "internal", "internal error")
	}
	WriteJSON(w, e.Status, map[string]any{"error": e})
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// DecodeJSON reads a bounded JSON body strictly (unknown fields are errors).
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "bad_request", "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "bad_request", "one JSON object expected")
	}
	return nil
}

// RequireToken guards the API with `Authorization: Bearer <token>`. Both sides are
// hashed first so the comparison takes the same time whatever the length or
// content of the guess.
func RequireToken(token string, log *zap.Logger) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(got))
			if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok || token == "" {
				WriteError(w, log, Errorf(http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Deps are what the operator API works with.
type Deps struct {
	Store  *store.Store
	Logger *zap.Logger
	Token  string
	// Payouts serves /v1/wallets and /v1/withdrawals; nil leaves them out.
	Payouts *withdraw.Service
	// Wake, when set, starts a requeued withdrawal at once (the in-process runner).
	Wake func()
	// Deposits re-reads Interlace for release and re-asks the configuration for
	// retry (*poll.Reader); nil leaves retry on failed sweeps only and no release.
	Deposits DepositActions
}

// DepositActions are the operator's actions on a deposit (contract §9); the
// console calls the same ones.
type DepositActions interface {
	Release(ctx context.Context, depositID string, by store.Actor) (string, error)
	Retry(ctx context.Context, depositID string, by store.Actor) error
}

// Routes returns the /v1 router.
func Routes(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(RequireToken(d.Token, d.Logger))
	if d.Payouts != nil {
		walletRoutes(r, d)
		withdrawalRoutes(r, d)
	}
	r.Get("/deposits", func(w http.ResponseWriter, r *http.Request) {
		status := r.URL.Query().Get("status")
		switch status {
		case "", sts.SweepWaiting, sts.SweepPending, sts.SweepInFlight, sts.SweepSucceeded, sts.SweepFailed,
			sts.SweepSkipped, sts.SweepHeld, sts.SweepUnresolved:
		default:
			WriteError(w, d.Logger, Errorf(http.StatusBadRequest, "bad_request", "unknown status "+status))
			return
		}
		rows, err := d.Store.ListLedger(r.Context(), store.LedgerFilter{SweepStatus: status, After: r.URL.Query().Get("after")})
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		if rows == nil {
			rows = []store.LedgerRow{}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"deposits": rows})
	})
	r.Get("/deposits/{id}", func(w http.ResponseWriter, r *http.Request) {
		row, err := d.Store.Ledger(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		WriteJSON(w, http.StatusOK, row)
	})
	resolveRoutes(r, d)
	r.Post("/deposits/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		by, err := actor(w, r)
		if err == nil {
			if d.Deposits != nil {
				err = d.Deposits.Retry(r.Context(), id, by)
			} else {
				err = d.Store.RequeueSweep(r.Context(), id, by)
			}
		}
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		d.Logger.Info("deposit retried", zap.String("deposit_id", id), zap.String("by", by.String()))
		row, err := d.Store.Ledger(r.Context(), id)
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		WriteJSON(w, http.StatusAccepted, row)
	})
	r.Post("/deposits/{id}/release", func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if d.Deposits == nil {
			WriteError(w, d.Logger, Errorf(http.StatusNotImplemented, "not_available", "release needs the Interlace client"))
			return
		}
		by, err := actor(w, r)
		var outcome string
		if err == nil {
			outcome, err = d.Deposits.Release(r.Context(), id, by)
		}
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) && !errors.As(err, new(*Error)) && !errors.Is(err, store.ErrUnavailable) {
				// Reading Interlace failed: nothing changed; the operator may try again.
				WriteError(w, d.Logger, Errorf(http.StatusBadGateway, "upstream", jsonSafe(err.Error())))
				return
			}
			WriteError(w, d.Logger, err)
			return
		}
		d.Logger.Info("deposit release", zap.String("deposit_id", id), zap.String("by", by.String()), zap.String("outcome", outcome))
		row, err := d.Store.Ledger(r.Context(), id)
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"outcome": outcome, "deposit": row})
	})
	return r
}

// actionBody is the optional body of an operator action: who asks and why, kept
// in the deposit's events.
type actionBody struct {
	Actor string `json:"actor"`
	Note  string `json:"note"`
}

func actor(w http.ResponseWriter, r *http.Request) (store.Actor, error) {
	var b actionBody
	if r.ContentLength != 0 {
		if err := DecodeJSON(w, r, &b); err != nil {
			return store.Actor{}, err
		}
	}
	if len(b.Actor) > 128 || len(b.Note) > 1024 {
		return store.Actor{}, Errorf(http.StatusUnprocessableEntity, "invalid", "actor (128) or note (1024) too long")
	}
	if b.Actor == "" {
		b.Actor = "operator API"
	}
	return store.Actor{Who: b.Actor, Note: b.Note}, nil
}

func jsonSafe(s string) string {
	if len(s) > 300 {
		s = s[:300]
	}
	return strings.ToValidUTF8(s, "?")
}
