package oidc

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientaddr"
	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/formtoken"
	"github.com/gatehouse/gatehouse/internal/keys"
)

// The authorization endpoint and its login page. The browser's state is
// two cookies, both HttpOnly, SameSite=Lax, Secure when the public URL is
// https, and scoped to the realm's path (/realms/R/, or /auth/realms/R/
// when the request came under the legacy prefix):
//
//   - GATEHOUSE_SSO names the session a login started (sealed with the
//     master key), so that the next authorization request from the same
//     browser needs no login page while that session lives;
//   - GATEHOUSE_LOGIN is a random value the login form must echo (double
//     submit), which is also sealed into the form's copy of the
//     authorization request: a login form is good only in the browser it
//     was shown in, and only for the request it was shown for.

// Cookie names and the contexts sealed in front of each sealed value, so
// that no value sealed for one purpose passes for another.
const (
	ssoCookie    = "GATEHOUSE_SSO"
	loginCookie  = "GATEHOUSE_LOGIN"
	ssoContext   = "gatehouse-sso-cookie-v1\x00"
	loginContext = "gatehouse-login-request-v1\x00"
)

// maxAuthParam bounds one authorization-request parameter; state and nonce
// are echoed into redirects and sealed into the login form.
const maxAuthParam = 4096

// maxLoginForm bounds the login form's body.
const maxLoginForm = 32 << 10

// authParams are the parameters an authorization request is read from.
var authParams = []string{
	"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "request", "request_uri",
}

// errAuthParams is a request whose parameters cannot be read; it is shown
// to the user, since even its redirect_uri cannot be trusted.
type errAuthParams string

func (e errAuthParams) Error() string { return string(e) }

// parseAuthRequest reads an authorization request's parameters (RFC 6749
// §4.1.1, OpenID Connect Core §3.1.2.1): each at most once and of bounded
// size. Unknown parameters are ignored, as OAuth asks.
func parseAuthRequest(q url.Values, realm string) (core.AuthRequest, error) {
	for _, k := range authParams {
		vs := q[k]
		if len(vs) > 1 {
			return core.AuthRequest{}, errAuthParams("Duplicate parameter: " + k)
		}
		if len(vs) == 1 && len(vs[0]) > maxAuthParam {
			return core.AuthRequest{}, errAuthParams("Parameter too long: " + k)
		}
	}
	return core.AuthRequest{
		Realm:               realm,
		ClientID:            q.Get("client_id"),
		RedirectURI:         q.Get("redirect_uri"),
		ResponseType:        q.Get("response_type"),
		ResponseMode:        q.Get("response_mode"),
		Scope:               q.Get("scope"),
		State:               q.Get("state"),
		Nonce:               q.Get("nonce"),
		CodeChallenge:       q.Get("code_challenge"),
		CodeChallengeMethod: q.Get("code_challenge_method"),
		Prompt:              q.Get("prompt"),
		MaxAge:              q.Get("max_age"),
		LoginHint:           q.Get("login_hint"),
		Request:             q.Get("request"),
		RequestURI:          q.Get("request_uri"),
	}, nil
}

// realmBase is the path the realm's cookies are scoped to, under whichever
// prefix the request used.
func realmBase(r *http.Request) string {
	prefix := ""
	if strings.HasPrefix(r.URL.Path, "/auth/realms/") {
		prefix = "/auth"
	}
	return prefix + "/realms/" + url.PathEscape(r.PathValue("realm")) + "/"
}

// authorize is the authorization endpoint, GET or POST (OpenID Connect
// Core §3.1.2.1).
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, http.StatusBadRequest, "The request could not be read.")
			return
		}
		params = r.PostForm
	}
	realm := h.realmName(r)
	req, err := parseAuthRequest(params, realm)
	if err != nil {
		h.errorPage(w, http.StatusBadRequest, err.Error())
		return
	}
	a, e, redirect := h.core.Authorize(r.Context(), req)
	if e != nil {
		h.authFailed(w, r, a, e, redirect)
		return
	}
	if !a.PromptLogin {
		if sso := h.openSSO(r, a.Realm); sso != nil {
			g, e := h.core.LoginWithSession(r.Context(), a, sso.SessionID, sso.UserID, clientaddr.Of(r), r.UserAgent())
			switch {
			case e == nil:
				h.codeRedirect(w, r, a, g)
				return
			case e != core.ErrLoginRequired:
				h.authFailed(w, r, a, e, true)
				return
			}
			// The session ended: the cookie is of no further use.
			h.clearCookie(w, ssoCookie, realmBase(r))
		}
	}
	if a.PromptNone {
		h.errorRedirect(w, r, a, core.ErrLoginRequired)
		return
	}
	h.loginPage(w, r, http.StatusOK, a, req, "", a.LoginHint, nil)
}

// loginRequest is the login form's sealed copy of the authorization
// request, bound to the browser's login cookie and to a deadline.
type loginRequest struct {
	Req     core.AuthRequest `json:"q"`
	CSRF    string           `json:"c"`
	Expires int64            `json:"e"` // Unix milliseconds
}

// loginPage renders the form. sealed, when not nil, is the request the
// form was posted with, shown again unchanged, so that a failed attempt
// renders the same page whatever the reason it failed.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, status int, a *core.Authorization, req core.AuthRequest, errMsg, username string, sealed *string) {
	base := realmBase(r)
	token := ""
	if c, err := r.Cookie(loginCookie); err == nil && formtoken.Valid(c.Value) {
		token = c.Value
	} else {
		token = formtoken.New()
		http.SetCookie(w, h.cookie(loginCookie, token, base))
	}
	blob := ""
	if sealed != nil {
		blob = *sealed
	} else {
		b, err := h.seal(loginContext, loginRequest{Req: req, CSRF: token, Expires: a.LoginExpires.UnixMilli()})
		if err != nil {
			h.log.Error("sealing the login request failed", "err", err)
			h.errorPage(w, http.StatusServiceUnavailable, "Signing in is not possible right now.")
			return
		}
		blob = b
	}
	display := a.Realm
	if rl, err := h.core.Realm(r.Context(), a.Realm); err == nil && rl.Settings.DisplayName != "" {
		display = rl.Settings.DisplayName
	}
	client := a.ClientName
	if client == "" {
		client = a.ClientID
	}
	h.renderPage(w, status, "login", loginView{
		Realm: display, Client: client, Action: base + "login-actions/authenticate",
		CSRF: token, Request: blob, Error: errMsg, Username: username,
	})
}

// loginAction is the login form's POST.
func (h *Handler) loginAction(w http.ResponseWriter, r *http.Request) {
	if !formtoken.SameOrigin(r) {
		h.refuse(w)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	realm := h.realmName(r)
	posted := r.PostFormValue("csrf")
	c, err := r.Cookie(loginCookie)
	if err != nil || !formtoken.Valid(c.Value) || !formtoken.Equal(c.Value, posted) {
		h.refuse(w)
		return
	}
	blob := r.PostFormValue("request")
	var lr loginRequest
	if h.open(loginContext, blob, &lr) != nil || !formtoken.Equal(lr.CSRF, c.Value) || lr.Req.Realm != realm {
		h.refuse(w)
		return
	}
	if time.Now().UnixMilli() >= lr.Expires {
		h.errorPage(w, http.StatusBadRequest, "This login page has expired. Go back to the application and sign in again.")
		return
	}
	a, e, redirect := h.core.Authorize(r.Context(), lr.Req)
	if e != nil {
		h.authFailed(w, r, a, e, redirect)
		return
	}
	username := r.PostFormValue("username")
	g, e := h.core.LoginWithPassword(r.Context(), a, username, r.PostFormValue("password"), clientaddr.Of(r), r.UserAgent())
	if e != nil {
		switch {
		case e.Code == core.InvalidScope:
			h.errorRedirect(w, r, a, e)
		case e.Status == http.StatusUnauthorized:
			// One message for an unknown user, a wrong password and a
			// locked account; the core made them cost the same.
			h.loginPage(w, r, http.StatusUnauthorized, a, lr.Req, "Invalid username or password.", username, &blob)
		case e.Status >= 500:
			h.loginPage(w, r, http.StatusServiceUnavailable, a, lr.Req, "Signing in is not possible right now.", username, &blob)
		default:
			h.loginPage(w, r, e.Status, a, lr.Req, e.Description, username, &blob)
		}
		return
	}
	base := realmBase(r)
	if g.SSOSession != "" {
		v, err := h.seal(ssoContext, ssoData{Realm: a.Realm, SessionID: g.SSOSession, UserID: g.UserID})
		if err == nil {
			http.SetCookie(w, h.cookie(ssoCookie, v, base))
		} else {
			h.log.Error("sealing the SSO cookie failed", "err", err)
		}
	}
	h.clearCookie(w, loginCookie, base)
	h.codeRedirect(w, r, a, g)
}

// ssoData is what the SSO cookie holds.
type ssoData struct {
	Realm     string `json:"r"`
	SessionID string `json:"s"`
	UserID    string `json:"u"`
}

// openSSO reads the request's SSO cookie for realm; nil when there is
// none that this server sealed for that realm.
func (h *Handler) openSSO(r *http.Request, realm string) *ssoData {
	c, err := r.Cookie(ssoCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	var d ssoData
	if h.open(ssoContext, c.Value, &d) != nil || d.Realm != realm || d.SessionID == "" || d.UserID == "" {
		return nil
	}
	return &d
}

// authFailed reports an authorization failure: to the client when its
// redirect URI has been validated, to the user otherwise.
func (h *Handler) authFailed(w http.ResponseWriter, r *http.Request, a *core.Authorization, e *core.Error, redirect bool) {
	if redirect && a != nil {
		h.errorRedirect(w, r, a, e)
		return
	}
	status := e.Status
	if status < 400 || status >= 500 {
		if status >= 500 {
			status = http.StatusServiceUnavailable
		} else {
			status = http.StatusBadRequest
		}
	}
	h.errorPage(w, status, e.Description)
}

// codeRedirect sends the browser back to the client with the code, in
// Keycloak's parameters plus RFC 9207's iss.
func (h *Handler) codeRedirect(w http.ResponseWriter, r *http.Request, a *core.Authorization, g *core.CodeGrant) {
	var p params
	if a.State != "" {
		p.add("state", a.State)
	}
	p.add("session_state", g.SessionState)
	p.add("iss", h.core.Issuer(a.Realm))
	p.add("code", g.Code)
	h.redirectTo(w, r, a, p)
}

// errorRedirect is RFC 6749 §4.1.2.1: the error goes to the validated
// redirect URI, with the state.
func (h *Handler) errorRedirect(w http.ResponseWriter, r *http.Request, a *core.Authorization, e *core.Error) {
	code := e.Code
	switch {
	case e.Status >= 500:
		code = core.ServerError
	case code == core.InvalidGrant:
		// invalid_grant is a token-endpoint code; at the authorization
		// endpoint a refused login is access_denied.
		code = core.AccessDenied
	}
	var p params
	p.add("error", code)
	if e.Status < 500 {
		p.add("error_description", e.Description)
	}
	if a.State != "" {
		p.add("state", a.State)
	}
	p.add("iss", h.core.Issuer(a.Realm))
	h.redirectTo(w, r, a, p)
}

func (h *Handler) redirectTo(w http.ResponseWriter, r *http.Request, a *core.Authorization, p params) {
	if a.ResponseMode == "form_post" {
		h.formPost(w, a.RedirectURI, p)
		return
	}
	target := a.RedirectURI
	if a.ResponseMode == "fragment" {
		target += "#" + p.encode()
	} else {
		target = withQuery(target, p)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusFound)
}

// params keeps parameters in the order they were added (Keycloak's order).
type params []formField

type formField struct{ Name, Value string }

func (p *params) add(k, v string) { *p = append(*p, formField{k, v}) }

// withQuery appends p to uri's query, which it may already have.
func withQuery(uri string, p params) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + p.encode()
}

func (p params) encode() string {
	parts := make([]string, len(p))
	for i, f := range p {
		parts[i] = url.QueryEscape(f.Name) + "=" + url.QueryEscape(f.Value)
	}
	return strings.Join(parts, "&")
}

// formPost answers with response_mode=form_post (OAuth 2.0 Form Post
// Response Mode): a page whose one script posts the parameters to the
// redirect URI, which the core has checked is an http(s) URI registered
// for the client. Without script, a button does the same.
func (h *Handler) formPost(w http.ResponseWriter, action string, p params) {
	h.writePage(w, http.StatusOK, "form_post", formPostView{Action: template.URL(action), Fields: p}, formPostCSP, "no-referrer")
}

type formPostView struct {
	Action template.URL
	Fields params
}

// formPostScript is the form_post page's only script, allowed by its hash.
const formPostScript = `document.forms[0].submit()`

var formPostCSP = func() string {
	css := sha256.Sum256([]byte(pageCSS))
	js := sha256.Sum256([]byte(formPostScript))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(css[:]) + "'; " +
		"script-src 'sha256-" + base64.StdEncoding.EncodeToString(js[:]) + "'; frame-ancestors 'none'; base-uri 'none'"
}()

func (h *Handler) refuse(w http.ResponseWriter) {
	h.errorPage(w, http.StatusForbidden, "This login form has expired or did not come from this server. Go back to the application and sign in again.")
}

func (h *Handler) errorPage(w http.ResponseWriter, status int, msg string) {
	h.renderPage(w, status, "error", errorView{Message: msg})
}

type loginView struct {
	Realm, Client, Action, CSRF, Request, Error, Username string
}

type errorView struct{ Message string }

func (h *Handler) renderPage(w http.ResponseWriter, status int, name string, v any) {
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the form's own POST.
	h.writePage(w, status, name, v, pageCSP, "same-origin")
}

// writePage renders template name and sends it with the headers every
// page of this server carries: no caching, no framing, no sniffing, and
// the given Content-Security-Policy and Referrer-Policy.
func (h *Handler) writePage(w http.ResponseWriter, status int, name string, v any, csp, referrer string) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, v); err != nil {
		h.log.Error("rendering failed", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", referrer)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) seal(context string, v any) (string, error) {
	return keys.SealJSON(h.keys, context, v)
}

func (h *Handler) open(context, value string, v any) error {
	if value == "" || len(value) > 16<<10 {
		return errors.New("no value")
	}
	return keys.OpenJSON(h.keys, context, value, v)
}

func (h *Handler) cookie(name, value, path string) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: path,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	}
}

func (h *Handler) clearCookie(w http.ResponseWriter, name, path string) {
	c := h.cookie(name, "", path)
	c.MaxAge = -1
	http.SetCookie(w, c)
}

// pageCSS styles both pages; the Content-Security-Policy admits it by its
// hash and admits nothing else.
const pageCSS = `body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.3rem;margin:0 0 .3rem}p.client{color:#5a6275;margin:0 0 1.2rem}
label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #b8bfcc;border-radius:4px;font-size:1rem}
button{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#2a5bd7;color:#fff;font-size:1rem;cursor:pointer}
p.error{background:#fdecec;color:#8a1f1f;padding:.6rem;border-radius:4px}`

var pageCSP = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"frame-ancestors 'none'; base-uri 'none'"
}()

var pages = template.Must(template.New("pages").Parse(`{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>{{.}}</title><style>` + pageCSS + `</style></head>{{end}}
{{define "login"}}{{template "head" (print "Sign in to " .Realm)}}
<body><main>
<h1>Sign in to {{.Realm}}</h1>
<p class="client">to continue to {{.Client}}</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="request" value="{{.Request}}">
<label for="username">Username or email</label>
<input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main></body></html>
{{end}}
{{define "form_post"}}{{template "head" "Signing in"}}
<body><main>
<form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><p>Continue to the application.</p><button type="submit">Continue</button></noscript>
</form>
<script>` + formPostScript + `</script>
</main></body></html>
{{end}}
{{define "error"}}{{template "head" "Sign-in error"}}
<body><main>
<h1>We could not sign you in</h1>
<p class="error" role="alert">{{.Message}}</p>
</main></body></html>
{{end}}`))
