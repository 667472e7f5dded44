package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite"
)

func TestLoadMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_more.sql": {Data: []byte("CREATE TABLE b (x INTEGER);")},
		"m/0001_init.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
		"m/0010_ten.sql":  {Data: []byte("SELECT 1;")},
	}
	if _, err := LoadMigrations(fsys, "m"); err == nil || !strings.Contains(err.Error(), "expected version 3") {
		t.Fatalf("a gap in versions: %v", err)
	}
	delete(fsys, "m/0010_ten.sql")
	ms, err := LoadMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "0001_init.sql" || ms[1].Version != 2 || ms[1].SQL != "CREATE TABLE b (x INTEGER);" {
		t.Fatalf("LoadMigrations = %+v", ms)
	}
	for _, bad := range []string{"m/init.sql", "m/0000_zero.sql", "m/x1_bad.sql", "m/0003.sql"} {
		fsys := fstest.MapFS{"m/0001_init.sql": {Data: []byte("")}, bad: {Data: []byte("")}}
		if _, err := LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("LoadMigrations accepted %s", bad)
		}
	}
	if _, err := LoadMigrations(fsys, "missing"); err == nil {
		t.Error("LoadMigrations accepted a missing directory")
	}
}

// migrateTx runs Migrate in one transaction of db, as the backends do.
func migrateTx(t *testing.T, db *sql.DB, ms []Migration) error {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = Migrate(ms,
		func(q string) error {
			_, err := tx.ExecContext(ctx, q)
			return err
		},
		func(q string) (n int, err error) {
			err = tx.QueryRowContext(ctx, q).Scan(&n)
			return n, err
		})
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func version(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestMigrate(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms := []Migration{
		{Version: 1, Name: "0001_init.sql", SQL: "CREATE TABLE a (x INTEGER);"},
		{Version: 2, Name: "0002_more.sql", SQL: "CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1);"},
	}
	if err := migrateTx(t, db, ms[:1]); err != nil {
		t.Fatal(err)
	}
	if v := version(t, db); v != 1 || !tableExists(t, db, "a") || tableExists(t, db, "b") {
		t.Fatalf("after the first migration: version %d", v)
	}
	if err := migrateTx(t, db, ms); err != nil {
		t.Fatal(err)
	}
	// Running again applies nothing twice (a second INSERT into a would
	// show), and schema_version keeps one row.
	if err := migrateTx(t, db, ms); err != nil {
		t.Fatal(err)
	}
	var rows, versions int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM a), (SELECT COUNT(*) FROM schema_version)`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if v := version(t, db); v != 2 || rows != 1 || versions != 1 {
		t.Fatalf("version %d, rows in a %d, schema_version rows %d", v, rows, versions)
	}

	// A binary that knows fewer migrations refuses the database.
	if err := migrateTx(t, db, ms[:1]); err == nil || !strings.Contains(err.Error(), "newer than this binary's 1") {
		t.Fatalf("older binary: %v", err)
	}

	// A failing migration names itself, and rolls back with the rest.
	broken := append(ms, Migration{Version: 3, Name: "0003_c.sql", SQL: "CREATE TABLE c (x INTEGER);"},
		Migration{Version: 4, Name: "0004_broken.sql", SQL: "CREATE TABLE oops ("})
	if err := migrateTx(t, db, broken); err == nil || !strings.Contains(err.Error(), "0004_broken.sql") {
		t.Fatalf("broken migration: %v", err)
	}
	if v := version(t, db); v != 2 || tableExists(t, db, "c") {
		t.Fatalf("after a failed migration: version %d, table c exists: %v", v, tableExists(t, db, "c"))
	}
}

func TestMigrateReportsQueryErrors(t *testing.T) {
	boom := errors.New("boom")
	err := Migrate(nil, func(string) error { return nil }, func(string) (int, error) { return 0, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Migrate = %v", err)
	}
	err = Migrate(nil, func(string) error { return boom }, func(string) (int, error) { return 0, nil })
	if !errors.Is(err, boom) {
		t.Fatalf("Migrate = %v", err)
	}
}
