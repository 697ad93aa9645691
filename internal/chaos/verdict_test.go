package chaos

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

func TestJudge(t *testing.T) {
	t.Parallel()
	dec := decimal.RequireFromString
	ptr := func(d decimal.Decimal) *decimal.Decimal { return &d }
	ctid := func(id string) string { return ids.SweepTransactionID(id).String() }
	dep := func(id, st string) sandbox.Deposit {
		return sandbox.Deposit{ID: id, WalletID: "w", Amount: dec("10"), Currency: "USDC", Status: st}
	}
	applied := func(depositID, transferID string) sandbox.InternalTransfer {
		return sandbox.InternalTransfer{ID: transferID, ClientTransactionID: ctid(depositID), WalletID: "w",
			From: sandbox.TransferSide{Currency: "USDC"}, Amount: dec("10"), Credited: dec("9.95"), Status: "CLOSED", Applied: true}
	}
	swept := func(depositID, transferID string) LedgerRow {
		return LedgerRow{DepositID: depositID, SweepStatus: "succeeded", ClientTransactionID: ctid(depositID),
			InterlaceTransferID: transferID, CreditedAmount: ptr(dec("9.95"))}
	}
	row := func(depositID, st string) LedgerRow { return LedgerRow{DepositID: depositID, SweepStatus: st} }
	answers := func(depositID string, as ...string) map[string][]string {
		return map[string][]string{ctid(depositID): as}
	}

	tests := []struct {
		name    string
		led     sandbox.Ledger
		rows    []LedgerRow
		want    Verdict
		ok      bool
		problem string
	}{
		{
			name: "SweptOnce",
			led:  sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}, InternalTransfers: []sandbox.InternalTransfer{applied("a", "t")}},
			rows: []LedgerRow{swept("a", "t")}, want: Verdict{Deposits: 1, Swept: 1}, ok: true,
		},
		{
			name: "PendingTransferNotAppliedDoesNotCount",
			led: sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}, InternalTransfers: []sandbox.InternalTransfer{
				{ID: "t", ClientTransactionID: ctid("a"), Status: "PENDING"}}},
			rows: []LedgerRow{swept("a", "t")}, want: Verdict{Deposits: 1, Misbooked: 1}, problem: "Interlace has no transfer",
		},
		{
			name: "FailedButAppliedIsMisbooked",
			led:  sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}, InternalTransfers: []sandbox.InternalTransfer{applied("a", "t")}},
			rows: []LedgerRow{row("a", "failed")}, want: Verdict{Deposits: 1, Misbooked: 1}, problem: "although Interlace applied",
		},
		{
			name: "HeldButAppliedIsMisbooked",
			led:  sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}, InternalTransfers: []sandbox.InternalTransfer{applied("a", "t")}},
			rows: []LedgerRow{row("a", "held")}, want: Verdict{Deposits: 1, Misbooked: 1}, problem: "misbooked",
		},
		{
			name: "WrongAmountMoved",
			led: sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}, InternalTransfers: []sandbox.InternalTransfer{func() sandbox.InternalTransfer {
				tr := applied("a", "t")
				tr.Amount = dec("9.99")
				return tr
			}()}},
			rows: []LedgerRow{swept("a", "t")}, want: Verdict{Deposits: 1, Swept: 1, WrongAmount: 1}, problem: "wrong_amount",
		},
		{
			name: "RefundedAndNeverSweptIsRight",
			led:  sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Refunded"), dep("b", "Refunded")}},
			rows: []LedgerRow{row("a", "skipped"), row("b", "failed")},
			want: Verdict{Deposits: 2, Refunded: 2, Refused: 2}, ok: true,
		},
		{
			name: "SkippedButThereIsLost",
			led:  sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}},
			rows: []LedgerRow{row("a", "skipped")}, want: Verdict{Deposits: 1, Lost: 1}, problem: "never swept",
		},
		{
			name: "DroppedWebhookNeverRecordedIsLost",
			led: sandbox.Ledger{Deposits: []sandbox.Deposit{func() sandbox.Deposit {
				d := dep("a", "Closed")
				d.WebhooksDropped = true
				return d
			}()}},
			want: Verdict{Deposits: 1, Lost: 1, WebhooksDropped: 1}, problem: "no row in sweep_ledger",
		},
		{
			name: "TimeoutThenDuplicateErrorIsUnresolved",
			led: sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}, InternalTransfers: []sandbox.InternalTransfer{applied("a", "t")},
				AnswersByIdempotencyKey: answers("a", "dropped:applied", "duplicate_error")},
			rows: []LedgerRow{row("a", "unresolved")}, want: Verdict{Deposits: 1, Unresolved: 1, Ambiguous: 1}, ok: true,
		},
		{
			name: "TimeoutThenDuplicateErrorBookedFailedIsMisbookedAndMismatched",
			led: sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}, InternalTransfers: []sandbox.InternalTransfer{applied("a", "t")},
				AnswersByIdempotencyKey: answers("a", "dropped:applied", "duplicate_error")},
			rows: []LedgerRow{row("a", "failed")}, want: Verdict{Deposits: 1, Misbooked: 1, Ambiguous: 1, AmbiguityMismatch: 1},
			problem: "ambiguity",
		},
		{
			name: "PlainRejectionIsNotAmbiguous",
			led: sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Refunded")},
				AnswersByIdempotencyKey: answers("a", "rejected")},
			rows: []LedgerRow{row("a", "failed")}, want: Verdict{Deposits: 1, Refunded: 1, Refused: 1}, ok: true,
		},
		{
			name: "UnresolvedWithoutAmbiguityIsReported",
			led: sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")},
				AnswersByIdempotencyKey: answers("a", "fault", "fault")},
			rows: []LedgerRow{row("a", "unresolved")}, want: Verdict{Deposits: 1, Unresolved: 1, AmbiguityMismatch: 1}, ok: true,
			problem: "ambiguity",
		},
		{
			name: "DoubledAndStray",
			led: sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}, InternalTransfers: []sandbox.InternalTransfer{
				applied("a", "t1"), applied("a", "t2"), applied("zzz", "t3")}},
			rows: []LedgerRow{swept("a", "t1")}, want: Verdict{Deposits: 1, Doubled: 2}, problem: "belongs to no deposit",
		},
		{
			name: "WaitingIsStuck",
			led:  sandbox.Ledger{Deposits: []sandbox.Deposit{dep("a", "Closed")}},
			rows: []LedgerRow{row("a", "waiting")}, want: Verdict{Deposits: 1, Stuck: 1}, problem: "stuck",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Judge(tc.led, tc.rows)
			problems := got.Problems
			got.Problems = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("verdict %+v\nwant    %+v\n(problems %q)", got, tc.want, problems)
			}
			if got.OK() != tc.ok {
				t.Fatalf("OK() = %v, want %v", got.OK(), tc.ok)
			}
			if tc.problem != "" && !strings.Contains(strings.Join(problems, "\n"), tc.problem) {
				t.Fatalf("problems %q, want one mentioning %q", problems, tc.problem)
			}
		})
	}
}

func TestAmbiguous(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		answers []string
		want    bool
	}{
		{nil, false},
		{[]string{"applied"}, false},
		{[]string{"rejected"}, false},
		{[]string{"duplicate_error"}, false},
		{[]string{"rejected", "rejected"}, false},
		{[]string{"fault", "applied"}, false},
		{[]string{"fault", "rejected"}, true},
		{[]string{"pending", "duplicate_error"}, true},
		{[]string{"dropped:pending", "pending", "duplicate_error"}, true},
		{[]string{"applied", "duplicate_error"}, true}, // the answer reached a process that died
		{[]string{"dropped:applied", "replayed"}, false},
	} {
		if got := ambiguous(tc.answers); got != tc.want {
			t.Errorf("ambiguous(%q) = %v, want %v", tc.answers, got, tc.want)
		}
	}
}
