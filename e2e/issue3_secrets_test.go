package e2e

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keycloakPBKDF2 is a password credential as Keycloak exports it for its
// pbkdf2-sha256 provider (512-bit derived key).
func keycloakPBKDF2(t *testing.T, pw string) map[string]any {
	t.Helper()
	salt := []byte("0123456789abcdef")
	const iter = 27500
	dk, err := pbkdf2.Key(sha256.New, pw, salt, iter, 64)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"type": "password",
		"secretData": fmt.Sprintf(`{"value":"%s","salt":"%s","additionalParameters":{}}`,
			base64.StdEncoding.EncodeToString(dk), base64.StdEncoding.EncodeToString(salt)),
		"credentialData": fmt.Sprintf(`{"hashIterations":%d,"algorithm":"pbkdf2-sha256","additionalParameters":{}}`, iter),
	}
}

func TestIssue3SecretsAtRest(t *testing.T) {
	t.Parallel()
	realm := realmVariant(t, "issue3-base.json", func(m map[string]any) {
		users := m["users"].([]any)
		m["users"] = append(users, map[string]any{
			"username": "legacy", "enabled": true,
			"credentials": []any{keycloakPBKDF2(t, "legacy-pw-from-keycloak")},
		})
	})
	ts := startServer(t, []string{realm, "issue3-assertion.json"})
	ctx := context.Background()

	// Plain passwords in the export are stored as argon2id.
	alice, err := ts.Srv.Store.GetUserByUsername(ctx, "issue3", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(alice.PasswordHash, "$argon2id$") {
		t.Errorf("alice's stored hash %.12q… is not argon2id", alice.PasswordHash)
	}

	// An imported Keycloak hash verifies as it is, then is upgraded.
	legacy, err := ts.Srv.Store.GetUserByUsername(ctx, "issue3", "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(legacy.PasswordHash, "$argon2id$") || !strings.Contains(legacy.PasswordHash, "pbkdf2") {
		t.Fatalf("imported hash %.20q… is not the pbkdf2 one", legacy.PasswordHash)
	}
	if r := login(t, ts, "issue3", "app", "legacy", "wrong"); r.Status != 401 {
		t.Fatalf("wrong password for the legacy user: %d", r.Status)
	}
	if u, _ := ts.Srv.Store.GetUser(ctx, "issue3", legacy.ID); u.PasswordHash != legacy.PasswordHash {
		t.Error("a failed login rehashed the password")
	}
	mustLogin(t, ts, "issue3", "app", "legacy", "legacy-pw-from-keycloak")
	upgraded, err := ts.Srv.Store.GetUser(ctx, "issue3", legacy.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(upgraded.PasswordHash, "$argon2id$") {
		t.Errorf("after a successful login the hash is %.20q…, want argon2id", upgraded.PasswordHash)
	}
	mustLogin(t, ts, "issue3", "app", "legacy", "legacy-pw-from-keycloak")
	if r := login(t, ts, "issue3", "app", "legacy", "wrong"); r.Status != 401 {
		t.Errorf("wrong password after the rehash: %d", r.Status)
	}

	// Client secrets: a keyed hash only (sealed as well for
	// client_secret_jwt, which needs the secret as an HMAC key).
	for _, tc := range []struct{ realm, client, secret string }{
		{"issue3", "api", "api-secret-3c1f0d9b7a"},
		{"issue3-jwt", "jwt-secret", jwtSecret},
	} {
		c, err := ts.Srv.Store.GetClient(ctx, tc.realm, tc.client)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.SecretHash) == 0 {
			t.Errorf("%s: no SecretHash", tc.client)
		}
		if bytes.Contains(c.SecretHash, []byte(tc.secret)) || bytes.Contains(c.SecretSealed, []byte(tc.secret)) {
			t.Errorf("%s: plaintext secret in the client record", tc.client)
		}
		for k, v := range c.Attributes {
			if strings.Contains(v, tc.secret) {
				t.Errorf("%s: plaintext secret in attribute %s", tc.client, k)
			}
		}
		if tc.client == "api" && len(c.SecretSealed) != 0 {
			t.Errorf("api: a client_secret client has a sealed secret")
		}
	}
	// The secret still authenticates.
	if r := introspect(t, ts, "issue3", "api-secret-3c1f0d9b7a", "x"); r.JSON["active"] != false {
		t.Errorf("introspect: %s", r.Body)
	}

	// The database files hold none of the plaintext secrets or passwords.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ts.Srv.Close(cctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(ts.Data, "gatehouse.db*"))
	if len(files) == 0 {
		t.Fatal("no database file found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"api-secret-3c1f0d9b7a", jwtSecret, "alice-pw", "legacy-pw-from-keycloak"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains a plaintext secret", filepath.Base(f))
			}
		}
	}
}
