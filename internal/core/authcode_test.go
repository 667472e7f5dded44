package core_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/coretest"
)

func TestRedirectURIAllowed(t *testing.T) {
	reg := []string{"https://app.example/callback", "https://spa.example/*", "http://localhost:3000/cb*", "com.example.app:/oauth", "/relative/*"}
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"https://app.example/callback", true},
		{"https://app.example/callback?x=1", false},  // exact entries match exactly
		{"https://app.example/callback/", false},     // no prefix without "*"
		{"https://APP.example/callback", false},      // string equality, as Keycloak
		{"https://app.example/callback#frag", false}, // RFC 6749 §3.1.2
		{"https://spa.example/", true},
		{"https://spa.example/deep/path?q=1", true},
		{"https://spa.example", false}, // the pattern's prefix includes the slash
		{"https://spa.example.evil.example/", false},
		{"https://spa.example/../evil", false},
		{"https://spa.example/a/%2e%2e/b", false},
		{"https://spa.example/a%2fb", false},
		{"https://user@spa.example/", false},
		{"http://localhost:3000/cb", true},
		{"http://localhost:3000/cb/more", true},
		{"http://localhost:3001/cb", false},
		{"com.example.app:/oauth", true},
		{"/relative/x", false}, // relative patterns match nothing
		{"", false},
		{"https://spa.example/a b", false},
	} {
		if got := core.RedirectURIAllowed(reg, tc.uri); got != tc.want {
			t.Errorf("RedirectURIAllowed(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
	if !core.RedirectURIAllowed([]string{"*"}, "https://anywhere.example/x") {
		t.Errorf(`"*" (Keycloak's allow-all) refused an absolute URI`)
	}
}

const codeRealm = `{
  "realm": "cf", "enabled": true,
  "roles": {"realm": [{"name": "offline_access"}]},
  "defaultRoles": ["offline_access"],
  "clients": [
    {"clientId": "spa", "publicClient": true, "redirectUris": ["https://spa.example/*"],
     "webOrigins": ["+", "https://extra.example"]},
    {"clientId": "s256", "publicClient": true, "redirectUris": ["https://spa.example/cb"],
     "attributes": {"pkce.code.challenge.method": "S256"}},
    {"clientId": "any", "publicClient": true, "redirectUris": ["https://any.example/cb"], "webOrigins": ["*"]},
    {"clientId": "none", "publicClient": true, "redirectUris": ["https://none.example/cb"]}
  ],
  "users": [{"username": "u1", "enabled": true, "credentials": [{"type": "password", "value": "pw-1"}]}]
}`

// clock is a settable clock for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestAuthorizationCodeGrant(t *testing.T) {
	clk := &clock{t: time.Now()}
	svc := coretest.New(t, codeRealm, coretest.WithClock(clk.now))
	ctx := context.Background()
	authorize := func(req core.AuthRequest) *core.Authorization {
		t.Helper()
		req.Realm, req.ResponseType = "cf", "code"
		a, e, _ := svc.Authorize(ctx, req)
		if e != nil {
			t.Fatalf("Authorize: %v", e)
		}
		return a
	}
	login := func(a *core.Authorization) *core.CodeGrant {
		t.Helper()
		g, e := svc.LoginWithPassword(ctx, a, "u1", "pw-1", "192.0.2.1", "test")
		if e != nil {
			t.Fatalf("LoginWithPassword: %v", e)
		}
		return g
	}
	exchange := func(client, code, redirect, verifier string) (*core.TokenResponse, error) {
		return svc.Token(ctx, core.TokenRequest{Realm: "cf", GrantType: core.GrantAuthorizationCode,
			Client: core.ClientAuth{ClientID: client}, Code: code, RedirectURI: redirect, CodeVerifier: verifier})
	}
	wantCode := func(err error, code, what string) {
		t.Helper()
		ce, ok := err.(*core.Error)
		if !ok || ce.Code != code {
			t.Errorf("%s: %v, want %s", what, err, code)
		}
	}

	a := authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", Scope: "openid",
		Nonce: "n-1", CodeChallenge: rfcChallenge, CodeChallengeMethod: "S256"})
	g := login(a)
	if g.SSOSession != g.SessionState || g.SessionState == "" {
		t.Errorf("code grant %+v", g)
	}
	clk.add(59 * time.Second) // within Keycloak's 60 s
	_, err := exchange("spa", g.Code, "https://spa.example/cb", rfcVerifier[:42]+"x")
	wantCode(err, core.InvalidGrant, "wrong verifier")
	resp, err := exchange("spa", g.Code, "https://spa.example/cb", rfcVerifier)
	if err != nil {
		t.Fatalf("exchange with RFC 7636's verifier: %v", err)
	}
	if c := payload(t, resp.IDToken); c["nonce"] != "n-1" || c["at_hash"] == nil || c["sid"] != g.SessionState {
		t.Errorf("ID token claims %v", c)
	}
	// Keycloak resolves "+" in the access token's allowed-origins.
	if ao := fmt.Sprint(payload(t, resp.AccessToken)["allowed-origins"]); ao != "[https://spa.example https://extra.example]" {
		t.Errorf("allowed-origins %s", ao)
	}

	t.Run("expiry", func(t *testing.T) {
		g := login(authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", CodeChallenge: rfcChallenge, CodeChallengeMethod: "S256"}))
		clk.add(60 * time.Second)
		_, err := exchange("spa", g.Code, "https://spa.example/cb", rfcVerifier)
		wantCode(err, core.InvalidGrant, "code 60 s old")
	})

	t.Run("plain and downgrade", func(t *testing.T) {
		plain := rfcVerifier
		g := login(authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", CodeChallenge: plain}))
		if _, err := exchange("spa", g.Code, "https://spa.example/cb", plain); err != nil {
			t.Errorf("plain (the default method): %v", err)
		}
		g = login(authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb"}))
		_, err := exchange("spa", g.Code, "https://spa.example/cb", rfcVerifier)
		wantCode(err, core.InvalidGrant, "verifier for a code without challenge")
		if _, err := exchange("spa", g.Code, "https://spa.example/cb", ""); err != nil {
			t.Errorf("no PKCE where the client does not require it: %v", err)
		}
	})

	t.Run("client requires S256", func(t *testing.T) {
		for _, req := range []core.AuthRequest{
			{ClientID: "s256", RedirectURI: "https://spa.example/cb"},
			{ClientID: "s256", RedirectURI: "https://spa.example/cb", CodeChallenge: rfcVerifier},
			{ClientID: "s256", RedirectURI: "https://spa.example/cb", CodeChallenge: rfcVerifier, CodeChallengeMethod: "plain"},
			{ClientID: "s256", RedirectURI: "https://spa.example/cb", CodeChallenge: "short", CodeChallengeMethod: "S256"},
		} {
			req.Realm, req.ResponseType = "cf", "code"
			_, e, redirect := svc.Authorize(ctx, req)
			if e == nil || e.Code != core.InvalidRequest || !redirect {
				t.Errorf("%+v: %v (redirect %v)", req, e, redirect)
			}
		}
	})

	t.Run("unregistered redirect is not redirectable", func(t *testing.T) {
		_, e, redirect := svc.Authorize(ctx, core.AuthRequest{Realm: "cf", ClientID: "spa", ResponseType: "code", RedirectURI: "https://evil.example/"})
		if e == nil || redirect {
			t.Errorf("unregistered redirect_uri: %v, redirect %v", e, redirect)
		}
	})

	t.Run("single sign-on", func(t *testing.T) {
		a := authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", Scope: "openid"})
		g := login(a)
		same, e := svc.LoginWithSession(ctx, a, g.SSOSession, g.UserID, "", "")
		if e != nil || same.SessionState != g.SessionState {
			t.Fatalf("SSO for the same client and scopes: %+v %v", same, e)
		}
		b := authorize(core.AuthRequest{ClientID: "any", RedirectURI: "https://any.example/cb", Scope: "openid"})
		other, e := svc.LoginWithSession(ctx, b, g.SSOSession, g.UserID, "", "")
		if e != nil || other.SessionState == g.SessionState || other.SSOSession != g.SSOSession {
			t.Fatalf("SSO for another client: %+v %v", other, e)
		}
		if _, e := svc.LoginWithSession(ctx, a, g.SSOSession, "someone-else", "", ""); e != core.ErrLoginRequired {
			t.Errorf("SSO cookie of another user: %v", e)
		}
		clk.add(10 * time.Second)
		old := authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", Scope: "openid", MaxAge: "5"})
		if _, e := svc.LoginWithSession(ctx, old, g.SSOSession, g.UserID, "", ""); e != core.ErrLoginRequired {
			t.Errorf("SSO older than max_age: %v", e)
		}
		if !authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", MaxAge: "0"}).PromptLogin {
			t.Errorf("max_age=0 does not force a login")
		}
	})

	t.Run("logout ends the login with every session single sign-on joined to it", func(t *testing.T) {
		refresh := func(client, rt string) error {
			_, err := svc.Token(ctx, core.TokenRequest{Realm: "cf", GrantType: core.GrantRefreshToken,
				Client: core.ClientAuth{ClientID: client}, RefreshToken: rt})
			return err
		}
		logout := func(client, rt string) error {
			return svc.Logout(ctx, "cf", core.ClientAuth{ClientID: client}, rt, "")
		}
		// One browser login for spa; any joins it through the SSO cookie,
		// and so does an offline session for any.
		family := func() (spa, any, offline *core.TokenResponse, sso string) {
			t.Helper()
			g := login(authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", Scope: "openid"}))
			spa, err := exchange("spa", g.Code, "https://spa.example/cb", "")
			if err != nil {
				t.Fatal(err)
			}
			joined := func(scope string) *core.TokenResponse {
				t.Helper()
				o, e := svc.LoginWithSession(ctx, authorize(core.AuthRequest{ClientID: "any", RedirectURI: "https://any.example/cb", Scope: scope}), g.SSOSession, g.UserID, "", "")
				if e != nil {
					t.Fatal(e)
				}
				resp, err := exchange("any", o.Code, "https://any.example/cb", "")
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			return spa, joined("openid"), joined("openid offline_access"), g.SSOSession
		}

		// Logging out the client that joined ends the browser's login too.
		spa, any, offline, sso := family()
		if err := logout("any", any.RefreshToken); err != nil {
			t.Fatalf("logout: %v", err)
		}
		wantCode(refresh("any", any.RefreshToken), core.InvalidGrant, "refresh after logout")
		wantCode(refresh("spa", spa.RefreshToken), core.InvalidGrant, "refresh of the login single sign-on joined")
		if _, e := svc.LoginWithSession(ctx, authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", Scope: "openid"}), sso, "", "", ""); e != core.ErrLoginRequired {
			t.Errorf("single sign-on after logout: %v", e)
		}
		if err := refresh("any", offline.RefreshToken); err != nil {
			t.Errorf("the offline session ended with the login: %v", err)
		}

		// Logging out the browser's login ends the clients that joined it.
		spa, any, offline, _ = family()
		if err := logout("spa", spa.RefreshToken); err != nil {
			t.Fatalf("logout: %v", err)
		}
		wantCode(refresh("any", any.RefreshToken), core.InvalidGrant, "refresh of a client that joined the login")
		if err := refresh("any", offline.RefreshToken); err != nil {
			t.Errorf("the offline session ended with the login: %v", err)
		}
		// A second logout with the same token finds nothing to end.
		wantCode(logout("spa", spa.RefreshToken), core.InvalidGrant, "second logout")

		// Logging out the offline session ends it alone.
		spa, _, offline, _ = family()
		if err := logout("any", offline.RefreshToken); err != nil {
			t.Fatalf("offline logout: %v", err)
		}
		if err := refresh("spa", spa.RefreshToken); err != nil {
			t.Errorf("the login ended with an offline session: %v", err)
		}
	})

	t.Run("an expired ID token still names the login to log out", func(t *testing.T) {
		g := login(authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", Scope: "openid"}))
		resp, err := exchange("spa", g.Code, "https://spa.example/cb", "")
		if err != nil {
			t.Fatal(err)
		}
		clk.add(24 * time.Hour)
		h, e := svc.ParseLogoutHint(ctx, "cf", resp.IDToken)
		if e != nil || h.SessionID != g.SessionState || h.ClientID != "spa" {
			t.Fatalf("hint %+v, %v", h, e)
		}
		if _, e := svc.ParseLogoutHint(ctx, "cf", resp.AccessToken); e == nil {
			t.Errorf("an access token accepted as id_token_hint")
		}
		// spa registered no post.logout.redirect.uris: none is allowed,
		// not even one of its redirect URIs.
		if svc.PostLogoutRedirectAllowed(ctx, "cf", "spa", "https://spa.example/cb") {
			t.Errorf("post-logout redirect allowed without post.logout.redirect.uris")
		}
	})

	t.Run("offline login starts no browser session", func(t *testing.T) {
		g := login(authorize(core.AuthRequest{ClientID: "spa", RedirectURI: "https://spa.example/cb", Scope: "openid offline_access"}))
		if g.SSOSession != "" {
			t.Errorf("offline session offered as SSO session")
		}
		resp, err := exchange("spa", g.Code, "https://spa.example/cb", "")
		if err != nil {
			t.Fatal(err)
		}
		if payload(t, resp.RefreshToken)["typ"] != "Offline" {
			t.Errorf("refresh token type %v", payload(t, resp.RefreshToken)["typ"])
		}
	})
}

func TestWebOrigins(t *testing.T) {
	svc := coretest.New(t, codeRealm)
	ctx := context.Background()
	for _, tc := range []struct {
		client, origin string
		want           bool
	}{
		{"spa", "https://spa.example", true},   // "+"
		{"spa", "https://extra.example", true}, // listed
		{"spa", "https://spa.example:8443", false},
		{"spa", "https://evil.example", false},
		{"any", "https://evil.example", true}, // "*"
		{"none", "https://none.example", false},
		{"nobody", "https://spa.example", false},
		{"spa", "", false},
	} {
		if got := svc.WebOriginAllowed(ctx, "cf", tc.client, tc.origin); got != tc.want {
			t.Errorf("WebOriginAllowed(%s, %q) = %v, want %v", tc.client, tc.origin, got, tc.want)
		}
	}
	origins, anyOrigin, err := svc.RealmWebOrigins(ctx, "cf")
	if err != nil || !anyOrigin || !origins["https://spa.example"] || !origins["https://extra.example"] || origins["https://none.example"] {
		t.Errorf("RealmWebOrigins: %v %v %v", origins, anyOrigin, err)
	}
}
