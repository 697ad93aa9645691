package store_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sweeperhq/sweeper/internal/store"
)

func refused(i int, body []byte) store.RefusedDelivery {
	return store.RefusedDelivery{Reason: "signature does not match", Signature: fmt.Sprintf("sig-%d", i),
		Timestamp: "1700000000", SignatureMethod: "HmacSHA256", Body: body, BodySize: len(body)}
}

// TestRefusedSampleIsABoundedRing: 25 refusals leave exactly the 20 newest, newest first; a body over
// 64 KiB is cut (its size kept); a retry of a kept delivery is not kept twice; oversized, invalid
// headers are cut and cleaned instead of failing the write.
func TestRefusedSampleIsABoundedRing(t *testing.T) {
	s, b := setup(t)
	for i := range 25 {
		if err := s.RecordRefused(b.ctx, refused(i, []byte(fmt.Sprintf(`{"n":%d}`, i)))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RefusedDeliveries(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.RefusedSampleSize {
		t.Fatalf("kept %d, want %d", len(got), store.RefusedSampleSize)
	}
	for i, d := range got {
		if want := fmt.Sprintf(`{"n":%d}`, 24-i); string(d.Body) != want || d.Signature != fmt.Sprintf("sig-%d", 24-i) {
			t.Fatalf("row %d = %s %s, want %s (newest first)", i, d.Body, d.Signature, want)
		}
	}
	if n := b.count(t, "SELECT count(*) FROM webhook_refusals"); n != store.RefusedSampleSize {
		t.Fatalf("table holds %d rows", n)
	}

	// A retry of the newest (same body, same signature) is not kept again.
	if err := s.RecordRefused(b.ctx, refused(24, []byte(`{"n":24}`))); err != nil {
		t.Fatal(err)
	}
	got, _ = s.RefusedDeliveries(b.ctx)
	if string(got[1].Body) != `{"n":23}` {
		t.Fatalf("a retry was kept twice: second newest is %s", got[1].Body)
	}

	big := bytes.Repeat([]byte("x"), store.RefusedBodyMax+1000)
	d := refused(99, big)
	d.Signature = strings.Repeat("é", 600) + "\xff"
	if err := s.RecordRefused(b.ctx, d); err != nil {
		t.Fatal(err)
	}
	got, _ = s.RefusedDeliveries(b.ctx)
	if len(got[0].Body) != store.RefusedBodyMax || got[0].BodySize != len(big) || !got[0].Truncated() {
		t.Fatalf("big body kept as %d bytes (size %d)", len(got[0].Body), got[0].BodySize)
	}
	if len(got[0].Signature) > 512 {
		t.Fatalf("header kept as %d bytes", len(got[0].Signature))
	}
}

// TestRefusalSamplerRateLimit: a flood gets RefusalBurst writes, then one per RefusalEvery.
func TestRefusalSamplerRateLimit(t *testing.T) {
	s, b := setup(t)
	now := time.Now()
	r := store.NewRefusalSampler(s).WithClock(func() time.Time { return now })
	kept := 0
	for i := range 1000 {
		if r.Refused(b.ctx, refused(i, []byte(fmt.Sprintf("garbage %d", i)))) {
			kept++
		}
	}
	if kept != store.RefusalBurst {
		t.Fatalf("a flood of 1000 kept %d, want the burst of %d", kept, store.RefusalBurst)
	}
	now = now.Add(store.RefusalEvery / 2)
	if r.Refused(b.ctx, refused(1000, []byte("half a period later"))) {
		t.Fatal("kept one before a whole period passed")
	}
	now = now.Add(store.RefusalEvery / 2)
	if !r.Refused(b.ctx, refused(1001, []byte("a period later"))) {
		t.Fatal("not kept after a whole period")
	}
	if n := b.count(t, "SELECT count(*) FROM webhook_refusals"); n != store.RefusalBurst+1 {
		t.Fatalf("table holds %d rows, want %d", n, store.RefusalBurst+1)
	}
}
