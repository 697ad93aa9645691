package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sweeperhq/sweeper/internal/ids"
	"github.com/sweeperhq/sweeper/internal/interlace/sandbox"
)

// A transfer that Interlace applied but whose answer never arrived (the
// connection dropped after the commit) has an unknown outcome. It is resolved
// by replaying the identical request — same id, same body, same
// Idempotency-Key — which returns the first result; the audit trail shows each
// unknown attempt as a retry with its error, then the success.
func TestUnknownOutcomeIsResolvedByReplayingTheSameRequest(t *testing.T) {
	t.Parallel()
	s := start(t, sysOpts{})
	s.waitFor(s.deposit("1").ID, "succeeded") // the worker knows the Infinity wallet now

	s.sandbox.SetFaults(sandbox.Faults{TimeoutAfterCommitRate: 1})
	d := s.deposit("5")
	ctid := ids.SweepTransactionID(d.ID).String()
	deadline := time.Now().Add(15 * time.Second)
	for {
		led := s.sandbox.Ledger()
		retries := s.count(`SELECT count(*) FROM sweep_attempts WHERE deposit_id = $1 AND outcome = 'retry'`, d.ID)
		if applied(led, ctid) == 1 && retries >= 2 {
			break // applied by the first request, and a replay's answer dropped too
		}
		if time.Now().After(deadline) {
			t.Fatalf("no applied-then-dropped transfer: applied %d, retries %d", applied(led, ctid), retries)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.sandbox.SetFaults(sandbox.Faults{})
	row := s.waitFor(d.ID, "succeeded")

	led := s.sandbox.Ledger()
	if n := applied(led, ctid); n != 1 {
		t.Fatalf("applied upstream %d times", n)
	}
	var first sandbox.InternalTransfer
	for _, tr := range led.InternalTransfers {
		if tr.ClientTransactionID == ctid {
			first = tr
		}
	}
	if row.InterlaceTransferID == nil || *row.InterlaceTransferID != first.ID || !row.CreditedAmount.Equal(first.Credited) {
		t.Fatalf("ledger recorded %v / %v, the transfer applied by the first request is %s / %s",
			row.InterlaceTransferID, row.CreditedAmount, first.ID, first.Credited)
	}
	// The sandbox compares every replay with the first request: any difference
	// in the body would be counted here.
	if c := led.IdempotencyConflicts[ctid]; c != 0 {
		t.Fatalf("%d replays differed from the first request", c)
	}
	if first.IdempotencyKey != ctid {
		t.Fatalf("Idempotency-Key %q, want the clientTransactionId %s", first.IdempotencyKey, ctid)
	}

	type attempt struct {
		n          int
		ctid       string
		outcome    string
		httpStatus *int
		err        string
	}
	rows, err := s.pool.Query(context.Background(), `SELECT attempt, client_transaction_id::text, outcome, http_status, COALESCE(error, '')
  FROM sweep_attempts WHERE deposit_id = $1 ORDER BY started_at, id`, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	attempts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (attempt, error) {
		var a attempt
		return a, r.Scan(&a.n, &a.ctid, &a.outcome, &a.httpStatus, &a.err)
	})
	if err != nil {
		t.Fatal(err)
	}
	// net/http itself resends a request carrying an Idempotency-Key once when a
	// reused keep-alive connection dies before the answer, so one attempt row
	// may stand for two identical requests — never the other way round.
	if len(attempts) < 3 || len(attempts) > led.RequestsByIdempotencyKey[ctid] {
		t.Fatalf("%d attempt rows for %d upstream requests (want at least 3, and no more rows than requests)", len(attempts), led.RequestsByIdempotencyKey[ctid])
	}
	for i, a := range attempts {
		if a.ctid != ctid || a.n != i+1 {
			t.Fatalf("attempt %d: number %d id %s", i+1, a.n, a.ctid)
		}
		last := i == len(attempts)-1
		switch {
		case !last && (a.outcome != "retry" || a.err == "" || a.httpStatus != nil):
			t.Fatalf("unknown-outcome attempt %d recorded as %s, http %v, error %q; want retry with the error and no status", a.n, a.outcome, a.httpStatus, a.err)
		case last && (a.outcome != "succeeded" || a.httpStatus == nil || *a.httpStatus != 200):
			t.Fatalf("last attempt %+v, want succeeded 200", a)
		}
	}
	var reasons []string
	evRows, err := s.pool.Query(context.Background(), `SELECT COALESCE(from_status, '') || '>' || to_status || ' ' || reason FROM sweep_events WHERE deposit_id = $1 ORDER BY id`, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if reasons, err = pgx.CollectRows(evRows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(reasons, "\n")
	if !strings.Contains(joined, "in_flight>pending retry in") || !strings.HasPrefix(reasons[len(reasons)-1], "in_flight>succeeded transfer "+first.ID) {
		t.Fatalf("sweep_events do not tell the story:\n%s", joined)
	}
}

func applied(led sandbox.Ledger, ctid string) int {
	n := 0
	for _, tr := range led.InternalTransfers {
		if tr.ClientTransactionID == ctid {
			n++
		}
	}
	return n
}
