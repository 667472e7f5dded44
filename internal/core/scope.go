package core

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// scopeSet is the granted scopes of a token, in order: "openid" first when
// requested, then the client's default scopes, then the optional scopes
// requested.
type scopeSet []string

func (s scopeSet) has(name string) bool {
	for _, x := range s {
		if x == name {
			return true
		}
	}
	return false
}

// tokenScope is the scope claim: the granted scopes that Keycloak lists
// (include.in.token.scope), space-separated.
func (s scopeSet) tokenScope(v *realmView) string {
	var b strings.Builder
	for _, x := range s {
		if x != "openid" {
			if sc, ok := v.scopes[x]; ok && !sc.IncludeInTokenScope {
				continue
			}
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

// refreshScope keeps every granted scope, so a refresh grants the same.
func (s scopeSet) refreshScope() string { return strings.Join(s, " ") }

// clientScopes returns the client's default and optional scopes, falling
// back to the realm's defaults and then Keycloak's.
func (v *realmView) clientScopes(c *store.Client) (def, opt []string) {
	def = c.DefaultClientScopes
	if def == nil {
		def = v.r.Settings.DefaultClientScopes
	}
	if def == nil {
		def = defaultDefaultScopes
	}
	opt = c.OptionalScopes
	if opt == nil {
		opt = v.r.Settings.OptionalScopes
	}
	if opt == nil {
		opt = defaultOptionalScopes
	}
	return def, opt
}

// grantScopes decides the scopes of a new grant from the requested scope
// parameter. Unknown or not-allowed scopes fail the request, as in
// Keycloak ("Invalid scopes: ...").
func (v *realmView) grantScopes(c *store.Client, requested string) (scopeSet, *Error) {
	def, opt := v.clientScopes(c)
	var out scopeSet
	var bad []string
	req := strings.Fields(requested)
	if hasString(req, "openid") {
		out = append(out, "openid")
	}
	for _, d := range def {
		if !out.has(d) {
			out = append(out, d)
		}
	}
	for _, r := range req {
		if r == "openid" || out.has(r) {
			continue
		}
		if hasString(opt, r) {
			out = append(out, r)
			continue
		}
		bad = append(bad, r)
	}
	if len(bad) > 0 {
		return nil, errf(400, InvalidScope, "Invalid scopes: "+strings.Join(bad, " "))
	}
	return out, nil
}

// narrowScopes re-checks a refresh request's scope parameter against the
// scopes the session was granted: a refresh may ask for less, never more.
func narrowScopes(granted scopeSet, requested string) (scopeSet, *Error) {
	req := strings.Fields(requested)
	if len(req) == 0 {
		return granted, nil
	}
	for _, r := range req {
		if !granted.has(r) {
			return nil, errf(400, InvalidScope, "Invalid scopes: "+r)
		}
	}
	// Default scopes stay; optional ones not asked for again are dropped.
	var out scopeSet
	for _, g := range granted {
		if hasString(req, g) || g != "openid" && g != "offline_access" {
			out = append(out, g)
		}
	}
	return out, nil
}
