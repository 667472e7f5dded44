package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/store"
)

// recorder is a raw upstream: it records each request head it reads and
// answers with the current script, closing the connection after it when
// the script says so.
type recorder struct {
	mu     sync.Mutex
	heads  []string
	answer string
	close  bool
}

func (rc *recorder) serve(c net.Conn, _ int32) {
	br := bufio.NewReader(c)
	for {
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		rc.mu.Lock()
		rc.heads = append(rc.heads, head.String())
		answer, closeAfter := rc.answer, rc.close
		rc.mu.Unlock()
		if _, err := io.WriteString(c, answer); err != nil || closeAfter {
			return
		}
	}
}

func (rc *recorder) set(answer string, closeAfter bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer, rc.close, rc.heads = answer, closeAfter, nil
}

func (rc *recorder) last(t *testing.T) string {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.heads) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(rc.heads))
	}
	return rc.heads[0]
}

// parsedHead is a request head as comparable parts: the request line and,
// per lower-cased name, the values in the order they came.
type parsedHead struct {
	line   string
	fields map[string][]string
}

func parseHead(t *testing.T, head string) parsedHead {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	p := parsedHead{line: lines[0], fields: map[string][]string{}}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("malformed header line %q in\n%s", l, head)
		}
		k = strings.ToLower(k)
		p.fields[k] = append(p.fields[k], strings.TrimSpace(v))
	}
	return p
}

// rawDo sends one raw request to addr and returns the answer, its body
// read, and the trailers.
func rawDo(t *testing.T, addr, method, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%q: reading the body: %v", req, err)
	}
	res.Header.Del("Date")
	return res, string(body)
}

// TestFastPathMatchesReverseProxy sends the same requests through the fast
// path and through httputil.ReverseProxy with the gateway's rewrite, and
// requires the upstream to see the same request and the client the same
// answer.
func TestFastPathMatchesReverseProxy(t *testing.T) {
	rec := &recorder{}
	up, _ := rawUpstream(t, rec.serve)
	up = strings.TrimSuffix(up, "/")
	realm := testRealm(up, up, up, up, up)
	auth := &fakeAuth{realms: map[string]store.Realm{"test": realm}, tokens: map[string]*core.Principal{
		"tok-sumo": {Realm: "test", Subject: "u-sumo", Username: "sumo", ClientID: "cape-client", SessionID: "s-1",
			TokenType: "Bearer", RealmRoles: []string{"consumer", "offline_access"},
			Memberships: []store.Membership{{OrgID: "o-1", ID: "MU0"}, {OrgID: "o-2", ID: "MU1"}}},
		"tok-writer": {Realm: "test", Subject: "u-w", TokenType: "Bearer", RealmRoles: []string{"writer"}},
		"tok-none":   {Realm: "test", Subject: "u-none\x01", ClientID: "svc", TokenType: "Bearer"},
	}}
	realmFor := func(*http.Request) string { return "test" }
	fast := New(auth, Options{RealmFor: realmFor})
	slow := New(auth, Options{RealmFor: realmFor})
	slow.direct = nil // the same transport, reached through ReverseProxy
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()

	requests := []struct{ method, head string }{
		{"GET", "GET /risks?b=2&a=1 HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer tok-sumo\r\nUserID: MU1\r\n" +
			"X-Gatehouse-Subject: spoofed\r\nX_Gatehouse_Roles: admin\r\nx-gatehouse-organization: o-9\r\n" +
			"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.1\r\nForwarded: for=1.2.3.4\r\nX-Forwarded-Host: evil\r\n" +
			"X-Forwarded-Proto: https\r\nX-Real-IP: 1.2.3.4\r\nConnection: keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\n" +
			"Proxy-Connection: keep-alive\r\nKeep-Alive: 300\r\nTe: trailers, deflate\r\nProxy-Authorization: Basic eA==\r\n" +
			"User-Agent: first\r\nUser-Agent: second\r\nAccept: */*\r\nAccept: text/plain\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n"},
		{"GET", "GET /files/a/b?q=1;x=2&ok=%zz HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer tok-none\r\n\r\n"},
		{"GET", "GET /files/x%20y/../z/?ok=1 HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer tok-none\r\nUser-Agent:\r\n\r\n"},
		{"GET", "GET /risks? HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer tok-sumo\r\nUserID: MU0\r\n\r\n"},
		{"POST", "POST /risks HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer tok-writer\r\nContent-Length: 0\r\n\r\n"},
		{"HEAD", "HEAD /public/x HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n"},
		{"GET", "GET /fwd HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer tok-none\r\n\r\n"},
		{"GET", "GET /fwd HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer tok-none\r\nConnection: Authorization\r\n\r\n"},
		{"GET", "GET http://api.example.test/public/abs HTTP/1.1\r\nHost: other.example.test\r\n\r\n"},
	}
	// racy: a stream without Content-Type. ReverseProxy flushes its head
	// from a timer that races the first write, so it may or may not carry
	// a sniffed Content-Type; the fast path flushes first and never does.
	answers := []struct {
		raw         string
		close, racy bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: 1\r\nX-Hop: 1\r\nConnection: X-Hop, keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Type: text/plain\r\n\r\nok", false, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nContent-Type: text/plain\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 42\r\nX-Late: unannounced\r\n\r\n", false, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 7\r\n\r\n", false, true},
		{"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n", false, false},
		{"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 15\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n{\"error\":\"no\"}\n", false, false},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye", true, false},
		{"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: until close\n\n", true, false},
	}
	for i, rq := range requests {
		for j, a := range answers {
			name := fmt.Sprintf("request %d, answer %d", i, j)
			rec.set(a.raw, a.close)
			fres, fbody := rawDo(t, fastSrv.Listener.Addr().String(), rq.method, rq.head)
			fhead := parseHead(t, rec.last(t))
			rec.set(a.raw, a.close)
			sres, sbody := rawDo(t, slowSrv.Listener.Addr().String(), rq.method, rq.head)
			shead := parseHead(t, rec.last(t))

			if fhead.line != shead.line {
				t.Errorf("%s: upstream request line %q, ReverseProxy sends %q", name, fhead.line, shead.line)
			}
			for k := range fhead.fields {
				if _, ok := shead.fields[k]; !ok {
					t.Errorf("%s: upstream got %s: %q, which ReverseProxy does not send", name, k, fhead.fields[k])
				}
			}
			for k, sv := range shead.fields {
				if fv := fhead.fields[k]; !slices.Equal(fv, sv) {
					t.Errorf("%s: upstream got %s: %q, ReverseProxy sends %q", name, k, fv, sv)
				}
			}
			if fres.StatusCode != sres.StatusCode || fbody != sbody {
				t.Errorf("%s: client got %d %q, through ReverseProxy %d %q", name, fres.StatusCode, fbody, sres.StatusCode, sbody)
			}
			if a.racy {
				if ct := fres.Header.Get("Content-Type"); ct != "" {
					t.Errorf("%s: a stream got a sniffed Content-Type %q", name, ct)
				}
				sres.Header.Del("Content-Type")
			}
			if !headersEqual(fres.Header, sres.Header) {
				t.Errorf("%s: client got header %v, through ReverseProxy %v", name, fres.Header, sres.Header)
			}
			if !headersEqual(fres.Trailer, sres.Trailer) {
				t.Errorf("%s: client got trailer %v, through ReverseProxy %v", name, fres.Trailer, sres.Trailer)
			}
			if fres.ContentLength != sres.ContentLength || fres.Close != sres.Close {
				t.Errorf("%s: client framing length %d close %v, through ReverseProxy %d %v", name,
					fres.ContentLength, fres.Close, sres.ContentLength, sres.Close)
			}
		}
	}
	// The identity the upstream was told, and nothing the client claimed.
	rec.set(answers[0].raw, false)
	rawDo(t, fastSrv.Listener.Addr().String(), "GET", requests[0].head)
	h := parseHead(t, rec.last(t))
	want := map[string][]string{
		"x-gatehouse-subject": {"u-sumo"}, "x-gatehouse-roles": {"consumer,offline_access"},
		"x-gatehouse-organization": {"o-2"}, "x-gatehouse-membership": {"MU1"},
		"x-forwarded-for": {"203.0.113.9, 198.51.100.1, 127.0.0.1"}, "x-forwarded-host": {"api.example.test"},
		"x-forwarded-proto": {"http"}, "user-agent": {"first"}, "authorization": nil, "x-drop-me": nil,
		"x-real-ip": nil, "forwarded": nil, "te": {"trailers"}, "proxy-authorization": nil, "x_gatehouse_roles": nil,
	}
	for k, v := range want {
		if !slices.Equal(h.fields[k], v) {
			t.Errorf("upstream got %s: %q, want %q", k, h.fields[k], v)
		}
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if k == "Trailer" { // the announced names, in map order
			x, y := strings.Split(strings.Join(v, ", "), ", "), strings.Split(strings.Join(b[k], ", "), ", ")
			slices.Sort(x)
			slices.Sort(y)
			if !slices.Equal(x, y) {
				return false
			}
			continue
		}
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestFastPathTimeoutAndClientGone: the operation's timeout bounds the
// wait for the answer's head only, and a client that leaves frees the
// upstream connection.
func TestFastPathTimeoutAndClientGone(t *testing.T) {
	hold := make(chan struct{})
	var mu sync.Mutex
	closed := 0
	up, _ := rawUpstream(t, func(c net.Conn, n int32) {
		br := bufio.NewReader(c)
		line, _ := br.ReadString('\n')
		for l := line; l != "\r\n" && l != ""; {
			l, _ = br.ReadString('\n')
		}
		switch {
		case strings.Contains(line, "/slow"):
			<-hold // never answers
		case strings.Contains(line, "/headonly"):
			// A stream whose first piece is long in coming.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
			<-hold
		case strings.Contains(line, "/stream"):
			// Answers at once, then sends its body slowly.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := br.ReadByte() // returns when the gateway closes
			if err != io.EOF {
				return
			}
			mu.Lock()
			closed++
			mu.Unlock()
		}
	})
	up = strings.TrimSuffix(up, "/")
	realm := testRealm(up, up, up, up, up)
	auth := &fakeAuth{realms: map[string]store.Realm{"test": realm}, tokens: map[string]*core.Principal{
		"tok": {Realm: "test", Subject: "u", TokenType: "Bearer"},
	}}
	g := New(auth, Options{RealmFor: func(*http.Request) string { return "test" }})
	srv := httptest.NewServer(g)
	defer srv.Close()
	defer close(hold) // before srv.Close, which waits for the gateway's handlers

	start := time.Now()
	res, body := rawDo(t, srv.Listener.Addr().String(), "GET", "GET /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n")
	if res.StatusCode != 504 || !strings.Contains(body, "gateway_timeout") {
		t.Fatalf("slow upstream: %d %s", res.StatusCode, body)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Fatalf("timeout after %v, want about 1s", d)
	}

	// A stream's head reaches the client before any of its body.
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /files/headonly HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if res, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("the head of a stream did not arrive before its body: %v", err)
	}
	c.Close()

	// The stream outlives the 30 s default timeout's clock only in a long
	// test; here it checks that the answer streams and that the client's
	// leaving closes the upstream connection.
	c, err = net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("first piece %q, %v", first, err)
	}
	c.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		mu.Lock()
		n := closed
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upstream connection stayed open after the client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FuzzFastPathHead: whatever the client's headers, query and token claims
// hold, the fast path writes exactly one well-formed request head, with
// no identity header the gateway did not set.
func FuzzFastPathHead(f *testing.F) {
	f.Add("X-Test", "value", "a=1;b=2", "sumo", "MU1")
	f.Add("X-Gatehouse-Subject", "evil\r\nX-Gatehouse-Roles: admin", "%zz", "a\r\nb", "\n")
	f.Add("Connection", "X-Gatehouse-Subject, Host", "", "", "")
	f.Fuzz(func(t *testing.T, name, value, query, username, membership string) {
		if !token(name) {
			return // net/http's server refuses the request
		}
		g := New(&fakeAuth{}, Options{})
		target, _ := url.Parse("http://upstream.test/base")
		rt := &route{op: store.Operation{}, target: target, timeout: 1}
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.RawQuery = query
		r.Header[name] = []string{value}
		id := &identity{p: &core.Principal{Subject: "u", Username: username, RealmRoles: []string{"a\rb"}},
			sel: &selection{m: store.Membership{OrgID: "o", ID: membership}}}
		var buf strings.Builder
		bw := bufio.NewWriter(&buf)
		uri, ok := g.upstreamURI(r, rt, "/x")
		if !ok {
			if !strings.ContainsFunc(query, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
				t.Fatalf("query %q refused", query)
			}
			return
		}
		g.writeHead(bw, r, rt, uri, id)
		bw.Flush()
		br := bufio.NewReader(strings.NewReader(buf.String()))
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("head does not parse: %v\n%q", err, buf.String())
		}
		if br.Buffered() != 0 {
			t.Fatalf("bytes after the head: %q", buf.String())
		}
		if got := req.Header.Get("X-Gatehouse-Subject"); got != "u" {
			t.Fatalf("subject %q in\n%q", got, buf.String())
		}
		for k := range req.Header {
			if hasPrefixFold(k, "X-Gatehouse-") && k != "X-Gatehouse-Subject" && k != "X-Gatehouse-Username" &&
				k != "X-Gatehouse-Roles" && k != "X-Gatehouse-Organization" && k != "X-Gatehouse-Membership" {
				t.Fatalf("unexpected identity header %s in\n%q", k, buf.String())
			}
		}
	})
}

// token reports whether s is an RFC 9110 token, which a header name is.
func token(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
