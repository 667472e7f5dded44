package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/middleware"
)

// TestIssue4Middleware: a Go service protected by pkg/middleware accepts
// a real token of the real server, checks its scopes from the token, and
// refuses it within about a second of a logout, through introspection.
func TestIssue4Middleware(t *testing.T) {
	t.Parallel()
	env := startGateway(t)
	ts := env.ts
	newService := func(scopes ...string) *httptest.Server {
		mw, err := middleware.New(middleware.Config{
			Issuer:           ts.URL + "/realms/" + gwRealm,
			IntrospectionURL: ts.oidc(gwRealm, "token/introspect"),
			ClientID:         "api",
			ClientSecret:     gwAPISecret,
			RequiredScopes:   scopes,
		})
		if err != nil {
			t.Fatal(err)
		}
		svc := httptest.NewServer(mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := middleware.FromContext(r.Context())
			if !ok {
				http.Error(w, "no claims", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"sub":"` + c.Subject + `","user":"` + c.Username + `"}`))
		})))
		t.Cleanup(svc.Close)
		return svc
	}
	svc := newService()
	get := func(base, tok string) *response {
		req, err := http.NewRequest(http.MethodGet, base+"/hello", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return do(t, req)
	}

	lr := gwToken(t, ts, gwRealm, "carol", carolPW4, "scope", "openid email")
	tok := lr.str("access_token")
	r := get(svc.URL, tok)
	if r.Status != 200 || r.str("user") != "carol" || r.str("sub") != claims(t, tok)["sub"] {
		t.Fatalf("real token: %d %s", r.Status, r.Body)
	}
	if r := get(svc.URL, ""); r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="gw"` {
		t.Errorf("no token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	other := gwToken(t, ts, gwSubRealm, "carol", carolPW4).str("access_token")
	if r := get(svc.URL, other); r.Status != 401 {
		t.Errorf("token of another realm: %d %s", r.Status, r.Body)
	}
	// An ID token is not a bearer token.
	if r := get(svc.URL, lr.str("id_token")); r.Status != 401 {
		t.Errorf("ID token: %d %s", r.Status, r.Body)
	}
	// Scopes come from the token's scope claim.
	if r := get(newService("email").URL, tok); r.Status != 200 {
		t.Errorf("scope email held: %d %s", r.Status, r.Body)
	}
	if r := get(newService("risks:write").URL, tok); r.Status != 403 || r.str("error") != "insufficient_scope" {
		t.Errorf("scope risks:write missing: %d %s", r.Status, r.Body)
	}

	out := postForm(t, ts.oidc(gwRealm, "logout"), url.Values{"client_id": {"app"}, "refresh_token": {lr.str("refresh_token")}})
	if out.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", out.Status, out.Body)
	}
	start := time.Now()
	for {
		r := get(svc.URL, tok)
		if r.Status == 401 {
			if r.str("error") != "invalid_token" {
				t.Errorf("after logout: %s", r.Body)
			}
			break
		}
		if r.Status != 200 {
			t.Fatalf("after logout: %d %s", r.Status, r.Body)
		}
		if time.Since(start) > 1500*time.Millisecond {
			t.Fatalf("token still accepted %v after logout", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("refused %v after logout", time.Since(start).Round(time.Millisecond))
	// A token the service has never seen is introspected at once.
	lr2 := gwToken(t, ts, gwRealm, "carol", carolPW4)
	_ = postForm(t, ts.oidc(gwRealm, "logout"), url.Values{"client_id": {"app"}, "refresh_token": {lr2.str("refresh_token")}})
	if r := get(svc.URL, lr2.str("access_token")); r.Status != 401 {
		t.Errorf("fresh token of an ended session: %d %s", r.Status, r.Body)
	}
}
