package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// certs returns the kid → alg of realm's published JWKS.
func certs(t *testing.T, ts *testServer, realm string) map[string]string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.oidc(realm, "certs"), nil)
	r := do(t, req)
	if r.Status != 200 {
		t.Fatalf("certs: %d %s", r.Status, r.Body)
	}
	out := map[string]string{}
	keys, _ := r.JSON["keys"].([]any)
	for _, k := range keys {
		m := k.(map[string]any)
		kid, _ := m["kid"].(string)
		alg, _ := m["alg"].(string)
		out[kid] = alg
	}
	return out
}

// wantRejected asserts that userinfo refuses token and introspection calls
// it inactive.
func wantRejected(t *testing.T, ts *testServer, what, token string) {
	t.Helper()
	if r := userinfo(t, ts, "issue3", token); r.Status != 401 {
		t.Errorf("%s: userinfo %d %s, want 401", what, r.Status, r.Body)
	} else if !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("%s: WWW-Authenticate %q", what, r.Header.Get("WWW-Authenticate"))
	}
	if active(t, ts, token) {
		t.Errorf("%s: introspection says active", what)
	}
}

func TestIssue3SigningAlgorithms(t *testing.T) {
	t.Parallel()
	realm := realmVariant(t, "issue3-base.json", func(m map[string]any) { m["defaultSignatureAlgorithm"] = "ES256" })
	ts := startServer(t, []string{realm})
	for client, want := range map[string]string{"app": "ES256", "eddsa": "EdDSA", "pss": "PS256"} {
		l := mustLogin(t, ts, "issue3", client, "alice", "alice-pw", "scope", "openid")
		h := jwtHeader(t, l.str("access_token"))
		if h["alg"] != want {
			t.Errorf("%s: access token alg %v, want %s", client, h["alg"], want)
		}
		if hid := jwtHeader(t, l.str("id_token")); hid["alg"] != want {
			t.Errorf("%s: ID token alg %v, want %s", client, hid["alg"], want)
		}
		kid, _ := h["kid"].(string)
		if alg := certs(t, ts, "issue3")[kid]; alg != want {
			t.Errorf("%s: kid %s published with alg %q", client, kid, alg)
		}
		if r := userinfo(t, ts, "issue3", l.str("access_token")); r.Status != 200 {
			t.Errorf("%s: userinfo %d %s", client, r.Status, r.Body)
		}
		if hr := jwtHeader(t, l.str("refresh_token")); hr["alg"] != "HS256" {
			t.Errorf("%s: refresh token alg %v", client, hr["alg"])
		}
	}
}

func TestIssue3KeyRotationAndSealing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, []string{"issue3-base.json"})
	ctx := context.Background()
	old := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
	oldKid := tokenKid(t, old.str("access_token"))

	newKid, err := ts.Srv.Core.RotateKeys(ctx, "issue3", "")
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid || newKid == "" {
		t.Fatalf("rotation gave kid %q (old %q)", newKid, oldKid)
	}
	fresh := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
	if kid := jwtHeader(t, fresh.str("access_token"))["kid"]; kid != newKid {
		t.Errorf("after rotation tokens are signed by %v, want %s", kid, newKid)
	}
	if r := userinfo(t, ts, "issue3", old.str("access_token")); r.Status != 200 {
		t.Errorf("token of the retiring key: userinfo %d %s", r.Status, r.Body)
	}
	c := certs(t, ts, "issue3")
	if c[oldKid] == "" || c[newKid] == "" {
		t.Errorf("certs %v should list both %s and %s", c, oldKid, newKid)
	}
	// The refresh of the old session still works (its HMAC key did not
	// rotate) and gives a token of the new key.
	if r := refresh(t, ts, "issue3", "app", old.str("refresh_token")); r.Status != 200 || jwtHeader(t, r.str("access_token"))["kid"] != newKid {
		t.Errorf("refresh after rotation: %d %s", r.Status, r.Body)
	}

	// Private keys are sealed: no stored key is a PKCS#8 DER in clear.
	ks, err := ts.Srv.Store.ListKeys(ctx, "issue3")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if _, err := x509.ParsePKCS8PrivateKey(k.Private); err == nil {
			t.Errorf("key %s (%s) stored as clear PKCS#8", k.KID, k.Alg)
		}
		if k.Use == "sig" {
			if _, err := x509.ParsePKIXPublicKey(k.Public); err != nil {
				t.Errorf("key %s: public part is not PKIX DER: %v", k.KID, err)
			}
		}
	}

	// Past its retire time the old key leaves the JWKS and its tokens fail.
	if err := ts.Srv.Keys.Prune(ctx, time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c := certs(t, ts, "issue3"); c[oldKid] != "" || c[newKid] == "" {
		t.Errorf("after pruning certs = %v (old %s, new %s)", c, oldKid, newKid)
	}
	// The key's deletion reaches the verified-token cache through the
	// store's change feed, which the design bounds at a second.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if userinfo(t, ts, "issue3", old.str("access_token")).Status == 401 {
			break
		}
	}
	wantRejected(t, ts, "token of a pruned key", old.str("access_token"))
	if r := userinfo(t, ts, "issue3", fresh.str("access_token")); r.Status != 200 {
		t.Errorf("token of the active key after pruning: %d", r.Status)
	}
}

func TestIssue3JWTAttacks(t *testing.T) {
	t.Parallel()
	short := realmVariant(t, "issue3-other.json", func(m map[string]any) {
		m["realm"] = "issue3-short"
		m["accessTokenLifespan"] = 1
	})
	ts := startServer(t, []string{"issue3-base.json", "issue3-other.json", short})
	ctx := context.Background()
	l := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
	at := l.str("access_token")
	h, c := jwtHeader(t, at), claims(t, at)
	if r := userinfo(t, ts, "issue3", at); r.Status != 200 {
		t.Fatalf("genuine token: %d %s", r.Status, r.Body)
	}

	wantRejected(t, ts, "alg none", jws(t, map[string]any{"alg": "none", "typ": "JWT", "kid": h["kid"]}, c, nil))
	wantRejected(t, ts, "alg none, no kid", jws(t, map[string]any{"alg": "none"}, c, nil))
	wantRejected(t, ts, "alg None", jws(t, map[string]any{"alg": "None", "kid": h["kid"]}, c, signHS256(nil)))

	// HS256 keyed with the realm's public RSA key, as PEM and as DER.
	ks, err := ts.Srv.Store.ListKeys(ctx, "issue3")
	if err != nil {
		t.Fatal(err)
	}
	var pubDER []byte
	for _, k := range ks {
		if k.KID == h["kid"] {
			pubDER = k.Public
		}
	}
	if pubDER == nil {
		t.Fatal("signing key not found in the store")
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	for name, key := range map[string][]byte{"PEM": pemBytes, "PEM without newline": []byte(strings.TrimSpace(string(pemBytes))), "DER": pubDER} {
		wantRejected(t, ts, "HS256 with the public key as "+name, jws(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": h["kid"]}, c, signHS256(key)))
		wantRejected(t, ts, "HS256 (no kid) with the public key as "+name, jws(t, map[string]any{"alg": "HS256", "typ": "JWT"}, c, signHS256(key)))
	}

	// A token of another realm on the same server.
	other := mustLogin(t, ts, "issue3-other", "app", "alice", "alice-pw")
	wantRejected(t, ts, "token of another realm", other.str("access_token"))
	// … also when the other realm's token is relabelled with this issuer:
	// its key is not this realm's.
	oc := claims(t, other.str("access_token"))
	oc["iss"] = c["iss"]
	parts := strings.Split(other.str("access_token"), ".")
	ob, _ := json.Marshal(oc)
	wantRejected(t, ts, "relabelled token of another realm", parts[0]+"."+b64url(ob)+"."+parts[2])

	// A refresh token is not a bearer token.
	rt := l.str("refresh_token")
	if r := userinfo(t, ts, "issue3", rt); r.Status != 401 {
		t.Errorf("refresh token as bearer: userinfo %d", r.Status)
	}
	if r := introspect(t, ts, "issue3", "api-secret-3c1f0d9b7a", rt); r.JSON["active"] == true && r.JSON["token_type"] == "Bearer" {
		t.Errorf("refresh token introspects as a Bearer token: %s", r.Body)
	}
	// An access token is not a refresh token.
	if r := refresh(t, ts, "issue3", "app", at); r.Status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("access token as refresh token: %d %s", r.Status, r.Body)
	}
	// An ID token is not a bearer token either.
	withID := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw", "scope", "openid")
	if r := userinfo(t, ts, "issue3", withID.str("id_token")); r.Status != 401 {
		t.Errorf("ID token as bearer: userinfo %d", r.Status)
	}
	// A tampered payload fails the signature.
	c2 := claims(t, at)
	c2["sub"] = "someone-else"
	pb, _ := json.Marshal(c2)
	ap := strings.Split(at, ".")
	wantRejected(t, ts, "tampered payload", ap[0]+"."+b64url(pb)+"."+ap[2])

	// An expired token (accessTokenLifespan 1 s).
	exp := mustLogin(t, ts, "issue3-short", "app", "alice", "alice-pw")
	if r := userinfo(t, ts, "issue3-short", exp.str("access_token")); r.Status != 200 {
		t.Fatalf("fresh short-lived token: %d %s", r.Status, r.Body)
	}
	time.Sleep(2100 * time.Millisecond)
	if r := userinfo(t, ts, "issue3-short", exp.str("access_token")); r.Status != 401 {
		t.Errorf("expired token: userinfo %d %s", r.Status, r.Body)
	}
	ir := postForm(t, ts.oidc("issue3-short", "token/introspect"), url.Values{"client_id": {"api"}, "client_secret": {"other-api-secret-77e2"}, "token": {exp.str("access_token")}})
	if ir.Status != 200 || ir.JSON["active"] != false {
		t.Errorf("expired token introspection: %d %s", ir.Status, ir.Body)
	}
}
