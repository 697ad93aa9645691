package pgtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sweeperhq/sweeper/migrations"
)

// templateDone is the comment that marks a template whose migrations all
// succeeded. A template without it was left half-built by a binary that died
// mid-migration and is rebuilt.
const templateDone = "pgtest: migrated template, complete"

// template returns the name of the migrated template database, building it
// on first use in this binary.
func (s *server) template() (string, error) {
	s.tmplOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.tmplName, s.tmplErr = templateName(migrations.FS())
		if s.tmplErr == nil {
			s.tmplErr = ensureTemplate(ctx, s.adminURL, s.tmplName, migrations.Up)
		}
	})
	return s.tmplName, s.tmplErr
}

// templateName derives the template's name from the migration files, so test
// binaries (and later runs against the same server) share a template exactly
// when they would build the same schema, and a changed migration never reuses
// a stale one.
func templateName(migrationFS fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrationFS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrationFS, path)
		if err != nil {
			return err
		}
		// Length-prefixed, so moving bytes between a name and a body changes
		// the hash.
		for _, part := range [][]byte{[]byte(path), b} {
			_ = binary.Write(h, binary.BigEndian, uint64(len(part)))
			h.Write(part)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing migrations: %w", err)
	}
	return templatePrefix + hex.EncodeToString(h.Sum(nil))[:20], nil
}

// ensureTemplate makes sure database name exists and is completely migrated.
// Test binaries of one `go test ./...` run in parallel against the same
// server; a session advisory lock makes exactly one of them build it while
// the others wait and then reuse it.
func ensureTemplate(ctx context.Context, adminURL, name string, up func(context.Context, *sql.DB) error) error {
	// A dedicated connection, not the pool: a session lock belongs to one
	// connection, and closing it releases the lock even on error paths.
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connecting for the template lock: %w", err)
	}
	defer conn.Close(context.Background())

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey(name)); err != nil {
		return fmt.Errorf("waiting for the template lock: %w", err)
	}

	var comment *string
	err = conn.QueryRow(ctx,
		"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name).Scan(&comment)
	switch {
	case err == nil && comment != nil && *comment == templateDone:
		return nil
	case err == nil:
		// Half-built by a binary that died while holding the lock.
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping incomplete template %s: %w", name, err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("looking up template %s: %w", name, err)
	}

	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("creating template %s: %w", name, err)
	}
	if err := migrate(ctx, adminURL, name, up); err != nil {
		return err
	}
	// Only now may others copy it: CREATE DATABASE ... TEMPLATE fails while
	// anyone is connected to the template, and migrate has disconnected.
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" IS '"+templateDone+"'"); err != nil {
		return fmt.Errorf("marking template %s complete: %w", name, err)
	}
	return nil
}

// migrate applies up to database name and closes every connection it opened.
func migrate(ctx context.Context, adminURL, name string, up func(context.Context, *sql.DB) error) error {
	dbURL, err := withDatabase(adminURL, name)
	if err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("parsing template URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	err = up(ctx, db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing template connection: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("migrating template %s: %w", name, err)
	}
	return nil
}

// lockKey maps a template name to an advisory lock id, so binaries building
// different templates (different migration sets) do not wait on each other.
func lockKey(name string) int64 {
	sum := sha256.Sum256([]byte("pgtest template lock " + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}
