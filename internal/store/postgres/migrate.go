package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
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
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration %q: name must start with a positive version and '_'", name)
		}
		b, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("postgres: migration %q: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("postgres: migration %q: expected version %d", m.name, i+1)
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
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("postgres: schema_version: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
			return fmt.Errorf("postgres: schema_version: %w", err)
		}
		if current > len(ms) {
			return fmt.Errorf("postgres: database schema version %d is newer than this binary's %d; use a newer gatehouse", current, len(ms))
		}
		if current == len(ms) {
			return nil
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("postgres: migration %s: %w", m.name, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
			return fmt.Errorf("postgres: schema_version: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, len(ms)); err != nil {
			return fmt.Errorf("postgres: schema_version: %w", err)
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
