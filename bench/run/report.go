package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// point is one loadgen run: a scenario at one concurrency.
type point struct {
	Conc     int     `json:"connections"`
	RPS      float64 `json:"throughput_rps"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
}

// scenarioResult is one row of the table and one line of the chart.
type scenarioResult struct {
	Name   string
	Points []point
	// LimitKey names the bench/limits figure that bounds the scenario
	// ("" when none applies); LimitName is how the table shows it.
	LimitKey, LimitName string
	// LimitFromScenario, when set, takes the limit from another
	// scenario's throughput at the same concurrency (the gateway's limit
	// is the upstream hit directly).
	LimitFromScenario string
	// Peer holds the peer's runs of the same scenario; nil when the peer
	// was not run for it.
	Peer []point
	// Published is a vendor's own figure, with its hardware.
	Published string
	// Skipped says why the scenario was not run ("" when it was).
	Skipped string
	// Postgres holds the run on PostgreSQL, at one concurrency; nil when
	// the PostgreSQL pass did not run it.
	Postgres []point
}

// startup is one start-up measurement.
type startup struct {
	Label  string
	Ready  time.Duration // spawn to the first 200 from /health/ready
	RSSKiB int64         // VmRSS one second after ready, idle
}

// growthResult compares the grants at small and large data sets.
type growthResult struct {
	Users, Sessions          int
	BaseUsers, BaseSessions  int
	Conc                     int
	SeedUsers, SeedSessions  time.Duration
	Base, Grown              map[string]point // by scenario name
	RSSNoSessionsKiB         int64
	RSSSessionsKiB           int64
	RSSAfterLoadBaseKiB      int64
	RSSAfterLoadGrownKiB     int64
	StartupBig, StartupSmall startup
}

// results is everything one run measured, for the markdown and the chart.
type results struct {
	Date          time.Time
	CPUModel      string
	Cores         int
	Kernel        string
	GoVersion     string
	Signer        string // RSA signer gatehouse and bench/limits were built with
	NodeVersion   string
	PeerVersion   string
	Commit        string
	Dirty         bool // the working tree had uncommitted changes
	Command       string
	Dur, Warmup   time.Duration
	Concurrencies []int
	Limits        map[string]float64
	LimitsCores   int
	LimitsSamples int    // bench/limits runs; Limits keeps each key's best
	LoadAvg       string // /proc/loadavg at the start: how busy the machine already was
	Scenarios     []scenarioResult
	Startups      []startup
	Growth        *growthResult
	GrowthSkipped string
	GatewaySh     string // bench/gateway.sh's summary, when it ran
	// The PostgreSQL pass: whether it ran to the end, or why it was
	// skipped, or how it failed; the server's version and host:port, and
	// how long the pass took.
	PostgresRan     bool
	PostgresSkipped string
	PostgresFailed  error
	PostgresVersion string
	PostgresWhere   string
	PostgresElapsed time.Duration
	Notes           []string
	Elapsed         time.Duration
}

// best returns the point with the highest throughput (the zero point for
// no points).
func best(ps []point) point {
	var b point
	for _, p := range ps {
		if p.RPS > b.RPS {
			b = p
		}
	}
	return b
}

// at returns the point at concurrency c.
func at(ps []point, c int) (point, bool) {
	for _, p := range ps {
		if p.Conc == c {
			return p, true
		}
	}
	return point{}, false
}

// sqlitePoints and postgresPoints pick a scenario's runs on one store.
func sqlitePoints(s scenarioResult) []point   { return s.Points }
func postgresPoints(s scenarioResult) []point { return s.Postgres }

// limitFor returns the limit of s at concurrency c and its display name. A
// limit taken from another scenario comes from that scenario's run on the
// same store (pts picks it), measured at the same time as s.
// limitCells renders the limit name and the ratio of p to it; over is set
// (and the ratio marked †) when p beats its limit by more than 5%, which
// only a disturbed limit measurement can explain.
func (r *results) limitCells(s scenarioResult, p point, points func(scenarioResult) []point) (lim float64, limCell, ratioCell string, over bool) {
	lim, limName := r.limitFor(s, p.Conc, points)
	if limName == "" {
		return lim, "—", "—", false
	}
	ratioCell = ratio(p.RPS, lim)
	if lim > 0 && p.RPS > 1.05*lim {
		ratioCell += " †"
		over = true
	}
	return lim, limName, ratioCell, over
}

func (r *results) limitFor(s scenarioResult, c int, pts func(scenarioResult) []point) (float64, string) {
	if s.LimitFromScenario != "" {
		for _, o := range r.Scenarios {
			if o.Name == s.LimitFromScenario {
				if p, ok := at(pts(o), c); ok {
					return p.RPS, s.LimitName
				}
			}
		}
		return 0, s.LimitName
	}
	if s.LimitKey == "" {
		return 0, ""
	}
	return r.Limits[s.LimitKey], s.LimitName
}

func num(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v):
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func ms(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f", v)
	}
	if v >= 1 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func mib(kib int64) string {
	if kib <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// writeMarkdown renders docs/benchmarks.md. pngName is the chart's file
// name relative to the markdown.
func writeMarkdown(w io.Writer, r *results, pngName string) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("# Benchmarks\n\n")
	p("Generated by `make bench` (`go run ./bench/run`); every figure below comes from one run on one machine. ")
	p("Re-running replaces this file and `%s`.\n\n", pngName)
	p("| | |\n|---|---|\n")
	p("| machine | %s, %d cores (`lscpu`), %s |\n", r.CPUModel, r.Cores, r.Kernel)
	if r.LoadAvg != "" {
		p("| load average at start | %s (1, 5, 15 min; above 0.5 the machine was not idle and every figure is disturbed) |\n", r.LoadAvg)
	}
	dirty := ""
	if r.Dirty {
		dirty = " with uncommitted changes"
	}
	p("| commit | `%s`%s |\n", r.Commit, dirty)
	p("| date | %s |\n", r.Date.UTC().Format("2006-01-02 15:04 MST"))
	p("| command | `%s` |\n", r.Command)
	p("| Go | %s |\n", r.GoVersion)
	if r.Signer != "" {
		p("| signer | %s (RS256 and PS256 in gatehouse and in bench/limits) |\n", r.Signer)
	}
	switch {
	case r.PostgresRan:
		p("| storage | embedded SQLite (`--data DIR`, WAL) everywhere except the section *On PostgreSQL*: PostgreSQL %s (`--db`, at %s on the same machine) |\n",
			r.PostgresVersion, r.PostgresWhere)
	case r.PostgresFailed != nil:
		p("| storage | embedded SQLite (`--data DIR`, WAL); the PostgreSQL pass failed (see *On PostgreSQL*) |\n")
	default:
		p("| storage | embedded SQLite (`--data DIR`, WAL); PostgreSQL skipped: %s |\n", r.PostgresSkipped)
	}
	p("| load | `bench/loadgen`, closed loop, keep-alive, c = %s; %s warm-up + %s measured per point |\n",
		joinInts(r.Concurrencies), r.Warmup, r.Dur)
	p("| pinning | none: server, load generator (and the peer) share all %d cores, as do the limits |\n", r.Cores)
	p("| run time | %s |\n\n", r.Elapsed.Round(time.Second))

	p("## Results\n\n")
	p("Each row is the scenario at the concurrency where it was fastest (column c). ")
	p("*Limit* is the bare rate of the one operation that bounds it, measured by `bench/limits` in this run with %d goroutines on all %d cores (the server's CPU budget); ", r.LimitsCores, r.Cores)
	p("it ran %d times (before the scenarios, after them, at the end) and each operation's best sample counts, because other load can only slow a bare crypto loop down. ", r.LimitsSamples)
	p("*Peer* is node oidc-provider %s on the same machine, driven by the same load generator in the same run.\n\n", r.PeerVersion)
	disturbed := false
	p("| scenario | gatehouse req/s | c | p50 / p99 ms | limit | limit/s | ÷ limit | peer req/s (c) | gatehouse ÷ peer | published figure (not measured here) |\n")
	p("|---|--:|--:|--:|---|--:|--:|--:|--:|---|\n")
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			p("| %s | skipped: %s | | | | | | | | %s |\n", s.Name, s.Skipped, s.Published)
			continue
		}
		bp := best(s.Points)
		lim, limCell, ratioCell, over := r.limitCells(s, bp, sqlitePoints)
		disturbed = disturbed || over
		peerCell, vsPeer := "—", "—"
		if s.Peer != nil {
			pp := best(s.Peer)
			peerCell = fmt.Sprintf("%s (%d)", num(pp.RPS), pp.Conc)
			vsPeer = ratio(bp.RPS, pp.RPS)
		}
		errNote := ""
		if e := totalErrors(s.Points); e > 0 {
			errNote = fmt.Sprintf(" (%d errors)", e)
		}
		p("| %s | %s%s | %d | %s / %s | %s | %s | %s | %s | %s | %s |\n", s.Name, num(bp.RPS), errNote, bp.Conc,
			ms(bp.P50), ms(bp.P99), limCell, num(lim), ratioCell, peerCell, vsPeer, s.Published)
	}
	if disturbed {
		p("\n† Above 1: the endpoint outran its own bare operation, which is impossible on a quiet machine. Every sample of the limit was slowed by other load (the limit runs only a few seconds at a time); the ratio is not meaningful in this run. Re-run on an idle machine.\n")
	}
	p("\nThe peer runs on **one core**: Node executes JavaScript on one thread, and oidc-provider keeps its tokens in a per-process memory adapter, ")
	p("so it cannot run as a cluster of workers without an external store. gatehouse had both cores. ")
	p("The peer's introspection figure is for an opaque token looked up in memory: oidc-provider refuses to introspect JWT access tokens.\n\n")

	writePostgres(p, r)

	p("## Throughput against concurrency\n\n")
	p("![throughput against concurrency](%s)\n\n", pngName)
	p("Solid lines: gatehouse on SQLite; dashed: the peer. Both axes are logarithmic. The same figures as a table (req/s, p99 ms in brackets):\n\n")
	p("| scenario |")
	for _, c := range r.Concurrencies {
		p(" c=%d |", c)
	}
	p("\n|---|")
	for range r.Concurrencies {
		p("--:|")
	}
	p("\n")
	row := func(name string, ps []point) {
		p("| %s |", name)
		for _, c := range r.Concurrencies {
			if pt, ok := at(ps, c); ok {
				p(" %s (%s) |", num(pt.RPS), ms(pt.P99))
			} else {
				p(" — |")
			}
		}
		p("\n")
	}
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			continue
		}
		row(s.Name, s.Points)
		if s.Peer != nil {
			row(s.Name+" — peer", s.Peer)
		}
	}
	p("\n")

	p("## Limits (bench/limits, same run, %d goroutines, best of %d samples)\n\n", r.LimitsCores, r.LimitsSamples)
	p("| operation | per second |\n|---|--:|\n")
	for _, k := range []string{"argon2id_verify_per_s", "rsa2048_sign_per_s", "rsa2048_sign_openssl_per_s", "rsa2048_verify_per_s", "es256_sign_per_s",
		"es256_verify_per_s", "ed25519_sign_per_s", "hmac_sha256_per_s"} {
		if v, ok := r.Limits[k]; ok {
			p("| `%s` | %s |\n", k, num(v))
		}
	}
	p("\nargon2id is measured at Keycloak's default parameters (argon2id, 7168 KiB, t=5, p=1), which are also the bench realm's: the seeded users' hash uses them.\n\n")

	p("## Start-up and idle memory\n\n")
	p("| store | spawn → `/health/ready` 200 | idle VmRSS |\n|---|--:|--:|\n")
	for _, s := range r.Startups {
		p("| %s | %.0f ms | %s |\n", s.Label, float64(s.Ready.Microseconds())/1000, mib(s.RSSKiB))
	}
	p("\nVmRSS is read from `/proc/PID/status` one second after the server answered ready, with no load.\n\n")

	p("## Growth: 1,000 vs %s users\n\n", thousands(growthUsers(r)))
	if g := r.Growth; g != nil {
		p("Users and sessions are created by `gatehouse seed` (store.CreateUsers in batches of 5,000; one CreateSession per session). ")
		p("Every seeded user has the same argon2id hash, computed once: a million real hashes would take hours and measure only the hash. ")
		p("A login still runs a full argon2id verification against it. Seeding took %s for %s users and %s for %s sessions.\n\n",
			g.SeedUsers.Round(time.Second), thousands(g.Users), g.SeedSessions.Round(time.Second), thousands(g.Sessions))
		p("Both sides run in the same realm settings (refresh rotation on), at c=%d, %d rounds alternating small and large so that background load hits both alike; each cell is the median of the rounds. ", g.Conc, growthRounds)
		p("On the large side the logins rotate over user1..user100000 (loadgen builds one request body per user); a username lookup is one index probe, whichever row it finds. ")
		p("The small side is the server the scenarios above ran against, so it also holds the sessions those runs created.\n\n")
		p("| grant (c=%d) | %s users, %s sessions: req/s, p99 ms | %s users, %s sessions: req/s, p99 ms | p99 change | within 20 %%? |\n",
			g.Conc, thousands(g.BaseUsers), thousands(g.BaseSessions), thousands(g.Users), thousands(g.Sessions))
		p("|---|--:|--:|--:|---|\n")
		for _, name := range sortedKeys(g.Base) {
			a, z := g.Base[name], g.Grown[name]
			change := "—"
			verdict := "—"
			if a.P99 > 0 && z.P99 > 0 {
				d := (z.P99 - a.P99) / a.P99
				change = fmt.Sprintf("%+.0f %%", d*100)
				verdict = "yes"
				if d > 0.2 {
					verdict = "**no**"
				}
			}
			p("| %s | %s, %s | %s, %s | %s | %s |\n", name, num(a.RPS), ms(a.P99), num(z.RPS), ms(z.P99), change, verdict)
		}
		p("\n| memory (VmRSS of the server) | |\n|---|--:|\n")
		p("| idle, %s users, no sessions | %s |\n", thousands(g.Users), mib(g.RSSNoSessionsKiB))
		p("| idle, %s users, %s live sessions | %s |\n", thousands(g.Users), thousands(g.Sessions), mib(g.RSSSessionsKiB))
		p("| **difference per %s live sessions** | **%s** |\n", thousands(g.Sessions), signedMiB(g.RSSSessionsKiB-g.RSSNoSessionsKiB))
		p("| after the grants above, small data set | %s |\n", mib(g.RSSAfterLoadBaseKiB))
		p("| after the grants above, large data set | %s |\n", mib(g.RSSAfterLoadGrownKiB))
		p("| start-up (spawn → ready), %s users + %s sessions | %.0f ms |\n\n", thousands(g.Users), thousands(g.Sessions),
			float64(g.StartupBig.Ready.Microseconds())/1000)
		p("Sessions live in SQLite, not in the server's memory: the process holds only caches (realm, clients, keys, verified tokens) and SQLite's bounded page cache, ")
		p("so the memory a live session costs is disk (the database file), and the difference above is what a session costs in RAM — close to nothing, and noisy at this size. ")
		p("Keycloak's sizing guide, for comparison, budgets 500 MB per 100,000 active sessions per pod (it keeps sessions in Infinispan).\n\n")
	} else {
		p("Not measured in this run: %s.\n\n", r.GrowthSkipped)
	}

	if r.GatewaySh != "" {
		p("## Gateway latency (bench/gateway.sh)\n\n")
		p("`bench/gateway.sh` measures what the gateway adds, open loop at half its throughput; its summary from this run:\n\n```\n%s\n```\n\n", strings.TrimSpace(r.GatewaySh))
	}

	p("## How to read this\n\n")
	p("Throughput is successful requests per second with the server, the load generator and (for the peer rows) Node all on the same %d cores, so every figure is lower than the server alone would reach; ", r.Cores)
	p("compare figures from the same run, never across machines. ")
	p("The *÷ limit* column says how much of the machine the endpoint turns into its one unavoidable operation: ")
	p("a password grant is bound by one argon2id verification, a client-credentials or refresh grant by one signature, the gateway by the upstream it forwards to. ")
	p("A ratio near 1 means the endpoint is as fast as its cryptography allows, and more speed has to come from the cryptography itself (ES256 instead of RS256, cheaper hash parameters); ")
	p("well below 1 means time goes elsewhere (HTTP, JSON, the store, the load generator sharing the cores) and is worth profiling. ")
	p("The limit runs with no load generator beside it, so a ratio of 0.5–0.7 on a 2-core machine is already close to the ceiling. ")
	p("p50/p99 are closed-loop latencies at that concurrency: they grow with c once throughput stops growing (queueing), so read latency at the lowest c that reaches the peak. ")
	p("The published figures are vendors' own sizing numbers on their hardware, quoted for scale only; they were not measured here.\n\n")
	for _, n := range r.Notes {
		p("- %s\n", n)
	}
	if len(r.Notes) > 0 {
		p("\n")
	}

	p("## Micro-benchmarks\n\n")
	p("`internal/core/bench_test.go` has `go test -bench` benchmarks of token minting, bearer checks (cached and uncached), argon2id and the bare crypto limits. ")
	p("To compare two versions with benchstat (`go install golang.org/x/perf/cmd/benchstat@latest`):\n\n")
	p("```sh\ngit stash; go test -run='^$' -bench=. -count=6 ./internal/core/ | tee old.txt; git stash pop\n")
	p("go test -run='^$' -bench=. -count=6 ./internal/core/ | tee new.txt\nbenchstat old.txt new.txt\n```\n\n")
	p("Run both on a quiet machine; benchstat reports a change only when the six samples of each side separate.\n")

	_, err := io.WriteString(w, b.String())
	return err
}

// writePostgres renders the section On PostgreSQL: each scenario at one
// concurrency, with the same limit columns as the SQLite table and the
// SQLite figure at the same c beside it.
func writePostgres(p func(string, ...any), r *results) {
	p("## On PostgreSQL\n\n")
	switch {
	case r.PostgresFailed != nil:
		msg, _, _ := strings.Cut(r.PostgresFailed.Error(), "\n")
		p("The PostgreSQL pass failed in this run: %s\n\n", msg)
		return
	case !r.PostgresRan:
		p("skipped: %s.\n\n", r.PostgresSkipped)
		return
	}
	p("The same scenarios against gatehouse on PostgreSQL %s (`--db`, at %s), in a fresh schema with the same realm files imported and the same %s users and %s sessions per realm seeded; the schema is dropped afterwards. ",
		r.PostgresVersion, r.PostgresWhere, thousands(baseUsers), thousands(baseSessions))
	p("The database server runs on the same %d cores as gatehouse and the load generator, so it competes with them for CPU, as it would not on a machine of its own. ", r.Cores)
	p("Each scenario runs once, at the concurrency where it was fastest on SQLite (the upstream at the gateway's), not over the whole range, to keep `make bench` short; the pass took %s. ",
		r.PostgresElapsed.Round(time.Second))
	p("*Limit* and *÷ limit* are as in the table above; the gateway's limit is the upstream measured in this pass. ")
	p("*SQLite* is the same scenario at the same c in the table above.\n\n")
	p("| scenario | PostgreSQL req/s | c | p50 / p99 ms | limit | limit/s | ÷ limit | SQLite req/s (same c) | PostgreSQL ÷ SQLite |\n")
	p("|---|--:|--:|--:|---|--:|--:|--:|--:|\n")
	disturbed := false
	for _, s := range r.Scenarios {
		if len(s.Postgres) == 0 {
			continue
		}
		pp := best(s.Postgres)
		lim, limCell, ratioCell, over := r.limitCells(s, pp, postgresPoints)
		disturbed = disturbed || over
		sqliteCell, vs := "—", "—"
		if sp, ok := at(s.Points, pp.Conc); ok {
			sqliteCell = num(sp.RPS)
			vs = ratio(pp.RPS, sp.RPS)
		}
		errNote := ""
		if e := totalErrors(s.Postgres); e > 0 {
			errNote = fmt.Sprintf(" (%d errors)", e)
		}
		p("| %s | %s%s | %d | %s / %s | %s | %s | %s | %s | %s |\n", s.Name, num(pp.RPS), errNote, pp.Conc,
			ms(pp.P50), ms(pp.P99), limCell, num(lim), ratioCell, sqliteCell, vs)
	}
	if disturbed {
		p("\n† Above 1: outran its own bare operation; the limit was measured under other load (see the note under *Results*).\n")
	}
	p("\nThe chart below is SQLite only. Start-up and idle memory on PostgreSQL are in the start-up table.\n\n")
}

func growthUsers(r *results) int {
	if r.Growth != nil {
		return r.Growth.Users
	}
	return 1000000
}

func signedMiB(kib int64) string {
	v := math.Round(float64(kib)/1024*10) / 10
	if v == 0 {
		return "0.0 MiB" // not "-0.0": a difference below the resolution has no sign
	}
	return fmt.Sprintf("%+.1f MiB", v)
}

func totalErrors(ps []point) int64 {
	var n int64
	for _, p := range ps {
		n += p.Errors
	}
	return n
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// thousands prints n with comma separators: 1,000,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func sortedKeys(m map[string]point) []string {
	return slices.Sorted(maps.Keys(m))
}
