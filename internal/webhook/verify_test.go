package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
)

var (
	testSecret     = []byte("current-webhook-secret")
	testPrevSecret = []byte("previous-webhook-secret")
)

func sign(secret []byte, msg string) string { return Sign(secret, []byte(msg)) }

func TestSignMatchesReferenceHMAC(t *testing.T) {
	t.Parallel()
	m := hmac.New(sha256.New, []byte("key"))
	m.Write([]byte("The quick brown fox jumps over the lazy dog"))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	// RFC 4231-style known answer for HMAC-SHA256("key", fox).
	const hexWant = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	raw, _ := hex.DecodeString(hexWant)
	if got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog")); got != want || got != base64.StdEncoding.EncodeToString(raw) {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if len(want) != signatureLen || base64.StdEncoding.EncodedLen(sha256.Size) != signatureLen {
		t.Fatalf("signatureLen %d does not match a Base64 SHA-256 digest", signatureLen)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	resource := `{"id":"t-1","destination":{"type":"cryptoconnect_wallet","id":"w-1"},"amount":{"amount":"10.5","currency":"USDC"},"status":"Closed"}`
	body := envelopeBody(t, "n-1", "CRYPTO_TRANSFER.UPDATED", resource)
	env := mustEnvelope(t, body)
	tampered := *env
	tampered.Resource = strings.Replace(resource, "10.5", "10500", 1)

	good := sign(testSecret, resource)
	flipped := []byte(good)
	flipped[3] ^= 1 // still Base64, different digest
	// Same 32 bytes, but non-zero padding bits in the last character: only a
	// non-strict decoder would accept it.
	raw, _ := base64.StdEncoding.DecodeString(good)
	nonCanonical := []byte(base64.StdEncoding.EncodeToString(raw))
	nonCanonical[42] = nextB64(nonCanonical[42])
	if lax, err := base64.StdEncoding.DecodeString(string(nonCanonical)); err != nil || string(lax) != string(raw) || string(nonCanonical) == good {
		t.Fatalf("test setup: non-canonical signature is not an alias of the good one")
	}

	resourceV := mustVerifier(t, SignedResource, testSecret, testPrevSecret)
	bodyV := mustVerifier(t, SignedBody, testSecret, testPrevSecret)

	tests := []struct {
		name    string
		v       *Verifier
		sig     string
		body    []byte
		env     *Envelope
		wantIdx int
		wantErr error
	}{
		{"current key", resourceV, good, body, env, 0, nil},
		{"previous key", resourceV, sign(testPrevSecret, resource), body, env, 1, nil},
		{"surrounding spaces", resourceV, " \t" + good + " ", body, env, 0, nil},
		{"wrong secret", resourceV, sign([]byte("someone-else"), resource), body, env, -1, ErrBadSignature},
		{"tampered resource", resourceV, good, body, &tampered, -1, ErrBadSignature},
		{"missing header", resourceV, "", body, env, -1, ErrMissingSignature},
		{"blank header", resourceV, "  ", body, env, -1, ErrMissingSignature},
		{"garbage base64", resourceV, strings.Repeat("!", signatureLen), body, env, -1, ErrBadSignature},
		{"garbage short", resourceV, "not-a-signature", body, env, -1, ErrBadSignature},
		{"flipped bit", resourceV, string(flipped), body, env, -1, ErrBadSignature},
		{"non-canonical padding bits", resourceV, string(nonCanonical), body, env, -1, ErrBadSignature},
		{"hex digest", resourceV, hexSig(testSecret, resource), body, env, -1, ErrBadSignature},
		{"unpadded base64", resourceV, strings.TrimRight(good, "="), body, env, -1, ErrBadSignature},
		{"url-safe alphabet", resourceV, base64.URLEncoding.EncodeToString(mustDecode(t, sign(testSecret, "?>?>"))), body, &Envelope{Resource: "?>?>"}, -1, ErrBadSignature},
		{"31-byte digest", resourceV, base64.StdEncoding.EncodeToString(raw[:31]), body, env, -1, ErrBadSignature},
		{"33-byte digest", resourceV, base64.StdEncoding.EncodeToString(append(raw, 0)), body, env, -1, ErrBadSignature},
		{"resource mode, signature over body", resourceV, sign(testSecret, string(body)), body, env, -1, ErrBadSignature},
		{"resource mode, no envelope", resourceV, good, body, nil, -1, ErrBadSignature},
		{"resource mode, empty resource", resourceV, sign(testSecret, ""), body, &Envelope{ID: "n-1"}, -1, ErrBadSignature},
		{"body mode, current key", bodyV, sign(testSecret, string(body)), body, nil, 0, nil},
		{"body mode, previous key", bodyV, sign(testPrevSecret, string(body)), body, env, 1, nil},
		{"body mode, signature over resource", bodyV, good, body, env, -1, ErrBadSignature},
		{"body mode, one byte changed", bodyV, sign(testSecret, string(body)), append([]byte(" "), body...), nil, -1, ErrBadSignature},
		{"body mode, empty body signed", bodyV, sign(testSecret, ""), nil, nil, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idx, err := tc.v.Verify(tc.sig, tc.body, tc.env)
			if tc.wantErr == nil {
				if err != nil || idx != tc.wantIdx {
					t.Fatalf("Verify = %d, %v; want %d, nil", idx, err, tc.wantIdx)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || idx != -1 {
				t.Fatalf("Verify = %d, %v; want -1, %v", idx, err, tc.wantErr)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	if _, err := NewVerifier(SignedResource); !errors.Is(err, ErrNoSecret) {
		t.Errorf("no secrets: %v, want ErrNoSecret", err)
	}
	if _, err := NewVerifier(SignedResource, nil, []byte{}); !errors.Is(err, ErrNoSecret) {
		t.Errorf("only empty secrets: %v, want ErrNoSecret", err)
	}
	if _, err := NewVerifier("timestamp+resource", testSecret); err == nil {
		t.Error("unknown signed part accepted")
	}
	v, err := NewVerifier("", testSecret)
	if err != nil || v.Part() != SignedResource || v.SignsBody() {
		t.Fatalf("default part: %v, %v", v, err)
	}
	if v := mustVerifier(t, SignedBody, testSecret); !v.SignsBody() || v.Part() != SignedBody {
		t.Fatal("body mode not reported")
	}

	// An unset current secret does not turn the previous one into "current".
	v = mustVerifier(t, SignedResource, nil, testPrevSecret)
	if idx, err := v.Verify(sign(testPrevSecret, "{}"), nil, &Envelope{Resource: "{}"}); err != nil || idx != 1 {
		t.Fatalf("previous-only verifier: %d, %v; want 1, nil", idx, err)
	}

	// The same secret twice (previous not yet changed): the current one is reported.
	v = mustVerifier(t, SignedResource, testSecret, testSecret)
	if idx, err := v.Verify(sign(testSecret, "{}"), nil, &Envelope{Resource: "{}"}); err != nil || idx != 0 {
		t.Fatalf("duplicate secret: %d, %v; want 0, nil", idx, err)
	}

	// The verifier keeps its own copy of the key.
	secret := []byte("wipe-me-after-use")
	v = mustVerifier(t, SignedResource, secret)
	sig := sign(secret, "{}")
	for i := range secret {
		secret[i] = 0
	}
	if _, err := v.Verify(sig, nil, &Envelope{Resource: "{}"}); err != nil {
		t.Fatalf("verifier shares the caller's key slice: %v", err)
	}
}

// TestVerifyConcurrent exercises the pooled HMAC states from many goroutines;
// run with -race.
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, SignedResource, testSecret, testPrevSecret)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				res := strings.Repeat("x", g*7+i)
				secret, want := testSecret, 0
				if (g+i)%2 == 1 {
					secret, want = testPrevSecret, 1
				}
				idx, err := v.Verify(sign(secret, res), nil, &Envelope{Resource: res})
				if res == "" {
					if err == nil {
						t.Error("empty resource verified")
					}
					continue
				}
				if err != nil || idx != want {
					t.Errorf("goroutine %d iteration %d: %d, %v", g, i, idx, err)
					return
				}
				if _, err := v.Verify(sign([]byte("bad"), res), nil, &Envelope{Resource: res}); err == nil {
					t.Error("wrong key verified")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestVerifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	v := mustVerifier(t, SignedResource, testSecret, testPrevSecret)
	env := &Envelope{Resource: strings.Repeat(`{"a":"b"}`, 50)}
	sig := sign(testPrevSecret, env.Resource)
	if _, err := v.Verify(sig, nil, env); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(sig, nil, env); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("Verify allocates %.1f times per call, want at most 1 (the resource copy)", allocs)
	}
}

func mustVerifier(t testing.TB, part SignedPart, secrets ...[]byte) *Verifier {
	t.Helper()
	v, err := NewVerifier(part, secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustDecode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexSig(secret []byte, msg string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// nextB64 returns the next character of the standard alphabet, which for the
// last data character of a one-'=' digest only changes the padding bits when c
// is not at the end of a group of four.
func nextB64(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, c)
	if i%4 == 3 {
		return alphabet[i-1]
	}
	return alphabet[i+1]
}
