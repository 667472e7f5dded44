package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Credentials of the realm in testdata/issue4-gw.json.
const (
	gwRealm     = "gw"
	gwSubRealm  = "gwsub"
	gwAudRealm  = "gwaud"
	gwAPISecret = "api-secret-4d2e8a61c9"
	alicePW4    = "alice-pw-4"
	bobPW4      = "bob-pw-4"
	carolPW4    = "carol-pw-4"
	acmeID      = "6f3c2a1e-4b5d-4e8f-9a01-0000000000a1"
	globexID    = "6f3c2a1e-4b5d-4e8f-9a01-0000000000b2"
	aliceAcme   = "MU0a11ce00-0000-4000-8000-00000000ac01"
	aliceGlobex = "MU0a11ce00-0000-4000-8000-00000000b202"
	// subDomain is the gateway domain of the subdomain-mode realm.
	subDomain = "api.example.test"
)

// gwEnv is a gatehouse whose gateway fronts real upstreams on loopback.
type gwEnv struct {
	ts *testServer
	// echo answers every request with a JSON description of what it
	// received, so a test sees exactly what the gateway forwarded.
	echo *httptest.Server
}

// echoHandler describes the request it received as JSON.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"method":  r.Method,
		"path":    r.URL.Path,
		"query":   r.URL.RawQuery,
		"host":    r.Host,
		"headers": r.Header,
	})
}

// streamHandler is the upload/download upstream: POST counts the bytes
// it receives, GET /files/download?n=N writes N bytes.
func streamHandler(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"received": n})
	default:
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = byte(i)
		}
		for n > 0 {
			c := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:c]); err != nil {
				return
			}
			n -= c
		}
	}
}

// slowHandler answers only after the gateway's timeout has passed (or the
// gateway gave up on it).
func slowHandler(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(3 * time.Second):
	}
	w.WriteHeader(http.StatusOK)
}

// startGateway starts the upstreams and a gatehouse serving three realms
// built from testdata/issue4-gw.json: gw (organization by header, the
// default realm), gwsub (organization by subdomain of api.example.test)
// and gwaud (gw with an audience). cfg may adjust the server's
// configuration.
func startGateway(t *testing.T, cfg ...func(*server.Config)) *gwEnv {
	t.Helper()
	echo := httptest.NewServer(http.HandlerFunc(echoHandler))
	t.Cleanup(echo.Close)
	stream := httptest.NewServer(http.HandlerFunc(streamHandler))
	t.Cleanup(stream.Close)
	slow := httptest.NewServer(http.HandlerFunc(slowHandler))
	t.Cleanup(slow.Close)
	repl := strings.NewReplacer(
		"http://echo.invalid", echo.URL,
		"http://stream.invalid", stream.URL,
		"http://slow.invalid", slow.URL,
		"http://down.invalid", "http://"+freeAddr(t),
	)
	b, err := os.ReadFile(filepath.Join("testdata", "issue4-gw.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc := repl.Replace(string(b))
	dir := t.TempDir()
	variant := func(name string, change func(gw map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		m["realm"] = name
		change(m["gatehouse"].(map[string]any)["gateway"].(map[string]any))
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := []string{
		variant(gwRealm, func(map[string]any) {}),
		variant(gwSubRealm, func(g map[string]any) {
			g["orgFrom"], g["domain"] = "subdomain", subDomain
		}),
		variant(gwAudRealm, func(g map[string]any) {
			g["domain"], g["audience"] = "aud.example.test", "risks-api"
		}),
	}
	ts := startServer(t, files, append([]func(*server.Config){func(c *server.Config) { c.DefaultRealm = gwRealm }}, cfg...)...)
	return &gwEnv{ts: ts, echo: echo}
}

// token logs in to realm as user through the token endpoint (client app
// unless the extra form fields name another) and returns the answer.
func gwToken(t *testing.T, ts *testServer, realm, user, pw string, extra ...string) *response {
	t.Helper()
	return mustLogin(t, ts, realm, "app", user, pw, extra...)
}

// gwUsersTokens logs alice, bob and carol in to the gw realm and returns
// their access tokens.
func gwUsersTokens(t *testing.T, ts *testServer) (alice, bob, carol string) {
	t.Helper()
	alice = gwToken(t, ts, gwRealm, "alice", alicePW4).str("access_token")
	bob = gwToken(t, ts, gwRealm, "bob", bobPW4).str("access_token")
	carol = gwToken(t, ts, gwRealm, "carol", carolPW4).str("access_token")
	return alice, bob, carol
}

// gwReq sends a request to the gateway. headers are "Name: value"; a
// "Host: x" header sets the request's Host, so that a request to the
// loopback address can name any gateway domain.
func gwReq(t *testing.T, ts *testServer, method, path, token string, headers ...string) *response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	return do(t, req)
}

// seen is a header the echo upstream received ("" when absent).
func (r *response) seen(name string) string {
	h, _ := r.JSON["headers"].(map[string]any)
	vs, _ := h[http.CanonicalHeaderKey(name)].([]any)
	if len(vs) == 0 {
		return ""
	}
	s, _ := vs[0].(string)
	return s
}

// seenHeaders lists the header names the echo upstream received.
func (r *response) seenHeaders() []string {
	h, _ := r.JSON["headers"].(map[string]any)
	var out []string
	for k := range h {
		out = append(out, k)
	}
	return out
}

// want200 fails the test unless the gateway forwarded the request.
func want200(t *testing.T, what string, r *response) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: got %d %s, want 200", what, r.Status, r.Body)
	}
}

// createUser stores a new user with a password and no roles or
// memberships, as an admin would create one after the realm was imported,
// and returns its username.
func createUser(t *testing.T, ts *testServer, realm, username, pw string) string {
	t.Helper()
	hash, err := password.NewHasher(fastPasswords).Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = ts.Srv.Store.CreateUser(context.Background(), store.User{
		Realm: realm, ID: core.NewID(), Username: username, Enabled: true, Created: now,
		PasswordHash: hash, PasswordCreated: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return username
}
