package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/rawconn"
)

// syncTransport is a keep-alive HTTP/1.1 RoundTripper for http:// targets
// that does each round trip on the calling goroutine: write the request,
// read the response, hand the connection back when the body has been read.
//
// net/http's Transport passes every round trip between the caller and two
// goroutines per connection (a writer and a reader), which costs several
// scheduler wake-ups per request. On a machine where loadgen shares cores
// with the server it measures, that CPU is taken from the server; this
// transport adds no hand-off of its own.
//
// Like the std transport of newTransport it keeps at most conns connections
// per host; a request that finds them all busy waits for one, and the wait
// is part of its latency. It enforces timeout itself, as a connection
// deadline covering the wait, the request, the response and its body, so
// the http.Client using it needs no Timeout (a Client.Timeout over a
// transport net/http does not know costs a goroutine and a timer per request).
type syncTransport struct {
	conns   int
	timeout time.Duration

	mu    sync.Mutex
	pools map[string]*hostPool
}

func newSyncTransport(conns int, timeout time.Duration) *syncTransport {
	return &syncTransport{conns: conns, timeout: timeout, pools: map[string]*hostPool{}}
}

// hostPool holds the connections to one address.
type hostPool struct {
	addr  string
	limit int

	mu   sync.Mutex
	open int // connections that exist or are being dialled
	idle []*pconn
	// waiters are requests waiting for a connection, oldest first. A grant
	// sent to one is either an idle connection or, with a nil pc, the right
	// to dial a new one in place of a connection that was closed.
	waiters []chan grant
}

type grant struct{ pc *pconn }

// pconn is one persistent connection. Only the goroutine holding it (from
// checkout to the end of the response body) touches br and bw.
type pconn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	pool *hostPool
	uses int // responses read completely on this connection
}

// errNothingReceived marks a reused connection that the server had closed
// before answering: it is the idle-close race every keep-alive client meets.
var errNothingReceived = errors.New("connection closed by the server before any response")

// aLongTimeAgo is a deadline that makes pending I/O fail at once.
var aLongTimeAgo = time.Unix(1, 0)

func (t *syncTransport) pool(addr string) *hostPool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pools[addr]
	if p == nil {
		p = &hostPool{addr: addr, limit: t.conns}
		t.pools[addr] = p
	}
	return p
}

// CloseIdleConnections closes every connection not in use; http.Client's
// method of the same name calls it.
func (t *syncTransport) CloseIdleConnections() {
	t.mu.Lock()
	pools := make([]*hostPool, 0, len(t.pools))
	for _, p := range t.pools {
		pools = append(pools, p)
	}
	t.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		idle := p.idle
		p.idle = nil
		p.open -= len(idle)
		p.mu.Unlock()
		for _, pc := range idle {
			pc.conn.Close()
		}
	}
}

// RoundTrip implements http.RoundTripper.
func (t *syncTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil && req.Body != nil {
		// A RoundTripper closes the request body, even on errors.
		req.Body.Close()
	}
	return resp, err
}

func (t *syncTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return nil, fmt.Errorf("sync transport: scheme %q not supported (use -transport std)", req.URL.Scheme)
	}
	if req.URL.Host == "" {
		return nil, errors.New("sync transport: no host in request URL")
	}
	ctx := req.Context()
	deadline := time.Now().Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	p := t.pool(addr)
	for {
		pc, err := p.get(ctx, deadline)
		if err != nil {
			return nil, err
		}
		reused := pc.uses > 0
		resp, err := pc.roundTrip(req, deadline)
		if err == nil {
			return resp, nil
		}
		pc.drop()
		// Like net/http, retry a request the server cannot have acted on
		// differently from a fresh one: it closed a reused connection
		// without answering, and the request has no body to resend.
		if reused && errors.Is(err, errNothingReceived) && replayable(req) {
			continue
		}
		return nil, err
	}
}

// replayable reports whether req may be sent again after a connection
// failure: an idempotent method and no body.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, "":
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// get returns a connection: an idle one, a new one while fewer than limit
// exist, or else the next one released, waiting no later than deadline.
func (p *hostPool) get(ctx context.Context, deadline time.Time) (*pconn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		pc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return pc, nil
	}
	if p.open < p.limit {
		p.open++
		p.mu.Unlock()
		return p.dial(ctx, deadline)
	}
	ch := make(chan grant, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var err error
	select {
	case g := <-ch:
		if g.pc != nil {
			return g.pc, nil
		}
		return p.dial(ctx, deadline)
	case <-timer.C:
		err = fmt.Errorf("timeout waiting for one of %d connections to %s", p.limit, p.addr)
	case <-ctx.Done():
		err = fmt.Errorf("waiting for one of %d connections to %s: %w", p.limit, p.addr, ctx.Err())
	}
	p.mu.Lock()
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, err
		}
	}
	p.mu.Unlock()
	// A grant was sent just as the wait ended: pass it on.
	if g := <-ch; g.pc != nil {
		g.pc.release()
	} else {
		p.freeSlot()
	}
	return nil, err
}

// dial opens a connection in a slot already counted in open.
func (p *hostPool) dial(ctx context.Context, deadline time.Time) (*pconn, error) {
	d := net.Dialer{Deadline: deadline, Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		p.freeSlot()
		return nil, err
	}
	conn = rawconn.Wrap(conn) // see "The HTTP client" in bench/README.md
	return &pconn{conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn), pool: p}, nil
}

// freeSlot gives up one connection slot: to the oldest waiter, who may dial,
// or back to the pool.
func (p *hostPool) freeSlot() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.popWaiter(); w != nil {
		w <- grant{} // buffered, never blocks
		return
	}
	p.open--
}

// popWaiter removes and returns the oldest waiter, nil if none; p.mu is held.
func (p *hostPool) popWaiter() chan grant {
	if len(p.waiters) == 0 {
		return nil
	}
	w := p.waiters[0]
	p.waiters[0] = nil
	p.waiters = p.waiters[1:]
	return w
}

// release puts a connection whose last response was read completely back
// into service: to the oldest waiter, or onto the idle list.
func (pc *pconn) release() {
	if pc.br.Buffered() > 0 {
		// Bytes beyond the response just read belong to no request;
		// reading them as the next request's answer would be wrong.
		pc.drop()
		return
	}
	p := pc.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.popWaiter(); w != nil {
		w <- grant{pc}
		return
	}
	p.idle = append(p.idle, pc)
}

// drop closes a connection that cannot be reused and frees its slot.
func (pc *pconn) drop() {
	pc.conn.Close()
	pc.pool.freeSlot()
}

// roundTrip sends req and reads the response head. On success the
// connection belongs to the returned body until it reports EOF or is closed;
// on error the caller drops the connection.
func (pc *pconn) roundTrip(req *http.Request, deadline time.Time) (*http.Response, error) {
	ctx := req.Context()
	if err := pc.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	var stopCancel func() bool
	if ctx.Done() != nil {
		// Cancellation becomes a past deadline, which fails the pending
		// read or write on this goroutine; no goroutine watches for it.
		conn := pc.conn
		stopCancel = context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	}
	fail := func(err error) (*http.Response, error) {
		if stopCancel != nil {
			stopCancel()
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("timeout: %w", err)
		}
		return nil, err
	}

	if err := pc.writeRequest(req); err != nil {
		return fail(err)
	}
	// Wait for the first byte separately, to tell a server that closed an
	// idle connection from one that failed mid-answer.
	if _, err := pc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || isReset(err) {
			err = fmt.Errorf("%w: %v", errNothingReceived, err)
		}
		return fail(err)
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(err)
		}
		// Informational answers (100 Continue, 103 Early Hints) precede the
		// real one.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("sync transport: protocol switch not supported"))
	}
	keep := !resp.Close && !req.Close && !headerHasClose(req.Header)
	b := &syncBody{rc: resp.Body, pc: pc, keep: keep, stopCancel: stopCancel}
	if resp.Body == http.NoBody {
		// Nothing to read: the connection is free now.
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// isReset reports a connection reset by the peer.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}

// headerHasClose reports a "Connection: close" request header.
func headerHasClose(h http.Header) bool {
	for _, v := range h["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "close") {
				return true
			}
		}
	}
	return false
}

// writeRequest writes req in HTTP/1.1 form, with a Content-Length body, and
// flushes it.
func (pc *pconn) writeRequest(req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && req.ContentLength <= 0 {
		return errors.New("sync transport: request body of unknown length (use -transport std)")
	}
	if !hasBody && req.ContentLength > 0 {
		return fmt.Errorf("sync transport: ContentLength %d without a body", req.ContentLength)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validToken(method) || !validValue(host) {
		return fmt.Errorf("sync transport: invalid method %q or host %q", method, host)
	}
	w := pc.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	if _, ok := req.Header["User-Agent"]; !ok {
		// What net/http sends, so both transports present the same request.
		w.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // the transport's own
		}
		if !validToken(k) {
			return fmt.Errorf("sync transport: invalid header name %q", k)
		}
		for _, v := range vs {
			if k == "User-Agent" && v == "" {
				continue
			}
			if !validValue(v) {
				return fmt.Errorf("sync transport: header %s: invalid value", k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if hasBody || req.ContentLength > 0 ||
		method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		w.WriteString("Content-Length: ")
		var num [20]byte
		w.Write(strconv.AppendInt(num[:0], req.ContentLength, 10))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	if hasBody {
		n, err := io.CopyN(w, req.Body, req.ContentLength)
		req.Body.Close()
		if err != nil {
			return fmt.Errorf("sync transport: request body: %d of %d bytes: %w", n, req.ContentLength, err)
		}
	}
	return w.Flush()
}

// validToken reports whether s is a non-empty RFC 9110 token (a method or
// header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validValue reports whether s can be written as a header value without
// ending the line or the header.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// syncBody is a response body that owns its connection until the body has
// been read to EOF (the connection goes back into service) or fails or is
// closed early (the connection is closed: unread bytes would otherwise be
// taken for the next request's answer).
type syncBody struct {
	rc         io.ReadCloser
	pc         *pconn
	keep       bool
	stopCancel func() bool
	// state: 0 reading, 1 read to EOF, 2 closed early or failed. Close may
	// race a Read on another goroutine; the first to settle it wins.
	state atomic.Int32
}

var errBodyClosed = errors.New("read on closed response body")

func (b *syncBody) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case 1:
		return 0, io.EOF
	case 2:
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
	case err != nil:
		b.finish(false)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("timeout reading response body: %w", err)
		}
	}
	return n, err
}

// Close before EOF closes the connection rather than read the rest of an
// answer nobody wants.
func (b *syncBody) Close() error {
	b.finish(false)
	return nil
}

// finish settles the connection once: back into service after a complete,
// reusable response, closed otherwise.
func (b *syncBody) finish(complete bool) {
	state := int32(2)
	if complete {
		state = 1
	}
	if !b.state.CompareAndSwap(0, state) {
		return
	}
	keep := complete && b.keep
	if b.stopCancel != nil && !b.stopCancel() {
		keep = false // cancellation already fired and broke the deadline
	}
	if !keep {
		b.pc.drop()
		return
	}
	b.pc.uses++
	b.pc.release()
}
