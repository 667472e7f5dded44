package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIssue2RefreshAndLogout: a refresh gives new tokens for the same
// session; logout ends it, after which its refresh token and access token
// are dead.
func TestIssue2RefreshAndLogout(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	tok := ts.oidc(shopRealm, "token")

	for _, tc := range []struct {
		name   string
		client []string // client authentication form fields
	}{
		{"public", []string{"client_id", "shop-web"}},
		{"confidential", []string{"client_id", "shop-backend", "client_secret", shopBackendSecret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			login := postForm(t, tok, form(append([]string{"grant_type", "password", "username", "alice", "password", alicePassword}, tc.client...)...))
			if login.Status != 200 {
				t.Fatalf("login %d %s", login.Status, login.Body)
			}
			rc := claims(t, login.str("refresh_token"))
			time.Sleep(1100 * time.Millisecond) // so that the refresh is in a later second
			ref := postForm(t, tok, form(append([]string{"grant_type", "refresh_token", "refresh_token", login.str("refresh_token")}, tc.client...)...))
			if ref.Status != 200 {
				t.Fatalf("refresh %d %s", ref.Status, ref.Body)
			}
			if ref.str("session_state") != login.str("session_state") {
				t.Errorf("refresh changed the session: %q vs %q", ref.str("session_state"), login.str("session_state"))
			}
			if ref.str("access_token") == login.str("access_token") {
				t.Errorf("refresh returned the same access token")
			}
			// The session's idle expiry moved on with the refresh.
			rc2 := claims(t, ref.str("refresh_token"))
			if num(rc2, "exp") <= num(rc, "exp") {
				t.Errorf("refresh did not extend the session: exp %v then %v", rc["exp"], rc2["exp"])
			}
			if rc2["typ"] != "Refresh" {
				t.Errorf("refresh token typ %v", rc2["typ"])
			}
			at := ref.str("access_token")

			// Logout needs the client's credentials like any other call.
			lo := postForm(t, ts.oidc(shopRealm, "logout"), form(append([]string{"refresh_token", ref.str("refresh_token")}, tc.client...)...))
			if lo.Status != http.StatusNoContent {
				t.Fatalf("logout %d %s", lo.Status, lo.Body)
			}
			again := postForm(t, tok, form(append([]string{"grant_type", "refresh_token", "refresh_token", ref.str("refresh_token")}, tc.client...)...))
			wantError(t, "refresh after logout", again, 400, "invalid_grant")
			in := postForm(t, ts.oidc(shopRealm, "token/introspect"), form("token", at), basicAuth("shop-backend", shopBackendSecret))
			if in.Status != 200 || in.JSON["active"] != false || len(in.JSON) != 1 {
				t.Errorf("introspection after logout: %d %s", in.Status, in.Body)
			}
			ui := do(t, bearerReq(t, http.MethodGet, ts.oidc(shopRealm, "userinfo"), at))
			if ui.Status != 401 {
				t.Errorf("userinfo after logout: %d %s", ui.Status, ui.Body)
			}
		})
	}

	// A confidential client's logout without its secret is refused and
	// leaves the session alone.
	login := postForm(t, tok, form("grant_type", "password", "client_id", "shop-backend", "client_secret", shopBackendSecret, "username", "alice", "password", alicePassword))
	lo := postForm(t, ts.oidc(shopRealm, "logout"), form("client_id", "shop-backend", "refresh_token", login.str("refresh_token")))
	wantError(t, "logout without secret", lo, 401, "invalid_client")
	ref := postForm(t, tok, form("grant_type", "refresh_token", "client_id", "shop-backend", "client_secret", shopBackendSecret, "refresh_token", login.str("refresh_token")))
	if ref.Status != 200 {
		t.Errorf("refresh after refused logout: %d %s", ref.Status, ref.Body)
	}
	// Another client's refresh token does not refresh.
	pub := passwordGrant(t, ts, shopRealm, "shop-web", "alice", alicePassword)
	cross := postForm(t, tok, form("grant_type", "refresh_token", "client_id", "shop-backend", "client_secret", shopBackendSecret, "refresh_token", pub.str("refresh_token")))
	wantError(t, "cross-client refresh", cross, 400, "invalid_grant")
}

// TestIssue2IdleTimeout: a session not refreshed within
// ssoSessionIdleTimeout (2 s in the realm file) ends.
func TestIssue2IdleTimeout(t *testing.T) {
	ts := startServer(t, []string{"issue2-idle.json"})
	login := passwordGrant(t, ts, "brief", "brief-app", "idler", "idler-pw-1")
	if num(login.JSON, "refresh_expires_in") != 2 {
		t.Errorf("refresh_expires_in %v, want 2", login.JSON["refresh_expires_in"])
	}
	time.Sleep(3 * time.Second)
	r := postForm(t, ts.oidc("brief", "token"), form("grant_type", "refresh_token", "client_id", "brief-app", "refresh_token", login.str("refresh_token")))
	wantError(t, "refresh after idle timeout", r, 400, "invalid_grant")
}

// TestIssue2DiscoveryUserinfoIntrospectRevoke covers the other OIDC
// endpoints.
func TestIssue2DiscoveryUserinfoIntrospectRevoke(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	iss := ts.URL + "/realms/" + shopRealm
	for _, prefix := range []string{"", "/auth"} {
		d := do(t, mustReq(t, http.MethodGet, ts.URL+prefix+"/realms/shop/.well-known/openid-configuration", nil))
		if d.Status != 200 {
			t.Fatalf("discovery %d", d.Status)
		}
		want := map[string]string{
			"issuer":                 iss,
			"token_endpoint":         iss + "/protocol/openid-connect/token",
			"jwks_uri":               iss + "/protocol/openid-connect/certs",
			"userinfo_endpoint":      iss + "/protocol/openid-connect/userinfo",
			"introspection_endpoint": iss + "/protocol/openid-connect/token/introspect",
			"revocation_endpoint":    iss + "/protocol/openid-connect/revoke",
			"end_session_endpoint":   iss + "/protocol/openid-connect/logout",
		}
		for k, v := range want {
			if d.str(k) != v {
				t.Errorf("discovery %s = %q, want %q", k, d.str(k), v)
			}
		}
	}
	// The issuer comes from the configured public URL, not from Host.
	req := mustReq(t, http.MethodGet, ts.URL+"/realms/shop/.well-known/openid-configuration", nil)
	req.Host = "evil.example"
	if d := do(t, req); d.str("issuer") != iss {
		t.Errorf("issuer follows Host header: %q", d.str("issuer"))
	}

	login := passwordGrant(t, ts, shopRealm, "shop-web", "alice", alicePassword, "scope", "openid")
	at := login.str("access_token")

	// userinfo, GET and POST, Bearer.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		ui := do(t, bearerReq(t, method, ts.oidc(shopRealm, "userinfo"), at))
		if ui.Status != 200 || ui.str("sub") != claims(t, at)["sub"] || ui.str("preferred_username") != "alice" || ui.str("email") != "alice@shop.example" {
			t.Errorf("userinfo %s: %d %s", method, ui.Status, ui.Body)
		}
	}
	ui := do(t, mustReq(t, http.MethodGet, ts.oidc(shopRealm, "userinfo"), nil))
	if ui.Status != 401 || !strings.HasPrefix(ui.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("userinfo without token: %d %q", ui.Status, ui.Header.Get("WWW-Authenticate"))
	}
	ui = do(t, bearerReq(t, http.MethodGet, ts.oidc(shopRealm, "userinfo"), at+"x"))
	if ui.Status != 401 {
		t.Errorf("userinfo with a bad token: %d", ui.Status)
	}

	// Introspection: client-authenticated; a public client is refused.
	intro := ts.oidc(shopRealm, "token/introspect")
	in := postForm(t, intro, form("token", at), basicAuth("shop-backend", shopBackendSecret))
	if in.Status != 200 || in.JSON["active"] != true || in.str("sub") != claims(t, at)["sub"] || in.str("client_id") != "shop-web" || in.str("username") != "alice" {
		t.Errorf("introspect active: %d %s", in.Status, in.Body)
	}
	in = postForm(t, intro, form("token", at, "client_id", "shop-backend", "client_secret", shopBackendSecret))
	if in.JSON["active"] != true {
		t.Errorf("introspect with form secret: %s", in.Body)
	}
	in = postForm(t, intro, form("token", at, "client_id", "shop-web"))
	if in.Status != 401 || in.str("error") == "" {
		t.Errorf("public client introspection: %d %s", in.Status, in.Body)
	}
	in = postForm(t, intro, form("token", at), basicAuth("shop-backend", "wrong"))
	wantError(t, "introspect bad secret", in, 401, "invalid_client")
	in = postForm(t, intro, form("token", "garbage"), basicAuth("shop-backend", shopBackendSecret))
	if in.Status != 200 || in.JSON["active"] != false {
		t.Errorf("introspect garbage: %d %s", in.Status, in.Body)
	}

	// Revocation (RFC 7009) of an access token.
	rv := postForm(t, ts.oidc(shopRealm, "revoke"), form("token", at, "token_type_hint", "access_token", "client_id", "shop-web"))
	if rv.Status != 200 {
		t.Fatalf("revoke access token: %d %s", rv.Status, rv.Body)
	}
	in = postForm(t, intro, form("token", at), basicAuth("shop-backend", shopBackendSecret))
	if in.JSON["active"] != false {
		t.Errorf("revoked access token still active: %s", in.Body)
	}
	if ui := do(t, bearerReq(t, http.MethodGet, ts.oidc(shopRealm, "userinfo"), at)); ui.Status != 401 {
		t.Errorf("userinfo with revoked token: %d", ui.Status)
	}
	// Revoking a garbage token is not an error (§2.2).
	rv = postForm(t, ts.oidc(shopRealm, "revoke"), form("token", "garbage", "client_id", "shop-web"))
	if rv.Status != 200 {
		t.Errorf("revoke garbage: %d %s", rv.Status, rv.Body)
	}

	// Revocation of a refresh token ends its session.
	rt := login.str("refresh_token")
	rv = postForm(t, ts.oidc(shopRealm, "revoke"), form("token", rt, "token_type_hint", "refresh_token", "client_id", "shop-web"))
	if rv.Status != 200 {
		t.Fatalf("revoke refresh token: %d %s", rv.Status, rv.Body)
	}
	r := postForm(t, ts.oidc(shopRealm, "token"), form("grant_type", "refresh_token", "client_id", "shop-web", "refresh_token", rt))
	wantError(t, "refresh after revocation", r, 400, "invalid_grant")

	// A confidential client revokes with its credentials, and only its own
	// tokens.
	cc := postForm(t, ts.oidc(shopRealm, "token"), form("grant_type", "client_credentials"), basicAuth("shop-backend", shopBackendSecret))
	other := passwordGrant(t, ts, shopRealm, "shop-web", "alice", alicePassword)
	rv = postForm(t, ts.oidc(shopRealm, "revoke"), form("token", other.str("access_token")), basicAuth("shop-backend", shopBackendSecret))
	if rv.Status != 200 {
		t.Errorf("revoke other client's token: %d", rv.Status)
	}
	if in := postForm(t, intro, form("token", other.str("access_token")), basicAuth("shop-backend", shopBackendSecret)); in.JSON["active"] != true {
		t.Errorf("a client revoked another client's token: %s", in.Body)
	}
	rv = postForm(t, ts.oidc(shopRealm, "revoke"), form("token", cc.str("access_token")), basicAuth("shop-backend", shopBackendSecret))
	if rv.Status != 200 {
		t.Errorf("revoke own token: %d", rv.Status)
	}
	if in := postForm(t, intro, form("token", cc.str("access_token")), basicAuth("shop-backend", shopBackendSecret)); in.JSON["active"] != false {
		t.Errorf("revoked service token active: %s", in.Body)
	}
	rv = postForm(t, ts.oidc(shopRealm, "revoke"), form("token", cc.str("access_token")), basicAuth("shop-backend", "wrong"))
	wantError(t, "revoke with bad secret", rv, 401, "invalid_client")
}

func bearerReq(t *testing.T, method, u, token string) *http.Request {
	t.Helper()
	req := mustReq(t, method, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}
