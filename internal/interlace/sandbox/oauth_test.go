package sandbox_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// tokenCall sends one token request and returns the status and the decoded answer.
func tokenCall(t *testing.T, base, method, path string, body map[string]string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// strictHeaders signs params the way the sandbox documents (hex HMAC-SHA256 over sorted name=value
// pairs joined with & plus &timestamp=), written out independently of both implementations.
func strictHeaders(secret, canonical string, ts int64) map[string]string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(canonical + "&timestamp=" + strconv.FormatInt(ts, 10)))
	return map[string]string{"X-Timestamp": strconv.FormatInt(ts, 10), "X-Signature": hex.EncodeToString(m.Sum(nil))}
}

func TestTokenEndpointStyles(t *testing.T) {
	t.Parallel()
	serve := func(cfg sandbox.Config) string {
		sb := sandbox.New(cfg)
		srv := httptest.NewServer(sb.Handler())
		t.Cleanup(func() { sb.Close(); srv.Close() })
		return srv.URL
	}

	t.Run("V3AnswersWrapped", func(t *testing.T) {
		base := serve(sandbox.Config{})
		st, m := tokenCall(t, base, http.MethodGet, "/open-api/v3/oauth/authorize?clientId=c", nil, nil)
		data, _ := m["data"].(map[string]any)
		if st != 200 || m["code"] != "000000" || data["code"] == nil {
			t.Fatalf("v3 authorize: %d %v", st, m)
		}
		st, m = tokenCall(t, base, http.MethodPost, "/open-api/v3/oauth/access-token", map[string]string{"clientId": "c", "code": data["code"].(string)}, nil)
		data, _ = m["data"].(map[string]any)
		if st != 200 || m["code"] != "000000" || data["accessToken"] == nil || data["refreshToken"] == nil {
			t.Fatalf("v3 access-token without clientSecret: %d %v", st, m)
		}
		st, m = tokenCall(t, base, http.MethodPost, "/open-api/v3/oauth/refresh-token", map[string]string{"clientId": "c", "refreshToken": data["refreshToken"].(string)}, nil)
		if data, _ = m["data"].(map[string]any); st != 200 || data["accessToken"] == nil {
			t.Fatalf("v3 refresh-token: %d %v", st, m)
		}
	})
	t.Run("LegacyAnswersBareAndWantsTheSecret", func(t *testing.T) {
		base := serve(sandbox.Config{ClientSecret: "s3cret"})
		_, m := tokenCall(t, base, http.MethodGet, "/open-api/oauth/authorize?clientId=c", nil, nil)
		code, _ := m["code"].(string)
		if len(code) != 32 {
			t.Fatalf("bare authorize: %v", m)
		}
		st, m := tokenCall(t, base, http.MethodPost, "/open-api/oauth/access-token", map[string]string{"clientId": "c", "clientSecret": "wrong", "code": code}, nil)
		if st != 200 || m["code"] != "010401" {
			t.Fatalf("wrong secret: %d %v, want the business error 010401", st, m)
		}
		_, m = tokenCall(t, base, http.MethodGet, "/open-api/oauth/authorize?clientId=c", nil, nil)
		st, m = tokenCall(t, base, http.MethodPost, "/open-api/oauth/access-token", map[string]string{"clientId": "c", "clientSecret": "s3cret", "code": m["code"].(string)}, nil)
		if st != 200 || m["accessToken"] == nil || m["code"] != nil {
			t.Fatalf("right secret: %d %v, want a bare answer", st, m)
		}
	})
	t.Run("DemandedStyle404sTheOther", func(t *testing.T) {
		for style, gone := range map[string]string{sandbox.AuthStyleV3: "/open-api/oauth/authorize", sandbox.AuthStyleLegacy: "/open-api/v3/oauth/authorize"} {
			base := serve(sandbox.Config{AuthStyle: style})
			if st, _ := tokenCall(t, base, http.MethodGet, gone+"?clientId=c", nil, nil); st != http.StatusNotFound {
				t.Fatalf("%s: %s answered %d, want 404", style, gone, st)
			}
		}
	})
	t.Run("StrictMode", func(t *testing.T) {
		base := serve(sandbox.Config{StrictTokens: true, ClientSecret: "s3cret"})
		code := func() string {
			_, m := tokenCall(t, base, http.MethodGet, "/open-api/v3/oauth/authorize?clientId=c", nil, nil)
			return m["data"].(map[string]any)["code"].(string)
		}
		now := time.Now().Unix()
		for name, tc := range map[string]struct {
			secret string
			ts     int64
			want   string
		}{
			"unsigned":   {"", now, "010403"},
			"wrong key":  {"other", now, "010403"},
			"stale":      {"s3cret", now - 600, "010403"},
			"good":       {"s3cret", now, "000000"},
			"good, skew": {"s3cret", now - 200, "000000"},
		} {
			c := code()
			var hdr map[string]string
			if tc.secret != "" {
				hdr = strictHeaders(tc.secret, "clientId=c&code="+c, tc.ts)
			}
			if _, m := tokenCall(t, base, http.MethodPost, "/open-api/v3/oauth/access-token", map[string]string{"clientId": "c", "code": c}, hdr); m["code"] != tc.want {
				t.Errorf("%s: %v, want code %s", name, m, tc.want)
			}
		}
	})
}
