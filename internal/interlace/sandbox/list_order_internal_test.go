package sandbox

import "testing"

// The list's binary search needs s.transfers ordered by createTime even when a
// caller stamped its clock before another that took the lock first.
func TestAddTransferKeepsCreateTimeOrder(t *testing.T) {
	var s Server
	for i, ms := range []int64{10, 30, 20, 30, 5, 40} {
		s.addTransferLocked(xref{idx: i, createMs: ms})
	}
	want := []struct {
		idx int
		ms  int64
	}{{4, 5}, {0, 10}, {2, 20}, {1, 30}, {3, 30}, {5, 40}}
	if len(s.transfers) != len(want) {
		t.Fatalf("%d transfers, want %d", len(s.transfers), len(want))
	}
	for i, w := range want {
		if got := s.transfers[i]; got.idx != w.idx || got.createMs != w.ms {
			t.Errorf("transfers[%d] = idx %d at %d ms, want idx %d at %d ms", i, got.idx, got.createMs, w.idx, w.ms)
		}
	}
}
