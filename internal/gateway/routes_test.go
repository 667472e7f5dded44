package gateway

import (
	"bufio"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/pkg/middleware"
)

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

func buildRouter(t testing.TB, ops ...store.Operation) *realmConfig {
	t.Helper()
	return compile(store.Realm{Name: "r", Settings: store.RealmSettings{Gateway: &store.Gateway{Operations: ops}}}, slog.New(slog.DiscardHandler))
}

func TestRouterMatch(t *testing.T) {
	op := func(method, path string) store.Operation {
		return store.Operation{Method: method, Path: path, Upstream: "http://u" + strings.NewReplacer("/", "_", "{", "", "}", "", "*", "W").Replace(path) + method}
	}
	c := buildRouter(t,
		op("GET", "/"),
		op("GET", "/a"),
		op("GET", "/a/"),
		op("GET", "/a/{id}"),
		op("GET", "/a/b"),
		op("", "/a/*"),
		op("GET", "/a/{id}/c"),
		op("GET", "/a/b/*"),
		op("*", "/x/{p}/y/*"),
		op("POST", "/x/{p}/y/z"),
		op("GET", "/*"),
	)
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/", "/"},
		{"HEAD", "/", "/"}, // HEAD uses the GET route
		{"GET", "/a", "/a"},
		{"GET", "/a/", "/a/"},
		{"GET", "/a/b", "/a/b"},           // literal beats param
		{"GET", "/a/q", "/a/{id}"},        // param beats wildcard
		{"POST", "/a/q", "/a/*"},          // param route has no POST: wildcard
		{"GET", "/a/q/c", "/a/{id}/c"},    // param then literal
		{"GET", "/a/b/c", "/a/b/*"},       // literal b then wildcard beats {id}/c
		{"GET", "/a/q/d", "/a/*"},         // backtracking out of {id}
		{"DELETE", "/a/b/c", "/a/*"},      // /a/b/* is GET only
		{"GET", "/x/1/y/z", "/x/{p}/y/*"}, // POST-only literal skipped
		{"POST", "/x/1/y/z", "/x/{p}/y/z"},
		{"GET", "/x/1/y", "/x/{p}/y/*"}, // wildcard matches the empty rest
		{"GET", "/zzz/1", "/*"},
		{"POST", "/zzz", ""},
		{"GET", "", ""},
	} {
		rt := c.router.match(tc.method, tc.path)
		got := ""
		if rt != nil {
			got = rt.pattern
		}
		if got != tc.want {
			t.Errorf("%s %s: matched %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
	// A duplicate keeps the first; a bad pattern is skipped.
	c = buildRouter(t, store.Operation{Method: "GET", Path: "/d", Upstream: "http://first"},
		store.Operation{Method: "get", Path: "/d", Upstream: "http://second"},
		store.Operation{Method: "GET", Path: "/e/*/f", Upstream: "http://x"})
	if rt := c.router.match("GET", "/d"); rt == nil || rt.target.Host != "first" {
		t.Fatalf("duplicate: %+v", rt)
	}
	if rt := c.router.match("GET", "/e/x/f"); rt != nil {
		t.Fatalf("bad pattern routed: %+v", rt)
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":              "/",
		"/":             "/",
		"/a/b":          "/a/b",
		"/a/b/":         "/a/b/",
		"/a/../b":       "/b",
		"/a/./b/":       "/a/b/",
		"//a//b":        "/a/b",
		"/..":           "/",
		"a":             "/a",
		"/.well-known/": "/.well-known/",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRouteMatch checks that no operation path and no request path makes
// the router panic, and that a match is always consistent with cleaning.
func FuzzRouteMatch(f *testing.F) {
	f.Add("/a/{id}/*", "GET", "/a/1/b")
	f.Add("/", "POST", "//")
	f.Add("/a/*", "", "/a/../../etc")
	f.Add("/{x}/{y}", "GET", "/%2e/x")
	f.Fuzz(func(t *testing.T, pattern, method, p string) {
		c := buildRouter(t, store.Operation{Method: method, Path: pattern, Upstream: "http://u"},
			store.Operation{Method: "GET", Path: "/fixed/{p}", Upstream: "http://v"})
		cp := cleanPath(p)
		if !strings.HasPrefix(cp, "/") || strings.Contains(cp, "//") || strings.Contains(cp, "/../") {
			t.Fatalf("cleanPath(%q) = %q", p, cp)
		}
		_ = c.router.match(method, cp)
		_ = c.router.match("GET", p)
	})
}

// countingTransport answers every upstream request itself and counts them.
type countingTransport struct{ n int }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n++
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// FuzzGateway sends arbitrary paths and headers through the gateway: it must
// never answer 500 and never reach an upstream of a private operation
// without a valid token.
func FuzzGateway(f *testing.F) {
	f.Add("GET", "/risks", "Bearer tok", "MU1", "o-1", "h.example")
	f.Add("GET", "/public/../risks", "", "", "", "")
	f.Add("POST", "/.gatehouse/memberships", "bearer  x", "", "acme", "acme.example.com")
	f.Add("GET", "/risks/%2F..%2F", "Bearer", "", "", "")
	f.Fuzz(func(t *testing.T, method, target, authz, userID, org, host string) {
		if !validMethod(method) {
			method = "GET"
		}
		realm := store.Realm{Name: "r", Enabled: true, Settings: store.RealmSettings{
			Organizations: []store.Organization{{ID: "o-1", Alias: "acme", Enabled: true}, {ID: "o-2", Alias: "b", Enabled: true}},
			Gateway: &store.Gateway{OrgFrom: map[bool]string{true: "subdomain"}[strings.Contains(host, "acme")], Domain: "example.com",
				Operations: []store.Operation{
					{Path: "/public/*", Upstream: "http://pub", Public: true},
					{Path: "/*", Upstream: "http://priv", Scopes: []string{"s"}},
				}},
		}}
		auth := &fakeAuth{realms: map[string]store.Realm{"r": realm}, tokens: map[string]*core.Principal{
			"tok": {Realm: "r", Subject: "u", TokenType: "Bearer", Scopes: []string{"s"},
				Memberships: []store.Membership{{OrgID: "o-1", ID: "MU1"}, {OrgID: "o-2", ID: "MU2"}}},
		}}
		tr := &countingTransport{}
		g := New(auth, Options{RealmFor: func(*http.Request) string { return "r" }, Transport: tr})
		req := httptest.NewRequest("GET", "/", nil)
		req.Method = method
		req.URL.Path = target
		req.Host = host
		req.Header.Set("Authorization", authz)
		req.Header.Set("UserID", userID)
		req.Header.Set("Organization", org)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != 502 {
			t.Fatalf("status %d for %q %q", rec.Code, method, target)
		}
		tok, _, ok := middleware.BearerToken(req.Header)
		authorized := ok && tok == "tok"
		if tr.n > 0 && !authorized && !strings.HasPrefix(cleanPath(target), "/public/") {
			t.Fatalf("private %q reached upstream without a valid token", target)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func BenchmarkRouteMatch(b *testing.B) {
	var ops []store.Operation
	for i := range 50 {
		ops = append(ops,
			store.Operation{Method: "GET", Path: fmt.Sprintf("/svc%d/items", i), Upstream: "http://u"},
			store.Operation{Method: "GET", Path: fmt.Sprintf("/svc%d/items/{id}", i), Upstream: "http://u"},
			store.Operation{Method: "*", Path: fmt.Sprintf("/svc%d/files/*", i), Upstream: "http://u"})
	}
	c := buildRouter(b, ops...)
	paths := []string{"/svc7/items", "/svc31/items/12345", "/svc49/files/a/b/c.txt", "/svc3/none"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = c.router.match("GET", paths[i%len(paths)])
	}
}

// BenchmarkGatewayPassThrough measures one private request end to end
// through the gateway (token check, org selection, scopes, proxy over
// loopback keep-alive) to a trivial upstream.
func BenchmarkGatewayPassThrough(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer up.Close()
	realm := testRealm(up.URL, up.URL, up.URL, up.URL, up.URL)
	realm.Updated = time.Unix(1, 0)
	auth := &fakeAuth{realms: map[string]store.Realm{"test": realm}, tokens: map[string]*core.Principal{
		"tok": {Realm: "test", Subject: "u", Username: "user", ClientID: "c", SessionID: "s", TokenType: "Bearer",
			RealmRoles: []string{"consumer"}, Memberships: []store.Membership{{OrgID: "o-1", ID: "MU1"}, {OrgID: "o-2", ID: "MU2"}}},
	}}
	g := New(auth, Options{RealmFor: func(*http.Request) string { return "test" }})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/risks/42", nil)
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("UserID", "MU2")
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
