// Package status is sweeper's one vocabulary: the classes of Interlace's
// statuses (for deposits, transfer answers and withdrawals alike) and the states
// of a deposit and of a sweep. Every other place, SQL included, is tested
// against these definitions instead of keeping its own list.
package status

import "strings"

// Class is what an Interlace status means to sweeper.
type Class string

const (
	// Final: the money is there (a deposit) or moved (a transfer): sweep it / book it.
	Final Class = "final"
	// Waiting: Interlace is still working on it: record, wait, ask again later.
	Waiting Class = "waiting"
	// Failed: Interlace says it did not happen (or was undone): record, never sweep.
	Failed Class = "failed"
	// Unknown: a status sweeper does not know: record, do not act, count and alert.
	Unknown Class = "unknown"
)

// Contract §4: matched case-insensitively, surrounding spaces ignored. Only
// ASCII letters fold, so a look-alike such as "cloſed" is Unknown, not Final.
var classes = map[string]Class{
	"closed": Final, "completed": Final, "complete": Final, "success": Final, "succeeded": Final,
	"pending": Waiting, "processing": Waiting, "in_progress": Waiting, "on_hold": Waiting, "onhold": Waiting, "on-hold": Waiting,
	"fail": Failed, "failed": Failed, "rejected": Failed, "refunded": Failed, "cancelled": Failed, "canceled": Failed,
	"expired": Failed,
}

// Classify maps an Interlace status to its class.
func Classify(s string) Class {
	s = strings.TrimSpace(s)
	if len(s) > 32 {
		return Unknown
	}
	var b [32]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	if c, ok := classes[string(b[:len(s)])]; ok {
		return c
	}
	return Unknown
}

// Known returns every status word Classify recognises, with its class (for
// tests that check another definition against this one).
func Known() map[string]Class {
	out := make(map[string]Class, len(classes))
	for k, v := range classes {
		out[k] = v
	}
	return out
}

// Deposit states (deposits.status).
const (
	DepositPending     = "pending"      // Interlace says waiting
	DepositUnknown     = "unknown"      // an unrecognised upstream status
	DepositFinal       = "final"        // Interlace says the money arrived
	DepositFailed      = "failed"       // Interlace says it did not (or was refunded)
	DepositNeedsReview = "needs_review" // signed, but a money field is unusable: a person decides
)

// Sweep states (sweep_ledger.sweep_status; the first and the skipped one exist
// only in the view, the others are sweeps.status).
const (
	SweepWaiting    = "waiting"    // no sweep yet: the deposit is not final (or not confirmed)
	SweepPending    = "pending"    // due, or backing off before the next attempt
	SweepInFlight   = "in_flight"  // leased by a worker
	SweepSucceeded  = "succeeded"  // Interlace moved it, once
	SweepFailed     = "failed"     // a definite rejection with no unknown attempt before it
	SweepSkipped    = "skipped"    // never to be swept (currency, account, failed deposit)
	SweepHeld       = "held"       // never moves by itself: an operator releases it
	SweepUnresolved = "unresolved" // money may have moved: an operator resolves it with evidence
)
