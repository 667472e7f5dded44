package core

import (
	"context"
	"errors"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// realmView is a realm with what the hot path derives from its settings
// computed once per version: role composites expanded, scopes indexed.
type realmView struct {
	r      store.Realm
	issuer string
	// roles by "name" (realm role) or "clientId/name" (client role).
	roles map[string]*store.Role
	// scopes by name.
	scopes map[string]store.ClientScope
	// orgs by id.
	orgs map[string]*store.Organization
}

// Keycloak's built-in client scopes, used when a realm export defines none.
// IncludeInTokenScope follows Keycloak: roles, web-origins, acr and basic
// shape the token but are not listed in its scope claim.
var builtinScopes = []store.ClientScope{
	{Name: "profile", IncludeInTokenScope: true},
	{Name: "email", IncludeInTokenScope: true},
	{Name: "roles"},
	{Name: "web-origins"},
	{Name: "acr"},
	{Name: "basic"},
	{Name: "offline_access", IncludeInTokenScope: true},
	{Name: "address", IncludeInTokenScope: true},
	{Name: "phone", IncludeInTokenScope: true},
	{Name: "microprofile-jwt", IncludeInTokenScope: true},
	{Name: "organization", IncludeInTokenScope: true},
}

var (
	defaultDefaultScopes  = []string{"web-origins", "acr", "roles", "profile", "email", "basic"}
	defaultOptionalScopes = []string{"offline_access", "address", "phone", "microprofile-jwt", "organization"}
)

func (s *Service) realm(ctx context.Context, name string) (*realmView, error) {
	s.mu.RLock()
	v, ok := s.realms[name]
	gen, realmGen := s.changes, s.realmGen
	absent := false
	if !ok {
		if s.realmNames != nil && s.namesGen == realmGen {
			_, known := s.realmNames[name]
			absent = !known
		} else {
			_, absent = s.missing.get(name)
		}
	}
	s.mu.RUnlock()
	if ok {
		return v, nil
	}
	if absent {
		return nil, store.ErrNotFound
	}
	r, err := s.st.GetRealm(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		s.mu.Lock()
		// Only a realm change can make the answer stale (see realmGen).
		if s.realmGen == realmGen {
			s.missing.put(name, struct{}{})
		}
		s.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	v = s.buildView(r)
	s.mu.Lock()
	// Not cached if a change landed during the read (see Service.changes).
	if s.changes == gen {
		s.realms[name] = v
	}
	s.mu.Unlock()
	return v, nil
}

func (s *Service) buildView(r store.Realm) *realmView {
	v := &realmView{
		r:      r,
		issuer: s.Issuer(r.Name),
		roles:  map[string]*store.Role{},
		scopes: map[string]store.ClientScope{},
		orgs:   map[string]*store.Organization{},
	}
	for i := range r.Settings.Roles {
		role := &r.Settings.Roles[i]
		if role.ClientID == "" {
			v.roles[role.Name] = role
		} else {
			v.roles[role.ClientID+"/"+role.Name] = role
		}
	}
	scopes := r.Settings.ClientScopes
	if len(scopes) == 0 {
		scopes = builtinScopes
	}
	for _, sc := range scopes {
		v.scopes[sc.Name] = sc
	}
	for i := range r.Settings.Organizations {
		o := &r.Settings.Organizations[i]
		v.orgs[o.ID] = o
	}
	return v
}

// expandRoles returns the user's effective realm roles and client roles:
// direct roles, default roles and every composite reachable from them.
func (v *realmView) expandRoles(u *store.User) (realm []string, client map[string][]string) {
	seen := map[string]bool{}
	var visit func(key string)
	visit = func(key string) {
		if seen[key] {
			return
		}
		seen[key] = true
		if role, ok := v.roles[key]; ok {
			for _, c := range role.Composites {
				visit(c)
			}
		}
	}
	for _, r := range u.RealmRoles {
		visit(r)
	}
	for cid, rs := range u.ClientRoles {
		for _, r := range rs {
			visit(cid + "/" + r)
		}
	}
	// Every user, service accounts included, holds the realm's default
	// roles. Keycloak 13+ models them as one composite role,
	// default-roles-<realm>, which it lists in realm_access.roles itself.
	if _, ok := v.roles["default-roles-"+strings.ToLower(v.r.Name)]; ok {
		visit("default-roles-" + strings.ToLower(v.r.Name))
	}
	for _, r := range v.r.Settings.DefaultRoles {
		visit(r)
	}
	client = map[string][]string{}
	for k := range seen {
		if i := strings.IndexByte(k, '/'); i >= 0 {
			client[k[:i]] = append(client[k[:i]], k[i+1:])
		} else {
			realm = append(realm, k)
		}
	}
	sortStrings(realm)
	for k := range client {
		sortStrings(client[k])
	}
	return realm, client
}

// hasRealmRole reports whether the expanded realm roles contain name.
func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
