// Package fusio is the Fusio-style front door: the consumer API a Fusio
// developer portal and its users' scripts talk to (/consumer/login,
// /consumer/register, /consumer/activate, /consumer/app, /consumer/scope)
// and Fusio's OAuth2 token endpoint (/authorization/token). It parses
// Fusio's wire format and renders Fusio's answers; every decision is the
// core's.
//
// Errors on /consumer/* are Fusio's {"success": false, "message": ...};
// errors on /authorization/token are RFC 6749 §5.2 JSON.
package fusio

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientaddr"
	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/store"
)

// maxBody bounds every request body this door reads.
const maxBody = 64 << 10

// Options configures the door.
type Options struct {
	// Realm is the realm the door serves (Fusio paths name none).
	Realm  string
	Logger *slog.Logger
	// Mailer sends activation mails. When nil, SMTPURL (see
	// core.ParseSMTPURL) configures one; with neither there is no mail.
	Mailer  core.Mailer
	SMTPURL string
	// Dev writes activation links to the log when there is no Mailer, so
	// that registration with email activation works on a laptop. Never
	// set it in production: the log then holds live activation tokens.
	Dev bool
	// ActivationURL is the link sent to new users, with "{token}" where
	// the token goes (a portal page that posts it to /consumer/activate).
	// Default: the core's BaseURL + "/consumer/activate?token={token}",
	// whose GET page does that post.
	ActivationURL string
	// Limiter, when set, is asked before every request that checks a
	// password, a secret or a token (login, registration, activation, the
	// token endpoint); nil allows everything. The server passes the one
	// its OIDC token endpoints use, so that an address has one budget.
	Limiter Limiter
}

// Limiter is the rate limit this door applies; nil allows everything.
type Limiter = clientaddr.Limiter

// Handler serves the Fusio paths.
type Handler struct {
	core *core.Service
	opt  Options
	log  *slog.Logger
}

// New builds the door; Register adds its routes to a mux.
func New(c *core.Service, opt Options) *Handler {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Mailer == nil && opt.SMTPURL != "" {
		m, err := core.ParseSMTPURL(opt.SMTPURL)
		if err != nil {
			// main validates the flag before start; a bad value that gets
			// here leaves mail off, and registrations that need it are
			// refused with a clear message.
			log.Error("fusio: mail disabled", "err", err)
		} else {
			opt.Mailer = m
		}
	}
	return &Handler{core: c, opt: opt, log: log}
}

// Register adds the door's routes. They are more specific than the
// gateway's catch-all "/", so they win over it.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /consumer/login", h.limited(h.login, h.failCore))
	mux.HandleFunc("PUT /consumer/login", h.limited(h.refreshLogin, h.failCore))
	mux.HandleFunc("POST /consumer/register", h.limited(h.register, h.failCore))
	mux.HandleFunc("POST /consumer/activate", h.limited(h.activate, h.failCore))
	mux.HandleFunc("GET /consumer/activate", h.activatePage)
	mux.HandleFunc("GET /consumer/scope", h.scopes)
	mux.HandleFunc("GET /consumer/app", h.listApps)
	mux.HandleFunc("POST /consumer/app", h.createApp)
	mux.HandleFunc("GET /consumer/app/{app_id}", h.getApp)
	mux.HandleFunc("DELETE /consumer/app/{app_id}", h.deleteApp)
	mux.HandleFunc("POST /authorization/token", h.limited(h.token, h.oauthFail))
}

// limited applies Options.Limiter to next; refuse answers a refusal in the
// path's own error shape.
func (h *Handler) limited(next http.HandlerFunc, refuse func(http.ResponseWriter, error)) http.HandlerFunc {
	if h.opt.Limiter == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, retry := h.opt.Limiter.Allow(clientaddr.Of(r)); !ok {
			refuse(w, &core.Error{Code: core.TooManyRequests, Description: "Too many requests",
				Status: http.StatusTooManyRequests, RetryAfter: retry})
			return
		}
		next(w, r)
	}
}

// ---- rendering ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// message is Fusio's answer shape for success and failure alike.
type message struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

func fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, message{Success: false, Message: msg})
}

// failCore renders a core decision in Fusio's shape. Anything that is not
// a core decision is an internal failure and says nothing more.
func (h *Handler) failCore(w http.ResponseWriter, err error) {
	var ce *core.Error
	if !errors.As(err, &ce) {
		h.log.Error("fusio: unexpected error", "err", err)
		fail(w, http.StatusInternalServerError, "Internal error")
		return
	}
	if ce.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ce.RetryAfter))
	}
	status := ce.Status
	if status < 400 || status > 599 {
		status = http.StatusBadRequest
	}
	if status >= 500 && ce.Code == core.ServerError {
		fail(w, status, "Internal error")
		return
	}
	fail(w, status, ce.Description)
}

// ---- request parsing ----

// errBadJSON is the one answer to a body that is not the JSON object a
// consumer endpoint expects.
var errBadJSON = errors.New("invalid JSON body")

// decodeJSON reads one JSON object (at most maxBody bytes) into v.
// Unknown fields are allowed: Fusio clients send more than is read here
// (captcha, url).
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return errBadJSON
	}
	if err := json.Unmarshal(stripTrailingCommas(body), v); err != nil {
		return errBadJSON
	}
	return nil
}

// stripTrailingCommas drops a comma that directly precedes a closing
// brace or bracket outside strings. Fusio's own documentation shows the
// consumer login body with one ({"username": ..., "password": ...,}),
// and scripts copied from it must work.
func stripTrailingCommas(b []byte) []byte {
	out := make([]byte, 0, len(b))
	inStr, esc := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			out = append(out, c)
			continue
		}
		if c == '"' {
			inStr = true
		}
		if c == ',' {
			j := i + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
				j++
			}
			if j < len(b) && (b[j] == '}' || b[j] == ']') {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// loginRequest is Fusio's consumer login body.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ParseLogin decodes a consumer login body. Exported for the fuzz target
// and for doors that share Fusio's format.
func ParseLogin(body []byte) (username, password string, err error) {
	var in loginRequest
	if len(body) > maxBody || json.Unmarshal(stripTrailingCommas(body), &in) != nil {
		return "", "", errBadJSON
	}
	return in.Username, in.Password, nil
}

// registerRequest is Fusio's registration body; "name" is the username.
type registerRequest struct {
	Name      string `json:"name"`
	Email     string `json:"email"`
	Password  string `json:"password"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
}

// ParseRegistration decodes a registration body into a core.Registration
// for realm.
func ParseRegistration(realm string, body []byte) (core.Registration, error) {
	var in registerRequest
	if len(body) > maxBody || json.Unmarshal(stripTrailingCommas(body), &in) != nil {
		return core.Registration{}, errBadJSON
	}
	return core.Registration{Realm: realm, Username: in.Name, Email: in.Email, Password: in.Password,
		FirstName: in.FirstName, LastName: in.LastName}, nil
}

// scopeList reads scopes as Fusio clients send them: an array of names,
// or one string separated by commas or spaces.
type scopeList []string

func (s *scopeList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = core.SplitScopes(one)
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// ---- consumer login ----

// loginResponse is Fusio's consumer login answer.
type loginResponse struct {
	Token        string `json:"token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	username, pw, err := ParseLogin(body)
	if err != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	ctx := r.Context()
	u, ce := h.core.CheckPassword(ctx, h.opt.Realm, username, pw, clientaddr.Of(r))
	if ce != nil {
		// Unknown user, wrong password and a locked account give one
		// answer (the core spends the same time on each).
		if ce.Code == core.InvalidGrant && ce.Status == http.StatusUnauthorized {
			fail(w, http.StatusBadRequest, "Invalid name or password")
			return
		}
		h.failCore(w, ce)
		return
	}
	if err := h.core.EnsurePortalClient(ctx, h.opt.Realm); err != nil {
		h.failCore(w, err)
		return
	}
	resp, ce := h.core.Login(ctx, core.LoginRequest{Realm: h.opt.Realm, ClientID: core.PortalClientID, UserID: u.ID,
		IP: clientaddr.Of(r), UserAgent: r.UserAgent()})
	if ce != nil {
		h.failCore(w, ce)
		return
	}
	h.renderLogin(w, r.Context(), u.ID, resp)
}

func (h *Handler) renderLogin(w http.ResponseWriter, ctx context.Context, userID string, resp *core.TokenResponse) {
	scopes, err := h.core.UserScopes(ctx, h.opt.Realm, userID)
	if err != nil {
		h.failCore(w, err)
		return
	}
	writeJSON(w, http.StatusOK, loginResponse{Token: resp.AccessToken, ExpiresIn: resp.ExpiresIn,
		RefreshToken: resp.RefreshToken, Scope: strings.Join(scopes, ",")})
}

// refreshLogin is Fusio's PUT /consumer/login {"refresh_token": ...}.
func (h *Handler) refreshLogin(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	if decodeJSON(r, &in) != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	if in.RefreshToken == "" {
		fail(w, http.StatusBadRequest, "Missing refresh_token")
		return
	}
	ctx := r.Context()
	resp, err := h.core.Token(ctx, core.TokenRequest{Realm: h.opt.Realm, GrantType: core.GrantRefreshToken,
		Client: core.ClientAuth{ClientID: core.PortalClientID}, RefreshToken: in.RefreshToken,
		ClientIP: clientaddr.Of(r), UserAgent: r.UserAgent()})
	if err != nil {
		var ce *core.Error
		if errors.As(err, &ce) && ce.Status < 500 {
			fail(w, http.StatusBadRequest, ce.Description)
			return
		}
		h.failCore(w, err)
		return
	}
	p, err := h.core.Authenticate(ctx, h.opt.Realm, resp.AccessToken)
	if err != nil {
		h.failCore(w, err)
		return
	}
	h.renderLogin(w, ctx, p.Subject, resp)
}

// ---- registration ----

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	reg, err := ParseRegistration(h.opt.Realm, body)
	if err != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	u, err := h.core.Register(r.Context(), reg, h.deliverer())
	if err != nil {
		h.failCore(w, err)
		return
	}
	msg := "Registration was successful"
	if len(u.RequiredActions) > 0 {
		msg = "Registration was successful; we have sent you an email to activate your account"
	}
	writeJSON(w, http.StatusCreated, message{Success: true, Message: msg})
}

// deliverer picks how activation tokens reach new users: mail, the log in
// development, or nothing (the core then refuses registrations that need
// activation).
func (h *Handler) deliverer() core.DeliverActivation {
	link := func(token string) string {
		tpl := h.opt.ActivationURL
		if tpl == "" {
			tpl = h.core.BaseURL() + "/consumer/activate?token={token}"
		}
		return strings.ReplaceAll(tpl, "{token}", url.QueryEscape(token))
	}
	switch {
	case h.opt.Mailer != nil:
		return func(ctx context.Context, u store.User, token string) error {
			body := "Hello " + u.Username + ",\n\nplease activate your account by opening this link within 24 hours:\n\n" +
				link(token) + "\n\nIf you did not register, ignore this mail.\n"
			return h.opt.Mailer.Send(ctx, u.Email, "Activate your account", body)
		}
	case h.opt.Dev:
		return func(ctx context.Context, u store.User, token string) error {
			// Development only (--dev without --smtp-url): the link is
			// the mail that cannot be sent.
			h.log.Warn("development mode: activation link not mailed (no --smtp-url)",
				"realm", h.opt.Realm, "user", u.Username, "link", link(token))
			return nil
		}
	}
	return nil
}

func (h *Handler) activate(w http.ResponseWriter, r *http.Request) {
	var token string
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			fail(w, http.StatusBadRequest, "Invalid form body")
			return
		}
		token = r.PostForm.Get("token")
	} else {
		var in struct {
			Token string `json:"token"`
		}
		if decodeJSON(r, &in) != nil {
			fail(w, http.StatusBadRequest, "Invalid JSON body")
			return
		}
		token = in.Token
	}
	if token == "" {
		fail(w, http.StatusBadRequest, "Missing token")
		return
	}
	if err := h.core.Activate(r.Context(), h.opt.Realm, token); err != nil {
		h.failCore(w, err)
		return
	}
	writeJSON(w, http.StatusOK, message{Success: true, Message: "Account successfully activated"})
}

var activatePageTpl = template.Must(template.New("activate").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Activate your account</title></head>
<body><form method="post" action="/consumer/activate">
<input type="hidden" name="token" value="{{.}}">
<button type="submit">Activate my account</button>
</form></body></html>
`))

// activatePage answers the link in the activation mail with a button that
// posts the token: a GET must not activate, because mail scanners follow
// links.
func (h *Handler) activatePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
	_ = activatePageTpl.Execute(w, r.URL.Query().Get("token"))
}

// ---- consumer API (bearer token from /consumer/login) ----

// consumer authenticates a consumer-API call. Only tokens of the portal
// client (from /consumer/login) manage apps: an app's own token must not
// be able to mint more apps.
func (h *Handler) consumer(w http.ResponseWriter, r *http.Request) (*core.Principal, bool) {
	v := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(v, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+h.opt.Realm+`"`)
		fail(w, http.StatusUnauthorized, "Missing authorization header")
		return nil, false
	}
	p, err := h.core.Authenticate(r.Context(), h.opt.Realm, tok)
	if err != nil {
		var ce *core.Error
		if errors.As(err, &ce) && ce.Status < 500 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+h.opt.Realm+`", error="invalid_token"`)
			fail(w, http.StatusUnauthorized, "Invalid access token: "+ce.Description)
			return nil, false
		}
		h.failCore(w, err)
		return nil, false
	}
	if p.ClientID != core.PortalClientID {
		fail(w, http.StatusForbidden, "The consumer API needs a token from /consumer/login")
		return nil, false
	}
	return p, true
}

// appJSON is an app as Fusio's consumer API lists it. The secret is never
// in it: it is shown once, when the app is created.
type appJSON struct {
	ID     string   `json:"id"`
	Status int      `json:"status"`
	Name   string   `json:"name"`
	AppKey string   `json:"appKey"`
	Scopes []string `json:"scopes"`
	Date   string   `json:"date"`
}

// Fusio's app status values.
const (
	statusActive      = 1
	statusDeactivated = 3
)

func renderApp(c store.Client) appJSON {
	st := statusActive
	if !c.Enabled {
		st = statusDeactivated
	}
	sc := c.Scopes
	if sc == nil {
		sc = []string{}
	}
	return appJSON{ID: c.ID, Status: st, Name: c.Name, AppKey: c.ClientID, Scopes: sc, Date: c.Created.UTC().Format(time.RFC3339)}
}

// collection is Fusio's list envelope.
type collection[T any] struct {
	TotalResults int `json:"totalResults"`
	StartIndex   int `json:"startIndex"`
	ItemsPerPage int `json:"itemsPerPage"`
	Entry        []T `json:"entry"`
}

func newCollection[T any](entries []T) collection[T] {
	if entries == nil {
		entries = []T{}
	}
	return collection[T]{TotalResults: len(entries), ItemsPerPage: len(entries), Entry: entries}
}

// consumerData authenticates a consumer-API call and loads, with load,
// what belongs to its user. On a failure it has answered and ok is false.
func consumerData[T any](h *Handler, w http.ResponseWriter, r *http.Request,
	load func(ctx context.Context, realm, userID string) (T, error)) (data T, ok bool) {
	p, ok := h.consumer(w, r)
	if !ok {
		return data, false
	}
	data, err := load(r.Context(), h.opt.Realm, p.Subject)
	if err != nil {
		h.failCore(w, err)
		return data, false
	}
	return data, true
}

func (h *Handler) listApps(w http.ResponseWriter, r *http.Request) {
	apps, ok := consumerData(h, w, r, h.core.ListApps)
	if !ok {
		return
	}
	out := make([]appJSON, 0, len(apps))
	for _, a := range apps {
		out = append(out, renderApp(a))
	}
	writeJSON(w, http.StatusOK, newCollection(out))
}

func (h *Handler) getApp(w http.ResponseWriter, r *http.Request) {
	apps, ok := consumerData(h, w, r, h.core.ListApps)
	if !ok {
		return
	}
	id := r.PathValue("app_id")
	for _, a := range apps {
		if a.ID == id || a.ClientID == id {
			writeJSON(w, http.StatusOK, renderApp(a))
			return
		}
	}
	fail(w, http.StatusNotFound, "Could not find app")
}

// createdApp is the answer to an app creation: Fusio's message plus the
// credentials, shown this once.
type createdApp struct {
	Success   bool     `json:"success"`
	Message   string   `json:"message"`
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	AppKey    string   `json:"appKey"`
	AppSecret string   `json:"appSecret"`
	Scopes    []string `json:"scopes"`
}

func (h *Handler) createApp(w http.ResponseWriter, r *http.Request) {
	p, ok := h.consumer(w, r)
	if !ok {
		return
	}
	var in struct {
		Name   string    `json:"name"`
		Scopes scopeList `json:"scopes"`
	}
	if decodeJSON(r, &in) != nil {
		fail(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	c, secret, err := h.core.CreateApp(r.Context(), h.opt.Realm, p.Subject, in.Name, in.Scopes)
	if err != nil {
		h.failCore(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, createdApp{Success: true, Message: "App successfully created",
		ID: c.ID, Name: c.Name, AppKey: c.ClientID, AppSecret: secret, Scopes: c.Scopes})
}

func (h *Handler) deleteApp(w http.ResponseWriter, r *http.Request) {
	p, ok := h.consumer(w, r)
	if !ok {
		return
	}
	if err := h.core.RevokeApp(r.Context(), h.opt.Realm, p.Subject, r.PathValue("app_id")); err != nil {
		h.failCore(w, err)
		return
	}
	writeJSON(w, http.StatusOK, message{Success: true, Message: "App successfully deleted"})
}

type scopeJSON struct {
	Name string `json:"name"`
}

func (h *Handler) scopes(w http.ResponseWriter, r *http.Request) {
	sc, ok := consumerData(h, w, r, h.core.UserScopes)
	if !ok {
		return
	}
	out := make([]scopeJSON, 0, len(sc))
	for _, s := range sc {
		out = append(out, scopeJSON{Name: s})
	}
	writeJSON(w, http.StatusOK, newCollection(out))
}

// ---- OAuth2 token endpoint ----

// tokenResponse is Fusio's token answer; token_type is lowercase, as
// Fusio writes it.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (h *Handler) oauthFail(w http.ResponseWriter, err error) {
	var ce *core.Error
	if !errors.As(err, &ce) {
		h.log.Error("fusio: unexpected token error", "err", err)
		writeJSON(w, http.StatusInternalServerError, oauthError{Error: core.ServerError, Description: "internal error"})
		return
	}
	status := ce.Status
	if status < 400 || status > 599 {
		status = http.StatusBadRequest
	}
	if ce.Code == core.InvalidClient {
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="`+h.opt.Realm+`"`)
	}
	if ce.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ce.RetryAfter))
	}
	writeJSON(w, status, oauthError{Error: ce.Code, Description: ce.Description})
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: core.InvalidRequest, Description: "Invalid form body"})
		return
	}
	f := r.PostForm
	id, secret, ok := r.BasicAuth()
	if !ok {
		// RFC 6749 §2.3.1 allows the credentials in the body too.
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	resp, err := h.core.AppToken(r.Context(), core.AppTokenRequest{
		Realm: h.opt.Realm, GrantType: f.Get("grant_type"), BasicID: id, BasicSecret: secret,
		RefreshToken: f.Get("refresh_token"), Scope: f.Get("scope"), IP: clientaddr.Of(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		h.oauthFail(w, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: resp.AccessToken, TokenType: "bearer", ExpiresIn: resp.ExpiresIn,
		RefreshToken: resp.RefreshToken, Scope: strings.Join(resp.Scopes, ",")})
}
