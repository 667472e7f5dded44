// Package core holds every decision gatehouse makes: who may log in, which
// client may use which grant, what goes in a token, when a session is over
// its limit, whether a bearer token is still good. It never imports net/http;
// front doors (OIDC, Fusio, Sync Gateway, the gateway) parse their wire
// format, call the core and render its answer.
package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Config is what New needs; main builds every piece and passes it down.
type Config struct {
	Store store.Store
	Keys  *keys.Manager
	// Passwords hashes and verifies user passwords (argon2id).
	Passwords *password.Hasher
	// Secrets hashes client secrets with a key kept outside the store.
	Secrets *password.SecretHasher
	// BaseURL is the public URL of the server without a trailing slash;
	// a realm's issuer is BaseURL + "/realms/" + name. It is configured,
	// never taken from a request's Host header.
	BaseURL string
	Logger  *slog.Logger
	// Now is the clock; tests set it. Defaults to time.Now.
	Now func() time.Time
	// TokenCacheSize bounds the cache of verified bearer tokens (default
	// 100,000).
	TokenCacheSize int
	// UserCacheSize, ClientCacheSize and SessionCacheSize bound the caches
	// of users, clients and sessions the bearer check and the grants read
	// (defaults 100,000, 10,000 and 100,000). Past the bound the entry
	// least recently used, roughly, makes room; it is read from the store
	// again when next needed.
	UserCacheSize    int
	ClientCacheSize  int
	SessionCacheSize int
	// MissingRealmCacheSize bounds the names remembered as not being
	// realms, for the moments the list of realm names is being reloaded
	// (default 10,000).
	MissingRealmCacheSize int
	// HTTPGet fetches a client's jwks.url for private_key_jwt; nil
	// disables fetching by URL.
	HTTPGet func(ctx context.Context, url string) ([]byte, error)
}

// Service is the core. It is safe for concurrent use.
type Service struct {
	st      store.Store
	keys    *keys.Manager
	pw      *password.Hasher
	secrets *password.SecretHasher
	base    string
	log     *slog.Logger
	now     func() time.Time
	httpGet func(ctx context.Context, url string) ([]byte, error)

	mu       sync.RWMutex
	realms   map[string]*realmView      // by realm name
	aliases  map[string]string          // alias → realm name
	gwDomain []realmDomain              // gateway domains, for RealmForHost
	clients  *clockCache[*store.Client] // realm + "\x00" + clientId
	users    *clockCache[*store.User]   // realm + "\x00" + userId
	sessions *clockCache[sessionLife]   // realm + "\x00" + sid
	revoked  map[string]time.Time       // realm + "\x00" + jti → expiry
	tokens   *tokenCache
	jwksURL  map[string]jwksCacheEntry // client jwks.url cache

	// A name that is no realm costs no store read: realmNames lists every
	// realm as of the realm change numbered namesGen, and is the answer
	// while no realm change has been applied since (namesGen == realmGen).
	// In between, until the list is read again, missing remembers the
	// names the store said do not exist. Both are exact only up to the
	// change feed's latency, like every other cache here; a realm imported
	// through this node is known at once (see realmWritten).
	realmGen   uint64 // realm changes applied
	realmNames map[string]struct{}
	namesGen   uint64
	missing    *clockCache[struct{}]

	// changes counts the changes onChange has applied. A cache miss
	// notes it before reading the store and fills the cache only if it is
	// unchanged after: otherwise a change that landed during the read (a
	// logout, say) would be overwritten by the stale copy and outlive its
	// own invalidation.
	changes uint64

	cancelSub func()
}

// maxTokenLife bounds how long a revocation learnt from the change feed is
// remembered in memory (the store keeps the exact expiry).
const maxTokenLife = 7 * 24 * time.Hour

// sessionLife is what the bearer check needs to know of a session.
type sessionLife struct {
	expires time.Time
	userID  string
}

// New builds the core and subscribes it to the store's change feed, so that
// a write anywhere (this node or, on PostgreSQL, another replica) drops the
// cached copies it affects.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keys == nil || cfg.Passwords == nil || cfg.Secrets == nil {
		return nil, errors.New("core: Store, Keys, Passwords and Secrets are required")
	}
	s := &Service{
		st:       cfg.Store,
		keys:     cfg.Keys,
		pw:       cfg.Passwords,
		secrets:  cfg.Secrets,
		base:     strings.TrimRight(cfg.BaseURL, "/"),
		log:      cfg.Logger,
		now:      cfg.Now,
		httpGet:  cfg.HTTPGet,
		realms:   map[string]*realmView{},
		aliases:  map[string]string{},
		clients:  newClockCache[*store.Client](orDefault(cfg.ClientCacheSize, 10_000)),
		users:    newClockCache[*store.User](orDefault(cfg.UserCacheSize, 100_000)),
		sessions: newClockCache[sessionLife](orDefault(cfg.SessionCacheSize, 100_000)),
		missing:  newClockCache[struct{}](orDefault(cfg.MissingRealmCacheSize, 10_000)),
		revoked:  map[string]time.Time{},
		jwksURL:  map[string]jwksCacheEntry{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tokens = newTokenCache(orDefault(cfg.TokenCacheSize, 100_000))
	s.cancelSub = s.st.Subscribe(s.onChange)
	if err := s.reloadRevocations(ctx); err != nil {
		return nil, err
	}
	if err := s.loadAliases(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// Close stops listening to the change feed.
func (s *Service) Close() {
	if s.cancelSub != nil {
		s.cancelSub()
	}
}

// Issuer is the iss of every token of realm.
func (s *Service) Issuer(realm string) string { return s.base + "/realms/" + realm }

// BaseURL is the configured public URL.
func (s *Service) BaseURL() string { return s.base }

// Store gives front doors read access for things the core does not decide
// (listing a user's sessions in the profile panel, say).
func (s *Service) Store() store.Store { return s.st }

func key2(a, b string) string { return a + "\x00" + b }

// onChange drops what a committed change makes stale. An empty ID means
// every entity of that kind in the realm, and an empty Realm every realm
// (a store sends those after it may have missed changes, for example when
// its PostgreSQL listener reconnects).
func (s *Service) onChange(c store.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes++
	switch c.Kind {
	case store.ChangeRealm:
		s.realmGen++
		if c.Realm == "" {
			clear(s.realms)
			s.missing.clear()
		} else {
			delete(s.realms, c.Realm)
			s.missing.remove(c.Realm)
		}
		dropRealm(s.clients, c.Realm)
		dropRealm(s.users, c.Realm)
		dropRealm(s.sessions, c.Realm)
		s.keys.Invalidate(c.Realm)
		s.tokens.clear()
		go func() { _ = s.loadAliases(context.Background()) }()
	// Cached tokens are not scanned here: a cache hit re-checks its
	// session, user, client and revocation through these maps, so
	// dropping the map entry is enough and costs O(1) per change.
	case store.ChangeClient:
		dropEntry(s.clients, c.Realm, c.ID)
	case store.ChangeUser:
		dropEntry(s.users, c.Realm, c.ID)
	case store.ChangeSession:
		dropEntry(s.sessions, c.Realm, c.ID)
	case store.ChangeKey:
		s.keys.Invalidate(c.Realm)
		s.tokens.clear()
	case store.ChangeRevocation:
		if c.ID == "" {
			go func() { _ = s.reloadRevocations(context.Background()) }()
			return
		}
		// Another writer revoked a token: mark it until the longest a
		// token can live; Maintain forgets it after that.
		if _, ok := s.revoked[key2(c.Realm, c.ID)]; !ok {
			s.revoked[key2(c.Realm, c.ID)] = s.now().Add(maxTokenLife)
		}
	}
}

// realmWritten applies, at once, the change a realm write through this
// node makes, instead of waiting for the change feed (which runs on its
// own goroutine): a realm just imported must be found by the very next
// request, even if its name was looked up, and found missing, before.
func (s *Service) realmWritten(name string) {
	s.onChange(store.Change{Kind: store.ChangeRealm, Realm: name, ID: name})
}

// dropEntry removes one cached entity, or all of a realm's when id is "",
// or everything when realm is "" too.
func dropEntry[V any](c *clockCache[V], realm, id string) {
	if id == "" {
		dropRealm(c, realm)
		return
	}
	c.remove(key2(realm, id))
}

// dropRealm removes a realm's cached entities; realm "" removes all.
func dropRealm[V any](c *clockCache[V], realm string) {
	if realm == "" {
		c.clear()
		return
	}
	c.removePrefix(realm + "\x00")
}

// reloadRevocations reads the whole revocation list again.
func (s *Service) reloadRevocations(ctx context.Context) error {
	revs, err := s.st.ListRevocations(ctx, time.Time{})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, r := range revs {
		s.revoked[key2(r.Realm, r.JTI)] = r.Expires
	}
	s.mu.Unlock()
	return nil
}

func (s *Service) loadAliases(ctx context.Context) error {
	s.mu.RLock()
	gen := s.realmGen
	s.mu.RUnlock()
	rs, err := s.st.ListRealms(ctx)
	if err != nil {
		return err
	}
	m := map[string]string{}
	names := make(map[string]struct{}, len(rs))
	var doms []realmDomain
	for _, r := range rs {
		names[r.Name] = struct{}{}
		for _, a := range r.Settings.Aliases {
			m[a] = r.Name
		}
		if g := r.Settings.Gateway; g != nil && g.Domain != "" {
			doms = append(doms, realmDomain{realm: r.Name, domain: strings.Trim(strings.ToLower(g.Domain), ".")})
		}
	}
	s.mu.Lock()
	s.aliases = m
	s.gwDomain = doms
	// A list read while a realm change was applied may predate it: it
	// stands only if none was, and the reload that change started (or
	// a later one) installs its own.
	if s.realmGen == gen {
		s.realmNames, s.namesGen = names, gen
	}
	s.mu.Unlock()
	return nil
}

type realmDomain struct{ realm, domain string }

// RealmForHost names the realm whose gateway domain the host is, or is a
// subdomain of (the longest match wins). The host only routes the request;
// the token must still be one of that realm's.
func (s *Service) RealmForHost(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	s.mu.RLock()
	defer s.mu.RUnlock()
	best, bestLen := "", 0
	for _, d := range s.gwDomain {
		if (host == d.domain || strings.HasSuffix(host, "."+d.domain)) && len(d.domain) > bestLen {
			best, bestLen = d.realm, len(d.domain)
		}
	}
	return best, best != ""
}

// ResolveRealm maps a realm name or one of its aliases (a Sync Gateway
// database name, say) to the realm's name.
func (s *Service) ResolveRealm(nameOrAlias string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r, ok := s.aliases[nameOrAlias]; ok {
		return r
	}
	return nameOrAlias
}

// Realm returns a realm's stored form, from memory.
func (s *Service) Realm(ctx context.Context, name string) (store.Realm, error) {
	v, err := s.realm(ctx, name)
	if err != nil {
		return store.Realm{}, err
	}
	return v.r, nil
}

func (s *Service) client(ctx context.Context, realm, clientID string) (*store.Client, error) {
	k := key2(realm, clientID)
	s.mu.RLock()
	c, ok := s.clients.get(k)
	gen := s.changes
	s.mu.RUnlock()
	if ok {
		return c, nil
	}
	got, err := s.st.GetClient(ctx, realm, clientID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.changes == gen {
		s.clients.put(k, &got)
	}
	s.mu.Unlock()
	return &got, nil
}

func (s *Service) user(ctx context.Context, realm, id string) (*store.User, error) {
	k := key2(realm, id)
	s.mu.RLock()
	u, ok := s.users.get(k)
	gen := s.changes
	s.mu.RUnlock()
	if ok {
		return u, nil
	}
	got, err := s.st.GetUser(ctx, realm, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.changes == gen {
		s.users.put(k, &got)
	}
	s.mu.Unlock()
	return &got, nil
}

// sessionAlive reports whether session sid of realm exists and has not
// expired, from memory when it can.
func (s *Service) sessionAlive(ctx context.Context, realm, sid string) (bool, error) {
	k := key2(realm, sid)
	s.mu.RLock()
	l, ok := s.sessions.get(k)
	gen := s.changes
	s.mu.RUnlock()
	if !ok {
		sess, err := s.st.GetSession(ctx, realm, sid)
		if errors.Is(err, store.ErrNotFound) {
			l = sessionLife{}
		} else if err != nil {
			return false, err
		} else {
			l = sessionLife{expires: sess.Expires, userID: sess.UserID}
		}
		s.mu.Lock()
		if s.changes == gen {
			s.sessions.put(k, l)
		}
		s.mu.Unlock()
	}
	return !l.expires.IsZero() && s.now().Before(l.expires), nil
}

func (s *Service) isRevoked(realm, jti string) bool {
	s.mu.RLock()
	_, ok := s.revoked[key2(realm, jti)]
	s.mu.RUnlock()
	return ok
}

// newID returns a random UUID (version 4), the form Keycloak uses for
// session ids, jtis and entity ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// NewID is newID for front doors and commands that create entities.
func NewID() string { return newID() }

// Maintain deletes expired sessions, revocations and retired keys; main
// runs it periodically.
func (s *Service) Maintain(ctx context.Context) error {
	now := s.now()
	if _, err := s.st.DeleteExpired(ctx, now); err != nil {
		return err
	}
	s.mu.Lock()
	for k, exp := range s.revoked {
		if now.After(exp) {
			delete(s.revoked, k)
		}
	}
	s.mu.Unlock()
	// A key is pruned only after RetireAt, which lies past the expiry of
	// every token it signed: cached entries for those tokens already fail
	// the expiry check, and the key change clears the cache through the
	// change feed as well.
	return s.keys.Prune(ctx, now)
}
