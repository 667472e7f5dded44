package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/store"
)

// The authorization-code flow (RFC 6749 §4.1, OpenID Connect Core §3.1,
// PKCE from RFC 7636), with Keycloak's rules for which redirect URIs a
// client may use. The front door parses the request, renders the login
// page and keeps the browser's cookies; every decision is made here.

// AuthRequest is an authorization request as a front door parsed it.
type AuthRequest struct {
	Realm               string
	ClientID            string
	RedirectURI         string
	ResponseType        string
	ResponseMode        string
	Scope               string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              string
	MaxAge              string
	LoginHint           string
	// Request and RequestURI are OpenID Connect's request objects, which
	// gatehouse does not accept; they are carried only to say so.
	Request    string
	RequestURI string
}

// Authorization is a validated authorization request: what the login page
// shows and what the code will be bound to.
type Authorization struct {
	Realm         string
	ClientID      string
	ClientName    string
	RedirectURI   string
	ResponseMode  string // "query", "fragment" or "form_post"
	State         string
	Nonce         string
	Scope         string // the granted scopes, space-separated
	CodeChallenge string
	// ChallengeMethod is "S256" or "plain" when CodeChallenge is set.
	ChallengeMethod string
	// PromptLogin: the client asked for a fresh login (prompt=login or
	// max_age=0). PromptNone: it asked for no page at all.
	PromptLogin bool
	PromptNone  bool
	// MaxAge is the max_age parameter in seconds, -1 when absent.
	MaxAge    int
	LoginHint string
	// LoginExpires is when the login page for this request goes stale
	// (Keycloak's accessCodeLifespanLogin).
	LoginExpires time.Time
}

// CodeGrant is the outcome of a successful authorization: the code to
// send to the redirect URI and the session it belongs to.
type CodeGrant struct {
	Code         string
	SessionState string
	// SSOSession names the session a browser single-sign-on cookie may
	// carry; empty when the login made no session fit for that (an
	// offline session, whose lifetime is not a browser's).
	SSOSession string
	UserID     string
}

// Keycloak's defaults for a realm export without the fields: an
// authorization code lives 60 s, a login page 30 minutes.
const (
	defaultCodeLifespan      = 60
	defaultLoginPageLifespan = 1800
)

// ErrLoginRequired is the answer to prompt=none when the browser has no
// session that may be used (OpenID Connect Core §3.1.2.6).
var ErrLoginRequired = errf(400, "login_required", "Login required")

// Authorize validates an authorization request. When it fails, redirect
// says whether the error may be sent to the request's redirect_uri (it has
// been checked against the client's registered URIs) or must be shown to
// the user instead (RFC 6749 §4.1.2.1: never redirect to an unchecked
// URI). A returned Authorization always carries a validated RedirectURI,
// even with a redirectable error.
func (s *Service) Authorize(ctx context.Context, req AuthRequest) (a *Authorization, e *Error, redirect bool) {
	v, e := s.activeRealm(ctx, req.Realm)
	if e != nil {
		return nil, e, false
	}
	c, e := s.authorizeClient(ctx, v, req)
	if e != nil {
		return nil, e, false
	}
	a = &Authorization{
		Realm:        v.r.Name,
		ClientID:     c.ClientID,
		ClientName:   c.Name,
		RedirectURI:  req.RedirectURI,
		ResponseMode: "query",
		State:        req.State,
		Nonce:        req.Nonce,
		LoginHint:    req.LoginHint,
		MaxAge:       -1,
	}
	switch req.ResponseMode {
	case "", "query":
	case "fragment":
		a.ResponseMode = "fragment"
	case "form_post":
		// The answer is an HTML form the browser posts to the redirect
		// URI: only a web address can receive it.
		if u, err := url.Parse(req.RedirectURI); err != nil || u.Scheme != "https" && u.Scheme != "http" {
			return a, errf(400, InvalidRequest, "Invalid parameter: response_mode"), true
		}
		a.ResponseMode = "form_post"
	default:
		return a, errf(400, InvalidRequest, "Invalid parameter: response_mode"), true
	}
	if e := s.checkAuthParams(v, c, req, a); e != nil {
		return a, e, true
	}
	a.LoginExpires = s.now().Add(time.Duration(realmInt(v, "accessCodeLifespanLogin", defaultLoginPageLifespan)) * time.Second)
	return a, nil, false
}

// authorizeClient finds the client and checks the redirect URI: every
// failure up to here is shown to the user, not redirected.
func (s *Service) authorizeClient(ctx context.Context, v *realmView, req AuthRequest) (*store.Client, *Error) {
	if req.ClientID == "" {
		return nil, errf(400, InvalidRequest, "Missing parameter: client_id")
	}
	c, err := s.client(ctx, v.r.Name, req.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errf(400, UnauthorizedClient, "Client not found")
	}
	if err != nil {
		return nil, s.internal("client lookup", err)
	}
	if !c.Enabled {
		return nil, errf(400, UnauthorizedClient, "Client disabled")
	}
	if req.RedirectURI == "" {
		return nil, errf(400, InvalidRequest, "Missing parameter: redirect_uri")
	}
	if !RedirectURIAllowed(c.RedirectURIs, req.RedirectURI) {
		return nil, errf(400, InvalidRequest, "Invalid parameter: redirect_uri")
	}
	return c, nil
}

// checkAuthParams checks what Keycloak checks once the redirect URI is
// known to be the client's, in Keycloak's order; each failure goes back to
// the client.
func (s *Service) checkAuthParams(v *realmView, c *store.Client, req AuthRequest, a *Authorization) *Error {
	if req.Request != "" {
		return errf(400, "request_not_supported", "Request objects are not supported")
	}
	if req.RequestURI != "" {
		return errf(400, "request_uri_not_supported", "request_uri is not supported")
	}
	switch req.ResponseType {
	case "":
		return errf(400, InvalidRequest, "Missing parameter: response_type")
	case "code":
	default:
		return errf(400, "unsupported_response_type", "Only response_type=code is supported")
	}
	if !c.StandardFlowEnabled {
		return errf(400, UnauthorizedClient, "Client is not allowed to initiate browser login with given response_type. Standard flow is disabled for the client.")
	}
	for _, p := range strings.Fields(req.Prompt) {
		switch p {
		case "none":
			a.PromptNone = true
		case "login":
			a.PromptLogin = true
		}
	}
	if a.PromptNone && len(strings.Fields(req.Prompt)) > 1 {
		return errf(400, InvalidRequest, "Invalid parameter: prompt (none cannot be combined with other values)")
	}
	if req.MaxAge != "" {
		n, ok := parseNonNegative(req.MaxAge)
		if !ok {
			return errf(400, InvalidRequest, "Invalid parameter: max_age")
		}
		a.MaxAge = n
		if n == 0 {
			a.PromptLogin = true
		}
	}
	if e := checkChallenge(c, req, a); e != nil {
		return e
	}
	scope, e := v.grantScopes(c, req.Scope)
	if e != nil {
		return e
	}
	a.Scope = scope.refreshScope()
	return nil
}

// checkChallenge applies RFC 7636 §4.3 and the client's
// pkce.code.challenge.method attribute, which makes PKCE with that method
// mandatory (Keycloak's "Proof Key for Code Exchange Code Challenge
// Method").
func checkChallenge(c *store.Client, req AuthRequest, a *Authorization) *Error {
	required := c.Attributes["pkce.code.challenge.method"]
	method := req.CodeChallengeMethod
	if req.CodeChallenge == "" {
		if required != "" {
			return errf(400, InvalidRequest, "Missing parameter: code_challenge")
		}
		if method != "" {
			return errf(400, InvalidRequest, "Missing parameter: code_challenge")
		}
		return nil
	}
	if method == "" {
		if required != "" {
			return errf(400, InvalidRequest, "Missing parameter: code_challenge_method")
		}
		method = "plain" // RFC 7636 §4.3
	}
	if method != "S256" && method != "plain" {
		return errf(400, InvalidRequest, "Invalid parameter: code_challenge_method")
	}
	if required != "" && method != required {
		return errf(400, InvalidRequest, "Invalid parameter: code challenge method is not configured one")
	}
	if !validPKCEString(req.CodeChallenge) {
		return errf(400, InvalidRequest, "Invalid parameter: code_challenge")
	}
	a.CodeChallenge, a.ChallengeMethod = req.CodeChallenge, method
	return nil
}

// validPKCEString is RFC 7636 §4.1's code_verifier syntax, which a plain
// challenge shares and an S256 challenge (43 characters of base64url)
// satisfies.
func validPKCEString(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~') {
			return false
		}
	}
	return true
}

func parseNonNegative(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// RedirectURIAllowed is Keycloak's redirect-URI check (RedirectUtils): the
// URI equals a registered one, or a registered pattern ends in "*" and the
// URI, without its query, starts with what precedes the "*" (a lone "*"
// allows any URI, as in Keycloak). Unlike Keycloak, relative patterns
// (resolved against a rootUrl gatehouse does not keep) match nothing; a
// URI with a fragment (RFC 6749 §3.1.2) never matches; and a URI matched
// by a pattern must not carry userinfo, dot segments or encoded slashes,
// dots or backslashes, so that a prefix cannot be walked out of.
func RedirectURIAllowed(registered []string, uri string) bool {
	if uri == "" || len(uri) > 2048 || strings.ContainsAny(uri, "#\\ \t\r\n") {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return false
	}
	for _, r := range registered {
		if r == uri {
			return true
		}
	}
	if u.User != nil || u.Opaque != "" || (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return false
	}
	noQuery, _, _ := strings.Cut(uri, "?")
	lower := strings.ToLower(noQuery)
	if strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == ".." || seg == "." {
			return false
		}
	}
	for _, r := range registered {
		prefix, ok := strings.CutSuffix(r, "*")
		if !ok || strings.Contains(prefix, "?") || !absolutePattern(prefix) {
			continue
		}
		if strings.HasPrefix(noQuery, prefix) {
			return true
		}
	}
	return false
}

// absolutePattern reports whether a registered pattern's prefix is absolute
// (has a scheme) or empty (the pattern "*").
func absolutePattern(prefix string) bool {
	if prefix == "" {
		return true
	}
	i := strings.Index(prefix, ":")
	return i > 0 && !strings.ContainsAny(prefix[:i], "/?")
}

// codeClaims is what an authorization code carries.
type codeClaims struct {
	Realm     string `json:"r"`
	ClientID  string `json:"c"`
	Redirect  string `json:"u"`
	Challenge string `json:"pc,omitempty"`
	Method    string `json:"pm,omitempty"`
	Nonce     string `json:"n,omitempty"`
	Scope     string `json:"s"`
	SessionID string `json:"sid"`
	UserID    string `json:"sub"`
	ID        string `json:"jti"`
	Iat       int64  `json:"iat"` // Unix milliseconds
	Exp       int64  `json:"exp"` // Unix milliseconds
}

// codeContext is sealed in front of a code's JSON, so that nothing else
// sealed with the master key (a portal cookie, say) can pass for a code.
const codeContext = "gatehouse-authorization-code-v1\x00"

// An authorization code is its own state, encrypted and authenticated with
// the master key (AES-256-GCM through keys.Manager.Seal): only the server
// can make one, the browser that carries it can read nothing in it (nonce,
// PKCE challenge, session), and no store table or migration is needed.
// What must be shared between replicas is single use, and that is the
// store's UseOnce, a row written in its own transaction: a code is
// accepted once on one node or many. Every replica already shares the
// master key, which is what lets a code issued by one be redeemed at
// another.
func (s *Service) sealCode(cc codeClaims) (string, error) {
	return keys.SealJSON(s.keys, codeContext, cc)
}

func (s *Service) openCode(code string) (*codeClaims, bool) {
	if code == "" || len(code) > 4096 {
		return nil, false
	}
	var cc codeClaims
	if keys.OpenJSON(s.keys, codeContext, code, &cc) != nil || cc.ID == "" || cc.SessionID == "" {
		return nil, false
	}
	return &cc, true
}

// LoginWithPassword authenticates the user of an authorization request by
// password (the same check, brute-force protection and answers as the
// password grant), starts a session and issues its code.
func (s *Service) LoginWithPassword(ctx context.Context, a *Authorization, username, pw, ip, ua string) (*CodeGrant, *Error) {
	v, c, e := s.authorizationClient(ctx, a)
	if e != nil {
		return nil, e
	}
	u, e := s.checkPassword(ctx, v, username, pw, ip)
	if e != nil {
		return nil, e
	}
	return s.codeForNewSession(ctx, v, c, u, a, ip, ua, nil)
}

// LoginWithSession answers an authorization request from the browser
// session sid (its single-sign-on cookie) without a login page. It fails
// with ErrLoginRequired when that session may not be used: it ended, its
// user is disabled or is not userID, or it is older than max_age.
func (s *Service) LoginWithSession(ctx context.Context, a *Authorization, sid, userID, ip, ua string) (*CodeGrant, *Error) {
	v, c, e := s.authorizationClient(ctx, a)
	if e != nil {
		return nil, e
	}
	sess, u, e := s.ActiveSession(ctx, v.r.Name, sid)
	if e != nil {
		if e.Status >= 500 {
			return nil, e
		}
		return nil, ErrLoginRequired
	}
	if sess.Offline || u.ID != userID {
		return nil, ErrLoginRequired
	}
	if a.MaxAge >= 0 && s.now().Sub(sess.Started) > time.Duration(a.MaxAge)*time.Second {
		return nil, ErrLoginRequired
	}
	// The session the browser logged in with serves its own client again
	// as long as the scopes are the same; another client, or other
	// scopes, get a session of their own (a gatehouse session belongs to
	// one client and one scope set), authenticated at the same time.
	if sess.ClientID == c.ClientID && sess.Scope == a.Scope {
		code, e := s.issueCode(v, a, sess, u)
		if e != nil {
			return nil, e
		}
		return &CodeGrant{Code: code, SessionState: sess.ID, SSOSession: sess.ID, UserID: u.ID}, nil
	}
	g, e := s.codeForNewSession(ctx, v, c, u, a, ip, ua, sess)
	if e != nil {
		return nil, e
	}
	g.SSOSession = sess.ID
	return g, nil
}

// authorizationClient re-reads the realm and client of a validated
// request: a login page may be submitted long after it was shown, and the
// client may have been disabled meanwhile.
func (s *Service) authorizationClient(ctx context.Context, a *Authorization) (*realmView, *store.Client, *Error) {
	v, e := s.activeRealm(ctx, a.Realm)
	if e != nil {
		return nil, nil, e
	}
	c, err := s.client(ctx, v.r.Name, a.ClientID)
	if err != nil || !c.Enabled || !c.StandardFlowEnabled || !RedirectURIAllowed(c.RedirectURIs, a.RedirectURI) {
		return nil, nil, errf(400, UnauthorizedClient, "Client not allowed")
	}
	return v, c, nil
}

func (s *Service) codeForNewSession(ctx context.Context, v *realmView, c *store.Client, u *store.User, a *Authorization, ip, ua string, parent *store.Session) (*CodeGrant, *Error) {
	scope := scopeSet(strings.Fields(a.Scope))
	offline := scope.has("offline_access")
	if offline {
		roles, _ := v.expandRoles(u)
		if !hasString(roles, "offline_access") {
			return nil, errf(400, InvalidScope, "Offline tokens not allowed for the user or client")
		}
	}
	sess, e := s.startSessionFrom(ctx, v, c, u, scope, offline, ip, ua, parent)
	if e != nil {
		return nil, e
	}
	code, e := s.issueCode(v, a, sess, u)
	if e != nil {
		return nil, e
	}
	g := &CodeGrant{Code: code, SessionState: sess.ID, UserID: u.ID}
	if !offline {
		g.SSOSession = sess.ID
	}
	return g, nil
}

func (s *Service) issueCode(v *realmView, a *Authorization, sess *store.Session, u *store.User) (string, *Error) {
	now := s.now()
	life := time.Duration(realmInt(v, "accessCodeLifespan", defaultCodeLifespan)) * time.Second
	code, err := s.sealCode(codeClaims{
		Realm: v.r.Name, ClientID: a.ClientID, Redirect: a.RedirectURI,
		Challenge: a.CodeChallenge, Method: a.ChallengeMethod, Nonce: a.Nonce,
		Scope: a.Scope, SessionID: sess.ID, UserID: u.ID, ID: newID(),
		Iat: now.UnixMilli(), Exp: now.Add(life).UnixMilli(),
	})
	if err != nil {
		return "", s.internal("seal code", err)
	}
	return code, nil
}

// useOnceMargin keeps a redeemed code's record past the code's own expiry,
// so that clocks a little apart on two replicas cannot reopen it.
const useOnceMargin = 5 * time.Minute

var errBadCode = errf(400, InvalidGrant, "Code not valid")

// authorizationCodeGrant is RFC 6749 §4.1.3 with RFC 7636 §4.6, for a
// client already authenticated as for any other grant.
func (s *Service) authorizationCodeGrant(ctx context.Context, v *realmView, c *store.Client, req TokenRequest) (*TokenResponse, *Error) {
	if req.Code == "" {
		return nil, errf(400, InvalidRequest, "Missing parameter: code")
	}
	cc, ok := s.openCode(req.Code)
	if !ok || cc.Realm != v.r.Name {
		return nil, errBadCode
	}
	now := s.now()
	if now.UnixMilli() >= cc.Exp {
		return nil, errf(400, InvalidGrant, "Code is expired")
	}
	if !c.StandardFlowEnabled {
		return nil, errf(400, UnauthorizedClient, "Client not allowed to exchange code")
	}
	if cc.ClientID != c.ClientID {
		return nil, errf(400, InvalidGrant, "Auth error: code was issued to another client")
	}
	if req.RedirectURI != cc.Redirect {
		return nil, errf(400, InvalidGrant, "Incorrect redirect_uri")
	}
	if e := verifyPKCE(cc.Challenge, cc.Method, req.CodeVerifier); e != nil {
		return nil, e
	}
	// Single use is decided last, so that a presentation that fails the
	// checks above (a thief without the PKCE verifier, say) cannot burn
	// the code before its client redeems it.
	err := s.st.UseOnce(ctx, v.r.Name, "code\x00"+cc.ID, time.UnixMilli(cc.Exp).Add(useOnceMargin))
	if errors.Is(err, store.ErrAlreadyExists) {
		// RFC 6749 §4.1.2: a code used twice may have been stolen; the
		// session it started ends, and with it every token issued from
		// the code.
		if derr := s.endSession(ctx, v.r.Name, cc.SessionID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			s.log.Warn("ending the session of a reused code failed", "realm", v.r.Name, "err", derr)
		}
		return nil, errBadCode
	}
	if err != nil {
		return nil, s.internal("code use", err)
	}
	notActive := errf(400, InvalidGrant, "Session not active")
	sess, err := s.st.GetSession(ctx, v.r.Name, cc.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notActive
	}
	if err != nil {
		return nil, s.internal("session lookup", err)
	}
	if sess.UserID != cc.UserID || sess.ClientID != c.ClientID || sess.Expires.IsZero() || !now.Before(sess.Expires) {
		return nil, notActive
	}
	u, err := s.user(ctx, v.r.Name, sess.UserID)
	if err != nil || !u.Enabled {
		return nil, notActive
	}
	iat := now.Truncate(time.Second)
	if nb := v.r.Settings.NotBefore; nb != 0 && cc.Iat/1000 < nb {
		return nil, errStale
	}
	if u.NotBefore != 0 && cc.Iat/1000 < u.NotBefore {
		return nil, errStale
	}
	scope := scopeSet(strings.Fields(cc.Scope))
	in := mintInput{
		v: v, client: c, user: u, sess: &sess, scope: scope, iat: iat,
		accessID: newID(), withID: scope.has("openid"), nonce: cc.Nonce,
	}
	if attrBool(c, "use.refresh.tokens", true) {
		in.refreshID = newID()
		in.refreshGen = sess.RefreshID
		if !sess.Offline || v.r.Settings.OfflineSessionMaxLifespanEnabled {
			in.refreshExp = sess.Expires
		}
	}
	resp, err := s.mint(ctx, in)
	if err != nil {
		return nil, s.internal("mint", err)
	}
	return resp, nil
}

// verifyPKCE is RFC 7636 §4.6. A verifier without a challenge is refused
// too: it means the authorization request lost its challenge on the way,
// which is what a downgrade attack looks like (RFC 9700 §2.1.1).
func verifyPKCE(challenge, method, verifier string) *Error {
	if challenge == "" {
		if verifier != "" {
			return errf(400, InvalidGrant, "PKCE code verifier specified but challenge not present in authorization")
		}
		return nil
	}
	if verifier == "" {
		return errf(400, InvalidGrant, "PKCE code verifier not specified")
	}
	bad := errf(400, InvalidGrant, "PKCE verification failed: Invalid code verifier")
	if !validPKCEString(verifier) {
		return bad
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) != 1 {
		return bad
	}
	return nil
}

// realmInt reads a Keycloak realm field that gatehouse keeps among the
// realm's extra fields (accessCodeLifespan and accessCodeLifespanLogin),
// with Keycloak's default when absent or not a positive number.
func realmInt(v *realmView, name string, def int) int {
	switch n := v.r.Settings.Extra[name].(type) {
	case float64:
		if n >= 1 && n <= 1<<30 {
			return int(n)
		}
	case int:
		if n >= 1 && n <= 1<<30 {
			return n
		}
	}
	return def
}

// WebOriginAllowed reports whether a browser page at origin may read the
// answers the client's requests get, by the client's webOrigins as
// Keycloak reads them: an exact origin, "*" for any, "+" for the origins
// of the client's redirect URIs.
func (s *Service) WebOriginAllowed(ctx context.Context, realm, clientID, origin string) bool {
	if origin == "" || clientID == "" {
		return false
	}
	c, err := s.client(ctx, realm, clientID)
	if err != nil || !c.Enabled {
		return false
	}
	return originAllowed(c, origin)
}

// RealmWebOrigins is every origin some enabled client of realm allows, and
// whether one of them allows any origin: what a CORS preflight, which
// names no client, may be answered for.
func (s *Service) RealmWebOrigins(ctx context.Context, realm string) (origins map[string]bool, anyOrigin bool, err error) {
	cs, err := s.st.ListClients(ctx, realm)
	if err != nil {
		return nil, false, err
	}
	origins = map[string]bool{}
	for i := range cs {
		c := &cs[i]
		if !c.Enabled {
			continue
		}
		for _, o := range c.WebOrigins {
			switch o {
			case "*":
				anyOrigin = true
			case "+":
				for _, r := range c.RedirectURIs {
					if ro := uriOrigin(r); ro != "" {
						origins[ro] = true
					}
				}
			default:
				origins[o] = true
			}
		}
	}
	return origins, anyOrigin, nil
}

func originAllowed(c *store.Client, origin string) bool {
	for _, o := range c.WebOrigins {
		switch o {
		case "*":
			return true
		case "+":
			for _, r := range c.RedirectURIs {
				if ro := uriOrigin(r); ro != "" && ro == origin {
					return true
				}
			}
		default:
			if o == origin {
				return true
			}
		}
	}
	return false
}

// resolveWebOrigins is the client's webOrigins with "+" replaced by its
// redirect URIs' origins, as Keycloak writes them in a token's
// allowed-origins claim.
func resolveWebOrigins(c *store.Client) []string {
	if !hasString(c.WebOrigins, "+") {
		return c.WebOrigins
	}
	var out []string
	add := func(o string) {
		if o != "" && !hasString(out, o) {
			out = append(out, o)
		}
	}
	for _, o := range c.WebOrigins {
		if o != "+" {
			add(o)
			continue
		}
		for _, r := range c.RedirectURIs {
			add(uriOrigin(r))
		}
	}
	return out
}

// uriOrigin is the origin (scheme://host[:port]) of an absolute http(s)
// redirect URI or pattern, "" for anything else.
func uriOrigin(raw string) string {
	raw = strings.TrimSuffix(raw, "*")
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return ""
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	if host == "" || strings.ContainsAny(host, "@*") {
		return ""
	}
	return scheme + "://" + host
}
