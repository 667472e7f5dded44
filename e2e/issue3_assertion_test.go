package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/jwt"
	"github.com/gatehouse/gatehouse/internal/server"
)

const jwtSecret = "jwt-secret-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

// assertionEnv is a server with the issue3-jwt realm whose client-jwt
// clients trust freshly generated keys, inline and by URL.
type assertionEnv struct {
	ts        *testServer
	rsaKey    *rsa.PrivateKey
	ecKey     *ecdsa.PrivateKey
	otherRSA  *rsa.PrivateKey
	jwksFetch atomic.Int32
}

var (
	testKeysOnce sync.Once
	testRSA      [2]*rsa.PrivateKey
)

// rsaKeys generates two RSA keys once per test binary: key generation
// under the race detector is slow.
func rsaKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	testKeysOnce.Do(func() {
		for i := range testRSA {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testRSA[i] = k
		}
	})
	return testRSA[0], testRSA[1]
}

func newAssertionEnv(t testing.TB) *assertionEnv {
	e := &assertionEnv{}
	e.rsaKey, e.otherRSA = rsaKeys(t)
	var err error
	if e.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	rj, err := jwt.PublicJWK("rs1", "RS256", &e.rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ej, err := jwt.PublicJWK("ec1", "ES256", &e.ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jwt.JWKS{Keys: []jwt.JWK{rj, ej}})
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.jwksFetch.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(set)
	}))
	t.Cleanup(jwksSrv.Close)
	realm := realmVariant(t, "issue3-assertion.json", func(m map[string]any) {
		for _, c := range m["clients"].([]any) {
			c := c.(map[string]any)
			switch c["clientId"] {
			case "jwt-inline":
				c["attributes"] = map[string]any{"jwks.string": string(set)}
			case "jwt-url":
				c["attributes"] = map[string]any{"jwks.url": jwksSrv.URL + "/jwks"}
			}
		}
	})
	if tt, ok := t.(*testing.T); ok {
		e.ts = startServer(tt, []string{realm})
	} else {
		e.ts = startQuietServer(t, realm)
	}
	return e
}

// startQuietServer is startServer for a fuzz target (the harness takes a
// *testing.T): same configuration, logs discarded.
func startQuietServer(t testing.TB, realmFile string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv, err := server.Open(context.Background(), server.Config{
		Addr: ln.Addr().String(), DataDir: t.TempDir(), PublicURL: base,
		ImportRealms: []string{realmFile}, Passwords: fastPasswords,
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { closeServer(t, srv) })
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := readyProbe.Get(base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &testServer{URL: base, Srv: srv}
}

func (e *assertionEnv) issuer() string { return e.ts.URL + "/realms/issue3-jwt" }

// claimsFor are valid RFC 7523 claims for client.
func (e *assertionEnv) claimsFor(client string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss": client, "sub": client, "aud": e.issuer() + "/protocol/openid-connect/token",
		"exp": now + 60, "iat": now, "jti": core.NewID(),
	}
}

func signRS256(k *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func signES256(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func signHS256(key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

func (e *assertionEnv) clientCredentials(t *testing.T, assertion string, extra ...string) *response {
	t.Helper()
	f := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {core.AssertionTypeJWTBearer},
		"client_assertion":      {assertion},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return postForm(t, e.ts.oidc("issue3-jwt", "token"), f)
}

func wantToken(t *testing.T, what string, r *response, client string) {
	t.Helper()
	if r.Status != 200 || r.str("access_token") == "" {
		t.Fatalf("%s: %d %s", what, r.Status, r.Body)
	}
	if azp := claims(t, r.str("access_token"))["azp"]; azp != client {
		t.Errorf("%s: azp %v, want %s", what, azp, client)
	}
}

func wantInvalidClient(t *testing.T, what string, r *response) {
	t.Helper()
	if r.Status != 401 || r.str("error") != "invalid_client" {
		t.Errorf("%s: %d %s, want 401 invalid_client", what, r.Status, r.Body)
	}
}

func TestIssue3ClientAssertions(t *testing.T) {
	t.Parallel()
	e := newAssertionEnv(t)
	rs := map[string]any{"alg": "RS256", "kid": "rs1", "typ": "JWT"}
	es := map[string]any{"alg": "ES256", "kid": "ec1", "typ": "JWT"}
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}

	wantToken(t, "private_key_jwt RS256", e.clientCredentials(t, jws(t, rs, e.claimsFor("jwt-inline"), signRS256(e.rsaKey))), "jwt-inline")
	wantToken(t, "private_key_jwt ES256", e.clientCredentials(t, jws(t, es, e.claimsFor("jwt-inline"), signES256(e.ecKey))), "jwt-inline")
	// The issuer is an accepted audience too, and client_id may be sent.
	c := e.claimsFor("jwt-inline")
	c["aud"] = e.issuer()
	wantToken(t, "aud = issuer", e.clientCredentials(t, jws(t, rs, c, signRS256(e.rsaKey)), "client_id", "jwt-inline"), "jwt-inline")

	// jwks.url: fetched on first use, then served from the cache.
	for i := 0; i < 3; i++ {
		wantToken(t, "jwks.url RS256", e.clientCredentials(t, jws(t, rs, e.claimsFor("jwt-url"), signRS256(e.rsaKey))), "jwt-url")
		wantToken(t, "jwks.url ES256", e.clientCredentials(t, jws(t, es, e.claimsFor("jwt-url"), signES256(e.ecKey))), "jwt-url")
	}
	if n := e.jwksFetch.Load(); n != 1 {
		t.Errorf("jwks.url fetched %d times, want 1", n)
	}

	wantToken(t, "client_secret_jwt", e.clientCredentials(t, jws(t, hs, e.claimsFor("jwt-secret"), signHS256([]byte(jwtSecret)))), "jwt-secret")

	// Rejections.
	bad := func(what, client string, header map[string]any, mutate func(map[string]any), sign func([]byte) []byte) {
		t.Helper()
		c := e.claimsFor(client)
		if mutate != nil {
			mutate(c)
		}
		wantInvalidClient(t, what, e.clientCredentials(t, jws(t, header, c, sign)))
	}
	now := time.Now().Unix()
	bad("wrong aud", "jwt-inline", rs, func(c map[string]any) { c["aud"] = "https://elsewhere.example/token" }, signRS256(e.rsaKey))
	bad("other realm aud", "jwt-inline", rs, func(c map[string]any) { c["aud"] = e.ts.URL + "/realms/issue3" }, signRS256(e.rsaKey))
	bad("expired", "jwt-inline", rs, func(c map[string]any) { c["exp"] = now - 5; c["iat"] = now - 65 }, signRS256(e.rsaKey))
	bad("no exp", "jwt-inline", rs, func(c map[string]any) { delete(c, "exp") }, signRS256(e.rsaKey))
	bad("exp more than an hour away", "jwt-inline", rs, func(c map[string]any) { c["exp"] = now + 2*3600 }, signRS256(e.rsaKey))
	bad("missing jti", "jwt-inline", rs, func(c map[string]any) { delete(c, "jti") }, signRS256(e.rsaKey))
	bad("iss differs from sub", "jwt-inline", rs, func(c map[string]any) { c["iss"] = "jwt-url" }, signRS256(e.rsaKey))
	bad("wrong key", "jwt-inline", rs, nil, signRS256(e.otherRSA))
	bad("wrong key without kid", "jwt-inline", map[string]any{"alg": "RS256"}, nil, signRS256(e.otherRSA))
	bad("wrong key by url", "jwt-url", rs, nil, signRS256(e.otherRSA))
	bad("ES256 header over an RSA signature", "jwt-inline", map[string]any{"alg": "ES256", "kid": "rs1"}, nil, signRS256(e.rsaKey))
	bad("alg none", "jwt-inline", map[string]any{"alg": "none"}, nil, nil)
	bad("alg none with a signature", "jwt-inline", map[string]any{"alg": "none"}, nil, signRS256(e.rsaKey))
	pubDER, _ := x509.MarshalPKIXPublicKey(&e.rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	bad("HS256 for a client-jwt client (key = public PEM)", "jwt-inline", hs, nil, signHS256(pubPEM))
	bad("HS256 for a client-jwt client (key = public DER)", "jwt-inline", hs, nil, signHS256(pubDER))
	bad("HS256 for a client-jwt client (jwks.url)", "jwt-url", hs, nil, signHS256(pubPEM))
	bad("client_secret_jwt with the wrong secret", "jwt-secret", hs, nil, signHS256([]byte("not-the-secret")))
	bad("RS256 for a client_secret_jwt client", "jwt-secret", rs, nil, signRS256(e.rsaKey))
	bad("unknown client", "nobody", rs, nil, signRS256(e.rsaKey))
	bad("public client", "app", rs, nil, signRS256(e.rsaKey))

	// A jti is good once.
	for _, tc := range []struct {
		client string
		hdr    map[string]any
		sign   func([]byte) []byte
	}{
		{"jwt-inline", rs, signRS256(e.rsaKey)},
		{"jwt-url", es, signES256(e.ecKey)},
		{"jwt-secret", hs, signHS256([]byte(jwtSecret))},
	} {
		a := jws(t, tc.hdr, e.claimsFor(tc.client), tc.sign)
		wantToken(t, tc.client+" first use", e.clientCredentials(t, a), tc.client)
		wantInvalidClient(t, tc.client+" replayed assertion", e.clientCredentials(t, a))
	}

	// The client_id form field must agree with the assertion.
	a := jws(t, rs, e.claimsFor("jwt-inline"), signRS256(e.rsaKey))
	wantInvalidClient(t, "client_id mismatch", e.clientCredentials(t, a, "client_id", "jwt-url"))

	// A client-jwt client cannot fall back to a secret.
	r := postForm(t, e.ts.oidc("issue3-jwt", "token"), url.Values{"grant_type": {"client_credentials"}, "client_id": {"jwt-secret"}, "client_secret": {jwtSecret}})
	wantInvalidClient(t, "client_secret_jwt client with a plain secret", r)
}

// TestIssue3PublicRefreshWithAssertionType is seed 002's refresh: a public
// client sends client_assertion_type without a client_assertion.
func TestIssue3PublicRefreshWithAssertionType(t *testing.T) {
	t.Parallel()
	ts := startServer(t, []string{"issue3-assertion.json"})
	l := mustLogin(t, ts, "issue3-jwt", "app", "alice", "alice-pw")
	r := postForm(t, ts.oidc("issue3-jwt", "token"), url.Values{
		"grant_type":            {"refresh_token"},
		"client_id":             {"app"},
		"refresh_token":         {l.str("refresh_token")},
		"client_assertion_type": {core.AssertionTypeJWTBearer},
	})
	if r.Status != 200 || r.str("access_token") == "" {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
}

// fuzzClient bounds each fuzz request, so that a hang is reported with
// the goroutines that caused it rather than as a dead worker.
var fuzzClient = &http.Client{Timeout: 10 * time.Second}

// FuzzAssertion throws arbitrary client assertions at the token endpoint:
// none may authenticate, and none may cause a server error.
func FuzzAssertion(f *testing.F) {
	e := newAssertionEnv(f)
	rs := map[string]any{"alg": "RS256", "kid": "rs1"}
	expired := e.claimsFor("jwt-inline")
	expired["exp"] = time.Now().Unix() - 10
	f.Add(jws(f, rs, expired, signRS256(e.rsaKey)))
	f.Add(jws(f, map[string]any{"alg": "none"}, e.claimsFor("jwt-inline"), nil))
	f.Add(jws(f, map[string]any{"alg": "HS256"}, e.claimsFor("jwt-secret"), signHS256([]byte("guess"))))
	f.Add(jws(f, map[string]any{"alg": "ES256", "kid": "ec1"}, e.claimsFor("jwt-url"), signRS256(e.otherRSA)))
	f.Add("e30.e30.e30")
	f.Add("..")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.AA")
	f.Add(`eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiYiJdfQ.e30.AA`)
	u := e.ts.oidc("issue3-jwt", "token")
	f.Fuzz(func(t *testing.T, assertion string) {
		form := url.Values{
			"grant_type":            {"client_credentials"},
			"client_assertion_type": {core.AssertionTypeJWTBearer},
			"client_assertion":      {assertion},
		}
		resp, err := fuzzClient.PostForm(u, form)
		if err != nil {
			buf := make([]byte, 1<<20)
			t.Fatalf("assertion %q: %v\n%s", assertion, err, buf[:runtime.Stack(buf, true)])
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := &response{Status: resp.StatusCode, Body: body}
		_ = json.Unmarshal(body, &r.JSON)
		if assertion == "" {
			// No assertion: an unauthenticated request, refused as such.
			if r.Status == 200 || r.Status >= 500 {
				t.Fatalf("empty assertion: %d %s", r.Status, r.Body)
			}
			return
		}
		if r.Status != 400 && r.Status != 401 {
			t.Fatalf("assertion %q: %d %s", assertion, r.Status, r.Body)
		}
		if r.str("error") == "" {
			t.Fatalf("assertion %q: no OAuth error in %s", assertion, r.Body)
		}
	})
}
