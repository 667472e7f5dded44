package fusio_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/fusio"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
)

const testRealm = `{
  "realm": "fz", "enabled": true, "registrationAllowed": true,
  "passwordPolicy": "length(8) and digits(1)",
  "roles": {"realm": [{"name": "Consumer", "attributes": {"scopes": ["todo"]}}]},
  "defaultRoles": ["Consumer"],
  "users": [{"username": "dev", "enabled": true, "email": "dev@example.com",
             "credentials": [{"type": "password", "value": "dev-Passw0rd"}]}]
}`

// newHandler is the whole server's handler (the door behind the real
// routes) with the fz realm as its default realm.
func newHandler(tb testing.TB) http.Handler {
	tb.Helper()
	return newHandlerWith(tb, server.Config{})
}

// newHandlerWith is newHandler with cfg's rate limit settings.
func newHandlerWith(tb testing.TB, cfg server.Config) http.Handler {
	tb.Helper()
	dir := tb.TempDir()
	file := filepath.Join(dir, "fz.json")
	if err := os.WriteFile(file, []byte(testRealm), 0o600); err != nil {
		tb.Fatal(err)
	}
	srv, err := server.Open(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DataDir: dir, ImportRealms: []string{file}, DefaultRealm: "fz",
		Passwords: password.Params{Memory: 64, Iterations: 1, Parallelism: 1, KeyLen: 32, SaltLen: 16},
		Logger:    slog.New(slog.DiscardHandler),
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return srv.Handler()
}

func call(h http.Handler, method, path, ctype, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestParseLogin(t *testing.T) {
	for _, tc := range []struct {
		body, user, pw string
		ok             bool
	}{
		{`{"username": "a", "password": "b"}`, "a", "b", true},
		// Fusio's documentation has a trailing comma; scripts copy it.
		{"{\n\"username\": \"a\",\n\"password\": \"b\",\n}", "a", "b", true},
		// Commas inside strings are data.
		{`{"username": "a,}", "password": "b\",]"}`, "a,}", `b",]`, true},
		{`{"username": 1}`, "", "", false},
		{`[`, "", "", false},
		{``, "", "", false},
	} {
		u, p, err := fusio.ParseLogin([]byte(tc.body))
		if (err == nil) != tc.ok || u != tc.user || p != tc.pw {
			t.Errorf("ParseLogin(%q) = %q, %q, %v", tc.body, u, p, err)
		}
	}
}

func TestParseRegistration(t *testing.T) {
	r, err := fusio.ParseRegistration("fz", []byte(`{"name":"Newbie","email":"n@example.com","password":"pw","captcha":"x",}`))
	if err != nil || r.Realm != "fz" || r.Username != "Newbie" || r.Email != "n@example.com" || r.Password != "pw" {
		t.Fatalf("ParseRegistration = %+v, %v", r, err)
	}
	if _, err := fusio.ParseRegistration("fz", []byte(`{"name": ["x"]}`)); err == nil {
		t.Fatal("wrong type accepted")
	}
}

func TestDoorAnswers(t *testing.T) {
	h := newHandler(t)
	w := call(h, "POST", "/consumer/login", "application/json", `{"username":"dev","password":"dev-Passw0rd"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"token"`) {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	w = call(h, "POST", "/consumer/login", "application/json", `{"username":"dev","password":"x"}`)
	if w.Code != 400 || w.Body.String() != `{"success":false,"message":"Invalid name or password"}`+"\n" {
		t.Fatalf("bad login: %d %q", w.Code, w.Body)
	}
	// Token endpoint errors are OAuth JSON.
	w = call(h, "POST", "/authorization/token", "application/x-www-form-urlencoded", "grant_type=client_credentials")
	if w.Code != 401 || !strings.Contains(w.Body.String(), `"error":"invalid_client"`) {
		t.Fatalf("no credentials: %d %s", w.Code, w.Body)
	}
	w = call(h, "POST", "/authorization/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&scope=none",
		"Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("dev:dev-Passw0rd")))
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"error":"invalid_scope"`) {
		t.Fatalf("invalid scope: %d %s", w.Code, w.Body)
	}
	w = call(h, "POST", "/authorization/token", "application/x-www-form-urlencoded", "grant_type=client_credentials",
		"Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("dev:dev-Passw0rd")))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"token_type":"bearer"`) || !strings.Contains(w.Body.String(), `"scope":"todo"`) {
		t.Fatalf("user credentials: %d %s", w.Code, w.Body)
	}
	w = call(h, "POST", "/consumer/login", "application/json", strings.Repeat(" ", 70<<10)+"{}")
	if w.Code != 400 {
		t.Fatalf("oversized body: %d", w.Code)
	}
	w = call(h, "GET", "/consumer/activate?token=%22%3E%3Cscript%3E", "", "")
	if w.Code != 200 || strings.Contains(w.Body.String(), "<script>") {
		t.Fatalf("activation page does not escape: %s", w.Body)
	}
}

// TestRateLimit checks that --rate-limit covers Fusio's credential checks,
// not only the OIDC token endpoints: each path answers 429 in its own
// error shape once the address's bucket is empty.
func TestRateLimit(t *testing.T) {
	h := newHandlerWith(t, server.Config{RateLimit: 0.001, RateBurst: 2})
	form := "application/x-www-form-urlencoded"
	if w := call(h, "POST", "/consumer/login", "application/json", `{"username":"dev","password":"x"}`); w.Code != 400 {
		t.Fatalf("first login: %d %s", w.Code, w.Body)
	}
	if w := call(h, "POST", "/authorization/token", form, "grant_type=client_credentials"); w.Code != 401 {
		t.Fatalf("first token request: %d %s", w.Code, w.Body)
	}
	w := call(h, "POST", "/authorization/token", form, "grant_type=client_credentials",
		"Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("dev:dev-Passw0rd")))
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"error":"too_many_requests"`) {
		t.Fatalf("token over the limit: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	w = call(h, "POST", "/consumer/login", "application/json", `{"username":"dev","password":"dev-Passw0rd"}`)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || w.Body.String() != `{"success":false,"message":"Too many requests"}`+"\n" {
		t.Fatalf("login over the limit: %d %q", w.Code, w.Body)
	}
	for _, p := range []string{"/consumer/register", "/consumer/activate"} {
		if w := call(h, "POST", p, "application/json", `{}`); w.Code != 429 {
			t.Fatalf("%s over the limit: %d %s", p, w.Code, w.Body)
		}
	}
}

// FuzzConsumerLogin sends arbitrary bodies to the consumer endpoints that
// parse JSON and to the token endpoint: none may answer 5xx, and every
// answer is JSON.
func FuzzConsumerLogin(f *testing.F) {
	for _, s := range []string{
		`{"username":"dev","password":"dev-Passw0rd"}`,
		"{\n\"username\": \"dev\",\n\"password\": \"x\",\n}",
		`{"username":"","password":""}`,
		`{"username":"dev@example.com","password":"dev-Passw0rd"}`,
		`{"name":"newbie","email":"newbie@example.com","password":"n3wbie-Secret"}`,
		`{"name":"a","email":"b","password":"c",,}`,
		`{"token":"x.y"}`,
		`{"refresh_token":"a.b.c"}`,
		`[1,2,]`, `null`, `"str"`, `{"username":{"a":1}}`, "\x00\xff", ``,
		`grant_type=client_credentials&scope=todo`,
		`grant_type=refresh_token&refresh_token=e30.e30.e30`,
	} {
		f.Add(s, uint8(0))
	}
	h := newHandler(f)
	type target struct{ method, path, ctype string }
	targets := []target{
		{"POST", "/consumer/login", "application/json"},
		{"PUT", "/consumer/login", "application/json"},
		{"POST", "/consumer/register", "application/json"},
		{"POST", "/consumer/activate", "application/json"},
		{"POST", "/consumer/activate", "application/x-www-form-urlencoded"},
		{"POST", "/authorization/token", "application/x-www-form-urlencoded"},
	}
	basicDev := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("dev:dev-Passw0rd"))
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		tg := targets[int(which)%len(targets)]
		var hdr []string
		if which&0x80 != 0 {
			hdr = append(hdr, basicDev)
		}
		w := call(h, tg.method, tg.path, tg.ctype, body, hdr...)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", tg.method, tg.path, body, w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: content type %q", tg.method, tg.path, ct)
		}
		if _, err := io.ReadAll(w.Body); err != nil {
			t.Fatal(err)
		}
	})
}
