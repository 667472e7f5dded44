package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
)

// serve starts a whole server with the demo realm on a loopback port and
// returns its base URL.
func serve(t *testing.T, cfg Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	cfg.DataDir = t.TempDir()
	cfg.Demo = true
	cfg.Passwords = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, KeyLen: 32, SaltLen: 16}
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return "http://" + cfg.Addr
}

type answer struct {
	status int
	retry  string
	ctype  string
	body   string
}

func do(t *testing.T, method, url, ctype, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), string(b)}
}

// TestRateLimitOneBudget: the portal's sign-in form and Sync Gateway's
// _oidc_refresh draw on the same per-address bucket as the OIDC and Fusio
// credential endpoints, and each refuses in its own format once it is
// empty. Endpoints that check no credential are not limited.
func TestRateLimitOneBudget(t *testing.T) {
	base := serve(t, Config{RateLimit: 0.001, RateBurst: 3, RateLimitLoopback: true})
	form := "application/x-www-form-urlencoded"
	token := base + "/realms/demo/protocol/openid-connect/token"

	// Three attempts, one at each door, spend the bucket.
	if a := do(t, "POST", token, form, "grant_type=password&client_id=demo-app&username=demo&password=wrong"); a.status == 429 {
		t.Fatalf("first token request refused: %+v", a)
	}
	if a := do(t, "POST", base+"/portal/login", form, "username=demo&password=wrong"); a.status == 429 || a.status >= 500 {
		t.Fatalf("first portal sign-in: %+v", a)
	}
	if a := do(t, "GET", base+"/demo/_oidc_refresh?refresh_token=garbage", "", ""); a.status == 429 || a.status >= 500 {
		t.Fatalf("first refresh: %+v", a)
	}

	a := do(t, "POST", base+"/portal/login", form, "username=demo&password=wrong")
	if a.status != 429 || a.retry == "" || !strings.HasPrefix(a.ctype, "text/html") || !strings.Contains(a.body, "Too many sign-in attempts") {
		t.Fatalf("portal sign-in over the limit: %+v", a)
	}
	a = do(t, "GET", base+"/demo/_oidc_refresh?refresh_token=garbage", "", "")
	if a.status != 429 || a.retry == "" || a.body != `{"error":"Too Many Requests","reason":"Too many requests"}` {
		t.Fatalf("refresh over the limit: %+v", a)
	}
	a = do(t, "POST", token, form, "grant_type=password&client_id=demo-app&username=demo&password=wrong")
	if a.status != 429 || a.retry == "" || !strings.Contains(a.body, `"error":"too_many_requests"`) {
		t.Fatalf("token over the limit: %+v", a)
	}
	a = do(t, "POST", base+"/consumer/login", "application/json", `{"username":"demo","password":"wrong"}`)
	if a.status != 429 || a.retry == "" {
		t.Fatalf("Fusio login over the limit: %+v", a)
	}

	for _, p := range []string{"/realms/demo/.well-known/openid-configuration", "/portal/", "/health/live"} {
		if a := do(t, "GET", base+p, "", ""); a.status != 200 {
			t.Errorf("%s limited: %+v", p, a)
		}
	}
}

// TestSlowBodyIsCutOff: a client that sends headers and then trickles (here:
// stalls) the body of a credential request gets a 4xx or a closed
// connection once the body read deadline passes, never a 500 and never a
// connection held open.
func TestSlowBodyIsCutOff(t *testing.T) {
	base := serve(t, Config{BodyReadTimeout: 200 * time.Millisecond})
	addr := strings.TrimPrefix(base, "http://")
	oc := "/realms/demo/protocol/openid-connect/"
	form := "application/x-www-form-urlencoded"
	for _, c := range []struct{ method, path, ctype string }{
		{"POST", oc + "token", form},
		{"POST", oc + "token/introspect", form},
		{"POST", oc + "revoke", form},
		{"POST", oc + "logout", form},
		{"POST", oc + "userinfo", form},
		{"POST", "/consumer/login", "application/json"},
		{"POST", "/consumer/register", "application/json"},
		{"POST", "/authorization/token", form},
		{"POST", "/portal/login", form},
		{"POST", "/realms/demo/portal/login", form},
		{"GET", "/demo/_oidc_refresh?refresh_token=x", form},
	} {
		t.Run(strings.ReplaceAll(c.path, "/", "_"), func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// A net for a server that never answers: the test fails
			// rather than hangs. It is not what is being measured.
			_ = conn.SetDeadline(time.Now().Add(time.Minute))
			_, err = io.WriteString(conn, c.method+" "+c.path+" HTTP/1.1\r\nHost: "+addr+
				"\r\nContent-Type: "+c.ctype+"\r\nContent-Length: 1000\r\n\r\ngrant_type=pass")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the server is still waiting for the body")
				}
				return // closed without an answer: fine
			}
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// The connection is not kept for another request.
			if _, err := conn.Read(make([]byte, 1)); err == nil {
				t.Fatal("connection still open")
			} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection held open after the answer")
			}
		})
	}
}

// TestBodyDeadlineLiftedAfterRead: once a handler has read the whole body,
// the deadline must not fire while it still works: the server's watch for
// a vanished client would fail and cancel the request's context.
// bodyDeadline relies on net/http lifting it when that watch starts.
func TestBodyDeadlineLiftedAfterRead(t *testing.T) {
	ts := httptest.NewServer(bodyDeadline(20*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		// Outlast the deadline, as a queued password hash might.
		time.Sleep(200 * time.Millisecond)
		if err := r.Context().Err(); err != nil {
			http.Error(w, "context: "+err.Error(), 500)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})))
	defer ts.Close()
	resp, err := http.Post(ts.URL, "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// TestGatewayBodyStreams: the gateway's requests are exempt from the
// deadline: a body that arrives in pieces, slower than the deadline, still
// reaches it whole.
func TestGatewayBodyStreams(t *testing.T) {
	ts := httptest.NewServer(bodyDeadline(20*time.Millisecond, streamingBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		_, _ = w.Write(b)
	}))))
	defer ts.Close()
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "first ")
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(pw, "second")
		pw.Close()
	}()
	resp, err := http.Post(ts.URL, "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "first second" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

// TestHeaderLimit: a header block past maxHeaderBytes is refused.
func TestHeaderLimit(t *testing.T) {
	base := serve(t, Config{})
	req, _ := http.NewRequest("GET", base+"/health/live", nil)
	req.Header.Set("X-Big", strings.Repeat("a", maxHeaderBytes+8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
