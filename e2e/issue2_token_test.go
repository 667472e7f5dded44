package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"

	"slices"
	"strings"
	"testing"
)

// TestIssue2TokenEndpointPaths runs every grant and every client
// authentication style under both /realms/R and the legacy /auth/realms/R.
func TestIssue2TokenEndpointPaths(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	for _, prefix := range []string{"", "/auth"} {
		tok := ts.URL + prefix + "/realms/" + shopRealm + "/protocol/openid-connect/token"
		t.Run("prefix="+prefix, func(t *testing.T) {
			// Public client, client_id alone.
			r := postForm(t, tok, form("grant_type", "password", "client_id", "shop-web", "username", "alice", "password", alicePassword))
			if r.Status != 200 || r.str("access_token") == "" || r.str("refresh_token") == "" {
				t.Fatalf("public password grant: %d %s", r.Status, r.Body)
			}
			// Confidential client, secret in the form.
			r = postForm(t, tok, form("grant_type", "password", "client_id", "shop-backend", "client_secret", shopBackendSecret, "username", "alice", "password", alicePassword))
			if r.Status != 200 {
				t.Fatalf("form-secret password grant: %d %s", r.Status, r.Body)
			}
			rt := r.str("refresh_token")
			// Confidential client, HTTP Basic.
			r = postForm(t, tok, form("grant_type", "client_credentials"), basicAuth("shop-backend", shopBackendSecret))
			if r.Status != 200 || r.str("access_token") == "" {
				t.Fatalf("basic client_credentials: %d %s", r.Status, r.Body)
			}
			if r.str("refresh_token") != "" || r.str("session_state") != "" {
				t.Errorf("client_credentials issued a session: %s", r.Body)
			}
			r = postForm(t, tok, form("grant_type", "client_credentials", "client_id", "shop-backend", "client_secret", shopBackendSecret))
			if r.Status != 200 {
				t.Fatalf("form client_credentials: %d %s", r.Status, r.Body)
			}
			// Refresh with Basic.
			r = postForm(t, tok, form("grant_type", "refresh_token", "refresh_token", rt), basicAuth("shop-backend", shopBackendSecret))
			if r.Status != 200 || r.str("access_token") == "" || r.str("refresh_token") == "" {
				t.Fatalf("basic refresh: %d %s", r.Status, r.Body)
			}
			// The issuer is the same whichever prefix was used.
			if iss := claims(t, r.str("access_token"))["iss"]; iss != ts.URL+"/realms/"+shopRealm {
				t.Errorf("iss %v", iss)
			}
		})
	}
}

// TestIssue2ResponseAndClaims checks the response fields and every
// Keycloak access-token claim, and that the signature's kid is in /certs.
func TestIssue2ResponseAndClaims(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	r := passwordGrant(t, ts, shopRealm, "shop-web", "alice", alicePassword)
	for _, k := range []string{"access_token", "expires_in", "refresh_expires_in", "refresh_token", "token_type", "not-before-policy", "session_state", "scope"} {
		if _, ok := r.JSON[k]; !ok {
			t.Errorf("response lacks %q: %s", k, r.Body)
		}
	}
	if _, ok := r.JSON["id_token"]; ok {
		t.Errorf("id_token without scope openid")
	}
	if r.str("token_type") != "Bearer" {
		t.Errorf("token_type %q", r.str("token_type"))
	}
	// accessTokenLifespan absent from the realm file: Keycloak's 300.
	if num(r.JSON, "expires_in") != 300 {
		t.Errorf("expires_in %v, want 300", r.JSON["expires_in"])
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}

	at := r.str("access_token")
	c := claims(t, at)
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "jti", "typ", "azp", "sid", "scope",
		"realm_access", "resource_access", "preferred_username", "email", "email_verified", "name", "given_name", "family_name"} {
		if _, ok := c[k]; !ok {
			t.Errorf("access token lacks %q: %v", k, c)
		}
	}
	if c["iss"] != ts.URL+"/realms/shop" || c["typ"] != "Bearer" || c["azp"] != "shop-web" {
		t.Errorf("iss/typ/azp: %v %v %v", c["iss"], c["typ"], c["azp"])
	}
	if c["sid"] != r.str("session_state") {
		t.Errorf("sid %v != session_state %q", c["sid"], r.str("session_state"))
	}
	if c["preferred_username"] != "alice" || c["email"] != "alice@shop.example" || c["email_verified"] != true ||
		c["name"] != "Alice Liddell" || c["given_name"] != "Alice" || c["family_name"] != "Liddell" {
		t.Errorf("profile claims: %v", c)
	}
	if num(c, "exp")-num(c, "iat") != 300 || num(c, "auth_time") == 0 {
		t.Errorf("times: iat %v exp %v auth_time %v", c["iat"], c["exp"], c["auth_time"])
	}
	ra, _ := c["realm_access"].(map[string]any)
	if roles, _ := ra["roles"].([]any); !slices.Contains(roles, any("buyer")) {
		t.Errorf("realm_access %v", c["realm_access"])
	}
	rs, _ := c["resource_access"].(map[string]any)
	api, _ := rs["shop-api"].(map[string]any)
	if roles, _ := api["roles"].([]any); !slices.Contains(roles, any("orders-write")) {
		t.Errorf("resource_access %v", c["resource_access"])
	}
	// Keycloak's audience resolution: the client whose role the user has.
	if c["aud"] != "shop-api" {
		t.Errorf("aud %v, want shop-api", c["aud"])
	}
	if sc, _ := c["scope"].(string); !strings.Contains(sc, "profile") || !strings.Contains(sc, "email") {
		t.Errorf("scope claim %q", sc)
	}

	// Header: RS256 with a kid published in /certs.
	hdr := jwtHeader(t, at)
	if hdr["alg"] != "RS256" {
		t.Errorf("alg %v", hdr["alg"])
	}
	certs := do(t, mustReq(t, http.MethodGet, ts.oidc(shopRealm, "certs"), nil))
	if certs.Status != 200 {
		t.Fatalf("certs: %d", certs.Status)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(certs.Body, &set); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range set.Keys {
		if k["kid"] == hdr["kid"] {
			found = true
			if k["kty"] != "RSA" || k["n"] == nil || k["e"] == nil || k["d"] != nil {
				t.Errorf("jwk %v", k)
			}
		}
	}
	if !found {
		t.Errorf("kid %v not in /certs %s", hdr["kid"], certs.Body)
	}

	// With scope=openid: an ID token, and openid in the scope.
	r = passwordGrant(t, ts, shopRealm, "shop-web", "alice", alicePassword, "scope", "openid")
	if r.str("id_token") == "" || !strings.Contains(r.str("scope"), "openid") {
		t.Fatalf("scope=openid: %s", r.Body)
	}
	ic := claims(t, r.str("id_token"))
	if ic["typ"] != "ID" || ic["aud"] != "shop-web" || ic["sub"] != c["sub"] {
		t.Errorf("id token claims %v", ic)
	}

	// Service account: aud falls back to azp (no client roles).
	r = postForm(t, ts.oidc(shopRealm, "token"), form("grant_type", "client_credentials"), basicAuth("shop-backend", shopBackendSecret))
	sc := claims(t, r.str("access_token"))
	if sc["aud"] != "shop-backend" || sc["azp"] != "shop-backend" || sc["preferred_username"] != "service-account-shop-backend" {
		t.Errorf("service account claims %v", sc)
	}
}

// TestIssue2Errors checks statuses and codes against Keycloak's.
func TestIssue2Errors(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	tok := ts.oidc(shopRealm, "token")

	r := postForm(t, tok, form("grant_type", "authorization_code", "client_id", "shop-web", "code", "x"))
	wantError(t, "authorization_code with a made-up code", r, 400, "invalid_grant")
	r = postForm(t, tok, form("grant_type", "urn:ietf:params:oauth:grant-type:device_code", "client_id", "shop-web"))
	wantError(t, "device_code", r, 400, "unsupported_grant_type")
	r = postForm(t, tok, form("client_id", "shop-web", "username", "alice", "password", alicePassword))
	wantError(t, "missing grant_type", r, 400, "invalid_request")

	r = postForm(t, tok, form("grant_type", "password", "client_id", "no-such-client", "username", "alice", "password", alicePassword))
	wantError(t, "unknown client", r, 401, "invalid_client")
	r = postForm(t, tok, form("grant_type", "client_credentials", "client_id", "shop-backend", "client_secret", "wrong"))
	wantError(t, "bad form secret", r, 401, "invalid_client")
	r = postForm(t, tok, form("grant_type", "client_credentials"), basicAuth("shop-backend", "wrong"))
	wantError(t, "bad basic secret", r, 401, "invalid_client")
	r = postForm(t, tok, form("grant_type", "client_credentials", "client_id", "shop-backend"))
	wantError(t, "missing secret", r, 401, "invalid_client")
	r = postForm(t, tok, form("grant_type", "password", "client_id", "shop-disabled", "username", "alice", "password", alicePassword))
	wantError(t, "disabled client", r, 401, "invalid_client")

	r = postForm(t, tok, form("grant_type", "password", "client_id", "shop-nodirect", "username", "alice", "password", alicePassword))
	wantError(t, "no direct grants", r, 400, "unauthorized_client")
	r = postForm(t, tok, form("grant_type", "client_credentials", "client_id", "shop-web"))
	wantError(t, "public client_credentials", r, 400, "unauthorized_client")
	r = postForm(t, tok, form("grant_type", "client_credentials", "client_id", "shop-api", "client_secret", shopAPISecret))
	wantError(t, "no service account", r, 400, "unauthorized_client")

	// Disabled user: the account state is told only to whoever knows the
	// password.
	r = postForm(t, tok, form("grant_type", "password", "client_id", "shop-web", "username", "bob", "password", bobPassword))
	wantError(t, "disabled user, right password", r, 400, "invalid_grant")
	if r.str("error_description") != "Account disabled" {
		t.Errorf("disabled user description %q", r.str("error_description"))
	}
	r = postForm(t, tok, form("grant_type", "password", "client_id", "shop-web", "username", "bob", "password", "wrong"))
	wantError(t, "disabled user, wrong password", r, 401, "invalid_grant")
	if r.str("error_description") != "Invalid user credentials" {
		t.Errorf("disabled user wrong password description %q", r.str("error_description"))
	}

	// Unknown user and wrong password: the same answer, byte for byte.
	unknown := postForm(t, tok, form("grant_type", "password", "client_id", "shop-web", "username", "nobody", "password", "whatever"))
	wrong := postForm(t, tok, form("grant_type", "password", "client_id", "shop-web", "username", "alice", "password", "whatever"))
	wantError(t, "unknown user", unknown, 401, "invalid_grant")
	if unknown.Status != wrong.Status || !bytes.Equal(unknown.Body, wrong.Body) {
		t.Errorf("unknown user %d %s vs wrong password %d %s", unknown.Status, unknown.Body, wrong.Status, wrong.Body)
	}

	r = postForm(t, ts.oidc("no-such-realm", "token"), form("grant_type", "password", "client_id", "x"))
	if r.Status != 404 {
		t.Errorf("unknown realm: %d %s", r.Status, r.Body)
	}
}

// TestIssue2MalformedBodies sends broken requests: every one is a 4xx with
// a JSON body, never a 5xx.
func TestIssue2MalformedBodies(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	tok := ts.oidc(shopRealm, "token")
	good := form("grant_type", "password", "client_id", "shop-web", "username", "alice", "password", alicePassword).Encode()
	cases := []struct {
		name, ct, body string
		header         [2]string
	}{
		{"json body", "application/json", `{"grant_type":"password","client_id":"shop-web"}`, [2]string{}},
		{"no content type", "", good, [2]string{}},
		{"text/plain", "text/plain", good, [2]string{}},
		{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword\r\n--x--\r\n", [2]string{}},
		{"duplicate grant_type", "application/x-www-form-urlencoded", good + "&grant_type=client_credentials", [2]string{}},
		{"duplicate client_id", "application/x-www-form-urlencoded", good + "&client_id=shop-web", [2]string{}},
		{"huge body", "application/x-www-form-urlencoded", "grant_type=password&username=" + strings.Repeat("a", 1<<20), [2]string{}},
		{"bad escape", "application/x-www-form-urlencoded", "grant_type=%zz&client_id=shop-web", [2]string{}},
		{"garbage", "application/x-www-form-urlencoded", "\x00\x01\xff\xfe=&&&==%", [2]string{}},
		{"empty", "application/x-www-form-urlencoded", "", [2]string{}},
		{"bad basic", "application/x-www-form-urlencoded", "grant_type=client_credentials", [2]string{"Authorization", "Basic !!!notbase64"}},
		{"basic without colon", "application/x-www-form-urlencoded", "grant_type=client_credentials", [2]string{"Authorization", "Basic " + "c2hvcC1iYWNrZW5k"}},
		{"basic id mismatch", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=shop-web", [2]string{"Authorization", basicAuth("shop-backend", shopBackendSecret)[len("Authorization: "):]}},
		{"garbage refresh", "application/x-www-form-urlencoded", "grant_type=refresh_token&client_id=shop-web&refresh_token=a.b.c", [2]string{}},
		{"garbage assertion", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=x.y.z", [2]string{}},
		{"huge unknown scope", "application/x-www-form-urlencoded", good + "&scope=" + strings.Repeat("x", 60000), [2]string{}},
	}
	for _, c := range cases {
		req := mustReq(t, http.MethodPost, tok, strings.NewReader(c.body))
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		if c.header[0] != "" {
			req.Header.Set(c.header[0], c.header[1])
		}
		r := do(t, req)
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("%s: status %d %s", c.name, r.Status, r.Body)
			continue
		}
		if r.str("error") == "" {
			t.Errorf("%s: no JSON error body: %q", c.name, r.Body)
		}
	}
	// A GET on the token endpoint is not a 5xx either.
	r := do(t, mustReq(t, http.MethodGet, tok, nil))
	if r.Status < 400 || r.Status >= 500 {
		t.Errorf("GET token: %d", r.Status)
	}
	// And the server still answers properly afterwards.
	passwordGrant(t, ts, shopRealm, "shop-web", "alice", alicePassword)
}

// TestIssue2ImportedKeycloakHashes logs in users whose credentials are
// Keycloak's own secretData/credentialData, for each algorithm.
func TestIssue2ImportedKeycloakHashes(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	for _, u := range []string{"kc-pbkdf2-sha256", "kc-pbkdf2-sha512", "kc-pbkdf2", "kc-argon2"} {
		t.Run(u, func(t *testing.T) {
			r := postForm(t, ts.oidc(shopRealm, "token"), form("grant_type", "password", "client_id", "shop-web", "username", u, "password", "wrong-"+importedPassword))
			wantError(t, "wrong password", r, 401, "invalid_grant")
			passwordGrant(t, ts, shopRealm, "shop-web", u, importedPassword)
			// The hash was upgraded on that login; the password still works.
			passwordGrant(t, ts, shopRealm, "shop-web", u, importedPassword)
		})
	}
}

func mustReq(t *testing.T, method, u string, body interface{ Read([]byte) (int, error) }) *http.Request {
	t.Helper()
	var req *http.Request
	var err error
	if body == nil {
		req, err = http.NewRequest(method, u, nil)
	} else {
		req, err = http.NewRequest(method, u, body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return req
}
