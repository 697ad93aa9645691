package store

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The refused-delivery sample (contract §10; migrations/00006_webhook_refusals.sql).
const (
	// RefusedSampleSize is how many refused deliveries are kept: the table's ring of slots (its CHECK
	// says the same).
	RefusedSampleSize = 20
	// RefusedBodyMax is how much of a refused body is kept. A real deposit notification is a few KiB, so
	// a cut body is rare and only ever hides the signed part of a delivery that big.
	RefusedBodyMax = 64 << 10
	// refusedHeaderMax cuts each kept header value.
	refusedHeaderMax = 512
)

// RefusedDelivery is one webhook delivery refused with 401, as kept for `sweeper doctor`.
type RefusedDelivery struct {
	ReceivedAt      time.Time
	Reason          string // why it was refused ("missing Signature header", "signature does not match")
	Signature       string // the Signature header
	Timestamp       string // the Timestamp header
	SignatureMethod string // the Signature-Method header
	Body            []byte // at most RefusedBodyMax bytes
	BodySize        int    // the whole body's size (more than len(Body) when it was cut)
}

// Truncated reports whether Body is only the beginning of the delivery.
func (d RefusedDelivery) Truncated() bool { return d.BodySize > len(d.Body) }

// RecordRefused keeps d in the ring, overwriting the oldest slot. A delivery whose body and signature
// are already kept (one of Interlace's retries) is not kept twice.
func (s *Store) RecordRefused(ctx context.Context, d RefusedDelivery) error {
	sum := sha256.Sum256(d.Body)
	size := len(d.Body)
	body := d.Body
	if len(body) > RefusedBodyMax {
		body = body[:RefusedBodyMax]
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO webhook_refusals AS r
       (slot, seq, reason, signature, timestamp_header, signature_method, body, body_size, body_sha256)
SELECT n.v % $1, n.v, $2, $3, $4, $5, $6, $7, $8
  FROM (SELECT nextval('webhook_refusal_seq') AS v) n
 WHERE NOT EXISTS (SELECT 1 FROM webhook_refusals WHERE body_sha256 = $8 AND signature = $3)
    ON CONFLICT (slot) DO UPDATE
   SET seq = EXCLUDED.seq, received_at = now(), reason = EXCLUDED.reason, signature = EXCLUDED.signature,
       timestamp_header = EXCLUDED.timestamp_header, signature_method = EXCLUDED.signature_method,
       body = EXCLUDED.body, body_size = EXCLUDED.body_size, body_sha256 = EXCLUDED.body_sha256`,
		RefusedSampleSize, cut(d.Reason), cut(d.Signature), cut(d.Timestamp), cut(d.SignatureMethod),
		body, size, sum[:])
	return translate("record refused delivery", err)
}

// RefusedDeliveries returns the kept refused deliveries, newest first.
func (s *Store) RefusedDeliveries(ctx context.Context) ([]RefusedDelivery, error) {
	rows, err := s.pool.Query(ctx, `
SELECT received_at, reason, signature, timestamp_header, signature_method, body, body_size
  FROM webhook_refusals ORDER BY seq DESC`)
	if err != nil {
		return nil, translate("refused deliveries", err)
	}
	defer rows.Close()
	var out []RefusedDelivery
	for rows.Next() {
		var d RefusedDelivery
		if err := rows.Scan(&d.ReceivedAt, &d.Reason, &d.Signature, &d.Timestamp, &d.SignatureMethod, &d.Body, &d.BodySize); err != nil {
			return nil, translate("refused deliveries", err)
		}
		out = append(out, d)
	}
	return out, translate("refused deliveries", rows.Err())
}

// cut bounds a header value to refusedHeaderMax bytes on a rune boundary, with invalid UTF-8 replaced
// (a text column refuses it).
func cut(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= refusedHeaderMax {
		return s
	}
	n := refusedHeaderMax
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RefusalSampler feeds the refused-delivery sample from the webhook handler's 401 path. Writes are
// rate-limited by a token bucket: a burst of RefusalBurst, then one every RefusalEvery. That bounds what
// a flood of garbage signed with nothing can cost, whatever its rate: at most one 64 KiB row write a
// minute per process (about 90 MiB of WAL a day at worst), never a growing table. The price is that
// during such a flood most refusals are not sampled; real deliveries are retried by Interlace (16 times
// over hours) and each retry gets another chance.
type RefusalSampler struct {
	store   *Store
	now     func() time.Time
	timeout time.Duration

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

const (
	// RefusalBurst is how many refusals are sampled back to back before the rate limit applies.
	RefusalBurst = 10
	// RefusalEvery is the sustained sampling rate after the burst.
	RefusalEvery = time.Minute
)

// NewRefusalSampler returns a sampler writing to s.
func NewRefusalSampler(s *Store) *RefusalSampler {
	return &RefusalSampler{store: s, now: time.Now, timeout: 2 * time.Second, tokens: RefusalBurst}
}

// WithClock replaces time.Now (tests).
func (r *RefusalSampler) WithClock(now func() time.Time) *RefusalSampler {
	r.now = now
	r.last = now()
	return r
}

// allow takes a token from the bucket if there is one.
func (r *RefusalSampler) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !r.last.IsZero() {
		r.tokens = min(RefusalBurst, r.tokens+float64(now.Sub(r.last))/float64(RefusalEvery))
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// Refused samples one refused delivery; it reports whether it was kept. It never fails the caller: the
// sample is a diagnosis aid, and the 401 is answered whatever happens here.
func (r *RefusalSampler) Refused(ctx context.Context, d RefusedDelivery) bool {
	if !r.allow() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	return r.store.RecordRefused(ctx, d) == nil
}
