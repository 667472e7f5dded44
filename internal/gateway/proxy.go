package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
)

// stateKey carries a request's proxyState from ServeHTTP to the proxy's
// hooks, which see only the request.
type stateKey struct{}

// proxyState is what the proxy hooks need to know about one request.
type proxyState struct {
	route  *route
	path   string    // cleaned path, forwarded as is
	id     *identity // nil on public operations
	client context.Context

	timeout   time.Duration
	timer     *time.Timer
	responded atomic.Bool // upstream headers arrived: no more timeout
	timedOut  atomic.Bool
	bodyErr   atomic.Bool // reading the client's body failed
}

// identity is what the upstream is told about the caller.
type identity struct {
	p      *core.Principal
	sel    *selection
	scopes []string
}

// forward proxies r to rt's upstream. The upstream must start answering
// within the operation's timeout after the last byte of request body it
// read (an idle timeout, so that a long upload is not cut off while it
// makes progress); the response then streams without a time limit.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, rt *route, p string, id *identity) {
	if rt.target == nil {
		writeError(w, http.StatusBadGateway, "bad_gateway", "the operation has no usable upstream")
		return
	}
	if g.fastEligible(r, rt) {
		g.serveFast(w, r, rt, p, id)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	st := &proxyState{route: rt, path: p, id: id, client: r.Context(), timeout: time.Duration(rt.timeout) * time.Second}
	st.timer = time.AfterFunc(st.timeout, func() {
		if st.responded.Load() {
			return
		}
		st.timedOut.Store(true)
		cancel()
	})
	defer st.timer.Stop()
	r2 := r.WithContext(context.WithValue(ctx, stateKey{}, st))
	if r.Body != nil && r.Body != http.NoBody {
		r2.Body = &watchBody{rc: r.Body, st: st}
	}
	g.proxy.ServeHTTP(w, r2)
}

// watchBody restarts the upstream timeout while the request body flows and
// remembers a failure to read it (the client's fault, not the upstream's).
type watchBody struct {
	rc io.ReadCloser
	st *proxyState
}

func (b *watchBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 && !b.st.responded.Load() {
		b.st.timer.Reset(b.st.timeout)
	}
	if err != nil && err != io.EOF {
		b.st.bodyErr.Store(true)
	}
	return n, err
}

func (b *watchBody) Close() error { return b.rc.Close() }

func stateOf(r *http.Request) *proxyState {
	st, _ := r.Context().Value(stateKey{}).(*proxyState)
	return st
}

// rewrite builds the upstream request: the cleaned path under the
// upstream's, identity headers replaced by the gateway's own, no client
// credentials unless the operation forwards them, X-Forwarded-* appended,
// a client's Forwarded and X-Real-IP dropped.
// httputil.ReverseProxy has already removed hop-by-hop headers (and those
// named in Connection) from pr.Out, so a client cannot make it drop the
// identity headers set here.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In)
	h := pr.Out.Header
	stripPrefixed(h, g.prefix)
	pr.Out.URL.Path = st.path
	pr.Out.URL.RawPath = ""
	pr.SetURL(st.route.target)
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		h["X-Forwarded-For"] = append([]string(nil), prior...)
	}
	pr.SetXForwarded()
	// ReverseProxy drops a client's Forwarded and X-Forwarded-*, but not
	// X-Real-IP, which many upstreams read as the client address: coming
	// from the client, nothing vouches for it.
	h.Del("X-Real-Ip")
	if !st.route.op.ForwardAuthorization {
		h.Del("Authorization")
	}
	if st.id != nil {
		g.setIdentity(h, st.id)
	}
}

func (g *Gateway) setIdentity(h http.Header, id *identity) {
	// One backing array for every header's one-value slice: nine small
	// allocations per request become one.
	vals := make([]string, 0, 9)
	g.eachIdentity(id, func(name, v string) {
		vals = append(vals, v)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	})
}

// eachIdentity calls f with each identity header the upstream is sent and
// its value, leaving out empty ones.
func (g *Gateway) eachIdentity(id *identity, f func(name, v string)) {
	set := func(name, v string) {
		if v = headerValue(v); v != "" {
			f(name, v)
		}
	}
	p := id.p
	set(g.hdr.subject, p.Subject)
	set(g.hdr.username, p.Username)
	set(g.hdr.client, p.ClientID)
	set(g.hdr.session, p.SessionID)
	set(g.hdr.roles, strings.Join(p.RealmRoles, ","))
	set(g.hdr.scopes, strings.Join(id.scopes, " "))
	if id.sel != nil {
		set(g.hdr.org, id.sel.m.OrgID)
		set(g.hdr.membership, id.sel.m.ID)
		if id.sel.org != nil {
			set(g.hdr.orgAlias, id.sel.org.Alias)
		}
	}
}

// headerValue drops control characters, which no header value may carry
// and which a token's claims should not be able to smuggle in; tab too.
func headerValue(v string) string { return withoutControls(v, false) }

// withoutControls returns v without ASCII control characters, keeping
// tab (which a header value may hold) when keepTab is set. A value
// without any is returned as it is, with no allocation.
func withoutControls(v string, keepTab bool) string {
	control := func(b rune) bool { return b < ' ' && !(keepTab && b == '\t') || b == 0x7f }
	for i := 0; i < len(v); i++ {
		if control(rune(v[i])) {
			return strings.Map(func(r rune) rune {
				if control(r) {
					return -1
				}
				return r
			}, v)
		}
	}
	return v
}

// stripPrefixed deletes every header whose name starts with prefix, case
// insensitively and treating "_" as "-": servers behind CGI-style
// conventions (PHP-FPM, WSGI) read X_Gatehouse_Subject as the same
// variable as X-Gatehouse-Subject.
func stripPrefixed(h http.Header, prefix string) {
	for k := range h {
		if hasPrefixFold(k, prefix) {
			delete(h, k)
		}
	}
}

func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		a, b := s[i], prefix[i]
		if a == '_' {
			a = '-'
		}
		if b == '_' {
			b = '-'
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// modifyResponse marks that the upstream answered, which ends the timeout.
func modifyResponse(res *http.Response) error {
	if st := stateOf(res.Request); st != nil {
		st.responded.Store(true)
		st.timer.Stop()
	}
	return nil
}

// proxyError answers a request the upstream did not: 504 on timeout, 502
// when unreachable, 400 when the client's own body broke off.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	if st == nil {
		writeError(w, http.StatusBadGateway, "bad_gateway", "the upstream could not be reached")
		return
	}
	g.upstreamFailed(w, st.route, st.client, st.timedOut.Load(), st.bodyErr.Load(), err)
}

// upstreamFailed answers for a route whose upstream did not answer.
// client is the client's request context.
func (g *Gateway) upstreamFailed(w http.ResponseWriter, rt *route, client context.Context, timedOut, bodyErr bool, err error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL may carry a query string with secrets
	}
	switch {
	case bodyErr:
		writeError(w, http.StatusBadRequest, core.InvalidRequest, "the request body could not be read")
	case timedOut:
		g.log.Warn("gateway: upstream timeout", "path", rt.pattern, "upstream", rt.target.Host, "timeout", time.Duration(rt.timeout)*time.Second)
		writeError(w, http.StatusGatewayTimeout, "gateway_timeout", "the upstream did not answer within "+strconv.Itoa(rt.timeout)+"s")
	case client.Err() != nil:
		// The client went away; nobody reads an answer.
	default:
		g.log.Warn("gateway: upstream unreachable", "path", rt.pattern, "upstream", rt.target.Host, "err", err)
		writeError(w, http.StatusBadGateway, "bad_gateway", "the upstream could not be reached")
	}
}

// bufferPool reuses the proxy's copy buffers across requests.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}}
}

// Get and Put serve httputil.ReverseProxy, whose interface passes the
// slice itself (so Put allocates a pointer to keep it); the fast path
// uses get and put, which do not.
func (b *bufferPool) Get() []byte  { return *b.get() }
func (b *bufferPool) Put(x []byte) { b.put(&x) }

func (b *bufferPool) get() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufferPool) put(x *[]byte) { b.p.Put(x) }
