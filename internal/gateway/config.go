package gateway

import (
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/store"
)

// realmConfig is a realm's gateway policy compiled for the request path:
// built once per realm version (store.Realm.Updated), read concurrently
// and never modified after compile.
type realmConfig struct {
	name      string
	updated   time.Time
	subdomain bool
	domain    string // lowercased, no leading or trailing dot
	audience  string
	acceptID  bool
	router    router

	orgByID    map[string]*store.Organization
	orgByAlias map[string]*store.Organization // lowercased alias

	// Scopes granted by roles (Role.Attributes["scopes"]), composites
	// included: realm role name → scopes; client id → role name → scopes.
	realmRoleScopes  map[string][]string
	clientRoleScopes map[string]map[string][]string
}

func compile(realm store.Realm, log *slog.Logger) *realmConfig {
	gw := realm.Settings.Gateway
	c := &realmConfig{
		name:       realm.Name,
		updated:    realm.Updated,
		subdomain:  gw.OrgFrom == "subdomain",
		domain:     strings.Trim(strings.ToLower(gw.Domain), "."),
		audience:   gw.Audience,
		acceptID:   gw.AcceptIDTokens,
		orgByID:    map[string]*store.Organization{},
		orgByAlias: map[string]*store.Organization{},
	}
	for i := range realm.Settings.Organizations {
		o := &realm.Settings.Organizations[i]
		c.orgByID[o.ID] = o
		if o.Alias != "" {
			c.orgByAlias[strings.ToLower(o.Alias)] = o
		}
	}
	for i, op := range gw.Operations {
		segs, err := splitPattern(op.Path)
		if err != nil {
			log.Warn("gateway: operation skipped", "realm", realm.Name, "operation", i, "err", err)
			continue
		}
		rt := &route{op: op, pattern: op.Path, timeout: op.TimeoutSeconds}
		if rt.timeout <= 0 {
			rt.timeout = DefaultTimeoutSeconds
		}
		for _, s := range op.Scopes {
			rt.scopes = appendScopes(rt.scopes, s)
		}
		if u, err := parseUpstream(op.Upstream); err != nil {
			log.Warn("gateway: operation has no usable upstream; it answers 502", "realm", realm.Name, "path", op.Path, "err", err)
		} else {
			rt.target = u
		}
		m := normMethod(op.Method)
		if !c.router.add(m, segs, rt) {
			log.Warn("gateway: duplicate operation ignored", "realm", realm.Name, "method", m, "path", op.Path)
		}
	}
	c.compileRoles(realm.Settings.Roles)
	return c
}

// compileRoles flattens role → scopes with composites, so that a request
// costs a map lookup per role held.
func (c *realmConfig) compileRoles(roles []store.Role) {
	byKey := map[string]*store.Role{}
	key := func(client, name string) string {
		if client == "" {
			return name
		}
		return client + "/" + name
	}
	for i := range roles {
		byKey[key(roles[i].ClientID, roles[i].Name)] = &roles[i]
	}
	var expand func(r *store.Role, seen map[string]bool, out []string) []string
	expand = func(r *store.Role, seen map[string]bool, out []string) []string {
		k := key(r.ClientID, r.Name)
		if seen[k] {
			return out
		}
		seen[k] = true
		for _, v := range r.Attributes["scopes"] {
			out = appendScopes(out, v)
		}
		for _, comp := range r.Composites {
			if sub := byKey[comp]; sub != nil {
				out = expand(sub, seen, out)
			}
		}
		return out
	}
	c.realmRoleScopes = map[string][]string{}
	c.clientRoleScopes = map[string]map[string][]string{}
	for i := range roles {
		r := &roles[i]
		s := expand(r, map[string]bool{}, nil)
		if len(s) == 0 {
			continue
		}
		if r.ClientID == "" {
			c.realmRoleScopes[r.Name] = s
			continue
		}
		m := c.clientRoleScopes[r.ClientID]
		if m == nil {
			m = map[string][]string{}
			c.clientRoleScopes[r.ClientID] = m
		}
		m[r.Name] = s
	}
}

// appendScopes adds the scopes in v (separated by spaces or commas, as an
// attribute value may hold several) to out, without duplicates.
func appendScopes(out []string, v string) []string {
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// heldScopes is the token's scopes plus those its roles grant.
func (c *realmConfig) heldScopes(p *core.Principal) []string {
	held := p.Scopes
	copied := false
	add := func(ss []string) {
		for _, s := range ss {
			if contains(held, s) {
				continue
			}
			if !copied {
				held = append(make([]string, 0, len(held)+len(ss)), held...)
				copied = true
			}
			held = append(held, s)
		}
	}
	for _, r := range p.RealmRoles {
		add(c.realmRoleScopes[r])
	}
	for client, roles := range p.ClientRoles {
		m := c.clientRoleScopes[client]
		if m == nil {
			continue
		}
		for _, r := range roles {
			add(m[r])
		}
	}
	return held
}

// org finds an organization by id or (case-insensitive) alias.
func (c *realmConfig) org(name string) *store.Organization {
	if o := c.orgByID[name]; o != nil {
		return o
	}
	return c.orgByAlias[strings.ToLower(name)]
}
