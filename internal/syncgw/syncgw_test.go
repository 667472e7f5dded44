package syncgw

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/coretest"
)

const realmDoc = `{
  "realm": "%s", "enabled": true, "ssoSessionIdleTimeout": 1800, "ssoSessionMaxLifespan": 36000,
  "accessTokenLifespan": 300,
  "clients": [{"clientId": "app", "publicClient": true, "directAccessGrantsEnabled": true}],
  "users": [
    {"username": "renny", "enabled": true, "attributes": {"gatehouse.renewable": ["true"]},
     "credentials": [{"type": "password", "value": "pw"}]},
    {"username": "plain", "enabled": true, "credentials": [{"type": "password", "value": "pw"}]}
  ],
  "gatehouse": {"aliases": ["%s"]}
}`

func importRealm(t testing.TB, svc *core.Service, name, alias string) {
	t.Helper()
	coretest.Import(t, svc, fmt.Sprintf(realmDoc, name, alias))
}

// newMux registers the routes the real server has that could collide:
// the OIDC door's realm info and the gateway's catch-all.
func newMux(svc *core.Service) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /realms/{realm}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	mux.Handle("/", New(svc, nil, nil).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(298) })))
	return mux
}

func get(t testing.TB, h http.Handler, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	var m map[string]any
	if rec.Header().Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: bad JSON %q", path, rec.Body)
		}
	}
	return rec.Code, m
}

func login(t testing.TB, svc *core.Service, realm, user string) *core.TokenResponse {
	t.Helper()
	resp, err := svc.Token(context.Background(), core.TokenRequest{Realm: realm, GrantType: core.GrantPassword,
		Client: core.ClientAuth{ClientID: "app"}, Username: user, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRefreshByNameAndAlias(t *testing.T) {
	svc := coretest.New(t, "")
	importRealm(t, svc, "ws", "whitespace")
	// A realm literally named "realms" is reached through an alias: its
	// own name's path is Keycloak's /realms/{realm}.
	importRealm(t, svc, "realms", "realms-db")
	mux := newMux(svc)
	tok := login(t, svc, "ws", "renny")
	for _, db := range []string{"ws", "whitespace"} {
		waitAlias(t, svc, db)
		code, m := get(t, mux, "/"+db+"/_oidc_refresh?refresh_token="+url.QueryEscape(tok.RefreshToken))
		if code != 200 || m["id_token"] == "" || m["session_id"] != tok.SessionState || m["name"] != "renny" {
			t.Fatalf("%s: %d %v", db, code, m)
		}
	}
	waitAlias(t, svc, "realms-db")
	code, m := get(t, mux, "/realms-db/_oidc_refresh?refresh_token="+url.QueryEscape(login(t, svc, "realms", "renny").RefreshToken))
	if code != 200 || m["name"] != "renny" {
		t.Fatalf("realm named realms: %d %v", code, m)
	}
	// The OIDC route and the catch-all still answer.
	if code, _ := get(t, mux, "/realms/ws"); code != 299 {
		t.Fatalf("/realms/ws went to %d", code)
	}
	if code, _ := get(t, mux, "/nope/_oidc_refresh"); code != 298 {
		t.Fatalf("unknown db went to %d, want the catch-all", code)
	}
}

func TestRefreshErrors(t *testing.T) {
	svc := coretest.New(t, "")
	importRealm(t, svc, "ws", "whitespace")
	mux := newMux(svc)
	plain := login(t, svc, "ws", "plain")
	for _, c := range []struct {
		query  string
		status int
		text   string
	}{
		{"", 400, "Bad Request"},
		{"?refresh_token=", 400, "Bad Request"},
		{"?refresh_token=garbage", 401, "Unauthorized"},
		{"?refresh_token=" + url.QueryEscape(plain.AccessToken), 401, "Unauthorized"},
		{"?refresh_token=" + url.QueryEscape(plain.RefreshToken), 400, "Bad Request"},
	} {
		code, m := get(t, mux, "/ws/_oidc_refresh"+c.query)
		if code != c.status || m["error"] != c.text || m["reason"] == "" {
			t.Errorf("query %.40q: %d %v, want %d %q", c.query, code, m, c.status, c.text)
		}
	}
}

func TestLateRealmGetsRoute(t *testing.T) {
	svc := coretest.New(t, "")
	mux := newMux(svc)
	importRealm(t, svc, "late", "late-db")
	tok := login(t, svc, "late", "renny")
	deadline := time.Now().Add(3 * time.Second)
	for {
		waitAlias(t, svc, "late-db")
		code, _ := get(t, mux, "/late-db/_oidc_refresh?refresh_token="+url.QueryEscape(tok.RefreshToken))
		if code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("route for a realm imported after start: %d", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAlias waits for the core's alias map, which reloads asynchronously
// after an import.
func waitAlias(t testing.TB, svc *core.Service, name string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		r := svc.ResolveRealm(name)
		if _, err := svc.Realm(context.Background(), r); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("alias %s never resolved", name)
}

// FuzzRefreshToken: whatever the query holds, the answer is a 4xx in Sync
// Gateway's error shape, never a 500 or a panic.
func FuzzRefreshToken(f *testing.F) {
	svc := coretest.New(f, "")
	importRealm(f, svc, "ws", "whitespace")
	mux := newMux(svc)
	tok := login(f, svc, "ws", "plain")
	for _, s := range []string{"", "x", "a.b.c", tok.AccessToken, tok.RefreshToken, "eyJhbGciOiJub25lIn0.e30.", "%zz", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/ws/_oidc_refresh", nil)
		req.URL.RawQuery = url.Values{"refresh_token": {token}}.Encode()
		mux.ServeHTTP(rec, req)
		if rec.Code != 400 && rec.Code != 401 {
			t.Fatalf("token %q: status %d %s", token, rec.Code, rec.Body)
		}
		var m map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["error"] == "" || m["reason"] == "" {
			t.Fatalf("body %q", rec.Body)
		}
	})
}

// spent is a limiter whose budget is gone.
type spent struct{}

func (spent) Allow(string) (bool, int) { return false, 7 }

// TestRefreshRateLimited: a refresh from an address over its budget is
// refused in Sync Gateway's error shape with Retry-After, before the token
// is looked at; other paths are not the limiter's business.
func TestRefreshRateLimited(t *testing.T) {
	svc := coretest.New(t, "")
	importRealm(t, svc, "ws", "whitespace")
	mux := http.NewServeMux()
	mux.Handle("/", New(svc, nil, spent{}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(298) })))
	tok := login(t, svc, "ws", "renny")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/ws/_oidc_refresh?refresh_token="+url.QueryEscape(tok.RefreshToken), nil))
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "7" ||
		rec.Body.String() != `{"error":"Too Many Requests","reason":"Too many requests"}` {
		t.Fatalf("%d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if code, _ := get(t, mux, "/api/things"); code != 298 {
		t.Fatalf("gateway path went to %d", code)
	}
}
