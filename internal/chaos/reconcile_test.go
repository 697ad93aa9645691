package chaos

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

func TestReconcile(t *testing.T) {
	t.Parallel()
	dec := decimal.RequireFromString
	ptr := func(d decimal.Decimal) *decimal.Decimal { return &d }
	dep := func(id string) sandbox.Deposit { return sandbox.Deposit{ID: id, Amount: dec("10"), Currency: "USDC"} }
	ctid := func(id string) string { return ids.SweepTransactionID(id).String() }
	credit := func(depositID, transferID string) sandbox.InternalTransfer {
		return sandbox.InternalTransfer{ID: transferID, ClientTransactionID: ctid(depositID), Credited: dec("9.95")}
	}
	swept := func(depositID, transferID string) LedgerRow {
		return LedgerRow{DepositID: depositID, SweepStatus: "succeeded", ClientTransactionID: ctid(depositID),
			InterlaceTransferID: transferID, CreditedAmount: ptr(dec("9.95"))}
	}
	row := func(depositID, status string) LedgerRow {
		return LedgerRow{DepositID: depositID, SweepStatus: status, ClientTransactionID: ctid(depositID)}
	}

	tests := []struct {
		name      string
		deposits  []sandbox.Deposit
		transfers []sandbox.InternalTransfer
		rows      []LedgerRow
		want      Tally
		problem   string
	}{
		{
			name:     "AllSwept",
			deposits: []sandbox.Deposit{dep("a"), dep("b")},
			transfers: []sandbox.InternalTransfer{
				credit("a", "t-a"),
				// The client transaction id is compared case-insensitively: a UUID's case means nothing.
				{ID: "t-b", ClientTransactionID: strings.ToUpper(ctid("b")), Credited: dec("9.95")},
			},
			rows: []LedgerRow{swept("a", "t-a"), swept("b", "t-b")},
			want: Tally{Deposits: 2, Swept: 2},
		},
		{
			name: "NoLedgerRowIsLost", deposits: []sandbox.Deposit{dep("a")},
			want: Tally{Deposits: 1, Lost: 1}, problem: "no row in sweep_ledger",
		},
		{
			name: "SucceededWithoutUpstreamTransferIsLost", deposits: []sandbox.Deposit{dep("a")},
			rows: []LedgerRow{swept("a", "t-a")},
			want: Tally{Deposits: 1, Lost: 1}, problem: "Interlace has no transfer",
		},
		{
			name: "WrongTransferRecordedIsLost", deposits: []sandbox.Deposit{dep("a")},
			transfers: []sandbox.InternalTransfer{credit("a", "t-a")}, rows: []LedgerRow{swept("a", "t-other")},
			want: Tally{Deposits: 1, Lost: 1}, problem: "Interlace transfer t-a",
		},
		{
			name: "WrongCreditRecordedIsLost", deposits: []sandbox.Deposit{dep("a")},
			transfers: []sandbox.InternalTransfer{credit("a", "t-a")},
			rows: []LedgerRow{{DepositID: "a", SweepStatus: "succeeded", ClientTransactionID: ctid("a"),
				InterlaceTransferID: "t-a", CreditedAmount: ptr(dec("9.9"))}},
			want: Tally{Deposits: 1, Lost: 1}, problem: "credited",
		},
		{
			name: "TwoCreditsAreDoubled", deposits: []sandbox.Deposit{dep("a")},
			transfers: []sandbox.InternalTransfer{credit("a", "t-1"), credit("a", "t-2")},
			rows:      []LedgerRow{swept("a", "t-1")},
			want:      Tally{Deposits: 1, Doubled: 1}, problem: "credited 2 times",
		},
		{
			name: "TransferOfNoDepositIsDoubled", deposits: []sandbox.Deposit{dep("a")},
			transfers: []sandbox.InternalTransfer{credit("a", "t-a"), {ID: "t-x", ClientTransactionID: "0b7c2f7e-1d1e-4c59-9a55-3f0d2b6a9e10"}},
			rows:      []LedgerRow{swept("a", "t-a")},
			want:      Tally{Deposits: 1, Swept: 1, Doubled: 1}, problem: "belongs to no deposit",
		},
		{
			name:     "NotFinishedIsStuck",
			deposits: []sandbox.Deposit{dep("a"), dep("b"), dep("c")},
			rows:     []LedgerRow{row("a", "pending"), row("b", "in_flight"), {DepositID: "c", SweepStatus: "waiting"}},
			want:     Tally{Deposits: 3, Stuck: 3}, problem: "stuck",
		},
		{
			name: "Failed", deposits: []sandbox.Deposit{dep("a")}, rows: []LedgerRow{row("a", "failed")},
			want: Tally{Deposits: 1, Failed: 1}, problem: "failed",
		},
		{
			name: "SkippedIsNeverSwept", deposits: []sandbox.Deposit{dep("a")},
			rows: []LedgerRow{{DepositID: "a", SweepStatus: "skipped"}},
			want: Tally{Deposits: 1, Lost: 1}, problem: "never swept",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Reconcile(tc.deposits, tc.transfers, tc.rows)
			problems := got.Problems
			got.Problems = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("tally %+v, want %+v (problems %q)", got, tc.want, problems)
			}
			if got.OK() != (tc.want.Swept == tc.want.Deposits && tc.problem == "") {
				t.Fatalf("OK() = %v", got.OK())
			}
			if tc.problem == "" && len(problems) > 0 || tc.problem != "" && !strings.Contains(strings.Join(problems, "\n"), tc.problem) {
				t.Fatalf("problems %q, want one mentioning %q", problems, tc.problem)
			}
		})
	}
}

func TestResultLine(t *testing.T) {
	t.Parallel()
	r := Result{Tally: Tally{Deposits: 300, Swept: 299, Stuck: 1}, Elapsed: 41234567890}
	if got, want := r.Line(), "chaos: deposits=300 swept=299 lost=0 doubled=0 stuck=1 failed=0 elapsed=41.2s"; got != want {
		t.Fatalf("%q\nwant %q", got, want)
	}
}
