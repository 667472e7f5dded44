package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingFallback records requests that did not take the direct path.
type countingFallback struct {
	tr *http.Transport
	n  atomic.Int32
}

func (c *countingFallback) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.tr.RoundTrip(r)
}

func newTestDirect(t *testing.T) (*directTransport, *countingFallback) {
	t.Helper()
	fb := &countingFallback{tr: DefaultTransport()}
	dt := newDirectTransport(fb.tr)
	dt.fallback = fb
	t.Cleanup(dt.CloseIdleConnections)
	return dt, fb
}

// connCounter counts the TCP connections a test server accepts.
func connCounter(srv *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func get(t *testing.T, rt http.RoundTripper, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return res, string(b)
}

func TestDirectReusesOneConnection(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.Header().Set("Trailer", "X-Sum")
			w.Write([]byte("part1,"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
			w.Header().Set("X-Sum", "2")
			return
		}
		w.Write([]byte("hello " + r.URL.Path))
	}))
	conns := connCounter(srv)
	srv.Start()
	defer srv.Close()
	dt, fb := newTestDirect(t)

	for i := 0; i < 20; i++ {
		if _, body := get(t, dt, "GET", srv.URL+"/a"); body != "hello /a" {
			t.Fatalf("body %q", body)
		}
		res, body := get(t, dt, "GET", srv.URL+"/chunked")
		if body != "part1,part2" || res.Trailer.Get("X-Sum") != "2" {
			t.Fatalf("chunked: %q trailer %q", body, res.Trailer.Get("X-Sum"))
		}
		if res, body := get(t, dt, "HEAD", srv.URL+"/a"); body != "" || res.StatusCode != 200 {
			t.Fatalf("HEAD: %d %q", res.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 60 sequential requests, want 1", n)
	}
	if n := fb.n.Load(); n != 0 {
		t.Fatalf("%d requests took the fallback", n)
	}
}

func TestDirectLeavesBodiesToFallback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer srv.Close()
	dt, fb := newTestDirect(t)
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader("payload"))
	res, err := dt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "payload" || fb.n.Load() != 1 {
		t.Fatalf("body %q, fallback used %d times", b, fb.n.Load())
	}
}

func TestDirectDoesNotReuseClosedOrUnreadConnections(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		w.Write([]byte(strings.Repeat("x", 100)))
	}))
	conns := connCounter(srv)
	srv.Start()
	defer srv.Close()
	dt, _ := newTestDirect(t)

	get(t, dt, "GET", srv.URL+"/close")
	get(t, dt, "GET", srv.URL+"/close")
	if n := conns.Load(); n != 2 {
		t.Fatalf("Connection: close answers: %d connections, want 2", n)
	}
	// A body closed before its end leaves its connection unusable.
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	res, err := dt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	get(t, dt, "GET", srv.URL+"/")
	if n := conns.Load(); n != 4 {
		t.Fatalf("after an unread body: %d connections, want 4", n)
	}
}

// rawUpstream serves each accepted connection with serve(c, n), n
// counting connections from 1, and returns its base URL and a counter of
// accepted connections.
func rawUpstream(t testing.TB, serve func(c net.Conn, n int32)) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := accepted.Add(1)
			go func() {
				defer c.Close()
				serve(c, n)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/", &accepted
}

// An upstream that sends more than one answer for one request must not
// have its extra bytes read as the answer to the next request.
func TestDirectDropsConnectionWithLeftoverBytes(t *testing.T) {
	url, _ := rawUpstream(t, func(c net.Conn, n int32) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if n == 1 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+
					"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmug!")
			} else {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nclean")
			}
		}
	})
	dt, _ := newTestDirect(t)
	if _, body := get(t, dt, "GET", url); body != "ok" {
		t.Fatalf("first answer %q", body)
	}
	if _, body := get(t, dt, "GET", url); body != "clean" {
		t.Fatalf("second answer %q: read from the first connection's leftovers", body)
	}
}

// An idle connection the upstream closed is replaced, not reported: this
// upstream answers one request per connection, keep-alive framing and
// all, and then hangs up.
func TestDirectRetriesStaleIdleConnection(t *testing.T) {
	url, accepted := rawUpstream(t, func(c net.Conn, _ int32) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")
		}
	})
	dt, _ := newTestDirect(t)
	for i := 0; i < 5; i++ {
		if _, body := get(t, dt, "GET", url); body != "fine" {
			t.Fatalf("request %d: %q", i, body)
		}
	}
	if n := accepted.Load(); n != 5 {
		t.Fatalf("%d connections for 5 requests, want 5", n)
	}
}

func TestDirectInterimAnswersAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Write([]byte("final"))
	}))
	defer srv.Close()
	defer close(release)
	dt, _ := newTestDirect(t)
	res, body := get(t, dt, "GET", srv.URL+"/")
	if res.StatusCode != 200 || body != "final" {
		t.Fatalf("after 103: %d %q", res.StatusCode, body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := dt.RoundTrip(req)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled round trip: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled round trip did not return")
	}
}

// A body-less POST that was sent on a connection the upstream then closed
// may have been acted on: it is reported, not sent a second time. An
// Idempotency-Key makes it safe to repeat.
func TestDirectDoesNotResendNonIdempotent(t *testing.T) {
	url, accepted := rawUpstream(t, func(c net.Conn, _ int32) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")
		}
	})
	dt, _ := newTestDirect(t)
	post := func(key string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", url, nil)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		res, err := dt.RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return res, err
	}
	if _, err := post(""); err != nil {
		t.Fatal(err)
	}
	if _, err := post(""); err == nil {
		t.Fatal("a POST on a closed connection was sent again")
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1: the POST went out twice", n)
	}
	if _, err := post(""); err != nil { // a new connection
		t.Fatal(err)
	}
	if _, err := post("k1"); err != nil {
		t.Fatalf("POST with Idempotency-Key on a closed connection: %v", err)
	}
}
