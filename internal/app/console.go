package app

import (
	"context"

	"github.com/go-chi/chi/v5"

	"github.com/sweeperhq/sweeper/internal/console"
	"github.com/sweeperhq/sweeper/internal/store"
)

// mountConsole serves the operator console (contract §13) under /console/,
// with the operator API's token. Its actions are the operator API's own
// operations, so a button and a /v1 call do exactly the same thing; an action
// whose operation does not exist yet is left nil, and the console does not
// offer it.
func (a *App) mountConsole(r chi.Router) error {
	h, err := console.New(console.Deps{
		Store: a.store, Logger: a.log.Named("console"), Token: a.cfg.AdminToken,
		Actions: console.Actions{
			// As POST /v1/deposits/{id}/retry: requeue under the same
			// clientTransactionId; who and why go into the sweep event.
			Retry: func(ctx context.Context, depositID, actor, note string) error {
				return a.store.RequeueSweep(ctx, depositID, actor+": "+note)
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
