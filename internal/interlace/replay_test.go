package interlace

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestNoHiddenReplayAfterALostAnswer: a transfer applied upstream whose answer is
// lost (the connection closes after the request) must come back to the caller as
// an unknown outcome, once. net/http would otherwise replay an Idempotency-Key
// request on a reused connection by itself, and the replay's answer (a duplicate
// error from a strict upstream) would pass for the first.
func TestNoHiddenReplayAfterALostAnswer(t *testing.T) {
	var transfers atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path != "/open-api/v3/business/transfer/internal" {
			io.WriteString(w, `{"code":"000000","message":"success","data":{"list":[],"total":"0"}}`)
			return
		}
		if transfers.Add(1) == 1 {
			// Applied, then the connection is dropped without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, `{"code":"100409","message":"duplicate clientTransactionId"}`)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Tokens: StaticToken("test-token"), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Warm a keep-alive connection, so the transfer goes out on a reused one.
	_, _ = c.ListInfinityWallets(ctx, "acc")
	_, err = c.InternalTransfer(ctx, InternalTransferRequest{ClientTransactionID: "26287ad5-477a-5e1f-92d0-80404a9281d4",
		AccountID: "acc", Amount: decimal.NewFromInt(10),
		From: TransferEndpoint{BusinessType: BusinessTypeCryptoConnect, ID: "w", Currency: "USDC"},
		To:   TransferEndpoint{BusinessType: BusinessTypeInfinity, ID: "i", Currency: "USD"}})
	if !IsRetryable(err) || transfers.Load() != 1 {
		t.Fatalf("err %v after %d transfer requests; want an unknown (retryable) outcome after exactly 1", err, transfers.Load())
	}
}
