package webhook

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestClassifyWithdrawal: a blockchain transfer notification is read as strictly
// as a deposit; what cannot be trusted is unusable (kept, changes nothing), and
// what names nothing of ours is no notice at all.
func TestClassifyWithdrawal(t *testing.T) {
	key := "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
	base := func(extra string) string {
		return `{"source":{"type":"cryptoconnect_wallet","id":"bw"},"destination":{"type":" Blockchain ","chain":"ETH","address":"0xd8b5"}` + extra + `}`
	}
	for _, tc := range []struct {
		name     string
		resource string
		unusable string // substring of the reason; "" = usable
		notice   bool
		id, hash string
		key      bool
	}{
		{"ClosedWithHash", base(`,"id":"ct-1","idempotencyKey":"` + key + `","status":"Closed","transactionHash":"0xfeed"`), "", true, "ct-1", "0xfeed", true},
		{"TxHashSpelling", base(`,"id":"ct-1","status":"Closed","txHash":"0xbeef"`), "", true, "ct-1", "0xbeef", false},
		{"PendingNoHash", base(`,"id":"ct-1","status":"Pending","transactionHash":null`), "", true, "ct-1", "", false},
		{"ForeignKeyOnlyIsNotOurs", base(`,"idempotencyKey":"order-7","status":"Closed"`), "", false, "", "", false},
		{"DepositIsNotANotice", `{"id":"t","destination":{"type":"cryptoconnect_wallet","id":"w"},"status":"Closed"}`, "", false, "", "", false},
		{"NoStatus", base(`,"id":"ct-1"`), "without a status", false, "", "", false},
		{"StatusNotString", base(`,"id":"ct-1","status":3`), "status is not a string", false, "", "", false},
		{"IDObject", base(`,"id":{"x":1},"status":"Closed"`), "id is not a string", false, "", "", false},
		{"HashWithControl", base(`,"id":"ct-1","status":"Closed","transactionHash":"0x\u0000ff"`), "transactionHash", false, "", "", false},
		{"HugeID", base(`,"id":"` + strings.Repeat("9", 200) + `","status":"Closed"`), "id is not visible ASCII", false, "", "", false},
		{"DuplicateStatus", base(`,"id":"ct-1","status":"Pending","status":"Closed"`), "", false, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ClassifyWithdrawal(tc.resource)
			if tc.name == "DuplicateStatus" {
				if !errors.Is(err, ErrUnusable) {
					t.Fatalf("duplicate keys accepted: %+v %v", n, err)
				}
				return
			}
			if tc.unusable != "" {
				if !errors.Is(err, ErrUnusable) || !strings.Contains(err.Error(), tc.unusable) {
					t.Fatalf("err %v, want unusable %q", err, tc.unusable)
				}
				return
			}
			if err != nil || (n != nil) != tc.notice {
				t.Fatalf("notice %+v err %v", n, err)
			}
			if n != nil && (n.TransferID != tc.id || n.TxHash != tc.hash || (n.IdempotencyKey != uuid.Nil) != tc.key) {
				t.Fatalf("notice %+v", n)
			}
		})
	}
}
