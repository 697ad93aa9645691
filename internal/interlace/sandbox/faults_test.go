package sandbox_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// TestTimeoutAfterCommit: the transfer is applied but the connection drops; the client sees an error, and a
// replay with the same id returns the transfer that was applied, once.
func TestTimeoutAfterCommit(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	e.srv.SetFaults(sandbox.Faults{TimeoutAfterCommitRate: 1})
	body := transferBody("tac-1", master, "USDC", infinity, "USD", 2, 0, "40")

	// A fresh connection, so the transport cannot transparently retry on a reused one.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := e.send(client, http.MethodPost, "/open-api/v3/business/transfer/internal", body, nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("got HTTP %d %s, want a dropped connection", resp.StatusCode, b)
	}
	l := e.ledger()
	if len(l.InternalTransfers) != 1 {
		t.Fatalf("%d transfers, want 1 (applied before the drop)", len(l.InternalTransfers))
	}
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "960")

	e.srv.SetFaults(sandbox.Faults{})
	d := e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal", body)
	if d["id"] != l.InternalTransfers[0].ID {
		t.Errorf("replay id %v, want %s", d["id"], l.InternalTransfers[0].ID)
	}
	l = e.ledger()
	if len(l.InternalTransfers) != 1 || l.RequestsByIdempotencyKey["tac-1"] != 2 {
		t.Errorf("after replay: %d transfers, %d requests; want 1 and 2", len(l.InternalTransfers), l.RequestsByIdempotencyKey["tac-1"])
	}
	requireDec(t, "master USDC after replay", e.walletBalance(master, "USDC"), "960")
	requireDec(t, "infinity", l.Infinity.Available, "56886.32") // + 40 - 0.2 fee
}

// TestErrorRate: injected 5xx/429 answers are not applied, and 429 carries Retry-After.
func TestErrorRate(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	e.srv.SetFaults(sandbox.Faults{ErrorRate: 1})
	seen := map[int]bool{}
	for i := range 40 {
		st, m, _ := e.request(http.MethodPost, "/open-api/v3/business/transfer/internal",
			transferBody("err-1", master, "USDC", infinity, "USD", 2, 0, "1"), nil)
		seen[st] = true
		switch st {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusTooManyRequests:
		default:
			t.Fatalf("request %d: HTTP %d %v", i, st, m)
		}
	}
	if len(seen) < 3 {
		t.Errorf("statuses %v: the injected errors should vary", seen)
	}
	l := e.ledger()
	if len(l.InternalTransfers) != 0 || l.RequestsByIdempotencyKey["err-1"] != 40 {
		t.Errorf("%d transfers, %d requests counted; want 0 and 40", len(l.InternalTransfers), l.RequestsByIdempotencyKey["err-1"])
	}
	requireDec(t, "master USDC", e.walletBalance(master, "USDC"), "1000")

	// OAuth and the control endpoints are never faulted.
	e.oauth()
	if st, _, _ := e.request(http.MethodGet, "/sandbox/ledger", nil, nil); st != http.StatusOK {
		t.Errorf("ledger: HTTP %d", st)
	}
}

func TestRetryAfterOn429(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	e.srv.SetFaults(sandbox.Faults{ErrorRate: 1})
	for range 200 {
		resp, err := e.send(e.ts.Client(), http.MethodGet, "/open-api/v3/cryptoconnect/wallets/"+master, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") != "1" {
				t.Fatalf("Retry-After = %q, want 1", resp.Header.Get("Retry-After"))
			}
			return
		}
	}
	t.Fatal("no 429 in 200 faulted requests")
}

func TestLatency(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	e.srv.SetFaults(sandbox.Faults{LatencyMs: 80})
	start := time.Now()
	e.ok(http.MethodGet, "/open-api/v3/cryptoconnect/wallets/"+master, nil)
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("answered in %s, want >= 80ms", d)
	}
	start = time.Now()
	e.oauth()
	if d := time.Since(start); d >= 80*time.Millisecond {
		t.Errorf("OAuth took %s: latency must not apply to it", d)
	}
}

func TestFaultsEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	want := map[string]any{"errorRate": 0.3, "latencyMs": float64(50), "timeoutAfterCommitRate": 0.1, "duplicateDeliveryRate": 0.2}
	st, m, raw := e.request(http.MethodPut, "/sandbox/faults", want, nil)
	if st != http.StatusOK {
		t.Fatalf("PUT: HTTP %d %s", st, raw)
	}
	_, got, _ := e.request(http.MethodGet, "/sandbox/faults", nil, nil)
	for k, v := range want {
		if got[k] != v || m[k] != v {
			t.Errorf("%s = %v (PUT answered %v), want %v", k, got[k], m[k], v)
		}
	}
	if f := e.srv.CurrentFaults(); f.LatencyMs != 50 || f.ErrorRate != 0.3 {
		t.Errorf("CurrentFaults = %+v", f)
	}
	for _, bad := range []map[string]any{{"errorRate": 1.5}, {"latencyMs": -1}, {"duplicateDeliveryRate": -0.1}, {"bogus": 1}} {
		if st, m, _ := e.request(http.MethodPut, "/sandbox/faults", bad, nil); st != http.StatusBadRequest || m["error"] == nil {
			t.Errorf("%v: HTTP %d %v, want 400", bad, st, m)
		}
	}
	if f := e.srv.CurrentFaults(); f.ErrorRate != 0.3 {
		t.Errorf("a rejected PUT changed the faults: %+v", f)
	}
}

func TestLedgerEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t, sandbox.Config{})
	e.ok(http.MethodPost, "/open-api/v3/business/transfer/internal", transferBody("l-1", master, "USDC", infinity, "USD", 2, 0, "1"))
	if _, _, raw := e.request(http.MethodPost, "/sandbox/deposits", map[string]any{"amount": "5"}, nil); len(raw) == 0 {
		t.Fatal("no deposit answer")
	}
	st, m, raw := e.request(http.MethodGet, "/sandbox/ledger", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("HTTP %d %s", st, raw)
	}
	want := `{"accountId":"a","infinity":{"id":"i","currency":"USD","available":"1"},
"wallets":[{"id":"w","referenceId":"","nickname":"n","master":true,"balances":{"USDC":"1","USDT":"1"},"addresses":[{"currency":"USDC","chain":"ETH","address":"0x","selected":true}]}],
"deposits":[{"id":"d","accountId":"a","walletId":"w","currency":"USDC","chain":"ETH","amount":"1","status":"Closed","transactionHash":"0x","address":"0x","fromAddress":"0x","createTime":"1","updateTime":"1","webhooksDropped":false,"legacyEnvelope":false,"notificationsSent":0,"deliveryAttempts":0,"notificationsFailed":0}],
"internalTransfers":[{"id":"1","clientTransactionId":"c","from":{"businessType":2,"id":"w","currency":"USDC"},"to":{"businessType":0,"id":"i","currency":"USD"},"walletId":"w","amount":"1","fee":"0","credited":"1","createTime":"1","status":"CLOSED","applied":true,"updateTime":"1"}],
"trades":[],"blockchainTransfers":[],"requestsByIdempotencyKey":{"l-1":1},"idempotencyConflicts":{},"answersByIdempotencyKey":{"l-1":["applied"]}}`
	assertShape(t, "ledger", mustJSON(t, want), m)
	if str(m, "infinity", "available") != "56847.515" {
		t.Errorf("infinity = %v", m["infinity"])
	}
}
