package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// realmVariant writes testdata/base, changed by mutate, to a temporary
// file and returns its absolute path, so that one realm file serves every
// setting a test needs to vary.
func realmVariant(t testing.TB, base string, mutate func(m map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", base))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), base)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// login runs a password grant for a public client (or one whose secret is
// in extra).
func login(t *testing.T, ts *testServer, realm, client, user, pw string, extra ...string) *response {
	t.Helper()
	f := url.Values{"grant_type": {"password"}, "client_id": {client}, "username": {user}, "password": {pw}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return postForm(t, ts.oidc(realm, "token"), f)
}

// mustLogin is login that fails the test unless it gives a token pair.
func mustLogin(t *testing.T, ts *testServer, realm, client, user, pw string, extra ...string) *response {
	t.Helper()
	r := login(t, ts, realm, client, user, pw, extra...)
	if r.Status != 200 || r.str("access_token") == "" {
		t.Fatalf("login %s/%s as %s: %d %s", realm, client, user, r.Status, r.Body)
	}
	return r
}

// refresh runs a refresh_token grant for a public client.
func refresh(t *testing.T, ts *testServer, realm, client, rt string) *response {
	t.Helper()
	return postForm(t, ts.oidc(realm, "token"), url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {rt}})
}

// introspect asks realm's token endpoint about token as the confidential
// client "api".
func introspect(t *testing.T, ts *testServer, realm, secret, token string) *response {
	t.Helper()
	r := postForm(t, ts.oidc(realm, "token/introspect"), url.Values{"client_id": {"api"}, "client_secret": {secret}, "token": {token}})
	if r.Status != 200 {
		t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r
}

// active reports whether introspection calls token active.
func active(t *testing.T, ts *testServer, token string) bool {
	t.Helper()
	r := introspect(t, ts, "issue3", "api-secret-3c1f0d9b7a", token)
	a, _ := r.JSON["active"].(bool)
	return a
}

// userinfo calls realm's userinfo endpoint with a bearer token.
func userinfo(t *testing.T, ts *testServer, realm, token string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.oidc(realm, "userinfo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, req)
}

// jws builds a compact JWS from a header and claims, signed by sign (nil:
// an empty signature part).
func jws(t testing.TB, header, claims map[string]any, sign func(signingInput []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := b64url(h) + "." + b64url(c)
	if sign == nil {
		return in + "."
	}
	return in + "." + b64url(sign([]byte(in)))
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
