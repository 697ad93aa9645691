package chaos

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sweeperhq/sweeper/internal/status"
)

// balancer stands between the sandbox and the sweeper processes the way a load
// balancer stands between Interlace and a deployment: every delivery goes to the
// next backend, and to another one when that backend is down. It also makes the
// deliveries worse than the sandbox does on its own: the first time it sees a
// notification it may send an extra copy, concurrently to another backend or a
// moment later, and it may re-sign a Pending notification under a new id and
// send it after the Closed one (an out-of-order update the ids do not dedupe).
type balancer struct {
	backends []string // http://127.0.0.1:port
	secret   []byte   // webhook secret, to sign the out-of-order copies
	// extraRate is the chance, per notification, of one extra copy and,
	// separately for a Pending one, of an out-of-order re-send.
	extraRate float64
	client    *http.Client

	rr     atomic.Uint64
	rngMu  sync.Mutex
	rng    *rand.Rand
	seenMu sync.Mutex
	seen   map[string]bool

	ctx    context.Context // ends the extra deliveries still scheduled
	extras sync.WaitGroup

	forwarded, rerouted, refused, copies, stale atomic.Int64
}

func newBalancer(ctx context.Context, backends []string, secret []byte, extraRate float64, seed uint64) *balancer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &balancer{
		backends: backends, secret: secret, extraRate: extraRate, ctx: ctx,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		seen:   map[string]bool{},
	}
}

func (b *balancer) roll(p float64) bool {
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	return b.rng.Float64() < p
}

func (b *balancer) between(lo, hi time.Duration) time.Duration {
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	return lo + time.Duration(b.rng.Int64N(int64(hi-lo)+1))
}

// delivery is one webhook request as the sandbox sent it.
type delivery struct {
	body   []byte
	header http.Header
}

var forwardedHeaders = []string{"Content-Type", "Signature", "Signature-Method", "Timestamp"}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	d := delivery{body: body, header: http.Header{}}
	for _, h := range forwardedHeaders {
		if v := r.Header.Get(h); v != "" {
			d.header.Set(h, v)
		}
	}
	b.mirror(d)
	status, resp, err := b.forward(r.Context(), d, int(b.rr.Add(1)))
	if err != nil {
		b.refused.Add(1)
		http.Error(w, "no backend answered: "+err.Error(), http.StatusBadGateway)
		return
	}
	b.forwarded.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

// forward sends d to backend start, then the next ones, until one answers. A
// backend that dies mid-request may have committed the delivery: sending it to
// another is a redelivery, which the receiver must absorb anyway.
func (b *balancer) forward(ctx context.Context, d delivery, start int) (int, []byte, error) {
	var lastErr error
	for i := range b.backends {
		if i > 0 {
			b.rerouted.Add(1)
		}
		backend := b.backends[(start+i)%len(b.backends)]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, backend+"/webhooks/interlace", bytes.NewReader(d.body))
		if err != nil {
			return 0, nil, err
		}
		req.Header = d.header.Clone()
		resp, err := b.client.Do(req)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				return 0, nil, err
			}
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		return resp.StatusCode, body, nil
	}
	return 0, nil, lastErr
}

// mirror schedules the extra deliveries of a notification seen for the first time.
func (b *balancer) mirror(d delivery) {
	var env struct {
		ID        string `json:"id"`
		EventType string `json:"eventType"`
		Resource  string `json:"resource"`
	}
	if json.Unmarshal(d.body, &env) != nil || env.ID == "" {
		return
	}
	b.seenMu.Lock()
	first := !b.seen[env.ID]
	b.seen[env.ID] = true
	b.seenMu.Unlock()
	if !first {
		return
	}
	if b.roll(b.extraRate) {
		delay := time.Duration(0) // concurrent with the original, on another backend
		if b.roll(0.5) {
			delay = b.between(100*time.Millisecond, 3*time.Second)
		}
		b.later(delay, d, &b.copies)
	}
	if b.roll(b.extraRate) && isPending(env.Resource) {
		if stale, ok := b.resign(env.EventType, env.Resource); ok {
			b.later(b.between(time.Second, 4*time.Second), stale, &b.stale)
		}
	}
}

func (b *balancer) later(delay time.Duration, d delivery, counter *atomic.Int64) {
	b.extras.Add(1)
	go func() {
		defer b.extras.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		// The outcome does not matter: the sandbox's own delivery is the one
		// that must get through; this one only has to be absorbed.
		if _, _, err := b.forward(ctx, d, int(b.rr.Add(1))); err == nil {
			counter.Add(1)
		}
	}()
}

// resign wraps resource in a new notification (new id), signed like the
// sandbox signs: HMAC-SHA256 over the resource text, standard Base64.
func (b *balancer) resign(eventType, resource string) (delivery, bool) {
	body, err := json.Marshal(map[string]string{
		"id": "chaos-" + uuid.NewString(), "eventType": eventType, "apiVersion": "v3", "code": "000000",
		"message": "", "resource": resource, "createTime": strconv.FormatInt(time.Now().UnixMilli(), 10),
	})
	if err != nil {
		return delivery{}, false
	}
	mac := hmac.New(sha256.New, b.secret)
	mac.Write([]byte(resource))
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Signature-Method", "HMAC-SHA256")
	h.Set("Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	h.Set("Timestamp", strconv.FormatInt(time.Now().UnixMilli(), 10))
	return delivery{body: body, header: h}, true
}

func isPending(resource string) bool {
	var r struct {
		Status string `json:"status"`
	}
	return json.Unmarshal([]byte(resource), &r) == nil && status.Classify(r.Status) == status.Waiting
}

// wait lets the scheduled extra deliveries finish (they end with b.ctx).
func (b *balancer) wait() { b.extras.Wait() }
