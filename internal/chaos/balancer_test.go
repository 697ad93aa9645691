package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/webhook"
)

type seenRequest struct {
	body   []byte
	header http.Header
}

// recorder is a backend that records what it receives.
type recorder struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, seenRequest{body: b, header: req.Header.Clone()})
	r.mu.Unlock()
	_, _ = w.Write([]byte(`{"received":true}`))
}

func (r *recorder) all() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenRequest(nil), r.reqs...)
}

func TestBalancerReroutesAroundADeadBackend(t *testing.T) {
	t.Parallel()
	var live recorder
	up := httptest.NewServer(&live)
	defer up.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // connection refused from now on

	b := newBalancer(context.Background(), []string{downURL, up.URL}, []byte("s"), 0, 1)
	front := httptest.NewServer(b)
	defer front.Close()
	for i := range 4 {
		resp, err := http.Post(front.URL+"/webhooks/interlace", "application/json", strings.NewReader(`{"id":"n`+string(rune('0'+i))+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("delivery %d: %s", i, resp.Status)
		}
	}
	if n := len(live.all()); n != 4 {
		t.Fatalf("live backend got %d deliveries, want 4", n)
	}
	if b.rerouted.Load() == 0 {
		t.Fatal("no delivery was rerouted although one backend is down")
	}
}

// With the extra rate at 1 a Pending notification gets a copy (same bytes,
// same signature) and an out-of-order re-send under a new id whose signature
// sweeper's own verifier accepts.
func TestBalancerMirrorsAndResignsPending(t *testing.T) {
	t.Parallel()
	var be recorder
	srv := httptest.NewServer(&be)
	defer srv.Close()
	secret := []byte("chaos-secret")
	b := newBalancer(context.Background(), []string{srv.URL}, secret, 1, 7)
	front := httptest.NewServer(b)
	defer front.Close()

	resource := `{"id":"tr-1","status":"Pending","destination":{"type":"cryptoconnect_wallet","id":"w"}}`
	body, _ := json.Marshal(map[string]string{"id": "n-1", "eventType": "CRYPTO_TRANSFER.CREATED", "resource": resource})
	sig := webhook.Sign(secret, []byte(resource))
	post := func() {
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/webhooks/interlace", bytes.NewReader(body))
		req.Header.Set("Signature", sig)
		req.Header.Set("Signature-Method", "HMAC-SHA256")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post()
	post() // a redelivery of the same id is not mirrored again
	b.wait()

	verifier, err := webhook.NewVerifier(webhook.SignedResource, secret)
	if err != nil {
		t.Fatal(err)
	}
	var same, resigned int
	for _, r := range be.all() {
		if bytes.Equal(r.body, body) {
			if r.header.Get("Signature") != sig {
				t.Fatal("copy lost its signature")
			}
			same++
			continue
		}
		env, err := webhook.ParseEnvelope(r.body)
		if err != nil {
			t.Fatal(err)
		}
		if env.ID == "n-1" || env.Resource != resource {
			t.Fatalf("re-send id %q resource %q", env.ID, env.Resource)
		}
		if _, err := verifier.Verify(r.header.Get("Signature"), r.body, env); err != nil {
			t.Fatalf("re-signed notification refused: %v", err)
		}
		resigned++
	}
	// Two originals plus one copy; one out-of-order re-send.
	if same != 3 || resigned != 1 {
		t.Fatalf("same-bytes deliveries %d (want 3), re-signed %d (want 1)", same, resigned)
	}
}

func TestBalancerStopsExtrasWithItsContext(t *testing.T) {
	t.Parallel()
	var be recorder
	srv := httptest.NewServer(&be)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	b := newBalancer(ctx, []string{srv.URL}, []byte("s"), 1, 3)
	b.later(time.Hour, delivery{body: []byte(`{}`), header: http.Header{}}, &b.copies)
	cancel()
	done := make(chan struct{})
	go func() { b.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a scheduled extra delivery outlived the balancer's context")
	}
	if len(be.all()) != 0 {
		t.Fatal("cancelled extra delivery was sent")
	}
}
