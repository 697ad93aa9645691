package interlace

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeEnvelope feeds arbitrary answers through the response decoding of every endpoint and the
// OAuth parsers. Beyond "no panic" it checks the invariants the sweep relies on: only a 2xx can be a
// success, every failure is an *APIError naming the endpoint, and an unusable 2xx is retryable.
// The seed corpus is in testdata/fuzz/FuzzDecodeEnvelope; the guide examples are added here too.
func FuzzDecodeEnvelope(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(200, b)
	}
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	targets := []func() any{
		func() any { return new(Wallet) },
		func() any { return new(Address) },
		func() any { return new(infinityWalletList) },
		func() any { return new(InternalTransfer) },
		func() any { return new(Quote) },
		func() any { return new(Trade) },
		func() any { return new(FeeQuota) },
		func() any { return new(BlockchainTransfer) },
		func() any { return nil },
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		header := http.Header{"Retry-After": {string(body[:min(len(body), 40)])}}
		for _, target := range targets {
			out := target()
			err := decodeResponse("fuzz", status, header, body, now, out)
			if err == nil {
				if status < 200 || status > 299 {
					t.Fatalf("status %d decoded as success", status)
				}
				continue
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T is not an *APIError", err)
			}
			if ae.Endpoint != "fuzz" || ae.HTTPStatus != status || ae.RetryAfter < 0 || ae.RetryAfter > maxRetryAfter {
				t.Fatalf("bad APIError %+v", ae)
			}
			if status >= 200 && status <= 299 && errors.Is(err, ErrMalformedResponse) && !ae.Retryable {
				t.Fatalf("unusable 2xx not retryable: %v", err)
			}
			if len(ae.Message) > maxMessageLen+len("…") {
				t.Fatalf("message of %d bytes", len(ae.Message))
			}
			_ = ae.Error()
		}
		_, _ = parseAuthorize(body)
		if tok, lifetime, err := parseAccessToken(body); err == nil && (tok == "" || lifetime <= 0) {
			t.Fatalf("accepted token %q with lifetime %s", tok, lifetime)
		}
	})
}
