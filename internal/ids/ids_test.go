package ids

import (
	"testing"

	"github.com/google/uuid"
)

// The ids are part of the money protocol: a change here would make a replayed
// sweep look like a new transfer upstream. The golden values were computed by an
// independent implementation (Python's uuid.uuid5), not by this code.
func TestIDsAreStableForever(t *testing.T) {
	w := uuid.MustParse("00000000-0000-0000-0000-000000000001")
	tests := []struct {
		name string
		got  uuid.UUID
		want string
	}{
		{"sweep", SweepTransactionID("aba46642-edcf-4faa-8942-7d63c967fb07"), "5858b107-d1c5-5e8e-b436-886dfa9f5238"},
		{"withdrawal", WithdrawalID("payout-42"), "1911518a-cf72-5013-8b37-564b1f6bed6c"},
		{"step", WithdrawalStepID(w, "transfer"), "b94f6fd2-c803-59ee-9dc6-4ac1bafb73cd"},
		{"wallet", WalletReferenceID("user-1"), "79e49d79-77b1-597f-84db-9cda312741ce"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got.Version() != 5 {
				t.Fatalf("version %d, want 5", tc.got.Version())
			}
			if tc.got.String() != tc.want {
				t.Fatalf("got %s, want %s", tc.got, tc.want)
			}
		})
	}
}

func TestIDsDifferByInput(t *testing.T) {
	w := uuid.MustParse("00000000-0000-0000-0000-000000000001")
	seen := map[uuid.UUID]string{}
	for name, id := range map[string]uuid.UUID{
		"d1": SweepTransactionID("d1"), "d2": SweepTransactionID("d2"),
		"s1": WithdrawalStepID(w, "transfer"), "s2": WithdrawalStepID(w, "trade"),
		"w1": WalletReferenceID("d1"), "k1": WithdrawalID("d1"),
	} {
		if prev, ok := seen[id]; ok {
			t.Fatalf("%s and %s share id %s", name, prev, id)
		}
		seen[id] = name
	}
}
