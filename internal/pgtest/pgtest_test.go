package pgtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

func TestWithSearchPath(t *testing.T) {
	for _, c := range []struct{ dsn, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=s1&sslmode=disable"},
		{"host=h dbname=db", "host=h dbname=db search_path=s1"},
	} {
		if got := pgtest.WithSearchPath(t, c.dsn, "s1"); got != c.want {
			t.Errorf("%s: got %s, want %s", c.dsn, got, c.want)
		}
	}
}

func TestSchemaIsEmptySelectedAndDropped(t *testing.T) {
	var schema, dsn string
	t.Run("use", func(t *testing.T) {
		schema, dsn = pgtest.Schema(t, "gh_pgtest_")
		if !strings.HasPrefix(schema, "gh_pgtest_") {
			t.Fatalf("schema %q", schema)
		}
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var cur string
		if err := conn.QueryRow(t.Context(), "SELECT current_schema()").Scan(&cur); err != nil || cur != schema {
			t.Fatalf("current_schema %q %v, want %q", cur, err, schema)
		}
	})
	if schema == "" {
		t.Skip("no database")
	}
	conn, err := pgx.Connect(context.Background(), pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema %s left behind: %d %v", schema, n, err)
	}
}
