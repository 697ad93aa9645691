// Package migrations holds the database schema as goose SQL files, embedded in the
// binary so that `sweeper migrate` needs nothing but the executable.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() fs.FS { return files }

// newProvider builds a goose provider guarded by a Postgres session lock, so that
// several replicas starting at once apply each migration exactly once.
func newProvider(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migrations: session locker: %w", err)
	}
	p, err := goose.NewProvider(database.DialectPostgres, db, files, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrations: provider: %w", err)
	}
	return p, nil
}

// Up applies every pending migration (UpVerbose also says which).
func Up(ctx context.Context, db *sql.DB) error {
	_, err := UpVerbose(ctx, db)
	return err
}

// UpVerbose is Up that also returns what was applied, for the CLI.
func UpVerbose(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrations: up: %w", err)
	}
	return res, nil
}

// Status lists every known migration and whether it is applied.
func Status(ctx context.Context, db *sql.DB) ([]*goose.MigrationStatus, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: status: %w", err)
	}
	return st, nil
}

// Latest is the highest version embedded in this binary; /readyz compares the
// database against it.
func Latest() (int64, error) {
	entries, err := fs.Glob(files, "*.sql")
	if err != nil {
		return 0, err
	}
	var max int64
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(e, "%d_", &v); err == nil && v > max {
			max = v
		}
	}
	return max, nil
}
