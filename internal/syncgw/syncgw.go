// Package syncgw is the Couchbase Sync Gateway front door: the one call of
// Sync Gateway's OpenID Connect API that scripts written against it use,
//
//	GET /{db}/_oidc_refresh?refresh_token=...
//
// which trades a refresh token for an ID token that the gateway then accepts
// as a bearer token (for realms whose gateway allows ID tokens). {db} is a
// realm's name or one of its aliases. Whether the account may do this, and
// everything the refresh involves, is decided by the core
// (core.RenewIDToken); this package only reads the query and writes Sync
// Gateway's JSON.
//
// The refresh token travels in the query string, as Sync Gateway has it.
// The server's request log records the path only, and this package logs
// nothing that comes from the request.
package syncgw

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/clientaddr"
	"github.com/gatehouse/gatehouse/internal/core"
)

// RefreshPath is the last path segment of Sync Gateway's refresh call.
const RefreshPath = "_oidc_refresh"

// Handler serves /{db}/_oidc_refresh.
//
// A ServeMux pattern "GET /{db}/_oidc_refresh" would collide with the OIDC
// door's "GET /realms/{realm}", so the server does not register one:
// its fallback route asks Wrap's handler, which takes a request whose path
// is /{db}/_oidc_refresh with {db} naming an existing realm or alias, and
// hands everything else (the gateway's API paths) on.
type Handler struct {
	core    *core.Service
	log     *slog.Logger
	limiter Limiter
}

// Limiter is the rate limit this door applies; nil allows everything.
type Limiter = clientaddr.Limiter

// New builds the handler. limiter, when not nil, is asked before every
// refresh (a refresh token is a credential); the server passes the one its
// other credential endpoints use, so that an address has one budget.
func New(c *core.Service, log *slog.Logger, limiter Limiter) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{core: c, log: log, limiter: limiter}
}

// Wrap returns a handler that serves GET /{db}/_oidc_refresh for realms and
// their aliases and passes every other request to next.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if realm, ok := h.match(r); ok {
			h.refresh(w, r, realm)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// match reports whether r is a refresh call for a realm that exists, and
// names that realm ({db} resolved from an alias).
func (h *Handler) match(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	db, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok || rest != RefreshPath || db == "" {
		return "", false
	}
	realm := h.core.ResolveRealm(db)
	if _, err := h.core.Realm(r.Context(), realm); err != nil {
		return "", false
	}
	return realm, true
}

// tokenResponse is Sync Gateway's answer (its OIDCTokenResponse field
// names). refresh_token is sent too: Sync Gateway's callback response has
// the same field, and a realm that rotates refresh tokens makes the old one
// useless after this call, so the client needs the new one.
type tokenResponse struct {
	IDToken      string `json:"id_token"`
	SessionID    string `json:"session_id"`
	Name         string `json:"name"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
}

func (h *Handler) refresh(w http.ResponseWriter, r *http.Request, realm string) {
	w.Header().Set("Cache-Control", "no-store")
	if h.limiter != nil {
		if ok, retry := h.limiter.Allow(clientaddr.Of(r)); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			writeError(w, &core.Error{Code: core.TooManyRequests, Description: "Too many requests",
				Status: http.StatusTooManyRequests, RetryAfter: retry})
			return
		}
	}
	res, e := h.core.RenewIDToken(r.Context(), realm, r.URL.Query().Get("refresh_token"))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		IDToken: res.IDToken, SessionID: res.SessionID, Name: res.Name,
		RefreshToken: res.RefreshToken, ExpiresIn: res.ExpiresIn,
	})
}

// errorBody is Sync Gateway's error shape: the HTTP status text and a
// reason.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

func writeError(w http.ResponseWriter, e *core.Error) {
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	reason := e.Description
	if status == http.StatusNotFound && e.Code != core.NotFound {
		reason = "no such database"
	}
	writeJSON(w, status, errorBody{Error: http.StatusText(status), Reason: reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal Server Error","reason":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
