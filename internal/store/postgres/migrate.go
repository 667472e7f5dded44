package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
		return nil, fmt.Errorf("postgres: %w", err)
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

// migrateLockKey is the first half of the advisory lock key that
// serializes migrations; the second is a hash of the schema name, so that
// deployments in different schemas do not wait for each other.
const migrateLockKey = 0x6761_7465 // "gate"

// migrate brings the schema up to date in one transaction under an
// advisory lock: replicas starting together apply each migration once,
// the others wait and then find nothing to do. Either every pending
// migration applies or none does, and a schema written by a newer binary
// is refused rather than guessed at. It returns the schema the tables
// live in.
func (s *Store) migrate(ctx context.Context) (string, error) {
	ms, err := loadMigrations()
	if err != nil {
		return "", err
	}
	var schema string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var cur *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
			return fmt.Errorf("postgres: current schema: %w", err)
		}
		if cur == nil {
			return errors.New("postgres: the search_path names no existing schema; create it first or fix search_path in the URL")
		}
		schema = *cur
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, int32(migrateLockKey)); err != nil {
			return fmt.Errorf("postgres: migration lock: %w", err)
		}
		err := sqlstore.Migrate(ms,
			func(q string) error {
				_, err := tx.Exec(ctx, q)
				return err
			},
			func(q string) (n int, err error) {
				err = tx.QueryRow(ctx, q).Scan(&n)
				return n, err
			})
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		return nil
	})
	return schema, err
}

// channelFor names the NOTIFY channel of a schema (see WithChannel).
func channelFor(schema string) string {
	const base = "gatehouse_changes"
	if schema == "public" {
		return base
	}
	c := base + "_" + schema
	if len(c) > maxIdentifier {
		sum := sha256.Sum256([]byte(schema))
		c = base + "_" + hex.EncodeToString(sum[:8])
	}
	return c
}
