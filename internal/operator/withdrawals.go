package operator

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/withdraw"
)

// withdrawalRoutes serves redemption (contract §3, §8):
//
//	POST /v1/withdrawals              202 {"id","status"}; the same id for a repeated idempotencyKey
//	GET  /v1/withdrawals?status=&after=&limit=
//	GET  /v1/withdrawals/{id}         every step with its amounts and fees, events, on-chain status
//	POST /v1/withdrawals/{id}/retry   requeue a failed or stopped withdrawal at its step, same request ids
func withdrawalRoutes(r chi.Router, d Deps) {
	r.Post("/withdrawals", func(w http.ResponseWriter, r *http.Request) {
		var req withdraw.WithdrawalRequest
		if err := DecodeJSON(w, r, &req); err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		wd, _, err := d.Payouts.CreateWithdrawal(r.Context(), req)
		if err != nil {
			WriteError(w, d.Logger, payoutError(err))
			return
		}
		w.Header().Set("Location", "/v1/withdrawals/"+wd.ID.String())
		WriteJSON(w, http.StatusAccepted, map[string]any{"id": wd.ID, "status": wd.Status})
	})
	r.Get("/withdrawals", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		status := q.Get("status")
		switch status {
		case "", store.WithdrawalPending, store.WithdrawalRunning, store.WithdrawalCompleted, store.WithdrawalFailed,
			store.WithdrawalStopped, store.WithdrawalUnresolved:
		default:
			WriteError(w, d.Logger, Errorf(http.StatusBadRequest, "bad_request", "unknown status "+status))
			return
		}
		limit, err := limitParam(q.Get("limit"))
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		ws, err := d.Store.ListWithdrawals(r.Context(), store.WithdrawalFilter{Status: status, After: q.Get("after"), Limit: limit})
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		if ws == nil {
			ws = []store.Withdrawal{}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"withdrawals": ws})
	})
	r.Get("/withdrawals/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := withdrawalID(w, r, d)
		if !ok {
			return
		}
		wd, err := d.Store.Withdrawal(r.Context(), id)
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		WriteJSON(w, http.StatusOK, wd)
	})
	r.Post("/withdrawals/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		id, ok := withdrawalID(w, r, d)
		if !ok {
			return
		}
		if err := d.Store.RequeueWithdrawal(r.Context(), id, "operator retry"); err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		if d.Wake != nil {
			d.Wake()
		}
		WriteJSON(w, http.StatusAccepted, map[string]any{"id": id, "status": store.WithdrawalPending})
	})
}

func withdrawalID(w http.ResponseWriter, r *http.Request, d Deps) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		WriteError(w, d.Logger, Errorf(http.StatusNotFound, "not_found", "no such withdrawal"))
		return uuid.UUID{}, false
	}
	return id, true
}
