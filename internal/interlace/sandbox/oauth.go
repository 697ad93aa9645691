package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// codeTTL bounds how long an authorization code may wait before it is exchanged.
const codeTTL = 10 * time.Minute

// GET /open-api/oauth/authorize?clientId= — any client id is accepted; the answer is bare, as the docs show.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("clientId") == "" {
		writeJSON(w, http.StatusBadRequest, errorBody(familyA, invalidf("clientId is required")))
		return
	}
	now := time.Now()
	code := s.rng.hexN(32)
	s.authMu.Lock()
	s.pruneAuthLocked(now)
	s.codes[code] = now.Add(codeTTL)
	s.authMu.Unlock()
	b, _ := json.Marshal(wireAuthorize{Timestamp: now.Unix(), Code: code})
	writeJSON(w, http.StatusOK, b)
}

// POST /open-api/oauth/access-token {clientId, clientSecret, code} — any id/secret, but the code must have been
// issued by authorize, and it is single use.
func (s *Server) handleAccessToken(w http.ResponseWriter, r *http.Request) {
	var req wireAccessTokenReq
	if !decodeBare(w, r, &req) {
		return
	}
	if req.ClientID == "" || req.ClientSecret == "" || req.Code == "" {
		writeJSON(w, http.StatusBadRequest, errorBody(familyA, invalidf("clientId, clientSecret and code are required")))
		return
	}
	now := time.Now()
	s.authMu.Lock()
	exp, ok := s.codes[req.Code]
	delete(s.codes, req.Code)
	s.authMu.Unlock()
	if !ok || now.After(exp) {
		writeJSON(w, http.StatusBadRequest, errorBody(familyA, invalidf("code was not issued or has expired")))
		return
	}
	s.issueTokens(w, now)
}

// POST /open-api/oauth/refresh-token {clientId, refreshToken} — rotates the pair.
func (s *Server) handleRefreshToken(w http.ResponseWriter, r *http.Request) {
	var req wireAccessTokenReq
	if !decodeBare(w, r, &req) {
		return
	}
	now := time.Now()
	s.authMu.Lock()
	exp, ok := s.refreshes[req.RefreshToken]
	delete(s.refreshes, req.RefreshToken)
	s.authMu.Unlock()
	if req.RefreshToken == "" || !ok || now.After(exp) {
		writeJSON(w, http.StatusBadRequest, errorBody(familyA, invalidf("refreshToken was not issued or has expired")))
		return
	}
	s.issueTokens(w, now)
}

func (s *Server) issueTokens(w http.ResponseWriter, now time.Time) {
	access, refresh := s.rng.hexN(64), s.rng.hexN(64)
	s.authMu.Lock()
	s.pruneAuthLocked(now)
	s.tokens[access] = now.Add(s.cfg.TokenTTL)
	// The refresh token outlives the access token so a client that slept past expiry can still refresh.
	s.refreshes[refresh] = now.Add(2 * s.cfg.TokenTTL)
	s.authMu.Unlock()
	b, _ := json.Marshal(wireAccessToken{
		AccessToken:  access,
		RefreshToken: refresh,
		ExpiresIn:    int64(s.cfg.TokenTTL / time.Second),
		Timestamp:    now.Unix(),
	})
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	if s.cfg.StaticToken != "" && tok == s.cfg.StaticToken {
		return true
	}
	s.authMu.RLock()
	exp, ok := s.tokens[tok]
	s.authMu.RUnlock()
	return ok && time.Now().Before(exp)
}

// pruneAuthLocked drops expired codes and tokens now and then, so a long-running sandbox does not grow without
// bound. Caller holds authMu.
func (s *Server) pruneAuthLocked(now time.Time) {
	s.authIssued++
	if s.authIssued%256 != 0 {
		return
	}
	for _, m := range []map[string]time.Time{s.codes, s.tokens, s.refreshes} {
		for k, exp := range m {
			if now.After(exp) {
				delete(m, k)
			}
		}
	}
}

func decodeBare(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody(familyA, invalidf("request body is not valid JSON: %v", err)))
		return false
	}
	return true
}
