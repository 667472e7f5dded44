package sqlstore

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema file, named NNNN_description.sql. A released
// file is never edited: a schema change is a new file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads the files in dir of fsys (a backend's embedded
// migrations) in version order and checks that the versions run 1, 2, 3,
// ... without gaps, so that a misnamed file stops the binary at start-up
// rather than leaving a schema half-built.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive version and '_'", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("migration %q: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %q: expected version %d", m.Name, i+1)
		}
	}
	return ms, nil
}

// Migrate brings a schema up to the last of ms, keeping the version in a
// one-row schema_version table. It runs inside the caller's transaction
// (exec runs a statement, queryInt one that returns a single integer), so
// that either every pending migration applies or none does; the caller
// takes whatever lock its database needs first. A schema written by a
// newer binary is refused rather than guessed at.
func Migrate(ms []Migration, exec func(query string) error, queryInt func(query string) (int, error)) error {
	if err := exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	current, err := queryInt(`SELECT COALESCE(MAX(version), 0) FROM schema_version`)
	if err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this binary's %d; use a newer gatehouse", current, len(ms))
	}
	if current == len(ms) {
		return nil
	}
	for _, m := range ms[current:] {
		if err := exec(m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if err := exec(`DELETE FROM schema_version`); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	// The version is a number this binary computed, not input: writing it
	// as a literal keeps the statement free of either dialect's
	// placeholder syntax.
	if err := exec(`INSERT INTO schema_version (version) VALUES (` + strconv.Itoa(len(ms)) + `)`); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	return nil
}
