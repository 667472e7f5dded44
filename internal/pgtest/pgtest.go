// Package pgtest gives a test its own empty schema in the PostgreSQL the
// machine runs, so that tests of the PostgreSQL store and end-to-end tests
// of replicas share one database without seeing each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the PostgreSQL this machine runs; GATEHOUSE_TEST_POSTGRES
// points the tests elsewhere.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL is the test database: GATEHOUSE_TEST_POSTGRES, or DefaultURL.
func URL() string {
	if u := os.Getenv("GATEHOUSE_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// Schema creates an empty schema named prefix and a random suffix, dropped
// when the test ends (after every cleanup registered later, such as a
// server's close), and returns its name and a URL whose search_path selects
// it. Without a reachable database the test is skipped, except in CI, where
// that is a failure.
func Schema(t testing.TB, prefix string) (schema, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL not reachable (CI=true): %v", err)
		}
		t.Skipf("PostgreSQL not reachable (set GATEHOUSE_TEST_POSTGRES): %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema = prefix + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = conn.Close(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		_ = conn.Close(ctx)
	})
	return schema, WithSearchPath(t, URL(), schema)
}

// WithSearchPath adds search_path to a URL or key=value connection string.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
