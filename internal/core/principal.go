package core

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Principal is what a verified access token (or an ID token, where a realm
// accepts those as bearer) says about its holder. The gateway, userinfo and
// introspection all read it; none of them looks at the JWT itself.
type Principal struct {
	Realm     string
	Issuer    string
	Subject   string // user id (sub)
	Username  string // preferred_username
	Email     string
	ClientID  string // azp: the client the token was issued to
	SessionID string // sid; empty for client_credentials without session
	TokenID   string // jti
	TokenType string // "Bearer" or "ID"
	Audience  []string
	Scopes    []string
	// RealmRoles and ClientRoles are the roles in the token.
	RealmRoles  []string
	ClientRoles map[string][]string
	// Organizations are the aliases of the organizations the user belongs to.
	Organizations []string
	// Memberships are the user's organization memberships (with their
	// stable ids), read from the user record, not from the token.
	Memberships []store.Membership
	IssuedAt    time.Time
	Expires     time.Time
	// Claims is the whole verified claim set, for userinfo and
	// introspection; do not modify it.
	Claims map[string]any

	// user is the user record Memberships were read from; a cache hit
	// with a newer record refreshes them.
	user *store.User
}

// HasScope reports whether the token carries scope s.
func (p *Principal) HasScope(s string) bool {
	for _, x := range p.Scopes {
		if x == s {
			return true
		}
	}
	return false
}
