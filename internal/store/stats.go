package store

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// youngRows is the size below which the sweeps table counts as young: the
// planner's statistics of it are refreshed by the worker instead of waiting for
// autovacuum. Past it, plans made for a table this big do not go wrong as it
// grows, and autovacuum keeps up.
const youngRows = 10_000

// AnalyzeYoungSweeps refreshes the planner's statistics of sweeps while the
// table is young and has changed by at least its own size (or 100 rows) since
// they were taken, and reports whether it did. Why: the worker's claim and
// outcome statements are cached prepared statements whose generic plan
// PostgreSQL makes on their sixth run. Made while sweeps held a handful of rows
// (a fresh deployment, a restore), it is a sequential scan, kept however large
// the table grows until autovacuum analyzes it — within a minute, in which a
// backlog sweeps at a third of its rate (P2 of `sweeper bench sweep` with
// confirmation on starts from empty sweep tables: 569–657/s without this,
// ~2,000/s with it). An ANALYZE of a small table takes milliseconds and makes
// every session replan.
// Without the right to analyze (not the table's owner) PostgreSQL only warns.
func (s *Store) AnalyzeYoungSweeps(ctx context.Context) (bool, error) {
	var tuples float64
	var changed int64
	err := s.pool.QueryRow(ctx, `
SELECT c.reltuples, COALESCE(st.n_mod_since_analyze, 0)
  FROM pg_class c LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid
 WHERE c.oid = 'sweeps'::regclass`).Scan(&tuples, &changed)
	if err != nil {
		return false, translate("store: sweeps statistics", err)
	}
	if tuples >= youngRows || float64(changed) < max(tuples, 100) {
		return false, nil
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE sweeps`); err != nil {
		return false, translate("store: analyze sweeps", err)
	}
	return true, nil
}

// KeepSweepsStatsFresh runs AnalyzeYoungSweeps every interval until ctx ends.
// The check is one catalog read; once the table is past youngRows it finds
// nothing to do.
func (s *Store) KeepSweepsStatsFresh(ctx context.Context, interval time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if done, err := s.AnalyzeYoungSweeps(ctx); err != nil && ctx.Err() == nil {
			log.Debug("refresh sweeps statistics", zap.Error(err))
		} else if done {
			log.Debug("analyzed the young sweeps table")
		}
	}
}
