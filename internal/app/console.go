package app

import (
	"context"

	"github.com/go-chi/chi/v5"

	"github.com/sweeperhq/sweeper/internal/console"
	"github.com/sweeperhq/sweeper/internal/status"
	"github.com/sweeperhq/sweeper/internal/store"
)

// mountConsole serves the operator console (contract §13) under /console/,
// with the operator API's token. Its actions are the operator API's own
// operations, so a button and a /v1 call do exactly the same thing. Who acts
// is the console session ("console:<prefix>"); why is the form's note.
func (a *App) mountConsole(r chi.Router) error {
	by := func(actor, note string) store.Actor { return store.Actor{Who: actor, Note: note} }
	h, err := console.New(console.Deps{
		Store: a.store, Logger: a.log.Named("console"), Token: a.cfg.AdminToken,
		Actions: console.Actions{
			// As POST /v1/deposits/{id}/retry: a failed sweep is requeued, a
			// skipped deposit swept if the configuration no longer skips it,
			// both under the deposit's one clientTransactionId.
			Retry: func(ctx context.Context, depositID, actor, note string) error {
				return a.truth.Retry(ctx, depositID, by(actor, note))
			},
			RetryStates: []string{status.SweepFailed, status.SweepSkipped},
			// As POST /v1/deposits/{id}/release: re-read Interlace's record and
			// sweep if it is final and agrees.
			Release: func(ctx context.Context, depositID, actor, note string) (string, error) {
				return a.truth.Release(ctx, depositID, by(actor, note))
			},
			// As POST /v1/deposits/{id}/resolve: close an unresolved sweep with
			// the operator's evidence.
			Resolve: func(ctx context.Context, depositID string, r console.Resolution) error {
				return a.store.ResolveSweep(ctx, depositID, store.Resolution(r))
			},
		},
	})
	if err != nil {
		return err
	}
	// The console routes full paths itself (no prefix stripping).
	r.Handle("/console", h)
	r.Handle("/console/*", h)
	return nil
}
