package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migrations holds the schema, one file per version, named
// NNNN_description.sql. A released file is never edited: a schema change
// is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded files in version order and checks that
// the versions run 1, 2, 3, ... without gaps.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlite: migration %q: name must start with a positive version and '_'", name)
		}
		b, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("sqlite: migration %q: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlite: migration %q: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest schema version this binary knows.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the schema up to date in one write transaction: either
// every pending migration applies or none does. A database written by a
// newer binary is refused rather than guessed at.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *wtx) error {
		if _, err := tx.conn.ExecContext(ctx,
			`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("sqlite: schema_version: %w", err)
		}
		var current int
		err := tx.conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current)
		if err != nil {
			return fmt.Errorf("sqlite: schema_version: %w", err)
		}
		if current > len(ms) {
			return fmt.Errorf("sqlite: database schema version %d is newer than this binary's %d; use a newer gatehouse", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.conn.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
			}
		}
		if current == len(ms) {
			return nil
		}
		if _, err := tx.conn.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
			return fmt.Errorf("sqlite: schema_version: %w", err)
		}
		if _, err := tx.conn.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, len(ms)); err != nil {
			return fmt.Errorf("sqlite: schema_version: %w", err)
		}
		return nil
	})
}
