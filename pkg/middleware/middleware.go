// Package middleware protects a Go net/http service with access tokens
// issued by gatehouse (or Keycloak): it verifies the bearer token of every
// request against the issuer's published keys, checks issuer, expiry, token
// type, audience and scopes, optionally asks the issuer whether the token
// was revoked (RFC 7662 introspection), and hands the verified claims to
// the next handler through the request context.
//
// It depends on the standard library only, so any module can import it.
// Signature verification accepts RS256/384/512, PS256/384/512,
// ES256/384/512 and EdDSA, each only with the key type it is defined for;
// "none" and HMAC algorithms are never accepted.
package middleware

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Middleware. Issuer is required.
type Config struct {
	// Issuer is the exact iss of accepted tokens, e.g.
	// https://auth.example.com/realms/acme.
	Issuer string
	// JWKSURL is where the issuer's keys are. Empty means the jwks_uri of
	// {Issuer}/.well-known/openid-configuration.
	JWKSURL string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// RequiredScopes must all be in the token's scope claim.
	RequiredScopes []string
	// IntrospectionURL, ClientID and ClientSecret, when set, make every
	// token also be checked with RFC 7662 introspection, so that a logout
	// or revocation is honoured before the token expires. With ClientID
	// and ClientSecret but no URL, the discovery document's
	// introspection_endpoint is used.
	IntrospectionURL string
	ClientID         string
	ClientSecret     string
	// CacheTTL is how long an introspection answer is reused (default 1 s:
	// a logout takes effect within about a second).
	CacheTTL time.Duration
	// Leeway tolerates clock skew on exp and nbf (default 10 s).
	Leeway time.Duration
	// HTTPClient fetches discovery, keys and introspection (default: a
	// client with a 10 s timeout).
	HTTPClient *http.Client
	// Realm is the realm of WWW-Authenticate challenges (default: the
	// realm name in Issuer, or Issuer itself).
	Realm string
}

// Claims is what a verified token says. Handlers get it with FromContext.
type Claims struct {
	Issuer          string
	Subject         string
	Audience        []string
	ExpiresAt       time.Time
	IssuedAt        time.Time // zero when absent
	NotBefore       time.Time // zero when absent
	ID              string    // jti
	Type            string    // typ, "Bearer"
	AuthorizedParty string    // azp: the client the token was issued to
	SessionID       string    // sid
	Scopes          []string
	Username        string // preferred_username
	Email           string
	RealmRoles      []string            // realm_access.roles
	ClientRoles     map[string][]string // resource_access.{client}.roles
	// Raw is the whole claim set; do not modify it.
	Raw map[string]any
}

// HasScope reports whether the token carries scope s.
func (c *Claims) HasScope(s string) bool {
	for _, x := range c.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// Error is why a token was not accepted, in RFC 6750 terms: Code is
// invalid_token (401), insufficient_scope (403) or temporarily_unavailable
// (503, the issuer could not be reached to check the token).
type Error struct {
	Status      int
	Code        string
	Description string
	// Scope lists the scopes needed, for insufficient_scope.
	Scope string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: fmt.Sprintf(format, args...)}
}

func unavailable(desc string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: desc}
}

// Middleware verifies bearer tokens. It is safe for concurrent use.
type Middleware struct {
	cfg   Config
	realm string
	hc    *http.Client
	now   func() time.Time
	// minRefresh rate-limits fetches of discovery and keys caused by
	// unknown key ids, so that tokens with made-up kids cannot make the
	// middleware hammer the issuer.
	minRefresh time.Duration
	maxKeyAge  time.Duration

	keys atomic.Pointer[keySet]
	// introURL is read by every introspected request; it is atomic, not
	// under fetchMu, so that those requests never wait behind a fetch of
	// the issuer's keys.
	introURL atomic.Pointer[string]

	fetchMu      sync.Mutex // serializes fetches; guards the fields below
	jwksURL      string
	discovered   bool
	lastAttempt  time.Time
	cache        introspectionCache
	introspected bool // introspection is configured
}

type keySet struct {
	keys    []*jwk
	fetched time.Time
}

// New checks cfg and returns a Middleware. It does not contact the issuer:
// keys are fetched on the first request, so that a service can start while
// its issuer is still starting.
func New(cfg Config) (*Middleware, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("middleware: Issuer must be an absolute http(s) URL")
	}
	for _, s := range []string{cfg.JWKSURL, cfg.IntrospectionURL} {
		if s == "" {
			continue
		}
		if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("middleware: %q is not an absolute http(s) URL", s)
		}
	}
	if cfg.IntrospectionURL != "" && (cfg.ClientID == "" || cfg.ClientSecret == "") {
		return nil, errors.New("middleware: IntrospectionURL needs ClientID and ClientSecret")
	}
	m := &Middleware{
		cfg:        cfg,
		realm:      cfg.Realm,
		hc:         cfg.HTTPClient,
		now:        time.Now,
		minRefresh: 10 * time.Second,
		maxKeyAge:  time.Hour,
		jwksURL:    cfg.JWKSURL,
	}
	intro := cfg.IntrospectionURL
	m.introURL.Store(&intro)
	m.introspected = cfg.ClientID != "" && cfg.ClientSecret != ""
	if m.hc == nil {
		m.hc = &http.Client{Timeout: 10 * time.Second}
	}
	if m.cfg.CacheTTL <= 0 {
		m.cfg.CacheTTL = time.Second
	}
	if m.cfg.Leeway <= 0 {
		m.cfg.Leeway = 10 * time.Second
	}
	if m.realm == "" {
		m.realm = cfg.Issuer
		if _, name, ok := strings.Cut(u.Path, "/realms/"); ok && name != "" && !strings.Contains(name, "/") {
			m.realm = name
		}
	}
	m.cache.entries = map[[32]byte]cacheEntry{}
	return m, nil
}

type ctxKey struct{}

// FromContext returns the claims of the token the Middleware verified for
// this request.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// Handler returns next protected by m: requests without a valid token get
// an RFC 6750 error (401, 403 or 503) with a JSON body and never reach next.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, present, ok := BearerToken(r.Header)
		if !present {
			w.Header().Set("WWW-Authenticate", Challenge{Realm: m.realm}.String())
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "a bearer token is required"})
			return
		}
		if !ok {
			m.reject(w, invalid("malformed Authorization header"))
			return
		}
		c, err := m.Verify(r.Context(), tok)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = unavailable("the token could not be checked")
			}
			m.reject(w, e)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}

func (m *Middleware) reject(w http.ResponseWriter, e *Error) {
	switch e.Code {
	case "invalid_token":
		w.Header().Set("WWW-Authenticate", Challenge{Realm: m.realm, Error: e.Code, Description: e.Description}.String())
	case "insufficient_scope":
		w.Header().Set("WWW-Authenticate", Challenge{Realm: m.realm, Error: e.Code, Scope: e.Scope}.String())
	default:
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, e)
}

// Verify checks token (the bearer value, without "Bearer ") exactly as
// Handler does and returns its claims. Errors are *Error.
func (m *Middleware) Verify(ctx context.Context, token string) (*Claims, error) {
	pt, err := parseJWT(token)
	if err != nil {
		return nil, invalid("%v", err)
	}
	alg := pt.header.Alg
	if _, ok := algKty[alg]; !ok {
		return nil, invalid("algorithm %q is not accepted", alg)
	}
	k, err := m.key(ctx, pt.header.Kid, alg)
	if err != nil {
		return nil, err
	}
	if err := verifySig(pt, k); err != nil {
		return nil, invalid("%v", err)
	}
	c, err := m.checkClaims(pt)
	if err != nil {
		return nil, err
	}
	if m.introspected {
		active, err := m.active(ctx, token)
		if err != nil {
			return nil, err
		}
		if !active {
			return nil, invalid("token is not active")
		}
	}
	for _, s := range m.cfg.RequiredScopes {
		if !c.HasScope(s) {
			return nil, &Error{Status: http.StatusForbidden, Code: "insufficient_scope",
				Description: "the token lacks scope " + s, Scope: strings.Join(m.cfg.RequiredScopes, " ")}
		}
	}
	return c, nil
}

func (m *Middleware) checkClaims(pt *parsedJWT) (*Claims, error) {
	var rc rawClaims
	if err := json.Unmarshal(pt.payload, &rc); err != nil {
		return nil, invalid("malformed claims")
	}
	var raw map[string]any
	if err := json.Unmarshal(pt.payload, &raw); err != nil {
		return nil, invalid("malformed claims")
	}
	now := m.now()
	switch {
	case rc.Iss != m.cfg.Issuer:
		return nil, invalid("wrong issuer")
	case rc.Exp == nil:
		return nil, invalid("token has no expiry")
	case !now.Before(rc.Exp.t.Add(m.cfg.Leeway)):
		return nil, invalid("token expired")
	case rc.Nbf != nil && now.Add(m.cfg.Leeway).Before(rc.Nbf.t):
		return nil, invalid("token not yet valid")
	}
	// Keycloak and gatehouse put typ "Bearer" in access tokens; RFC 9068
	// marks them with header typ at+jwt. ID and refresh tokens are neither.
	if !strings.EqualFold(rc.Typ, "Bearer") && !(rc.Typ == "" && strings.EqualFold(pt.header.Typ, "at+jwt")) {
		return nil, invalid("not an access token")
	}
	if m.cfg.Audience != "" {
		found := false
		for _, a := range rc.Aud {
			if a == m.cfg.Audience {
				found = true
			}
		}
		if !found {
			return nil, invalid("token audience does not include %s", m.cfg.Audience)
		}
	}
	c := &Claims{
		Issuer: rc.Iss, Subject: rc.Sub, Audience: rc.Aud, ExpiresAt: rc.Exp.t, ID: rc.Jti, Type: rc.Typ,
		AuthorizedParty: rc.Azp, SessionID: rc.Sid, Scopes: strings.Fields(rc.Scope), Username: rc.Username,
		Email: rc.Email, RealmRoles: rc.RealmAccess.Roles, Raw: raw,
	}
	if rc.Iat != nil {
		c.IssuedAt = rc.Iat.t
	}
	if rc.Nbf != nil {
		c.NotBefore = rc.Nbf.t
	}
	if len(rc.ResourceAccess) > 0 {
		c.ClientRoles = make(map[string][]string, len(rc.ResourceAccess))
		for k, v := range rc.ResourceAccess {
			c.ClientRoles[k] = v.Roles
		}
	}
	return c, nil
}

// key finds the verification key for kid and alg, fetching the JWKS when
// the key is unknown or the set is old (at most once per minRefresh).
func (m *Middleware) key(ctx context.Context, kid, alg string) (*jwk, error) {
	start := m.now()
	if ks := m.keys.Load(); ks != nil && start.Sub(ks.fetched) < m.maxKeyAge {
		if k := ks.find(kid, alg); k != nil {
			return k, nil
		}
	}
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	ks := m.keys.Load()
	if ks != nil && !ks.fetched.Before(start) {
		// Another request fetched while this one waited.
		if k := ks.find(kid, alg); k != nil {
			return k, nil
		}
		return nil, invalid("unknown signing key")
	}
	if m.now().Sub(m.lastAttempt) < m.minRefresh {
		if ks == nil {
			return nil, unavailable("the issuer's keys are not available")
		}
		if k := ks.find(kid, alg); k != nil {
			return k, nil
		}
		return nil, invalid("unknown signing key")
	}
	m.lastAttempt = m.now()
	keys, err := m.fetchKeys(context.WithoutCancel(ctx))
	if err != nil {
		if ks != nil {
			if k := ks.find(kid, alg); k != nil {
				return k, nil // keep using the keys we have
			}
		}
		return nil, unavailable("the issuer's keys are not available")
	}
	ks = &keySet{keys: keys, fetched: m.now()}
	m.keys.Store(ks)
	if k := ks.find(kid, alg); k != nil {
		return k, nil
	}
	return nil, invalid("unknown signing key")
}

func (ks *keySet) find(kid, alg string) *jwk {
	var only *jwk
	n := 0
	for _, k := range ks.keys {
		if !k.fits(alg) {
			continue
		}
		if kid != "" && k.kid == kid {
			return k
		}
		only = k
		n++
	}
	if kid == "" && n == 1 {
		return only // a token without kid, and only one key it can mean
	}
	return nil
}

// fetchKeys runs discovery if needed and fetches the JWKS. fetchMu is held.
func (m *Middleware) fetchKeys(ctx context.Context) ([]*jwk, error) {
	if !m.discovered && (m.jwksURL == "" || (m.introspected && *m.introURL.Load() == "")) {
		var doc struct {
			Issuer        string `json:"issuer"`
			JWKSURI       string `json:"jwks_uri"`
			Introspection string `json:"introspection_endpoint"`
		}
		if err := m.getJSON(ctx, strings.TrimSuffix(m.cfg.Issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, err
		}
		// OpenID Connect Discovery §4.3: the document must be the issuer's.
		if doc.Issuer != m.cfg.Issuer {
			return nil, errors.New("discovery: issuer mismatch")
		}
		if m.jwksURL == "" {
			m.jwksURL = doc.JWKSURI
		}
		if *m.introURL.Load() == "" {
			m.introURL.Store(&doc.Introspection)
		}
		m.discovered = true
	}
	if m.jwksURL == "" {
		return nil, errors.New("discovery: no jwks_uri")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.jwksURL, nil)
	if err != nil {
		return nil, err
	}
	b, err := m.do(req)
	if err != nil {
		return nil, err
	}
	return parseJWKS(b)
}

func (m *Middleware) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	b, err := m.do(req)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (m *Middleware) do(req *http.Request) ([]byte, error) {
	req.Header.Set("Accept", "application/json")
	res, err := m.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", req.URL.Redacted(), res.StatusCode)
	}
	return b, nil
}

// introspectionCache remembers introspection answers by token hash (the
// tokens themselves are not kept).
type introspectionCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cacheEntry
}

type cacheEntry struct {
	active bool
	until  time.Time
}

const maxCacheEntries = 10000

// active asks the issuer (RFC 7662) whether token is still active.
func (m *Middleware) active(ctx context.Context, token string) (bool, error) {
	h := sha256.Sum256([]byte(token))
	now := m.now()
	m.cache.mu.Lock()
	e, ok := m.cache.entries[h]
	m.cache.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.active, nil
	}
	u := *m.introURL.Load()
	if u == "" {
		return false, unavailable("no introspection endpoint")
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return false, unavailable("introspection failed")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(m.cfg.ClientID), url.QueryEscape(m.cfg.ClientSecret))
	b, err := m.do(req)
	if err != nil {
		return false, unavailable("introspection failed")
	}
	var res struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return false, unavailable("introspection answer malformed")
	}
	m.cache.mu.Lock()
	if len(m.cache.entries) >= maxCacheEntries {
		for k, v := range m.cache.entries {
			if !now.Before(v.until) {
				delete(m.cache.entries, k)
			}
		}
		if len(m.cache.entries) >= maxCacheEntries {
			clear(m.cache.entries)
		}
	}
	m.cache.entries[h] = cacheEntry{active: res.Active, until: now.Add(m.cfg.CacheTTL)}
	m.cache.mu.Unlock()
	return res.Active, nil
}

// b64tokenChar holds the characters of RFC 6750's b64token before its
// padding; a table, because a token is checked on every gateway request.
var b64tokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()

// BearerToken extracts the token of an RFC 6750 §2.1 Authorization
// header. present is false when there is no Bearer credential at all (no
// header, or another scheme): RFC 6750 §3.1 then wants a challenge without
// an error code. ok is false when a Bearer credential is there but is not
// one b64token, or when several Authorization headers are sent.
func BearerToken(h http.Header) (token string, present, ok bool) {
	vs := h.Values("Authorization")
	if len(vs) == 0 {
		return "", false, false
	}
	scheme, rest, _ := strings.Cut(vs[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", len(vs) > 1, false
	}
	if len(vs) > 1 {
		return "", true, false
	}
	rest = strings.TrimLeft(rest, " ")
	if rest == "" {
		return "", true, false
	}
	// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	i := 0
	for i < len(rest) && b64tokenChar[rest[i]] {
		i++
	}
	for i < len(rest) && rest[i] == '=' {
		i++
	}
	if i != len(rest) || rest[0] == '=' {
		return "", true, false
	}
	return rest, true, true
}

func writeError(w http.ResponseWriter, e *Error) {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}
