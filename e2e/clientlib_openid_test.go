package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOpenIDClientJS drives the real server with openid-client from npm, a
// certified OpenID Connect relying-party library, as a Node application
// would: discovery, a password grant whose ID token the library validates,
// userinfo, refresh, client_credentials with client_secret_basic,
// introspection and revocation (e2e/js/openid.mjs). Without node or
// e2e/js/node_modules it skips, except under CI, which installs them
// (npm ci --prefix e2e/js).
func TestOpenIDClientJS(t *testing.T) {
	need := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; CI must install it (.ci/run: npm ci --prefix e2e/js)", what)
		}
		t.Skipf("%s is missing: run npm ci --prefix e2e/js to run this test", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need("node")
	}
	if _, err := os.Stat(filepath.Join("js", "node_modules", "openid-client")); err != nil {
		need("e2e/js/node_modules")
	}
	ts := startServer(t, []string{"issue2-shop.json"})
	issuer := ts.URL + "/realms/shop"
	cmd := boundedCommand(t, node, filepath.Join("js", "openid.mjs"), issuer,
		"shop-web", "alice", "alice-pw-1", "shop-backend", "backend-secret-2b7e")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openid.mjs: %v\n%s", err, stderr.String())
	}
	var got struct {
		Password struct {
			ExpiresIn int    `json:"expires_in"`
			Sub       string `json:"sub"`
			Scope     string `json:"scope"`
		} `json:"password"`
		Userinfo struct {
			PreferredUsername string `json:"preferred_username"`
			Email             string `json:"email"`
		} `json:"userinfo"`
		Refresh struct {
			HasIDToken bool `json:"has_id_token"`
		} `json:"refresh"`
		Revocation struct {
			Before, After bool
		} `json:"revocation"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("openid.mjs output %q: %v", stdout.String(), err)
	}
	if got.Password.ExpiresIn != 300 || got.Password.Sub == "" || got.Password.Scope != "openid profile email" {
		t.Errorf("password grant as openid-client saw it: %+v", got.Password)
	}
	if got.Userinfo.PreferredUsername != "alice" || got.Userinfo.Email != "alice@shop.example" {
		t.Errorf("userinfo: %+v", got.Userinfo)
	}
	if !got.Refresh.HasIDToken {
		t.Error("refresh of an openid session returned no id_token")
	}
	if !got.Revocation.Before || got.Revocation.After {
		t.Errorf("introspection around revocation: %+v", got.Revocation)
	}
}
