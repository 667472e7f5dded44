package core

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwt"
	"github.com/gatehouse/gatehouse/internal/store"
)

// clockSkew is the leeway on iat in the future; expiry has none.
const clockSkew = 5 * time.Second

func invalidToken(desc string) *Error { return errf(401, InvalidToken, desc) }

// Authenticate verifies a bearer token of realm and returns what it says.
// A token seen before costs a map lookup: the verified result is cached
// until the token expires, and dropped when its session ends, it is
// revoked, its user or client changes or the realm's keys rotate.
func (s *Service) Authenticate(ctx context.Context, realm, bearer string) (*Principal, error) {
	p, e := s.authenticate(ctx, realm, bearer, false)
	if e != nil {
		return nil, e
	}
	return p, nil
}

// AuthenticateAllowID is Authenticate that also accepts an ID token as a
// bearer (Sync Gateway style), for realms whose gateway allows it.
func (s *Service) AuthenticateAllowID(ctx context.Context, realm, bearer string) (*Principal, error) {
	p, e := s.authenticate(ctx, realm, bearer, true)
	if e != nil {
		return nil, e
	}
	return p, nil
}

func (s *Service) authenticate(ctx context.Context, realm, bearer string, allowID bool) (*Principal, *Error) {
	if bearer == "" {
		return nil, invalidToken("Missing token")
	}
	now := s.now()
	if p := s.tokens.get(realm, bearer); p != nil {
		if !now.Before(p.Expires) {
			return nil, invalidToken("Token expired")
		}
		if p.TokenType == TypeID && !allowID {
			return nil, invalidToken("Wrong token type")
		}
		u, e := s.stillValid(ctx, p)
		if e != nil {
			return nil, e
		}
		if u != p.user {
			cp := *p
			cp.Memberships, cp.user = u.Memberships, u
			p = &cp
			s.tokens.put(realm, bearer, p)
		}
		return p, nil
	}
	v, err := s.realm(ctx, realm)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalidToken("Realm does not exist")
		}
		return nil, s.internal("realm lookup", err)
	}
	p, e := s.signedPrincipal(ctx, realm, v.issuer, bearer)
	if e != nil {
		return nil, e
	}
	switch p.TokenType {
	case TypeBearer:
	case TypeID:
		if !allowID {
			return nil, invalidToken("Wrong token type")
		}
	default:
		return nil, invalidToken("Wrong token type")
	}
	if p.Expires.IsZero() || !now.Before(p.Expires) {
		return nil, invalidToken("Token expired")
	}
	if p.IssuedAt.After(now.Add(clockSkew)) {
		return nil, invalidToken("Token issued in the future")
	}
	u, e := s.stillValid(ctx, p)
	if e != nil {
		return nil, e
	}
	p.Memberships, p.user = u.Memberships, u
	s.tokens.put(realm, bearer, p)
	return p, nil
}

// signedPrincipal reads a token this realm signed (RS256 or whatever the
// realm's signing keys are) and issued; its type, lifetime and session
// are the caller's to check.
func (s *Service) signedPrincipal(ctx context.Context, realm, issuer, token string) (*Principal, *Error) {
	parsed, err := jwt.Parse(token)
	if err != nil {
		return nil, invalidToken("Malformed token")
	}
	if err := s.keys.Verify(ctx, realm, "sig", parsed); err != nil {
		return nil, invalidToken("Invalid token signature")
	}
	var claims map[string]any
	if err := json.Unmarshal(parsed.Payload, &claims); err != nil {
		return nil, invalidToken("Malformed token claims")
	}
	p := principalFrom(realm, claims)
	if p.Issuer != issuer {
		return nil, invalidToken("Invalid token issuer")
	}
	return p, nil
}

// stillValid checks what can change after a token was issued: its
// revocation, the realm's and the user's not-before policy, whether the
// realm, user and client are still enabled, and its session. It runs on
// every check, cached or not, so that each of these takes effect at once;
// each is a map lookup while the caches are warm.
func (s *Service) stillValid(ctx context.Context, p *Principal) (*store.User, *Error) {
	if p.TokenID != "" && s.isRevoked(p.Realm, p.TokenID) {
		return nil, invalidToken("Token revoked")
	}
	v, err := s.realm(ctx, p.Realm)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalidToken("Realm does not exist")
		}
		return nil, s.internal("realm lookup", err)
	}
	if !v.r.Enabled {
		return nil, invalidToken("Realm not enabled")
	}
	iat := p.IssuedAt.Unix()
	if nb := v.r.Settings.NotBefore; nb != 0 && iat < nb {
		return nil, invalidToken("Token is no longer valid (not-before policy)")
	}
	u, err := s.user(ctx, p.Realm, p.Subject)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalidToken("Token subject no longer exists")
		}
		return nil, s.internal("user lookup", err)
	}
	if !u.Enabled {
		return nil, invalidToken("User disabled")
	}
	if u.NotBefore != 0 && iat < u.NotBefore {
		return nil, invalidToken("Token is no longer valid (not-before policy)")
	}
	c, err := s.client(ctx, p.Realm, p.ClientID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalidToken("Client disabled or deleted")
		}
		return nil, s.internal("client lookup", err)
	}
	if !c.Enabled {
		return nil, invalidToken("Client disabled or deleted")
	}
	if p.SessionID != "" {
		alive, err := s.sessionAlive(ctx, p.Realm, p.SessionID)
		if err != nil {
			return nil, s.internal("session lookup", err)
		}
		if !alive {
			return nil, invalidToken("Session not active")
		}
	}
	return u, nil
}

func principalFrom(realm string, c map[string]any) *Principal {
	str := func(k string) string { s, _ := c[k].(string); return s }
	num := func(k string) time.Time {
		if f, ok := c[k].(float64); ok {
			return time.Unix(int64(f), 0)
		}
		return time.Time{}
	}
	strs := func(v any) []string {
		switch t := v.(type) {
		case string:
			return []string{t}
		case []any:
			out := make([]string, 0, len(t))
			for _, x := range t {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
			return out
		}
		return nil
	}
	p := &Principal{
		Realm:     realm,
		Issuer:    str("iss"),
		Subject:   str("sub"),
		Username:  str("preferred_username"),
		Email:     str("email"),
		ClientID:  str("azp"),
		SessionID: str("sid"),
		TokenID:   str("jti"),
		TokenType: str("typ"),
		Audience:  strs(c["aud"]),
		IssuedAt:  num("iat"),
		Expires:   num("exp"),
		Claims:    c,
	}
	if sc := str("scope"); sc != "" {
		p.Scopes = splitSpace(sc)
	}
	if ra, ok := c["realm_access"].(map[string]any); ok {
		p.RealmRoles = strs(ra["roles"])
	}
	if rs, ok := c["resource_access"].(map[string]any); ok {
		p.ClientRoles = map[string][]string{}
		for cid, v := range rs {
			if m, ok := v.(map[string]any); ok {
				p.ClientRoles[cid] = strs(m["roles"])
			}
		}
	}
	p.Organizations = strs(c["organization"])
	return p
}

func splitSpace(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// UserInfo answers the OIDC userinfo endpoint for a bearer token.
func (s *Service) UserInfo(ctx context.Context, realm, bearer string) (map[string]any, error) {
	p, e := s.authenticate(ctx, realm, bearer, false)
	if e != nil {
		return nil, e
	}
	v, err := s.realm(ctx, realm)
	if err != nil {
		return nil, invalidToken("Realm does not exist")
	}
	u, err := s.user(ctx, realm, p.Subject)
	if err != nil {
		return nil, invalidToken("User not found")
	}
	out := map[string]any{"sub": u.ID}
	uc := v.userClaims(u, scopeSet(p.Scopes))
	b, _ := json.Marshal(uc)
	_ = json.Unmarshal(b, &out)
	if orgs := v.orgAliases(u, scopeSet(p.Scopes)); len(orgs) > 0 {
		out["organization"] = orgs
	}
	return out, nil
}

// Introspect is RFC 7662 for an authenticated client. Any token that is not
// valid now, for whatever reason, is just {"active": false}.
func (s *Service) Introspect(ctx context.Context, realm string, ca ClientAuth, token, endpoint string) (map[string]any, error) {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return nil, e
	}
	c, e := s.authenticateClient(ctx, v, ca, endpoint)
	if e != nil {
		return nil, e
	}
	if c.Public {
		return nil, errf(401, InvalidClient, "Public clients may not introspect tokens")
	}
	inactive := map[string]any{"active": false}
	if token == "" {
		return inactive, nil
	}
	if p, e := s.authenticate(ctx, realm, token, true); e == nil {
		out := make(map[string]any, len(p.Claims)+4)
		for k, val := range p.Claims {
			out[k] = val
		}
		out["active"] = true
		out["client_id"] = p.ClientID
		if p.Username != "" {
			out["username"] = p.Username
		}
		out["token_type"] = p.TokenType
		return out, nil
	}
	// A refresh token: active while its session is and its generation
	// is still accepted.
	if rc, e := s.parseRefresh(ctx, v, token); e == nil {
		sess, err := s.st.GetSession(ctx, realm, rc.Sid)
		if err != nil || !s.now().Before(sess.Expires) {
			return inactive, nil
		}
		if rc.Gen != sess.RefreshID && rc.Gen != sess.PrevRefreshID {
			return inactive, nil
		}
		out := map[string]any{
			"active": true, "jti": rc.Jti, "iss": rc.Iss, "aud": rc.Aud, "sub": rc.Sub,
			"typ": rc.Typ, "azp": rc.Azp, "sid": rc.Sid, "scope": rc.Scope, "iat": rc.Iat,
			"client_id": rc.Azp, "token_type": rc.Typ,
		}
		if rc.Exp != 0 {
			out["exp"] = rc.Exp
		}
		return out, nil
	}
	return inactive, nil
}

// Logout ends the session of a refresh token, for the client it was issued
// to (Keycloak's back-channel logout with refresh_token).
func (s *Service) Logout(ctx context.Context, realm string, ca ClientAuth, refreshToken, endpoint string) error {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return e
	}
	c, e := s.authenticateClient(ctx, v, ca, endpoint)
	if e != nil {
		return e
	}
	rc, e := s.parseRefreshForLogout(ctx, v, refreshToken)
	if e != nil {
		return e
	}
	if rc.Azp != c.ClientID {
		return errf(400, InvalidGrant, "Invalid refresh token")
	}
	if err := s.endLogin(ctx, realm, rc.Sid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errf(400, InvalidGrant, "Session not active")
		}
		return s.internal("logout", err)
	}
	return nil
}

// parseRefreshForLogout accepts an expired refresh token too: logging out
// a session whose token just expired should still end it.
func (s *Service) parseRefreshForLogout(ctx context.Context, v *realmView, token string) (*refreshClaims, *Error) {
	if token == "" {
		return nil, errf(400, InvalidRequest, "Missing parameter: refresh_token")
	}
	p, err := jwt.Parse(token)
	if err != nil || s.keys.Verify(ctx, v.r.Name, "hmac", p) != nil {
		return nil, errf(400, InvalidGrant, "Invalid refresh token")
	}
	var rc refreshClaims
	if json.Unmarshal(p.Payload, &rc) != nil || rc.Iss != v.issuer || rc.Sid == "" {
		return nil, errf(400, InvalidGrant, "Invalid refresh token")
	}
	return &rc, nil
}

// Revoke is RFC 7009. A refresh token ends its session (for an offline
// token, the offline session); an access token is put on the revocation
// list until it expires. Tokens that are invalid or not the client's are
// ignored, as §2.2 asks.
func (s *Service) Revoke(ctx context.Context, realm string, ca ClientAuth, token, endpoint string) error {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return e
	}
	c, e := s.authenticateClient(ctx, v, ca, endpoint)
	if e != nil {
		return e
	}
	if token == "" {
		return errf(400, InvalidRequest, "Missing parameter: token")
	}
	if rc, e := s.parseRefreshForLogout(ctx, v, token); e == nil {
		if rc.Azp != c.ClientID {
			return nil
		}
		if err := s.endSession(ctx, realm, rc.Sid); err != nil && !errors.Is(err, store.ErrNotFound) {
			return s.internal("revoke session", err)
		}
		return nil
	}
	p, e := s.authenticate(ctx, realm, token, false)
	if e != nil || p.ClientID != c.ClientID || p.TokenID == "" {
		return nil
	}
	err := s.st.Revoke(ctx, store.Revocation{Realm: realm, JTI: p.TokenID, Expires: p.Expires, Created: s.now()})
	if err != nil {
		return s.internal("revoke", err)
	}
	s.mu.Lock()
	s.revoked[key2(realm, p.TokenID)] = p.Expires
	s.mu.Unlock()
	s.tokens.drop(realm, token)
	return nil
}

// tokenCache holds verified bearer tokens, keyed by the token, bounded by
// the CLOCK policy (clockCache): the tokens in use stay, and a flood of
// tokens checked once pushes out only its own kind.
type tokenCache struct {
	mu sync.RWMutex
	c  *clockCache[*Principal]
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{c: newClockCache[*Principal](max)}
}

func (c *tokenCache) get(realm, token string) *Principal {
	c.mu.RLock()
	p, _ := c.c.get(token)
	c.mu.RUnlock()
	if p != nil && p.Realm != realm {
		return nil
	}
	return p
}

func (c *tokenCache) put(realm, token string, p *Principal) {
	c.mu.Lock()
	c.c.put(token, p)
	c.mu.Unlock()
}

func (c *tokenCache) drop(realm, token string) {
	c.mu.Lock()
	c.c.remove(token)
	c.mu.Unlock()
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	c.c.clear()
	c.mu.Unlock()
}
