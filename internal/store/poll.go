package store

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
)

// PollState is a row of poll_state: where the backfill poller is, and how its
// last runs went (contract §9; `sweeper doctor` reads it too).
type PollState struct {
	Name                string
	Cursor              *time.Time // end of the last window read completely
	LastStartedAt       *time.Time
	LastSuccessAt       *time.Time
	LastErrorAt         *time.Time
	LastError           *string
	ConsecutiveFailures int
	LastRead            int
	LastFound           int
	LastOwner           *string
	UpdatedAt           time.Time
}

// GetPollState reads one poller's state; a poller that never ran has a zero
// state (Name set) and no error.
func (s *Store) GetPollState(ctx context.Context, name string) (PollState, error) {
	ps := PollState{Name: name}
	err := s.pool.QueryRow(ctx, `
SELECT cursor_at, last_started_at, last_success_at, last_error_at, last_error, consecutive_failures,
       last_read, last_found, last_owner, updated_at
  FROM poll_state WHERE name = $1`, name).Scan(&ps.Cursor, &ps.LastStartedAt, &ps.LastSuccessAt, &ps.LastErrorAt,
		&ps.LastError, &ps.ConsecutiveFailures, &ps.LastRead, &ps.LastFound, &ps.LastOwner, &ps.UpdatedAt)
	if err == pgx.ErrNoRows {
		return ps, nil
	}
	if err != nil {
		return ps, translate("store: poll state", err)
	}
	return ps, nil
}

// PollLock is a held election: only its holder polls.
type PollLock struct {
	release func()
}

// Unlock ends the election (the next poll, on any replica, may take it).
func (l *PollLock) Unlock() { l.release() }

// TryPollLock takes the session-level advisory lock that elects the one replica
// polling as name. It holds one pooled connection while held; a process that
// dies releases it with its connection. ok is false when another replica holds it.
func (s *Store) TryPollLock(ctx context.Context, name string) (lock *PollLock, ok bool, err error) {
	key := pollLockKey(name)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, translate("store: poll lock", err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, translate("store: poll lock", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return &PollLock{release: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var unlocked bool
		if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&unlocked); err != nil || !unlocked {
			// Unsure the lock is gone: close the session, which surely releases it.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}}, true, nil
}

// pollLockKey is the advisory-lock key of a poller: fixed per name, and
// namespaced so that it cannot collide with another feature's lock by accident.
func pollLockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("sweeper/poll/" + name))
	return int64(h.Sum64())
}

// PollStarted records that owner started a poll.
func (s *Store) PollStarted(ctx context.Context, name, owner string) error {
	_, err := s.pool.Exec(ctx, `
INSERT INTO poll_state (name, last_started_at, last_owner, updated_at) VALUES ($1, now(), $2, now())
ON CONFLICT (name) DO UPDATE SET last_started_at = now(), last_owner = $2, updated_at = now()`, name, owner)
	return translate("store: poll started", err)
}

// PollAdvance moves the cursor: every transfer created before cursor has been read.
func (s *Store) PollAdvance(ctx context.Context, name string, cursor time.Time) error {
	_, err := s.pool.Exec(ctx, `
UPDATE poll_state SET cursor_at = GREATEST(COALESCE(cursor_at, $2), $2), updated_at = now() WHERE name = $1`, name, cursor)
	return translate("store: poll advance", err)
}

// PollSucceeded records a complete poll.
func (s *Store) PollSucceeded(ctx context.Context, name string, read, found int) (PollState, error) {
	_, err := s.pool.Exec(ctx, `
UPDATE poll_state SET last_success_at = now(), consecutive_failures = 0, last_read = $2, last_found = $3,
       updated_at = now()
 WHERE name = $1`, name, read, found)
	if err != nil {
		return PollState{}, translate("store: poll succeeded", err)
	}
	return s.GetPollState(ctx, name)
}

// PollFailed records a failed poll and returns the state (consecutive failures).
func (s *Store) PollFailed(ctx context.Context, name, reason string) (PollState, error) {
	_, err := s.pool.Exec(ctx, `
INSERT INTO poll_state (name, last_error_at, last_error, consecutive_failures, updated_at)
VALUES ($1, now(), $2, 1, now())
ON CONFLICT (name) DO UPDATE SET last_error_at = now(), last_error = $2,
       consecutive_failures = poll_state.consecutive_failures + 1, updated_at = now()`, name, reason)
	if err != nil {
		return PollState{}, translate("store: poll failed", err)
	}
	return s.GetPollState(ctx, name)
}
