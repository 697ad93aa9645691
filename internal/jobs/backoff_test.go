package jobs

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	base, maxDelay := time.Second, 5*time.Minute
	tests := []struct {
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{1, 0, 500 * time.Millisecond, time.Second},               // the first retry comes within a few seconds
		{2, 0, time.Second, 2 * time.Second},                      // then doubles
		{4, 0, 4 * time.Second, 8 * time.Second},                  //
		{30, 0, maxDelay / 2, maxDelay},                           // capped, still jittered
		{1, 90 * time.Second, 90 * time.Second, 90 * time.Second}, // Retry-After wins when longer
		{1, 3 * time.Hour, time.Hour, time.Hour},                  // but is bounded
	}
	for _, tc := range tests {
		seen := map[time.Duration]bool{}
		for i := 0; i < 200; i++ {
			d := Backoff(tc.attempt, base, maxDelay, tc.retryAfter)
			if d < tc.lo || d > tc.hi {
				t.Fatalf("attempt %d retryAfter %s: %s outside [%s, %s]", tc.attempt, tc.retryAfter, d, tc.lo, tc.hi)
			}
			seen[d] = true
		}
		if tc.retryAfter == 0 && len(seen) < 10 {
			t.Fatalf("attempt %d: no jitter (%d distinct delays)", tc.attempt, len(seen))
		}
	}
}
