package operator

import (
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"github.com/go-chi/chi/v5"
	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// ActorHeader names who acts through the operator API (the admin token is
// shared, so the caller says who they are); it is kept with each manual change.
const ActorHeader = "X-Operator"

// defaultActor is recorded when no ActorHeader is sent.
const defaultActor = "admin-token"

var (
	amountGrammar   = regexp.MustCompile(`^[0-9]{1,30}(\.[0-9]{1,30})?$`)
	currencyGrammar = regexp.MustCompile(`^[A-Z0-9]{2,10}$`)
)

// resolveRequest is the body of POST /v1/deposits/{id}/resolve (contract §11).
type resolveRequest struct {
	Outcome             string  `json:"outcome"`
	Note                string  `json:"note"`
	InterlaceTransferID *string `json:"interlaceTransferId"`
	CreditedAmount      *string `json:"creditedAmount"`
	CreditedCurrency    *string `json:"creditedCurrency"`
}

// resolveRoutes serves POST /deposits/{id}/resolve: an operator closes an
// unresolved sweep, with the evidence in a note kept in the sweep's events.
func resolveRoutes(r chi.Router, d Deps) {
	r.Post("/deposits/{id}/resolve", func(w http.ResponseWriter, r *http.Request) {
		var req resolveRequest
		if err := DecodeJSON(w, r, &req); err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		res, err := req.resolution(r.Header.Get(ActorHeader))
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		id := chi.URLParam(r, "id")
		if err := d.Store.ResolveSweep(r.Context(), id, res); err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		row, err := d.Store.Ledger(r.Context(), id)
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		WriteJSON(w, http.StatusOK, row)
	})
}

func invalid(msg string) error { return Errorf(http.StatusUnprocessableEntity, "invalid", msg) }

// resolution validates the request completely before anything is written.
func (q resolveRequest) resolution(actor string) (store.Resolution, error) {
	res := store.Resolution{Outcome: q.Outcome, Note: strings.TrimSpace(q.Note), Actor: strings.TrimSpace(actor)}
	if res.Actor == "" {
		res.Actor = defaultActor
	}
	if len(res.Actor) > 64 || !visible(res.Actor) {
		return res, invalid(ActorHeader + " must be at most 64 printable characters")
	}
	if q.Outcome != status.SweepSucceeded && q.Outcome != status.SweepFailed {
		return res, invalid(`outcome must be "succeeded" or "failed"`)
	}
	if res.Note == "" || len(res.Note) > 2000 || !visible(res.Note) {
		return res, invalid("note is required: the evidence (at most 2000 printable characters)")
	}
	if q.Outcome == status.SweepFailed {
		if q.InterlaceTransferID != nil || q.CreditedAmount != nil || q.CreditedCurrency != nil {
			return res, invalid("a failed sweep credited nothing: leave out interlaceTransferId, creditedAmount and creditedCurrency")
		}
		return res, nil
	}
	if q.InterlaceTransferID != nil {
		id := *q.InterlaceTransferID
		if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return res, invalid("interlaceTransferId must be 1-128 visible ASCII characters")
		}
		res.InterlaceTransferID = id
	}
	if (q.CreditedAmount == nil) != (q.CreditedCurrency == nil) {
		return res, invalid("creditedAmount and creditedCurrency go together")
	}
	if q.CreditedAmount != nil {
		if !amountGrammar.MatchString(*q.CreditedAmount) {
			return res, invalid(`creditedAmount must be a decimal string such as "9.95"`)
		}
		amount := decimal.RequireFromString(*q.CreditedAmount)
		if !amount.IsPositive() {
			return res, invalid("creditedAmount must be positive")
		}
		if !currencyGrammar.MatchString(*q.CreditedCurrency) {
			return res, invalid("creditedCurrency must be an upper-case currency code such as USD")
		}
		res.CreditedAmount, res.CreditedCurrency = &amount, *q.CreditedCurrency
	}
	return res, nil
}

func visible(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' })
}
