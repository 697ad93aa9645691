package chaos

import (
	"fmt"
	"strings"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
	"github.com/sweeperhq/sweeper/internal/status"
)

// Verdict is the realistic run's judgement (contract §12). It is computed
// from the sandbox's ledger — what Interlace really did and what it answered —
// and only then compared with sweep_ledger, so a sweeper that shares the
// sandbox's assumptions cannot pass by agreeing with itself.
//
// Every deposit the sandbox made lands in exactly one of Swept, Refused (a
// correct "never swept": the deposit was refunded and nothing moved), Failed,
// Held, Unresolved, Lost, Stuck or Misbooked. Doubled and WrongAmount are
// counted across transfers: they can come on top.
type Verdict struct {
	Deposits int
	Swept    int
	// Refused counts refunded deposits that were rightly never swept.
	Refused int
	Failed  int
	Held    int
	// Unresolved counts deposits whose sweep sweeper left to an operator
	// because money may have moved.
	Unresolved int
	Lost       int
	Doubled    int
	Stuck      int
	// Misbooked counts deposits whose sweep_status contradicts the sandbox's
	// ledger: succeeded but not applied exactly once (or with another transfer
	// or credit than Interlace's), failed, skipped or held although applied.
	Misbooked int
	// WrongAmount counts applied transfers whose amount or currency differs
	// from their deposit's.
	WrongAmount int
	// Ambiguous counts deposits the sandbox's answers show to be genuinely
	// ambiguous to a client: the last answer under the deposit's
	// clientTransactionId was a rejection, and an earlier one left the outcome
	// unknown (a fault, a dropped connection, a PENDING). Sweeper should leave
	// exactly these unresolved; AmbiguityMismatch counts the deposits where
	// unresolved and ambiguous disagree.
	Ambiguous         int
	AmbiguityMismatch int
	// Refunded, WebhooksDropped and Legacy describe what the sandbox did.
	Refunded, WebhooksDropped, Legacy int
	// Problems explain every deposit that is not plainly swept.
	Problems []string
}

// OK is the realistic pass condition of contract §12: nothing lost, doubled,
// stuck, misbooked or moved with a wrong amount. Held, unresolved and failed
// are honest states, reported but not failures of the run.
func (v Verdict) OK() bool {
	return v.Lost == 0 && v.Doubled == 0 && v.Stuck == 0 && v.Misbooked == 0 && v.WrongAmount == 0
}

// The answer classes the sandbox records per idempotency key.
const (
	ansApplied   = sandbox.AnswerApplied
	ansReplayed  = sandbox.AnswerReplayed
	ansPending   = sandbox.AnswerPending
	ansDuplicate = sandbox.AnswerDuplicateError
	ansRejected  = sandbox.AnswerRejected
	ansFault     = sandbox.AnswerFault
	ansDropped   = sandbox.AnswerDroppedPrefix
)

// ambiguous reports whether a client that saw these answers, in order, could
// not know whether its transfer moved money: it ended on a rejection after at
// least one answer that left the outcome open. A client never sees what a
// dropped answer would have said.
func ambiguous(answers []string) bool {
	if len(answers) < 2 {
		return false
	}
	last := answers[len(answers)-1]
	if last != ansDuplicate && last != ansRejected {
		return false
	}
	for _, a := range answers[:len(answers)-1] {
		if a == ansFault || a == ansPending || a == ansApplied || a == ansReplayed || strings.HasPrefix(a, ansDropped) {
			return true
		}
	}
	return false
}

// Judge compares the sandbox's ledger with sweep_ledger.
func Judge(led sandbox.Ledger, rows []LedgerRow) Verdict {
	v := Verdict{Deposits: len(led.Deposits)}
	applied := map[string][]sandbox.InternalTransfer{}
	for _, tr := range led.InternalTransfers {
		if tr.Applied {
			k := strings.ToLower(tr.ClientTransactionID)
			applied[k] = append(applied[k], tr)
		}
	}
	byDeposit := make(map[string]LedgerRow, len(rows))
	for _, r := range rows {
		byDeposit[r.DepositID] = r
	}
	known := make(map[string]bool, len(led.Deposits))
	problem := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }

	for _, d := range led.Deposits {
		ctid := ids.SweepTransactionID(d.ID).String()
		known[ctid] = true
		credits := applied[ctid]
		refunded := status.Classify(d.Status) == status.Failed
		if refunded {
			v.Refunded++
		}
		if d.WebhooksDropped {
			v.WebhooksDropped++
		}
		if d.LegacyEnvelope {
			v.Legacy++
		}
		for _, tr := range credits {
			if !tr.Amount.Equal(d.Amount) || !strings.EqualFold(tr.From.Currency, d.Currency) || tr.WalletID != d.WalletID {
				v.WrongAmount++
				problem("wrong_amount: deposit %s is %s %s in wallet %s, transfer %s moved %s %s from %s",
					d.ID, d.Amount, d.Currency, d.WalletID, tr.ID, tr.Amount, tr.From.Currency, tr.WalletID)
			}
		}
		answers := led.AnswersByIdempotencyKey[ctid]
		amb := ambiguous(answers)
		if amb {
			v.Ambiguous++
		}
		row, inLedger := byDeposit[d.ID]
		if inLedger && (row.SweepStatus == status.SweepUnresolved) != amb {
			v.AmbiguityMismatch++
			problem("ambiguity: deposit %s is %s, the sandbox's answers were %v", d.ID, row.SweepStatus, answers)
		}
		switch {
		case len(credits) > 1:
			v.Doubled++
			problem("doubled: deposit %s credited %d times upstream", d.ID, len(credits))
		case !inLedger:
			v.Lost++
			problem("lost: deposit %s (%s %s, %s, webhooks dropped=%v, legacy=%v) has no row in sweep_ledger",
				d.ID, d.Amount, d.Currency, d.Status, d.WebhooksDropped, d.LegacyEnvelope)
		case row.SweepStatus == status.SweepSucceeded:
			if msg := disagreement(row, ctid, credits); msg != "" {
				v.Misbooked++
				problem("misbooked: deposit %s: %s", d.ID, msg)
			} else {
				v.Swept++
			}
		case row.SweepStatus == status.SweepUnresolved:
			// Honest whatever happened upstream: an operator settles it with evidence.
			v.Unresolved++
			problem("unresolved: deposit %s (upstream credits: %d, answers %v)", d.ID, len(credits), answers)
		case len(credits) == 1:
			v.Misbooked++
			problem("misbooked: deposit %s is %s although Interlace applied transfer %s", d.ID, row.SweepStatus, credits[0].ID)
		case row.SweepStatus == status.SweepWaiting || row.SweepStatus == status.SweepPending || row.SweepStatus == status.SweepInFlight:
			v.Stuck++
			problem("stuck: deposit %s: sweep %s at the end (deposit %s)", d.ID, row.SweepStatus, d.Status)
		case row.SweepStatus == status.SweepHeld:
			v.Held++
			problem("held: deposit %s (%s): %s", d.ID, d.Status, row.LastError)
		case refunded:
			// Failed, skipped: nothing moved and nothing should have.
			v.Refused++
		case row.SweepStatus == status.SweepFailed:
			v.Failed++
			problem("failed: deposit %s (%s) not swept: %s", d.ID, d.Status, row.LastError)
		default:
			// Skipped although Interlace says the money is there: never swept.
			v.Lost++
			problem("lost: deposit %s (%s): sweep %s, never swept: %s", d.ID, d.Status, row.SweepStatus, row.LastError)
		}
	}
	n, stray := strayTransfers(applied, known)
	v.Doubled += n
	v.Problems = append(v.Problems, stray...)
	return v
}
