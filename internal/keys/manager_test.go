package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwt"
	"github.com/gatehouse/gatehouse/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func randomMaster(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestManager(t *testing.T, st store.Store, master []byte) (*Manager, *clock) {
	t.Helper()
	m, err := NewManager(st, master, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m.now = c.now
	return m, c
}

func mustSign(t *testing.T, s jwt.Signer, claims string) *jwt.Parsed {
	t.Helper()
	tok, err := jwt.Sign(s, "JWT", []byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	p, err := jwt.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func jwksKIDs(t *testing.T, m *Manager, realm string) []string {
	t.Helper()
	data, err := m.JWKS(context.Background(), realm)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwt.ParseJWKS(data)
	if err != nil {
		t.Fatalf("own JWKS does not parse: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestSealOpen(t *testing.T) {
	m, _ := newTestManager(t, newMemStore(), randomMaster(t))
	plain := []byte("the private key bytes")
	a, err := m.Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Seal(plain)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same data are equal: nonce not random")
	}
	if bytes.Contains(a, plain) {
		t.Fatal("sealed data contains the plaintext")
	}
	if a[0] != sealVersion {
		t.Fatalf("version byte %d", a[0])
	}
	got, err := m.Open(a)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	other, _ := newTestManager(t, newMemStore(), randomMaster(t))
	if _, err := other.Open(a); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened with the wrong master key: %v", err)
	}
	for i := range a {
		bad := bytes.Clone(a)
		bad[i] ^= 0x01
		if _, err := m.Open(bad); !errors.Is(err, ErrOpen) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {sealVersion}, a[:len(a)-1], a[:13]} {
		if _, err := m.Open(bad); !errors.Is(err, ErrOpen) {
			t.Fatalf("truncated to %d: %v", len(bad), err)
		}
	}
	if _, err := NewManager(newMemStore(), make([]byte, 16), nil); err == nil {
		t.Fatal("accepted a 16-byte master key")
	}
}

func TestLoadMasterKeyFile(t *testing.T) {
	t.Setenv(MasterKeyEnv, "")
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	k1, created, err := LoadMasterKey(path)
	if err != nil || !created || len(k1) != MasterKeySize {
		t.Fatalf("first load: %d bytes, created %v, %v", len(k1), created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	k2, created, err := LoadMasterKey(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: created %v, same %v, %v", created, bytes.Equal(k1, k2), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}

	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("not base64!\n"), 0o600)
	if _, _, err := LoadMasterKey(bad); err == nil {
		t.Fatal("accepted a garbage key file")
	}
	short := filepath.Join(t.TempDir(), "short.key")
	os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))), 0o600)
	if _, _, err := LoadMasterKey(short); err == nil {
		t.Fatal("accepted a 16-byte key file")
	}
	if _, _, err := LoadMasterKey(""); err == nil {
		t.Fatal("no env and no path gave a key")
	}
}

func TestLoadMasterKeyConcurrentCreate(t *testing.T) {
	t.Setenv(MasterKeyEnv, "")
	path := filepath.Join(t.TempDir(), "master.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	creators := make([]bool, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, c, err := LoadMasterKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i], creators[i] = k, c
		}()
	}
	wg.Wait()
	n := 0
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatal("concurrent first loads disagree on the key")
		}
		if creators[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d callers report creating the key", n)
	}
}

func TestLoadMasterKeyEnv(t *testing.T) {
	raw := randomMaster(t)
	path := filepath.Join(t.TempDir(), "never-created.key")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		t.Setenv(MasterKeyEnv, enc.EncodeToString(raw)+"\n")
		k, created, err := LoadMasterKey(path)
		if err != nil || created || !bytes.Equal(k, raw) {
			t.Fatalf("env key: created %v, %v", created, err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("key file written although the env var was set")
	}
	t.Setenv(MasterKeyEnv, base64.StdEncoding.EncodeToString(raw[:31]))
	if _, _, err := LoadMasterKey(path); err == nil {
		t.Fatal("accepted a 31-byte env key")
	}
	t.Setenv(MasterKeyEnv, "%%%")
	_, _, err := LoadMasterKey(path)
	if err == nil || strings.Contains(err.Error(), "%%%") {
		t.Fatalf("bad env key: %v", err)
	}
}

func TestSignerCreatesStoresAndCaches(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("demo")
	m, _ := newTestManager(t, st, randomMaster(t))

	if err := m.EnsureRealm(ctx, "demo", jwt.RS256); err != nil {
		t.Fatal(err)
	}
	ks := st.rawKeys("demo")
	if len(ks) != 2 {
		t.Fatalf("%d keys after EnsureRealm, want RS256 + hmac", len(ks))
	}
	var sigKey, hmacKey store.Key
	for _, k := range ks {
		switch k.Use {
		case UseSig:
			sigKey = k
		case UseHMAC:
			hmacKey = k
		}
	}
	if sigKey.Alg != jwt.RS256 || !sigKey.Active || hmacKey.Alg != jwt.HS256 || !hmacKey.Active || len(hmacKey.Public) != 0 {
		t.Fatalf("stored keys: %+v / %+v", sigKey, hmacKey)
	}
	// The private key is sealed: not PKCS#8 as stored, PKCS#8 once opened.
	if _, err := x509.ParsePKCS8PrivateKey(sigKey.Private); err == nil {
		t.Fatal("private key stored in the clear")
	}
	der, err := m.Open(sigKey.Private)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
		t.Fatalf("sealed content is not PKCS#8: %v", err)
	}
	if _, err := x509.ParsePKIXPublicKey(sigKey.Public); err != nil {
		t.Fatalf("public is not PKIX: %v", err)
	}
	if sigKey.KID != Thumbprint(sigKey.Public) || len(sigKey.KID) != 32 {
		t.Fatalf("kid %q is not the thumbprint", sigKey.KID)
	}
	if len(hmacKey.KID) < 16 {
		t.Fatalf("hmac kid %q", hmacKey.KID)
	}

	// Cached: using the keys again lists nothing and creates nothing.
	before := st.listings
	s, err := m.Signer(ctx, "demo", jwt.RS256)
	if err != nil {
		t.Fatal(err)
	}
	if s.KID() != sigKey.KID || s.Alg() != jwt.RS256 {
		t.Fatalf("signer %s/%s", s.Alg(), s.KID())
	}
	p := mustSign(t, s, `{"sub":"a"}`)
	for range 10 {
		if err := m.Verify(ctx, "demo", UseSig, p); err != nil {
			t.Fatal(err)
		}
	}
	if st.listings != before {
		t.Fatalf("%d store listings on a warm cache", st.listings-before)
	}

	// Another alg in the same realm gets its own key on first use.
	for _, alg := range []string{jwt.ES256, jwt.EdDSA} {
		s, err := m.Signer(ctx, "demo", alg)
		if err != nil {
			t.Fatal(err)
		}
		if s.Alg() != alg {
			t.Fatalf("asked %s, got %s", alg, s.Alg())
		}
		if err := m.Verify(ctx, "demo", UseSig, mustSign(t, s, `{}`)); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
	}
	if n := len(st.rawKeys("demo")); n != 4 {
		t.Fatalf("%d keys, want 4", n)
	}
	if got := jwksKIDs(t, m, "demo"); len(got) != 3 {
		t.Fatalf("JWKS has %d keys, want the 3 signing keys", len(got))
	}

	for _, alg := range []string{jwt.HS256, "none", "RS512", ""} {
		if _, err := m.Signer(ctx, "demo", alg); !errors.Is(err, jwt.ErrUnsupportedAlg) {
			t.Fatalf("Signer(%q) = %v", alg, err)
		}
	}
	if _, err := m.Rotate(ctx, "demo", "RS512", time.Hour); !errors.Is(err, jwt.ErrUnsupportedAlg) {
		t.Fatalf("Rotate(RS512) = %v", err)
	}
}

func TestConcurrentFirstUseCreatesOneKey(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("r")
	m, _ := newTestManager(t, st, randomMaster(t))
	const n = 16
	kids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s jwt.Signer
			var err error
			if i%2 == 0 {
				s, err = m.Signer(ctx, "r", jwt.ES256)
			} else {
				s, err = m.RefreshSigner(ctx, "r")
			}
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = s.KID()
		}()
	}
	wg.Wait()
	ks := st.rawKeys("r")
	if len(ks) != 2 {
		t.Fatalf("%d keys created, want one ES256 and one hmac", len(ks))
	}
	for i := range kids {
		if kids[i] != kids[i%2] {
			t.Fatal("callers got different keys")
		}
	}
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("demo")
	m, clk := newTestManager(t, st, randomMaster(t))

	oldSigner, err := m.Signer(ctx, "demo", jwt.RS256)
	if err != nil {
		t.Fatal(err)
	}
	oldTok := mustSign(t, oldSigner, `{"sub":"before-rotation"}`)

	clk.advance(time.Second)
	newKID, err := m.Rotate(ctx, "demo", jwt.RS256, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldSigner.KID() {
		t.Fatal("rotation kept the kid")
	}
	s, err := m.Signer(ctx, "demo", jwt.RS256)
	if err != nil {
		t.Fatal(err)
	}
	if s.KID() != newKID {
		t.Fatalf("signing with %s after rotation, want %s", s.KID(), newKID)
	}
	newTok := mustSign(t, s, `{"sub":"after-rotation"}`)
	for _, k := range st.rawKeys("demo") {
		if k.KID == oldSigner.KID() && (k.Active || !k.RetireAt.Equal(clk.now().Add(10*time.Minute))) {
			t.Fatalf("old key after rotation: active %v, retire %v", k.Active, k.RetireAt)
		}
	}

	// Until RetireAt both verify and both are published, the new one first.
	clk.advance(9 * time.Minute)
	if err := m.Verify(ctx, "demo", UseSig, oldTok); err != nil {
		t.Fatalf("old token before RetireAt: %v", err)
	}
	if err := m.Verify(ctx, "demo", UseSig, newTok); err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, m, "demo"); len(got) != 2 || got[0] != newKID || got[1] != oldSigner.KID() {
		t.Fatalf("JWKS during retirement: %v", got)
	}

	// After RetireAt the old key neither verifies nor is published, even
	// before Prune deletes it (and with the JWKS cached from before).
	clk.advance(2 * time.Minute)
	if err := m.Verify(ctx, "demo", UseSig, oldTok); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("old token after RetireAt: %v", err)
	}
	if got := jwksKIDs(t, m, "demo"); len(got) != 1 || got[0] != newKID {
		t.Fatalf("JWKS after retirement: %v", got)
	}
	if err := m.Verify(ctx, "demo", UseSig, newTok); err != nil {
		t.Fatal(err)
	}

	if err := m.Prune(ctx, clk.now()); err != nil {
		t.Fatal(err)
	}
	if ks := st.rawKeys("demo"); len(ks) != 1 || ks[0].KID != newKID {
		t.Fatalf("after Prune: %d keys", len(ks))
	}
	if err := m.Verify(ctx, "demo", UseSig, oldTok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old token after Prune: %v", err)
	}
}

func TestRefreshKeyRotationAndSeparation(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("demo")
	m, clk := newTestManager(t, st, randomMaster(t))

	rs, err := m.RefreshSigner(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if rs.Alg() != jwt.HS256 {
		t.Fatal(rs.Alg())
	}
	refresh := mustSign(t, rs, `{"typ":"Refresh"}`)
	if err := m.Verify(ctx, "demo", UseHMAC, refresh); err != nil {
		t.Fatal(err)
	}
	// A refresh token is not an access token.
	if err := m.Verify(ctx, "demo", UseSig, refresh); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("refresh token as access token: %v", err)
	}
	es, err := m.Signer(ctx, "demo", jwt.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(ctx, "demo", UseHMAC, mustSign(t, es, `{}`)); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("access token as refresh token: %v", err)
	}
	for _, kid := range jwksKIDs(t, m, "demo") {
		if kid == rs.KID() {
			t.Fatal("hmac key published in the JWKS")
		}
	}
	if data, _ := m.JWKS(ctx, "demo"); bytes.Contains(data, []byte(`"oct"`)) || bytes.Contains(data, []byte(`"k"`)) {
		t.Fatalf("JWKS leaks a secret: %s", data)
	}

	newKID, err := m.Rotate(ctx, "demo", jwt.HS256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rs2, _ := m.RefreshSigner(ctx, "demo")
	if rs2.KID() != newKID || newKID == rs.KID() {
		t.Fatalf("refresh signer %s after rotation to %s", rs2.KID(), newKID)
	}
	if err := m.Verify(ctx, "demo", UseHMAC, refresh); err != nil {
		t.Fatalf("old refresh token within retirement: %v", err)
	}
	// The EdDSA key was not touched by rotating HS256.
	if s, _ := m.Signer(ctx, "demo", jwt.EdDSA); s.KID() != es.KID() {
		t.Fatal("HS256 rotation rotated the EdDSA key")
	}
	clk.advance(time.Hour)
	if err := m.Verify(ctx, "demo", UseHMAC, refresh); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("old refresh token after RetireAt: %v", err)
	}
}

// TestKidAlgConfusion: the header may name a real kid of the realm, but the
// key's own use and alg decide how the signature is checked.
func TestKidAlgConfusion(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("demo")
	m, _ := newTestManager(t, st, randomMaster(t))
	if err := m.EnsureRealm(ctx, "demo", jwt.ES256); err != nil {
		t.Fatal(err)
	}
	rs, _ := m.RefreshSigner(ctx, "demo")
	es, _ := m.Signer(ctx, "demo", jwt.ES256)

	// kid of the hmac key, alg RS256 (signature made with the HMAC key,
	// as an attacker who somehow holds it might).
	hmacTok := mustSign(t, rs, `{"sub":"x"}`)
	forged := *hmacTok
	forged.Header.Alg = jwt.RS256
	for _, use := range []string{UseHMAC, UseSig} {
		if err := m.Verify(ctx, "demo", use, &forged); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("hmac kid with RS256 (use %s): %v", use, err)
		}
	}

	// kid of the ES256 key, alg HS256, HMAC made with its public key DER.
	var pubDER []byte
	for _, k := range st.rawKeys("demo") {
		if k.KID == es.KID() {
			pubDER = k.Public
		}
	}
	hs, err := jwt.NewSigner(jwt.HS256, es.KID(), pubDER)
	if err != nil {
		t.Fatal(err)
	}
	confused := mustSign(t, hs, `{"sub":"admin"}`)
	if err := m.Verify(ctx, "demo", UseSig, confused); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("HS256 on an ES256 kid: %v", err)
	}

	// No kid, or a kid of another realm.
	noKID, _ := jwt.NewSigner(jwt.HS256, "", make([]byte, 32))
	if err := m.Verify(ctx, "demo", UseHMAC, mustSign(t, noKID, `{}`)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("no kid: %v", err)
	}
	if err := m.Verify(ctx, "other", UseSig, mustSign(t, es, `{}`)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("kid of another realm: %v", err)
	}
	// Right kid and alg, wrong signature.
	bad := mustSign(t, es, `{}`)
	bad.Signature[3] ^= 1
	if err := m.Verify(ctx, "demo", UseSig, bad); !errors.Is(err, jwt.ErrSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	if err := m.Verify(ctx, "demo", UseSig, nil); err == nil {
		t.Fatal("nil token verified")
	}
}

func TestWrongMasterKeyFailsClosed(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("demo")
	a, _ := newTestManager(t, st, randomMaster(t))
	if err := a.EnsureRealm(ctx, "demo", jwt.EdDSA); err != nil {
		t.Fatal(err)
	}
	b, _ := newTestManager(t, st, randomMaster(t))
	if _, err := b.Signer(ctx, "demo", jwt.EdDSA); !errors.Is(err, ErrOpen) {
		t.Fatalf("Signer with the wrong master key: %v", err)
	}
	if _, err := b.RefreshSigner(ctx, "demo"); !errors.Is(err, ErrOpen) {
		t.Fatalf("RefreshSigner with the wrong master key: %v", err)
	}
	if n := len(st.rawKeys("demo")); n != 2 {
		t.Fatalf("wrong master key created keys: %d", n)
	}
}

func TestChangeFeedReachesOtherReplica(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("demo")
	master := randomMaster(t)
	a, _ := newTestManager(t, st, master)
	b, _ := newTestManager(t, st, master)

	sa, err := a.Signer(ctx, "demo", jwt.ES256)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Signer(ctx, "demo", jwt.ES256)
	if err != nil || sb.KID() != sa.KID() {
		t.Fatalf("replica b: %v, kid %v", err, sb)
	}
	if got := jwksKIDs(t, b, "demo"); len(got) != 1 {
		t.Fatal(got)
	}
	newKID, err := a.Rotate(ctx, "demo", jwt.ES256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// b was warm; the feed must have dropped its cache.
	sb, err = b.Signer(ctx, "demo", jwt.ES256)
	if err != nil || sb.KID() != newKID {
		t.Fatalf("replica b signs with %v after rotation to %s", sb, newKID)
	}
	if got := jwksKIDs(t, b, "demo"); len(got) != 2 || got[0] != newKID {
		t.Fatalf("replica b JWKS: %v", got)
	}

	// After Close, b no longer follows the feed.
	b.Close()
	before := st.listings
	b.JWKS(ctx, "demo")
	a.Rotate(ctx, "demo", jwt.ES256, time.Hour)
	b.JWKS(ctx, "demo")
	if st.listings != before+1 { // a's Rotate lists once; b serves from cache
		t.Fatalf("listings %d", st.listings-before)
	}
}

// unknownKIDSetup gives a manager with one realm key and a token whose kid
// names no key of that realm.
func unknownKIDSetup(t *testing.T) (*memStore, *Manager, *clock, *jwt.Parsed) {
	t.Helper()
	st := newMemStore("demo")
	m, clk := newTestManager(t, st, randomMaster(t))
	if _, err := m.Signer(context.Background(), "demo", jwt.EdDSA); err != nil {
		t.Fatal(err)
	}
	s, _ := jwt.NewSigner(jwt.HS256, "no-such-kid", make([]byte, 32))
	return st, m, clk, mustSign(t, s, `{}`)
}

func TestUnknownKIDReloadIsThrottled(t *testing.T) {
	ctx := context.Background()
	st, m, clk, p := unknownKIDSetup(t)
	before := st.listings
	for range 100 {
		if err := m.Verify(ctx, "demo", UseSig, p); !errors.Is(err, ErrUnknownKey) {
			t.Fatal(err)
		}
	}
	if st.listings-before > 1 {
		t.Fatalf("%d listings for 100 unknown kids", st.listings-before)
	}
	clk.advance(reloadAfterMiss)
	m.Verify(ctx, "demo", UseSig, p)
	m.Verify(ctx, "demo", UseSig, p)
	if st.listings-before > 2 {
		t.Fatalf("%d listings", st.listings-before)
	}
}

// A burst of tokens with unknown kids arriving together, once the snapshot
// is old enough to be reloaded, reads the store once, not once per token.
func TestUnknownKIDReloadIsShared(t *testing.T) {
	ctx := context.Background()
	st, m, clk, p := unknownKIDSetup(t)
	clk.advance(reloadAfterMiss)
	st.mu.Lock()
	st.listDelay = 50 * time.Millisecond
	before := st.listings
	st.mu.Unlock()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := m.Verify(ctx, "demo", UseSig, p); !errors.Is(err, ErrUnknownKey) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := st.listings - before; n != 1 {
		t.Fatalf("%d listings for 20 concurrent unknown kids, want 1", n)
	}
}

func TestJWKSDocument(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("demo")
	m, _ := newTestManager(t, st, randomMaster(t))
	data, err := m.JWKS(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"keys":[]}` {
		t.Fatalf("empty realm JWKS: %s", data)
	}
	s, _ := m.Signer(ctx, "demo", jwt.ES256)
	data, _ = m.JWKS(ctx, "demo")
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Keys) != 1 {
		t.Fatalf("%s: %v", data, err)
	}
	k := doc.Keys[0]
	if k["kid"] != s.KID() || k["use"] != "sig" || k["alg"] != "ES256" || k["kty"] != "EC" || k["crv"] != "P-256" || k["d"] != nil {
		t.Fatalf("JWK %v", k)
	}
	// The published key verifies what the realm signs.
	set, _ := jwt.ParseJWKS(data)
	pub, err := set.Keys[0].PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	p := mustSign(t, s, `{"sub":"a"}`)
	if err := jwt.Verify(p.Header.Alg, pub, p.SigningInput, p.Signature); err != nil {
		t.Fatal(err)
	}
}
