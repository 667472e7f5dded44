package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKeycloak is a token server small enough to reason about: it issues
// random tokens, rotates refresh tokens, and rejects any refresh token it
// has already seen used, the way Keycloak does with rotation on.
type fakeKeycloak struct {
	mu      sync.Mutex
	access  map[string]bool
	refresh map[string]bool // issued and not yet used
	used    map[string]bool // used once; a second use is a reuse

	logins    atomic.Int64
	refreshes atomic.Int64
	reuses    atomic.Int64 // refresh requests with an already-used token
	gets      atomic.Int64

	// failEvery, when > 0, makes every n-th refresh fail with 400 after
	// consuming the token, so the generator must start a new chain.
	failEvery int64
	// badSecret answers client_credentials with 200 but no access_token.
	noAccessToken bool
	// delay slows every request down.
	delay time.Duration
}

func newFake() *fakeKeycloak {
	return &fakeKeycloak{access: map[string]bool{}, refresh: map[string]bool{}, used: map[string]bool{}}
}

func randToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (f *fakeKeycloak) issue(w http.ResponseWriter) {
	at, rt := randToken(), randToken()
	f.mu.Lock()
	f.access[at] = true
	f.refresh[rt] = true
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": at, "refresh_token": rt, "expires_in": 300, "token_type": "Bearer"})
}

func oauthError(w http.ResponseWriter, code int, e string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": e, "error_description": e + " (fake)"})
}

// clientOK checks client_id=cli and, for confidential use, secret "topsecret42" in
// the form or in HTTP Basic.
func clientOK(r *http.Request, needSecret bool) bool {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
	}
	return id == "cli" && (!needSecret || secret == "topsecret42")
}

func (f *fakeKeycloak) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	const base = "/realms/test/protocol/openid-connect"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == base+"/token":
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
			oauthError(w, 400, "invalid_request")
			return
		}
		switch r.PostForm.Get("grant_type") {
		case "password":
			if !clientOK(r, false) || !strings.HasPrefix(r.PostForm.Get("username"), "user") || r.PostForm.Get("password") != "pw" {
				oauthError(w, 401, "invalid_grant")
				return
			}
			f.logins.Add(1)
			f.issue(w)
		case "client_credentials":
			if !clientOK(r, true) {
				oauthError(w, 401, "unauthorized_client")
				return
			}
			if f.noAccessToken {
				w.Write([]byte(`{"token_type":"Bearer"}`))
				return
			}
			f.issue(w)
		case "refresh_token":
			rt := r.PostForm.Get("refresh_token")
			n := f.refreshes.Add(1)
			f.mu.Lock()
			live := f.refresh[rt]
			if f.used[rt] {
				f.reuses.Add(1)
			}
			delete(f.refresh, rt)
			f.used[rt] = true
			f.mu.Unlock()
			if !clientOK(r, false) || !live || (f.failEvery > 0 && n%f.failEvery == 0) {
				oauthError(w, 400, "invalid_grant")
				return
			}
			f.issue(w)
		default:
			oauthError(w, 400, "unsupported_grant_type")
		}
	case r.Method == http.MethodPost && r.URL.Path == base+"/token/introspect":
		if r.ParseForm() != nil || !clientOK(r, true) {
			oauthError(w, 401, "invalid_client")
			return
		}
		f.mu.Lock()
		active := f.access[r.PostForm.Get("token")]
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"active": active})
	case r.Method == http.MethodGet && r.URL.Path == base+"/userinfo":
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		ok = ok && f.access[tok]
		f.mu.Unlock()
		if !ok {
			oauthError(w, 401, "invalid_token")
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"sub": "u-1"})
	case r.Method == http.MethodGet && r.URL.Path == "/api/thing":
		f.gets.Add(1)
		if r.Header.Get("X-Tenant") != "acme" {
			http.Error(w, "no tenant", http.StatusForbidden)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	case r.Method == http.MethodPost && r.URL.Path == "/consumer/login":
		var in struct{ Username, Password string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Password != "pw" {
			http.Error(w, `{"success":false}`, http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"token": randToken()})
	default:
		http.NotFound(w, r)
	}
}

// testConfig is a short closed-loop run against srv.
func testConfig(t *testing.T, srv *httptest.Server, args ...string) config {
	t.Helper()
	base := []string{"-url", srv.URL, "-realm", "test", "-client-id", "cli", "-client-secret", "topsecret42",
		"-password", "pw", "-users", "3", "-c", "4", "-duration", "400ms", "-warmup", "100ms", "-timeout", "5s"}
	cfg, err := parseFlags(append(base, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustRun(t *testing.T, cfg config) report {
	t.Helper()
	var logs bytes.Buffer
	rep, err := run(context.Background(), cfg, &logs)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	return rep
}

func TestRefreshAlwaysUsesNewestToken(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()

	rep := mustRun(t, testConfig(t, srv, "-scenario", "refresh"))
	if rep.Errors != 0 {
		t.Fatalf("errors = %d, samples %q", rep.Errors, rep.ErrorSamples)
	}
	if f.reuses.Load() != 0 {
		t.Fatalf("server saw %d reused refresh tokens", f.reuses.Load())
	}
	if got := f.logins.Load(); got != 4 {
		t.Errorf("logins = %d, want one per connection (4)", got)
	}
	if rep.Requests < 50 || f.refreshes.Load() < rep.Requests {
		t.Errorf("requests = %d, server refreshes = %d", rep.Requests, f.refreshes.Load())
	}
	if rep.ThroughputRPS <= 0 || rep.P50ms <= 0 || rep.P99ms < rep.P50ms || rep.MaxMs < rep.P99ms {
		t.Errorf("implausible report %+v", rep)
	}
}

func TestRefreshFailuresAreCountedAndChainsReplaced(t *testing.T) {
	f := newFake()
	f.failEvery = 10
	srv := httptest.NewServer(f)
	defer srv.Close()

	rep := mustRun(t, testConfig(t, srv, "-scenario", "refresh", "-basic"))
	if rep.Errors == 0 {
		t.Fatal("no errors counted although every 10th refresh failed")
	}
	// Measured requests are a subset of what the server saw; each failure
	// (about a tenth) is counted.
	if rep.Errors < rep.Requests/20 || rep.Errors > rep.Requests/5 {
		t.Errorf("errors = %d of %d requests, want about a tenth", rep.Errors, rep.Requests)
	}
	if f.reuses.Load() != 0 {
		t.Fatalf("server saw %d reused refresh tokens", f.reuses.Load())
	}
	if f.logins.Load() <= 4 {
		t.Errorf("logins = %d: broken chains were not replaced", f.logins.Load())
	}
	if len(rep.ErrorSamples) != 1 || !strings.Contains(rep.ErrorSamples[0], "HTTP 400") || !strings.Contains(rep.ErrorSamples[0], "invalid_grant") {
		t.Errorf("error samples = %q", rep.ErrorSamples)
	}
	if want := float64(rep.Requests-rep.Errors) / rep.DurationS; rep.ThroughputRPS > want*1.01 {
		t.Errorf("throughput %.1f counts errors (successes/s = %.1f)", rep.ThroughputRPS, want)
	}
}

func TestErrorResponsesAreErrors(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()

	// Wrong secret: every answer is a 401.
	rep := mustRun(t, testConfig(t, srv, "-scenario", "client_credentials", "-client-secret", "wrong"))
	if rep.Requests == 0 || rep.Errors != rep.Requests || rep.ThroughputRPS != 0 || rep.P50ms != 0 {
		t.Fatalf("401s not counted as errors: %+v", rep)
	}
	if len(rep.ErrorSamples) != 1 || !strings.HasPrefix(rep.ErrorSamples[0], "HTTP 401: ") {
		t.Errorf("error samples = %q", rep.ErrorSamples)
	}

	// 200 without an access token is an error too.
	f.noAccessToken = true
	rep = mustRun(t, testConfig(t, srv, "-scenario", "client_credentials"))
	if rep.Requests == 0 || rep.Errors != rep.Requests {
		t.Fatalf("200 without access_token not counted as error: %+v", rep)
	}
	if len(rep.ErrorSamples) != 1 || rep.ErrorSamples[0] != "HTTP 200 without access_token" {
		t.Errorf("error samples = %q", rep.ErrorSamples)
	}

	// Nothing listening: transport errors are errors.
	srv.Close()
	rep = mustRun(t, testConfig(t, srv, "-scenario", "get", "-path", "/api/thing", "-duration", "200ms", "-warmup", "0s"))
	if rep.Requests == 0 || rep.Errors != rep.Requests {
		t.Fatalf("connection failures not counted as errors: %+v", rep)
	}
}

func TestEveryScenarioSucceedsAgainstAConformingServer(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()

	for _, transport := range []string{"sync", "std"} {
		for _, args := range [][]string{
			{"-scenario", "password"},
			{"-scenario", "client_credentials", "-basic"},
			{"-scenario", "introspect"},
			{"-scenario", "introspect", "-token-grant", "client_credentials"},
			{"-scenario", "userinfo"},
			{"-scenario", "get", "-path", "/api/thing", "-header", "X-Tenant: acme", "-bearer"},
			{"-scenario", "fusio_login"},
			{"-scenario", "password", "-rate", "200"},
		} {
			t.Run(transport+" "+strings.Join(args, " "), func(t *testing.T) {
				cfg := testConfig(t, srv, append(args, "-duration", "250ms", "-warmup", "50ms", "-transport", transport)...)
				rep := mustRun(t, cfg)
				if rep.Requests == 0 || rep.Errors != 0 {
					t.Fatalf("requests %d, errors %d, samples %q", rep.Requests, rep.Errors, rep.ErrorSamples)
				}
				if rep.Scenario != cfg.scenario || rep.ThroughputRPS <= 0 || rep.Transport != transport {
					t.Errorf("report %+v", rep)
				}
			})
		}
	}
}

// Closed loop and open loop alike keep to -c connections, and the open loop's
// extra requests wait for one instead of failing.
func TestRunKeepsToTheConnectionLimit(t *testing.T) {
	for _, transport := range []string{"sync", "std"} {
		for _, args := range [][]string{
			{"-c", "3"},
			{"-c", "2", "-rate", "300"},
		} {
			t.Run(transport+" "+strings.Join(args, " "), func(t *testing.T) {
				f := newFake()
				f.delay = time.Millisecond
				srv, cc := countedServer(t, f)
				rep := mustRun(t, testConfig(t, srv, append(args, "-scenario", "get", "-path", "/api/thing",
					"-header", "X-Tenant:acme", "-transport", transport)...))
				if rep.Errors != 0 || rep.Requests == 0 {
					t.Fatalf("requests %d, errors %d, samples %q", rep.Requests, rep.Errors, rep.ErrorSamples)
				}
				if n, limit := cc.accepted.Load(), int64(rep.Connections); n < 1 || n > limit {
					t.Errorf("server accepted %d connections, limit %d", n, limit)
				}
				if got := f.gets.Load(); got < rep.Requests {
					t.Errorf("server saw %d requests, report counts %d", got, rep.Requests)
				}
			})
		}
	}
}

// The sync transport speaks plain HTTP only; an https:// target gets
// net/http's whatever -transport says.
func TestTransportChoice(t *testing.T) {
	for _, tc := range []struct{ url, flag, want string }{
		{"http://127.0.0.1:1", "sync", "sync"},
		{"http://127.0.0.1:1", "std", "std"},
		{"https://127.0.0.1:1", "sync", "std"},
	} {
		cfg, err := parseFlags([]string{"-scenario", "get", "-url", tc.url, "-transport", tc.flag}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		hc, name := newClient(cfg)
		_, isSync := hc.Transport.(*syncTransport)
		if name != tc.want || isSync != (tc.want == "sync") || (hc.Timeout == 0) != isSync {
			t.Errorf("%s -transport %s: %s (%T, client timeout %s)", tc.url, tc.flag, name, hc.Transport, hc.Timeout)
		}
	}
}

func TestOpenLoopHoldsTheRate(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(f)
	defer srv.Close()

	rep := mustRun(t, testConfig(t, srv, "-scenario", "get", "-path", "/api/thing", "-header", "X-Tenant:acme",
		"-rate", "300", "-duration", "1s", "-warmup", "200ms"))
	if rep.Mode != "open" || rep.LatencyFrom != "intended_send" || rep.Errors != 0 {
		t.Fatalf("report %+v", rep)
	}
	if rep.SendLagP50ms == nil || rep.SendLagP99ms == nil || *rep.SendLagP99ms > rep.MaxMs {
		t.Errorf("send lag not reported or larger than the latency it is part of: %+v", rep)
	}
	if rep.Requests < 285 || rep.Requests > 315 {
		t.Errorf("requests in 1 s at 300/s = %d", rep.Requests)
	}
	if rep.ThroughputRPS < 270 || rep.ThroughputRPS > 330 {
		t.Errorf("throughput = %.1f/s, want about 300", rep.ThroughputRPS)
	}
	if total := f.gets.Load(); total < 330 || total > 390 {
		t.Errorf("server saw %d requests in 1.2 s at 300/s", total)
	}
}

// A server that stops answering for 150 ms once: the slowest 1 % of an
// open-loop run are the requests due at the start of the pause, a window
// or two of 10 ms, and P99Windows says so.
func TestP99WindowsFindsAPause(t *testing.T) {
	var pause sync.RWMutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pause.RLock()
		defer pause.RUnlock()
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	go func() {
		time.Sleep(700 * time.Millisecond) // warm-up 200 ms, then half a second in
		pause.Lock()
		time.Sleep(150 * time.Millisecond)
		pause.Unlock()
	}()
	rep := mustRun(t, testConfig(t, srv, "-scenario", "get", "-path", "/", "-c", "64",
		"-rate", "1000", "-duration", "1s", "-warmup", "200ms"))
	if rep.P99Windows == nil {
		t.Fatalf("no p99_windows in an open-loop report: %+v", rep)
	}
	if rep.P99ms < 100 || *rep.P99Windows < 1 || *rep.P99Windows > 3 {
		t.Fatalf("p99 %.1f ms in %d windows of 10 ms, want over 100 ms in at most 3", rep.P99ms, *rep.P99Windows)
	}
}

// A server that takes 20 ms per request on one connection can do 50/s;
// asked for 100/s, the queue grows by 50 a second. Latency measured from the
// intended send time must show that queue; latency from the actual send
// would stay near 20 ms and hide it (coordinated omission).
func TestOpenLoopLatencyIncludesQueueing(t *testing.T) {
	f := newFake()
	f.delay = 20 * time.Millisecond
	srv := httptest.NewServer(f)
	defer srv.Close()

	rep := mustRun(t, testConfig(t, srv, "-scenario", "get", "-path", "/api/thing", "-header", "X-Tenant:acme",
		"-rate", "100", "-c", "1", "-duration", "1s", "-warmup", "0s"))
	if rep.Errors != 0 {
		t.Fatalf("errors %q", rep.ErrorSamples)
	}
	if rep.P90ms < 300 || rep.MaxMs < 600 {
		t.Errorf("p90 %.1f ms, max %.1f ms: queueing not visible", rep.P90ms, rep.MaxMs)
	}
	if rep.ThroughputRPS > 60 {
		t.Errorf("throughput %.1f/s exceeds what one 20 ms connection can do", rep.ThroughputRPS)
	}

	// The same server closed-loop: latency is the service time.
	rep = mustRun(t, testConfig(t, srv, "-scenario", "get", "-path", "/api/thing", "-header", "X-Tenant:acme",
		"-c", "1", "-duration", "300ms", "-warmup", "0s"))
	if rep.Mode != "closed" || rep.P90ms < 20 || rep.P90ms > 60 {
		t.Errorf("closed loop: %+v", rep)
	}
}

func TestFlags(t *testing.T) {
	for _, bad := range [][]string{
		{"-scenario", "nope", "-client-id", "x"},
		{"-scenario", "password", "-client-id", "x"}, // no user
		{"-scenario", "client_credentials"},          // no client
		{"-c", "0", "-client-id", "x"},
		{"-rate", "-1", "-client-id", "x"},
		{"-url", "ftp://x", "-client-id", "x"},
		{"-header", "no colon", "-scenario", "get"},
		{"-scenario", "get", "-path", "relative"},
		{"-token-grant", "implicit", "-client-id", "x"},
		{"-transport", "fast", "-client-id", "x"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	cfg, err := parseFlags([]string{"-scenario", "get", "-header", "X-A: b:c", "-header", "x-a:d", "-url", "http://h/"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.headers.Values("X-A"); len(got) != 2 || got[0] != "b:c" || got[1] != "d" {
		t.Errorf("headers = %q", got)
	}
	if cfg.baseURL != "http://h" || cfg.tokenGrant != "client_credentials" {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestMainPrintsOneJSONObject(t *testing.T) {
	srv := httptest.NewServer(newFake())
	defer srv.Close()
	var out, errw bytes.Buffer
	code := realMain([]string{"-url", srv.URL, "-realm", "test", "-scenario", "client_credentials", "-client-id", "cli",
		"-client-secret", "topsecret42", "-duration", "200ms", "-warmup", "0s", "-c", "2"}, &out, &errw)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errw.String())
	}
	var m map[string]any
	dec := json.NewDecoder(&out)
	if err := dec.Decode(&m); err != nil || dec.More() {
		t.Fatalf("stdout is not one JSON object: %v %q", err, out.String())
	}
	for _, k := range []string{"scenario", "mode", "connections", "rate", "duration_s", "requests", "errors",
		"throughput_rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %q in %v", k, m)
		}
	}
	if strings.Contains(errw.String(), "topsecret42") {
		t.Errorf("stderr mentions the client secret: %s", errw.String())
	}

	code = realMain([]string{"-url", srv.URL, "-realm", "test", "-scenario", "client_credentials", "-client-id", "cli",
		"-client-secret", "bad", "-duration", "100ms", "-warmup", "0s"}, &out, &errw)
	if code != 3 {
		t.Errorf("exit %d for a run with errors, want 3", code)
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{"X-A: b", "a:", ":b", "Authorization: Bearer x:y", "bad name: v", "k:\r\nv", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := parseHeader(s)
		if err != nil {
			return
		}
		// Whatever is accepted must be a header net/http will send as is.
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set(k, v)
		var buf bytes.Buffer
		if err := req.Header.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if strings.Count(buf.String(), "\r\n") != 1 {
			t.Fatalf("header %q: %q split into several lines", s, buf.String())
		}
	})
}

func FuzzCheckResponses(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","refresh_token":"r"}`, `{"access_token":""}`, `{"active":true}`, `{"active":"yes"}`,
		`{"sub":"x"}`, `{"token":"t"}`, `null`, `[]`, `{`, "\x00\xff", strings.Repeat("a", 300),
	} {
		f.Add(200, []byte(s))
		f.Add(401, []byte(s))
	}
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		_, terr := checkToken(code, body, true)
		ierr := checkIntrospect(code, body)
		uerr := checkUserinfo(code, body)
		ferr := checkFusioLogin(code, body)
		if code != 200 {
			for _, err := range []error{terr, ierr, uerr, ferr} {
				if err == nil {
					t.Fatalf("status %d accepted", code)
				}
				if len(err.Error()) > errSample+40 || strings.ContainsAny(err.Error(), "\r\n") {
					t.Fatalf("error text not bounded to one short line: %q", err)
				}
			}
		}
	})
}

// TestTokenPathOverride drives a server that has oidc-provider's paths
// (/token, /token/introspection) instead of Keycloak's: with -token-path and
// -introspect-path every request must reach them, none the realm paths.
func TestTokenPathOverride(t *testing.T) {
	f := newFake()
	const base = "/realms/test/protocol/openid-connect"
	var peerHits, realmHits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			r.URL.Path = base + "/token"
		case "/token/introspection":
			r.URL.Path = base + "/token/introspect"
		default:
			realmHits.Add(1)
			http.NotFound(w, r)
			return
		}
		peerHits.Add(1)
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()

	for _, sc := range []string{"client_credentials", "introspect"} {
		rep := mustRun(t, testConfig(t, srv, "-scenario", sc, "-token-grant", "client_credentials",
			"-token-path", "/token", "-introspect-path", "/token/introspection"))
		if rep.Errors != 0 || rep.ThroughputRPS <= 0 {
			t.Fatalf("%s: errors %d, throughput %v, samples %q", sc, rep.Errors, rep.ThroughputRPS, rep.ErrorSamples)
		}
	}
	if realmHits.Load() != 0 || peerHits.Load() == 0 {
		t.Fatalf("requests to the overridden paths %d, to other paths %d", peerHits.Load(), realmHits.Load())
	}
	for _, bad := range []string{"token", "http://x/token"} {
		if _, err := parseFlags([]string{"-client-id", "x", "-token-path", bad}, io.Discard); err == nil {
			t.Errorf("-token-path %q accepted", bad)
		}
		if _, err := parseFlags([]string{"-client-id", "x", "-introspect-path", bad}, io.Discard); err == nil {
			t.Errorf("-introspect-path %q accepted", bad)
		}
	}
}
