package core

import (
	"context"
	"errors"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// OIDC RP-Initiated Logout 1.0: a client sends the browser to the logout
// endpoint with the ID token it holds (id_token_hint) and, optionally,
// where the browser should go afterwards (post_logout_redirect_uri).

// LogoutHint is what an id_token_hint names.
type LogoutHint struct {
	SessionID string // the login to end
	ClientID  string // the client the ID token was issued to (azp)
}

// ParseLogoutHint checks an id_token_hint: an ID token this realm signed.
// Expired ones are accepted, as Keycloak does: a user logs out long after
// the ID token's few minutes are over.
func (s *Service) ParseLogoutHint(ctx context.Context, realm, idToken string) (*LogoutHint, *Error) {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return nil, e
	}
	p, e := s.signedPrincipal(ctx, realm, v.issuer, idToken)
	if e != nil || p.TokenType != TypeID || p.ClientID == "" {
		return nil, errf(400, InvalidRequest, "Invalid IDToken")
	}
	return &LogoutHint{SessionID: p.SessionID, ClientID: p.ClientID}, nil
}

// EndLogin ends the login sid belongs to, with every session single
// sign-on joined to it (as the refresh-token logout does). A login that
// has already ended is no error: the browser is logged out either way.
func (s *Service) EndLogin(ctx context.Context, realm, sid string) *Error {
	if sid == "" {
		return nil
	}
	if err := s.endLogin(ctx, realm, sid); err != nil && !errors.Is(err, store.ErrNotFound) {
		return s.internal("logout", err)
	}
	return nil
}

// PostLogoutRedirectAllowed reports whether a browser may be sent to uri
// after logging out of clientID: one of the client's
// post.logout.redirect.uris ("##"-separated, "+" standing for its
// redirectUris, patterns as for redirect_uri). A client without the
// attribute allows none, as in Keycloak.
func (s *Service) PostLogoutRedirectAllowed(ctx context.Context, realm, clientID, uri string) bool {
	c, err := s.client(ctx, realm, clientID)
	if err != nil || !c.Enabled {
		return false
	}
	var allowed []string
	for _, u := range strings.Split(c.Attributes["post.logout.redirect.uris"], "##") {
		switch u = strings.TrimSpace(u); u {
		case "":
		case "+":
			allowed = append(allowed, c.RedirectURIs...)
		default:
			allowed = append(allowed, u)
		}
	}
	return RedirectURIAllowed(allowed, uri)
}
