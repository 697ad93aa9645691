package chaos

import (
	"fmt"
	"sort"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// LedgerRow is what the verdict needs of one sweep_ledger row.
type LedgerRow struct {
	DepositID           string
	SweepStatus         string
	ClientTransactionID string // "" when no sweep exists
	InterlaceTransferID string
	CreditedAmount      *decimal.Decimal
	LastError           string
}

// Tally is the verdict: every deposit the sandbox made lands in exactly one of
// Swept, Lost, Doubled, Stuck or Failed; Doubled also counts upstream transfers
// that belong to no deposit at all.
type Tally struct {
	Deposits int
	Swept    int
	Lost     int
	Doubled  int
	Stuck    int
	Failed   int
	// Problems describe every deposit that is not Swept (the first ones are printed).
	Problems []string
}

// OK is the harness' pass condition. Failed counts too: no fault the harness
// injects is a rejection, so a failed sweep under chaos is a bug as well.
func (t Tally) OK() bool {
	return t.Lost == 0 && t.Doubled == 0 && t.Stuck == 0 && t.Failed == 0 && t.Swept == t.Deposits
}

// Reconcile compares what Interlace (the sandbox) did with what sweeper
// recorded. It trusts neither side: a deposit is swept only when the sandbox
// credited it exactly once, under the deposit's deterministic
// clientTransactionId, and sweep_ledger says succeeded with that very transfer
// and amount.
func Reconcile(deposits []sandbox.Deposit, transfers []sandbox.InternalTransfer, rows []LedgerRow) Tally {
	t := Tally{Deposits: len(deposits)}
	byCTID := map[string][]sandbox.InternalTransfer{}
	for _, tr := range transfers {
		k := strings.ToLower(tr.ClientTransactionID)
		byCTID[k] = append(byCTID[k], tr)
	}
	byDeposit := make(map[string]LedgerRow, len(rows))
	for _, r := range rows {
		byDeposit[r.DepositID] = r
	}
	known := make(map[string]bool, len(deposits))
	problem := func(format string, args ...any) { t.Problems = append(t.Problems, fmt.Sprintf(format, args...)) }

	for _, d := range deposits {
		ctid := ids.SweepTransactionID(d.ID).String()
		known[ctid] = true
		credits := byCTID[ctid]
		row, inLedger := byDeposit[d.ID]
		switch {
		case len(credits) > 1:
			t.Doubled++
			problem("doubled: deposit %s credited %d times upstream", d.ID, len(credits))
		case !inLedger:
			t.Lost++
			problem("lost: deposit %s (%s %s) has no row in sweep_ledger", d.ID, d.Amount, d.Currency)
		case row.SweepStatus == "succeeded":
			if msg := disagreement(row, ctid, credits); msg != "" {
				t.Lost++
				problem("lost: deposit %s: %s", d.ID, msg)
			} else {
				t.Swept++
			}
		case row.SweepStatus == "failed":
			t.Failed++
			problem("failed: deposit %s: sweep failed (upstream credits: %d)", d.ID, len(credits))
		case row.SweepStatus == "waiting" || row.SweepStatus == "pending" || row.SweepStatus == "in_flight":
			t.Stuck++
			problem("stuck: deposit %s: sweep %s at the end (upstream credits: %d)", d.ID, row.SweepStatus, len(credits))
		default:
			t.Lost++
			problem("lost: deposit %s: sweep %s, never swept", d.ID, row.SweepStatus)
		}
	}
	n, stray := strayTransfers(byCTID, known)
	t.Doubled += n
	t.Problems = append(t.Problems, stray...)
	return t
}

// strayTransfers counts the transfers under an id that is no deposit's: they
// moved money nobody asked for. It explains each, in a stable order.
func strayTransfers(byCTID map[string][]sandbox.InternalTransfer, known map[string]bool) (int, []string) {
	n := 0
	var stray []string
	for ctid, trs := range byCTID {
		if !known[ctid] {
			n += len(trs)
			stray = append(stray, fmt.Sprintf("doubled: transfer under clientTransactionId %s belongs to no deposit (%d)", ctid, len(trs)))
		}
	}
	sort.Strings(stray)
	return n, stray
}

// disagreement explains how a succeeded ledger row contradicts the sandbox, or
// returns "".
func disagreement(row LedgerRow, ctid string, credits []sandbox.InternalTransfer) string {
	if len(credits) == 0 {
		return "sweep_ledger says succeeded, Interlace has no transfer"
	}
	tr := credits[0]
	switch {
	case !strings.EqualFold(row.ClientTransactionID, ctid):
		return fmt.Sprintf("sweep_ledger clientTransactionId %s, expected %s", row.ClientTransactionID, ctid)
	case row.InterlaceTransferID != tr.ID:
		return fmt.Sprintf("sweep_ledger transfer %s, Interlace transfer %s", row.InterlaceTransferID, tr.ID)
	case row.CreditedAmount == nil || !row.CreditedAmount.Equal(tr.Credited):
		return fmt.Sprintf("sweep_ledger credited %v, Interlace credited %s", row.CreditedAmount, tr.Credited)
	}
	return ""
}
