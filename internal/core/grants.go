package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwt"
	"github.com/gatehouse/gatehouse/internal/store"
)

// TokenRequest is a token-endpoint request, already parsed by a front door.
type TokenRequest struct {
	Realm        string
	GrantType    string
	Client       ClientAuth
	Username     string
	Password     string
	RefreshToken string
	Scope        string
	// Code, RedirectURI and CodeVerifier are the authorization_code
	// grant's parameters (RFC 6749 §4.1.3, RFC 7636 §4.5).
	Code         string
	RedirectURI  string
	CodeVerifier string
	// Endpoint is the URL the request was sent to (an accepted audience of
	// a client assertion).
	Endpoint  string
	ClientIP  string
	UserAgent string
	// forceIDToken mints an ID token on a refresh even when the session
	// was not granted openid (RenewIDToken's whole answer is one).
	forceIDToken bool
}

// Grant types.
const (
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantAuthorizationCode = "authorization_code"
)

var errInvalidCredentials = errf(401, InvalidGrant, "Invalid user credentials")

// Token runs one token grant.
func (s *Service) Token(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	v, e := s.activeRealm(ctx, req.Realm)
	if e != nil {
		return nil, e
	}
	if req.GrantType == "" {
		return nil, errf(400, InvalidRequest, "Missing form parameter: grant_type")
	}
	switch req.GrantType {
	case GrantPassword, GrantClientCredentials, GrantRefreshToken, GrantAuthorizationCode:
	default:
		return nil, errf(400, UnsupportedGrantType, "Unsupported grant_type")
	}
	c, e := s.authenticateClient(ctx, v, req.Client, req.Endpoint)
	if e != nil {
		return nil, e
	}
	var resp *TokenResponse
	switch req.GrantType {
	case GrantPassword:
		resp, e = s.passwordGrant(ctx, v, c, req)
	case GrantClientCredentials:
		resp, e = s.clientCredentialsGrant(ctx, v, c, req)
	case GrantRefreshToken:
		resp, e = s.refreshGrant(ctx, v, c, req)
	case GrantAuthorizationCode:
		resp, e = s.authorizationCodeGrant(ctx, v, c, req)
	}
	if e != nil {
		return nil, e
	}
	return resp, nil
}

// activeRealm returns the realm or the error Keycloak gives for a missing
// or disabled one.
func (s *Service) activeRealm(ctx context.Context, name string) (*realmView, *Error) {
	v, err := s.realm(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errf(404, "Realm does not exist", "Realm does not exist")
	}
	if err != nil {
		return nil, s.internal("realm lookup", err)
	}
	if !v.r.Enabled {
		return nil, errf(403, "Realm not enabled", "Realm not enabled")
	}
	return v, nil
}

// CheckPassword authenticates a user of realm by username (or email) and
// password, with brute-force detection, in constant time whether or not the
// user exists. Front doors with their own login (the Fusio consumer login,
// the portal) call it; the password grant does too.
func (s *Service) CheckPassword(ctx context.Context, realm, username, pw, clientIP string) (*store.User, *Error) {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return nil, e
	}
	return s.checkPassword(ctx, v, username, pw, clientIP)
}

// errAbandoned answers a login whose client stopped waiting (its request
// ended) before a password-hashing slot was free. Nobody reads it; it is
// not a 5xx of the server's making, and it counts as no failed attempt.
var errAbandoned = errf(503, "temporarily_unavailable", "The request ended before the password could be checked")

func (s *Service) checkPassword(ctx context.Context, v *realmView, username, pw, clientIP string) (*store.User, *Error) {
	if username == "" {
		return nil, errf(401, InvalidGrant, "Invalid user credentials")
	}
	name := strings.ToLower(strings.TrimSpace(username))
	u, err := s.st.GetUserByUsername(ctx, v.r.Name, name)
	if errors.Is(err, store.ErrNotFound) && strings.Contains(name, "@") {
		u, err = s.st.GetUserByEmail(ctx, v.r.Name, name)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.PasswordHash == "" || u.ServiceAccountClientID != "")) {
		if s.pw.VerifyDummyContext(ctx, pw) != nil {
			return nil, errAbandoned
		}
		return nil, errInvalidCredentials
	}
	if err != nil {
		return nil, s.internal("user lookup", err)
	}
	now := s.now()
	locked, e := s.lockedOut(ctx, v, u.ID, now)
	if e != nil {
		return nil, e
	}
	ok, rehash, err := s.pw.VerifyContext(ctx, u.PasswordHash, pw)
	if err != nil {
		// Nothing was checked: no failure to count, nobody to answer.
		return nil, errAbandoned
	}
	if locked {
		// Same work, same answer as a wrong password: a guesser learns
		// nothing from the lock.
		return nil, errInvalidCredentials
	}
	if !ok {
		if e := s.recordFailure(ctx, v, u.ID, clientIP, now); e != nil {
			return nil, e
		}
		return nil, errInvalidCredentials
	}
	if e := s.recordSuccess(ctx, v, u.ID); e != nil {
		return nil, e
	}
	if !u.Enabled {
		return nil, errf(400, InvalidGrant, "Account disabled")
	}
	if len(u.RequiredActions) > 0 {
		return nil, errf(400, InvalidGrant, "Account is not fully set up")
	}
	if rehash {
		if h, err := s.pw.Hash(pw); err == nil {
			err = s.st.UpdateUser(ctx, v.r.Name, u.ID, func(cur store.User) (store.User, error) {
				cur.PasswordHash = h
				return cur, nil
			})
			if err != nil {
				s.log.Warn("password rehash not stored", "realm", v.r.Name, "user", u.ID, "err", err)
			}
		}
	}
	return &u, nil
}

func (s *Service) passwordGrant(ctx context.Context, v *realmView, c *store.Client, req TokenRequest) (*TokenResponse, *Error) {
	if !c.DirectAccessGrantsEnabled {
		return nil, errf(400, UnauthorizedClient, "Client not allowed for direct access grants")
	}
	if req.Username == "" {
		return nil, errf(400, InvalidRequest, "Missing parameter: username")
	}
	u, e := s.checkPassword(ctx, v, req.Username, req.Password, req.ClientIP)
	if e != nil {
		return nil, e
	}
	return s.Login(ctx, LoginRequest{Realm: v.r.Name, ClientID: c.ClientID, UserID: u.ID, Scope: req.Scope, IP: req.ClientIP, UserAgent: req.UserAgent})
}

// startSession creates a login session of u at client c under the realm's
// session limits (offline sessions are not counted, as in Keycloak), and
// forgets at once, on this node, the sessions a "terminate oldest" limit
// ended.
func (s *Service) startSession(ctx context.Context, v *realmView, c *store.Client, u *store.User, scope scopeSet, offline bool, ip, ua string) (*store.Session, *Error) {
	return s.startSessionFrom(ctx, v, c, u, scope, offline, ip, ua, nil)
}

// startSessionFrom is startSession for a login that an earlier session
// vouches for (browser single sign-on): the new session keeps the earlier
// one's authentication time, which also bounds its max lifespan, and
// names it as its parent. parent nil is a fresh login.
func (s *Service) startSessionFrom(ctx context.Context, v *realmView, c *store.Client, u *store.User, scope scopeSet, offline bool, ip, ua string, parent *store.Session) (*store.Session, *Error) {
	now := s.now().Truncate(time.Second)
	started := now
	parentID := ""
	if parent != nil {
		started, parentID = parent.Started, parent.ID
	}
	sess := &store.Session{
		ID:        newID(),
		Realm:     v.r.Name,
		UserID:    u.ID,
		ClientID:  c.ClientID,
		Offline:   offline,
		Started:   started,
		LastSeen:  now,
		ParentID:  parentID,
		Scope:     scope.refreshScope(),
		RefreshID: newID(),
		IP:        ip,
		UserAgent: ua,
	}
	sess.Expires = v.sessionLifetimes(c, offline).expiry(started, now)
	// Without a session limit there is nothing to decide, and reading the
	// user's sessions would make every login cost as much as the user has
	// sessions (a script that never logs out has thousands); expired ones
	// go with the periodic prune instead.
	var check func([]store.Session) ([]string, error)
	var ended []string
	if lim := v.r.Settings.SessionLimits; !offline && lim != nil && (lim.RealmLimit > 0 || lim.ClientLimit > 0) {
		admit := limitAdmit(lim, c.ClientID, now)
		// The store may run check more than once; the last run is the
		// one that committed.
		check = func(existing []store.Session) ([]string, error) {
			end, err := admit(existing)
			ended = end
			return end, err
		}
	}
	err := s.st.CreateSession(ctx, *sess, check)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, s.internal("create session", err)
	}
	s.sessionsEnded(v.r.Name, ended...)
	return sess, nil
}

// LoginRequest starts a session for a user whose credentials a front door
// has already checked with CheckPassword.
type LoginRequest struct {
	Realm, ClientID, UserID string
	Scope                   string
	IP, UserAgent           string
	// NoRefresh: the door has no use for a refresh token.
	NoRefresh bool
}

// Login creates a session (subject to the realm's session limits) and
// mints its first token pair.
func (s *Service) Login(ctx context.Context, lr LoginRequest) (*TokenResponse, *Error) {
	v, e := s.activeRealm(ctx, lr.Realm)
	if e != nil {
		return nil, e
	}
	c, err := s.client(ctx, v.r.Name, lr.ClientID)
	if err != nil {
		return nil, errBadClient
	}
	u, err := s.user(ctx, v.r.Name, lr.UserID)
	if err != nil {
		return nil, errInvalidCredentials
	}
	scope, e := v.grantScopes(c, lr.Scope)
	if e != nil {
		return nil, e
	}
	offline := scope.has("offline_access")
	if offline {
		roles, _ := v.expandRoles(u)
		if !hasString(roles, "offline_access") {
			return nil, errf(400, InvalidScope, "Offline tokens not allowed for the user or client")
		}
	}
	sess, e := s.startSession(ctx, v, c, u, scope, offline, lr.IP, lr.UserAgent)
	if e != nil {
		return nil, e
	}
	now := sess.Started
	in := mintInput{
		v: v, client: c, user: u, sess: sess, scope: scope, iat: now,
		accessID: newID(), withID: scope.has("openid"),
	}
	if !lr.NoRefresh && attrBool(c, "use.refresh.tokens", true) {
		in.refreshID = newID()
		in.refreshGen = sess.RefreshID
		if !offline || v.r.Settings.OfflineSessionMaxLifespanEnabled {
			in.refreshExp = sess.Expires
		}
	}
	resp, err := s.mint(ctx, in)
	if err != nil {
		return nil, s.internal("mint", err)
	}
	return resp, nil
}

func (s *Service) clientCredentialsGrant(ctx context.Context, v *realmView, c *store.Client, req TokenRequest) (*TokenResponse, *Error) {
	if c.Public {
		return nil, errf(400, UnauthorizedClient, "Public client not allowed to retrieve service account")
	}
	if !c.ServiceAccountsEnabled {
		return nil, errf(400, UnauthorizedClient, "Client not enabled to retrieve service account")
	}
	if c.ServiceAccountUserID == "" {
		return nil, errf(400, UnauthorizedClient, "Client has no service account user")
	}
	u, err := s.user(ctx, v.r.Name, c.ServiceAccountUserID)
	if err != nil || !u.Enabled {
		return nil, errf(400, UnauthorizedClient, "Service account user disabled or missing")
	}
	if attrBool(c, "client_credentials.use_refresh_token", false) {
		return s.Login(ctx, LoginRequest{Realm: v.r.Name, ClientID: c.ClientID, UserID: u.ID, Scope: req.Scope, IP: req.ClientIP, UserAgent: req.UserAgent})
	}
	scope, e := v.grantScopes(c, req.Scope)
	if e != nil {
		return nil, e
	}
	if scope.has("offline_access") {
		return nil, errf(400, InvalidScope, "Offline tokens not allowed for the user or client")
	}
	now := s.now().Truncate(time.Second)
	resp, err := s.mint(ctx, mintInput{v: v, client: c, user: u, scope: scope, iat: now, accessID: newID(), withID: scope.has("openid")})
	if err != nil {
		return nil, s.internal("mint", err)
	}
	return resp, nil
}

// parseRefresh verifies a refresh token of realm v: signature with the
// realm's HMAC key (an access token, signed with a signing key, can never
// pass), issuer, type, expiry.
func (s *Service) parseRefresh(ctx context.Context, v *realmView, token string) (*refreshClaims, *Error) {
	bad := errf(400, InvalidGrant, "Invalid refresh token")
	if token == "" {
		return nil, errf(400, InvalidRequest, "Missing parameter: refresh_token")
	}
	p, err := jwt.Parse(token)
	if err != nil {
		return nil, bad
	}
	if err := s.keys.Verify(ctx, v.r.Name, "hmac", p); err != nil {
		return nil, bad
	}
	var rc refreshClaims
	if err := json.Unmarshal(p.Payload, &rc); err != nil {
		return nil, bad
	}
	if rc.Iss != v.issuer || (rc.Typ != TypeRefresh && rc.Typ != TypeOffline) || rc.Sid == "" {
		return nil, bad
	}
	if rc.Exp != 0 && s.now().Unix() >= rc.Exp {
		return nil, errf(400, InvalidGrant, "Token is not active")
	}
	return &rc, nil
}

// refreshOutcome is what the session update decided.
type refreshOutcome int

const (
	refreshRotate refreshOutcome = iota // first use of the head token: new generation
	refreshReuse                        // allowed reuse: new tokens, same generation
	refreshGrace                        // retry within the grace window: same pair again
	refreshPlain                        // rotation off
)

var errStale = errf(400, InvalidGrant, "Stale token")

func (s *Service) refreshGrant(ctx context.Context, v *realmView, c *store.Client, req TokenRequest) (*TokenResponse, *Error) {
	rc, e := s.parseRefresh(ctx, v, req.RefreshToken)
	if e != nil {
		return nil, e
	}
	if rc.Azp != c.ClientID {
		return nil, errf(400, InvalidGrant, "Invalid refresh token. Token client and authorized client don't match")
	}
	st := v.r.Settings
	if st.NotBefore != 0 && rc.Iat < st.NotBefore {
		return nil, errStale
	}
	now := s.now().Truncate(time.Second)
	life := v.sessionLifetimes(c, rc.Typ == TypeOffline)
	var outcome refreshOutcome
	var updated store.Session
	kill := false
	err := s.st.UpdateSession(ctx, v.r.Name, rc.Sid, func(sess store.Session) (store.Session, error) {
		kill = false
		if sess.UserID != rc.Sub || sess.ClientID != c.ClientID || sess.Offline != (rc.Typ == TypeOffline) {
			return sess, errf(400, InvalidGrant, "Invalid refresh token")
		}
		if !sess.Expires.IsZero() && !now.Before(sess.Expires) {
			kill = true
			return sess, errf(400, InvalidGrant, "Session not active")
		}
		if !st.RevokeRefreshToken {
			outcome = refreshPlain
			if rc.Gen != sess.RefreshID {
				kill = true
				return sess, errStale
			}
		} else {
			switch {
			case rc.Gen == sess.RefreshID:
				outcome = refreshRotate
				sess.PrevRefreshID = sess.RefreshID
				sess.RefreshID = newID()
				sess.RefreshUses = 1
				sess.RotatedAt = now
				sess.IssuedAccessJTI = newID()
			case rc.Gen == sess.PrevRefreshID && sess.RefreshUses < st.RefreshTokenMaxReuse+1:
				outcome = refreshReuse
				sess.RefreshUses++
			case rc.Gen == sess.PrevRefreshID && st.RefreshGraceSeconds > 0 &&
				now.Sub(sess.RotatedAt) <= time.Duration(st.RefreshGraceSeconds)*time.Second:
				outcome = refreshGrace
				updated = sess
				return sess, errNoWrite
			default:
				// Reuse detection (RFC 9700 §4.14.2): a token presented
				// once too often may be in an attacker's hands; end the
				// session so that neither copy works.
				kill = true
				return sess, errStale
			}
		}
		sess.LastSeen = now
		sess.Expires = life.expiry(sess.Started, now)
		updated = sess
		return sess, nil
	})
	if err != nil && !errors.Is(err, errNoWrite) {
		if kill {
			if derr := s.endSession(ctx, v.r.Name, rc.Sid); derr != nil && !errors.Is(derr, store.ErrNotFound) {
				s.log.Warn("ending session failed", "realm", v.r.Name, "err", derr)
			}
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf(400, InvalidGrant, "Session not active")
		}
		var ce *Error
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, s.internal("refresh session", err)
	}
	u, uerr := s.user(ctx, v.r.Name, updated.UserID)
	if uerr != nil {
		return nil, errf(400, InvalidGrant, "Session not active")
	}
	if !u.Enabled {
		return nil, errf(400, InvalidGrant, "User disabled")
	}
	if u.NotBefore != 0 && rc.Iat < u.NotBefore {
		return nil, errStale
	}
	granted := scopeSet(strings.Fields(updated.Scope))
	scope, e := narrowScopes(granted, req.Scope)
	if e != nil {
		return nil, e
	}
	in := mintInput{v: v, client: c, user: u, sess: &updated, scope: scope, iat: now, withID: scope.has("openid") || req.forceIDToken}
	in.refreshGen = updated.RefreshID
	switch outcome {
	case refreshRotate:
		in.accessID = updated.IssuedAccessJTI
		in.refreshID = deriveID(updated.RefreshID, "refresh")
	case refreshGrace:
		// The same pair the rotation issued: same ids, same times.
		in.iat = updated.RotatedAt
		in.accessID = updated.IssuedAccessJTI
		in.refreshID = deriveID(updated.RefreshID, "refresh")
		updated.LastSeen = updated.RotatedAt
	default:
		in.accessID = newID()
		in.refreshID = newID()
	}
	if !updated.Offline || st.OfflineSessionMaxLifespanEnabled {
		in.refreshExp = life.expiry(updated.Started, in.iat)
	}
	resp, err := s.mint(ctx, in)
	if err != nil {
		return nil, s.internal("mint", err)
	}
	return resp, nil
}

// errNoWrite aborts an update function without writing, for outcomes that
// change nothing.
var errNoWrite = errors.New("no write")
