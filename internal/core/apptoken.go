package core

import (
	"context"
	"errors"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// AppTokenRequest is a Fusio-style token request: the caller authenticates
// with HTTP Basic as an app (key:secret) or as a user (username:password),
// and the token it gets is always a user's: the app owner's, or the user's
// own.
type AppTokenRequest struct {
	Realm     string
	GrantType string // client_credentials or refresh_token
	// BasicID and BasicSecret are the two halves of the Basic header.
	BasicID, BasicSecret string
	RefreshToken         string
	// Scope lists the API scopes wanted, separated by spaces or commas;
	// empty asks for every scope the caller may have.
	Scope     string
	IP        string
	UserAgent string
}

// AppTokenResponse is a token pair with the API scopes it grants.
type AppTokenResponse struct {
	*TokenResponse
	// Scopes are the API scopes granted (role scopes, narrowed to the
	// request and to the app's limit), without OIDC scopes.
	Scopes []string
}

// appTokenOIDCScopes put the user's name and email in app tokens (the
// gateway passes them upstream). "roles" is left out on purpose: the
// gateway adds the scopes of every role in a token, which would undo the
// narrowing to what the app and the request allow.
var appTokenOIDCScopes = []string{"profile", "email"}

var errBadBasic = errf(401, InvalidClient, "Invalid client or user credentials")

// AppToken runs a Fusio token request.
func (s *Service) AppToken(ctx context.Context, req AppTokenRequest) (*AppTokenResponse, error) {
	resp, e := s.appToken(ctx, req)
	if e != nil {
		return nil, e
	}
	return resp, nil
}

func (s *Service) appToken(ctx context.Context, req AppTokenRequest) (*AppTokenResponse, *Error) {
	v, e := s.activeRealm(ctx, req.Realm)
	if e != nil {
		return nil, e
	}
	switch req.GrantType {
	case "":
		return nil, errf(400, InvalidRequest, "Missing parameter: grant_type")
	case GrantClientCredentials, GrantRefreshToken:
	default:
		return nil, errf(400, UnsupportedGrantType, "Unsupported grant_type")
	}
	c, u, e := s.basicCaller(ctx, v, req.BasicID, req.BasicSecret, req.IP)
	if e != nil {
		return nil, e
	}
	allowed := v.roleScopes(u)
	if len(c.Scopes) > 0 {
		var lim []string
		for _, x := range allowed {
			if hasString(c.Scopes, x) {
				lim = append(lim, x)
			}
		}
		allowed = lim
	}
	if req.GrantType == GrantRefreshToken {
		return s.appRefresh(ctx, v, c, u, allowed, req)
	}
	granted := allowed
	if want := SplitScopes(req.Scope); len(want) > 0 {
		granted = nil
		for _, w := range want {
			if hasString(allowed, w) {
				granted = append(granted, w)
			}
		}
	}
	if len(granted) == 0 {
		return nil, errf(400, InvalidScope, "No valid scope: none of the requested scopes is granted to this app and user")
	}
	scope := append(scopeSet(append([]string(nil), appTokenOIDCScopes...)), granted...)
	resp, e := s.loginScoped(ctx, v, c, u, scope, req.IP, req.UserAgent)
	if e != nil {
		return nil, e
	}
	return &AppTokenResponse{TokenResponse: resp, Scopes: granted}, nil
}

// basicCaller authenticates the Basic credentials: an existing client id
// is an app (or another confidential client with a service account),
// anything else a username. Every failure looks the same.
func (s *Service) basicCaller(ctx context.Context, v *realmView, id, secret, ip string) (*store.Client, *store.User, *Error) {
	if id == "" {
		return nil, nil, errf(401, InvalidClient, "Missing Basic credentials")
	}
	_, err := s.client(ctx, v.r.Name, id)
	switch {
	case err == nil:
		c, e := s.authenticateClient(ctx, v, ClientAuth{Basic: true, BasicID: id, Secret: secret}, "")
		if e != nil {
			if e.Status >= 500 {
				return nil, nil, e
			}
			return nil, nil, errBadBasic
		}
		if c.Public || !c.ServiceAccountsEnabled || c.ServiceAccountUserID == "" {
			return nil, nil, errf(400, UnauthorizedClient, "Client not enabled to retrieve service account")
		}
		u, err := s.user(ctx, v.r.Name, c.ServiceAccountUserID)
		if err != nil || !u.Enabled {
			return nil, nil, errf(400, UnauthorizedClient, "The app's user is disabled or missing")
		}
		return c, u, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, nil, s.internal("client lookup", err)
	}
	u, e := s.checkPassword(ctx, v, id, secret, ip)
	if e != nil {
		if e == errInvalidCredentials {
			return nil, nil, errBadBasic
		}
		return nil, nil, e
	}
	c, e := s.portalClient(ctx, v)
	if e != nil {
		return nil, nil, e
	}
	return c, u, nil
}

// appRefresh renews a token pair of the same caller. The scopes stay those
// of the first grant; if the caller's roles or app no longer allow one of
// them, the refresh is refused and a new grant narrows them again.
func (s *Service) appRefresh(ctx context.Context, v *realmView, c *store.Client, u *store.User, allowed []string, req AppTokenRequest) (*AppTokenResponse, *Error) {
	rc, e := s.parseRefresh(ctx, v, req.RefreshToken)
	if e != nil {
		return nil, e
	}
	if rc.Azp != c.ClientID || rc.Sub != u.ID {
		return nil, errf(400, InvalidGrant, "Invalid refresh token")
	}
	var api []string
	for _, x := range strings.Fields(rc.Scope) {
		if hasString(appTokenOIDCScopes, x) && !hasString(allowed, x) {
			continue
		}
		if !hasString(allowed, x) {
			return nil, errf(400, InvalidGrant, "The scopes of this token are no longer granted; request a new token")
		}
		api = append(api, x)
	}
	for _, w := range SplitScopes(req.Scope) {
		if !hasString(api, w) {
			return nil, errf(400, InvalidScope, "Invalid scopes: "+w)
		}
	}
	resp, e := s.refreshGrant(ctx, v, c, TokenRequest{Realm: v.r.Name, GrantType: GrantRefreshToken, RefreshToken: req.RefreshToken, ClientIP: req.IP, UserAgent: req.UserAgent})
	if e != nil {
		return nil, e
	}
	return &AppTokenResponse{TokenResponse: resp, Scopes: api}, nil
}

// loginScoped is Login with scopes the caller decided (API scopes that are
// no client scopes of the realm): a session under the realm's limits and
// its first token pair.
func (s *Service) loginScoped(ctx context.Context, v *realmView, c *store.Client, u *store.User, scope scopeSet, ip, ua string) (*TokenResponse, *Error) {
	sess, e := s.startSession(ctx, v, c, u, scope, false, ip, ua)
	if e != nil {
		return nil, e
	}
	resp, err := s.mint(ctx, mintInput{
		v: v, client: c, user: u, sess: sess, scope: scope, iat: sess.Started, accessID: newID(),
		refreshID: newID(), refreshGen: sess.RefreshID, refreshExp: sess.Expires,
	})
	if err != nil {
		return nil, s.internal("mint", err)
	}
	return resp, nil
}
