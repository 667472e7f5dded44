package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
)

// The fast path carries the gateway's common case, a body-less request to
// a plain-HTTP upstream, without httputil.ReverseProxy: it writes the
// upstream request head straight from the client's headers onto a pooled
// connection and copies the answer back. ReverseProxy clones the request,
// its URL and every header into maps, deletes from them, sets the
// identity headers into them and sorts them again to write them; on a
// loaded gateway that bookkeeping costs more than the token check.
//
// What the upstream receives is what ReverseProxy with the gateway's
// rewrite would send, header for header (TestFastPathMatchesReverseProxy
// sends the same requests both ways and compares): hop-by-hop headers and
// those named in Connection dropped, "Te: trailers" kept, client-sent
// Forwarded, X-Forwarded-*, X-Real-IP and identity headers dropped,
// X-Forwarded-For/Host/Proto set, Authorization only where the operation
// forwards it, unparsable query parameters removed. Everything else
// (bodies, upgrades, TLS upstreams, a custom Transport) goes through
// ReverseProxy.

// fastEligible reports whether r to rt can take the fast path.
func (g *Gateway) fastEligible(r *http.Request, rt *route) bool {
	t := rt.target
	return g.direct != nil && t.Scheme == "http" && t.User == nil && t.Opaque == "" && t.RawPath == "" &&
		(r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 && len(r.TransferEncoding) == 0 &&
		len(r.Header["Upgrade"]) == 0
}

// serveFast proxies r as ReverseProxy would, with the same timeout rule:
// the upstream must start answering within the operation's timeout, and
// the answer then streams without a time limit. The client going away
// ends the exchange at any point.
func (g *Gateway) serveFast(w http.ResponseWriter, r *http.Request, rt *route, p string, id *identity) {
	timeout := time.Duration(rt.timeout) * time.Second
	deadline := time.Now().Add(timeout)
	addr := rt.target.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "80")
	}
	uri, ok := g.upstreamURI(r, rt, p)
	if !ok {
		writeError(w, http.StatusBadRequest, core.InvalidRequest, "the request target holds characters no request line may")
		return
	}
	var (
		pc   *directConn
		res  *http.Response
		stop func() bool
		err  error
	)
	for {
		var reused bool
		pc, reused, err = g.direct.getBy(r.Context(), addr, deadline)
		if err != nil {
			break
		}
		_ = pc.c.SetDeadline(deadline)
		conn := pc.c
		stop = context.AfterFunc(r.Context(), func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		res, err = g.exchange(pc, r, rt, uri, id)
		if err == nil {
			break
		}
		stop()
		pc.c.Close()
		if !reused || !sendAgain(err, r) || r.Context().Err() != nil || !time.Now().Before(deadline) {
			break
		}
	}
	if err != nil {
		timedOut := r.Context().Err() == nil &&
			(errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded))
		g.upstreamFailed(w, rt, r.Context(), timedOut, false, err)
		return
	}
	// The answer has begun: no more timeout, unless all of it is already
	// read. Clearing the deadline could undo the client's cancellation, so
	// look at it again afterwards.
	if res.ContentLength < 0 || int64(pc.br.Buffered()) < res.ContentLength {
		_ = pc.c.SetDeadline(time.Time{})
	}
	if r.Context().Err() != nil {
		stop()
		pc.c.Close()
		return
	}

	conn := connectionTokens(res.Header["Connection"])
	dst := w.Header()
	for k, vv := range res.Header {
		if hopHeader(k, conn) {
			continue
		}
		if len(dst[k]) == 0 {
			dst[k] = vv // res.Header is this request's own
		} else {
			dst[k] = append(dst[k], vv...)
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)
	copyErr := g.copyBody(w, r, res.Body, streaming(res))
	fired := !stop()
	if copyErr != nil || fired || res.Close || pc.br.Buffered() != 0 {
		// Closed first: closing the body of an unfinished answer reads it
		// to its end, which on a live connection could take forever.
		pc.c.Close()
		res.Body.Close()
	} else {
		res.Body.Close()
		g.direct.put(pc)
	}
	if copyErr != nil {
		if r.Context().Value(http.ServerContextKey) != nil {
			// As ReverseProxy does: abort the client's connection, so that
			// a cut-off answer cannot pass for a complete one.
			panic(http.ErrAbortHandler)
		}
		return
	}
	if len(res.Trailer) > 0 {
		// Forces chunked framing, where the trailers can follow.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			dst[k] = append(dst[k], vv...)
		}
		return
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			dst.Add(http.TrailerPrefix+k, v)
		}
	}
}

// exchange writes the request head and reads the final answer's head.
func (g *Gateway) exchange(pc *directConn, r *http.Request, rt *route, uri string, id *identity) (*http.Response, error) {
	g.writeHead(pc.bw, r, rt, uri, id)
	if err := pc.bw.Flush(); err != nil {
		return nil, errors.Join(errNotSent, err)
	}
	return readAnswer(pc, r)
}

// upstreamURI is the request target ReverseProxy's SetURL would produce:
// the cleaned path under the upstream's path, the upstream's query
// followed by the client's, minus parameters that do not parse. ok is
// false if the result would break the request line; net/http's server
// refuses such targets before they get here.
func (g *Gateway) upstreamURI(r *http.Request, rt *route, p string) (uri string, ok bool) {
	t := rt.target
	q := cleanQuery(r.URL.RawQuery)
	if t.RawQuery != "" && q != "" {
		q = t.RawQuery + "&" + q
	} else {
		q = t.RawQuery + q
	}
	u := url.URL{Path: joinPath(t.Path, p), RawQuery: q, ForceQuery: r.URL.ForceQuery}
	uri = u.RequestURI()
	for i := 0; i < len(uri); i++ {
		if uri[i] <= ' ' || uri[i] == 0x7f {
			return "", false
		}
	}
	return uri, true
}

func joinPath(a, b string) string {
	as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case as && bs:
		return a + b[1:]
	case !as && !bs:
		return a + "/" + b
	}
	return a + b
}

// cleanQuery re-encodes a query that holds a parameter which does not
// parse (a ";" or a bad escape), which drops it; an upstream must not read
// a different parameter list than the gateway could.
func cleanQuery(s string) string {
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			v, _ := url.ParseQuery(s)
			return v.Encode()
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				v, _ := url.ParseQuery(s)
				return v.Encode()
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// writeHead writes the upstream request's line and headers.
func (g *Gateway) writeHead(bw *bufio.Writer, r *http.Request, rt *route, uri string, id *identity) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(rt.target.Host)
	bw.WriteString("\r\n")
	conn := connectionTokens(r.Header["Connection"])
	for k, vv := range r.Header {
		if g.dropFromClient(k, conn, rt) {
			continue
		}
		if k == "User-Agent" {
			vv = vv[:1] // net/http writes one User-Agent
		}
		for _, v := range vv {
			if k == "User-Agent" && v == "" {
				continue
			}
			writeField(bw, k, v)
		}
	}
	switch r.Method {
	case "POST", "PUT", "PATCH":
		bw.WriteString("Content-Length: 0\r\n")
	}
	if hasToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		for _, prior := range r.Header["X-Forwarded-For"] {
			bw.WriteString(sanitize(prior))
			bw.WriteString(", ")
		}
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	writeField(bw, "X-Forwarded-Host", r.Host)
	if r.TLS == nil {
		bw.WriteString("X-Forwarded-Proto: http\r\n")
	} else {
		bw.WriteString("X-Forwarded-Proto: https\r\n")
	}
	if id != nil {
		g.eachIdentity(id, func(name, v string) { writeField(bw, name, v) })
	}
	bw.WriteString("\r\n")
}

// dropFromClient reports whether the client's header k stays behind.
func (g *Gateway) dropFromClient(k string, conn []string, rt *route) bool {
	switch k {
	case "Host", "Content-Length", "Transfer-Encoding", "Trailer", // net/http writes its own
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip":
		return true
	case "Authorization":
		if !rt.op.ForwardAuthorization {
			return true
		}
	}
	return hopHeader(k, conn) || hasPrefixFold(k, g.prefix)
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(sanitize(v))
	bw.WriteString("\r\n")
}

// sanitize keeps the head well-formed whatever a value holds: control
// characters other than tab go (net/http's server has refused them in
// the client's headers already; this is the second line), and surrounding
// blanks too, as net/http's Header.Write trims them.
func sanitize(v string) string {
	return textproto.TrimString(withoutControls(v, true))
}

// connectionTokens lists the canonical header names a Connection header
// declares hop-by-hop.
func connectionTokens(vals []string) []string {
	var out []string
	for _, f := range vals {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				out = append(out, http.CanonicalHeaderKey(sf))
			}
		}
	}
	return out
}

// hopHeader reports whether header k belongs to one connection only
// (RFC 9110 §7.6.1): the well-known ones and those listed in Connection.
func hopHeader(k string, conn []string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	for _, c := range conn {
		if c == k {
			return true
		}
	}
	return false
}

func hasToken(vals []string, token string) bool {
	for _, f := range vals {
		for sf := range strings.SplitSeq(f, ",") {
			if strings.EqualFold(textproto.TrimString(sf), token) {
				return true
			}
		}
	}
	return false
}

// streaming reports whether each piece of the answer must reach the
// client as it arrives: server-sent events, and answers of unknown length.
func streaming(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// copyBody copies the answer to the client, flushing each piece when
// flush is set. Its error means the answer was cut off.
func (g *Gateway) copyBody(w http.ResponseWriter, r *http.Request, body io.Reader, flush bool) error {
	bp := g.buffers.get()
	defer g.buffers.put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		// The head goes out now, as ReverseProxy's does: a stream's first
		// piece may be long in coming.
		rc = http.NewResponseController(w)
		if err := rc.Flush(); err != nil {
			return err
		}
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if r.Context().Err() == nil {
				g.log.Warn("gateway: upstream answer cut off", "err", rerr)
			}
			return rerr
		}
	}
}
