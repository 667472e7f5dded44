package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// TestIssue2Binary tests the real gatehouse binary, built once.
func TestIssue2Binary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("go", "build", "-o", bin, "github.com/gatehouse/gatehouse/cmd/gatehouse")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("ServeDemoAndRestart", func(t *testing.T) { testServeDemoAndRestart(t, bin) })
	t.Run("PostgresUnreachable", func(t *testing.T) { testPostgresUnreachable(t, bin) })
	t.Run("AdminCommandsOnPostgres", func(t *testing.T) { testAdminOnPostgres(t, bin) })
	t.Run("ImportRealmAtStart", func(t *testing.T) { testImportAtStart(t, bin) })
	t.Run("MalformedRealmFile", func(t *testing.T) { testMalformedRealm(t, bin) })
	t.Run("ExportImportRoundTrip", func(t *testing.T) { testExportImportRoundTrip(t, bin) })
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a running gatehouse serve.
type proc struct {
	cmd            *exec.Cmd
	addr, base     string
	stdout, stderr *lockedBuffer
	done           chan error
	once           sync.Once
}

// freeAddr is a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startBinary runs "gatehouse serve" with args on a free loopback port and
// waits until it is ready; it stops the process at the end of the test.
func startBinary(t *testing.T, bin, data string, args ...string) *proc {
	t.Helper()
	return startBinaryAt(t, bin, "", data, args...)
}

// startBinaryAt is startBinary on a given address ("" for a free port): a
// restart keeps its address, and so its issuer URLs. The port may be taken
// by another process between choosing and binding it; then it tries again.
func startBinaryAt(t *testing.T, bin, addr, data string, args ...string) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		a := addr
		if a == "" {
			a = freeAddr(t)
		}
		p, err := tryStart(t, bin, a, data, args...)
		if err == nil {
			return p
		}
		if attempt == 5 || !strings.Contains(p.stderr.String(), "address already in use") {
			t.Fatalf("gatehouse serve: %v\nstderr:\n%s", err, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tryStart(t *testing.T, bin, addr, data string, args ...string) (*proc, error) {
	t.Helper()
	p := launch(t, bin, append([]string{"serve", "--addr", addr, "--data", data}, args...)...)
	p.addr, p.base = addr, "http://"+addr
	deadline := time.Now().Add(20 * time.Second)
	// A short timeout: until gatehouse listens, the port may belong to
	// some other process that never answers.
	probe := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-p.done:
			p.done <- err
			return p, fmt.Errorf("exited before ready: %v", err)
		default:
		}
		resp, err := probe.Get(p.base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(p.stderr.String(), "gatehouse ready") {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return p, errors.New("not ready in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func launch(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process with SIGTERM, as an operator would, and waits
// for it.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("gatehouse did not stop on SIGTERM")
		}
	})
}

// runCLI runs a gatehouse command to completion.
func runCLI(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := boundedCommand(t, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// demoCommands returns the curl commands printed at start, by the comment
// line above each one.
func demoCommands(out string) map[string]string {
	cmds := map[string]string{}
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "# ") || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "curl ") {
			continue
		}
		title := strings.TrimPrefix(lines[i], "# ")
		var cmd strings.Builder
		j := i + 1
		for ; j < len(lines); j++ {
			l := lines[j]
			cmd.WriteString(strings.TrimSuffix(l, "\\"))
			if !strings.HasSuffix(l, "\\") {
				break
			}
		}
		cmds[title] = cmd.String()
		i = j
	}
	return cmds
}

func findCommand(t *testing.T, cmds map[string]string, prefix string) string {
	t.Helper()
	for title, c := range cmds {
		if strings.HasPrefix(title, prefix) {
			return c
		}
	}
	t.Fatalf("no %q command among %v", prefix, cmds)
	return ""
}

// shell runs a printed command with sh, as a user pasting it would, and
// decodes its JSON answer.
func shell(t *testing.T, command string) map[string]any {
	t.Helper()
	out, err := boundedCommand(t, "sh", "-c", command).Output()
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s: answer %q: %v", command, out, err)
	}
	return m
}

func testServeDemoAndRestart(t *testing.T, bin string) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	data := t.TempDir()
	p := startBinary(t, bin, data)
	for _, path := range []string{"/health/live", "/health/ready", "/realms/demo", "/realms/demo/.well-known/openid-configuration"} {
		resp, err := http.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	cmds := demoCommands(p.stdout.String())
	pw := shell(t, findCommand(t, cmds, "password grant"))
	if at, _ := pw["access_token"].(string); at == "" || pw["refresh_token"] == nil {
		t.Fatalf("printed password command: %v", pw)
	}
	cc := shell(t, findCommand(t, cmds, "client_credentials grant"))
	if at, _ := cc["access_token"].(string); at == "" {
		t.Fatalf("printed client_credentials command: %v", cc)
	}
	if c := claims(t, cc["access_token"].(string)); c["iss"] != p.base+"/realms/demo" || c["azp"] != "demo-service" {
		t.Errorf("client_credentials claims %v", c)
	}
	rt := pw["refresh_token"].(string)
	// A second session to log out after the restart.
	pw2 := shell(t, findCommand(t, cmds, "password grant"))
	rt2 := pw2["refresh_token"].(string)

	p.stop(t)
	if strings.Contains(p.stderr.String(), rt) || strings.Contains(p.stderr.String(), shellSecret(findCommand(t, cmds, "client_credentials"))) {
		t.Errorf("a token or secret reached the log")
	}

	// Same data directory: the session survives the restart.
	p = startBinaryAt(t, bin, p.addr, data)
	cmds2 := demoCommands(p.stdout.String())
	if shellPassword(findCommand(t, cmds2, "password grant")) != shellPassword(findCommand(t, cmds, "password grant")) {
		t.Errorf("restart printed different demo credentials")
	}
	refresh := strings.ReplaceAll(findCommand(t, cmds2, "refresh_token grant"), "REFRESH_TOKEN", rt)
	ref := shell(t, refresh)
	if at, _ := ref["access_token"].(string); at == "" {
		t.Fatalf("refresh after restart: %v", ref)
	}
	if ref["session_state"] != pw["session_state"] {
		t.Errorf("refresh after restart changed the session")
	}
	// The printed logout command works on the other session.
	logout := strings.ReplaceAll(findCommand(t, cmds2, "logout"), "REFRESH_TOKEN", rt2)
	out, err := boundedCommand(t, "sh", "-c", strings.Replace(logout, "curl -s", "curl -s -o /dev/null -w %{http_code}", 1)).Output()
	if err != nil || string(out) != "204" {
		t.Errorf("printed logout: %q %v", out, err)
	}
	after := shell(t, strings.ReplaceAll(findCommand(t, cmds2, "refresh_token grant"), "REFRESH_TOKEN", rt2))
	if after["error"] != "invalid_grant" {
		t.Errorf("refresh after printed logout: %v", after)
	}
}

// shellSecret and shellPassword pull a credential out of a printed
// command.
func shellSecret(cmd string) string   { return flagValue(cmd, "client_secret=") }
func shellPassword(cmd string) string { return flagValue(cmd, "password=") }

func flagValue(cmd, key string) string {
	_, rest, ok := strings.Cut(cmd, " "+key)
	if !ok {
		return "\x00none"
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}

// testPostgresUnreachable: a database nobody answers for (port 1 on
// loopback, so no name is looked up anywhere) stops serve at once, with an
// error that names PostgreSQL and the failure and never the URL's
// password.
func testPostgresUnreachable(t *testing.T, bin string) {
	const pw = "s3cret"
	start := time.Now()
	stdout, stderr, err := runCLI(t, bin, []string{"GATEHOUSE_MASTER_KEY="},
		"serve", "--addr", freeAddr(t), "--data", t.TempDir(),
		"--db", "postgres://user:"+pw+"@127.0.0.1:1/x?connect_timeout=2")
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("serve against an unreachable database: %v, want a non-zero exit\n%s", err, stderr)
	}
	if took > 5*time.Second {
		t.Errorf("serve took %v to give up on an unreachable database", took)
	}
	if !strings.Contains(stderr, "PostgreSQL") || !strings.Contains(stderr, "connection refused") {
		t.Errorf("error does not name PostgreSQL and the failure: %q", stderr)
	}
	if strings.Contains(stdout+stderr, pw) {
		t.Errorf("output shows the URL's password: %q", stdout+stderr)
	}
}

func testImportAtStart(t *testing.T, bin string) {
	data := t.TempDir()
	shop, _ := filepath.Abs("testdata/issue2-shop.json")
	odd, _ := filepath.Abs("testdata/issue2-unknown.json")
	p := startBinary(t, bin, data, "--no-demo", "--argon2-memory", "64", "--argon2-iterations", "1", "--import-realm", shop, "--import-realm", odd)
	r := postForm(t, p.base+"/realms/shop/protocol/openid-connect/token", form("grant_type", "password", "client_id", "shop-web", "username", "alice", "password", alicePassword))
	if r.Status != 200 {
		t.Fatalf("login after --import-realm: %d %s", r.Status, r.Body)
	}
	logs := p.stderr.String()
	// Unknown fields: one warning line naming them.
	var warn []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "does not interpret") {
			warn = append(warn, l)
		}
	}
	if len(warn) != 1 {
		t.Fatalf("want one unknown-fields warning, got %d:\n%s", len(warn), logs)
	}
	for _, f := range []string{"smtpServer", "loginTheme", "frontchannelLogout", "issue2-unknown.json", "level=WARN"} {
		if !strings.Contains(warn[0], f) {
			t.Errorf("warning lacks %q: %s", f, warn[0])
		}
	}
	if resp, err := http.Get(p.base + "/realms/demo"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("--no-demo still created the demo realm")
		}
	}
	// Start again with the same --import-realm: the realm is left alone
	// (a replaced realm would have lost this session), and the log says so.
	rv := postForm(t, p.base+"/realms/shop/protocol/openid-connect/token", form("grant_type", "password", "client_id", "shop-web", "username", "alice", "password", alicePassword))
	p.stop(t)
	p = startBinaryAt(t, bin, p.addr, data, "--no-demo", "--import-realm", shop)
	if !strings.Contains(p.stderr.String(), "realm exists; import skipped") || !strings.Contains(p.stderr.String(), "realm=shop") {
		t.Errorf("restart log does not say the import was skipped:\n%s", p.stderr)
	}
	// The session from before is still there: the realm was not replaced.
	r = postForm(t, p.base+"/realms/shop/protocol/openid-connect/token", form("grant_type", "refresh_token", "client_id", "shop-web", "refresh_token", rv.str("refresh_token")))
	if r.Status != 200 {
		t.Errorf("existing realm was replaced: refresh %d %s", r.Status, r.Body)
	}
}

func testMalformedRealm(t *testing.T, bin string) {
	data := t.TempDir()
	bad, _ := filepath.Abs("testdata/issue2-malformed.json")
	addr := freeAddr(t)
	_, stderr, err := runCLI(t, bin, nil, "serve", "--addr", addr, "--data", data, "--no-demo", "--import-realm", bad)
	if err == nil {
		t.Fatalf("serve with a malformed realm file started")
	}
	for _, want := range []string{"issue2-malformed.json", "users[1].enabled"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error lacks %q:\n%s", want, stderr)
		}
	}
	// Nothing of it is in the store.
	p := startBinary(t, bin, data, "--no-demo")
	resp, err := http.Get(p.base + "/realms/broken")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("realm of the malformed file exists: %d", resp.StatusCode)
	}
	r := postForm(t, p.base+"/realms/broken/protocol/openid-connect/token", form("grant_type", "password", "client_id", "broken-app", "username", "ok", "password", "ok-pw-1"))
	if r.Status != 404 {
		t.Errorf("login into the malformed realm: %d %s", r.Status, r.Body)
	}
	p.stop(t)
	if _, _, err := runCLI(t, bin, nil, "export", "--realm", "broken", "--data", data); err == nil {
		t.Errorf("export found the malformed realm")
	}
	// gatehouse import refuses it the same way.
	_, stderr, err = runCLI(t, bin, nil, "import", bad, "--data", data)
	if err == nil || !strings.Contains(stderr, "users[1].enabled") {
		t.Errorf("import of the malformed file: %v %s", err, stderr)
	}
}

func testExportImportRoundTrip(t *testing.T, bin string) {
	dirA, dirB := t.TempDir(), t.TempDir()
	shop, _ := filepath.Abs("testdata/issue2-shop.json")
	if out, stderr, err := runCLI(t, bin, nil, "import", shop, "--data", dirA); err != nil || !strings.Contains(out, `imported realm "shop"`) {
		t.Fatalf("import: %v %s %s", err, out, stderr)
	}
	// Importing again needs --overwrite.
	if _, stderr, err := runCLI(t, bin, nil, "import", shop, "--data", dirA); err == nil || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("second import without --overwrite: %v %s", err, stderr)
	}
	if _, stderr, err := runCLI(t, bin, nil, "import", shop, "--overwrite", "--data", dirA); err != nil {
		t.Fatalf("import --overwrite: %v %s", err, stderr)
	}
	export1 := filepath.Join(t.TempDir(), "shop-1.json")
	if _, stderr, err := runCLI(t, bin, nil, "export", "--realm", "shop", "--data", dirA, "--out", export1); err != nil {
		t.Fatalf("export: %v %s", err, stderr)
	}
	doc1, err := os.ReadFile(export1)
	if err != nil {
		t.Fatal(err)
	}
	// No plaintext secret or password in the export.
	for _, s := range []string{shopBackendSecret, shopAPISecret, alicePassword, bobPassword} {
		if bytes.Contains(doc1, []byte(s)) {
			t.Errorf("export contains the plaintext %q", s)
		}
	}
	if !bytes.Contains(doc1, []byte("gatehouse.secretHash")) {
		t.Errorf("export lacks gatehouse.secretHash")
	}

	// A fresh data directory with the same master key.
	key, err := os.ReadFile(filepath.Join(dirA, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "master.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCLI(t, bin, nil, "import", export1, "--data", dirB); err != nil {
		t.Fatalf("import of the export: %v %s", err, stderr)
	}
	export2 := filepath.Join(t.TempDir(), "shop-2.json")
	if _, stderr, err := runCLI(t, bin, nil, "export", "--realm", "shop", "--data", dirB, "--out", export2); err != nil {
		t.Fatalf("second export: %v %s", err, stderr)
	}
	doc2, err := os.ReadFile(export2)
	if err != nil {
		t.Fatal(err)
	}
	var v1, v2 any
	if err := json.Unmarshal(doc1, &v1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc2, &v2); err != nil {
		t.Fatal(err)
	}
	if c1, c2 := canonical(v1), canonical(v2); !reflect.DeepEqual(c1, c2) {
		t.Errorf("export → import → export differs:\n%s", jsonDiff(c1, c2))
	}

	// Logins work against the re-imported realm: hashed passwords
	// (gatehouse's and Keycloak's) and the client secret hash carried over.
	p := startBinary(t, bin, dirB, "--no-demo")
	tok := p.base + "/realms/shop/protocol/openid-connect/token"
	for _, u := range [][2]string{{"alice", alicePassword}, {"kc-argon2", importedPassword}, {"kc-pbkdf2-sha512", importedPassword}} {
		r := postForm(t, tok, form("grant_type", "password", "client_id", "shop-web", "username", u[0], "password", u[1]))
		if r.Status != 200 {
			t.Errorf("login %s after re-import: %d %s", u[0], r.Status, r.Body)
		}
	}
	r := postForm(t, tok, form("grant_type", "client_credentials"), basicAuth("shop-backend", shopBackendSecret))
	if r.Status != 200 {
		t.Errorf("client_credentials after re-import: %d %s", r.Status, r.Body)
	}
	r = postForm(t, tok, form("grant_type", "password", "client_id", "shop-web", "username", "bob", "password", bobPassword))
	if r.str("error_description") != "Account disabled" {
		t.Errorf("disabled user after re-import: %d %s", r.Status, r.Body)
	}

	// Without the master key the secret hashes mean nothing: the client
	// secret no longer matches (and nothing fails open).
	dirC := t.TempDir()
	if _, stderr, err := runCLI(t, bin, nil, "import", export1, "--data", dirC); err != nil {
		t.Fatalf("import with another master key: %v %s", err, stderr)
	}
	p = startBinary(t, bin, dirC, "--no-demo")
	r = postForm(t, p.base+"/realms/shop/protocol/openid-connect/token", form("grant_type", "client_credentials"), basicAuth("shop-backend", shopBackendSecret))
	if r.Status != 401 {
		t.Errorf("client secret hash accepted under another master key: %d %s", r.Status, r.Body)
	}
}

// canonical sorts every array by the JSON of its elements, so that two
// documents equal but for ordering compare equal.
func canonical(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canonical(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		keys := make([]string, len(x))
		for i, e := range x {
			out[i] = canonical(e)
		}
		idx := make([]int, len(x))
		for i := range idx {
			idx[i] = i
			b, _ := json.Marshal(out[i])
			keys[i] = string(b)
		}
		sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
		sorted := make([]any, len(x))
		for i, j := range idx {
			sorted[i] = out[j]
		}
		return sorted
	}
	return v
}

// jsonDiff names the top-level keys that differ.
func jsonDiff(a, b any) string {
	am, _ := a.(map[string]any)
	bm, _ := b.(map[string]any)
	var w strings.Builder
	for k, av := range am {
		if bv, ok := bm[k]; !ok || !reflect.DeepEqual(av, bv) {
			ab, _ := json.Marshal(av)
			bb, _ := json.Marshal(bm[k])
			fmt.Fprintf(&w, "%s:\n  first:  %.600s\n  second: %.600s\n", k, ab, bb)
		}
	}
	for k := range bm {
		if _, ok := am[k]; !ok {
			fmt.Fprintf(&w, "%s: only in second\n", k)
		}
	}
	return w.String()
}

// testAdminOnPostgres: the admin commands work on PostgreSQL with --db, as
// they do on SQLite, and what they write is what serve then uses.
func testAdminOnPostgres(t *testing.T, bin string) {
	_, dbURL := pgtest.Schema(t, "gh_e2e_")
	key := masterKeyFile(t)
	noEnv := []string{"GATEHOUSE_MASTER_KEY="}
	shop, _ := filepath.Abs("testdata/issue2-shop.json")

	// Without a master key an admin command must not make one up: the
	// signing keys it wrote would be sealed with a key no replica has.
	empty := t.TempDir()
	if _, stderr, err := runCLI(t, bin, noEnv, "import", shop, "--db", dbURL, "--data", empty); err == nil || !strings.Contains(stderr, "master key") {
		t.Errorf("import --db without a master key: %v %s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(empty, "master.key")); err == nil {
		t.Error("import --db created a master key")
	}

	if out, stderr, err := runCLI(t, bin, noEnv, "import", shop, "--db", dbURL, "--master-key-file", key); err != nil || !strings.Contains(out, `imported realm "shop"`) {
		t.Fatalf("import --db: %v %s %s", err, out, stderr)
	}
	if _, stderr, err := runCLI(t, bin, noEnv, "import", "--db", dbURL, shop, "--master-key-file", key); err == nil || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("second import --db without --overwrite: %v %s", err, stderr)
	}
	out, stderr, err := runCLI(t, bin, noEnv, "export", "--realm", "shop", "--db", dbURL, "--master-key-file", key)
	if err != nil || !strings.Contains(out, `"realm": "shop"`) && !strings.Contains(out, `"realm":"shop"`) {
		t.Errorf("export --db: %v %s %.200s", err, stderr, out)
	}
	out, stderr, err = runCLI(t, bin, noEnv, "keys", "rotate", "--realm", "shop", "--db", dbURL, "--master-key-file", key)
	if err != nil {
		t.Fatalf("keys rotate --db: %v %s", err, stderr)
	}
	// "realm "shop" now signs with key KID; ..."
	_, after, _ := strings.Cut(out, "signs with key ")
	kid, _, _ := strings.Cut(after, ";")
	if kid == "" {
		t.Fatalf("keys rotate printed no kid: %q", out)
	}
	if out, stderr, err := runCLI(t, bin, noEnv, "users", "unlock", "--realm", "shop", "--username", "alice", "--db", dbURL, "--master-key-file", key); err != nil || !strings.Contains(out, "unlocked") {
		t.Errorf("users unlock --db: %v %s %s", err, out, stderr)
	}

	// serve on the same database signs with the key the CLI rotated to.
	p := startBinary(t, bin, t.TempDir(), "--no-demo", "--db", dbURL, "--master-key-file", key)
	r := postForm(t, p.base+"/realms/shop/protocol/openid-connect/token", form("grant_type", "password", "client_id", "shop-web", "username", "alice", "password", alicePassword))
	if r.Status != 200 {
		t.Fatalf("login after import --db: %d %s", r.Status, r.Body)
	}
	if got := tokenKid(t, r.str("access_token")); got != kid {
		t.Errorf("token signed with key %s, want the rotated key %s", got, kid)
	}
}
