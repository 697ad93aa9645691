package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sweeperhq/sweeper/internal/metrics"
	"github.com/sweeperhq/sweeper/internal/store"
)

// countingRecorder stands in for the database so that the benchmark measures the
// handler's own work per webhook: read, verify, parse, classify, log, answer.
type countingRecorder struct{ n int }

func (r *countingRecorder) Ingest(_ context.Context, d store.Delivery) (store.Effect, error) {
	r.n++
	if d.Deposit == nil {
		return "", io.ErrUnexpectedEOF
	}
	return store.EffectCreated, nil
}

// BenchmarkHandler is the CPU a signed deposit webhook costs the app before the
// database (docs/PERFORMANCE.md), with production logging (JSON, info) and metrics.
func BenchmarkHandler(b *testing.B) {
	body := envelopeBody(b, "0b7c2f7e-1d1e-4c59-9a55-3f0d2b6a9e10", "CRYPTO_TRANSFER.UPDATED", sampleDeposit)
	sig := sign(testSecret, mustEnvelope(b, body).Resource)
	rec := &countingRecorder{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	h, err := NewHandler(Options{
		Verifier: mustVerifier(b, SignedResource, testSecret), Recorder: rec,
		AccountID: "b27c8873-e400-47cd-adc1-035cfa0d5347", SweepCurrencies: []string{"USDC"},
		Logger: log, Metrics: metrics.New(prometheus.NewRegistry(), nil),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/interlace", bytes.NewReader(body))
		req.Header.Set("Signature", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if rec.n == 0 {
		b.Fatal("nothing recorded")
	}
}
