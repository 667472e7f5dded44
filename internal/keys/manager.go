// Package keys manages each realm's signing keys (access and ID tokens) and
// HMAC keys (refresh tokens): it creates them on first use, keeps them
// decrypted in memory, publishes the public ones as a JWKS, rotates and
// retires them, and seals private material with the master key before it
// reaches the store.
//
// Tokens are signed through jwt.Signer, so a faster implementation can
// replace the crypto/* one without any caller noticing: built with -tags
// openssl, jwt.NewSigner returns an OpenSSL-backed signer for RS256 and
// PS256, and nothing here changes.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwt"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Key uses, as stored in store.Key.Use.
const (
	UseSig  = "sig"
	UseHMAC = "hmac"
)

// Errors of Verify; test with errors.Is. They name no key material.
var (
	// ErrUnknownKey: the token's kid names no key of the realm.
	ErrUnknownKey = errors.New("keys: unknown key id")
	// ErrKeyMismatch: the kid names a key of another use or algorithm
	// than the token claims (an access token signed with a refresh key,
	// or an HS256 header on an RSA kid).
	ErrKeyMismatch = errors.New("keys: key does not match token")
	// ErrKeyRetired: the key was rotated out and its last tokens have
	// expired, or it was disabled.
	ErrKeyRetired = errors.New("keys: key retired")
)

// rsaBits is the size of generated RSA keys: the smallest RFC 7518 allows,
// as signing cost grows with the cube of the size and 2048 bits is the
// size every client expects.
const rsaBits = 2048

// reloadAfterMiss: a token with an unknown kid makes the Manager list the
// realm's keys again (another replica may have just rotated), but not more
// often than this per realm, so that random kids cannot flood the store.
const reloadAfterMiss = 5 * time.Second

// Manager holds the realms' keys. It is safe for concurrent use.
type Manager struct {
	st    store.Store
	seal  *sealer
	log   *slog.Logger
	now   func() time.Time
	unsub func()

	mu sync.RWMutex
	// gen counts invalidations; a load that raced with one does not
	// cache what it read.
	gen   uint64
	cache map[string]*snapshot
	// creating serialises key creation per realm on this node, so that
	// concurrent first uses do not create two active keys.
	creating map[string]*sync.Mutex
	// missing lets one reload after an unknown kid run per realm at a
	// time (see reloadOnMiss); capacity-1 channels, so a waiter can give
	// up when its context ends.
	missing map[string]chan struct{}
}

// snapshot is one realm's keys as read from the store; it is never
// modified after it is built, except for its lazily rebuilt JWKS.
type snapshot struct {
	loaded time.Time
	keys   []*loadedKey // store order: oldest first
	jwks   atomic.Pointer[jwksDoc]
}

type loadedKey struct {
	kid, alg, use string
	active        bool
	created       time.Time
	retireAt      time.Time
	// verify is the public key (sig) or the secret (hmac).
	verify any
	// signer is set for active keys only.
	signer jwt.Signer
	jwk    jwt.JWK
}

type jwksDoc struct {
	data []byte
	// until is when a key in it retires, so the document must be rebuilt.
	until time.Time
}

// NewManager returns a Manager over st that seals private keys with master
// (32 bytes, see LoadMasterKey). It subscribes to st's change feed so that
// key changes made by other replicas are seen; Close ends that.
func NewManager(st store.Store, master []byte, logger *slog.Logger) (*Manager, error) {
	if st == nil {
		return nil, errors.New("keys: nil store")
	}
	s, err := newSealer(master)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		st:       st,
		seal:     s,
		log:      logger,
		now:      time.Now,
		cache:    make(map[string]*snapshot),
		creating: make(map[string]*sync.Mutex),
		missing:  make(map[string]chan struct{}),
	}
	m.unsub = st.Subscribe(func(c store.Change) {
		switch c.Kind {
		case store.ChangeKey:
			m.Invalidate(c.Realm)
		case store.ChangeRealm:
			name := c.Realm
			if name == "" {
				name = c.ID
			}
			m.Invalidate(name)
		}
	})
	return m, nil
}

// Close stops following the store's change feed.
func (m *Manager) Close() {
	if m.unsub != nil {
		m.unsub()
	}
}

// Seal encrypts plain with the master key (AES-256-GCM, random nonce,
// prefixed with a format version byte).
func (m *Manager) Seal(plain []byte) ([]byte, error) { return m.seal.seal(plain) }

// Open decrypts what Seal produced; any failure is ErrOpen.
func (m *Manager) Open(sealed []byte) ([]byte, error) { return m.seal.open(sealed) }

// Invalidate drops the cached keys of realm ("" drops every realm's), so
// that the next use reads them from the store again. Call it on a
// store.ChangeKey or store.ChangeRealm event.
func (m *Manager) Invalidate(realm string) {
	m.mu.Lock()
	m.gen++
	if realm == "" {
		clear(m.cache)
	} else {
		delete(m.cache, realm)
	}
	m.mu.Unlock()
}

// EnsureRealm makes sure the realm has an active signing key for alg and an
// active HMAC key for refresh tokens, creating them if missing.
func (m *Manager) EnsureRealm(ctx context.Context, realm, alg string) error {
	if _, err := m.Signer(ctx, realm, alg); err != nil {
		return err
	}
	_, err := m.RefreshSigner(ctx, realm)
	return err
}

// Signer returns the newest active signing key of the realm for alg (RS256,
// PS256, ES256 or EdDSA), creating one on first use, so that a client
// configured for ES256 works in a realm whose default is RS256.
func (m *Manager) Signer(ctx context.Context, realm, alg string) (jwt.Signer, error) {
	if !isSigningAlg(alg) {
		return nil, fmt.Errorf("keys: signing algorithm %q: %w", alg, jwt.ErrUnsupportedAlg)
	}
	return m.activeSigner(ctx, realm, UseSig, alg)
}

// RefreshSigner returns the realm's newest active HS256 key for refresh
// tokens, creating one on first use.
func (m *Manager) RefreshSigner(ctx context.Context, realm string) (jwt.Signer, error) {
	return m.activeSigner(ctx, realm, UseHMAC, jwt.HS256)
}

func (m *Manager) activeSigner(ctx context.Context, realm, use, alg string) (jwt.Signer, error) {
	s, err := m.load(ctx, realm)
	if err != nil {
		return nil, err
	}
	if k := s.newestActive(use, alg); k != nil {
		return k.signer, nil
	}
	lock := m.creationLock(realm)
	lock.Lock()
	defer lock.Unlock()
	// Another goroutine (or replica) may have created it meanwhile.
	if s, err = m.reload(ctx, realm); err != nil {
		return nil, err
	}
	if k := s.newestActive(use, alg); k != nil {
		return k.signer, nil
	}
	if _, err := m.createKey(ctx, realm, use, alg); err != nil {
		return nil, err
	}
	if s, err = m.reload(ctx, realm); err != nil {
		return nil, err
	}
	if k := s.newestActive(use, alg); k != nil {
		return k.signer, nil
	}
	return nil, fmt.Errorf("keys: realm %q: created %s key not found", realm, alg)
}

// Verify checks p's signature with the realm key its header kid names. The
// key must be of the given use ("sig" for access and ID tokens, "hmac" for
// refresh tokens) and of the algorithm the header names, and active or not
// yet past its RetireAt.
func (m *Manager) Verify(ctx context.Context, realm, use string, p *jwt.Parsed) error {
	if p == nil {
		return jwt.ErrMalformed
	}
	s, err := m.load(ctx, realm)
	if err != nil {
		return err
	}
	now := m.now()
	k := s.byKID(p.Header.Kid)
	if k == nil && now.Sub(s.loaded) >= reloadAfterMiss {
		if s, err = m.reloadOnMiss(ctx, realm); err != nil {
			return err
		}
		k = s.byKID(p.Header.Kid)
	}
	if k == nil {
		return ErrUnknownKey
	}
	if k.use != use || k.alg != p.Header.Alg {
		return ErrKeyMismatch
	}
	if !k.usable(now) {
		return ErrKeyRetired
	}
	return jwt.Verify(k.alg, k.verify, p.SigningInput, p.Signature)
}

// JWKS returns the realm's public JWK Set: its active and retiring signing
// keys, never HMAC keys. The bytes are shared; callers must not modify them.
func (m *Manager) JWKS(ctx context.Context, realm string) ([]byte, error) {
	s, err := m.load(ctx, realm)
	if err != nil {
		return nil, err
	}
	now := m.now()
	if d := s.jwks.Load(); d != nil && now.Before(d.until) {
		return d.data, nil
	}
	doc := jwt.JWKS{Keys: []jwt.JWK{}}
	until := now.Add(24 * time.Hour)
	// Active keys first, newest first: a client that ignores kid and
	// takes the first key gets the one new tokens are signed with.
	for _, active := range []bool{true, false} {
		for i := len(s.keys) - 1; i >= 0; i-- {
			k := s.keys[i]
			if k.use != UseSig || k.active != active || !k.usable(now) {
				continue
			}
			doc.Keys = append(doc.Keys, k.jwk)
			if !k.active && k.retireAt.Before(until) {
				until = k.retireAt
			}
		}
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	s.jwks.Store(&jwksDoc{data: data, until: until})
	return data, nil
}

// Rotate creates a new active key for alg and turns the realm's previously
// active keys of that alg into retiring ones: inactive, still verifying and
// published until now+retireAfter, which should be the longest lifetime of a
// token they could have signed (zero retires them at once, for a leaked
// key). alg HS256 rotates the refresh-token HMAC key. It returns the new kid.
func (m *Manager) Rotate(ctx context.Context, realm, alg string, retireAfter time.Duration) (kid string, err error) {
	use := UseSig
	if alg == jwt.HS256 {
		use = UseHMAC
	} else if !isSigningAlg(alg) {
		return "", fmt.Errorf("keys: signing algorithm %q: %w", alg, jwt.ErrUnsupportedAlg)
	}
	lock := m.creationLock(realm)
	lock.Lock()
	defer lock.Unlock()
	defer m.Invalidate(realm)

	old, err := m.st.ListKeys(ctx, realm)
	if err != nil {
		return "", err
	}
	kid, err = m.createKey(ctx, realm, use, alg)
	if err != nil {
		return "", err
	}
	retireAt := m.now().Add(retireAfter).UTC()
	for _, k := range old {
		if k.Use != use || k.Alg != alg || !k.Active || k.KID == kid {
			continue
		}
		err := m.st.UpdateKey(ctx, realm, k.KID, func(k store.Key) (store.Key, error) {
			k.Active = false
			k.RetireAt = retireAt
			return k, nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			// The new key is already the newest active one, so tokens
			// are signed with it; rotating again finishes the job.
			return kid, fmt.Errorf("keys: retiring key %s: %w", k.KID, err)
		}
		m.log.Info("key retiring", "realm", realm, "kid", k.KID, "alg", alg, "use", use, "retire_at", retireAt)
	}
	return kid, nil
}

// Prune deletes every realm's keys whose RetireAt is before now.
func (m *Manager) Prune(ctx context.Context, now time.Time) error {
	realms, err := m.st.ListRealms(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range realms {
		ks, err := m.st.ListKeys(ctx, r.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		deleted := false
		for _, k := range ks {
			if k.Active || k.RetireAt.IsZero() || now.Before(k.RetireAt) {
				continue
			}
			err := m.st.DeleteKey(ctx, r.Name, k.KID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			deleted = true
			m.log.Info("key deleted", "realm", r.Name, "kid", k.KID, "alg", k.Alg, "use", k.Use)
		}
		if deleted {
			m.Invalidate(r.Name)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) creationLock(realm string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.creating[realm]
	if l == nil {
		l = new(sync.Mutex)
		m.creating[realm] = l
	}
	return l
}

// reloadOnMiss reads realm's keys again after a token named an unknown
// kid. Concurrent misses share one read: the first reloads, the others wait
// for it and take the snapshot it cached. Without that, a burst of tokens
// with random kids arriving together would each read the store and decode
// every key, however the reloads are throttled over time.
func (m *Manager) reloadOnMiss(ctx context.Context, realm string) (*snapshot, error) {
	m.mu.Lock()
	sem := m.missing[realm]
	if sem == nil {
		sem = make(chan struct{}, 1)
		m.missing[realm] = sem
	}
	m.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sem }()
	m.mu.RLock()
	cur := m.cache[realm]
	m.mu.RUnlock()
	if cur != nil && m.now().Sub(cur.loaded) < reloadAfterMiss {
		return cur, nil
	}
	return m.reload(ctx, realm)
}

// load returns the cached snapshot of realm, reading it on a miss.
func (m *Manager) load(ctx context.Context, realm string) (*snapshot, error) {
	m.mu.RLock()
	s := m.cache[realm]
	m.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	return m.reload(ctx, realm)
}

// reload reads realm's keys from the store and caches them unless an
// invalidation happened meanwhile (then what was read may be stale for the
// next caller, though it is as fresh as any read for this one).
func (m *Manager) reload(ctx context.Context, realm string) (*snapshot, error) {
	m.mu.RLock()
	gen := m.gen
	m.mu.RUnlock()
	ks, err := m.st.ListKeys(ctx, realm)
	if err != nil {
		return nil, err
	}
	s := &snapshot{loaded: m.now()}
	for _, k := range ks {
		lk, err := m.decode(k)
		if err != nil {
			// Fail closed: signing on without this key could mean
			// creating a second active key under a wrong master key.
			m.log.Error("cannot load realm key", "realm", realm, "kid", k.KID, "alg", k.Alg, "err", err)
			return nil, fmt.Errorf("keys: realm %q key %s: %w", realm, k.KID, err)
		}
		if lk != nil {
			s.keys = append(s.keys, lk)
		}
	}
	// A realm without keys is not cached: that keeps names that are not
	// realms at all out of the cache.
	if len(s.keys) > 0 {
		m.mu.Lock()
		if m.gen == gen {
			m.cache[realm] = s
		}
		m.mu.Unlock()
	}
	return s, nil
}

// decode turns a stored key into a usable one. Keys of a use or algorithm
// gatehouse does not handle (an imported RS512 key) give nil, nil.
func (m *Manager) decode(k store.Key) (*loadedKey, error) {
	lk := &loadedKey{kid: k.KID, alg: k.Alg, use: k.Use, active: k.Active, created: k.Created, retireAt: k.RetireAt}
	switch {
	case k.Use == UseHMAC && k.Alg == jwt.HS256:
		secret, err := m.seal.open(k.Private)
		if err != nil {
			return nil, err
		}
		lk.verify = secret
		if k.Active {
			if lk.signer, err = jwt.NewSigner(jwt.HS256, k.KID, secret); err != nil {
				return nil, err
			}
		}
		return lk, nil
	case k.Use == UseSig && isSigningAlg(k.Alg):
		pub, err := x509.ParsePKIXPublicKey(k.Public)
		if err != nil {
			return nil, err
		}
		if !fitsAlg(k.Alg, pub) {
			return nil, jwt.ErrKeyType
		}
		lk.verify = pub
		if lk.jwk, err = jwt.PublicJWK(k.KID, k.Alg, pub); err != nil {
			return nil, err
		}
		if !k.Active {
			// Retiring keys only verify; their private half stays sealed.
			return lk, nil
		}
		der, err := m.seal.open(k.Private)
		if err != nil {
			return nil, err
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, err
		}
		if p, ok := priv.(crypto.Signer); !ok || !publicEqual(p.Public(), pub) {
			return nil, errors.New("private key does not match public key")
		}
		if lk.signer, err = jwt.NewSigner(k.Alg, k.KID, priv); err != nil {
			return nil, err
		}
		return lk, nil
	}
	return nil, nil
}

// createKey generates a key, stores it active and returns its kid.
func (m *Manager) createKey(ctx context.Context, realm, use, alg string) (string, error) {
	k := store.Key{Realm: realm, Alg: alg, Use: use, Created: m.now().UTC(), Active: true}
	var plain []byte
	if use == UseHMAC {
		plain = make([]byte, 32)
		id := make([]byte, 16)
		if _, err := rand.Read(plain); err != nil {
			return "", err
		}
		if _, err := rand.Read(id); err != nil {
			return "", err
		}
		k.KID = base64.RawURLEncoding.EncodeToString(id)
	} else {
		priv, err := generate(alg)
		if err != nil {
			return "", err
		}
		if plain, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return "", err
		}
		if k.Public, err = x509.MarshalPKIXPublicKey(priv.Public()); err != nil {
			return "", err
		}
		k.KID = Thumbprint(k.Public)
	}
	var err error
	if k.Private, err = m.seal.seal(plain); err != nil {
		return "", err
	}
	clear(plain)
	if err := m.st.CreateKey(ctx, k); err != nil {
		return "", err
	}
	m.Invalidate(realm)
	m.log.Info("key created", "realm", realm, "kid", k.KID, "alg", alg, "use", use)
	return k.KID, nil
}

// Thumbprint is the kid of a public key: the first 32 characters of the
// base64url SHA-256 of its PKIX DER encoding. Like an RFC 7638 thumbprint it
// is stable, so every replica and every export names the key the same way.
func Thumbprint(pkixDER []byte) string {
	sum := sha256.Sum256(pkixDER)
	return base64.RawURLEncoding.EncodeToString(sum[:])[:32]
}

func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case jwt.RS256, jwt.PS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case jwt.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwt.EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, jwt.ErrUnsupportedAlg
}

func isSigningAlg(alg string) bool {
	switch alg {
	case jwt.RS256, jwt.PS256, jwt.ES256, jwt.EdDSA:
		return true
	}
	return false
}

func fitsAlg(alg string, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return alg == jwt.RS256 || alg == jwt.PS256
	case *ecdsa.PublicKey:
		return alg == jwt.ES256 && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == jwt.EdDSA
	}
	return false
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func (s *snapshot) newestActive(use, alg string) *loadedKey {
	var best *loadedKey
	for _, k := range s.keys {
		if k.active && k.use == use && k.alg == alg && (best == nil || !k.created.Before(best.created)) {
			best = k
		}
	}
	return best
}

func (s *snapshot) byKID(kid string) *loadedKey {
	if kid == "" {
		return nil
	}
	i := slices.IndexFunc(s.keys, func(k *loadedKey) bool { return k.kid == kid })
	if i < 0 {
		return nil
	}
	return s.keys[i]
}

// usable: active keys, and inactive ones until RetireAt. An inactive key
// without RetireAt is disabled.
func (k *loadedKey) usable(now time.Time) bool {
	return k.active || (!k.retireAt.IsZero() && now.Before(k.retireAt))
}
