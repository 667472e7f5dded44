package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connCount counts the TCP connections a server accepted and the most that
// were open at once.
type connCount struct {
	accepted, open, maxOpen atomic.Int64
}

func (c *connCount) state(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.accepted.Add(1)
		n := c.open.Add(1)
		for {
			m := c.maxOpen.Load()
			if n <= m || c.maxOpen.CompareAndSwap(m, n) {
				break
			}
		}
	case http.StateClosed, http.StateHijacked:
		c.open.Add(-1)
	}
}

// countedServer starts h behind a connection counter.
func countedServer(t *testing.T, h http.Handler) (*httptest.Server, *connCount) {
	t.Helper()
	cc := &connCount{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = cc.state
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
}

// echoHandler answers every request with "id=<id>" taken from the query or,
// for a request with a body, the body itself, so a test can tell whose answer
// it got. /chunked streams the answer in pieces (chunked encoding), /close
// asks the client to close the connection afterwards.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg := "id=" + r.URL.Query().Get("id")
		if r.ContentLength > 0 {
			b, _ := io.ReadAll(r.Body)
			msg = string(b)
		}
		switch r.URL.Path {
		case "/chunked":
			// Enough pieces, flushed, that the answer cannot fit a
			// Content-Length.
			for i := range 3 {
				fmt.Fprintf(w, "%s/%d;", msg, i)
				w.(http.Flusher).Flush()
			}
			return
		case "/close":
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
		io.WriteString(w, msg)
	})
}

// get sends one GET through c and returns status and body.
func get(c *http.Client, u string) (int, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func syncClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{Transport: newSyncTransport(conns, timeout)}
}

func TestSyncTransportContentLengthAndChunked(t *testing.T) {
	srv, _ := countedServer(t, echoHandler())
	c := syncClient(2, 5*time.Second)
	defer c.CloseIdleConnections()

	for i := range 20 {
		code, body, err := get(c, fmt.Sprintf("%s/plain?id=%d", srv.URL, i))
		if err != nil || code != 200 || body != fmt.Sprintf("id=%d", i) {
			t.Fatalf("plain %d: %d %q %v", i, code, body, err)
		}
		code, body, err = get(c, fmt.Sprintf("%s/chunked?id=%d", srv.URL, i))
		if want := fmt.Sprintf("id=%d/0;id=%d/1;id=%d/2;", i, i, i); err != nil || code != 200 || body != want {
			t.Fatalf("chunked %d: %d %q %v, want %q", i, code, body, err, want)
		}
	}

	// A request body goes out with its Content-Length and comes back.
	resp, err := c.Post(srv.URL+"/plain", "text/plain", strings.NewReader("posted body"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "posted body" {
		t.Fatalf("POST echo %q %v", b, err)
	}

	// A 204 and a HEAD have no body; the connection is free at once.
	noBody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Id", r.URL.Query().Get("id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer noBody.Close()
	c1 := syncClient(1, 5*time.Second)
	defer c1.CloseIdleConnections()
	for i := range 5 {
		resp, err := c1.Get(fmt.Sprintf("%s/?id=%d", noBody.URL, i))
		if err != nil || resp.StatusCode != 204 || resp.Header.Get("X-Id") != strconv.Itoa(i) {
			t.Fatalf("204 %d: %v %v", i, resp, err)
		}
		// Not closed on purpose: with one connection, the next request
		// would wait forever if a body-less answer kept it.
	}
	resp, err = c1.Head(noBody.URL + "/?id=h")
	if err != nil || resp.Header.Get("X-Id") != "h" {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
}

// Many concurrent requests over few connections: every answer is the
// request's own, and the server never sees more than N connections.
func TestSyncTransportReusesAtMostNConnections(t *testing.T) {
	srv, cc := countedServer(t, echoHandler())
	const conns, workers, each = 3, 12, 50
	c := syncClient(conns, 10*time.Second)
	defer c.CloseIdleConnections()

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("%d-%d", w, i)
				path := "/plain"
				if i%3 == 0 {
					path = "/chunked"
				}
				code, body, err := get(c, srv.URL+path+"?id="+id)
				want := "id=" + id
				if path == "/chunked" {
					want = fmt.Sprintf("id=%s/0;id=%s/1;id=%s/2;", id, id, id)
				}
				if err != nil || code != 200 || body != want {
					errs <- fmt.Errorf("request %s: %d %q %v", id, code, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := cc.accepted.Load(); n < 1 || n > conns {
		t.Errorf("server accepted %d connections for %d requests, want 1..%d", n, workers*each, conns)
	}
}

// A server that says Connection: close gets a new connection for the next
// request, and every answer still belongs to its request.
func TestSyncTransportHonoursConnectionClose(t *testing.T) {
	srv, cc := countedServer(t, echoHandler())
	c := syncClient(2, 5*time.Second)
	defer c.CloseIdleConnections()
	for i := range 30 {
		path := "/plain"
		if i%2 == 0 {
			path = "/close"
		}
		// POSTs, which are never sent twice: reusing a closed connection
		// would fail one instead of quietly sending it again.
		want := fmt.Sprintf("post=%d", i)
		resp, err := c.Post(srv.URL+path, "text/plain", strings.NewReader(want))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, b, err)
		}
	}
	if n := cc.accepted.Load(); n < 15 {
		t.Errorf("server accepted %d connections; 15 answers said Connection: close", n)
	}
}

// rawServer accepts connections and hands each to serve; it is for servers
// that misbehave in ways net/http's server will not.
func rawServer(t *testing.T, serve func(conn net.Conn)) (url string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = &atomic.Int64{}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Go(func() {
				defer conn.Close()
				serve(conn)
			})
		}
	})
	return "http://" + ln.Addr().String(), accepted
}

// echoID is what the raw servers answer: the request's id, from the query or
// the body.
func echoID(r *http.Request) string {
	if r.ContentLength > 0 {
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	return "id=" + r.URL.Query().Get("id")
}

func writeAnswer(w io.Writer, msg string) error {
	_, err := fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
	return err
}

// A server that drops a keep-alive connection after two answers, without
// a word, the way an idle timeout does. GETs are sent again on a new
// connection; a POST, which the server may have acted on, fails. No request
// ever gets another's answer.
func TestSyncTransportServerDropsConnection(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			url, accepted := rawServer(t, func(conn net.Conn) {
				br := bufio.NewReader(conn)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					msg := echoID(req)
					if n == 2 {
						if reset {
							conn.(*net.TCPConn).SetLinger(0)
						}
						return
					}
					if writeAnswer(conn, msg) != nil {
						return
					}
				}
			})
			c := syncClient(1, 5*time.Second)
			defer c.CloseIdleConnections()
			for i := range 12 {
				code, body, err := get(c, fmt.Sprintf("%s/?id=%d", url, i))
				if err != nil || code != 200 || body != fmt.Sprintf("id=%d", i) {
					t.Fatalf("GET %d: %d %q %v", i, code, body, err)
				}
			}
			if n := accepted.Load(); n < 6 {
				t.Errorf("%d connections for 12 GETs at two answers per connection", n)
			}

			var ok, failed int
			for i := range 12 {
				want := fmt.Sprintf("post=%d", i)
				resp, err := c.Post(url+"/", "text/plain", strings.NewReader(want))
				if err != nil {
					failed++
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != want {
					t.Fatalf("POST %d: %q %v", i, b, err)
				}
				ok++
			}
			if failed == 0 || ok == 0 {
				t.Errorf("POSTs: %d answered, %d failed; want both (the third on each connection fails)", ok, failed)
			}
		})
	}
}

// Answers cut short, answers with bytes after their end: errors, never a
// success, and never a later request reading leftovers as its answer.
func TestSyncTransportBrokenAnswers(t *testing.T) {
	url, _ := rawServer(t, func(conn net.Conn) {
		br := bufio.NewReader(conn)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			msg := echoID(req)
			switch req.URL.Path {
			case "/short":
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n%s", msg)
				return
			case "/short-chunked":
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(msg), msg)
				return
			case "/extra":
				// One write: the unasked-for second answer arrives with
				// the first.
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%sHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale", len(msg), msg)
			case "/headless":
				io.WriteString(conn, "not http\r\n\r\n")
				return
			default:
				writeAnswer(conn, msg)
			}
		}
	})
	c := syncClient(1, 5*time.Second)
	defer c.CloseIdleConnections()
	for i, path := range []string{"/short", "/short-chunked", "/headless", "/extra"} {
		code, body, err := get(c, fmt.Sprintf("%s%s?id=%d", url, path, i))
		if path == "/extra" {
			if err != nil || body != fmt.Sprintf("id=%d", i) {
				t.Errorf("%s: %d %q %v", path, code, body, err)
			}
		} else if err == nil {
			t.Errorf("%s: success (%d %q) for a broken answer", path, code, body)
		}
		code, body, err = get(c, fmt.Sprintf("%s/ok?id=next%d", url, i))
		if err != nil || code != 200 || body != fmt.Sprintf("id=next%d", i) {
			t.Fatalf("after %s: %d %q %v", path, code, body, err)
		}
	}
}

// A timed-out request fails; its late answer is not given to the next
// request; the connection slot it held is free again.
func TestSyncTransportTimeouts(t *testing.T) {
	release := make(chan struct{})
	hanging := make(chan string, 10) // ids of requests the server is holding
	srv, cc := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		switch r.URL.Path {
		case "/hang":
			hanging <- id
			<-release
		case "/hang-body":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			<-release
			return
		}
		io.WriteString(w, "id="+id)
	}))
	defer close(release) // before the server's Close, which waits for handlers

	c := syncClient(1, 300*time.Millisecond)
	defer c.CloseIdleConnections()
	if _, _, err := get(c, srv.URL+"/hang?id=1"); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("hanging server: err = %v, want a timeout", err)
	}
	<-hanging
	if _, _, err := get(c, srv.URL+"/hang-body?id=2"); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("hanging body: err = %v, want a timeout", err)
	}
	code, body, err := get(c, srv.URL+"/ok?id=3")
	if err != nil || code != 200 || body != "id=3" {
		t.Fatalf("after timeouts: %d %q %v", code, body, err)
	}
	if n := cc.accepted.Load(); n != 3 {
		t.Errorf("%d connections, want 3: each timed-out one closed, the last new", n)
	}

	// With the only connection held by a hanging request, a second request
	// times out waiting for it; cancelling the first ends it. A long
	// transport timeout keeps the first from freeing the slot on its own.
	c = syncClient(1, time.Minute)
	defer c.CloseIdleConnections()
	holdCtx, cancelHold := context.WithCancel(context.Background())
	defer cancelHold()
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(holdCtx, http.MethodGet, srv.URL+"/hang?id=4", nil)
		_, err := c.Do(req)
		first <- err
	}()
	<-hanging
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/ok?id=5", nil)
	if _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), "waiting for one of 1 connections") {
		t.Errorf("second request on a busy connection: err = %v", err)
	}
	cancelHold()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: err = %v", err)
	}
	code, body, err = get(c, srv.URL+"/ok?id=6")
	if err != nil || body != "id=6" {
		t.Fatalf("after cancellation: %d %q %v", code, body, err)
	}
}

// Closing a body before its end closes the connection: the unread rest,
// sent only after the close, must not become the next request's answer.
func TestSyncTransportEarlyClose(t *testing.T) {
	rest, done := make(chan struct{}), make(chan struct{})
	srv, cc := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "id="+r.URL.Query().Get("id"))
		w.(http.Flusher).Flush()
		select {
		case <-rest:
		case <-done:
			return
		}
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
	}))
	t.Cleanup(func() { close(done) }) // runs before the server's Close, which waits for handlers
	c := syncClient(1, 5*time.Second)
	defer c.CloseIdleConnections()
	for i := range 3 {
		resp, err := c.Get(fmt.Sprintf("%s/?id=%d", srv.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 4)
		if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != fmt.Sprintf("id=%d", i) {
			t.Fatalf("request %d: %q %v", i, head, err)
		}
		resp.Body.Close()
		if _, err := resp.Body.Read(head); err == nil {
			t.Error("read after Close succeeded")
		}
		rest <- struct{}{}
	}
	if n := cc.accepted.Load(); n != 3 {
		t.Errorf("%d connections for 3 early-closed answers, want 3", n)
	}
}

// Requests that cannot be written as they are fail without reaching the
// server.
func TestSyncTransportRejects(t *testing.T) {
	var reached atomic.Int64
	srv, _ := countedServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	c := syncClient(1, 5*time.Second)
	defer c.CloseIdleConnections()
	if _, err := c.Get(strings.Replace(srv.URL, "http:", "https:", 1)); err == nil {
		t.Error("https accepted")
	}
	for name, h := range map[string]http.Header{
		"bad name":      {"Bad Name": {"x"}},
		"CRLF in value": {"X-A": {"a\r\nX-Injected: b"}},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header = h
		if _, err := c.Do(req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if code, _, err := get(c, srv.URL); err != nil || code != 200 {
		t.Fatalf("valid request: %d %v", code, err)
	}
	if n := reached.Load(); n != 1 {
		t.Errorf("server handled %d requests, want only the valid one", n)
	}
}
