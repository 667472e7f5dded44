package e2e

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// Credentials of the realm in testdata/issue2-shop.json.
const (
	shopRealm         = "shop"
	shopBackendSecret = "backend-secret-2b7e"
	shopAPISecret     = "api-secret-9f1c"
	alicePassword     = "alice-pw-1"
	bobPassword       = "bob-pw-1"
	// importedPassword is the password behind every Keycloak-hashed
	// credential in issue2-shop.json (vectors made with Python's
	// hashlib.pbkdf2_hmac and the argon2 reference CLI).
	importedPassword = "Kc-imported-1!"
)

// form builds url.Values from alternating keys and values.
func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// basicAuth is an "Authorization: Basic" header line for postForm, with
// both parts form-encoded as RFC 6749 §2.3.1 asks.
func basicAuth(id, secret string) string {
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(raw))
}

// passwordGrant runs a password grant for a public client and fails the
// test unless it succeeds.
func passwordGrant(t *testing.T, ts *testServer, realm, client, user, pw string, extra ...string) *response {
	t.Helper()
	f := form(append([]string{"grant_type", "password", "client_id", client, "username", user, "password", pw}, extra...)...)
	r := postForm(t, ts.oidc(realm, "token"), f)
	if r.Status != 200 {
		t.Fatalf("password grant %s/%s/%s: %d %s", realm, client, user, r.Status, r.Body)
	}
	return r
}

// wantError checks an OAuth error answer's status and error code.
func wantError(t *testing.T, what string, r *response, status int, code string) {
	t.Helper()
	if r.Status != status || r.str("error") != code {
		t.Errorf("%s: got %d %s, want %d %s", what, r.Status, r.Body, status, code)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want JSON", what, ct)
	}
}

// num reads a JSON number field.
func num(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}
