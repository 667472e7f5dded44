// Package oidc is the OpenID Connect front door, on Keycloak's paths: it
// parses Keycloak's wire format, asks the core, and renders the answer in
// Keycloak's JSON. It makes no decision of its own.
package oidc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/clientaddr"
	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/keys"
)

// maxFormBytes bounds a request body: token requests are small, and a
// client assertion or refresh token is a few kilobytes at most.
const maxFormBytes = 64 << 10

// Limiter is the rate limit this door applies; nil allows everything.
type Limiter = clientaddr.Limiter

// Handler serves the OIDC endpoints of every realm.
type Handler struct {
	core    *core.Service
	keys    *keys.Manager
	log     *slog.Logger
	limiter Limiter
	// secure marks the browser cookies Secure: the public URL is https.
	secure bool

	// preflight caches, per realm, the origins some client allows, for
	// CORS preflights (which name no client).
	preMu     sync.Mutex
	preflight map[string]realmOrigins
}

// New builds the handler; Register adds its routes to a mux.
func New(c *core.Service, k *keys.Manager, log *slog.Logger, limiter Limiter) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{core: c, keys: k, log: log, limiter: limiter,
		secure:    strings.HasPrefix(strings.ToLower(c.BaseURL()), "https://"),
		preflight: map[string]realmOrigins{}}
}

// Register adds the routes, under /realms/ and again under the legacy
// /auth/realms/ prefix that pre-Quarkus Keycloak and many scripts use.
func (h *Handler) Register(mux *http.ServeMux) {
	for _, prefix := range []string{"", "/auth"} {
		p := prefix + "/realms/{realm}"
		oc := p + "/protocol/openid-connect"
		mux.HandleFunc("GET "+p+"/.well-known/openid-configuration", h.discovery)
		mux.HandleFunc("OPTIONS "+p+"/.well-known/openid-configuration", h.publicPreflight)
		mux.HandleFunc("GET "+p, h.realmInfo)
		mux.HandleFunc("POST "+oc+"/token", h.limited(h.token))
		mux.HandleFunc("POST "+oc+"/token/introspect", h.limited(h.introspect))
		mux.HandleFunc("POST "+oc+"/revoke", h.limited(h.revoke))
		mux.HandleFunc("POST "+oc+"/logout", h.limited(h.logout))
		mux.HandleFunc("GET "+oc+"/logout", h.logoutPage)
		mux.HandleFunc("GET "+oc+"/userinfo", h.userinfo)
		mux.HandleFunc("POST "+oc+"/userinfo", h.userinfo)
		mux.HandleFunc("GET "+oc+"/certs", h.certs)
		mux.HandleFunc("OPTIONS "+oc+"/certs", h.publicPreflight)
		for _, ep := range []string{"token", "token/introspect", "revoke", "logout", "userinfo"} {
			mux.HandleFunc("OPTIONS "+oc+"/"+ep, h.clientPreflight)
		}
		mux.HandleFunc("GET "+oc+"/auth", h.authorize)
		mux.HandleFunc("POST "+oc+"/auth", h.authorize)
		mux.HandleFunc("POST "+p+"/login-actions/authenticate", h.limited(h.loginAction))
		mux.HandleFunc(oc+"/{rest...}", h.notFound)
	}
}

func (h *Handler) realmName(r *http.Request) string {
	return h.core.ResolveRealm(r.PathValue("realm"))
}

// endpoint is the public URL of one of realm's endpoints (an accepted
// audience of a client assertion sent there).
func (h *Handler) endpoint(realm, path string) string {
	return h.core.Issuer(realm) + "/protocol/openid-connect/" + path
}

// limited applies the per-address token bucket.
func (h *Handler) limited(next http.HandlerFunc) http.HandlerFunc {
	if h.limiter == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, retry := h.limiter.Allow(clientaddr.Of(r)); !ok {
			w.Header().Set("Retry-After", itoa(retry))
			writeError(w, &core.Error{Code: core.TooManyRequests, Description: "Too many requests", Status: http.StatusTooManyRequests})
			return
		}
		next(w, r)
	}
}

// parseForm reads an application/x-www-form-urlencoded body, strictly:
// a bounded size, and every parameter at most once (RFC 6749 §3.2).
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *core.Error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &core.Error{Code: core.InvalidRequest, Description: "Content-Type must be application/x-www-form-urlencoded", Status: 400}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &core.Error{Code: core.InvalidRequest, Description: "Request body too large", Status: 413}
		}
		return nil, &core.Error{Code: core.InvalidRequest, Description: "Malformed form body", Status: 400}
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, &core.Error{Code: core.InvalidRequest, Description: "Duplicate parameter: " + safeName(k), Status: 400}
		}
	}
	return r.PostForm, nil
}

// safeName keeps a parameter name printable and short for an error
// message.
func safeName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// clientAuth reads client credentials from HTTP Basic (RFC 6749 §2.3.1:
// both parts form-urlencoded) and from the form.
func clientAuth(r *http.Request, form url.Values) (core.ClientAuth, *core.Error) {
	ca := core.ClientAuth{
		ClientID:      form.Get("client_id"),
		Secret:        form.Get("client_secret"),
		AssertionType: form.Get("client_assertion_type"),
		Assertion:     form.Get("client_assertion"),
	}
	if authz := r.Header.Get("Authorization"); authz != "" {
		id, secret, ok := parseBasic(authz)
		if ok {
			ca.Basic, ca.BasicID = true, id
			if secret != "" || ca.Secret == "" {
				ca.Secret = secret
			}
		} else if scheme, _, _ := strings.Cut(authz, " "); strings.EqualFold(scheme, "basic") {
			return ca, &core.Error{Code: core.InvalidClient, Description: "Malformed Basic authorization header", Status: 401}
		}
	}
	// A public client's refresh in seed 002 sends client_assertion_type
	// without an assertion: a parameter the server does not use is ignored.
	if ca.Assertion == "" {
		ca.AssertionType = ""
	}
	return ca, nil
}

func parseBasic(h string) (id, secret string, ok bool) {
	scheme, rest, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", false
	}
	id, secret, found = strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if u, err := url.QueryUnescape(id); err == nil {
		id = u
	}
	if u, err := url.QueryUnescape(secret); err == nil {
		secret = u
	}
	return id, secret, id != ""
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	form, e := parseForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	ca, e := clientAuth(r, form)
	if e != nil {
		writeError(w, e)
		return
	}
	realm := h.realmName(r)
	h.cors(w, r, realm, clientIDOf(ca))
	resp, err := h.core.Token(r.Context(), core.TokenRequest{
		Realm:        realm,
		GrantType:    form.Get("grant_type"),
		Client:       ca,
		Username:     form.Get("username"),
		Password:     form.Get("password"),
		RefreshToken: form.Get("refresh_token"),
		Scope:        form.Get("scope"),
		Code:         form.Get("code"),
		RedirectURI:  form.Get("redirect_uri"),
		CodeVerifier: form.Get("code_verifier"),
		Endpoint:     h.endpoint(realm, "token"),
		ClientIP:     clientaddr.Of(r),
		UserAgent:    r.UserAgent(),
	})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	form, e := parseForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	ca, e := clientAuth(r, form)
	if e != nil {
		writeError(w, e)
		return
	}
	realm := h.realmName(r)
	h.cors(w, r, realm, clientIDOf(ca))
	out, err := h.core.Introspect(r.Context(), realm, ca, form.Get("token"), h.endpoint(realm, "token/introspect"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	form, e := parseForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	ca, e := clientAuth(r, form)
	if e != nil {
		writeError(w, e)
		return
	}
	realm := h.realmName(r)
	h.cors(w, r, realm, clientIDOf(ca))
	if err := h.core.Revoke(r.Context(), realm, ca, form.Get("token"), h.endpoint(realm, "revoke")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	form, e := parseForm(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	ca, e := clientAuth(r, form)
	if e != nil {
		writeError(w, e)
		return
	}
	realm := h.realmName(r)
	h.cors(w, r, realm, clientIDOf(ca))
	if err := h.core.Logout(r.Context(), realm, ca, form.Get("refresh_token"), h.endpoint(realm, "logout")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// logoutPage answers a browser's front-channel logout (OIDC RP-Initiated
// Logout 1.0). It always ends the browser's single sign-on. With an
// id_token_hint, a token this realm issued, it also ends that login and
// every session single sign-on joined to it, as Keycloak does, and may
// send the browser on to post_logout_redirect_uri (with state) if the
// client registered it. Without a hint, the sessions themselves stay: a
// GET that any page can make a browser send must not end them (Keycloak
// asks for a confirmation there); they end by the back-channel logout,
// revocation or the portal.
func (h *Handler) logoutPage(w http.ResponseWriter, r *http.Request) {
	realm := h.realmName(r)
	q := r.URL.Query()
	clientID, redirect := q.Get("client_id"), q.Get("post_logout_redirect_uri")
	var hint *core.LogoutHint
	if raw := q.Get("id_token_hint"); raw != "" {
		var e *core.Error
		if hint, e = h.core.ParseLogoutHint(r.Context(), realm, raw); e != nil {
			h.authFailed(w, r, nil, e, false)
			return
		}
		if clientID != "" && clientID != hint.ClientID {
			h.errorPage(w, http.StatusBadRequest, "Parameter client_id different than the client for which ID Token was issued")
			return
		}
		clientID = hint.ClientID
	}
	if redirect != "" {
		if clientID == "" {
			h.errorPage(w, http.StatusBadRequest, "Either the parameter client_id or id_token_hint is required when post_logout_redirect_uri is used.")
			return
		}
		if !h.core.PostLogoutRedirectAllowed(r.Context(), realm, clientID, redirect) {
			h.errorPage(w, http.StatusBadRequest, "Invalid redirect uri")
			return
		}
	}
	if hint != nil {
		if e := h.core.EndLogin(r.Context(), realm, hint.SessionID); e != nil {
			h.authFailed(w, r, nil, e, false)
			return
		}
	}
	h.clearCookie(w, ssoCookie, realmBase(r))
	w.Header().Set("Cache-Control", "no-store")
	if redirect != "" {
		if st := q.Get("state"); st != "" {
			var p params
			p.add("state", st)
			redirect = withQuery(redirect, p)
		}
		http.Redirect(w, r, redirect, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("<!doctype html><title>Logged out</title><p>You are logged out.</p>\n"))
}

func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request) {
	realm := h.realmName(r)
	token, ok := BearerToken(r)
	if !ok && r.Method == http.MethodPost {
		if form, e := parseForm(w, r); e == nil {
			token = form.Get("access_token")
		}
	}
	if token != "" && r.Header.Get("Origin") != "" {
		if p, err := h.core.Authenticate(r.Context(), realm, token); err == nil {
			h.cors(w, r, realm, p.ClientID)
		}
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+quoteSafe(realm)+`"`)
		writeError(w, &core.Error{Code: core.InvalidRequest, Description: "Token not provided", Status: 401})
		return
	}
	out, err := h.core.UserInfo(r.Context(), realm, token)
	if err != nil {
		var ce *core.Error
		if errors.As(err, &ce) && ce.Code == core.InvalidToken {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+quoteSafe(realm)+`", error="invalid_token", error_description="`+quoteSafe(ce.Description)+`"`)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// BearerToken returns the token of an "Authorization: Bearer" header (RFC
// 6750 §2.1; the scheme is case-insensitive).
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return '\''
		}
		return r
	}, s)
}

func (h *Handler) certs(w http.ResponseWriter, r *http.Request) {
	realm := h.realmName(r)
	if _, err := h.core.Realm(r.Context(), realm); err != nil {
		writeError(w, realmError(err))
		return
	}
	doc, err := h.keys.JWKS(r.Context(), realm)
	if err != nil {
		h.log.Error("jwks", "realm", realm, "err", err)
		writeError(w, &core.Error{Code: core.ServerError, Description: "internal error", Status: 500})
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(doc)
}

func realmError(err error) *core.Error {
	return &core.Error{Code: "Realm does not exist", Description: "Realm does not exist", Status: 404}
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, &core.Error{Code: "not_found", Description: "Unknown endpoint", Status: 404})
}

// writeError renders an error in Keycloak's {"error","error_description"}
// shape. Only the core's own failures are 5xx; their text is generic.
func writeError(w http.ResponseWriter, err error) {
	var ce *core.Error
	if !errors.As(err, &ce) {
		ce = &core.Error{Code: core.ServerError, Description: "internal error", Status: 500}
	}
	status := ce.Status
	if status == 0 {
		status = 400
	}
	if ce.RetryAfter > 0 {
		w.Header().Set("Retry-After", itoa(ce.RetryAfter))
	}
	writeJSON(w, status, map[string]string{"error": ce.Code, "error_description": ce.Description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":"server_error","error_description":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
