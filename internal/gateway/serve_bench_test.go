package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/rawconn"
	"github.com/gatehouse/gatehouse/internal/store"
)

// BenchmarkGatewayServer measures the gateway as a server process sees
// it: a real http.Server on loopback in front of the fast path, a raw
// upstream and a raw client that allocate next to nothing themselves, so
// that -benchmem and -memprofile show what the gateway allocates per
// request (net/http's server included).
func BenchmarkGatewayServer(b *testing.B) {
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	up, _ := rawUpstream(b, func(c net.Conn, _ int32) {
		br := bufio.NewReader(c)
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
			}
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	})
	up = strings.TrimSuffix(up, "/")
	realm := testRealm(up, up, up, up, up)
	auth := &fakeAuth{realms: map[string]store.Realm{"test": realm}, tokens: map[string]*core.Principal{
		"tok": {Realm: "test", Subject: "u", Username: "user", ClientID: "c", SessionID: "s", TokenType: "Bearer",
			RealmRoles: []string{"consumer"}, Memberships: []store.Membership{{OrgID: "o-1", ID: "MU1"}}},
	}}
	g := New(auth, Options{RealmFor: func(*http.Request) string { return "test" }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(rawconn.Listener{Listener: ln}) }() // as internal/server serves
	defer srv.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /risks/42 HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer tok\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	read := func() {
		// The gateway's answer: a head, then 5 bytes of body.
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) == 2 {
				break
			}
			if bytes.HasPrefix(line, []byte("HTTP/1.1 ")) && !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
				b.Fatalf("answer %q", line)
			}
		}
		if _, err := br.Discard(5); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		read()
	}
}
