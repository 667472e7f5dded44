package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/rawconn"
)

// directTransport carries the common case of a gateway, a plain-HTTP
// request without a body, on the calling goroutine: it writes the request
// to a pooled keep-alive connection and reads the answer itself.
// net/http's Transport hands every round trip between three goroutines
// (caller, writeLoop, readLoop); on a loaded gateway those wake-ups cost
// about as much as the proxying. Everything else (request bodies, which
// an upstream may answer before it has read them; protocol upgrades; TLS
// and HTTP/2) goes to the fallback transport, which handles them.
//
// A connection goes back to the pool only when its response was read to
// the end of its framing with nothing left over, so no byte of one answer
// can be read as part of the next.
type directTransport struct {
	fallback http.RoundTripper
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle  int           // idle connections kept per upstream
	idleFor  time.Duration // an idle connection older than this is closed

	mu   sync.Mutex
	idle map[string][]*directConn
}

type directConn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   string
	idleAt time.Time
}

func newDirectTransport(fallback *http.Transport) *directTransport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &directTransport{
		fallback: fallback,
		dial:     d.DialContext,
		maxIdle:  fallback.MaxIdleConnsPerHost,
		idleFor:  fallback.IdleConnTimeout,
		idle:     map[string][]*directConn{},
	}
}

// direct reports whether r can take the direct path.
func direct(r *http.Request) bool {
	return r.URL.Scheme == "http" && (r.Body == nil || r.Body == http.NoBody) &&
		r.ContentLength == 0 && len(r.TransferEncoding) == 0 && r.Header.Get("Upgrade") == "" &&
		r.URL.User == nil
}

func (t *directTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !direct(r) {
		return t.fallback.RoundTrip(r)
	}
	addr := r.URL.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "80")
	}
	for {
		pc, reused, err := t.get(r.Context(), addr)
		if err != nil {
			return nil, err
		}
		res, err := t.roundTrip(pc, r)
		if err == nil {
			return res, nil
		}
		pc.c.Close()
		if !reused || !sendAgain(err, r) || r.Context().Err() != nil {
			return nil, err
		}
	}
}

// sendAgain reports whether r, which failed with err on a pooled
// connection, may go again on a new one. An idle connection the upstream
// had already closed fails before any answer arrives. A request that
// never left can go again; one that was sent only if sending it twice is
// harmless (RFC 9110 §9.2.2), as net/http's Transport decides.
func sendAgain(err error, r *http.Request) bool {
	return errors.Is(err, errNotSent) || errors.Is(err, errNoAnswer) && replayable(r)
}

// errNotSent marks a request that could not be written; errNoAnswer one
// that was written but got not a byte of answer.
var (
	errNotSent  = errors.New("upstream connection closed before the request was sent")
	errNoAnswer = errors.New("upstream closed the connection before answering")
)

// replayable reports whether r may be sent again after it may have
// reached the upstream: an idempotent method, or a client that said the
// request is safe to repeat.
func replayable(r *http.Request) bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != ""
}

func (t *directTransport) roundTrip(pc *directConn, r *http.Request) (*http.Response, error) {
	_ = pc.c.SetDeadline(time.Time{}) // the fast path may have left one
	// The gateway ends a request by cancelling its context (upstream
	// timeout, client gone); a deadline in the past unblocks the read.
	stop := context.AfterFunc(r.Context(), func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
	if err := r.Write(pc.bw); err != nil {
		stop()
		return nil, ctxErr(r, errors.Join(errNotSent, err))
	}
	if err := pc.bw.Flush(); err != nil {
		stop()
		return nil, ctxErr(r, errors.Join(errNotSent, err))
	}
	res, err := readAnswer(pc, r)
	if err != nil {
		stop()
		return nil, ctxErr(r, err)
	}
	res.Body = &directBody{rc: res.Body, t: t, pc: pc, stop: stop,
		reuse: !res.Close && !r.Close}
	return res, nil
}

// readAnswer reads the head of the final answer to r, which has been
// sent on pc. 1xx answers are interim (100 Continue, 103 Early Hints);
// the final answer follows on the same connection. A 101 to a request
// that asked for no upgrade is a broken upstream. An error wrapping
// errNoAnswer means not a byte came back.
func readAnswer(pc *directConn, r *http.Request) (*http.Response, error) {
	if _, err := pc.br.Peek(1); err != nil {
		return nil, errors.Join(errNoAnswer, err)
	}
	for {
		res, err := http.ReadResponse(pc.br, r)
		if err != nil {
			return nil, err
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("upstream switched protocols unasked")
		case res.StatusCode >= 100 && res.StatusCode < 200:
			continue
		}
		return res, nil
	}
}

// ctxErr prefers the request's own context error, which says why a
// deadline in the past fired.
func ctxErr(r *http.Request, err error) error {
	if cerr := r.Context().Err(); cerr != nil {
		return cerr
	}
	return err
}

// directBody returns its connection to the pool once the answer has been
// read to its end, and closes it in every other case.
type directBody struct {
	rc    io.ReadCloser
	t     *directTransport
	pc    *directConn
	stop  func() bool
	reuse bool
	done  bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *directBody) Close() error {
	b.finish(false)
	return nil
}

func (b *directBody) finish(atEOF bool) {
	if b.done {
		return
	}
	b.done = true
	fired := !b.stop()
	if atEOF && b.reuse && !fired && b.pc.br.Buffered() == 0 {
		b.t.put(b.pc)
		return
	}
	b.pc.c.Close()
}

// get returns an idle connection to addr, or a new one. A pooled
// connection may carry a deadline from its last use: its user sets its
// own.
func (t *directTransport) get(ctx context.Context, addr string) (*directConn, bool, error) {
	return t.getBy(ctx, addr, time.Time{})
}

// getBy is get with a deadline for dialing (none if zero).
func (t *directTransport) getBy(ctx context.Context, addr string, deadline time.Time) (*directConn, bool, error) {
	now := time.Now()
	t.mu.Lock()
	for l := t.idle[addr]; len(l) > 0; l = t.idle[addr] {
		pc := l[len(l)-1]
		t.idle[addr] = l[:len(l)-1]
		if now.Sub(pc.idleAt) < t.idleFor {
			t.mu.Unlock()
			return pc, true, nil
		}
		pc.c.Close()
	}
	t.mu.Unlock()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	c = rawconn.Wrap(c)
	return &directConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 4<<10), addr: addr}, false, nil
}

func (t *directTransport) put(pc *directConn) {
	pc.idleAt = time.Now()
	t.mu.Lock()
	if len(t.idle[pc.addr]) < t.maxIdle {
		t.idle[pc.addr] = append(t.idle[pc.addr], pc)
		pc = nil
	}
	t.mu.Unlock()
	if pc != nil {
		pc.c.Close()
	}
}

// CloseIdleConnections closes the pooled connections of both paths.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*directConn{}
	t.mu.Unlock()
	for _, l := range idle {
		for _, pc := range l {
			pc.c.Close()
		}
	}
	if f, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}
