package gateway

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/pkg/middleware"
)

// errUserIDBody is the exact answer of seed 004's API to a user of several
// organizations who names none (or one not theirs) in the UserID header;
// clients written against that API match on it.
const errUserIDBody = `{"error": true, "reason": "Invalid WSAUTH: Valid UserID must be supplied"}`

// authenticate checks the request's bearer token and, when aud is set, the
// realm's audience; on failure it has written the RFC 6750 answer.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, cfg *realmConfig, aud bool) (*core.Principal, bool) {
	tok, present, ok := middleware.BearerToken(r.Header)
	if !present {
		w.Header().Set("WWW-Authenticate", middleware.Challenge{Realm: cfg.name}.String())
		writeError(w, http.StatusUnauthorized, core.InvalidToken, "a bearer token is required")
		return nil, false
	}
	if !ok {
		g.unauthorized(w, cfg, "malformed Authorization header")
		return nil, false
	}
	p, err := g.auth.Authenticate(r.Context(), cfg.name, tok)
	if err != nil {
		var ce *core.Error
		switch {
		case errors.As(err, &ce) && (ce.Code == core.InvalidToken || ce.Status == http.StatusUnauthorized):
			g.log.Debug("gateway: token rejected", "realm", cfg.name, "reason", ce.Description)
			g.unauthorized(w, cfg, ce.Description)
		case errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500:
			writeError(w, ce.Status, ce.Code, ce.Description)
		case r.Context().Err() != nil:
			// The client went away; nobody reads an answer.
		default:
			g.log.Warn("gateway: token check failed", "realm", cfg.name, "err", err)
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token could not be checked; retry")
		}
		return nil, false
	}
	if p == nil {
		g.unauthorized(w, cfg, "token not accepted")
		return nil, false
	}
	if p.TokenType != "" && !strings.EqualFold(p.TokenType, "Bearer") && !(cfg.acceptID && p.TokenType == "ID") {
		g.unauthorized(w, cfg, "token type "+p.TokenType+" is not accepted here")
		return nil, false
	}
	if aud && cfg.audience != "" && !contains(p.Audience, cfg.audience) {
		g.unauthorized(w, cfg, "token audience does not include "+cfg.audience)
		return nil, false
	}
	return p, true
}

func (g *Gateway) unauthorized(w http.ResponseWriter, cfg *realmConfig, desc string) {
	w.Header().Set("WWW-Authenticate", middleware.Challenge{Realm: cfg.name, Error: core.InvalidToken, Description: desc}.String())
	writeError(w, http.StatusUnauthorized, core.InvalidToken, desc)
}

// selection is the organization membership a request acts for.
type selection struct {
	m   store.Membership
	org *store.Organization // nil when the realm does not list the org
}

// usableMemberships drops memberships of organizations the realm has
// disabled: those grant nothing.
func (c *realmConfig) usableMemberships(ms []store.Membership) []store.Membership {
	for i, m := range ms {
		if o := c.orgByID[m.OrgID]; o != nil && !o.Enabled {
			out := append([]store.Membership(nil), ms[:i]...)
			for _, m := range ms[i+1:] {
				if o := c.orgByID[m.OrgID]; o == nil || o.Enabled {
					out = append(out, m)
				}
			}
			return out
		}
	}
	return ms
}

// requestedOrg is the organization the request names: the Organization
// header, or the subdomain of the Host under the realm's domain.
func (c *realmConfig) requestedOrg(r *http.Request) string {
	if !c.subdomain {
		return strings.TrimSpace(r.Header.Get("Organization"))
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if c.domain == "" || !strings.HasSuffix(host, "."+c.domain) {
		return ""
	}
	return host[:len(host)-len(c.domain)-1]
}

// selectMembership applies the organization rules (seeds 000 and 004). It
// returns nil with ok when the request acts for no organization.
func (g *Gateway) selectMembership(w http.ResponseWriter, r *http.Request, cfg *realmConfig, p *core.Principal) (*selection, bool) {
	ms := cfg.usableMemberships(p.Memberships)
	var sel *selection
	if uid := strings.TrimSpace(r.Header.Get("UserID")); uid != "" || len(ms) > 1 {
		for _, m := range ms {
			if uid != "" && m.ID == uid {
				sel = &selection{m: m, org: cfg.orgByID[m.OrgID]}
				break
			}
		}
		if sel == nil {
			g.log.Debug("gateway: no valid UserID", "realm", cfg.name, "sub", p.Subject)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(errUserIDBody))
			return nil, false
		}
	} else if len(ms) == 1 {
		sel = &selection{m: ms[0], org: cfg.orgByID[ms[0].OrgID]}
	}
	name := cfg.requestedOrg(r)
	if name == "" {
		return sel, true
	}
	o := cfg.org(name)
	if o == nil || !o.Enabled {
		writeError(w, http.StatusForbidden, core.AccessDenied, "unknown organization "+name)
		return nil, false
	}
	if sel == nil {
		writeError(w, http.StatusForbidden, core.AccessDenied, "the user is not a member of organization "+name)
		return nil, false
	}
	if sel.m.OrgID != o.ID {
		writeError(w, http.StatusForbidden, core.AccessDenied, "membership "+sel.m.ID+" is not of organization "+name)
		return nil, false
	}
	return sel, true
}

// membershipJSON is one entry of the memberships endpoint.
type membershipJSON struct {
	ID           string  `json:"id"`
	Organization orgJSON `json:"organization"`
}

type orgJSON struct {
	ID    string `json:"id"`
	Alias string `json:"alias,omitempty"`
	Name  string `json:"name,omitempty"`
}

// serveMemberships answers MembershipsPath: the caller's memberships, so
// that a user of several organizations can find the UserID to send. It
// needs a valid token and nothing else.
func (g *Gateway) serveMemberships(w http.ResponseWriter, r *http.Request, cfg *realmConfig) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, core.InvalidRequest, "use GET")
		return
	}
	p, ok := g.authenticate(w, r, cfg, false)
	if !ok {
		return
	}
	out := []membershipJSON{}
	for _, m := range cfg.usableMemberships(p.Memberships) {
		e := membershipJSON{ID: m.ID, Organization: orgJSON{ID: m.OrgID}}
		if o := cfg.orgByID[m.OrgID]; o != nil {
			e.Organization.Alias, e.Organization.Name = o.Alias, o.Name
		}
		out = append(out, e)
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, http.StatusInternalServerError, core.ServerError, "encoding failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// errorJSON is the body of every error the gateway itself answers.
type errorJSON struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(errorJSON{Error: code, Description: desc})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
