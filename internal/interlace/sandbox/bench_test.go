package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// BenchmarkInternalTransfer: distinct sweeps over real loopback HTTP, 8 concurrent clients per core.
func BenchmarkInternalTransfer(b *testing.B) {
	e := setup(b, sandbox.Config{})
	if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1000000000")}); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body, _ := json.Marshal(transferBody(fmt.Sprintf("bench-%d", seq.Add(1)), master, "USDC", infinity, "USD", 2, 0, "1.5"))
			req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/open-api/v3/business/transfer/internal", bytes.NewReader(body))
			req.Header.Set("x-access-token", e.token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Contains(raw, []byte(`"code":"000000"`)) {
				b.Errorf("answer %s", raw)
				return
			}
		}
	})
	b.StopTimer()
	if n := len(e.ledger().InternalTransfers); n != b.N {
		b.Fatalf("%d transfers for %d requests", n, b.N)
	}
}

// BenchmarkLedger: a snapshot with 10,000 deposits and 10,000 transfers.
func BenchmarkLedger(b *testing.B) {
	srv := sandbox.New(sandbox.Config{Seed: 7})
	defer srv.Close()
	for range 10_000 {
		if _, err := srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1")}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if l := srv.Ledger(); len(l.Deposits) != 10_000 {
			b.Fatal(len(l.Deposits))
		}
	}
}

// BenchmarkInternalTransferHandler measures the server alone (no sockets): its share of a sweep's cost.
func BenchmarkInternalTransferHandler(b *testing.B) {
	e := setup(b, sandbox.Config{})
	if _, err := e.srv.CreateDeposit(context.Background(), sandbox.DepositRequest{Amount: dec("1000000000")}); err != nil {
		b.Fatal(err)
	}
	h := e.srv.Handler()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body, _ := json.Marshal(transferBody(fmt.Sprintf("bench-%d", seq.Add(1)), master, "USDC", infinity, "USD", 2, 0, "1.5"))
			req := httptest.NewRequest(http.MethodPost, "/open-api/v3/business/transfer/internal", bytes.NewReader(body))
			req.Header.Set("x-access-token", e.token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"code":"000000"`)) {
				b.Errorf("answer %d %s", rec.Code, rec.Body.Bytes())
				return
			}
		}
	})
}
