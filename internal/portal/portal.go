// Package portal is the developer portal's profile panel: a server-rendered
// sign-in page and, once signed in, who the user is, their organizations
// with the membership ids the gateway's UserID header takes, their active
// sessions with a button to end each, and, for a renewable account, the
// renewable refresh token with a Copy button.
//
// It works without JavaScript; the one inline script (the Copy button) is
// allowed by its hash in the Content-Security-Policy and nothing else is.
// The portal session lives in a cookie sealed with the master key
// (AES-256-GCM): HttpOnly, SameSite=Lax, Secure when the public URL is
// https. Every POST carries a CSRF token that must match the one sealed in
// the cookie (or, for the sign-in form, a random double-submit cookie), and
// a cross-site Origin is refused. Decisions (the password, the session, who
// may end which session, who is renewable) are the core's.
package portal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientaddr"
	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/formtoken"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/store"
)

//go:embed templates
var files embed.FS

// Sealer encrypts and authenticates the session cookie (keys.Manager's
// Seal and Open, with the master key).
type Sealer interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Options configures the portal.
type Options struct {
	// DefaultRealm is served at /portal/; other realms at
	// /realms/{realm}/portal/.
	DefaultRealm string
	// PublicURL decides whether cookies are Secure (https).
	PublicURL string
	Sealer    Sealer
	Logger    *slog.Logger
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Limiter, when set, is asked before every sign-in attempt; nil
	// allows everything. The server passes the one its other credential
	// endpoints use, so that an address has one budget.
	Limiter Limiter
}

// Limiter is the rate limit this door applies; nil allows everything.
type Limiter = clientaddr.Limiter

// Handler serves the portal pages.
type Handler struct {
	core   *core.Service
	opts   Options
	log    *slog.Logger
	secure bool
	tmpl   *template.Template
	css    []byte
	script template.JS
	csp    string
}

// Cookie names. The session cookie's Path is the portal's base path, so
// that the portals of two realms keep separate sessions.
const (
	sessionCookie = "gatehouse_portal"
	preCookie     = "gatehouse_portal_csrf"
)

// sealContext is sealed in front of the cookie's JSON, so that no other
// value sealed with the master key can pass for a portal cookie.
const sealContext = "gatehouse-portal-session-v1\x00"

// maxForm bounds a portal form body.
const maxForm = 16 << 10

// New builds the portal.
func New(c *core.Service, opts Options) (*Handler, error) {
	if opts.Sealer == nil {
		return nil, errors.New("portal: a Sealer is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tmpl, err := template.ParseFS(files, "templates/page.html")
	if err != nil {
		return nil, err
	}
	css, err := files.ReadFile("templates/portal.css")
	if err != nil {
		return nil, err
	}
	js, err := files.ReadFile("templates/copy.js")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(js)
	h := &Handler{
		core:   c,
		opts:   opts,
		log:    opts.Logger,
		secure: strings.HasPrefix(strings.ToLower(opts.PublicURL), "https://"),
		tmpl:   tmpl,
		css:    css,
		script: template.JS(js),
		csp: "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
			"script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	}
	return h, nil
}

// MustNew is New for wiring code whose options are fixed at build time.
func MustNew(c *core.Service, opts Options) *Handler {
	h, err := New(c, opts)
	if err != nil {
		panic(err)
	}
	return h
}

// Register adds the portal's routes: /portal/ for the default realm and
// /realms/{realm}/portal/ for any realm.
func (h *Handler) Register(mux *http.ServeMux) {
	def := func(r *http.Request) (string, string) { return h.opts.DefaultRealm, "/portal/" }
	named := func(r *http.Request) (string, string) {
		realm := r.PathValue("realm")
		return realm, "/realms/" + url.PathEscape(realm) + "/portal/"
	}
	for _, p := range []struct {
		prefix string
		where  func(*http.Request) (string, string)
	}{{"/portal", def}, {"/realms/{realm}/portal", named}} {
		where := p.where
		mux.HandleFunc("GET "+p.prefix, func(w http.ResponseWriter, r *http.Request) {
			_, base := where(r)
			http.Redirect(w, r, base, http.StatusSeeOther)
		})
		mux.HandleFunc("GET "+p.prefix+"/{$}", func(w http.ResponseWriter, r *http.Request) { h.page(w, r, where) })
		mux.HandleFunc("GET "+p.prefix+"/portal.css", h.stylesheet)
		mux.HandleFunc("POST "+p.prefix+"/login", func(w http.ResponseWriter, r *http.Request) {
			if h.limited(w, r, where) {
				return
			}
			h.login(w, r, where)
		})
		mux.HandleFunc("POST "+p.prefix+"/logout", func(w http.ResponseWriter, r *http.Request) { h.logout(w, r, where) })
		mux.HandleFunc("POST "+p.prefix+"/sessions/end", func(w http.ResponseWriter, r *http.Request) { h.endSession(w, r, where) })
	}
}

// cookieData is what the sealed session cookie holds. RefreshToken is
// kept only for renewable accounts, whose panel shows it.
type cookieData struct {
	Realm        string `json:"r"`
	SessionID    string `json:"s"`
	UserID       string `json:"u"`
	CSRF         string `json:"c"`
	RefreshToken string `json:"t,omitempty"`
}

// view is what the page template renders.
type view struct {
	Title, RealmDisplay, Base string
	CSRF                      string
	Error, Notice             string
	Username                  string // prefilled on a failed sign-in
	User                      *store.User
	FullName                  string
	Orgs                      []orgRow
	Sessions                  []sessionRow
	Renewable                 bool
	RenewableToken            string
	Script                    template.JS
}

type orgRow struct{ Name, Alias, MembershipID string }

type sessionRow struct {
	ID, Started, LastSeen, Client, IP string
	Offline, Current                  bool
}

func (h *Handler) setHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the portal's own form posts.
	hd.Set("Referrer-Policy", "same-origin")
}

func (h *Handler) stylesheet(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(h.css)
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, v *view) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, v); err != nil {
		h.log.Error("portal: rendering failed", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.setHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) realmDisplay(ctx context.Context, realm string) (string, bool) {
	r, err := h.core.Realm(ctx, realm)
	if err != nil || !r.Enabled {
		return "", false
	}
	if r.Settings.DisplayName != "" {
		return r.Settings.DisplayName, true
	}
	return r.Name, true
}

// page shows the panel to a signed-in user and the sign-in form otherwise.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, where func(*http.Request) (string, string)) {
	realm, base := where(r)
	display, ok := h.realmDisplay(r.Context(), realm)
	if !ok {
		h.render(w, http.StatusNotFound, "refused", &view{Base: base, Error: "There is no portal here."})
		return
	}
	cd, sess, u := h.current(r, realm)
	if u == nil {
		if cd != nil { // a cookie whose session ended: drop it
			h.clearCookie(w, sessionCookie, base)
		}
		h.signinPage(w, r, http.StatusOK, realm, display, base, "", "")
		return
	}
	h.panel(w, r, display, base, cd, sess, u)
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request, status int, realm, display, base, errMsg, username string) {
	// The sign-in form's CSRF token: a random value in a cookie that the
	// form must echo (double submit). A cross-site page can neither read
	// the cookie nor set it.
	token := ""
	if c, err := r.Cookie(preCookie); err == nil && formtoken.Valid(c.Value) {
		token = c.Value
	} else {
		token = formtoken.New()
		http.SetCookie(w, h.cookie(preCookie, token, base, 0))
	}
	h.render(w, status, "page", &view{
		Title: "Sign in", RealmDisplay: display, Base: base, CSRF: token,
		Error: errMsg, Username: username,
	})
}

func (h *Handler) panel(w http.ResponseWriter, r *http.Request, display, base string, cd *cookieData, sess *store.Session, u *store.User) {
	ctx := r.Context()
	v := &view{Title: "User profile", RealmDisplay: display, Base: base, CSRF: cd.CSRF, User: u,
		FullName: strings.TrimSpace(u.FirstName + " " + u.LastName)}
	if rl, err := h.core.Realm(ctx, cd.Realm); err == nil {
		orgs := map[string]store.Organization{}
		for _, o := range rl.Settings.Organizations {
			orgs[o.ID] = o
		}
		for _, m := range u.Memberships {
			o, ok := orgs[m.OrgID]
			if !ok {
				continue
			}
			v.Orgs = append(v.Orgs, orgRow{Name: o.Name, Alias: o.Alias, MembershipID: m.ID})
		}
	}
	list, e := h.core.UserSessions(ctx, cd.Realm, u.ID)
	if e != nil {
		h.render(w, http.StatusInternalServerError, "refused", &view{Base: base, Error: "Sessions could not be listed; try again."})
		return
	}
	for _, x := range list {
		v.Sessions = append(v.Sessions, sessionRow{
			ID: x.ID, Started: when(x.Started), LastSeen: when(x.LastSeen), Client: x.ClientID,
			IP: x.IP, Offline: x.Offline, Current: x.ID == sess.ID,
		})
	}
	if core.IsRenewable(u) && cd.RefreshToken != "" {
		v.Renewable, v.RenewableToken, v.Script = true, cd.RefreshToken, h.script
	}
	h.render(w, http.StatusOK, "page", v)
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request, where func(*http.Request) (string, string)) {
	realm, base := where(r)
	display, ok := h.realmDisplay(r.Context(), realm)
	if !ok {
		h.render(w, http.StatusNotFound, "refused", &view{Base: base, Error: "There is no portal here."})
		return
	}
	if !h.parseForm(w, r, base) {
		return
	}
	pre, err := r.Cookie(preCookie)
	if err != nil || !formtoken.Valid(pre.Value) || !formtoken.Equal(pre.Value, r.PostFormValue("csrf")) {
		h.refuse(w, base)
		return
	}
	ctx := r.Context()
	username := r.PostFormValue("username")
	ip := clientaddr.Of(r)
	u, e := h.core.CheckPassword(ctx, realm, username, r.PostFormValue("password"), ip)
	if e != nil {
		msg, status := "Invalid username or password.", http.StatusUnauthorized
		if e.Status != http.StatusUnauthorized {
			msg, status = e.Description, clientStatus(e.Status)
		}
		h.signinPage(w, r, status, realm, display, base, msg, username)
		return
	}
	if err := h.core.EnsurePortalClient(ctx, realm); err != nil {
		h.log.Error("portal: portal client unavailable", "realm", realm, "err", err)
		h.signinPage(w, r, http.StatusServiceUnavailable, realm, display, base, "Signing in is not possible right now.", username)
		return
	}
	resp, e := h.core.Login(ctx, core.LoginRequest{
		Realm: realm, ClientID: core.PortalClientID, UserID: u.ID, Scope: "openid",
		IP: ip, UserAgent: r.UserAgent(),
	})
	if e != nil {
		h.signinPage(w, r, clientStatus(e.Status), realm, display, base, e.Description, username)
		return
	}
	cd := cookieData{Realm: realm, SessionID: resp.SessionState, UserID: u.ID, CSRF: formtoken.New()}
	if core.IsRenewable(u) {
		cd.RefreshToken = resp.RefreshToken
	}
	value, err := h.seal(cd)
	if err != nil {
		h.log.Error("portal: sealing the session cookie failed", "err", err)
		h.signinPage(w, r, http.StatusServiceUnavailable, realm, display, base, "Signing in is not possible right now.", username)
		return
	}
	http.SetCookie(w, h.cookie(sessionCookie, value, base, 0))
	h.clearCookie(w, preCookie, base)
	h.setHeaders(w)
	http.Redirect(w, r, base, http.StatusSeeOther)
}

// limited refuses, with 429 and Retry-After, a sign-in from an address
// whose budget is spent. It runs before anything else, the store included.
func (h *Handler) limited(w http.ResponseWriter, r *http.Request, where func(*http.Request) (string, string)) bool {
	if h.opts.Limiter == nil {
		return false
	}
	ok, retry := h.opts.Limiter.Allow(clientaddr.Of(r))
	if ok {
		return false
	}
	_, base := where(r)
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	h.render(w, http.StatusTooManyRequests, "refused", &view{Base: base,
		Error: "Too many sign-in attempts from your address. Wait a moment and try again."})
	return true
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, where func(*http.Request) (string, string)) {
	realm, base := where(r)
	cd, u, ok := h.authedPost(w, r, realm, base)
	if !ok {
		return
	}
	if e := h.core.EndUserSession(r.Context(), realm, u.ID, cd.SessionID); e != nil && e.Status >= 500 {
		h.render(w, http.StatusInternalServerError, "refused", &view{Base: base, Error: "Signing out failed; try again."})
		return
	}
	h.clearCookie(w, sessionCookie, base)
	h.setHeaders(w)
	http.Redirect(w, r, base, http.StatusSeeOther)
}

func (h *Handler) endSession(w http.ResponseWriter, r *http.Request, where func(*http.Request) (string, string)) {
	realm, base := where(r)
	cd, u, ok := h.authedPost(w, r, realm, base)
	if !ok {
		return
	}
	sid := r.PostFormValue("session")
	if e := h.core.EndUserSession(r.Context(), realm, u.ID, sid); e != nil {
		if e.Status >= 500 {
			h.render(w, http.StatusInternalServerError, "refused", &view{Base: base, Error: "Ending the session failed; try again."})
			return
		}
		h.render(w, http.StatusNotFound, "refused", &view{Base: base, Error: "That session does not exist (any more)."})
		return
	}
	if sid == cd.SessionID {
		h.clearCookie(w, sessionCookie, base)
	}
	h.setHeaders(w)
	http.Redirect(w, r, base, http.StatusSeeOther)
}

// authedPost checks a signed-in user's POST: body size, origin, a live
// session and the CSRF token sealed with it.
func (h *Handler) authedPost(w http.ResponseWriter, r *http.Request, realm, base string) (*cookieData, *store.User, bool) {
	if !h.parseForm(w, r, base) {
		return nil, nil, false
	}
	cd, _, u := h.current(r, realm)
	if cd == nil || !formtoken.Equal(cd.CSRF, r.PostFormValue("csrf")) {
		h.refuse(w, base)
		return nil, nil, false
	}
	if u == nil {
		// The session ended meanwhile: nothing left to do but sign in.
		h.clearCookie(w, sessionCookie, base)
		h.setHeaders(w)
		http.Redirect(w, r, base, http.StatusSeeOther)
		return nil, nil, false
	}
	return cd, u, true
}

func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request, base string) bool {
	if !formtoken.SameOrigin(r) {
		h.refuse(w, base)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.render(w, http.StatusBadRequest, "refused", &view{Base: base, Error: "The form could not be read."})
		return false
	}
	return true
}

func (h *Handler) refuse(w http.ResponseWriter, base string) {
	h.render(w, http.StatusForbidden, "refused", &view{Base: base,
		Error: "This form has expired or did not come from this portal. Go back, reload the page and try again."})
}

// current opens the session cookie and checks its session with the core.
// It returns the cookie's data even when the session is gone (so that the
// caller can clear it), and the session and user only when it is live.
func (h *Handler) current(r *http.Request, realm string) (*cookieData, *store.Session, *store.User) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, nil
	}
	cd, err := h.open(c.Value)
	if err != nil || cd.Realm != realm {
		return nil, nil, nil
	}
	sess, u, e := h.core.ActiveSession(r.Context(), realm, cd.SessionID)
	if e != nil || u.ID != cd.UserID {
		return cd, nil, nil
	}
	return cd, sess, u
}

func (h *Handler) seal(cd cookieData) (string, error) {
	return keys.SealJSON(h.opts.Sealer, sealContext, cd)
}

func (h *Handler) open(value string) (*cookieData, error) {
	var cd cookieData
	if err := keys.OpenJSON(h.opts.Sealer, sealContext, value, &cd); err != nil {
		return nil, err
	}
	if cd.SessionID == "" || cd.UserID == "" || !formtoken.Valid(cd.CSRF) {
		return nil, errors.New("portal: incomplete cookie")
	}
	return &cd, nil
}

func (h *Handler) cookie(name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	}
}

func (h *Handler) clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, h.cookie(name, "", path, -1))
}

// clientStatus keeps a core decision's 4xx and turns anything else into
// 503, so that the page never shows a bare 500 for what a user typed.
func clientStatus(s int) int {
	if s >= 400 && s < 500 {
		return s
	}
	return http.StatusServiceUnavailable
}
