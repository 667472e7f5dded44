package e2e

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The authorization-code flow, driven as a Go web app would drive it
// against Keycloak: golang.org/x/oauth2 builds the authorization URL (PKCE
// S256) and exchanges the code, a cookie-keeping HTTP client plays the
// browser through gatehouse's login page to the app's redirect URI (a real
// loopback server), and go-oidc verifies the ID token and its nonce.

const (
	acRealm      = "ac"
	acShortRealm = "acshort"
	acWebSecret  = "web-secret-4b7f2e9c1d0a"
	acAlicePW    = "alice-pass-7Qz"
)

// acEnv is a gatehouse with the code-flow realms and the app's callback
// server.
type acEnv struct {
	ts       *testServer
	callback string // the registered redirect URI
	origin   string // the app's origin
	provider *oidc.Provider
	posted   chan url.Values // what the app received by POST (response_mode=form_post)
}

func acRealmJSON(name, cb, origin string, codeLife int) string {
	return fmt.Sprintf(`{
  "realm": %q, "enabled": true, "accessCodeLifespan": %d,
  "roles": {"realm": [{"name": "offline_access"}, {"name": "uma_authorization"}]},
  "defaultRoles": ["offline_access", "uma_authorization"],
  "clients": [
    {"clientId": "spa", "name": "Risk Dashboard", "publicClient": true,
     "redirectUris": [%q], "webOrigins": ["+"],
     "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "%s/bye##+"}},
    {"clientId": "other", "publicClient": true,
     "redirectUris": [%q], "webOrigins": ["https://other.example"]},
    {"clientId": "web", "publicClient": false, "secret": %q,
     "redirectUris": [%q]},
    {"clientId": "noflow", "publicClient": true, "standardFlowEnabled": false,
     "redirectUris": [%q]}
  ],
  "users": [
    {"username": "alice", "enabled": true, "email": "alice@ac.example", "firstName": "Alice",
     "credentials": [{"type": "password", "value": %q}]},
    {"username": "bob", "enabled": true,
     "credentials": [{"type": "password", "value": "bob-pass-9Xw"}]}
  ]
}`, name, codeLife, cb, origin, origin+"/*", acWebSecret, cb, cb, acAlicePW)
}

func startAuthCode(t *testing.T) *acEnv {
	t.Helper()
	posted := make(chan url.Values, 8)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.ParseForm() == nil {
			select {
			case posted <- r.PostForm:
			default:
			}
		}
		_, _ = io.WriteString(w, "app")
	}))
	t.Cleanup(app.Close)
	cb := app.URL + "/callback"
	dir := t.TempDir()
	var files []string
	for _, rl := range []struct {
		name string
		life int
	}{{acRealm, 60}, {acShortRealm, 1}} {
		f := filepath.Join(dir, rl.name+".json")
		if err := os.WriteFile(f, []byte(acRealmJSON(rl.name, cb, app.URL, rl.life)), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	ts := startServer(t, files)
	provider, err := oidc.NewProvider(context.Background(), ts.URL+"/realms/"+acRealm)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return &acEnv{ts: ts, callback: cb, origin: app.URL, provider: provider, posted: posted}
}

func (e *acEnv) config(clientID, secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: e.callback,
		Endpoint: e.provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}
}

// newBrowser is an HTTP client with a cookie jar that follows redirects,
// like a browser.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: requestTimeout}
}

// noFollow is a client that reports redirects instead of following them.
var noFollow = &http.Client{
	Timeout:       requestTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// page is a fetched HTML page and where the browser ended up.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func browse(t *testing.T, c *http.Client, req *http.Request) page {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(b)}
}

func get(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return browse(t, c, req)
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenIn   = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)"`)
)

// loginForm is the login page's form, as a browser would submit it.
type loginForm struct {
	action string
	fields url.Values
}

func parseLoginForm(t *testing.T, p page) loginForm {
	t.Helper()
	m := formAction.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no login form (status %d, at %s): %.400s", p.status, p.url, p.body)
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	f := loginForm{action: action.String(), fields: url.Values{}}
	for _, h := range hiddenIn.FindAllStringSubmatch(p.body, -1) {
		f.fields.Set(h[1], html.UnescapeString(h[2]))
	}
	if f.fields.Get("csrf") == "" || f.fields.Get("request") == "" {
		t.Fatalf("login form without its hidden fields: %v", f.fields)
	}
	return f
}

func (f loginForm) submit(t *testing.T, c *http.Client, user, pw string) page {
	t.Helper()
	v := url.Values{}
	for k, vs := range f.fields {
		v[k] = vs
	}
	v.Set("username", user)
	v.Set("password", pw)
	req, err := http.NewRequest(http.MethodPost, f.action, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return browse(t, c, req)
}

// login goes from the authorization URL through the login page to the
// app's redirect URI and returns the parameters the app received.
func (e *acEnv) login(t *testing.T, c *http.Client, authURL, user, pw string) url.Values {
	t.Helper()
	p := get(t, c, authURL)
	if p.status != 200 {
		t.Fatalf("authorization page: %d %.300s", p.status, p.body)
	}
	done := parseLoginForm(t, p).submit(t, c, user, pw)
	return e.atApp(t, done)
}

// atApp checks that the browser arrived at the app and returns what the
// app was given.
func (e *acEnv) atApp(t *testing.T, p page) url.Values {
	t.Helper()
	if p.status != 200 || p.body != "app" || p.url.Scheme+"://"+p.url.Host+p.url.Path != e.callback {
		t.Fatalf("did not arrive at the app: %d at %s: %.300s", p.status, p.url, p.body)
	}
	return p.url.Query()
}

func TestAuthCodeFlowWithLibraries(t *testing.T) {
	e := startAuthCode(t)
	ctx := context.Background()
	conf := e.config("spa", "")
	verifier := oauth2.GenerateVerifier()
	state, nonce := "st-"+oauth2.GenerateVerifier()[:16], "n-"+oauth2.GenerateVerifier()[:16]
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	browser := newBrowser(t)
	got := e.login(t, browser, authURL, "alice", acAlicePW)
	issuer := e.ts.URL + "/realms/" + acRealm
	if got.Get("state") != state || got.Get("iss") != issuer || got.Get("session_state") == "" || got.Get("code") == "" {
		t.Fatalf("redirect parameters %v", got)
	}

	tok, err := conf.Exchange(ctx, got.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.Extra("session_state") != got.Get("session_state") {
		t.Errorf("token response: refresh %q, session_state %v", tok.RefreshToken, tok.Extra("session_state"))
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: "spa"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var idc struct {
		PreferredUsername string `json:"preferred_username"`
		Sid               string `json:"sid"`
		AuthTime          int64  `json:"auth_time"`
	}
	if err := idt.Claims(&idc); err != nil {
		t.Fatal(err)
	}
	if idc.PreferredUsername != "alice" || idc.Sid != got.Get("session_state") || idc.AuthTime == 0 {
		t.Errorf("ID token claims %+v", idc)
	}

	// The session is an ordinary one: userinfo, refresh and logout work
	// as for the password grant.
	ui, err := e.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Email != "alice@ac.example" {
		t.Fatalf("userinfo %+v: %v", ui, err)
	}
	old := *tok
	old.Expiry = time.Now().Add(-time.Hour)
	fresh, err := conf.TokenSource(ctx, &old).Token()
	if err != nil || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("refresh: %v", err)
	}
	r := postForm(t, e.ts.oidc(acRealm, "logout"), form("client_id", "spa", "refresh_token", fresh.RefreshToken))
	if r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if _, err := e.provider.UserInfo(ctx, oauth2.StaticTokenSource(fresh)); err == nil {
		t.Errorf("userinfo accepted a token of a logged-out session")
	}
	// With its session over, the browser's single sign-on is over too.
	if p := get(t, browser, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier))); !strings.Contains(p.body, `name="password"`) {
		t.Errorf("no login page after logout: %d at %s", p.status, p.url)
	}
}

// codeFor runs a login for client and returns the code and the verifier it
// is bound to.
func (e *acEnv) codeFor(t *testing.T, c *http.Client, clientID string) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	u := e.config(clientID, "").AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
	got := e.login(t, c, u, "alice", acAlicePW)
	return got.Get("code"), verifier
}

func (e *acEnv) exchange(t *testing.T, realm, clientID, code, verifier string, extra ...string) *response {
	t.Helper()
	f := form("grant_type", "authorization_code", "client_id", clientID, "code", code,
		"redirect_uri", e.callback, "code_verifier", verifier)
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return postForm(t, e.ts.oidc(realm, "token"), f)
}

func wantGrantError(t *testing.T, what string, r *response, code string) {
	t.Helper()
	if r.Status != 400 || r.str("error") != code {
		t.Errorf("%s: %d %s, want 400 %s", what, r.Status, r.Body, code)
	}
}

func TestAuthCodeRedeem(t *testing.T) {
	e := startAuthCode(t)

	t.Run("reused code ends the session", func(t *testing.T) {
		code, v := e.codeFor(t, newBrowser(t), "spa")
		first := e.exchange(t, acRealm, "spa", code, v)
		if first.Status != 200 {
			t.Fatalf("first exchange: %d %s", first.Status, first.Body)
		}
		wantGrantError(t, "second exchange", e.exchange(t, acRealm, "spa", code, v), "invalid_grant")
		ui := do(t, bearerGet(t, e.ts.oidc(acRealm, "userinfo"), first.str("access_token")))
		if ui.Status != 401 {
			t.Errorf("access token from a replayed code still accepted: %d", ui.Status)
		}
		r := postForm(t, e.ts.oidc(acRealm, "token"), form("grant_type", "refresh_token", "client_id", "spa", "refresh_token", first.str("refresh_token")))
		wantGrantError(t, "refresh after replay", r, "invalid_grant")
	})

	t.Run("wrong verifier", func(t *testing.T) {
		code, v := e.codeFor(t, newBrowser(t), "spa")
		wantGrantError(t, "wrong verifier", e.exchange(t, acRealm, "spa", code, oauth2.GenerateVerifier()), "invalid_grant")
		wantGrantError(t, "no verifier", e.exchange(t, acRealm, "spa", code, ""), "invalid_grant")
		// A failed attempt does not burn the code for its client.
		if r := e.exchange(t, acRealm, "spa", code, v); r.Status != 200 {
			t.Errorf("right verifier after wrong ones: %d %s", r.Status, r.Body)
		}
	})

	t.Run("code of another client", func(t *testing.T) {
		code, v := e.codeFor(t, newBrowser(t), "spa")
		wantGrantError(t, "other client", e.exchange(t, acRealm, "other", code, v), "invalid_grant")
		wantGrantError(t, "confidential client", e.exchange(t, acRealm, "web", code, v, "client_secret", acWebSecret), "invalid_grant")
	})

	t.Run("other redirect_uri", func(t *testing.T) {
		code, v := e.codeFor(t, newBrowser(t), "spa")
		wantGrantError(t, "redirect_uri", e.exchange(t, acRealm, "spa", code, v, "redirect_uri", e.origin+"/elsewhere"), "invalid_grant")
	})

	t.Run("garbage code", func(t *testing.T) {
		wantGrantError(t, "garbage", e.exchange(t, acRealm, "spa", "not-a-code", oauth2.GenerateVerifier()), "invalid_grant")
	})

	t.Run("expired code", func(t *testing.T) {
		c := newBrowser(t)
		verifier := oauth2.GenerateVerifier()
		conf := e.config("spa", "")
		conf.Endpoint.AuthURL = e.ts.oidc(acShortRealm, "auth")
		got := e.login(t, c, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", acAlicePW)
		// acshort's codes live one second (accessCodeLifespan: 1).
		time.Sleep(1500 * time.Millisecond)
		r := e.exchange(t, acShortRealm, "spa", got.Get("code"), verifier)
		wantGrantError(t, "expired", r, "invalid_grant")
		if !strings.Contains(r.str("error_description"), "expired") {
			t.Errorf("expired code: %s", r.Body)
		}
	})

	t.Run("confidential client", func(t *testing.T) {
		conf := e.config("web", acWebSecret)
		c := newBrowser(t)
		got := e.login(t, c, conf.AuthCodeURL("s"), "alice", acAlicePW)
		if r := e.exchange(t, acRealm, "web", got.Get("code"), ""); r.Status != 401 || r.str("error") != "invalid_client" {
			t.Errorf("confidential client without its secret: %d %s", r.Status, r.Body)
		}
		tok, err := conf.Exchange(context.Background(), got.Get("code"))
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("confidential exchange: %v", err)
		}
	})
}

func bearerGet(t *testing.T, u, token string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

func TestAuthCodeAuthorizationErrors(t *testing.T) {
	e := startAuthCode(t)
	auth := e.ts.oidc(acRealm, "auth")
	q := func(kv ...string) string { return auth + "?" + form(kv...).Encode() }
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())

	// No redirect to a URI that is not the client's: a page, status 400.
	for name, u := range map[string]string{
		"foreign host":   q("client_id", "spa", "response_type", "code", "redirect_uri", "https://evil.example/callback", "state", "s"),
		"prefix of path": q("client_id", "spa", "response_type", "code", "redirect_uri", e.callback+"/../x", "state", "s"),
		"wildcard ..":    q("client_id", "other", "response_type", "code", "redirect_uri", e.origin+"/a/../../x", "state", "s"),
		"userinfo":       q("client_id", "other", "response_type", "code", "redirect_uri", strings.Replace(e.origin, "://", "://evil.example@", 1)+"/x", "state", "s"),
		"unknown client": q("client_id", "nobody", "response_type", "code", "redirect_uri", e.callback),
		"no redirect":    q("client_id", "spa", "response_type", "code"),
		"duplicate":      auth + "?client_id=spa&response_type=code&redirect_uri=" + url.QueryEscape(e.callback) + "&redirect_uri=" + url.QueryEscape("https://evil.example/"),
	} {
		resp := do(t, mustGet(t, u))
		if resp.Status != 400 || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d Location %q type %q", name, resp.Status, resp.Header.Get("Location"), resp.Header.Get("Content-Type"))
		}
	}
	// The pattern's prefix rule itself, as Keycloak has it.
	if p := get(t, newBrowser(t), q("client_id", "other", "response_type", "code", "redirect_uri", e.origin+"/any/path?x=1", "code_challenge", challenge, "code_challenge_method", "S256")); p.status != 200 || !strings.Contains(p.body, `name="password"`) {
		t.Errorf("wildcard redirect URI refused: %d %.200s", p.status, p.body)
	}

	// After the redirect URI is known to be the client's, errors go there,
	// with the state.
	redirected := func(name, u, wantErr string) {
		t.Helper()
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || err != nil || !strings.HasPrefix(loc.String(), e.callback+"?") {
			t.Errorf("%s: %d Location %q", name, resp.StatusCode, resp.Header.Get("Location"))
			return
		}
		if loc.Query().Get("error") != wantErr || loc.Query().Get("state") != "st" || loc.Query().Get("code") != "" {
			t.Errorf("%s: redirected with %v, want error %s", name, loc.Query(), wantErr)
		}
	}
	redirected("prompt=none without session", q("client_id", "spa", "response_type", "code", "redirect_uri", e.callback, "state", "st",
		"prompt", "none", "code_challenge", challenge, "code_challenge_method", "S256"), "login_required")
	redirected("PKCE required", q("client_id", "spa", "response_type", "code", "redirect_uri", e.callback, "state", "st"), "invalid_request")
	redirected("plain where S256 is required", q("client_id", "spa", "response_type", "code", "redirect_uri", e.callback, "state", "st",
		"code_challenge", strings.Repeat("a", 43), "code_challenge_method", "plain"), "invalid_request")
	redirected("implicit", q("client_id", "spa", "response_type", "token", "redirect_uri", e.callback, "state", "st"), "unsupported_response_type")
	redirected("standard flow off", q("client_id", "noflow", "response_type", "code", "redirect_uri", e.callback, "state", "st"), "unauthorized_client")
	redirected("unknown scope", q("client_id", "web", "response_type", "code", "redirect_uri", e.callback, "state", "st", "scope", "openid nonsense"), "invalid_scope")
}

func mustGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestAuthCodeLoginPage(t *testing.T) {
	e := startAuthCode(t)
	conf := e.config("spa", "")
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))

	t.Run("csrf", func(t *testing.T) {
		c := newBrowser(t)
		f := parseLoginForm(t, get(t, c, authURL))
		missing := f
		missing.fields = url.Values{"request": f.fields["request"]}
		if p := missing.submit(t, c, "alice", acAlicePW); p.status != 403 || strings.Contains(p.url.String(), "code=") {
			t.Errorf("login without the CSRF token: %d at %s", p.status, p.url)
		}
		// The form shown in one browser does not work from another.
		if p := f.submit(t, newBrowser(t), "alice", acAlicePW); p.status != 403 {
			t.Errorf("login form replayed from another browser: %d at %s", p.status, p.url)
		}
		// A tampered request is refused too.
		bad := f
		bad.fields = url.Values{"csrf": f.fields["csrf"], "request": {f.fields.Get("request")[:40] + "AAAA" + f.fields.Get("request")[44:]}}
		if p := bad.submit(t, c, "alice", acAlicePW); p.status != 403 {
			t.Errorf("tampered login request: %d", p.status)
		}
		// The genuine form still works.
		e.atApp(t, f.submit(t, c, "alice", acAlicePW))
	})

	t.Run("unknown user and wrong password look the same", func(t *testing.T) {
		c := newBrowser(t)
		f := parseLoginForm(t, get(t, c, authURL))
		unknown := f.submit(t, c, "mallory", "whatever-1")
		wrong := f.submit(t, c, "alice", "whatever-1")
		norm := func(p page, user string) string {
			return strings.ReplaceAll(p.body, `value="`+user+`"`, `value="USER"`)
		}
		if unknown.status != wrong.status || unknown.status != 401 || norm(unknown, "mallory") != norm(wrong, "alice") {
			t.Errorf("unknown user %d, wrong password %d; bodies differ: %v", unknown.status, wrong.status, norm(unknown, "mallory") != norm(wrong, "alice"))
		}
		if !strings.Contains(wrong.body, "Invalid username or password.") {
			t.Errorf("no error message on the page: %.300s", wrong.body)
		}
		// The same form still signs in with the right password.
		e.atApp(t, f.submit(t, c, "alice", acAlicePW))
	})

	t.Run("single sign-on", func(t *testing.T) {
		c := newBrowser(t)
		first := e.login(t, c, authURL, "alice", acAlicePW)
		// The same browser again: straight back to the app, same session.
		v2 := oauth2.GenerateVerifier()
		again := e.atApp(t, get(t, c, conf.AuthCodeURL("st2", oauth2.S256ChallengeOption(v2))))
		if again.Get("code") == "" || again.Get("state") != "st2" || again.Get("session_state") != first.Get("session_state") {
			t.Errorf("SSO redirect %v (first session %s)", again, first.Get("session_state"))
		}
		r := e.exchange(t, acRealm, "spa", again.Get("code"), v2)
		if r.Status != 200 {
			t.Fatalf("exchange of the SSO code: %d %s", r.Status, r.Body)
		}
		// Another client in the same browser: no login page either, its
		// own session, the same authentication time.
		ov := oauth2.GenerateVerifier()
		other := e.atApp(t, get(t, c, e.config("other", "").AuthCodeURL("st3", oauth2.S256ChallengeOption(ov))))
		ro := e.exchange(t, acRealm, "other", other.Get("code"), ov)
		if ro.Status != 200 || ro.str("session_state") == first.Get("session_state") {
			t.Fatalf("other client via SSO: %d %s", ro.Status, ro.Body)
		}
		if claims(t, ro.str("id_token"))["auth_time"] != claims(t, r.str("id_token"))["auth_time"] {
			t.Errorf("auth_time differs between SSO sessions")
		}
		// prompt=login asks again; prompt=none answers without a page.
		if p := get(t, c, conf.AuthCodeURL("st4", oauth2.S256ChallengeOption(v2), oauth2.SetAuthURLParam("prompt", "login"))); !strings.Contains(p.body, `name="password"`) {
			t.Errorf("prompt=login skipped the login page: %d at %s", p.status, p.url)
		}
		if got := e.atApp(t, get(t, c, conf.AuthCodeURL("st5", oauth2.S256ChallengeOption(v2), oauth2.SetAuthURLParam("prompt", "none")))); got.Get("code") == "" {
			t.Errorf("prompt=none with a session: %v", got)
		}
		// Front-channel logout ends the browser's single sign-on.
		get(t, c, e.ts.oidc(acRealm, "logout"))
		if p := get(t, c, authURL); !strings.Contains(p.body, `name="password"`) {
			t.Errorf("no login page after front-channel logout: at %s", p.url)
		}
	})

	t.Run("sso cookie", func(t *testing.T) {
		c := newBrowser(t)
		e.login(t, c, authURL, "alice", acAlicePW)
		u, _ := url.Parse(e.ts.URL + "/realms/" + acRealm + "/")
		var sso *http.Cookie
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == "GATEHOUSE_SSO" {
				sso = ck
			}
		}
		if sso == nil {
			t.Fatal("no SSO cookie for /realms/ac/")
		}
		other, _ := url.Parse(e.ts.URL + "/realms/" + acShortRealm + "/")
		for _, ck := range c.Jar.Cookies(other) {
			if ck.Name == "GATEHOUSE_SSO" {
				t.Errorf("SSO cookie of realm ac sent to realm acshort")
			}
		}
		// The Set-Cookie attributes themselves.
		raw := rawLoginSetCookies(t, authURL)
		for _, line := range raw {
			if strings.HasPrefix(line, "GATEHOUSE_SSO=") {
				if !strings.Contains(line, "Path=/realms/ac/") || !strings.Contains(line, "HttpOnly") || !strings.Contains(line, "SameSite=Lax") {
					t.Errorf("SSO cookie attributes: %s", line)
				}
				return
			}
		}
		t.Errorf("login set no SSO cookie: %v", raw)
	})
}

// rawLoginSetCookies logs in without following the final redirect and
// returns the Set-Cookie lines of the login's answer.
func rawLoginSetCookies(t *testing.T, authURL string) []string {
	t.Helper()
	c := newBrowser(t)
	f := parseLoginForm(t, get(t, c, authURL))
	nf := &http.Client{Jar: c.Jar, Timeout: requestTimeout, CheckRedirect: noFollow.CheckRedirect}
	v := url.Values{}
	for k, vs := range f.fields {
		v[k] = vs
	}
	v.Set("username", "alice")
	v.Set("password", acAlicePW)
	resp, err := nf.PostForm(f.action, v)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 {
		t.Fatalf("login answered %d", resp.StatusCode)
	}
	return resp.Header.Values("Set-Cookie")
}

func TestAuthCodeCORS(t *testing.T) {
	e := startAuthCode(t)
	send := func(method, u, origin string, body url.Values, headers ...string) *response {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(body.Encode())
		}
		req, err := http.NewRequest(method, u, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Origin", origin)
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(k, strings.TrimSpace(v))
		}
		return do(t, req)
	}
	allowed := func(r *response, origin string) bool {
		return r.Header.Get("Access-Control-Allow-Origin") == origin && r.Header.Get("Access-Control-Allow-Credentials") == "true"
	}
	evil := "https://evil.example"

	// The whole flow from the app's origin ("+": its redirect URI's).
	code, v := e.codeFor(t, newBrowser(t), "spa")
	f := form("grant_type", "authorization_code", "client_id", "spa", "code", code, "redirect_uri", e.callback, "code_verifier", v)
	tok := send("POST", e.ts.oidc(acRealm, "token"), e.origin, f)
	if tok.Status != 200 || !allowed(tok, e.origin) || !strings.Contains(strings.Join(tok.Header.Values("Vary"), ","), "Origin") {
		t.Fatalf("token from an allowed origin: %d %v", tok.Status, tok.Header)
	}
	// The same request from another origin is not readable by it.
	r := send("POST", e.ts.oidc(acRealm, "token"), evil, form("grant_type", "refresh_token", "client_id", "spa", "refresh_token", tok.str("refresh_token")))
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("token answer readable by %s: %v", evil, r.Header)
	}
	// "other" allows https://other.example only.
	if r := send("POST", e.ts.oidc(acRealm, "token"), e.origin, form("grant_type", "authorization_code", "client_id", "other", "code", "x")); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("client other's answer readable by the spa origin")
	}
	if r := send("POST", e.ts.oidc(acRealm, "token"), "https://other.example", form("grant_type", "authorization_code", "client_id", "other", "code", "x")); !allowed(r, "https://other.example") {
		t.Errorf("client other's own origin not allowed: %v", r.Header)
	}

	ui := send("GET", e.ts.oidc(acRealm, "userinfo"), e.origin, nil, "Authorization: Bearer "+tok.str("access_token"))
	if ui.Status != 200 || !allowed(ui, e.origin) {
		t.Errorf("userinfo from the app's origin: %d %v", ui.Status, ui.Header)
	}
	if ui := send("GET", e.ts.oidc(acRealm, "userinfo"), evil, nil, "Authorization: Bearer "+tok.str("access_token")); ui.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("userinfo readable by %s", evil)
	}

	// Preflights: an origin some client allows passes, others get nothing.
	for _, ep := range []string{"token", "userinfo", "token/introspect", "revoke", "logout"} {
		pre := send("OPTIONS", e.ts.oidc(acRealm, ep), e.origin, nil, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization")
		if pre.Status != 200 || !allowed(pre, e.origin) || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight %s from the app: %d %v", ep, pre.Status, pre.Header)
		}
		bad := send("OPTIONS", e.ts.oidc(acRealm, ep), evil, nil, "Access-Control-Request-Method: POST")
		if bad.Header.Get("Access-Control-Allow-Origin") != "" || bad.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight %s from %s allowed: %v", ep, evil, bad.Header)
		}
	}
	if r := send("POST", e.ts.oidc(acRealm, "logout"), e.origin, form("client_id", "spa", "refresh_token", tok.str("refresh_token"))); r.Status != 204 || !allowed(r, e.origin) {
		t.Errorf("logout from the app's origin: %d %v", r.Status, r.Header)
	}

	// Public documents: any origin, without credentials.
	for _, u := range []string{e.ts.oidc(acRealm, "certs"), e.ts.URL + "/realms/" + acRealm + "/.well-known/openid-configuration"} {
		if r := send("GET", u, evil, nil); r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d ACAO %q", u, r.Status, r.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

func TestAuthCodeDiscovery(t *testing.T) {
	e := startAuthCode(t)
	var meta struct {
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		ResponseTypes         []string `json:"response_types_supported"`
		GrantTypes            []string `json:"grant_types_supported"`
		Challenge             []string `json:"code_challenge_methods_supported"`
		IssParam              bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if err := e.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.AuthorizationEndpoint != e.ts.oidc(acRealm, "auth") || strings.Join(meta.ResponseTypes, ",") != "code" ||
		!strings.Contains(strings.Join(meta.GrantTypes, ","), "authorization_code") ||
		strings.Join(meta.Challenge, ",") != "plain,S256" || !meta.IssParam {
		t.Errorf("discovery %+v", meta)
	}
	// The legacy /auth prefix serves the flow too, with its own cookies.
	conf := e.config("spa", "")
	conf.Endpoint.AuthURL = e.ts.URL + "/auth/realms/" + acRealm + "/protocol/openid-connect/auth"
	v := oauth2.GenerateVerifier()
	c := newBrowser(t)
	p := get(t, c, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	f := parseLoginForm(t, p)
	if !strings.HasPrefix(f.action, e.ts.URL+"/auth/realms/"+acRealm+"/") {
		t.Errorf("login form under /auth posts to %s", f.action)
	}
	got := e.atApp(t, f.submit(t, c, "alice", acAlicePW))
	tok, err := conf.Exchange(context.Background(), got.Get("code"), oauth2.VerifierOption(v))
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("exchange under /auth: %v", err)
	}
}

// TestAuthCodeRPInitiatedLogout: OIDC RP-Initiated Logout with an
// id_token_hint ends the login and sends the browser to a registered
// post_logout_redirect_uri with the state; anything wrong in the request
// ends nothing.
func TestAuthCodeRPInitiatedLogout(t *testing.T) {
	e := startAuthCode(t)
	ctx := context.Background()
	conf := e.config("spa", "")
	verifier := oauth2.GenerateVerifier()
	browser := newBrowser(t)
	got := e.login(t, browser, conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier)), "alice", acAlicePW)
	tok, err := conf.Exchange(ctx, got.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	logoutURL := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return e.ts.oidc(acRealm, "logout") + "?" + v.Encode()
	}
	alive := func() bool {
		_, err := e.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		return err == nil
	}
	for _, tc := range []struct {
		what string
		u    string
	}{
		{"unregistered redirect", logoutURL("id_token_hint", idToken, "post_logout_redirect_uri", "https://evil.example/")},
		{"access token as hint", logoutURL("id_token_hint", tok.AccessToken)},
		{"tampered hint", logoutURL("id_token_hint", idToken[:len(idToken)-4]+"AAAA")},
		{"hint of another client", logoutURL("id_token_hint", idToken, "client_id", "other")},
		{"redirect without client", logoutURL("post_logout_redirect_uri", e.origin+"/bye")},
	} {
		p := get(t, noFollow, tc.u)
		if p.status != 400 {
			t.Errorf("%s: %d, want 400", tc.what, p.status)
		}
		if !alive() {
			t.Fatalf("%s ended the session", tc.what)
		}
	}

	// "+" in post.logout.redirect.uris allows the redirect URIs; with
	// client_id and no hint the browser goes there and no session ends.
	res, err := noFollow.Get(logoutURL("client_id", "spa", "post_logout_redirect_uri", e.callback))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 302 || res.Header.Get("Location") != e.callback || !alive() {
		t.Fatalf("logout with client_id: %d to %q, session alive %v", res.StatusCode, res.Header.Get("Location"), alive())
	}

	// The real thing, in the browser that logged in.
	req, _ := http.NewRequest(http.MethodGet, logoutURL("id_token_hint", idToken, "post_logout_redirect_uri", e.origin+"/bye", "state", "st 1"), nil)
	for _, c := range browser.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	res, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 302 || res.Header.Get("Location") != e.origin+"/bye?state=st+1" {
		t.Fatalf("logout: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	browser.Jar.SetCookies(req.URL, res.Cookies())
	if alive() {
		t.Errorf("the session outlived its logout")
	}
	if p := get(t, browser, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier))); !strings.Contains(p.body, `name="password"`) {
		t.Errorf("no login page after logout: %d at %s", p.status, p.url)
	}
	// The same hint again: the login is already over, and that is fine.
	if p := get(t, noFollow, logoutURL("id_token_hint", idToken)); p.status != 200 {
		t.Errorf("second logout: %d", p.status)
	}
}

// TestAuthCodeFormPost: with response_mode=form_post the answer is a page
// that posts the parameters to the redirect URI (OAuth 2.0 Form Post
// Response Mode), under a Content-Security-Policy that allows only its own
// script; errors travel the same way.
func TestAuthCodeFormPost(t *testing.T) {
	e := startAuthCode(t)
	conf := e.config("spa", "")
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st-fp", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "form_post"))
	browser := newBrowser(t)
	p := parseLoginForm(t, get(t, browser, authURL)).submit(t, browser, "alice", acAlicePW)
	fields := formPostFields(t, e, p)
	if fields.Get("state") != "st-fp" || fields.Get("iss") != e.ts.URL+"/realms/"+acRealm || fields.Get("session_state") == "" {
		t.Fatalf("form_post fields %v", fields)
	}
	if _, err := conf.Exchange(context.Background(), fields.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("exchange of a form_post code: %v", err)
	}

	// An error goes to the app the same way: prompt=none in a browser
	// without single sign-on.
	fresh := newBrowser(t)
	p = get(t, fresh, conf.AuthCodeURL("st-none", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("response_mode", "form_post"), oauth2.SetAuthURLParam("prompt", "none")))
	if f := formPostFields(t, e, p); f.Get("error") != "login_required" || f.Get("state") != "st-none" || f.Get("code") != "" {
		t.Fatalf("prompt=none by form_post: %v", f)
	}
}

var (
	formPostAction = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	formPostCSP    = regexp.MustCompile(`script-src 'sha256-[A-Za-z0-9+/]+=*'`)
)

// formPostFields checks a form_post page and returns the fields it posts.
func formPostFields(t *testing.T, e *acEnv, p page) url.Values {
	t.Helper()
	m := formPostAction.FindStringSubmatch(p.body)
	if p.status != 200 || m == nil || html.UnescapeString(m[1]) != e.callback {
		t.Fatalf("no form posting to the app (status %d): %.400s", p.status, p.body)
	}
	if csp := p.header.Get("Content-Security-Policy"); !formPostCSP.MatchString(csp) || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("form_post page CSP %q", csp)
	}
	if !strings.Contains(p.body, "<script>document.forms[0].submit()</script>") {
		t.Errorf("the page does not submit itself: %.400s", p.body)
	}
	f := url.Values{}
	for _, h := range hiddenIn.FindAllStringSubmatch(p.body, -1) {
		f.Set(h[1], html.UnescapeString(h[2]))
	}
	return f
}
