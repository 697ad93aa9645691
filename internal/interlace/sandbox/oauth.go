package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// codeTTL bounds how long an authorization code may wait before it is exchanged.
const codeTTL = 10 * time.Minute

// Token endpoint styles the sandbox can serve (Config.AuthStyle).
const (
	AuthStyleBoth   = "both"
	AuthStyleV3     = "v3"
	AuthStyleLegacy = "legacy"
)

// strictSkew is how far X-Timestamp may be from the sandbox's clock ("about 5 minutes", the docs say).
const strictSkew = 5 * time.Minute

// Business codes of refused token calls. Only their being non-success codes matters to clients.
const (
	codeBadCredentials = codeUnauthorized // wrong client secret
	codeBadSignature   = "010403"         // strict mode: missing or wrong X-Signature / X-Timestamp
)

// tokenStyle is one style's wire conventions: the v3 endpoints take no clientSecret and wrap every answer
// in the code:"000000" envelope; the unversioned ones take clientSecret and answer bare, as the docs show.
type tokenStyle struct {
	name    string
	wrapped bool
}

var (
	styleV3     = tokenStyle{name: AuthStyleV3, wrapped: true}
	styleLegacy = tokenStyle{name: AuthStyleLegacy}
)

func (s *Server) oauthRoutes(m *http.ServeMux) {
	for _, st := range []struct {
		prefix string
		style  tokenStyle
	}{{"/open-api/oauth", styleLegacy}, {"/open-api/v3/oauth", styleV3}} {
		m.HandleFunc("GET "+st.prefix+"/authorize", s.tokenRoute(st.style, s.handleAuthorize))
		m.HandleFunc("POST "+st.prefix+"/access-token", s.tokenRoute(st.style, s.handleAccessToken))
		m.HandleFunc("POST "+st.prefix+"/refresh-token", s.tokenRoute(st.style, s.handleRefreshToken))
	}
}

// tokenRoute answers 404, as for an unknown path, when Config.AuthStyle does not serve this style.
func (s *Server) tokenRoute(st tokenStyle, h func(tokenStyle, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if served := s.cfg.AuthStyle; served != "" && served != AuthStyleBoth && served != st.name {
			http.NotFound(w, r)
			return
		}
		h(st, w, r)
	}
}

// GET …/authorize?clientId= — any client id is accepted.
func (s *Server) handleAuthorize(st tokenStyle, w http.ResponseWriter, r *http.Request) {
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
	s.tokenAnswer(st, w, wireAuthorize{Timestamp: now.Unix(), Code: code})
}

// POST …/access-token — {clientId, clientSecret, code} unversioned, {clientId, code} in v3. The code must
// have been issued by authorize, and it is single use.
func (s *Server) handleAccessToken(st tokenStyle, w http.ResponseWriter, r *http.Request) {
	var req wireAccessTokenReq
	params, ok := s.decodeTokenCall(w, r, &req)
	if !ok {
		return
	}
	if req.ClientID == "" || req.Code == "" || (st.name == AuthStyleLegacy && req.ClientSecret == "") {
		need := "clientId and code are required"
		if st.name == AuthStyleLegacy {
			need = "clientId, clientSecret and code are required"
		}
		writeJSON(w, http.StatusBadRequest, errorBody(familyA, invalidf("%s", need)))
		return
	}
	if !s.strictOK(w, r, params) {
		return
	}
	if s.cfg.ClientSecret != "" && req.ClientSecret != "" &&
		!hmac.Equal([]byte(req.ClientSecret), []byte(s.cfg.ClientSecret)) {
		refuseToken(w, codeBadCredentials, "invalid client credentials")
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
	s.issueTokens(st, w, now)
}

// POST …/refresh-token {clientId, refreshToken} — rotates the pair.
func (s *Server) handleRefreshToken(st tokenStyle, w http.ResponseWriter, r *http.Request) {
	var req wireAccessTokenReq
	params, ok := s.decodeTokenCall(w, r, &req)
	if !ok || !s.strictOK(w, r, params) {
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
	s.issueTokens(st, w, now)
}

func (s *Server) issueTokens(st tokenStyle, w http.ResponseWriter, now time.Time) {
	access, refresh := s.rng.hexN(64), s.rng.hexN(64)
	s.authMu.Lock()
	s.pruneAuthLocked(now)
	s.tokens[access] = now.Add(s.cfg.TokenTTL)
	// The refresh token outlives the access token so a client that slept past expiry can still refresh.
	s.refreshes[refresh] = now.Add(2 * s.cfg.TokenTTL)
	s.authMu.Unlock()
	s.tokenAnswer(st, w, wireAccessToken{
		AccessToken:  access,
		RefreshToken: refresh,
		ExpiresIn:    int64(s.cfg.TokenTTL / time.Second),
		Timestamp:    now.Unix(),
	})
}

// tokenAnswer writes data bare (unversioned) or in the code:"000000" envelope (v3).
func (s *Server) tokenAnswer(st tokenStyle, w http.ResponseWriter, data any) {
	var b []byte
	if st.wrapped {
		b, _ = successBody(familyA, data)
	} else {
		b, _ = json.Marshal(data)
	}
	writeJSON(w, http.StatusOK, b)
}

// refuseToken answers a business error: HTTP 200 with a non-success code, as Interlace does.
func refuseToken(w http.ResponseWriter, code, msg string) {
	writeJSON(w, http.StatusOK, errorBody(familyA, &apiError{kind: ErrInvalid, code: code, msg: msg}))
}

// strictOK enforces StrictTokens; it answers and returns false when the call is refused.
func (s *Server) strictOK(w http.ResponseWriter, r *http.Request, params map[string]string) bool {
	if !s.cfg.StrictTokens {
		return true
	}
	tsText, sig := r.Header.Get("X-Timestamp"), r.Header.Get("X-Signature")
	if tsText == "" || sig == "" {
		refuseToken(w, codeBadSignature, "strict access token mode: X-Timestamp and X-Signature are required")
		return false
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		refuseToken(w, codeBadSignature, "X-Timestamp must be Unix seconds")
		return false
	}
	if d := time.Since(time.Unix(ts, 0)); d > strictSkew || d < -strictSkew {
		refuseToken(w, codeBadSignature, "X-Timestamp is more than 5 minutes off")
		return false
	}
	if s.cfg.ClientSecret != "" && !hmac.Equal([]byte(strings.ToLower(sig)), []byte(signTokenCall(s.cfg.ClientSecret, params, ts))) {
		refuseToken(w, codeBadSignature, "invalid X-Signature")
		return false
	}
	return true
}

// signTokenCall is the strict-mode signature the sandbox demands: lowercase hex HMAC-SHA256 keyed with the
// client secret over the body's parameters sorted by name as "name=value" joined with "&", then
// "&timestamp=<X-Timestamp>". Interlace's real string-to-sign is UNCONFIRMED (interlace-api-facts.md §4.1);
// this mirrors the assumption documented on interlace.SignTokenCall, written out again here so that the
// sandbox checks the client instead of sharing its code.
func signTokenCall(secret string, params map[string]string, ts int64) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names)+1)
	for _, k := range names {
		parts = append(parts, k+"="+params[k])
	}
	parts = append(parts, "timestamp="+strconv.FormatInt(ts, 10))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strings.Join(parts, "&")))
	return hex.EncodeToString(m.Sum(nil))
}

// decodeTokenCall reads the JSON body into v and also returns its top-level parameters as text (strings
// as they are, anything else as its JSON), which is what strict mode signs.
func (s *Server) decodeTokenCall(w http.ResponseWriter, r *http.Request, v any) (map[string]string, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var raw map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(body, &raw)
	}
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody(familyA, invalidf("request body is not valid JSON: %v", err)))
		return nil, false
	}
	params := make(map[string]string, len(raw))
	for k, val := range raw {
		var str string
		if json.Unmarshal(val, &str) == nil {
			params[k] = str
		} else {
			params[k] = string(val)
		}
	}
	return params, true
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
