package e2e

import (
	"net/url"
	"testing"
	"time"
)

func TestIssue3OfflineTokens(t *testing.T) {
	t.Parallel()
	ts := startServer(t, []string{"issue3-base.json", "issue3-other.json"})
	off := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw", "scope", "openid offline_access")
	rt := off.str("refresh_token")
	if typ := claims(t, rt)["typ"]; typ != "Offline" {
		t.Fatalf("refresh token typ = %v, want Offline", typ)
	}
	if v, ok := off.JSON["refresh_expires_in"].(float64); !ok || v != 0 {
		t.Errorf("refresh_expires_in = %v, want 0", off.JSON["refresh_expires_in"])
	}
	if _, has := claims(t, rt)["exp"]; has {
		t.Error("offline token without a max lifespan carries exp")
	}

	// Logging out a separate, normal login leaves the offline session.
	normal := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
	lo := postForm(t, ts.oidc("issue3", "logout"), url.Values{"client_id": {"app"}, "refresh_token": {normal.str("refresh_token")}})
	if lo.Status != 204 {
		t.Fatalf("logout: %d %s", lo.Status, lo.Body)
	}
	if r := refresh(t, ts, "issue3", "app", normal.str("refresh_token")); r.Status != 400 {
		t.Errorf("logged-out session still refreshes: %d", r.Status)
	}
	r := refresh(t, ts, "issue3", "app", rt)
	if r.Status != 200 {
		t.Fatalf("offline refresh after logout of another session: %d %s", r.Status, r.Body)
	}
	if typ := claims(t, r.str("refresh_token"))["typ"]; typ != "Offline" {
		t.Errorf("refreshed offline token typ = %v", typ)
	}
	if !active(t, ts, off.str("access_token")) {
		t.Error("offline session's access token inactive after an unrelated logout")
	}

	// RFC 7009 revocation of the offline token ends it.
	rv := postForm(t, ts.oidc("issue3", "revoke"), url.Values{"client_id": {"app"}, "token": {r.str("refresh_token")}, "token_type_hint": {"refresh_token"}})
	if rv.Status != 200 {
		t.Fatalf("revoke: %d %s", rv.Status, rv.Body)
	}
	if r := refresh(t, ts, "issue3", "app", r.str("refresh_token")); r.Status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("revoked offline token: %d %s", r.Status, r.Body)
	}

	// offlineSessionIdleTimeout is 2 s in the test realm.
	idle := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw", "scope", "offline_access")
	time.Sleep(3 * time.Second)
	if r := refresh(t, ts, "issue3", "app", idle.str("refresh_token")); r.Status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("offline token after its idle timeout: %d %s", r.Status, r.Body)
	}

	// A user without the offline_access role may not have one.
	for _, u := range []string{"nora", "alice"} {
		pw := map[string]string{"nora": "nora-pw", "alice": "alice-pw"}[u]
		r := login(t, ts, "issue3-other", "app", u, pw, "scope", "offline_access")
		if r.Status != 400 || r.str("error") != "invalid_scope" {
			t.Errorf("%s without offline_access: %d %s, want 400 invalid_scope", u, r.Status, r.Body)
		}
	}
	// Without the scope the same user logs in normally.
	mustLogin(t, ts, "issue3-other", "app", "nora", "nora-pw")
}

func TestIssue3PerClientLifetimes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, []string{"issue3-base.json"})
	l := mustLogin(t, ts, "issue3", "long", "alice", "alice-pw")
	if v := l.JSON["refresh_expires_in"]; v != float64(1209600) {
		t.Errorf("refresh_expires_in = %v, want 1209600 (client.session.* attributes)", v)
	}
	if v := l.JSON["expires_in"]; v != float64(120) {
		t.Errorf("expires_in = %v, want 120 (access.token.lifespan)", v)
	}
	c := claims(t, l.str("access_token"))
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 120 {
		t.Errorf("access token lives %v s, want 120", exp-iat)
	}
	rc := claims(t, l.str("refresh_token"))
	if exp, iat := rc["exp"].(float64), rc["iat"].(float64); exp-iat != 1209600 {
		t.Errorf("refresh token lives %v s, want 1209600", exp-iat)
	}
	r := refresh(t, ts, "issue3", "long", l.str("refresh_token"))
	if r.Status != 200 || r.JSON["refresh_expires_in"] != float64(1209600) || r.JSON["expires_in"] != float64(120) {
		t.Errorf("after refresh: %d %s", r.Status, r.Body)
	}
	// The realm's own lifetimes for a client without overrides.
	d := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
	if d.JSON["refresh_expires_in"] != float64(1800) || d.JSON["expires_in"] != float64(300) {
		t.Errorf("realm defaults: %s", d.Body)
	}
}
