package core

import (
	"context"
	"errors"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// RenewableAttribute is the user attribute that marks an account as
// renewable: {"gatehouse.renewable": ["true"]} in a realm export. It is off
// by default because a renewable refresh token is then enough, on its own,
// to obtain ID tokens for as long as its session lives.
const RenewableAttribute = "gatehouse.renewable"

// IsRenewable reports whether u may renew ID tokens with a bare refresh
// token (Sync Gateway's _oidc_refresh) and see that token in the profile
// panel.
func IsRenewable(u *store.User) bool {
	if u == nil {
		return false
	}
	for _, v := range u.Attributes[RenewableAttribute] {
		if strings.EqualFold(strings.TrimSpace(v), "true") {
			return true
		}
	}
	return false
}

// RenewResult is what a renewal gives: Sync Gateway's three fields and,
// beyond them, the refresh token to use next time (it differs from the one
// presented only when the realm rotates refresh tokens).
type RenewResult struct {
	IDToken   string
	SessionID string // the session's id, the sid claim
	Name      string // the username
	// RefreshToken is the refresh token the client should keep.
	RefreshToken string
	// ExpiresIn is the ID token's lifetime in seconds.
	ExpiresIn int64
}

// RenewIDToken runs a refresh on behalf of the refresh token's own client
// (its azp) and returns a fresh ID token, for accounts flagged renewable.
//
// No client authentication takes place: as in Sync Gateway, the refresh
// token is the credential. That is safe only because it is limited to
// accounts an administrator marked renewable, because every other rule of
// the refresh grant still holds (the session must be alive, the token's
// generation current, rotation and reuse detection apply, a disabled user
// or client gets nothing) and because what comes back is an ID token for
// the same client, user and session the refresh token already stood for:
// nothing the holder of the token could not get from the token endpoint
// if the client were public.
//
// Errors: 400 invalid_request for a missing token, 400 invalid_grant for an
// account that is not renewable, 401 invalid_token for a token that is not
// (or no longer) valid, 404 for an unknown realm.
func (s *Service) RenewIDToken(ctx context.Context, realm, refreshToken string) (*RenewResult, *Error) {
	if refreshToken == "" {
		return nil, errf(400, InvalidRequest, "Missing parameter: refresh_token")
	}
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return nil, e
	}
	rc, e := s.parseRefresh(ctx, v, refreshToken)
	if e != nil {
		if e.Status >= 500 {
			return nil, e
		}
		desc := "Invalid refresh token"
		if e.Description == "Token is not active" {
			desc = "Refresh token expired"
		}
		return nil, invalidToken(desc)
	}
	c, err := s.client(ctx, v.r.Name, rc.Azp)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return nil, s.internal("client lookup", err)
		}
		return nil, invalidToken("Client disabled or deleted")
	}
	if !c.Enabled {
		return nil, invalidToken("Client disabled or deleted")
	}
	u, err := s.user(ctx, v.r.Name, rc.Sub)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return nil, s.internal("user lookup", err)
		}
		return nil, invalidToken("Token subject no longer exists")
	}
	if !u.Enabled {
		return nil, invalidToken("User disabled")
	}
	// Decided before the refresh runs, so that an account that may not
	// renew does not rotate (or, on reuse, end) its session here.
	if !IsRenewable(u) {
		return nil, errf(400, InvalidGrant, "Account is not enabled for renewable tokens")
	}
	resp, e := s.refreshGrant(ctx, v, c, TokenRequest{
		Realm:        v.r.Name,
		GrantType:    GrantRefreshToken,
		RefreshToken: refreshToken,
		forceIDToken: true,
	})
	if e != nil {
		if e.Status >= 500 {
			return nil, e
		}
		// Stale, reused or ended: the token no longer authenticates.
		return nil, invalidToken(e.Description)
	}
	if resp.IDToken == "" {
		return nil, s.internal("renew", errors.New("refresh minted no ID token"))
	}
	rt := resp.RefreshToken
	if rt == "" {
		rt = refreshToken
	}
	return &RenewResult{
		IDToken:      resp.IDToken,
		SessionID:    resp.SessionState,
		Name:         u.Username,
		RefreshToken: rt,
		ExpiresIn:    resp.ExpiresIn,
	}, nil
}
