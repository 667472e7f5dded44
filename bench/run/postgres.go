package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultPostgres is the local test server: trust authentication, so the
// URL holds no password.
const defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// skippedUnreachable is what the doc says when there is no server to run
// the PostgreSQL pass on; a machine without PostgreSQL is not a failure.
const skippedUnreachable = "PostgreSQL unreachable"

// withSearchPath returns dsn (a postgres:// URL or a key=value string)
// with its search_path set to schema, which is where the PostgreSQL store
// puts its tables. Errors never quote dsn: it may hold a password.
func withSearchPath(dsn, schema string) (string, error) {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return "", errors.New("not a PostgreSQL URL or key=value string (not shown: it may hold a password)")
	}
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", errors.New("not a PostgreSQL URL (not shown: it may hold a password)")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// pgWhere names the server of dsn for the doc: host and port, never the
// user or password.
func pgWhere(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

// postgresConc is the concurrency s runs at in the PostgreSQL pass: where
// it was fastest on SQLite, or, for a scenario that is another one's
// limit (the upstream for the gateway), where that one was fastest, so
// that the ratio compares the same c.
func postgresConc(all []scenarioResult, s scenarioResult) int {
	for _, o := range all {
		if o.LimitFromScenario == s.Name && len(o.Points) > 0 {
			return best(o.Points).Conc
		}
	}
	return best(s.Points).Conc
}

// postgresPass runs the scenarios again against gatehouse on PostgreSQL,
// in a fresh schema dropped at the end, at one concurrency each (see
// postgresConc): a full sweep would double the run. An unreachable server
// is noted in the doc; any other failure is noted too and makes the run
// exit non-zero once the doc is written.
func (b *bench) postgresPass(realmFiles []string) {
	r := b.res
	if b.o.postgres == "" {
		r.PostgresSkipped = "run with `-postgres \"\"`"
		return
	}
	start := time.Now()
	err := b.postgresRun(realmFiles)
	r.PostgresElapsed = time.Since(start)
	switch {
	case errors.Is(err, errUnreachable):
		b.logf("PostgreSQL pass skipped: %v", err)
		r.PostgresSkipped = skippedUnreachable
	case err != nil:
		b.logf("PostgreSQL pass failed: %v", err)
		r.PostgresFailed = err
		for i := range r.Scenarios {
			r.Scenarios[i].Postgres = nil
		}
	}
}

// errUnreachable marks a connection failure before anything was created.
var errUnreachable = errors.New(skippedUnreachable)

func (b *bench) postgresRun(realmFiles []string) error {
	r := b.res
	r.PostgresWhere = pgWhere(b.o.postgres)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.o.postgres)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	defer conn.Close(context.Background())
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	// "15.20 (Debian 15.20-0+deb12u1)": the packager's suffix says nothing
	// about the store.
	if f := strings.Fields(version); len(f) > 0 {
		r.PostgresVersion = f[0]
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "gh_bench_" + hex.EncodeToString(rnd[:])
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	b.pgSchema = schema
	b.logf("PostgreSQL %s at %s: schema %s", r.PostgresVersion, r.PostgresWhere, schema)
	// The drop runs at the end of the pass, or, if the run dies first,
	// when it stops (error or interrupt); whichever comes first.
	// A connection of its own: the first may have gone stale by then.
	admin := b.o.postgres
	drop := sync.OnceFunc(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		c, err := pgx.Connect(dctx, admin)
		if err == nil {
			_, err = c.Exec(dctx, "DROP SCHEMA "+ident+" CASCADE")
			c.Close(dctx)
		}
		if err != nil {
			b.logf("drop schema %s: %v (drop it by hand)", schema, err)
			return
		}
		b.logf("dropped schema %s", schema)
	})
	b.atExit(drop)
	defer drop()

	dsn, err := withSearchPath(b.o.postgres, schema)
	if err != nil {
		return err
	}
	// A master key of this run's own, in its private work directory: the
	// server refuses to create one on a shared database for an admin
	// command (seed), and both must use the same.
	keyFile := filepath.Join(b.work, "pg-master.key")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	// --data still names a directory of the run's own, though with --db
	// and --master-key-file nothing is written there.
	loc := []string{"--db", dsn, "--master-key-file", keyFile, "--data", filepath.Join(b.work, "pg-data")}

	st, err := b.measureStartup("PostgreSQL: empty schema, importing 2 realm files", loc, realmFiles)
	if err != nil {
		return err
	}
	r.Startups = append(r.Startups, st)
	for _, realm := range []string{"bench", "bench-rot"} {
		if _, err := b.seed(loc, realm, baseUsers, baseSessions); err != nil {
			return err
		}
	}
	st, err = b.measureStartup(fmt.Sprintf("PostgreSQL: existing, %s users + %s sessions per realm", thousands(baseUsers), thousands(baseSessions)), loc, nil)
	if err != nil {
		return err
	}
	r.Startups = append(r.Startups, st)

	srv, url, err := b.serve(loc, "gatehouse-postgres")
	if err != nil {
		return err
	}
	defer srv.stop()
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		if s.Skipped != "" || len(s.Points) == 0 {
			continue
		}
		p, err := b.load(s.Name+" (PostgreSQL)", b.spec(s.Name, url), postgresConc(r.Scenarios, *s))
		if err != nil {
			return err
		}
		s.Postgres = []point{p}
	}
	r.PostgresRan = true
	return nil
}
