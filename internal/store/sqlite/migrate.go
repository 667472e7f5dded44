package sqlite

import (
	"context"
	"embed"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// migrations holds the schema, one file per version, named
// NNNN_description.sql. A released file is never edited: a schema change
// is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

func loadMigrations() ([]sqlstore.Migration, error) {
	ms, err := sqlstore.LoadMigrations(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
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
// every pending migration applies or none does. The write transaction
// holds SQLite's write lock, so two processes opening the file at once
// migrate one after the other. A database written by a newer binary is
// refused rather than guessed at.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *wtx) error {
		err := sqlstore.Migrate(ms,
			func(q string) error {
				_, err := tx.conn.ExecContext(ctx, q)
				return err
			},
			func(q string) (n int, err error) {
				err = tx.conn.QueryRowContext(ctx, q).Scan(&n)
				return n, err
			})
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
}
