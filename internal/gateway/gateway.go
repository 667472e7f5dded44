// Package gateway is gatehouse's API gateway: it checks the bearer token of
// every request to a protected operation (realm, audience, organization,
// scopes) and reverse-proxies the request to the operation's upstream with
// the caller's identity in headers the upstream can trust.
//
// Every decision about a token is the core's (through Authenticator); the
// gateway adds only the per-operation policy of the realm's
// Settings.Gateway: which routes exist, which are public, which scopes they
// need and which organization a request acts for.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/pkg/middleware"
)

// Authenticator is what the gateway needs from the core.
type Authenticator interface {
	// Authenticate verifies a bearer token of realm (signature, expiry,
	// issuer, typ, session still active, not revoked). Results are cached
	// by the core, which evicts them on logout, revocation and key
	// rotation, so the gateway calls it on every request. Errors are
	// *core.Error with Code core.InvalidToken and a Description for
	// WWW-Authenticate.
	Authenticate(ctx context.Context, realm, bearer string) (*core.Principal, error)
	// Realm returns the realm from memory; store.ErrNotFound if none.
	Realm(ctx context.Context, name string) (store.Realm, error)
}

// Options configure a Gateway. The zero value is usable except for
// RealmFor, without which every request is answered 404.
type Options struct {
	// Logger receives denials (debug) and upstream failures (warn). Nil
	// discards. No token or other secret is ever logged.
	Logger *slog.Logger
	// RealmFor names the realm whose policy applies to a request (from a
	// fixed --gateway-realm, or by matching the Host against each realm's
	// Gateway.Domain). "" means none: 404.
	RealmFor func(*http.Request) string
	// Transport carries requests to upstreams. Nil means a transport tuned
	// for a proxy: pooled keep-alive connections, many idle connections
	// per upstream, no transparent decompression and no proxy from the
	// environment; plain-HTTP requests without a body are carried on the
	// handler's own goroutine (see directTransport).
	Transport http.RoundTripper
	// HeaderPrefix starts every identity header the upstream receives
	// (default "X-Gatehouse-"). Incoming headers with this prefix are
	// always deleted, so an upstream can trust them.
	HeaderPrefix string
}

// DefaultTimeoutSeconds bounds an upstream's answer when an operation sets
// no TimeoutSeconds.
const DefaultTimeoutSeconds = 30

// MembershipsPath is the gateway's built-in endpoint that lists the
// caller's organization memberships, so that a client can find the value
// to send in the UserID header.
const MembershipsPath = "/.gatehouse/memberships"

// Gateway is an http.Handler that enforces a realm's gateway policy and
// proxies allowed requests upstream. It is safe for concurrent use.
type Gateway struct {
	auth     Authenticator
	log      *slog.Logger
	realmFor func(*http.Request) string
	prefix   string // canonical, e.g. "X-Gatehouse-"
	hdr      identityHeaders
	proxy    *httputil.ReverseProxy
	direct   *directTransport // the fast path's pool; nil with a custom Transport
	buffers  *bufferPool      // body copy buffers, for both paths

	mu      sync.RWMutex
	configs map[string]*realmConfig
}

// identityHeaders are the canonical names of the headers the upstream sees.
type identityHeaders struct {
	subject, username, client, org, orgAlias, membership, roles, scopes, session string
}

// New returns a Gateway that asks auth about tokens and realms.
func New(auth Authenticator, opts Options) *Gateway {
	g := &Gateway{
		auth:     auth,
		log:      opts.Logger,
		realmFor: opts.RealmFor,
		prefix:   opts.HeaderPrefix,
		configs:  map[string]*realmConfig{},
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.prefix == "" {
		g.prefix = "X-Gatehouse-"
	}
	g.prefix = http.CanonicalHeaderKey(g.prefix)
	name := func(s string) string { return http.CanonicalHeaderKey(g.prefix + s) }
	g.hdr = identityHeaders{
		subject: name("Subject"), username: name("Username"), client: name("Client"),
		org: name("Organization"), orgAlias: name("Organization-Alias"),
		membership: name("Membership"), roles: name("Roles"), scopes: name("Scopes"),
		session: name("Session"),
	}
	g.buffers = newBufferPool()
	tr := opts.Transport
	if tr == nil {
		g.direct = newDirectTransport(DefaultTransport())
		tr = g.direct
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:   g.rewrite,
		Transport: tr,
		// 0, not -1: ReverseProxy already flushes every write of a
		// streaming response (text/event-stream, or no Content-Length);
		// -1 would add a flush per write to every ordinary response too.
		FlushInterval:  0,
		BufferPool:     g.buffers,
		ModifyResponse: modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return g
}

// DefaultTransport returns the transport a Gateway uses when Options has
// none: keep-alive connections pooled per upstream (a gateway talks to few
// hosts, many times), bounded dial and TLS handshake times, and bodies
// passed through as they are (no transparent gzip).
func DefaultTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
	}
}

// ServeHTTP enforces the policy of the request's realm and proxies it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	realm := ""
	if g.realmFor != nil {
		realm = g.realmFor(r)
	}
	if realm == "" {
		writeError(w, http.StatusNotFound, "not_found", "no API is served at this host")
		return
	}
	cfg, err := g.config(r.Context(), realm)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "not_found", "no API is served at this host")
			return
		}
		g.log.Warn("gateway: realm lookup failed", "realm", realm, "err", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "realm configuration unavailable")
		return
	}
	p := cleanPath(r.URL.Path)
	if p == MembershipsPath {
		g.serveMemberships(w, r, cfg)
		return
	}
	rt := cfg.router.match(r.Method, p)
	if rt == nil {
		writeError(w, http.StatusNotFound, "not_found", "no operation matches "+r.Method+" "+p)
		return
	}
	var id *identity
	if !rt.op.Public {
		prin, ok := g.authenticate(w, r, cfg, true)
		if !ok {
			return
		}
		sel, ok := g.selectMembership(w, r, cfg, prin)
		if !ok {
			return
		}
		held := cfg.heldScopes(prin)
		for _, s := range rt.scopes {
			if !contains(held, s) {
				g.log.Debug("gateway: insufficient scope", "realm", cfg.name, "path", p, "sub", prin.Subject, "scope", s)
				w.Header().Set("WWW-Authenticate", middleware.Challenge{Error: core.InsufficientScope, Scope: strings.Join(rt.scopes, " ")}.String())
				writeError(w, http.StatusForbidden, core.InsufficientScope, "the operation requires scope "+strings.Join(rt.scopes, " ")+"; missing "+s)
				return
			}
		}
		id = &identity{p: prin, sel: sel, scopes: held}
	}
	g.forward(w, r, rt, p, id)
}

// config returns the compiled policy of realm, compiling it again only when
// the realm's Updated changed.
func (g *Gateway) config(ctx context.Context, name string) (*realmConfig, error) {
	realm, err := g.auth.Realm(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			g.mu.Lock()
			delete(g.configs, name)
			g.mu.Unlock()
		}
		return nil, err
	}
	if !realm.Enabled || realm.Settings.Gateway == nil {
		return nil, store.ErrNotFound
	}
	g.mu.RLock()
	c := g.configs[name]
	g.mu.RUnlock()
	if c != nil && c.updated.Equal(realm.Updated) {
		return c, nil
	}
	c = compile(realm, g.log)
	g.mu.Lock()
	g.configs[name] = c
	g.mu.Unlock()
	return c, nil
}

// cleanPath removes dot segments and doubled slashes, keeping a trailing
// slash, so that the path matched is the path the upstream receives
// ("/public/../admin" must not match "/public/*").
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
