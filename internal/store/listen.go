package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channels the store notifies on commit.
const (
	// SweepsChannel: a sweep became due (sweeper_ingest, a requeue, a release).
	SweepsChannel = "sweeper_sweeps"
	// WithdrawalsChannel: a withdrawal became due (created or requeued).
	WithdrawalsChannel = "sweeper_withdrawals"
)

// Listen turns NOTIFYs on channel into non-blocking sends on wake until ctx
// ends. It holds one pooled connection, reconnects after a lost one (backing off
// up to 5s), and never returns a connection in an unknown LISTEN state to the
// pool. Callers keep a poll as well: notifications sent while reconnecting are
// lost. onErr, when set, hears about each lost connection.
func (s *Store) Listen(ctx context.Context, channel string, wake chan<- struct{}, onErr func(error)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := func() error {
			conn, err := s.pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
				conn.Conn().Close(ctx)
				return err
			}
			backoff = 100 * time.Millisecond
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					// The connection's LISTEN state is unknown now: do not return it to the pool.
					conn.Conn().Close(context.Background())
					return err
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		if onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
