package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/store"
)

// fakeAuth is an Authenticator backed by a map of token → principal.
type fakeAuth struct {
	mu     sync.Mutex
	realms map[string]store.Realm
	tokens map[string]*core.Principal
	err    error // returned by Authenticate when set
}

func (f *fakeAuth) Authenticate(_ context.Context, realm, bearer string) (*core.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	p, ok := f.tokens[bearer]
	if !ok || p.Realm != realm {
		return nil, &core.Error{Code: core.InvalidToken, Description: `token is "expired"`, Status: 401}
	}
	return p, nil
}

func (f *fakeAuth) Realm(_ context.Context, name string) (store.Realm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.realms[name]
	if !ok {
		return store.Realm{}, store.ErrNotFound
	}
	return r, nil
}

func (f *fakeAuth) setRealm(r store.Realm) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.realms[r.Name] = r
}

// echo is what the echo upstream reports about the request it received.
type echo struct {
	Upstream string      `json:"upstream"`
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawPath  string      `json:"rawPath"`
	Query    string      `json:"query"`
	Host     string      `json:"host"`
	Header   http.Header `json:"header"`
	Body     int64       `json:"body"`
}

func echoServer(t testing.TB, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{Upstream: name, Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath,
			Query: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: n})
	}))
	t.Cleanup(s.Close)
	return s
}

type env struct {
	t     *testing.T
	auth  *fakeAuth
	gw    *Gateway
	srv   *httptest.Server
	realm store.Realm
}

func testRealm(up1, up2, slow, down, stream string) store.Realm {
	return store.Realm{
		Name:    "test",
		Enabled: true,
		Updated: time.Unix(1, 0),
		Settings: store.RealmSettings{
			Organizations: []store.Organization{
				{ID: "o-1", Alias: "acme", Name: "Acme Ltd", Enabled: true},
				{ID: "o-2", Alias: "globex", Name: "Globex", Enabled: true},
				{ID: "o-3", Alias: "gone", Name: "Gone", Enabled: false},
			},
			Roles: []store.Role{
				{Name: "consumer", Attributes: map[string][]string{"scopes": {"risks:read"}}},
				{Name: "writer", Composites: []string{"consumer"}, Attributes: map[string][]string{"scopes": {"risks:write"}}},
				{Name: "auditor", ClientID: "cape-client", Attributes: map[string][]string{"scopes": {"audit, reports"}}},
			},
			Gateway: &store.Gateway{Operations: []store.Operation{
				{Method: "GET", Path: "/public/*", Upstream: up1, Public: true},
				{Method: "GET", Path: "/risks", Upstream: up1, Scopes: []string{"risks:read"}},
				{Method: "POST", Path: "/risks", Upstream: up1, Scopes: []string{"risks:write"}},
				{Method: "GET", Path: "/risks/{id}", Upstream: up1, Scopes: []string{"risks:read"}},
				{Method: "GET", Path: "/risks/special", Upstream: up2},
				{Method: "GET", Path: "/risks/*", Upstream: up2},
				{Method: "", Path: "/files/*", Upstream: up1 + "/base"},
				{Method: "GET", Path: "/audit", Upstream: up1, Scopes: []string{"audit"}},
				{Method: "GET", Path: "/fwd", Upstream: up1, ForwardAuthorization: true},
				{Method: "GET", Path: "/slow", Upstream: slow, TimeoutSeconds: 1},
				{Method: "GET", Path: "/down", Upstream: down},
				{Method: "GET", Path: "/broken", Upstream: "not a url"},
				{Method: "*", Path: "/stream", Upstream: stream},
				{Method: "POST", Path: "/upload", Upstream: up1, Public: true},
			}},
		},
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	up1 := echoServer(t, "one")
	up2 := echoServer(t, "two")
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	release := make(chan struct{})
	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		_, _ = io.WriteString(w, "second\n")
	}))
	t.Cleanup(stream.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	realm := testRealm(up1.URL, up2.URL, slow.URL, downURL, stream.URL)
	auth := &fakeAuth{realms: map[string]store.Realm{"test": realm}, tokens: map[string]*core.Principal{
		// seed 004: one user in two organizations
		"tok-sumo": {Realm: "test", Subject: "u-sumo", Username: "sumo", ClientID: "cape-client", SessionID: "s-1",
			TokenType: "Bearer", Scopes: []string{"openid"}, RealmRoles: []string{"consumer"},
			Memberships: []store.Membership{{OrgID: "o-1", ID: "MU00000000-0000-0000-0000-000000000000"}, {OrgID: "o-2", ID: "MU11111111-1111-1111-1111-111111111111"}}},
		"tok-one": {Realm: "test", Subject: "u-one", Username: "one", ClientID: "cape-client", TokenType: "Bearer",
			RealmRoles: []string{"consumer", "offline_access"}, Memberships: []store.Membership{{OrgID: "o-1", ID: "MU2222"}}},
		"tok-disabled-org": {Realm: "test", Subject: "u-d", TokenType: "Bearer", RealmRoles: []string{"consumer"},
			Memberships: []store.Membership{{OrgID: "o-1", ID: "MU3333"}, {OrgID: "o-3", ID: "MU4444"}}},
		"tok-none":    {Realm: "test", Subject: "u-none", ClientID: "svc", TokenType: "Bearer", RealmRoles: []string{"consumer"}},
		"tok-noscope": {Realm: "test", Subject: "u-nos", TokenType: "Bearer", Scopes: []string{"profile"}},
		"tok-writer":  {Realm: "test", Subject: "u-w", TokenType: "Bearer", RealmRoles: []string{"writer"}},
		"tok-client":  {Realm: "test", Subject: "u-c", TokenType: "Bearer", ClientRoles: map[string][]string{"cape-client": {"auditor"}}},
		"tok-scope":   {Realm: "test", Subject: "u-s", TokenType: "Bearer", Scopes: []string{"risks:read", "audit"}},
		"tok-id":      {Realm: "test", Subject: "u-id", TokenType: "ID", RealmRoles: []string{"consumer"}},
		"tok-aud":     {Realm: "test", Subject: "u-a", TokenType: "Bearer", Audience: []string{"account", "risks-api"}, RealmRoles: []string{"consumer"}},
	}}
	e := &env{t: t, auth: auth, realm: realm}
	e.gw = New(auth, Options{RealmFor: func(r *http.Request) string {
		if strings.HasPrefix(r.Host, "nowhere") {
			return ""
		}
		return "test"
	}})
	e.srv = httptest.NewServer(e.gw)
	t.Cleanup(e.srv.Close)
	return e
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) echo(t *testing.T) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(r.body, &e); err != nil || e.Upstream == "" {
		t.Fatalf("status %d, body %q is not an upstream echo", r.status, r.body)
	}
	return e
}

func (r reply) errJSON(t *testing.T) errorJSON {
	t.Helper()
	var e errorJSON
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("status %d, body %q is not an error JSON", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	return e
}

// do sends a real HTTP request to the gateway; hdr alternates name, value.
func (e *env) do(method, path string, body io.Reader, hdr ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: b}
}

func wantStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

func TestSeed004UserID(t *testing.T) {
	e := newEnv(t)
	const mu0, mu1 = "MU00000000-0000-0000-0000-000000000000", "MU11111111-1111-1111-1111-111111111111"
	auth := "Bearer tok-sumo"

	r := e.do("GET", "/risks", nil, "Authorization", auth)
	wantStatus(t, r, 403)
	if string(r.body) != errUserIDBody || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("body %q, want %q", r.body, errUserIDBody)
	}
	// A UserID that is not the user's gets the same answer.
	r = e.do("GET", "/risks", nil, "Authorization", auth, "UserID", "MU2222")
	wantStatus(t, r, 403)
	if string(r.body) != errUserIDBody {
		t.Fatalf("body %q", r.body)
	}

	for _, c := range []struct{ mu, org, alias string }{{mu0, "o-1", "acme"}, {mu1, "o-2", "globex"}} {
		r = e.do("GET", "/risks", nil, "Authorization", auth, "UserID", c.mu)
		wantStatus(t, r, 200)
		h := r.echo(t).Header
		if h.Get("X-Gatehouse-Organization") != c.org || h.Get("X-Gatehouse-Membership") != c.mu || h.Get("X-Gatehouse-Organization-Alias") != c.alias {
			t.Fatalf("UserID %s: upstream saw org %q membership %q alias %q", c.mu, h.Get("X-Gatehouse-Organization"),
				h.Get("X-Gatehouse-Membership"), h.Get("X-Gatehouse-Organization-Alias"))
		}
		if h.Get("X-Gatehouse-Subject") != "u-sumo" || h.Get("X-Gatehouse-Username") != "sumo" || h.Get("X-Gatehouse-Client") != "cape-client" ||
			h.Get("X-Gatehouse-Session") != "s-1" || h.Get("X-Gatehouse-Roles") != "consumer" || h.Get("X-Gatehouse-Scopes") != "openid risks:read" {
			t.Fatalf("identity headers: %v", h)
		}
	}

	// One membership: no UserID needed; a wrong one is still refused.
	r = e.do("GET", "/risks", nil, "Authorization", "Bearer tok-one")
	wantStatus(t, r, 200)
	if got := r.echo(t).Header.Get("X-Gatehouse-Membership"); got != "MU2222" {
		t.Fatalf("membership %q", got)
	}
	r = e.do("GET", "/risks", nil, "Authorization", "Bearer tok-one", "UserID", mu0)
	wantStatus(t, r, 403)
	if string(r.body) != errUserIDBody {
		t.Fatalf("body %q", r.body)
	}

	// A membership of a disabled organization does not count.
	r = e.do("GET", "/risks", nil, "Authorization", "Bearer tok-disabled-org")
	wantStatus(t, r, 200)
	if got := r.echo(t).Header.Get("X-Gatehouse-Membership"); got != "MU3333" {
		t.Fatalf("membership %q", got)
	}
	r = e.do("GET", "/risks", nil, "Authorization", "Bearer tok-disabled-org", "UserID", "MU4444")
	wantStatus(t, r, 403)
}

func TestMembershipsEndpoint(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", MembershipsPath, nil, "Authorization", "Bearer tok-sumo")
	wantStatus(t, r, 200)
	var got []membershipJSON
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := []membershipJSON{
		{ID: "MU00000000-0000-0000-0000-000000000000", Organization: orgJSON{ID: "o-1", Alias: "acme", Name: "Acme Ltd"}},
		{ID: "MU11111111-1111-1111-1111-111111111111", Organization: orgJSON{ID: "o-2", Alias: "globex", Name: "Globex"}},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("memberships %+v", got)
	}
	r = e.do("GET", MembershipsPath, nil, "Authorization", "Bearer tok-none")
	wantStatus(t, r, 200)
	if string(r.body) != "[]" {
		t.Fatalf("body %s", r.body)
	}
	wantStatus(t, e.do("GET", MembershipsPath, nil), 401)
	wantStatus(t, e.do("POST", MembershipsPath, nil, "Authorization", "Bearer tok-sumo"), 405)
}

func TestSeed003PublicAndPrivate(t *testing.T) {
	e := newEnv(t)
	// Public: no token needed, and a bad one is not even looked at.
	wantStatus(t, e.do("GET", "/public/docs", nil), 200)
	wantStatus(t, e.do("GET", "/public/docs", nil, "Authorization", "Bearer garbage"), 200)

	// Private by default: /audit lists a scope, /fwd lists none; both need a token.
	wantStatus(t, e.do("GET", "/fwd", nil), 401)

	r := e.do("GET", "/risks", nil, "Authorization", "Bearer tok-noscope")
	wantStatus(t, r, 403)
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="risks:read"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	if ej := r.errJSON(t); ej.Error != "insufficient_scope" || !strings.Contains(ej.Description, "risks:read") {
		t.Fatalf("error %+v", ej)
	}
	// The scope in the token itself.
	wantStatus(t, e.do("GET", "/risks", nil, "Authorization", "Bearer tok-scope"), 200)
	// The scope granted by a realm role (Fusio: roles grant scopes).
	wantStatus(t, e.do("GET", "/risks/7", nil, "Authorization", "Bearer tok-none"), 200)
	wantStatus(t, e.do("POST", "/risks", nil, "Authorization", "Bearer tok-none"), 403)
	// A composite role grants its own scopes and those of its parts.
	r = e.do("POST", "/risks", strings.NewReader("{}"), "Authorization", "Bearer tok-writer")
	wantStatus(t, r, 200)
	if got := r.echo(t).Header.Get("X-Gatehouse-Scopes"); got != "risks:write risks:read" {
		t.Fatalf("scopes %q", got)
	}
	wantStatus(t, e.do("GET", "/risks", nil, "Authorization", "Bearer tok-writer"), 200)
	// A client role's scopes.
	wantStatus(t, e.do("GET", "/audit", nil, "Authorization", "Bearer tok-client"), 200)
	wantStatus(t, e.do("GET", "/audit", nil, "Authorization", "Bearer tok-none"), 403)
}

func TestSeed000OrganizationHeader(t *testing.T) {
	e := newEnv(t)
	for _, org := range []string{"o-1", "acme", "ACME"} {
		r := e.do("GET", "/risks", nil, "Authorization", "Bearer tok-one", "Organization", org)
		wantStatus(t, r, 200)
		if got := r.echo(t).Header.Get("X-Gatehouse-Organization"); got != "o-1" {
			t.Fatalf("org %q", got)
		}
	}
	for _, c := range []struct{ tok, org, userID string }{
		{"tok-one", "o-2", ""},  // not a member
		{"tok-one", "nope", ""}, // no such organization
		{"tok-one", "gone", ""}, // disabled
		{"tok-none", "o-1", ""}, // no membership at all
		{"tok-sumo", "o-1", "MU11111111-1111-1111-1111-111111111111"}, // membership of another org
	} {
		hdr := []string{"Authorization", "Bearer " + c.tok, "Organization", c.org}
		if c.userID != "" {
			hdr = append(hdr, "UserID", c.userID)
		}
		r := e.do("GET", "/risks", nil, hdr...)
		wantStatus(t, r, 403)
		if ej := r.errJSON(t); ej.Error != "access_denied" || !strings.Contains(ej.Description, c.org) {
			t.Fatalf("%+v: %+v", c, ej)
		}
	}
	// No organization asked for: a user without membership still gets through.
	r := e.do("GET", "/risks", nil, "Authorization", "Bearer tok-none")
	wantStatus(t, r, 200)
	if h := r.echo(t).Header; h.Get("X-Gatehouse-Organization") != "" || h.Get("X-Gatehouse-Membership") != "" {
		t.Fatalf("org headers without org: %v", h)
	}
}

func TestOrganizationFromSubdomain(t *testing.T) {
	e := newEnv(t)
	realm := e.realm
	gw := *realm.Settings.Gateway
	gw.OrgFrom, gw.Domain = "subdomain", "API.example.com"
	realm.Settings.Gateway = &gw
	realm.Updated = time.Unix(2, 0)
	e.auth.setRealm(realm)

	r := e.do("GET", "/risks", nil, "Authorization", "Bearer tok-one", "Host", "acme.api.example.com:8443")
	wantStatus(t, r, 200)
	if got := r.echo(t).Header.Get("X-Gatehouse-Organization"); got != "o-1" {
		t.Fatalf("org %q", got)
	}
	wantStatus(t, e.do("GET", "/risks", nil, "Authorization", "Bearer tok-one", "Host", "globex.api.example.com"), 403)
	// The Organization header means nothing in subdomain mode.
	wantStatus(t, e.do("GET", "/risks", nil, "Authorization", "Bearer tok-one", "Host", "api.example.com", "Organization", "globex"), 200)
}

func TestSpoofedIdentityHeadersStripped(t *testing.T) {
	e := newEnv(t)
	spoof := []string{"X-Gatehouse-Subject", "admin", "x-gatehouse-roles", "admin", "X_Gatehouse_Membership", "MU0",
		"X-GATEHOUSE-Custom", "1", "X-Other", "kept"}
	r := e.do("GET", "/public/x", nil, spoof...)
	wantStatus(t, r, 200)
	h := r.echo(t).Header
	for k := range h {
		if hasPrefixFold(k, "X-Gatehouse-") {
			t.Fatalf("public operation: upstream saw %s: %v", k, h[k])
		}
	}
	if h.Get("X-Other") != "kept" {
		t.Fatal("unrelated header dropped")
	}
	r = e.do("GET", "/risks", nil, append(spoof, "Authorization", "Bearer tok-none")...)
	wantStatus(t, r, 200)
	h = r.echo(t).Header
	if h.Values("X-Gatehouse-Subject")[0] != "u-none" || len(h.Values("X-Gatehouse-Subject")) != 1 || h.Get("X-Gatehouse-Roles") != "consumer" {
		t.Fatalf("identity headers %v", h)
	}
	for k := range h {
		if k == "X_gatehouse_membership" || k == "X-Gatehouse-Custom" {
			t.Fatalf("spoofed %s reached upstream", k)
		}
	}
	// Connection may name headers to drop: it cannot drop the gateway's own.
	r = e.do("GET", "/risks", nil, "Authorization", "Bearer tok-none", "Connection", "X-Gatehouse-Subject, X-Drop", "X-Drop", "1")
	wantStatus(t, r, 200)
	h = r.echo(t).Header
	if h.Get("X-Gatehouse-Subject") != "u-none" || h.Get("X-Drop") != "" {
		t.Fatalf("hop-by-hop handling: %v", h)
	}
}

func TestAuthorizationAndForwardedHeaders(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/risks?q=1", nil, "Authorization", "Bearer tok-none", "X-Forwarded-For", "203.0.113.9", "Host", "api.example.com")
	wantStatus(t, r, 200)
	ec := r.echo(t)
	if ec.Header.Get("Authorization") != "" {
		t.Fatal("Authorization forwarded")
	}
	if got := ec.Header.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
		t.Fatalf("X-Forwarded-For %q", got)
	}
	if ec.Header.Get("X-Forwarded-Host") != "api.example.com" || ec.Header.Get("X-Forwarded-Proto") != "http" {
		t.Fatalf("forwarded headers %v", ec.Header)
	}
	// A client's Forwarded and X-Real-IP would contradict the X-Forwarded-*
	// the gateway vouches for; the upstream must not see them.
	r = e.do("GET", "/risks", nil, "Authorization", "Bearer tok-none",
		"Forwarded", "for=198.51.100.1;host=admin.internal;proto=https", "X-Real-IP", "198.51.100.1")
	wantStatus(t, r, 200)
	if h := r.echo(t).Header; h.Get("Forwarded") != "" || h.Get("X-Real-Ip") != "" {
		t.Fatalf("client forwarding headers reached the upstream: %v", h)
	}
	if ec.Query != "q=1" || ec.Path != "/risks" || strings.HasPrefix(ec.Host, "api.example.com") {
		t.Fatalf("upstream request %+v", ec)
	}
	r = e.do("GET", "/fwd", nil, "Authorization", "bearer tok-none")
	wantStatus(t, r, 200)
	if got := r.echo(t).Header.Get("Authorization"); got != "bearer tok-none" {
		t.Fatalf("forwarded Authorization %q", got)
	}
	// The upstream's own path prefix is kept.
	r = e.do("PUT", "/files/a/b.txt", strings.NewReader("data"), "Authorization", "Bearer tok-none")
	wantStatus(t, r, 200)
	if ec := r.echo(t); ec.Path != "/base/files/a/b.txt" || ec.Method != "PUT" || ec.Body != 4 {
		t.Fatalf("upstream request %+v", ec)
	}
}

func TestUnauthorized(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name, auth, www string
	}{
		{"missing", "", `Bearer realm="test"`},
		{"other scheme", "Basic dXNlcjpwYXNz", `Bearer realm="test"`},
		{"empty bearer", "Bearer ", `Bearer realm="test", error="invalid_token", error_description="malformed Authorization header"`},
		{"bad chars", "Bearer a b", `Bearer realm="test", error="invalid_token", error_description="malformed Authorization header"`},
		{"unknown", "Bearer expired.token.x", `Bearer realm="test", error="invalid_token", error_description="token is \"expired\""`},
		{"id token", "Bearer tok-id", `Bearer realm="test", error="invalid_token", error_description="token type ID is not accepted here"`},
	} {
		var hdr []string
		if c.auth != "" {
			hdr = []string{"Authorization", c.auth}
		}
		r := e.do("GET", "/risks", nil, hdr...)
		wantStatus(t, r, 401)
		if got := r.header.Get("WWW-Authenticate"); got != c.www {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, c.www)
		}
		if ej := r.errJSON(t); ej.Error != "invalid_token" || ej.Description == "" {
			t.Errorf("%s: body %+v", c.name, ej)
		}
	}
	// Scheme is case-insensitive.
	wantStatus(t, e.do("GET", "/risks", nil, "Authorization", "BEARER tok-none"), 200)

	// ID tokens act as bearer where the realm allows it; an audience is enforced.
	realm := e.realm
	gw := *realm.Settings.Gateway
	gw.AcceptIDTokens, gw.Audience = true, "risks-api"
	realm.Settings.Gateway = &gw
	realm.Updated = time.Unix(3, 0)
	e.auth.setRealm(realm)
	wantStatus(t, e.do("GET", "/risks", nil, "Authorization", "Bearer tok-aud"), 200)
	r := e.do("GET", "/risks", nil, "Authorization", "Bearer tok-none")
	wantStatus(t, r, 401)
	if !strings.Contains(r.header.Get("WWW-Authenticate"), "audience") {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	gw.Audience = ""
	realm.Updated = time.Unix(4, 0)
	e.auth.setRealm(realm)
	wantStatus(t, e.do("GET", "/risks", nil, "Authorization", "Bearer tok-id"), 200)

	// A failure of the token check itself is not the client's fault and not a 500.
	e.auth.mu.Lock()
	e.auth.err = errors.New("store down")
	e.auth.mu.Unlock()
	wantStatus(t, e.do("GET", "/risks", nil, "Authorization", "Bearer tok-none"), 503)
}

func TestNotFound(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path string }{{"GET", "/nope"}, {"DELETE", "/risks"}, {"GET", "/"}, {"GET", "/risks/1/2/3/x/y"}} {
		r := e.do(c.method, c.path, nil, "Authorization", "Bearer tok-none")
		if c.path == "/risks/1/2/3/x/y" {
			// matched by the /risks/* wildcard
			wantStatus(t, r, 200)
			continue
		}
		wantStatus(t, r, 404)
		if ej := r.errJSON(t); ej.Error != "not_found" {
			t.Fatalf("%+v", ej)
		}
	}
	wantStatus(t, e.do("GET", "/risks", nil, "Host", "nowhere.example"), 404)
	realm := e.realm
	realm.Settings.Gateway = nil
	realm.Updated = time.Unix(9, 0)
	e.auth.setRealm(realm)
	wantStatus(t, e.do("GET", "/public/x", nil), 404)
}

func TestPathTraversalIsCleaned(t *testing.T) {
	e := newEnv(t)
	// The raw request line keeps the dot segments (a Go client would clean them).
	for _, p := range []string{"/public/../risks", "/public/%2e%2e/risks", "//risks"} {
		req := "GET " + p + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		rec := httptest.NewRecorder()
		r, err := http.ReadRequest(bufioReader(req))
		if err != nil {
			t.Fatal(err)
		}
		r.RemoteAddr = "127.0.0.1:1"
		e.gw.ServeHTTP(rec, r)
		if rec.Code != 401 {
			t.Fatalf("%s: status %d, want 401 (routed as /risks); body %s", p, rec.Code, rec.Body)
		}
	}
}

func TestRouteSpecificity(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/risks/special", nil)
	wantStatus(t, r, 401) // /risks/special is private; /risks/{id} too
	r = e.do("GET", "/risks/special", nil, "Authorization", "Bearer tok-noscope")
	wantStatus(t, r, 200) // the literal route, needing no scope, wins over {id}
	if up := r.echo(t).Upstream; up != "two" {
		t.Fatalf("literal route went to %s", up)
	}
	r = e.do("GET", "/risks/42", nil, "Authorization", "Bearer tok-none")
	wantStatus(t, r, 200)
	if up := r.echo(t).Upstream; up != "one" {
		t.Fatalf("param route went to %s", up)
	}
	r = e.do("GET", "/risks/42/notes", nil, "Authorization", "Bearer tok-noscope")
	wantStatus(t, r, 200)
	if up := r.echo(t).Upstream; up != "two" {
		t.Fatalf("wildcard route went to %s", up)
	}
}

func TestUpstreamFailures(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/down", nil, "Authorization", "Bearer tok-none")
	wantStatus(t, r, 502)
	if ej := r.errJSON(t); ej.Error != "bad_gateway" {
		t.Fatalf("%+v", ej)
	}
	wantStatus(t, e.do("GET", "/broken", nil, "Authorization", "Bearer tok-none"), 502)
	start := time.Now()
	r = e.do("GET", "/slow", nil, "Authorization", "Bearer tok-none")
	wantStatus(t, r, 504)
	if ej := r.errJSON(t); ej.Error != "gateway_timeout" {
		t.Fatalf("%+v", ej)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Fatalf("timeout after %v, want about 1s", d)
	}
}

func TestStreamingResponse(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest("GET", e.srv.URL+"/stream", nil)
	req.Header.Set("Authorization", "Bearer tok-none")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 6)
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(res.Body, buf); done <- err }()
	select {
	case err := <-done:
		if err != nil || string(buf) != "first\n" {
			t.Fatalf("read %q, %v", buf, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("first chunk not flushed while the upstream is still writing")
	}
}

// TestStreamingUpload sends 64 MiB through a pipe and checks that the
// gateway never holds the body: the heap grows far less than the body.
func TestStreamingUpload(t *testing.T) {
	e := newEnv(t)
	const total = 64 << 20
	pr, pw := io.Pipe()
	var peak uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	go func() {
		chunk := make([]byte, 256<<10)
		for sent := 0; sent < total; sent += len(chunk) {
			if sent%(8<<20) == 0 && sent > 0 {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak {
					peak = m.HeapInuse
				}
			}
			if _, err := pw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", e.srv.URL+"/upload", pr)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	r := reply{status: res.StatusCode, body: b}
	wantStatus(t, r, 200)
	if n := r.echo(t).Body; n != total {
		t.Fatalf("upstream got %d bytes", n)
	}
	if peak > base && peak-base > 16<<20 {
		t.Fatalf("heap grew by %d MiB during a %d MiB upload", (peak-base)>>20, total>>20)
	}
	t.Logf("heap in use grew by at most %d KiB", (int64(peak)-int64(base))>>10)
}

func TestRecompileOnRealmUpdate(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.do("GET", "/public/x", nil), 200)
	realm := e.realm
	gw := *realm.Settings.Gateway
	gw.Operations = append([]store.Operation(nil), gw.Operations...)
	gw.Operations[0].Public = false
	realm.Settings.Gateway = &gw
	// Same Updated: the compiled version stays.
	e.auth.setRealm(realm)
	wantStatus(t, e.do("GET", "/public/x", nil), 200)
	realm.Updated = time.Unix(5, 0)
	e.auth.setRealm(realm)
	wantStatus(t, e.do("GET", "/public/x", nil), 401)
}

func TestValidate(t *testing.T) {
	if err := Validate(testRealm("http://a", "http://b", "http://c", "http://d", "http://e").Settings.Gateway); err == nil ||
		!strings.Contains(err.Error(), "not a url") {
		t.Fatalf("Validate: %v", err)
	}
	ok := &store.Gateway{Operations: []store.Operation{{Path: "/a/{id}/*", Upstream: "https://x"}}}
	if err := Validate(ok); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "/a/*/b", "/{x", "/a{b}", "/a//b"} {
		if err := Validate(&store.Gateway{Operations: []store.Operation{{Path: p, Upstream: "http://x"}}}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	if err := Validate(&store.Gateway{OrgFrom: "subdomain"}); err == nil {
		t.Error("subdomain without domain accepted")
	}
}
