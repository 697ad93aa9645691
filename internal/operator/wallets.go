package operator

import (
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/sweeperhq/sweeper/internal/interlace"
	"github.com/sweeperhq/sweeper/internal/store"
	"github.com/sweeperhq/sweeper/internal/withdraw"
)

// walletRoutes serves wallet provisioning (contract §3):
//
//	POST /v1/wallets                     201 created / 200 already existed
//	GET  /v1/wallets?userRef=&after=&limit=
//	GET  /v1/wallets/{id}?refresh=true   refresh reads the wallet from Interlace first
func walletRoutes(r chi.Router, d Deps) {
	r.Post("/wallets", func(w http.ResponseWriter, r *http.Request) {
		var req withdraw.WalletRequest
		if err := DecodeJSON(w, r, &req); err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		wallet, created, err := d.Payouts.ProvisionWallet(r.Context(), req)
		if err != nil {
			WriteError(w, d.Logger, payoutError(err))
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		WriteJSON(w, status, wallet)
	})
	r.Get("/wallets", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, err := limitParam(q.Get("limit"))
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		ws, err := d.Store.ListWallets(r.Context(), store.WalletFilter{UserRef: q.Get("userRef"), After: q.Get("after"), Limit: limit})
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		if ws == nil {
			ws = []store.Wallet{}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"wallets": ws})
	})
	r.Get("/wallets/{id}", func(w http.ResponseWriter, r *http.Request) {
		refresh, err := boolParam("refresh", r.URL.Query().Get("refresh"))
		if err != nil {
			WriteError(w, d.Logger, err)
			return
		}
		wallet, err := d.Payouts.Wallet(r.Context(), chi.URLParam(r, "id"), refresh)
		if err != nil {
			WriteError(w, d.Logger, payoutError(err))
			return
		}
		WriteJSON(w, http.StatusOK, wallet)
	})
}

// payoutError maps the errors of package withdraw and of Interlace onto the
// contract's error shape; anything else goes to WriteError unchanged.
func payoutError(err error) error {
	var ie *withdraw.InputError
	if errors.As(err, &ie) {
		status := http.StatusUnprocessableEntity
		if ie.Missing() {
			status = http.StatusBadRequest
		}
		return Errorf(status, ie.Code, ie.Error())
	}
	var ae *interlace.APIError
	if errors.As(err, &ae) {
		if ae.Retryable {
			// The outcome is unknown or the failure transient: the same request, repeated,
			// is safe (wallets by referenceId, addresses per currency and chain).
			return Errorf(http.StatusServiceUnavailable, "upstream_unavailable",
				"Interlace did not complete the request ("+ae.Error()+"); repeat the same request")
		}
		msg := ae.Message
		if ae.Code != "" {
			msg = "Interlace code " + ae.Code + ": " + msg
		}
		return Errorf(http.StatusBadGateway, "upstream_rejected", strings.TrimSpace(msg))
	}
	return err
}

func boolParam(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	}
	return false, Errorf(http.StatusBadRequest, "bad_request", name+" must be true or false")
}

func limitParam(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' || n > 100000 {
			return 0, Errorf(http.StatusBadRequest, "bad_request", "limit must be a number from 1 to 1000")
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 1000 {
		return 0, Errorf(http.StatusBadRequest, "bad_request", "limit must be a number from 1 to 1000")
	}
	return n, nil
}
