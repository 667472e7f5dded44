package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
)

// testServer is a real gatehouse answering on a loopback port, with its
// data in a temporary directory.
type testServer struct {
	URL  string
	Data string
	Srv  *server.Server
	t    *testing.T
}

// fastPasswords keeps argon2id real but cheap in tests.
var fastPasswords = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, KeyLen: 32, SaltLen: 16}

// startServer starts gatehouse on 127.0.0.1:0 with the given realm-export
// files (from testdata/ unless absolute) imported, and stops it at the end
// of the test. cfg may adjust the configuration before start.
func startServer(t *testing.T, realmFiles []string, cfg ...func(*server.Config)) *testServer {
	t.Helper()
	data := t.TempDir()
	return startServerAt(t, data, realmFiles, cfg...)
}

func startServerAt(t *testing.T, data string, realmFiles []string, cfg ...func(*server.Config)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range realmFiles {
		if !filepath.IsAbs(f) {
			f = filepath.Join("testdata", f)
		}
		files = append(files, f)
	}
	base := "http://" + ln.Addr().String()
	c := server.Config{
		Addr:         ln.Addr().String(),
		DataDir:      data,
		PublicURL:    base,
		ImportRealms: files,
		Passwords:    fastPasswords,
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, f := range cfg {
		f(&c)
	}
	srv, err := server.Open(context.Background(), c)
	if err != nil {
		ln.Close()
		t.Fatalf("server.Open: %v", err)
	}
	go func() { _ = srv.Serve(ln) }()
	ts := &testServer{URL: base, Data: data, Srv: srv, t: t}
	t.Cleanup(func() { closeServer(t, srv) })
	ts.waitReady()
	return ts
}

func (ts *testServer) waitReady() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := readyProbe.Get(ts.URL + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.t.Fatal("server not ready")
}

// tokenURL is realm's token endpoint.
func (ts *testServer) oidc(realm, endpoint string) string {
	return ts.URL + "/realms/" + realm + "/protocol/openid-connect/" + endpoint
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (r *response) str(k string) string { s, _ := r.JSON[k].(string); return s }

// postForm sends a form POST with optional extra headers ("K: V").
func postForm(t *testing.T, u string, form url.Values, headers ...string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) *response {
	t.Helper()
	resp, err := testClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
			failWithGoroutines(t, fmt.Sprintf("%s %s: no answer within %v", req.Method, req.URL.Path, testClient.Timeout))
		}
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if os.IsTimeout(err) {
			failWithGoroutines(t, fmt.Sprintf("%s %s: body not read within %v", req.Method, req.URL.Path, testClient.Timeout))
		}
		t.Fatal(err)
	}
	r := &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(b) > 0 {
		if err := json.Unmarshal(b, &r.JSON); err != nil {
			var any any
			if json.Unmarshal(b, &any) != nil {
				t.Fatalf("invalid JSON body %q: %v", b, err)
			}
		}
	}
	return r
}

// claims decodes a JWT's payload without verifying it (tests verify
// signatures separately, with go-oidc).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	return segmentJSON(t, parts[1])
}

// jwtHeader decodes a JWT's JOSE header.
func jwtHeader(t *testing.T, jwt string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(jwt, ".")
	return segmentJSON(t, h)
}

// tokenKid is the kid in a JWT's header.
func tokenKid(t *testing.T, jwt string) string {
	t.Helper()
	kid, _ := jwtHeader(t, jwt)["kid"].(string)
	return kid
}

// segmentJSON decodes one base64url part of a JWT as a JSON object.
func segmentJSON(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := decodeSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

// Bounds that turn a hang into a failing test with every goroutine's
// stack, instead of a suite that stalls until go test's own timeout. Each
// is far above what the step takes on a slow, busy machine under -race.
const (
	// requestTimeout bounds one request of the test client: the server
	// answers in milliseconds, a password hash included.
	requestTimeout = 60 * time.Second
	// shutdownGrace is what Server.Close gives requests in flight.
	shutdownGrace = 5 * time.Second
	// closeTimeout bounds Server.Close as a whole: the grace above, then
	// the store's last write and the closing of its connections.
	closeTimeout = 10 * time.Second
	// commandTimeout bounds one run of the gatehouse binary or of a
	// printed shell command.
	commandTimeout = 2 * time.Minute
)

// testClient is http.DefaultClient with a timeout.
var testClient = &http.Client{Timeout: requestTimeout}

// readyProbe polls /health/ready; a probe that gets no answer is retried.
var readyProbe = &http.Client{Timeout: 2 * time.Second}

// closeServer closes srv as an operator's shutdown would, and fails t with
// a goroutine dump if that does not finish within closeTimeout (the store
// waiting on a transaction that never ends, say).
func closeServer(t testing.TB, srv *server.Server) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		// Errors are expected when a test has closed the server itself.
		_ = srv.Close(ctx)
	}()
	timer := time.NewTimer(closeTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		failWithGoroutines(t, fmt.Sprintf("server.Close did not return within %v", closeTimeout))
	}
}

// failWithGoroutines writes every goroutine's stack to stderr, where go
// test shows it even for a test that goes on to hang elsewhere, and fails
// t now.
func failWithGoroutines(t testing.TB, why string) {
	t.Helper()
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	fmt.Fprintf(os.Stderr, "=== %s: %s; all goroutines:\n%s\n", t.Name(), why, b.String())
	t.Fatalf("%s (goroutine dump on stderr)", why)
}

// boundedCommand is exec.Command bounded by commandTimeout: a process still
// running then is killed, and its output pipes are closed even if a child
// of it (curl under sh) still holds them, so the test fails instead of
// waiting forever.
func boundedCommand(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
