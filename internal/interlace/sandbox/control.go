package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Control endpoints (/sandbox/...): no token, no injected faults, and their own error shape
// {"error":{"code","message"}} so they cannot be mistaken for Interlace answers.

func (s *Server) handleCreateDeposit(w http.ResponseWriter, r *http.Request) {
	var req DepositRequest
	if !decodeControl(w, r, &req) {
		return
	}
	d, err := s.CreateDeposit(r.Context(), req)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControlJSON(w, http.StatusCreated, d)
}

func (s *Server) handleLedger(w http.ResponseWriter, _ *http.Request) {
	writeControlJSON(w, http.StatusOK, s.Ledger())
}

func (s *Server) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeControlJSON(w, http.StatusOK, s.CurrentFaults())
}

func (s *Server) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeControl(w, r, &f) {
		return
	}
	if err := f.Validate(); err != nil {
		writeControlError(w, err)
		return
	}
	s.SetFaults(f)
	writeControlJSON(w, http.StatusOK, f)
}

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields() // a typo in a control request should fail loudly, not be ignored
	if err := dec.Decode(v); err != nil {
		writeControlError(w, invalidf("request body: %v", err))
		return false
	}
	return true
}

type controlError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeControlError(w http.ResponseWriter, err error) {
	var ce controlError
	ce.Error.Message = err.Error()
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrNotFound):
		status, ce.Error.Code = http.StatusNotFound, "not_found"
	case errors.Is(err, ErrInvalid):
		ce.Error.Code = "invalid_request"
	default:
		status, ce.Error.Code = http.StatusInternalServerError, "internal"
	}
	writeControlJSON(w, status, ce)
}

func writeControlJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, status, b)
}
