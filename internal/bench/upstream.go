package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

const transferPath = "/open-api/v3/business/transfer/internal"

// upstream is the sandbox on a loopback port, with the time each transfer request
// first arrived (before any injected latency), keyed by clientTransactionId.
type upstream struct {
	sb  *sandbox.Server
	srv *http.Server
	url string

	requests atomic.Int64 // transfer requests received
	record   bool         // keep each clientTransactionId's first arrival (costs a JSON decode)
	mu       sync.Mutex
	received map[string]time.Time
}

func startUpstream(latencyMs int, funds decimal.Decimal, record bool) (*upstream, error) {
	u := &upstream{
		sb:       sandbox.New(sandbox.Config{StaticToken: benchToken, DeliveryWorkers: 1}),
		record:   record,
		received: map[string]time.Time{},
	}
	// Fund the master wallet the benchmark's hand-made deposits name (no webhook:
	// no URL). Runs whose deposits exist at the sandbox fund it themselves and pass
	// zero: a funding deposit would be a deposit like any other, found in the
	// transfer list by confirmation and swept.
	if funds.IsPositive() {
		if _, err := u.sb.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: funds}); err != nil {
			u.sb.Close()
			return nil, err
		}
	}
	u.sb.SetFaults(sandbox.Faults{LatencyMs: latencyMs})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		u.sb.Close()
		return nil, err
	}
	u.url = "http://" + ln.Addr().String()
	u.srv = &http.Server{Handler: u.wrap(u.sb.Handler()), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

func (u *upstream) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == transferPath {
			u.requests.Add(1)
		}
		if u.record && r.Method == http.MethodPost && r.URL.Path == transferPath {
			at := time.Now()
			body, err := io.ReadAll(r.Body)
			if err == nil {
				var req struct {
					ClientTransactionID string `json:"clientTransactionId"`
				}
				_ = json.Unmarshal(body, &req)
				u.mu.Lock()
				if _, seen := u.received[req.ClientTransactionID]; !seen {
					u.received[req.ClientTransactionID] = at
				}
				u.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

// receipts returns the first-arrival times and the total number of transfer requests.
func (u *upstream) receipts() (map[string]time.Time, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]time.Time, len(u.received))
	for k, v := range u.received {
		out[k] = v
	}
	return out, int(u.requests.Load())
}

// transfers is how many distinct internal transfers the sandbox applied.
func (u *upstream) transfers() int { return len(u.sb.Ledger().InternalTransfers) }

func (u *upstream) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = u.srv.Shutdown(ctx)
	u.sb.Close()
}
