package oidc

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
)

// CORS for browser clients (keycloak-js, single-page apps), the Keycloak
// way: a page may read an endpoint's answer only when its Origin is one of
// the client's webOrigins ("+" for its redirect URIs' origins, "*" for any).
// An origin that no rule allows is never echoed.

// corsHeaders are the request headers a preflight may ask for (Keycloak's
// list).
const corsHeaders = "Origin, Accept, X-Requested-With, Content-Type, Access-Control-Request-Method, Access-Control-Request-Headers, Authorization, DPoP"

// preflightTTL is how long a realm's allowed origins are trusted for
// answering preflights. A preflight only lets the browser send the
// request; whether the page may read the answer is decided on the answer
// itself, from the client's current configuration.
const preflightTTL = 10 * time.Second

// maxPreflightRealms bounds the preflight cache.
const maxPreflightRealms = 1024

type realmOrigins struct {
	origins map[string]bool
	any     bool
	at      time.Time
}

// clientIDOf is the client a request names, for choosing its CORS policy
// before (and whether or not) it authenticates.
func clientIDOf(ca core.ClientAuth) string {
	if ca.Basic && ca.BasicID != "" {
		return ca.BasicID
	}
	return ca.ClientID
}

// cors lets the request's page read the answer when clientID allows its
// origin. It runs before the answer is written, success or error, so that
// a page can read the error too.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request, realm, clientID string) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	w.Header().Add("Vary", "Origin")
	if !h.core.WebOriginAllowed(r.Context(), realm, clientID, origin) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Allow-Credentials", "true")
}

// clientPreflight answers a CORS preflight to a client endpoint. It names
// no client, so an origin passes when some enabled client of the realm
// allows it.
func (h *Handler) clientPreflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	w.Header().Add("Vary", "Origin")
	if origin != "" && h.realmAllows(r, origin) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Allow-Credentials", "true")
		hd.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		if isUserinfo(r) {
			hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		}
		hd.Set("Access-Control-Allow-Headers", corsHeaders)
		hd.Set("Access-Control-Max-Age", "3600")
	}
	w.WriteHeader(http.StatusOK)
}

func isUserinfo(r *http.Request) bool {
	p := r.URL.Path
	return len(p) >= 9 && p[len(p)-9:] == "/userinfo"
}

// publicPreflight answers a preflight to the documents any page may read
// (discovery and the JWKS).
func (h *Handler) publicPreflight(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", corsHeaders)
	hd.Set("Access-Control-Max-Age", "3600")
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) realmAllows(r *http.Request, origin string) bool {
	realm := h.realmName(r)
	now := time.Now()
	h.preMu.Lock()
	e, ok := h.preflight[realm]
	h.preMu.Unlock()
	if !ok || now.Sub(e.at) > preflightTTL {
		// Only realms that exist are looked up and cached, so that
		// preflights to made-up realm names cost no store read and no
		// memory.
		if _, err := h.core.Realm(r.Context(), realm); err != nil {
			return false
		}
		origins, any, err := h.core.RealmWebOrigins(r.Context(), realm)
		if err != nil {
			h.log.Warn("listing web origins failed", "realm", realm, "err", err)
			return false
		}
		e = realmOrigins{origins: origins, any: any, at: now}
		h.preMu.Lock()
		if len(h.preflight) >= maxPreflightRealms {
			clear(h.preflight)
		}
		h.preflight[realm] = e
		h.preMu.Unlock()
	}
	return e.any || e.origins[origin]
}
