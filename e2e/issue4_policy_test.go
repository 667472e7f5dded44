package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestIssue4Policy: operations are private unless public, a token must be
// the realm's, unexpired and still active, and must hold every listed scope
// (from its roles, default role included) and the audience when one is set.
func TestIssue4Policy(t *testing.T) {
	t.Parallel()
	env := startGateway(t)
	ts := env.ts
	alice, bob, carol := gwUsersTokens(t, ts)

	t.Run("private by default", func(t *testing.T) {
		r := gwReq(t, ts, "GET", "/me", "")
		if r.Status != 401 || r.str("error") != "invalid_token" {
			t.Fatalf("GET /me without token: %d %s", r.Status, r.Body)
		}
		want200(t, "GET /me as carol", gwReq(t, ts, "GET", "/me", carol))
	})
	t.Run("public", func(t *testing.T) {
		r := gwReq(t, ts, "GET", "/docs/intro?x=1", "")
		want200(t, "public GET /docs/intro", r)
		if r.str("path") != "/docs/intro" || r.str("query") != "x=1" {
			t.Errorf("upstream got %s?%s", r.str("path"), r.str("query"))
		}
		// /docs/../me is the private /me, never the public /docs/*.
		req, _ := http.NewRequest("GET", ts.URL+"/docs/%2e%2e/me", nil)
		if r := do(t, req); r.Status != 401 {
			t.Errorf("GET /docs/%%2e%%2e/me without token: %d %s, want 401", r.Status, r.Body)
		}
	})
	t.Run("token of another realm", func(t *testing.T) {
		other := gwToken(t, ts, gwSubRealm, "alice", alicePW4).str("access_token")
		r := gwReq(t, ts, "GET", "/me", other)
		wantChallenge(t, "token of realm gwsub at gw", r, "gw")
	})
	t.Run("garbage token", func(t *testing.T) {
		wantChallenge(t, "garbage", gwReq(t, ts, "GET", "/me", "not.a.jwt"), "gw")
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		tok := mustLogin(t, ts, gwRealm, "short", "carol", carolPW4).str("access_token")
		want200(t, "fresh 1-second token", gwReq(t, ts, "GET", "/me", tok))
		exp := time.Unix(int64(num(claims(t, tok), "exp")), 0)
		time.Sleep(time.Until(exp) + 50*time.Millisecond)
		r := gwReq(t, ts, "GET", "/me", tok)
		wantChallenge(t, "expired token", r, "gw")
		if !strings.Contains(r.str("error_description"), "expired") {
			t.Errorf("expired: description %q", r.str("error_description"))
		}
	})
	t.Run("logout", func(t *testing.T) {
		lr := gwToken(t, ts, gwRealm, "carol", carolPW4)
		tok := lr.str("access_token")
		want200(t, "before logout", gwReq(t, ts, "GET", "/me", tok))
		out := postForm(t, ts.oidc(gwRealm, "logout"), url.Values{"client_id": {"app"}, "refresh_token": {lr.str("refresh_token")}})
		if out.Status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", out.Status, out.Body)
		}
		start := time.Now()
		r := gwReq(t, ts, "GET", "/me", tok)
		if d := time.Since(start); d > time.Second {
			t.Errorf("first request after logout took %v", d)
		}
		wantChallenge(t, "the very next request after logout", r, "gw")
	})
	t.Run("revocation", func(t *testing.T) {
		tok := gwToken(t, ts, gwRealm, "carol", carolPW4).str("access_token")
		want200(t, "before revocation", gwReq(t, ts, "GET", "/me", tok))
		rv := postForm(t, ts.oidc(gwRealm, "revoke"), url.Values{"client_id": {"app"}, "token": {tok}, "token_type_hint": {"access_token"}})
		if rv.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", rv.Status, rv.Body)
		}
		r := gwReq(t, ts, "GET", "/me", tok)
		wantChallenge(t, "the very next request after revocation", r, "gw")
		// The other tokens of the user are untouched.
		want200(t, "another token of the same user", gwReq(t, ts, "GET", "/me", carol))
	})
	t.Run("scopes from roles", func(t *testing.T) {
		// bob is a consumer: risks:read; alice an editor, which is
		// composite of consumer: risks:read and risks:write.
		want200(t, "bob GET /risks", gwReq(t, ts, "GET", "/risks", bob))
		want200(t, "alice POST /risks", gwReq(t, ts, "POST", "/risks", alice, "UserID: "+aliceAcme))
		wantScope(t, "bob POST /risks", gwReq(t, ts, "POST", "/risks", bob), "risks:write")
		wantScope(t, "carol GET /risks", gwReq(t, ts, "GET", "/risks", carol), "risks:read")
		r := gwReq(t, ts, "GET", "/risks/42", bob)
		want200(t, "bob GET /risks/42", r)
		if r.str("path") != "/v1/risks/42" {
			t.Errorf("upstream path %q, want /v1/risks/42", r.str("path"))
		}
		if got := strings.Fields(r.seen("X-Gatehouse-Scopes")); !slices.Contains(got, "risks:read") || slices.Contains(got, "risks:write") {
			t.Errorf("bob's scopes at the upstream: %v", got)
		}
	})
	t.Run("default role grants a scope to every user", func(t *testing.T) {
		for _, tok := range []string{alice, carol} {
			r := gwReq(t, ts, "GET", "/default", tok, "UserID: "+aliceAcme)
			if tok == carol {
				r = gwReq(t, ts, "GET", "/default", tok)
			}
			want200(t, "GET /default (scope docs:read from the default role)", r)
		}
		// A user created after the import gets it too.
		created := createUser(t, ts, gwRealm, "dave", "dave-pw-4")
		dave := gwToken(t, ts, gwRealm, created, "dave-pw-4").str("access_token")
		r := gwReq(t, ts, "GET", "/default", dave)
		want200(t, "new user GET /default", r)
		if !slices.Contains(strings.Split(r.seen("X-Gatehouse-Roles"), ","), "reader") {
			t.Errorf("new user's roles: %q", r.seen("X-Gatehouse-Roles"))
		}
	})
	t.Run("audience", func(t *testing.T) {
		// gwaud wants aud risks-api: alice holds a risks-api role (so
		// the audience mapper puts it in aud), carol does not.
		a := gwToken(t, ts, gwAudRealm, "alice", alicePW4).str("access_token")
		c := gwToken(t, ts, gwAudRealm, "carol", carolPW4).str("access_token")
		host := "Host: aud.example.test"
		want200(t, "alice with aud risks-api", gwReq(t, ts, "GET", "/me", a, host, "UserID: "+aliceAcme))
		r := gwReq(t, ts, "GET", "/me", c, host)
		wantChallenge(t, "carol without the audience", r, gwAudRealm)
		if !strings.Contains(r.str("error_description"), "audience") {
			t.Errorf("audience refusal: %q", r.str("error_description"))
		}
		// The same token is fine in gw, which wants no audience.
		c2 := gwToken(t, ts, gwRealm, "carol", carolPW4).str("access_token")
		want200(t, "carol in gw", gwReq(t, ts, "GET", "/me", c2))
	})
}

// TestIssue4UpstreamSees: the identity headers, never the client's own
// versions of them, and Authorization only where the operation asks.
func TestIssue4UpstreamSees(t *testing.T) {
	t.Parallel()
	env := startGateway(t)
	ts := env.ts
	lr := gwToken(t, ts, gwRealm, "alice", alicePW4)
	tok := lr.str("access_token")
	c := claims(t, tok)
	spoof := []string{
		"UserID: " + aliceGlobex,
		"X-Gatehouse-Subject: evil",
		"x-gatehouse-roles: admin",
		"X_Gatehouse_Organization: evil-org",
		"X-GATEHOUSE-SCOPES: risks:admin",
		"Connection: X-Gatehouse-Subject, X-Gatehouse-Membership",
	}
	r := gwReq(t, ts, "GET", "/me", tok, spoof...)
	want200(t, "GET /me", r)
	want := map[string]string{
		"X-Gatehouse-Subject":            c["sub"].(string),
		"X-Gatehouse-Username":           "alice",
		"X-Gatehouse-Client":             "app",
		"X-Gatehouse-Organization":       globexID,
		"X-Gatehouse-Organization-Alias": "globex",
		"X-Gatehouse-Membership":         aliceGlobex,
		"X-Gatehouse-Session":            c["sid"].(string),
	}
	for k, v := range want {
		if got := r.seen(k); got != v {
			t.Errorf("upstream %s = %q, want %q", k, got, v)
		}
	}
	roles := strings.Split(r.seen("X-Gatehouse-Roles"), ",")
	for _, role := range []string{"editor", "consumer", "reader", "offline_access"} {
		if !slices.Contains(roles, role) {
			t.Errorf("roles %v lack %s", roles, role)
		}
	}
	if slices.Contains(roles, "admin") {
		t.Errorf("spoofed role reached the upstream: %v", roles)
	}
	scopes := strings.Fields(r.seen("X-Gatehouse-Scopes"))
	for _, s := range []string{"risks:read", "risks:write", "docs:read"} {
		if !slices.Contains(scopes, s) {
			t.Errorf("scopes %v lack %s", scopes, s)
		}
	}
	if slices.Contains(scopes, "risks:admin") {
		t.Errorf("spoofed scope reached the upstream: %v", scopes)
	}
	for _, h := range r.seenHeaders() {
		l := strings.ToLower(h)
		if strings.HasPrefix(l, "x_gatehouse") {
			t.Errorf("underscore spelling %s reached the upstream", h)
		}
		if l == "authorization" {
			t.Errorf("Authorization forwarded to an operation without forwardAuthorization")
		}
	}
	if r.seen("X-Forwarded-Host") == "" || r.seen("X-Forwarded-For") == "" {
		t.Errorf("X-Forwarded-* missing: %v", r.seenHeaders())
	}

	// forwardAuthorization passes the bearer on.
	r = gwReq(t, ts, "GET", "/legacy", tok, "UserID: "+aliceAcme)
	want200(t, "GET /legacy", r)
	if r.seen("Authorization") != "Bearer "+tok {
		t.Errorf("/legacy: Authorization not forwarded")
	}

	// Public operations get no identity, spoofed or real.
	r = gwReq(t, ts, "GET", "/docs/a", tok, spoof...)
	want200(t, "GET /docs/a", r)
	for _, h := range r.seenHeaders() {
		if l := strings.ToLower(h); strings.HasPrefix(l, "x-gatehouse") || strings.HasPrefix(l, "x_gatehouse") || l == "authorization" {
			t.Errorf("public operation: upstream got %s", h)
		}
	}
}

// TestIssue4Errors: RFC 6750 challenges, 404 for what is not an
// operation, and short JSON for upstream failures.
func TestIssue4Errors(t *testing.T) {
	t.Parallel()
	env := startGateway(t)
	ts := env.ts
	bob := gwToken(t, ts, gwRealm, "bob", bobPW4).str("access_token")

	r := gwReq(t, ts, "GET", "/me", "")
	if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="gw"` {
		t.Errorf("no token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest("GET", ts.URL+"/me", nil)
	req.SetBasicAuth("bob", bobPW4)
	if r := do(t, req); r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="gw"` {
		t.Errorf("Basic credentials: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	// The scheme is case-insensitive.
	req, _ = http.NewRequest("GET", ts.URL+"/me", nil)
	req.Header.Set("Authorization", "bEaReR "+bob)
	if r := do(t, req); r.Status != 200 {
		t.Errorf("lower-case scheme: %d %s", r.Status, r.Body)
	}
	// Never from the query string.
	if r := gwReq(t, ts, "GET", "/me?access_token="+bob, ""); r.Status != 401 {
		t.Errorf("token in query: %d", r.Status)
	}
	wantChallenge(t, "bad token", gwReq(t, ts, "GET", "/me", "eyJhbGciOiJub25lIn0.e30."), "gw")

	wantScope(t, "bob POST /risks", gwReq(t, ts, "POST", "/risks", bob), "risks:write")

	r = gwReq(t, ts, "GET", "/nothing/here", bob)
	if r.Status != 404 || r.str("error") != "not_found" {
		t.Errorf("unknown route: %d %s", r.Status, r.Body)
	}
	r = gwReq(t, ts, "DELETE", "/risks", bob)
	if r.Status != 404 {
		t.Errorf("DELETE /risks (no such operation): %d %s", r.Status, r.Body)
	}

	r = gwReq(t, ts, "GET", "/down", bob)
	wantShortJSON(t, "upstream down", r, http.StatusBadGateway, "bad_gateway")
	start := time.Now()
	r = gwReq(t, ts, "GET", "/slow", bob)
	wantShortJSON(t, "upstream slow", r, http.StatusGatewayTimeout, "gateway_timeout")
	if d := time.Since(start); d < 900*time.Millisecond || d > 2500*time.Millisecond {
		t.Errorf("504 after %v, want about the operation's 1 s", d)
	}
}

// wantChallenge checks an RFC 6750 invalid_token answer.
func wantChallenge(t *testing.T, what string, r *response, realm string) {
	t.Helper()
	if r.Status != http.StatusUnauthorized || r.str("error") != "invalid_token" {
		t.Errorf("%s: got %d %s, want 401 invalid_token", what, r.Status, r.Body)
		return
	}
	wa := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(wa, `Bearer realm="`+realm+`", error="invalid_token", error_description="`) {
		t.Errorf("%s: WWW-Authenticate %q", what, wa)
	}
	if r.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: headers %v", what, r.Header)
	}
}

// wantScope checks an RFC 6750 insufficient_scope answer naming scope.
func wantScope(t *testing.T, what string, r *response, scope string) {
	t.Helper()
	if r.Status != http.StatusForbidden || r.str("error") != "insufficient_scope" {
		t.Errorf("%s: got %d %s, want 403 insufficient_scope", what, r.Status, r.Body)
		return
	}
	if wa := r.Header.Get("WWW-Authenticate"); wa != `Bearer error="insufficient_scope", scope="`+scope+`"` {
		t.Errorf("%s: WWW-Authenticate %q", what, wa)
	}
	if !strings.Contains(r.str("error_description"), scope) {
		t.Errorf("%s: description %q does not name %s", what, r.str("error_description"), scope)
	}
}

// wantShortJSON checks a gateway error of its own: status, code, JSON,
// and a body short enough to leak nothing about the upstream.
func wantShortJSON(t *testing.T, what string, r *response, status int, code string) {
	t.Helper()
	if r.Status != status || r.str("error") != code {
		t.Errorf("%s: got %d %s, want %d %s", what, r.Status, r.Body, status, code)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || len(r.Body) > 200 {
		t.Errorf("%s: %q %q", what, r.Header.Get("Content-Type"), r.Body)
	}
	if strings.Contains(string(r.Body), "127.0.0.1") {
		t.Errorf("%s: body names the upstream: %s", what, r.Body)
	}
}
