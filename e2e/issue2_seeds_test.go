package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestSeed000 sends the requests of seeds/000 (CAEPE): a password grant for
// the public cape-client of realm biqmind, built as the Postman script
// builds it, and a client_credentials grant with client_id and
// client_secret in the body. Both tokens last five minutes.
func TestSeed000(t *testing.T) {
	ts := startServer(t, []string{"seed000-biqmind.json"})
	url := ts.URL + "/realms/biqmind/protocol/openid-connect/token"

	// Postman's urlencoded body, in the script's key order.
	body := "grant_type=password&username=operator%40biqmind.example&password=cape-operator-pw&client_id=cape-client"
	req := mustReq(t, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := do(t, req)
	if r.Status != 200 || r.str("access_token") == "" {
		t.Fatalf("password grant: %d %s", r.Status, r.Body)
	}
	// The script computes the expiry from expires_in: a number, 300.
	if v, ok := r.JSON["expires_in"].(float64); !ok || v != 300 {
		t.Errorf("expires_in %v, want the number 300", r.JSON["expires_in"])
	}
	if c := claims(t, r.str("access_token")); c["azp"] != "cape-client" || c["preferred_username"] != "operator@biqmind.example" {
		t.Errorf("claims %v", c)
	}

	body = "grant_type=client_credentials&client_id=cape-automation&client_secret=cape-automation-secret-7d1"
	req = mustReq(t, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r = do(t, req)
	if r.Status != 200 || r.str("access_token") == "" {
		t.Fatalf("client_credentials: %d %s", r.Status, r.Body)
	}
	if v, ok := r.JSON["expires_in"].(float64); !ok || v != 300 {
		t.Errorf("client_credentials expires_in %v, want 300", r.JSON["expires_in"])
	}
	if c := claims(t, r.str("access_token")); c["azp"] != "cape-automation" || c["iss"] != ts.URL+"/realms/biqmind" {
		t.Errorf("service claims %v", c)
	}
}

// TestSeed001 runs seeds/001 (OCP) with curl itself: the password grant
// with --location --request POST and --data-urlencode under the /auth
// prefix, the documented response shape, the five-session limit, and the
// logout that frees a session.
func TestSeed001(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	ts := startServer(t, []string{"seed001-master.json"})
	host := ts.URL
	const username, password = "ocp-user", "O c p & = + %pw"

	login := func() (int, map[string]any) {
		t.Helper()
		out, err := boundedCommand(t, curl, "-s", "-w", "\n%{http_code}",
			"--location", "--request", "POST", host+"/auth/realms/master/protocol/openid-connect/token",
			"--header", "Content-Type: application/x-www-form-urlencoded",
			"--data-urlencode", "client_id=ocp",
			"--data-urlencode", "grant_type=password",
			"--data-urlencode", "username="+username,
			"--data-urlencode", "password="+password).Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		return curlResult(t, out)
	}
	status, resp := login()
	if status != 200 {
		t.Fatalf("password grant: %d %v", status, resp)
	}
	// The documented response: exactly these fields (no id_token, as the
	// request has no scope=openid).
	want := []string{"access_token", "expires_in", "refresh_expires_in", "refresh_token", "token_type", "not-before-policy", "session_state", "scope"}
	for _, k := range want {
		if _, ok := resp[k]; !ok {
			t.Errorf("response lacks %q", k)
		}
	}
	if len(resp) != len(want) {
		t.Errorf("response has %d fields, want %d: %v", len(resp), len(want), resp)
	}
	if resp["expires_in"] != 300.0 || resp["refresh_expires_in"] != 1800.0 || resp["not-before-policy"] != 0.0 {
		t.Errorf("lifetimes: %v %v %v", resp["expires_in"], resp["refresh_expires_in"], resp["not-before-policy"])
	}
	if tt, _ := resp["token_type"].(string); !strings.EqualFold(tt, "bearer") {
		t.Errorf("token_type %v", resp["token_type"])
	}
	if at, _ := resp["access_token"].(string); !strings.HasPrefix(at, "eyJhbGciOiJSUzI1NiIs") {
		t.Errorf("access token is not an RS256 JWT: %.30s", at)
	}
	if rt, _ := resp["refresh_token"].(string); !strings.HasPrefix(rt, "eyJhbGciOiJIUzI1NiIs") {
		t.Errorf("refresh token is not an HS256 JWT: %.30s", rt)
	}
	firstRefresh, _ := resp["refresh_token"].(string)

	// "Given the five-sessions limit": four more logins fit, a sixth does
	// not.
	for i := 2; i <= 5; i++ {
		if status, resp := login(); status != 200 {
			t.Fatalf("login %d: %d %v", i, status, resp)
		}
	}
	status, resp = login()
	if status != 400 || resp["error"] != "invalid_grant" {
		t.Errorf("sixth session: %d %v, want 400 invalid_grant", status, resp)
	}

	// The seed's logout, as written.
	out, err := boundedCommand(t, curl, "-s", "-w", "\n%{http_code}",
		"-X", "POST", host+"/auth/realms/master/protocol/openid-connect/logout",
		"-H", "Content-Type: application/x-www-form-urlencoded",
		"-d", "client_id=ocp",
		"-d", "refresh_token="+firstRefresh).Output()
	if err != nil {
		t.Fatal(err)
	}
	if body, code, _ := cutLast(string(out)); code != "204" || body != "" {
		t.Errorf("logout: %s %q", code, body)
	}
	// Logging out freed a session.
	if status, resp := login(); status != 200 {
		t.Errorf("login after logout: %d %v", status, resp)
	}
	// The logged-out refresh token is dead.
	r := postForm(t, host+"/auth/realms/master/protocol/openid-connect/token", form("grant_type", "refresh_token", "client_id", "ocp", "refresh_token", firstRefresh))
	wantError(t, "refresh after logout", r, 400, "invalid_grant")
}

// TestSeed002 sends seeds/002 (Apiax): the password grant for the public
// client integration-api under /auth, then the refresh with
// client_assertion_type but no assertion, within a 14-day refresh window.
func TestSeed002(t *testing.T) {
	ts := startServer(t, []string{"seed002-apiax.json"})
	endpoint := ts.URL + "/auth/realms/apiax/protocol/openid-connect/token"

	r := postForm(t, endpoint, form("client_id", "integration-api", "grant_type", "password", "username", "apiax-integrator", "password", "apiax-integrator-pw"))
	if r.Status != 200 {
		t.Fatalf("password grant: %d %s", r.Status, r.Body)
	}
	if num(r.JSON, "expires_in") != 1800 {
		t.Errorf("expires_in %v, want 1800", r.JSON["expires_in"])
	}
	if num(r.JSON, "refresh_expires_in") != 1209600 {
		t.Errorf("refresh_expires_in %v, want 1209600 (14 days)", r.JSON["refresh_expires_in"])
	}
	for _, k := range []string{"access_token", "refresh_token", "token_type", "not-before-policy", "session_state", "scope"} {
		if _, ok := r.JSON[k]; !ok {
			t.Errorf("response lacks %q", k)
		}
	}

	ref := postForm(t, endpoint, form(
		"grant_type", "refresh_token",
		"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
		"client_id", "integration-api",
		"refresh_token", r.str("refresh_token")))
	if ref.Status != 200 || ref.str("access_token") == "" || ref.str("refresh_token") == "" {
		t.Fatalf("refresh: %d %s", ref.Status, ref.Body)
	}
	// The window counts from the credential login, not from the refresh:
	// what remains is at most 14 days.
	if rem := num(ref.JSON, "refresh_expires_in"); rem > 1209600 || rem < 1209600-30 {
		t.Errorf("refresh_expires_in after refresh %v", rem)
	}
	if ref.str("session_state") != r.str("session_state") {
		t.Errorf("session changed on refresh")
	}
	// And the new refresh token refreshes again.
	again := postForm(t, endpoint, form(
		"grant_type", "refresh_token",
		"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
		"client_id", "integration-api",
		"refresh_token", ref.str("refresh_token")))
	if again.Status != 200 {
		t.Errorf("second refresh: %d %s", again.Status, again.Body)
	}
}

// curlResult splits curl -w "\n%{http_code}" output into status and JSON.
func curlResult(t *testing.T, out []byte) (int, map[string]any) {
	t.Helper()
	body, code, ok := cutLast(string(out))
	if !ok {
		t.Fatalf("curl output %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("curl body %q: %v", body, err)
	}
	status := 0
	for _, c := range code {
		status = status*10 + int(c-'0')
	}
	return status, m
}

func cutLast(s string) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
