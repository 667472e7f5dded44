package middleware

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// issuer is a fake gatehouse realm: discovery, JWKS and introspection on a
// real loopback server, with keys generated per test run.
type issuer struct {
	srv     *httptest.Server
	url     string // the issuer URL, .../realms/test
	rsa     *rsa.PrivateKey
	rsa2    *rsa.PrivateKey // published only after rotate
	ec      *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rotated atomic.Bool

	jwksHits, introHits atomic.Int32
	discoveryIssuer     string // overrides the issuer in discovery when set

	mu      sync.Mutex
	revoked map[string]bool // jti
}

var (
	keysOnce          sync.Once
	testRSA, testRSA2 *rsa.PrivateKey
	testEC            *ecdsa.PrivateKey
	testEd            ed25519.PrivateKey
)

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newIssuer(t testing.TB) *issuer {
	keysOnce.Do(func() {
		testRSA, _ = rsa.GenerateKey(rand.Reader, 2048)
		testRSA2, _ = rsa.GenerateKey(rand.Reader, 2048)
		testEC, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, testEd, _ = ed25519.GenerateKey(rand.Reader)
	})
	is := &issuer{rsa: testRSA, rsa2: testRSA2, ec: testEC, ed: testEd, revoked: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /realms/test/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := is.url
		if is.discoveryIssuer != "" {
			iss = is.discoveryIssuer
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": is.url + "/protocol/openid-connect/certs",
			"introspection_endpoint": is.url + "/protocol/openid-connect/token/introspect"})
	})
	mux.HandleFunc("GET /realms/test/protocol/openid-connect/certs", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		rsaJWK := func(kid string, k *rsa.PrivateKey) map[string]string {
			return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
		}
		keys := []map[string]string{
			rsaJWK("rsa", is.rsa),
			{"kty": "EC", "kid": "ec", "alg": "ES256", "crv": "P-256", "x": b64u(is.ec.X.FillBytes(make([]byte, 32))), "y": b64u(is.ec.Y.FillBytes(make([]byte, 32)))},
			{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64u(is.ed.Public().(ed25519.PublicKey))},
			{"kty": "RSA", "kid": "enc", "use": "enc", "n": b64u(is.rsa.N.Bytes()), "e": "AQAB"},
			{"kty": "oct", "kid": "hmac", "k": b64u([]byte("secret"))},
		}
		if is.rotated.Load() {
			keys = append(keys, rsaJWK("rsa2", is.rsa2))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	mux.HandleFunc("POST /realms/test/protocol/openid-connect/token/introspect", func(w http.ResponseWriter, r *http.Request) {
		is.introHits.Add(1)
		id, secret, ok := r.BasicAuth()
		if !ok || id != "api" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		tok := r.PostFormValue("token")
		parts := strings.Split(tok, ".")
		var c struct {
			Jti string `json:"jti"`
		}
		if len(parts) == 3 {
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(b, &c)
		}
		is.mu.Lock()
		active := !is.revoked[c.Jti]
		is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"active": active})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.url = is.srv.URL + "/realms/test"
	return is
}

func (is *issuer) claims(extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": is.url, "sub": "user-1", "typ": "Bearer", "azp": "web", "jti": "jti-1", "sid": "sess-1",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "scope": "openid profile risks:read",
		"aud": "risks-api", "preferred_username": "alice",
		"realm_access":    map[string]any{"roles": []string{"consumer"}},
		"resource_access": map[string]any{"web": map[string]any{"roles": []string{"viewer"}}},
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// sign makes a compact JWS; key is chosen by alg unless given.
func (is *issuer) sign(t testing.TB, alg, kid string, claims map[string]any) string {
	t.Helper()
	hdr := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	hb, _ := json.Marshal(hdr)
	pb, _ := json.Marshal(claims)
	input := b64u(hb) + "." + b64u(pb)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	rk := is.rsa
	if kid == "rsa2" {
		rk = is.rsa2
	}
	switch alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, sum[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, rk, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES256":
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, is.ec, sum[:])
		if err == nil {
			sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		}
	case "EdDSA":
		sig = ed25519.Sign(is.ed, []byte(input))
	case "HS256":
		// alg confusion: the RSA public key used as an HMAC secret
		mac := hmac.New(sha256.New, is.rsa.N.Bytes())
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	case "none":
	default:
		t.Fatalf("alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64u(sig)
}

// protected serves the middleware in front of a handler that echoes the
// verified claims.
func protected(t testing.TB, cfg Config) (*Middleware, *httptest.Server) {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", 500)
			return
		}
		_ = json.NewEncoder(w).Encode(c)
	})))
	t.Cleanup(srv.Close)
	return m, srv
}

type resp struct {
	status int
	www    string
	body   string
}

func call(t testing.TB, srv *httptest.Server, authz string) resp {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/hello", nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header.Get("WWW-Authenticate"), string(b)}
}

func TestAlgorithms(t *testing.T) {
	is := newIssuer(t)
	_, srv := protected(t, Config{Issuer: is.url, Audience: "risks-api"})
	for _, c := range []struct{ alg, kid string }{{"RS256", "rsa"}, {"PS256", "rsa"}, {"ES256", "ec"}, {"EdDSA", "ed"}, {"RS256", ""}} {
		r := call(t, srv, "Bearer "+is.sign(t, c.alg, c.kid, is.claims(nil)))
		if r.status != 200 {
			t.Fatalf("%s/%s: %d %s %s", c.alg, c.kid, r.status, r.www, r.body)
		}
		var got Claims
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatal(err)
		}
		if got.Subject != "user-1" || got.Username != "alice" || !got.HasScope("risks:read") || got.RealmRoles[0] != "consumer" ||
			got.ClientRoles["web"][0] != "viewer" || got.SessionID != "sess-1" || got.AuthorizedParty != "web" || got.Audience[0] != "risks-api" {
			t.Fatalf("claims %+v", got)
		}
	}
	if n := is.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want once", n)
	}
}

func TestRejected(t *testing.T) {
	is := newIssuer(t)
	_, srv := protected(t, Config{Issuer: is.url, Audience: "risks-api"})
	good := is.sign(t, "RS256", "rsa", is.claims(nil))
	parts := strings.Split(good, ".")
	now := time.Now()
	for _, c := range []struct {
		name, tok, desc string
	}{
		{"expired", is.sign(t, "RS256", "rsa", is.claims(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "token expired"},
		{"no exp", is.sign(t, "RS256", "rsa", is.claims(map[string]any{"exp": nil})), "token has no expiry"},
		{"not yet", is.sign(t, "RS256", "rsa", is.claims(map[string]any{"nbf": now.Add(time.Minute).Unix()})), "token not yet valid"},
		{"issuer", is.sign(t, "RS256", "rsa", is.claims(map[string]any{"iss": is.url + "x"})), "wrong issuer"},
		{"id token", is.sign(t, "RS256", "rsa", is.claims(map[string]any{"typ": "ID"})), "not an access token"},
		{"refresh", is.sign(t, "ES256", "ec", is.claims(map[string]any{"typ": "Refresh"})), "not an access token"},
		{"audience", is.sign(t, "RS256", "rsa", is.claims(map[string]any{"aud": []string{"account"}})), "token audience does not include risks-api"},
		{"none", is.sign(t, "none", "rsa", is.claims(nil)), `algorithm \"none\" is not accepted`},
		{"hs256 confusion", is.sign(t, "HS256", "rsa", is.claims(nil)), `algorithm \"HS256\" is not accepted`},
		{"alg/kty mismatch", is.sign(t, "ES256", "rsa", is.claims(nil)), "unknown signing key"},
		{"rsa alg on ec key", is.sign(t, "RS256", "ec", is.claims(nil)), "unknown signing key"},
		{"encryption key", is.sign(t, "RS256", "enc", is.claims(nil)), "unknown signing key"},
		{"tampered", parts[0] + "." + b64u([]byte(`{"iss":"x"}`)) + "." + parts[2], "invalid signature"},
		{"signature", parts[0] + "." + parts[1] + "." + b64u(make([]byte, 256)), "invalid signature"},
		{"malformed", "abc.def", "malformed token"},
		{"padding", good + "=", "malformed token"},
	} {
		r := call(t, srv, "Bearer "+c.tok)
		want := `Bearer realm="test", error="invalid_token", error_description="` + c.desc + `"`
		if r.status != 401 || r.www != want {
			t.Errorf("%s: %d %q, want 401 %q", c.name, r.status, r.www, want)
		}
		if !strings.Contains(r.body, `"error":"invalid_token"`) {
			t.Errorf("%s: body %s", c.name, r.body)
		}
	}
	// A token expired within the leeway is still accepted.
	if r := call(t, srv, "Bearer "+is.sign(t, "RS256", "rsa", is.claims(map[string]any{"exp": now.Add(-3 * time.Second).Unix()}))); r.status != 200 {
		t.Errorf("within leeway: %d %s", r.status, r.body)
	}
	if r := call(t, srv, ""); r.status != 401 || r.www != `Bearer realm="test"` {
		t.Errorf("no token: %d %q", r.status, r.www)
	}
	if r := call(t, srv, "Basic eDp5"); r.status != 401 || r.www != `Bearer realm="test"` {
		t.Errorf("basic: %d %q", r.status, r.www)
	}
	if r := call(t, srv, "bearer "+good); r.status != 200 {
		t.Errorf("lower-case scheme: %d %s", r.status, r.body)
	}
}

func TestRequiredScopes(t *testing.T) {
	is := newIssuer(t)
	_, srv := protected(t, Config{Issuer: is.url, RequiredScopes: []string{"risks:read", "risks:write"}})
	r := call(t, srv, "Bearer "+is.sign(t, "ES256", "ec", is.claims(nil)))
	if r.status != 403 || r.www != `Bearer realm="test", error="insufficient_scope", scope="risks:read risks:write"` ||
		!strings.Contains(r.body, "risks:write") {
		t.Fatalf("%d %q %s", r.status, r.www, r.body)
	}
	r = call(t, srv, "Bearer "+is.sign(t, "ES256", "ec", is.claims(map[string]any{"scope": "risks:write risks:read"})))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestIntrospectionRevocation(t *testing.T) {
	is := newIssuer(t)
	_, srv := protected(t, Config{Issuer: is.url, ClientID: "api", ClientSecret: "s3cret", CacheTTL: 100 * time.Millisecond})
	tok := "Bearer " + is.sign(t, "EdDSA", "ed", is.claims(map[string]any{"jti": "j-revoke"}))
	for range 3 {
		if r := call(t, srv, tok); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	if n := is.introHits.Load(); n != 1 {
		t.Fatalf("introspected %d times within the cache TTL, want 1", n)
	}
	is.mu.Lock()
	is.revoked["j-revoke"] = true
	is.mu.Unlock()
	time.Sleep(150 * time.Millisecond)
	r := call(t, srv, tok)
	if r.status != 401 || !strings.Contains(r.www, "token is not active") {
		t.Fatalf("revoked: %d %q", r.status, r.www)
	}

	// Wrong client credentials: fail closed with 503, not 200 and not 500.
	_, bad := protected(t, Config{Issuer: is.url, IntrospectionURL: is.url + "/protocol/openid-connect/token/introspect",
		ClientID: "api", ClientSecret: "wrong"})
	if r := call(t, bad, "Bearer "+is.sign(t, "RS256", "rsa", is.claims(nil))); r.status != 503 {
		t.Fatalf("introspection failure: %d %s", r.status, r.body)
	}
}

func TestKeyRotationAndRateLimit(t *testing.T) {
	is := newIssuer(t)
	m, srv := protected(t, Config{Issuer: is.url})
	if r := call(t, srv, "Bearer "+is.sign(t, "RS256", "rsa", is.claims(nil))); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	is.rotated.Store(true)
	rotated := "Bearer " + is.sign(t, "RS256", "rsa2", is.claims(nil))
	// Within the refresh interval an unknown kid does not cause a fetch.
	for range 5 {
		if r := call(t, srv, rotated); r.status != 401 || !strings.Contains(r.www, "unknown signing key") {
			t.Fatalf("%d %q", r.status, r.www)
		}
	}
	if n := is.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times", n)
	}
	m.fetchMu.Lock()
	m.lastAttempt = time.Time{}
	m.fetchMu.Unlock()
	if r := call(t, srv, rotated); r.status != 200 {
		t.Fatalf("rotated key: %d %q", r.status, r.www)
	}
	if n := is.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times", n)
	}
}

func TestDiscoveryFailures(t *testing.T) {
	is := newIssuer(t)
	is.discoveryIssuer = "https://evil.example/realms/test"
	_, srv := protected(t, Config{Issuer: is.url})
	if r := call(t, srv, "Bearer "+is.sign(t, "RS256", "rsa", is.claims(nil))); r.status != 503 {
		t.Fatalf("issuer mismatch: %d %s", r.status, r.body)
	}
	// An explicit JWKS URL needs no discovery.
	_, srv = protected(t, Config{Issuer: is.url, JWKSURL: is.url + "/protocol/openid-connect/certs"})
	if r := call(t, srv, "Bearer "+is.sign(t, "RS256", "rsa", is.claims(nil))); r.status != 200 {
		t.Fatalf("explicit JWKS: %d %s", r.status, r.body)
	}
	for _, cfg := range []Config{{}, {Issuer: "relative/path"}, {Issuer: is.url, JWKSURL: "ftp://x"},
		{Issuer: is.url, IntrospectionURL: "https://x/introspect"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// FuzzVerify feeds arbitrary tokens to Verify with keys already loaded (so
// that it never touches the network): it must never panic, and an answer
// is either claims or an error.
func FuzzVerify(f *testing.F) {
	is := newIssuer(f)
	m, err := New(Config{Issuer: is.url})
	if err != nil {
		f.Fatal(err)
	}
	m.minRefresh = time.Hour
	m.lastAttempt = time.Now()
	res, err := http.Get(is.url + "/protocol/openid-connect/certs")
	if err != nil {
		f.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	keys, err := parseJWKS(b)
	if err != nil {
		f.Fatal(err)
	}
	m.keys.Store(&keySet{keys: keys, fetched: time.Now()})
	f.Add(is.sign(f, "RS256", "rsa", is.claims(nil)))
	f.Add(is.sign(f, "ES256", "ec", is.claims(nil)))
	f.Add(is.sign(f, "none", "", is.claims(nil)))
	f.Add("eyJhbGciOiJFZERTQSJ9.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := m.Verify(t.Context(), tok)
		if err == nil && c == nil {
			t.Fatal("nil claims without error")
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","x":""}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseJWKS(b)
	})
}
