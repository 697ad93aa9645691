package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// StuckSweep is a sweep that has not reached the Infinity Account within the
// bound StuckSweeps was given.
type StuckSweep struct {
	DepositID string
	Status    string // pending (retrying) or in_flight
	Attempts  int
	// Age is the time since the deposit became final (the sweep was created).
	Age time.Duration
	// InFlightFor is the time since the current claim (0 while pending): a long
	// one means the worker holding it hangs, or died and nobody took over.
	InFlightFor time.Duration
	LastError   string
}

// StuckSweeps counts the sweeps still pending or in flight longer than
// olderThan after their deposit became final, and returns up to limit of them,
// oldest first. It reads only the rows of the sweeps_due partial index, so it
// stays cheap however much history the table holds.
func (s *Store) StuckSweeps(ctx context.Context, olderThan time.Duration, limit int) (int, []StuckSweep, error) {
	rows, err := s.pool.Query(ctx, `
WITH stuck AS (
    SELECT deposit_id, status, attempts, created_at, updated_at, COALESCE(last_error, '') AS last_error
      FROM sweeps
     WHERE status IN ('pending', 'in_flight') AND created_at < now() - $1::interval
)
SELECT (SELECT count(*) FROM stuck), deposit_id, status, attempts,
       EXTRACT(EPOCH FROM now() - created_at)::float8,
       CASE WHEN status = 'in_flight' THEN EXTRACT(EPOCH FROM now() - updated_at)::float8 ELSE 0 END,
       last_error
  FROM stuck
 ORDER BY created_at
 LIMIT $2`, olderThan, max(limit, 1))
	if err != nil {
		return 0, nil, translate("store: stuck sweeps", err)
	}
	var total int
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StuckSweep, error) {
		var st StuckSweep
		var age, inFlight float64
		err := r.Scan(&total, &st.DepositID, &st.Status, &st.Attempts, &age, &inFlight, &st.LastError)
		st.Age = time.Duration(age * float64(time.Second))
		st.InFlightFor = time.Duration(inFlight * float64(time.Second))
		return st, err
	})
	if err != nil {
		return 0, nil, translate("store: stuck sweeps", err)
	}
	if limit <= 0 {
		out = nil
	}
	return total, out, nil
}
