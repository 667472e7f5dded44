package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestRenderChart(t *testing.T) {
	red := color.RGBA{0xd6, 0x27, 0x28, 0xff}
	blue := color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	ss := []series{
		{Name: "fast", Color: red, Points: []xy{{1, 900}, {2, 1800}, {4, 3000}, {8, 3100}, {16, 3050}}},
		{Name: "slow (peer)", Color: blue, Dashed: true, Points: []xy{{1, 20}, {2, 35}, {4, 60}, {8, 61}, {16, 0}}},
	}
	var buf bytes.Buffer
	if err := renderChart(&buf, "test chart", ss); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH {
		t.Fatalf("size %v, want %dx%d", b, chartW, chartH)
	}
	if r, g, bl, _ := img.At(2, chartH-2).RGBA(); r != 0xffff || g != 0xffff || bl != 0xffff {
		t.Errorf("corner is not white")
	}
	count := func(c color.RGBA, x0, x1 int) int {
		n := 0
		for y := plotTop; y <= plotBottom; y++ {
			for x := x0; x <= x1; x++ {
				if img.At(x, y) == color.Color(c) {
					n++
				}
			}
		}
		return n
	}
	// Both lines are drawn inside the plot, and the legend shows both.
	if n := count(red, plotLeft, plotRight); n < 500 {
		t.Errorf("solid series: %d pixels in the plot", n)
	}
	if n := count(blue, plotLeft, plotRight); n < 200 {
		t.Errorf("dashed series: %d pixels in the plot", n)
	}
	if count(red, plotRight+1, chartW-1) == 0 || count(blue, plotRight+1, chartW-1) == 0 {
		t.Error("legend entries missing")
	}
	// Higher throughput is drawn higher: the fast series' marker at c=1
	// (900/s) sits above the slow one's (20/s).
	yOf := func(c color.RGBA) int {
		x := plotLeft
		for y := plotTop; y <= plotBottom; y++ {
			if img.At(x, y) == color.Color(c) {
				return y
			}
		}
		return -1
	}
	if yr, yb := yOf(red), yOf(blue); yr < 0 || yb < 0 || yr >= yb {
		t.Errorf("marker rows: fast %d, slow %d; want fast above slow", yr, yb)
	}

	if err := renderChart(io.Discard, "empty", []series{{Name: "none", Points: []xy{{1, 0}}}}); err == nil {
		t.Error("a chart without a positive point rendered")
	}
}

func sampleResults() *results {
	return &results{
		Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), CPUModel: "Test CPU", Cores: 2, Kernel: "Linux 6",
		GoVersion: "go1.26", Commit: "abc123", Dirty: true, Command: "make bench", Dur: 3 * time.Second, Warmup: time.Second,
		Concurrencies: []int{1, 4}, LimitsCores: 2, LimitsSamples: 3, LoadAvg: "0.10 0.20 0.30", PeerVersion: "9.13.3 (Node v20)",
		Limits: map[string]float64{"argon2id_verify_per_s": 100, "rsa2048_sign_per_s": 2000},
		Scenarios: []scenarioResult{
			{Name: "password", LimitKey: "argon2id_verify_per_s", LimitName: "argon2id verify", Published: "Keycloak: 30/s",
				Points: []point{{Conc: 1, RPS: 40, P50: 20, P99: 30}, {Conc: 4, RPS: 50, P50: 70, P99: 120}}},
			{Name: "client_credentials RS256", LimitKey: "rsa2048_sign_per_s", LimitName: "RSA-2048 sign",
				Points: []point{{Conc: 1, RPS: 1000, P50: 0.9, P99: 2}, {Conc: 4, RPS: 1500, P50: 2, P99: 9, Errors: 3}},
				Peer:   []point{{Conc: 1, RPS: 1100}, {Conc: 4, RPS: 3000, P50: 1, P99: 5}}},
			{Name: "gateway pass-through", LimitFromScenario: "upstream direct", LimitName: "upstream direct, same c",
				Points: []point{{Conc: 1, RPS: 4000}, {Conc: 4, RPS: 8000, P50: 0.4, P99: 2.5}}},
			{Name: "upstream direct", Points: []point{{Conc: 1, RPS: 10000}, {Conc: 4, RPS: 20000}}},
			{Name: "refresh", LimitKey: "rsa2048_sign_per_s", LimitName: "RSA-2048 sign",
				Points: []point{{Conc: 1, RPS: 2500, P50: 1, P99: 3}}},
			{Name: "fusio login", Skipped: "no such endpoint"},
		},
		Startups: []startup{{Label: "empty", Ready: 35 * time.Millisecond, RSSKiB: 24 * 1024}},
		Growth: &growthResult{Users: 1000000, Sessions: 100000, BaseUsers: 1000, BaseSessions: 1000, Conc: 8,
			SeedUsers: 30 * time.Second, SeedSessions: 10 * time.Second,
			Base:             map[string]point{"password": {RPS: 60, P99: 100}, "refresh": {RPS: 900, P99: 10}},
			Grown:            map[string]point{"password": {RPS: 59, P99: 110}, "refresh": {RPS: 800, P99: 13}},
			RSSNoSessionsKiB: 30000, RSSSessionsKiB: 31024},
		Notes:           []string{"a note"},
		PostgresSkipped: skippedUnreachable,
	}
}

// withPostgres is sampleResults after a PostgreSQL pass: each scenario
// once, at its best SQLite concurrency (the upstream at the gateway's).
func withPostgres() *results {
	r := sampleResults()
	r.PostgresSkipped = ""
	r.PostgresRan, r.PostgresVersion, r.PostgresWhere, r.PostgresElapsed = true, "15.20", "127.0.0.1:5432", 51*time.Second
	pg := map[string]point{
		"password":                 {Conc: 4, RPS: 45, P50: 80, P99: 130},
		"client_credentials RS256": {Conc: 4, RPS: 750, P50: 5, P99: 12, Errors: 2},
		"gateway pass-through":     {Conc: 4, RPS: 7000, P50: 0.5, P99: 3},
		"upstream direct":          {Conc: 4, RPS: 14000},
		"refresh":                  {Conc: 1, RPS: 2500, P50: 1.2, P99: 4},
	}
	for i := range r.Scenarios {
		if p, ok := pg[r.Scenarios[i].Name]; ok {
			r.Scenarios[i].Postgres = []point{p}
		}
	}
	r.Startups = append(r.Startups, startup{Label: "PostgreSQL: empty schema, importing 2 realm files", Ready: 250 * time.Millisecond, RSSKiB: 30 * 1024})
	return r
}

func TestWriteMarkdownPostgres(t *testing.T) {
	var buf bytes.Buffer
	if err := writeMarkdown(&buf, withPostgres(), "benchmarks.png"); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"| storage | embedded SQLite (`--data DIR`, WAL) everywhere except the section *On PostgreSQL*: PostgreSQL 15.20 (`--db`, at 127.0.0.1:5432 on the same machine) |",
		"## On PostgreSQL\n\nThe same scenarios against gatehouse on PostgreSQL 15.20",
		"the pass took 51s.",
		"| scenario | PostgreSQL req/s | c | p50 / p99 ms | limit | limit/s | ÷ limit | SQLite req/s (same c) | PostgreSQL ÷ SQLite |",
		// same limit as the SQLite table, SQLite at the same c beside it
		"| password | 45.0 | 4 | 80 / 130 | argon2id verify | 100 | 0.45 | 50.0 | 0.90 |",
		"| client_credentials RS256 | 750 (2 errors) | 4 | 5.0 / 12 | RSA-2048 sign | 2000 | 0.38 | 1500 | 0.50 |",
		// the gateway's limit is the upstream measured in the same pass
		// (14000), not the SQLite pass's (20000)
		"| gateway pass-through | 7000 | 4 | 0.50 / 3.0 | upstream direct, same c | 14000 | 0.50 | 8000 | 0.88 |",
		"| upstream direct | 14000 | 4 | 0.00 / 0.00 | — | — | — | 20000 | 0.70 |",
		"| refresh | 2500 | 1 | 1.2 / 4.0 | RSA-2048 sign | 2000 | 1.25 † | 2500 | 1.00 |",
		"† Above 1: outran its own bare operation",
		"| PostgreSQL: empty schema, importing 2 realm files | 250 ms | 30.0 MiB |",
		"The chart below is SQLite only.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	// A scenario skipped on SQLite has no PostgreSQL row either.
	if strings.Contains(md, "| fusio login | —") || strings.Count(md, "| fusio login |") != 1 {
		t.Error("skipped scenario rendered in the PostgreSQL table")
	}
	// The SQLite table is unchanged by the pass.
	if !strings.Contains(md, "| gateway pass-through | 8000 | 4 | 0.40 / 2.5 | upstream direct, same c | 20000 | 0.40 |") {
		t.Error("SQLite gateway row changed")
	}

	r := withPostgres()
	r.PostgresRan, r.PostgresFailed = false, errors.New("gatehouse-postgres: not ready\nlog: /tmp/x")
	buf.Reset()
	if err := writeMarkdown(&buf, r, "benchmarks.png"); err != nil {
		t.Fatal(err)
	}
	md = buf.String()
	for _, want := range []string{
		"the PostgreSQL pass failed (see *On PostgreSQL*) |",
		"## On PostgreSQL\n\nThe PostgreSQL pass failed in this run: gatehouse-postgres: not ready\n\n## Throughput",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("failed pass: markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "PostgreSQL req/s") {
		t.Error("failed pass rendered a table")
	}
}

func TestPostgresConc(t *testing.T) {
	r := sampleResults()
	r.Scenarios[2].Points = []point{{Conc: 1, RPS: 4000}, {Conc: 4, RPS: 3000}} // gateway fastest at c=1
	for _, tc := range []struct {
		name string
		want int
	}{{"password", 4}, {"refresh", 1}, {"gateway pass-through", 1}, {"upstream direct", 1}} {
		for _, s := range r.Scenarios {
			if s.Name == tc.name {
				if got := postgresConc(r.Scenarios, s); got != tc.want {
					t.Errorf("postgresConc(%s) = %d, want %d", tc.name, got, tc.want)
				}
			}
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{defaultPostgres, "postgres://postgres@127.0.0.1:5432/test?search_path=gh_bench_x&sslmode=disable"},
		{"postgres://u:secret@db:6432/gh?search_path=old", "postgres://u:secret@db:6432/gh?search_path=gh_bench_x"},
		{"host=db user=u dbname=gh", "host=db user=u dbname=gh search_path=gh_bench_x"},
	} {
		got, err := withSearchPath(tc.in, "gh_bench_x")
		if err != nil || got != tc.want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	_, err := withSearchPath("postgres://u:hunter2@db:notaport/x", "s")
	if err == nil {
		t.Fatal("accepted a bad URL")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
	if got := pgWhere("postgres://u:hunter2@db.internal:6432/x"); got != "db.internal:6432" {
		t.Errorf("pgWhere = %q", got)
	}
}

// TestPostgresPassUnreachable: a server that does not answer is noted as
// skipped, not a failure, and nothing else runs.
func TestPostgresPassUnreachable(t *testing.T) {
	port, err := freePort() // nothing listens there once freePort returns
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{log: io.Discard, started: time.Now(), work: t.TempDir(), res: sampleResults()}
	b.res.PostgresSkipped = ""
	b.o.postgres = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable&connect_timeout=2", port)
	b.postgresPass(nil)
	if b.res.PostgresSkipped != skippedUnreachable || b.res.PostgresFailed != nil || b.res.PostgresRan {
		t.Errorf("skipped %q, failed %v, ran %v", b.res.PostgresSkipped, b.res.PostgresFailed, b.res.PostgresRan)
	}
	b.stopAll()

	b.o.postgres = ""
	b.postgresPass(nil)
	if !strings.Contains(b.res.PostgresSkipped, "-postgres") {
		t.Errorf("skipped %q", b.res.PostgresSkipped)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := writeMarkdown(&buf, sampleResults(), "benchmarks.png"); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"| machine | Test CPU, 2 cores",
		"| commit | `abc123` with uncommitted changes |",
		"PostgreSQL skipped: PostgreSQL unreachable |",
		"## On PostgreSQL\n\nskipped: PostgreSQL unreachable.",
		// best point, ratio to its limit, published figure in its own column
		"| password | 50.0 | 4 | 70 / 120 | argon2id verify | 100 | 0.50 | — | — | Keycloak: 30/s |",
		// errors shown, gatehouse ÷ peer against the peer's best point
		"| client_credentials RS256 | 1500 (3 errors) | 4 | 2.0 / 9.0 | RSA-2048 sign | 2000 | 0.75 | 3000 (4) | 0.50 |",
		// the gateway's limit is the upstream at the same concurrency
		"| gateway pass-through | 8000 | 4 | 0.40 / 2.5 | upstream direct, same c | 20000 | 0.40 |",
		"| fusio login | skipped: no such endpoint |",
		// a limit slower than the endpoint it bounds is flagged, not hidden
		"| refresh | 2500 | 1 | 1.0 / 3.0 | RSA-2048 sign | 2000 | 1.25 † |",
		"† Above 1: the endpoint outran its own bare operation",
		"| load average at start | 0.10 0.20 0.30 ",
		"best of 3 samples",
		"![throughput against concurrency](benchmarks.png)",
		"| client_credentials RS256 — peer | 1100 (0.00) | 3000 (5.0) |",
		"**one core**",
		"| `argon2id_verify_per_s` | 100 |",
		"| empty | 35 ms | 24.0 MiB |",
		"## Growth: 1,000 vs 1,000,000 users",
		"| password | 60.0, 100 | 59.0, 110 | +10 % | yes |",
		"| refresh | 900, 10 | 800, 13 | +30 % | **no** |",
		"| **difference per 100,000 live sessions** | **+1.0 MiB** |",
		"## How to read this",
		"- a note",
		"benchstat old.txt new.txt",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "bench/gateway.sh") {
		t.Error("gateway.sh section present without its output")
	}

	r := sampleResults()
	r.Growth, r.GrowthSkipped = nil, "run without -growth"
	r.Scenarios = r.Scenarios[:1]
	buf.Reset()
	if err := writeMarkdown(&buf, r, "benchmarks.png"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Not measured in this run: run without -growth.") {
		t.Error("missing growth note when growth was skipped")
	}
	if strings.Contains(buf.String(), "†") {
		t.Error("disturbed-limit note without a ratio above 1")
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-conc", "1, 8", "-only", "password,userinfo", "-dur", "2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.conc) != 2 || o.conc[1] != 8 || !o.only["userinfo"] || o.dur != 2*time.Second || !o.growth || !o.peer ||
		o.postgres != defaultPostgres {
		t.Errorf("options %+v", o)
	}
	if o, err := parseOptions([]string{"-postgres", ""}, io.Discard); err != nil || o.postgres != "" {
		t.Errorf("-postgres \"\": %q, %v", o.postgres, err)
	}
	for _, bad := range [][]string{{"-conc", "0"}, {"-conc", "a"}, {"-dur", "0s"}, {"-growth-users", "5"}, {"extra"},
		{"-postgres", "postgres://u:p@h:port/x"}} {
		if _, err := parseOptions(bad, io.Discard); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestHelpers(t *testing.T) {
	if got := replaceFlag([]string{"-realm", "a", "-users", "5"}, "-users", "9"); strings.Join(got, " ") != "-realm a -users 9" {
		t.Errorf("replaceFlag = %q", got)
	}
	if got := replaceFlag([]string{"-c", "1"}, "-realm", "x"); strings.Join(got, " ") != "-c 1 -realm x" {
		t.Errorf("replaceFlag append = %q", got)
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Errorf("thousands = %q", got)
	}
	if rss := vmRSS(os.Getpid()); rss <= 0 {
		t.Errorf("vmRSS(self) = %d", rss)
	}
	if vmRSS(-1) != 0 {
		t.Error("vmRSS of no process is not 0")
	}
}

// TestPostgresPassFailureDropsSchema runs the pass against the real
// server with a gatehouse binary that does not exist: the pass fails,
// says so, and leaves no schema behind.
func TestPostgresPassFailureDropsSchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, defaultPostgres)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL not reachable (CI=true): %v", err)
		}
		t.Skipf("PostgreSQL not reachable: %v", err)
	}
	defer conn.Close(context.Background())
	work := t.TempDir()
	b := &bench{log: io.Discard, started: time.Now(), work: work, bin: filepath.Join(work, "no-bin"), res: sampleResults()}
	b.res.PostgresSkipped = ""
	b.o.postgres = defaultPostgres
	b.postgresPass(nil)
	if b.res.PostgresFailed == nil || b.res.PostgresRan || b.res.PostgresSkipped != "" {
		t.Fatalf("failed %v, ran %v, skipped %q", b.res.PostgresFailed, b.res.PostgresRan, b.res.PostgresSkipped)
	}
	if !strings.HasPrefix(b.pgSchema, "gh_bench_") {
		t.Fatalf("schema %q", b.pgSchema)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM pg_namespace WHERE nspname = $1", b.pgSchema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s still exists after the failed pass", b.pgSchema)
	}
	if b.res.PostgresVersion == "" || b.res.PostgresWhere != "127.0.0.1:5432" {
		t.Errorf("version %q, where %q", b.res.PostgresVersion, b.res.PostgresWhere)
	}
	for _, s := range b.res.Scenarios {
		if s.Postgres != nil {
			t.Errorf("%s has PostgreSQL points after a failed pass", s.Name)
		}
	}
	// The key file stays in the work directory, private.
	if st, err := os.Stat(filepath.Join(work, "pg-master.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("master key file: %v, %v", st, err)
	}
	b.stopAll() // the drop already ran; running it again is a no-op
}

func TestCryptoBound(t *testing.T) {
	for args, want := range map[string]bool{
		"-realm bench -scenario password":         true,
		"-scenario refresh -client-id app":        true,
		"-scenario client_credentials":            true,
		"-scenario introspect -token-grant x":     false,
		"-scenario get -path /api/orders -bearer": false,
		"-realm bench -client-id password":        false,
		"-scenario":                               false,
	} {
		if got := cryptoBound(strings.Fields(args)); got != want {
			t.Errorf("cryptoBound(%q) = %v, want %v", args, got, want)
		}
	}
}
