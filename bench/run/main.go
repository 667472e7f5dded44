// Command run is gatehouse's benchmark driver: one command that builds the
// server and the tools, starts gatehouse on a fresh data directory, measures
// every scenario at several concurrencies, runs them again on PostgreSQL
// (a fresh schema, each at its best concurrency), measures the limits and a
// peer (node oidc-provider) in the same run, measures start-up, memory and
// growth to a million users, and writes docs/benchmarks.md and
// docs/benchmarks.png.
//
//	go run ./bench/run                 # everything (make bench)
//	go run ./bench/run -growth=false   # without the million-user part
//	go run ./bench/run -postgres ""    # without the PostgreSQL pass
//	go run ./bench/run -only password,client_credentials -conc 1,4 -dur 1s -out /tmp/b
//
// Secrets (the client secret, the users' password) are random per run,
// written only to files in the run's private work directory, and never
// printed.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	outDir         string
	dur, warmup    time.Duration
	conc           []int
	only           map[string]bool
	peer           bool
	growth         bool
	growthUsers    int
	growthSessions int
	gatewaySh      bool
	keep           bool
	// postgres is the server the PostgreSQL pass runs on ("" skips
	// the pass).
	postgres string
	// signer is "auto" (OpenSSL where it builds), "go" or "openssl".
	signer string
}

func main() {
	if err := realMain(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.outDir, "out", "", "directory that receives benchmarks.md and benchmarks.png (default: the repository's docs)")
	fs.DurationVar(&o.dur, "dur", 3*time.Second, "measured duration of each point")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each point, not counted")
	conc := fs.String("conc", "1,2,4,8,16", "concurrencies, comma-separated")
	only := fs.String("only", "", "run only these scenarios (comma-separated names as in the table); default all")
	fs.BoolVar(&o.peer, "peer", true, "run the node oidc-provider peer (needs node and npm)")
	fs.BoolVar(&o.growth, "growth", true, "measure growth: seed -growth-users users and -growth-sessions sessions")
	fs.IntVar(&o.growthUsers, "growth-users", 1000000, "users in the growth data set")
	fs.IntVar(&o.growthSessions, "growth-sessions", 100000, "live sessions in the growth data set")
	fs.BoolVar(&o.gatewaySh, "gateway-sh", true, "also run bench/gateway.sh (gateway open-loop latency), when present")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, data) instead of deleting it")
	fs.StringVar(&o.signer, "signer", "auto", "RSA signer to build gatehouse and bench/limits with: auto (OpenSSL where libcrypto's headers are installed), go (crypto/rsa, the default build) or openssl")
	fs.StringVar(&o.postgres, "postgres", defaultPostgres, "PostgreSQL `URL` for the PostgreSQL pass, run in a fresh schema that is dropped afterwards (\"\" skips it)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-conc: %q is not a positive number", f)
		}
		o.conc = append(o.conc, n)
	}
	if *only != "" {
		o.only = map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			o.only[strings.TrimSpace(n)] = true
		}
	}
	if o.dur <= 0 || o.warmup < 0 || o.growthUsers < 1000 || o.growthSessions < 1000 {
		return o, errors.New("-dur must be positive, -warmup not negative, -growth-users and -growth-sessions at least 1000")
	}
	switch o.signer {
	case "auto", "go", "openssl":
	default:
		return o, fmt.Errorf("-signer: %q is not auto, go or openssl", o.signer)
	}
	if o.postgres != "" {
		if _, err := withSearchPath(o.postgres, "x"); err != nil {
			return o, fmt.Errorf("-postgres: %w", err)
		}
	}
	return o, nil
}

// Base data set: the scenarios run against it, and the growth comparison
// uses it as the small side.
const (
	baseUsers    = 1000
	baseSessions = 1000
)

// bench is one run's state: where things are and what was measured.
type bench struct {
	o       options
	log     io.Writer
	work    string // private work directory
	bin     string // built binaries
	repo    string // repository root
	secret  string
	pwFile  string
	upURL   string
	upProc  *proc
	res     *results
	started time.Time
	// mu guards running and cleanups: an interrupt handles them from
	// its own goroutine.
	mu sync.Mutex
	// running are the processes the run started, stopped on the way out
	// whatever happens.
	running []*proc
	// cleanups undo what the run created outside its work directory
	// (the PostgreSQL schema); each runs once, on the way out or on an
	// interrupt.
	cleanups []func()
	// pgSchema is the PostgreSQL pass's schema, once created.
	pgSchema string
}

func realMain(args []string, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	if o.outDir == "" {
		o.outDir = filepath.Join(repo, "docs")
	}
	b := &bench{o: o, log: stderr, work: work, bin: filepath.Join(work, "bin"), repo: repo, started: time.Now()}
	b.res = &results{Date: time.Now(), Command: "go run ./bench/run " + strings.Join(args, " "), Dur: o.dur, Warmup: o.warmup,
		Concurrencies: o.conc, Cores: runtime.NumCPU()}
	if len(args) == 0 {
		b.res.Command = "make bench"
	}
	defer b.stopAll()
	stopSignals := b.onInterrupt(work)
	defer stopSignals()
	if err := b.run(); err != nil {
		return err
	}
	b.res.Elapsed = time.Since(b.started)
	if err := b.write(); err != nil {
		return err
	}
	if b.res.PostgresFailed != nil {
		return fmt.Errorf("the PostgreSQL pass failed (written to the doc as such): %w", b.res.PostgresFailed)
	}
	return nil
}

// onInterrupt stops the children, runs the cleanups and removes the work
// directory when the run is interrupted (SIGINT, SIGTERM), so that an
// aborted run leaves no schema in the shared database behind. The
// returned function ends the watch.
func (b *bench) onInterrupt(work string) func() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			b.logf("%s: stopping and cleaning up", s)
			b.stopAll()
			if !b.o.keep {
				os.RemoveAll(work)
			}
			os.Exit(130)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.log, "[%5.0fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, a...))
}

func (b *bench) run() error {
	b.describeMachine()
	if err := b.build(); err != nil {
		return err
	}
	if err := b.secrets(); err != nil {
		return err
	}
	upAddr, err := freeAddr()
	if err != nil {
		return err
	}
	b.upURL = "http://" + upAddr
	b.upProc, err = b.start("upstream", filepath.Join(b.bin, "upstream"), []string{"-addr", upAddr}, nil)
	if err != nil {
		return err
	}
	if err := waitHTTP(b.upURL+"/", 10*time.Second); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}

	realmFiles, err := b.realmFiles()
	if err != nil {
		return err
	}
	// Start-up from nothing: an empty data directory, no realm.
	st, err := b.measureStartup("empty, no realm", sqliteAt(filepath.Join(b.work, "empty")), nil)
	if err != nil {
		return err
	}
	b.res.Startups = append(b.res.Startups, st)
	// Start-up importing the bench realms (schema, master key, one signing
	// key per algorithm and realm), then seed the base data set offline.
	data := filepath.Join(b.work, "data")
	st, err = b.measureStartup("empty, importing 2 realm files", sqliteAt(data), realmFiles)
	if err != nil {
		return err
	}
	b.res.Startups = append(b.res.Startups, st)
	for _, realm := range []string{"bench", "bench-rot"} {
		if _, err := b.seed(sqliteAt(data), realm, baseUsers, baseSessions); err != nil {
			return err
		}
	}
	st, err = b.measureStartup(fmt.Sprintf("existing, %s users + %s sessions per realm", thousands(baseUsers), thousands(baseSessions)), sqliteAt(data), nil)
	if err != nil {
		return err
	}
	b.res.Startups = append(b.res.Startups, st)

	if err := b.limits(); err != nil {
		return err
	}

	srv, url, err := b.serve(sqliteAt(data), "gatehouse")
	if err != nil {
		return err
	}
	b.res.Scenarios = b.scenarioTable()
	for i := range b.res.Scenarios {
		s := &b.res.Scenarios[i]
		if s.Skipped != "" || !b.selected(s.Name) {
			if s.Skipped == "" {
				s.Skipped = "not selected (-only)"
			}
			continue
		}
		if err := b.sweep(s, url); err != nil {
			return err
		}
	}
	b.postgresPass(realmFiles)

	if err := b.limits(); err != nil {
		return err
	}
	if b.o.peer {
		if err := b.runPeer(); err != nil {
			b.logf("peer: %v (peer columns left empty)", err)
			b.res.Notes = append(b.res.Notes, "The peer did not run: "+err.Error()+".")
		}
	}
	if b.o.gatewaySh {
		b.runGatewaySh()
	}
	// The scenario server stays up (idle) through the peer and
	// gateway.sh: the growth comparison runs against it again.
	if b.o.growth {
		if err := b.growth(srv, url); err != nil {
			return err
		}
	} else {
		b.res.GrowthSkipped = "run without -growth (`make bench` includes it)"
	}
	srv.stop()
	return b.limits()
}

func (b *bench) selected(name string) bool { return b.o.only == nil || b.o.only[name] }

// describeMachine fills in what the doc says about where it ran.
func (b *bench) describeMachine() {
	r := b.res
	r.CPUModel = "unknown CPU"
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Model name" {
				r.CPUModel = strings.TrimSpace(v)
			}
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Hypervisor vendor" {
				r.CPUModel += " (virtual machine, " + strings.TrimSpace(v) + ")"
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		r.Kernel = strings.TrimSpace(string(out))
	}
	if d, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(d)); len(f) >= 3 {
			r.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	r.GoVersion = runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		r.GoVersion = strings.TrimSpace(string(out))
	}
	r.Commit = "unknown"
	if out, err := exec.Command("git", "-C", b.repo, "rev-parse", "HEAD").Output(); err == nil {
		r.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", b.repo, "status", "--porcelain").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			r.Dirty = true
		}
	}
}

// build compiles gatehouse and the tools once, so that compilation does
// not compete with the measurements. gatehouse and limits get -tags
// openssl where libcrypto's headers are installed (see signer.go), and
// both fall back to crypto/rsa together if that build fails.
func (b *bench) build() error {
	signer := signerGo
	if b.o.signer == "openssl" || (b.o.signer == "auto" && opensslBuildable()) {
		signer = opensslSignerName()
	}
	b.logf("building gatehouse, loadgen, limits, upstream; RSA signer: %s", signer)
	err := b.buildAll(signer != signerGo)
	if err != nil && signer != signerGo {
		b.logf("the -tags openssl build failed, building with %s instead: %v", signerGo, err)
		b.res.Notes = append(b.res.Notes, "The `-tags openssl` build failed, so gatehouse was built with "+signerGo+".")
		signer = signerGo
		err = b.buildAll(false)
	}
	b.res.Signer = signer
	return err
}

func (b *bench) buildAll(openssl bool) error {
	for _, t := range [][2]string{
		{"gatehouse", "./cmd/gatehouse"}, {"loadgen", "./bench/loadgen"},
		{"limits", "./bench/limits"}, {"upstream", "./bench/upstream"},
	} {
		args := []string{"build"}
		if openssl && signerTagged(t[0]) {
			args = append(args, "-tags", "openssl")
		}
		cmd := exec.Command("go", append(args, "-o", filepath.Join(b.bin, t[0]), t[1])...)
		cmd.Dir = b.repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", t[1], err, out)
		}
	}
	return nil
}

// secrets makes this run's client secret and user password and writes the
// password to a private file for gatehouse seed.
func (b *bench) secrets() error {
	b.secret = rand.Text() + rand.Text() // 52 base32 characters, 260 bits
	pw := "Bench-" + rand.Text()
	b.pwFile = filepath.Join(b.work, "password")
	return os.WriteFile(b.pwFile, []byte(pw+"\n"), 0o600)
}

func (b *bench) password() string {
	d, _ := os.ReadFile(b.pwFile)
	return strings.TrimSpace(string(d))
}

// realmFiles fills the templates in bench/realms with this run's secret
// and upstream address.
func (b *bench) realmFiles() ([]string, error) {
	var files []string
	for _, name := range []string{"bench.json", "bench-rot.json"} {
		t, err := os.ReadFile(filepath.Join(b.repo, "bench", "realms", name))
		if err != nil {
			return nil, err
		}
		s := strings.ReplaceAll(string(t), "{{CLIENT_SECRET}}", b.secret)
		s = strings.ReplaceAll(s, "{{UPSTREAM}}", b.upURL)
		f := filepath.Join(b.work, name)
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// sqliteAt is the store flags of gatehouse on the embedded SQLite
// database under dir.
func sqliteAt(dir string) []string { return []string{"--data", dir} }

// seed runs gatehouse seed against the store that loc (store flags: --data,
// or --db and --master-key-file) names, with no server running on it.
func (b *bench) seed(loc []string, realm string, users, sessions int) (time.Duration, error) {
	args := append(append([]string{"seed"}, loc...), "--realm", realm, "--sessions", fmt.Sprint(sessions))
	if users > 0 {
		args = append(args, "--users", fmt.Sprint(users), "--password-file", b.pwFile)
	}
	b.logf("gatehouse seed --realm %s --users %d --sessions %d", realm, users, sessions)
	start := time.Now()
	out, err := exec.Command(filepath.Join(b.bin, "gatehouse"), args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("gatehouse seed: %v\n%s", err, out)
	}
	return time.Since(start), nil
}

// serve starts gatehouse on the store that loc names and waits until it is
// ready.
func (b *bench) serve(loc []string, name string, extra ...string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	args := append(append(append([]string{"serve", "--addr", addr}, loc...), "--no-demo", "--default-realm", "bench", "--log-level", "warn"), extra...)
	p, err := b.start(name, filepath.Join(b.bin, "gatehouse"), args, nil)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	if err := waitHTTP(url+"/health/ready", 120*time.Second); err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%s: %w (log: %s)", name, err, p.logFile)
	}
	return p, url, nil
}

// measureStartup starts gatehouse on the store that loc names, times spawn
// to ready, reads its idle memory and stops it.
func (b *bench) measureStartup(label string, loc, imports []string) (startup, error) {
	var extra []string
	for _, f := range imports {
		extra = append(extra, "--import-realm", f)
	}
	addr, err := freeAddr()
	if err != nil {
		return startup{}, err
	}
	args := append(append(append([]string{"serve", "--addr", addr}, loc...), "--no-demo", "--default-realm", "bench", "--log-level", "warn"), extra...)
	t0 := time.Now()
	p, err := b.start("gatehouse-startup", filepath.Join(b.bin, "gatehouse"), args, nil)
	if err != nil {
		return startup{}, err
	}
	defer p.stop()
	if err := waitHTTPFast("http://"+addr+"/health/ready", 120*time.Second); err != nil {
		return startup{}, fmt.Errorf("start-up (%s): %w (log: %s)", label, err, p.logFile)
	}
	ready := time.Since(t0)
	time.Sleep(time.Second)
	rss := vmRSS(p.cmd.Process.Pid)
	b.logf("start-up %s: %s, idle VmRSS %s", label, ready.Round(time.Millisecond), mib(rss))
	return startup{Label: label, Ready: ready, RSSKiB: rss}, nil
}

// limits runs bench/limits on all cores, the server's CPU budget, and
// keeps for each operation the best rate over the run's samples: other
// load on the machine can only slow a bare crypto loop down, never speed
// it up, so the best sample is the closest to the machine's capacity.
func (b *bench) limits() error {
	b.logf("bench/limits on %d cores (sample %d)", b.res.Cores, b.res.LimitsSamples+1)
	d := b.o.dur / 2
	if d < time.Second {
		d = time.Second
	}
	cmd := exec.Command(filepath.Join(b.bin, "limits"), "-c", fmt.Sprint(b.res.Cores), "-duration", d.String())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench/limits: %v\n%s", err, errb.String())
	}
	var m map[string]float64
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		return fmt.Errorf("bench/limits output: %w", err)
	}
	if b.res.Limits == nil {
		b.res.Limits = map[string]float64{}
	}
	for k, v := range m {
		b.res.Limits[k] = max(b.res.Limits[k], v)
	}
	b.res.LimitsCores = int(m["goroutines"])
	b.res.LimitsSamples++
	return nil
}

// loadSpec is where and with which flags loadgen drives one scenario; the
// secret and password travel as flags to a child process that never prints
// them.
type loadSpec struct {
	url  string
	args []string
}

// scenarioTable lists the scenarios in table order with their limits and
// published figures; spec says how to drive each.
func (b *bench) scenarioTable() []scenarioResult {
	fusio := ""
	if _, err := os.Stat(filepath.Join(b.repo, "internal", "fusio")); err != nil {
		fusio = "internal/fusio (POST /consumer/login) does not exist in this version"
	}
	// Vendors' own figures, per vCPU in Keycloak's sizing guide, scaled
	// to this machine's core count only by multiplication, as the guide
	// itself does.
	kc := func(perVCPU int, what string) string {
		return fmt.Sprintf("Keycloak sizing guide: %d/s per vCPU = %d/s on %d vCPU (%s; OpenShift on AWS, Aurora PostgreSQL)",
			perVCPU, perVCPU*b.res.Cores, b.res.Cores, what)
	}
	// The RS256 scenarios are divided by the rate of the signer the
	// server was built with.
	rsaKey, rsaName := rsaLimit(b.res.Signer)
	return []scenarioResult{
		{Name: "password", LimitKey: "argon2id_verify_per_s", LimitName: "argon2id verify", Published: kc(15, "tested to 300/s")},
		{Name: "client_credentials RS256", LimitKey: rsaKey, LimitName: rsaName,
			Published: kc(120, "a new TLS connection per request") + ". Ory Hydra: ~400/s on 2 cores (Ory's published benchmark: in-memory store, `hey` with 100 parallel)"},
		{Name: "client_credentials ES256", LimitKey: "es256_sign_per_s", LimitName: "ES256 sign"},
		{Name: "refresh (rotation off)", LimitKey: rsaKey, LimitName: rsaName,
			Published: kc(120, "tested to 435/s")},
		{Name: "refresh (rotation on)", LimitKey: rsaKey, LimitName: rsaName,
			Published: kc(120, "tested to 435/s")},
		{Name: "introspection"},
		{Name: "userinfo"},
		{Name: "gateway pass-through", LimitFromScenario: "upstream direct", LimitName: "upstream direct, same c"},
		{Name: "upstream direct"},
		{Name: "fusio login", LimitKey: "argon2id_verify_per_s", LimitName: "argon2id verify", Skipped: fusio},
	}
}

// spec says how loadgen drives scenario name against gatehouse at url.
func (b *bench) spec(name, url string) loadSpec {
	users := []string{"-users", fmt.Sprint(baseUsers), "-password", b.password()}
	svc := []string{"-client-id", "svc", "-client-secret", b.secret}
	switch name {
	case "password":
		return loadSpec{url, append([]string{"-realm", "bench", "-scenario", "password", "-client-id", "app"}, users...)}
	case "client_credentials RS256":
		return loadSpec{url, append([]string{"-realm", "bench", "-scenario", "client_credentials"}, svc...)}
	case "client_credentials ES256":
		return loadSpec{url, []string{"-realm", "bench", "-scenario", "client_credentials", "-client-id", "svc-es256", "-client-secret", b.secret}}
	case "refresh (rotation off)":
		return loadSpec{url, append([]string{"-realm", "bench", "-scenario", "refresh", "-client-id", "app"}, users...)}
	case "refresh (rotation on)":
		return loadSpec{url, append([]string{"-realm", "bench-rot", "-scenario", "refresh", "-client-id", "app"}, users...)}
	case "introspection":
		return loadSpec{url, append([]string{"-realm", "bench", "-scenario", "introspect", "-token-grant", "client_credentials"}, svc...)}
	case "userinfo":
		return loadSpec{url, []string{"-realm", "bench", "-scenario", "userinfo", "-client-id", "app", "-username", "user1", "-password", b.password()}}
	case "gateway pass-through":
		return loadSpec{url, append([]string{"-realm", "bench", "-scenario", "get", "-path", "/api/orders", "-bearer"}, svc...)}
	case "upstream direct":
		return loadSpec{b.upURL, []string{"-scenario", "get", "-path", "/api/orders"}}
	case "fusio login":
		return loadSpec{url, append([]string{"-scenario", "fusio_login"}, users...)}
	}
	return loadSpec{}
}

// sweep runs s at every concurrency.
func (b *bench) sweep(s *scenarioResult, url string) error {
	sp := b.spec(s.Name, url)
	for _, c := range b.o.conc {
		p, err := b.load(s.Name, sp, c)
		if err != nil {
			return err
		}
		s.Points = append(s.Points, p)
	}
	return nil
}

// load runs loadgen once and returns its figures. A run with failed
// requests is kept (its errors are shown in the table); a run that could
// not start is an error.
func (b *bench) load(name string, sp loadSpec, c int) (point, error) {
	args := append([]string{"-url", sp.url, "-c", fmt.Sprint(c), "-duration", b.o.dur.String(), "-warmup", b.o.warmup.String(),
		"-timeout", "30s"}, sp.args...)
	cmd := exec.Command(filepath.Join(b.bin, "loadgen"), args...)
	if cryptoBound(sp.args) {
		// A few thousand requests a second need one scheduler; with one
		// per core the generator's goroutine hand-offs become futex
		// wake-ups between threads, CPU taken from the server it
		// measures (about a quarter of the generator's own cost).
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		return point{}, fmt.Errorf("loadgen %s c=%d: %v\n%s", name, c, err, lastLines(errb.String(), 5))
	}
	var p point
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		return point{}, fmt.Errorf("loadgen %s c=%d output: %w", name, c, err)
	}
	p.Conc = c
	b.logf("%-26s c=%-2d %9.1f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d", name, c, p.RPS, p.P50, p.P99, p.Errors)
	return p, nil
}

// cryptoBound reports whether a loadgen command line drives a scenario
// whose rate the server's hashing or signing bounds to a few thousand a
// second. The others (introspection, gateway, upstream) can run at tens of
// thousands, where one scheduler would bound the generator instead.
func cryptoBound(args []string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-scenario" {
			switch args[i+1] {
			case "password", "client_credentials", "refresh", "fusio_login":
				return true
			}
		}
	}
	return false
}

// runPeer installs (npm ci) and starts node oidc-provider, then drives
// client_credentials and introspection against it.
func (b *bench) runPeer() error {
	dir := filepath.Join(b.repo, "bench", "peer")
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		b.logf("npm ci --prefix bench/peer")
		if out, err := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund").CombinedOutput(); err != nil {
			return fmt.Errorf("npm ci: %v: %s", err, lastLines(string(out), 5))
		}
	}
	if v, err := exec.Command("node", "--version").Output(); err == nil {
		b.res.NodeVersion = strings.TrimSpace(string(v))
	}
	if d, err := os.ReadFile(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err == nil {
		var pj struct{ Version string }
		if json.Unmarshal(d, &pj) == nil {
			b.res.PeerVersion = pj.Version + " (Node " + b.res.NodeVersion + ")"
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := b.start("peer", "node", []string{filepath.Join(dir, "server.js")},
		[]string{"PEER_ADDR=" + addr, "PEER_CLIENT_SECRET=" + b.secret})
	if err != nil {
		return err
	}
	defer p.stop()
	url := "http://" + addr
	if err := waitHTTP(url+"/.well-known/openid-configuration", 30*time.Second); err != nil {
		return fmt.Errorf("oidc-provider did not start: %w (log: %s)", err, p.logFile)
	}
	specs := map[string]loadSpec{
		"client_credentials RS256": {url, []string{"-scenario", "client_credentials", "-token-path", "/token",
			"-client-id", "svc", "-client-secret", b.secret}},
		"introspection": {url, []string{"-scenario", "introspect", "-token-grant", "client_credentials", "-token-path", "/token",
			"-introspect-path", "/token/introspection", "-client-id", "svc-opaque", "-client-secret", b.secret}},
	}
	for i := range b.res.Scenarios {
		s := &b.res.Scenarios[i]
		sp, ok := specs[s.Name]
		if !ok || s.Skipped != "" {
			continue
		}
		s.Peer = []point{}
		for _, c := range b.o.conc {
			pt, err := b.load(s.Name+" (peer)", sp, c)
			if err != nil {
				return err
			}
			s.Peer = append(s.Peer, pt)
		}
	}
	return nil
}

// runGatewaySh runs bench/gateway.sh with this run's durations and keeps
// its summary; a failure is noted, not fatal.
func (b *bench) runGatewaySh() {
	script := filepath.Join(b.repo, "bench", "gateway.sh")
	if _, err := os.Stat(script); err != nil {
		return
	}
	b.logf("bench/gateway.sh")
	gp, err1 := freePort()
	up, err2 := freePort()
	if err := errors.Join(err1, err2); err != nil {
		b.res.Notes = append(b.res.Notes, "bench/gateway.sh was not run: "+err.Error())
		return
	}
	cmd := exec.Command("bash", script)
	cmd.Dir = b.repo
	cmd.Env = append(os.Environ(), "DUR="+b.o.dur.String(), "WARMUP="+b.o.warmup.String(),
		"GH_PORT="+fmt.Sprint(gp), "UP_PORT="+fmt.Sprint(up))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		b.logf("bench/gateway.sh failed: %v", err)
		b.res.Notes = append(b.res.Notes, fmt.Sprintf("bench/gateway.sh failed in this run (%v); its last output: %s", err,
			strings.ReplaceAll(lastLines(errb.String(), 2), "\n", " / ")))
		return
	}
	b.res.GatewaySh = out.String()
}

// growthRounds is how many times each side of the growth comparison is
// measured. The two sides alternate, so that background load on a shared
// machine hits both alike, and the median of the rounds is reported.
const growthRounds = 3

// growth seeds the large data set into a fresh directory, measures memory
// without and with its sessions and the start-up, then measures the
// password and refresh grants alternately on the scenario server (small
// data set, still running as base) and on a server over the large set.
func (b *bench) growth(base *proc, baseURL string) error {
	g := &growthResult{Users: b.o.growthUsers, Sessions: b.o.growthSessions, BaseUsers: baseUsers, BaseSessions: baseSessions,
		Conc: 8, Base: map[string]point{}, Grown: map[string]point{}}
	b.res.Growth = g
	data := filepath.Join(b.work, "growth")
	files, err := b.realmFiles()
	if err != nil {
		return err
	}
	if _, err := b.measureStartup("empty, importing 2 realm files (growth set)", sqliteAt(data), files); err != nil {
		return err
	}
	// The rotation realm carries the large set on this side, and both
	// grants run in it on both sides.
	if g.SeedUsers, err = b.seed(sqliteAt(data), "bench-rot", g.Users, 0); err != nil {
		return err
	}
	st, err := b.measureStartup(fmt.Sprintf("existing, %s users, no sessions", thousands(g.Users)), sqliteAt(data), nil)
	if err != nil {
		return err
	}
	g.RSSNoSessionsKiB = st.RSSKiB
	if g.SeedSessions, err = b.seed(sqliteAt(data), "bench-rot", 0, g.Sessions); err != nil {
		return err
	}
	st, err = b.measureStartup(fmt.Sprintf("existing, %s users + %s sessions", thousands(g.Users), thousands(g.Sessions)), sqliteAt(data), nil)
	if err != nil {
		return err
	}
	g.RSSSessionsKiB, g.StartupBig = st.RSSKiB, st
	b.res.Startups = append(b.res.Startups, st)

	big, bigURL, err := b.serve(sqliteAt(data), "gatehouse-growth")
	if err != nil {
		return err
	}
	defer big.stop()
	runs := map[string][2][]point{}
	for round := range growthRounds {
		for _, name := range []string{"password", "refresh (rotation on)"} {
			r := runs[name]
			for side, url := range []string{baseURL, bigURL} {
				sp := b.spec(name, url)
				sp.args = replaceFlag(sp.args, "-realm", "bench-rot")
				label := fmt.Sprintf("%s (growth, small set, round %d)", name, round+1)
				if side == 1 {
					// Logins spread over a hundred times more users than on
					// the small side (loadgen builds one request body per
					// user, so not over all of them); an indexed lookup
					// costs the same for any row.
					sp.args = replaceFlag(sp.args, "-users", fmt.Sprint(min(g.Users, 100*baseUsers)))
					label = fmt.Sprintf("%s (growth, large set, round %d)", name, round+1)
				}
				p, err := b.load(label, sp, g.Conc)
				if err != nil {
					return err
				}
				r[side] = append(r[side], p)
			}
			runs[name] = r
		}
	}
	for name, r := range runs {
		g.Base[name], g.Grown[name] = median(r[0]), median(r[1])
	}
	g.RSSAfterLoadBaseKiB = vmRSS(base.cmd.Process.Pid)
	g.RSSAfterLoadGrownKiB = vmRSS(big.cmd.Process.Pid)
	return nil
}

// median takes the median throughput and, separately, the median p50 and
// p99 of ps.
func median(ps []point) point {
	if len(ps) == 0 {
		return point{}
	}
	pick := func(f func(point) float64) float64 {
		v := make([]float64, len(ps))
		for i, p := range ps {
			v[i] = f(p)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out := ps[0]
	out.RPS = pick(func(p point) float64 { return p.RPS })
	out.P50 = pick(func(p point) float64 { return p.P50 })
	out.P99 = pick(func(p point) float64 { return p.P99 })
	for _, p := range ps[1:] {
		out.Errors += p.Errors
		out.Requests += p.Requests
	}
	return out
}

// replaceFlag sets the value that follows name in args.
func replaceFlag(args []string, name, value string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == name {
			out[i+1] = value
			return out
		}
	}
	return append(out, name, value)
}

// write renders the chart and the markdown into the output directory.
func (b *bench) write() error {
	if err := os.MkdirAll(b.o.outDir, 0o755); err != nil {
		return err
	}
	var ss []series
	for i, s := range b.res.Scenarios {
		if s.Skipped != "" || len(s.Points) == 0 {
			continue
		}
		c := palette[i%len(palette)]
		ss = append(ss, series{Name: s.Name, Color: c, Points: toXY(s.Points)})
		if len(s.Peer) > 0 {
			ss = append(ss, series{Name: s.Name + " (peer, 1 core)", Color: c, Dashed: true, Points: toXY(s.Peer)})
		}
	}
	var png bytes.Buffer
	title := fmt.Sprintf("gatehouse throughput vs concurrency - %s, %d cores, commit %.12s", b.res.CPUModel, b.res.Cores, b.res.Commit)
	if err := renderChart(&png, title, ss); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.o.outDir, "benchmarks.png"), png.Bytes(), 0o644); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := writeMarkdown(&md, b.res, "benchmarks.png"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.o.outDir, "benchmarks.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	b.logf("wrote %s and %s", filepath.Join(b.o.outDir, "benchmarks.md"), filepath.Join(b.o.outDir, "benchmarks.png"))
	return nil
}

func toXY(ps []point) []xy {
	out := make([]xy, len(ps))
	for i, p := range ps {
		out[i] = xy{float64(p.Conc), p.RPS}
	}
	return out
}

// ---- processes ----

// proc is a child process the run started; its output goes to a log file
// in the work directory.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
}

func (b *bench) start(name, path string, args, env []string) (*proc, error) {
	logFile := filepath.Join(b.work, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	b.mu.Lock()
	b.running = append(b.running, p)
	b.mu.Unlock()
	return p, nil
}

// stop asks the process to end (SIGTERM) and kills it after 10 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stopAll stops every child process, then runs the cleanups, each once
// however often stopAll is called.
func (b *bench) stopAll() {
	b.mu.Lock()
	running, cleanups := b.running, b.cleanups
	b.running, b.cleanups = nil, nil
	b.mu.Unlock()
	for _, p := range running {
		p.stop()
	}
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

// atExit registers f to run when the run ends, however it ends.
func (b *bench) atExit(f func()) {
	b.mu.Lock()
	b.cleanups = append(b.cleanups, f)
	b.mu.Unlock()
}

// vmRSS reads a process's resident set size in KiB from /proc (0 when it
// cannot).
func vmRSS(pid int) int64 {
	d, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(d), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freeAddr() (string, error) {
	p, err := freePort()
	return fmt.Sprintf("127.0.0.1:%d", p), err
}

// waitHTTP polls url until it answers 200.
func waitHTTP(url string, limit time.Duration) error {
	return poll(url, limit, 20*time.Millisecond)
}

// waitHTTPFast polls every millisecond, for start-up timing.
func waitHTTPFast(url string, limit time.Duration) error {
	return poll(url, limit, time.Millisecond)
}

func poll(url string, limit, every time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s", url, limit)
		case <-time.After(every):
		}
	}
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the gatehouse module")
	}
	return filepath.Dir(mod), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
