package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

// fusioUpstream is the API behind the gateway: it echoes what reached it.
type fusioUpstream struct {
	mu   sync.Mutex
	last struct {
		path, subject, scopes, auth string
		body                        []byte
	}
}

func (u *fusioUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.last.path = r.URL.Path
	u.last.subject = r.Header.Get("X-Gatehouse-Subject")
	u.last.scopes = r.Header.Get("X-Gatehouse-Scopes")
	u.last.auth = r.Header.Get("Authorization")
	u.last.body = b
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// startFusio starts gatehouse with the issue5-fusio realm as the default
// realm, its gateway pointing at a fresh upstream.
func startFusio(t *testing.T, mutate func(m map[string]any), cfg ...func(*server.Config)) (*testServer, *fusioUpstream) {
	t.Helper()
	up := &fusioUpstream{}
	us := httptest.NewServer(up)
	t.Cleanup(us.Close)
	file := realmVariant(t, "issue5-fusio.json", func(m map[string]any) {
		gw := m["gatehouse"].(map[string]any)["gateway"].(map[string]any)
		for _, op := range gw["operations"].([]any) {
			op.(map[string]any)["upstream"] = us.URL
		}
		if mutate != nil {
			mutate(m)
		}
	})
	opts := append([]func(*server.Config){func(c *server.Config) { c.DefaultRealm = "fusio" }}, cfg...)
	return startServer(t, []string{file}, opts...), up
}

// fusioDo sends a request with a raw body and "K: V" headers.
func fusioDo(t *testing.T, method, u, body string, headers ...string) *response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return do(t, req)
}

func basic(id, secret string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func bearer(tok string) string { return "Authorization: Bearer " + tok }

// consumerLogin runs seed 003's login exactly as written (trailing comma
// included) and returns the token.
func consumerLogin(t *testing.T, ts *testServer, user, pw string) *response {
	t.Helper()
	body := "{\n\"username\": \"" + user + "\",\n\"password\": \"" + pw + "\",\n}"
	return fusioDo(t, "POST", ts.URL+"/consumer/login", body)
}

func wantStatus(t *testing.T, r *response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
}

// wantFusioError checks Fusio's error shape.
func wantFusioError(t *testing.T, r *response, status int, msgPart string) {
	t.Helper()
	wantStatus(t, r, status)
	if r.JSON["success"] != false || !strings.Contains(r.str("message"), msgPart) {
		t.Fatalf("body %s: want success false and a message containing %q", r.Body, msgPart)
	}
}

func createApp(t *testing.T, ts *testServer, token, name string, scopes ...string) *response {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "scopes": scopes})
	return fusioDo(t, "POST", ts.URL+"/consumer/app", string(b), bearer(token))
}

func TestFusioSeed003(t *testing.T) {
	ts, up := startFusio(t, nil)

	// Basic: personal credentials.
	lr := consumerLogin(t, ts, "dev", "dev-Passw0rd")
	wantStatus(t, lr, 200)
	for _, k := range []string{"token", "refresh_token", "scope"} {
		if lr.str(k) == "" {
			t.Fatalf("login answer lacks %s: %s", k, lr.Body)
		}
	}
	if n, _ := lr.JSON["expires_in"].(float64); n != 3600 {
		t.Fatalf("expires_in = %v, want 3600", lr.JSON["expires_in"])
	}
	if lr.str("scope") != "backend,consumer,todo" {
		t.Fatalf("scope = %q", lr.str("scope"))
	}
	devToken := lr.str("token")
	devSub := claims(t, devToken)["sub"].(string)

	// Wrong password and unknown user: one answer.
	bad := consumerLogin(t, ts, "dev", "wrong-Passw0rd")
	unknown := consumerLogin(t, ts, "nobody", "wrong-Passw0rd")
	wantFusioError(t, bad, 400, "Invalid name or password")
	if !bytes.Equal(bad.Body, unknown.Body) || unknown.Status != bad.Status {
		t.Fatalf("unknown user %d %s differs from wrong password %d %s", unknown.Status, unknown.Body, bad.Status, bad.Body)
	}
	wantFusioError(t, fusioDo(t, "POST", ts.URL+"/consumer/login", `{"username": 5`), 400, "Invalid JSON")

	// Fusio's consumer refresh.
	rl := fusioDo(t, "PUT", ts.URL+"/consumer/login", `{"refresh_token": "`+lr.str("refresh_token")+`"}`)
	wantStatus(t, rl, 200)
	if rl.str("token") == "" || rl.str("token") == devToken {
		t.Fatalf("refreshed login: %s", rl.Body)
	}

	// An app, with the key and secret shown once.
	ar := createApp(t, ts, devToken, "My script", "todo")
	wantStatus(t, ar, 201)
	key, secret := ar.str("appKey"), ar.str("appSecret")
	if key == "" || len(secret) < 40 || ar.JSON["success"] != true {
		t.Fatalf("app creation: %s", ar.Body)
	}

	// Client credentials with Basic key:secret, exactly as the seed.
	tr := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"client_credentials"}}, basic(key, secret))
	wantStatus(t, tr, 200)
	if tr.str("token_type") != "bearer" || tr.str("access_token") == "" || tr.str("refresh_token") == "" {
		t.Fatalf("token answer: %s", tr.Body)
	}
	if n, _ := tr.JSON["expires_in"].(float64); n != 3600 {
		t.Fatalf("expires_in = %v", tr.JSON["expires_in"])
	}
	if tr.str("scope") != "todo" {
		t.Fatalf("app token scope %q, want the app's todo", tr.str("scope"))
	}
	appTok := tr.str("access_token")
	ac := claims(t, appTok)
	if ac["sub"] != devSub || ac["azp"] != key {
		t.Fatalf("app token sub %v azp %v; want the owner %s and the app %s", ac["sub"], ac["azp"], devSub, key)
	}
	if _, ok := ac["realm_access"]; ok {
		t.Fatal("app token carries roles: the gateway would widen its scopes")
	}

	// Refresh with the same Basic header.
	rr := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}}, basic(key, secret))
	wantStatus(t, rr, 200)
	if rr.str("access_token") == "" || rr.str("access_token") == appTok || rr.str("token_type") != "bearer" {
		t.Fatalf("refresh answer: %s", rr.Body)
	}
	// Another app's or a user's credentials cannot use that refresh token.
	rx := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rr.str("refresh_token")}}, basic("dev", "dev-Passw0rd"))
	wantStatus(t, rx, 400)
	if rx.str("error") != "invalid_grant" {
		t.Fatalf("cross refresh: %s", rx.Body)
	}

	// Basic with username:password.
	ur := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"client_credentials"}}, basic("dev", "dev-Passw0rd"))
	wantStatus(t, ur, 200)
	if ur.str("scope") != "backend,consumer,todo" || claims(t, ur.str("access_token"))["sub"] != devSub {
		t.Fatalf("user credentials token: %s", ur.Body)
	}
	userTok := ur.str("access_token")
	wrong := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"client_credentials"}}, basic("dev", "nope"))
	wantStatus(t, wrong, 401)
	if wrong.str("error") != "invalid_client" || wrong.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong password: %s", wrong.Body)
	}
	wrongApp := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"client_credentials"}}, basic(key, "nope"))
	if wrongApp.Status != 401 || !bytes.Equal(wrongApp.Body, wrong.Body) {
		t.Fatalf("wrong app secret %d %s differs from wrong user password %s", wrongApp.Status, wrongApp.Body, wrong.Body)
	}

	// Invoke the protected endpoint through the gateway.
	pr := fusioDo(t, "POST", ts.URL+"/protected_endpoint", "{\n\"title\": \"lorem ipsum\"\n}", bearer(appTok))
	wantStatus(t, pr, 200)
	up.mu.Lock()
	got := up.last
	up.mu.Unlock()
	if got.path != "/protected_endpoint" || got.subject != devSub || !strings.Contains(string(got.body), "lorem ipsum") || got.auth != "" {
		t.Fatalf("upstream saw path %q subject %q body %q auth %q", got.path, got.subject, got.body, got.auth)
	}
	wantStatus(t, fusioDo(t, "POST", ts.URL+"/protected_endpoint", `{"title":"x"}`), 401)
	// A public operation needs no token.
	wantStatus(t, fusioDo(t, "GET", ts.URL+"/public", ""), 200)

	// Scope narrowing: the app is limited to todo, the user has backend.
	wantStatus(t, fusioDo(t, "GET", ts.URL+"/backend", "", bearer(appTok)), 403)
	wantStatus(t, fusioDo(t, "GET", ts.URL+"/backend", "", bearer(userTok)), 200)
	nr := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"todo,backend,unknown"}}, basic("dev", "dev-Passw0rd"))
	wantStatus(t, nr, 200)
	if nr.str("scope") != "todo,backend" {
		t.Fatalf("narrowed scope %q", nr.str("scope"))
	}
	if s := claims(t, nr.str("access_token"))["scope"].(string); !strings.Contains(s, "todo") || strings.Contains(s, "consumer") {
		t.Fatalf("narrowed token scope claim %q", s)
	}
	ir := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"backend"}}, basic(key, secret))
	wantStatus(t, ir, 400)
	if ir.str("error") != "invalid_scope" {
		t.Fatalf("app asking beyond its scopes: %s", ir.Body)
	}
	bg := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"password"}}, basic(key, secret))
	if bg.Status != 400 || bg.str("error") != "unsupported_grant_type" {
		t.Fatalf("unsupported grant: %d %s", bg.Status, bg.Body)
	}

	// An app token may not manage apps; the login token may.
	wantFusioError(t, fusioDo(t, "GET", ts.URL+"/consumer/app", "", bearer(appTok)), 403, "consumer API")
	wantFusioError(t, fusioDo(t, "GET", ts.URL+"/consumer/app", ""), 401, "")
	list := fusioDo(t, "GET", ts.URL+"/consumer/app", "", bearer(devToken))
	wantStatus(t, list, 200)
	if n, _ := list.JSON["totalResults"].(float64); n != 1 || strings.Contains(string(list.Body), secret) {
		t.Fatalf("app list: %s", list.Body)
	}
	// Apps may only use the owner's scopes; none valid is refused.
	wantFusioError(t, createApp(t, ts, devToken, "nothing", "admin"), 400, "at least one valid scope")
	// Another developer cannot see or revoke the app.
	otherTok := consumerLogin(t, ts, "other", "other-Passw0rd").str("token")
	wantFusioError(t, fusioDo(t, "DELETE", ts.URL+"/consumer/app/"+ar.str("id"), "", bearer(otherTok)), 404, "Could not find app")

	// Revoking the app stops its token at the gateway within a second.
	wantStatus(t, fusioDo(t, "DELETE", ts.URL+"/consumer/app/"+ar.str("id"), "", bearer(devToken)), 200)
	deadline := time.Now().Add(time.Second)
	for {
		r := fusioDo(t, "POST", ts.URL+"/protected_endpoint", `{"title":"x"}`, bearer(appTok))
		if r.Status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked app's token still answered %d after 1s", r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gone := postForm(t, ts.URL+"/authorization/token", url.Values{"grant_type": {"client_credentials"}}, basic(key, secret))
	if gone.Status != 401 {
		t.Fatalf("revoked app got a token: %d %s", gone.Status, gone.Body)
	}
	// The owner's own token is untouched.
	wantStatus(t, fusioDo(t, "POST", ts.URL+"/protected_endpoint", `{"title":"x"}`, bearer(devToken)), 200)
}

func TestFusioAppLimit(t *testing.T) {
	ts, _ := startFusio(t, nil)
	tok := consumerLogin(t, ts, "other", "other-Passw0rd").str("token")
	var ids []string
	for i := 0; i < 3; i++ {
		r := createApp(t, ts, tok, "app", "todo")
		wantStatus(t, r, 201)
		ids = append(ids, r.str("id"))
	}
	wantFusioError(t, createApp(t, ts, tok, "one too many", "todo"), 400, "Maximal amount of apps reached (3)")
	// Deleting one frees its slot.
	wantStatus(t, fusioDo(t, "DELETE", ts.URL+"/consumer/app/"+ids[0], "", bearer(tok)), 200)
	wantStatus(t, createApp(t, ts, tok, "again", "todo"), 201)
	wantFusioError(t, createApp(t, ts, tok, "", "todo"), 400, "Invalid name")
}

// logBuffer collects log lines for a test to read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var activationLink = regexp.MustCompile(`/consumer/activate\?token=([A-Za-z0-9._%-]+)`)

func TestFusioRegistration(t *testing.T) {
	logs := &logBuffer{}
	ts, _ := startFusio(t, func(m map[string]any) { m["verifyEmail"] = true }, func(c *server.Config) {
		c.Dev = true
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	reg := func(name, email, pw string) *response {
		b, _ := json.Marshal(map[string]string{"name": name, "email": email, "password": pw, "captcha": ""})
		return fusioDo(t, "POST", ts.URL+"/consumer/register", string(b))
	}

	// The policy's refusals say why.
	wantFusioError(t, reg("newbie", "newbie@example.com", "a1"), 400, "minimum length 8")
	wantFusioError(t, reg("newbie", "newbie@example.com", "nodigitshere"), 400, "numerical digits")
	wantFusioError(t, reg("newbie1x", "newbie@example.com", "newbie1x"), 400, "must not be equal to the username")
	wantFusioError(t, reg("newbie", "newbie@example.com", "password1"), 400, "too common")
	wantFusioError(t, reg("newbie", "not-an-email", "n3wbie-Secret"), 400, "Invalid email")
	wantFusioError(t, reg("dev", "x@example.com", "n3wbie-Secret"), 409, "already exists")
	wantFusioError(t, reg("another", "dev@example.com", "n3wbie-Secret"), 409, "Email already registered")
	if strings.Contains(logs.String(), "n3wbie-Secret") {
		t.Fatal("a password reached the log")
	}

	r := reg("newbie", "newbie@example.com", "n3wbie-Secret")
	wantStatus(t, r, 201)
	if r.JSON["success"] != true || !strings.Contains(r.str("message"), "activate") {
		t.Fatalf("registration: %s", r.Body)
	}
	// Not activated yet: no login.
	wantFusioError(t, consumerLogin(t, ts, "newbie", "n3wbie-Secret"), 400, "")

	m := activationLink.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no activation link in the log:\n%s", logs.String())
	}
	token, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	// The link's page posts the token; it does not activate on GET.
	page := fusioDo(t, "GET", ts.URL+"/consumer/activate?token="+url.QueryEscape(token), "")
	if page.Status != 200 || !strings.Contains(string(page.Body), `method="post"`) {
		t.Fatalf("activation page: %d %s", page.Status, page.Body)
	}
	wantFusioError(t, consumerLogin(t, ts, "newbie", "n3wbie-Secret"), 400, "")
	wantFusioError(t, fusioDo(t, "POST", ts.URL+"/consumer/activate", `{"token": "`+token+`x"}`), 400, "Invalid or expired")
	act := fusioDo(t, "POST", ts.URL+"/consumer/activate", `{"token": "`+token+`"}`)
	wantStatus(t, act, 200)
	if act.JSON["success"] != true {
		t.Fatalf("activation: %s", act.Body)
	}
	// Single use.
	wantFusioError(t, fusioDo(t, "POST", ts.URL+"/consumer/activate", `{"token": "`+token+`"}`), 400, "Invalid or expired")

	lr := consumerLogin(t, ts, "newbie", "n3wbie-Secret")
	wantStatus(t, lr, 200)
	if lr.str("scope") != "consumer,todo" {
		t.Fatalf("new user's scopes %q, want the Consumer role's", lr.str("scope"))
	}
	ra, _ := claims(t, lr.str("token"))["realm_access"].(map[string]any)
	roles, _ := json.Marshal(ra["roles"])
	if !strings.Contains(string(roles), `"Consumer"`) {
		t.Fatalf("new user's roles %s lack Consumer", roles)
	}
}

func TestFusioRegistrationOffAndNoMail(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		ts, _ := startFusio(t, func(m map[string]any) { m["registrationAllowed"] = false })
		r := fusioDo(t, "POST", ts.URL+"/consumer/register", `{"name":"newbie","email":"newbie@example.com","password":"n3wbie-Secret"}`)
		wantFusioError(t, r, 403, "Registration is not allowed")
	})
	t.Run("verify email without mail", func(t *testing.T) {
		ts, _ := startFusio(t, func(m map[string]any) { m["verifyEmail"] = true })
		r := fusioDo(t, "POST", ts.URL+"/consumer/register", `{"name":"newbie","email":"newbie@example.com","password":"n3wbie-Secret"}`)
		wantFusioError(t, r, 503, "no mail server is configured")
		// Nothing was stored: the name is still free once mail works.
		wantFusioError(t, consumerLogin(t, ts, "newbie", "n3wbie-Secret"), 400, "Invalid name or password")
	})
	t.Run("no activation needed", func(t *testing.T) {
		ts, _ := startFusio(t, nil)
		r := fusioDo(t, "POST", ts.URL+"/consumer/register", `{"name":"newbie","email":"newbie@example.com","password":"n3wbie-Secret"}`)
		wantStatus(t, r, 201)
		wantStatus(t, consumerLogin(t, ts, "newbie", "n3wbie-Secret"), 200)
		wantFusioError(t, fusioDo(t, "POST", ts.URL+"/consumer/register", `["x"]`), 400, "Invalid JSON")
	})
}
