package core

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwt"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Token types, as Keycloak writes them in the typ claim.
const (
	TypeBearer  = "Bearer"
	TypeRefresh = "Refresh"
	TypeOffline = "Offline"
	TypeID      = "ID"
)

// accessClaims is Keycloak's access-token claim set. Field order follows
// Keycloak's so that tokens read the same to anyone comparing them.
type accessClaims struct {
	Exp            int64               `json:"exp"`
	Iat            int64               `json:"iat"`
	AuthTime       int64               `json:"auth_time,omitempty"`
	Jti            string              `json:"jti"`
	Iss            string              `json:"iss"`
	Aud            any                 `json:"aud,omitempty"`
	Sub            string              `json:"sub"`
	Typ            string              `json:"typ"`
	Azp            string              `json:"azp"`
	Sid            string              `json:"sid,omitempty"`
	Acr            string              `json:"acr,omitempty"`
	AllowedOrigins []string            `json:"allowed-origins,omitempty"`
	RealmAccess    *roleList           `json:"realm_access,omitempty"`
	ResourceAccess map[string]roleList `json:"resource_access,omitempty"`
	Scope          string              `json:"scope"`
	ClientID       string              `json:"client_id,omitempty"`
	Organization   []string            `json:"organization,omitempty"`
	userClaims
}

// userClaims are the profile and email claims, shared by access tokens,
// ID tokens and userinfo.
type userClaims struct {
	EmailVerified     *bool  `json:"email_verified,omitempty"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	GivenName         string `json:"given_name,omitempty"`
	FamilyName        string `json:"family_name,omitempty"`
	Email             string `json:"email,omitempty"`
}

type roleList struct {
	Roles []string `json:"roles"`
}

type idClaims struct {
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Jti      string `json:"jti"`
	Iss      string `json:"iss"`
	Aud      string `json:"aud"`
	Sub      string `json:"sub"`
	Typ      string `json:"typ"`
	Azp      string `json:"azp"`
	Nonce    string `json:"nonce,omitempty"`
	Sid      string `json:"sid,omitempty"`
	AtHash   string `json:"at_hash,omitempty"`
	Acr      string `json:"acr,omitempty"`
	userClaims
	Organization []string `json:"organization,omitempty"`
}

// refreshClaims is the refresh token: an HS256 JWT whose authority is the
// session row it names. Gen is the rotation generation it belongs to.
type refreshClaims struct {
	Exp   int64  `json:"exp,omitempty"`
	Iat   int64  `json:"iat"`
	Jti   string `json:"jti"`
	Iss   string `json:"iss"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Typ   string `json:"typ"`
	Azp   string `json:"azp"`
	Sid   string `json:"sid"`
	Scope string `json:"scope"`
	Gen   string `json:"gen,omitempty"`
}

// TokenResponse is a successful token grant, in Keycloak's field names.
type TokenResponse struct {
	AccessToken      string `json:"access_token"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshExpiresIn int64  `json:"refresh_expires_in"`
	RefreshToken     string `json:"refresh_token,omitempty"`
	TokenType        string `json:"token_type"`
	IDToken          string `json:"id_token,omitempty"`
	NotBeforePolicy  int64  `json:"not-before-policy"`
	SessionState     string `json:"session_state,omitempty"`
	Scope            string `json:"scope"`
}

// mintInput is everything that determines a token pair. Re-minting the same
// input gives the same claims (the refresh grace window relies on it).
type mintInput struct {
	v        *realmView
	client   *store.Client
	user     *store.User
	sess     *store.Session // nil for client_credentials without session
	scope    scopeSet
	iat      time.Time
	accessID string
	// refresh token, when one is issued
	refreshID  string
	refreshGen string
	refreshExp time.Time // zero: no exp claim (offline without max)
	withID     bool
	nonce      string
}

func (s *Service) mint(ctx context.Context, in mintInput) (*TokenResponse, error) {
	v, c, u := in.v, in.client, in.user
	lifespan := v.accessLifespan(c)
	exp := in.iat.Add(time.Duration(lifespan) * time.Second)
	realmRoles, clientRoles := v.expandRoles(u)
	ac := accessClaims{
		Exp:   exp.Unix(),
		Iat:   in.iat.Unix(),
		Jti:   in.accessID,
		Iss:   v.issuer,
		Sub:   u.ID,
		Typ:   TypeBearer,
		Azp:   c.ClientID,
		Scope: in.scope.tokenScope(v),
	}
	if in.sess != nil {
		ac.AuthTime = in.sess.Started.Unix()
		ac.Sid = in.sess.ID
		ac.Acr = "1"
	}
	if in.scope.has("roles") {
		if len(realmRoles) > 0 {
			ac.RealmAccess = &roleList{Roles: realmRoles}
		}
		if len(clientRoles) > 0 {
			ac.ResourceAccess = map[string]roleList{}
			for cid, rs := range clientRoles {
				ac.ResourceAccess[cid] = roleList{Roles: rs}
			}
		}
	}
	ac.Aud = audience(c.ClientID, clientRoles, in.scope.has("roles"))
	if in.scope.has("web-origins") && len(c.WebOrigins) > 0 {
		ac.AllowedOrigins = resolveWebOrigins(c)
	}
	if u.ServiceAccountClientID != "" {
		ac.ClientID = c.ClientID
	}
	uc := v.userClaims(u, in.scope)
	ac.userClaims = uc
	orgs := v.orgAliases(u, in.scope)
	ac.Organization = orgs

	alg := v.accessAlg(c)
	signer, err := s.keys.Signer(ctx, v.r.Name, alg)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(ac)
	if err != nil {
		return nil, err
	}
	at, err := jwt.Sign(signer, "JWT", payload)
	if err != nil {
		return nil, err
	}
	resp := &TokenResponse{
		AccessToken:     at,
		ExpiresIn:       int64(lifespan),
		TokenType:       TypeBearer,
		NotBeforePolicy: v.r.Settings.NotBefore,
		Scope:           ac.Scope,
	}
	if in.sess != nil {
		resp.SessionState = in.sess.ID
	}
	if in.refreshID != "" {
		typ := TypeRefresh
		if in.sess.Offline {
			typ = TypeOffline
		}
		rc := refreshClaims{
			Iat:   in.iat.Unix(),
			Jti:   in.refreshID,
			Iss:   v.issuer,
			Aud:   v.issuer,
			Sub:   u.ID,
			Typ:   typ,
			Azp:   c.ClientID,
			Sid:   in.sess.ID,
			Scope: in.scope.refreshScope(),
			Gen:   in.refreshGen,
		}
		if !in.refreshExp.IsZero() {
			rc.Exp = in.refreshExp.Unix()
			resp.RefreshExpiresIn = int64(in.refreshExp.Sub(in.iat).Round(time.Second) / time.Second)
		}
		rs, err := s.keys.RefreshSigner(ctx, v.r.Name)
		if err != nil {
			return nil, err
		}
		payload, err := json.Marshal(rc)
		if err != nil {
			return nil, err
		}
		if resp.RefreshToken, err = jwt.Sign(rs, "JWT", payload); err != nil {
			return nil, err
		}
	}
	if in.withID {
		ic := idClaims{
			Exp:          exp.Unix(),
			Iat:          in.iat.Unix(),
			Jti:          deriveID(in.accessID, "id"),
			Iss:          v.issuer,
			Aud:          c.ClientID,
			Sub:          u.ID,
			Typ:          TypeID,
			Azp:          c.ClientID,
			Nonce:        in.nonce,
			AtHash:       atHash(at),
			userClaims:   uc,
			Organization: orgs,
		}
		if in.sess != nil {
			ic.AuthTime = in.sess.Started.Unix()
			ic.Sid = in.sess.ID
			ic.Acr = "1"
		}
		idAlg := c.Attributes["id.token.signed.response.alg"]
		if idAlg == "" {
			idAlg = alg
		}
		idSigner := signer
		if idAlg != alg {
			if idSigner, err = s.keys.Signer(ctx, v.r.Name, idAlg); err != nil {
				return nil, err
			}
		}
		payload, err := json.Marshal(ic)
		if err != nil {
			return nil, err
		}
		if resp.IDToken, err = jwt.Sign(idSigner, "JWT", payload); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// audience follows Keycloak's audience-resolve mapper: every client the
// user holds roles of, except the token's own client. Where that leaves
// nothing, the token is for its own client.
func audience(azp string, clientRoles map[string][]string, withRoles bool) any {
	var aud []string
	if withRoles {
		for cid := range clientRoles {
			if cid != azp {
				aud = append(aud, cid)
			}
		}
	}
	switch len(aud) {
	case 0:
		return azp
	case 1:
		return aud[0]
	}
	sort.Strings(aud)
	return aud
}

func (v *realmView) userClaims(u *store.User, sc scopeSet) userClaims {
	var uc userClaims
	if sc.has("profile") {
		uc.PreferredUsername = u.Username
		uc.GivenName = u.FirstName
		uc.FamilyName = u.LastName
		uc.Name = strings.TrimSpace(u.FirstName + " " + u.LastName)
	}
	if sc.has("email") && u.ServiceAccountClientID == "" {
		uc.Email = u.Email
		ev := u.EmailVerified
		uc.EmailVerified = &ev
	}
	if sc.has("email") && u.ServiceAccountClientID != "" {
		ev := false
		uc.EmailVerified = &ev
	}
	return uc
}

// orgAliases is Keycloak 26's organization claim: the aliases of the
// organizations the user is a member of, when the realm has organizations
// on and the organization scope was granted. gatehouse also sends it when
// the realm lists organizations and the client has the scope by default.
func (v *realmView) orgAliases(u *store.User, sc scopeSet) []string {
	if len(u.Memberships) == 0 || !v.r.Settings.OrganizationsEnabled || !sc.has("organization") {
		return nil
	}
	var out []string
	for _, m := range u.Memberships {
		if o, ok := v.orgs[m.OrgID]; ok && o.Enabled {
			out = append(out, o.Alias)
		}
	}
	sortStrings(out)
	return out
}

func (v *realmView) accessLifespan(c *store.Client) int {
	if n := attrInt(c, "access.token.lifespan"); n > 0 {
		return n
	}
	return v.r.Settings.AccessTokenLifespan
}

func (v *realmView) accessAlg(c *store.Client) string {
	if a := c.Attributes["access.token.signed.response.alg"]; a != "" {
		return a
	}
	if a := v.r.Settings.DefaultSignatureAlgorithm; a != "" {
		return a
	}
	return "RS256"
}

func attrInt(c *store.Client, name string) int {
	s, ok := c.Attributes[name]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func attrBool(c *store.Client, name string, def bool) bool {
	s, ok := c.Attributes[name]
	if !ok {
		return def
	}
	return strings.EqualFold(strings.TrimSpace(s), "true")
}

// atHash is OIDC Core §3.1.3.6's at_hash for SHA-256-based algorithms.
func atHash(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// deriveID derives a stable id from another, so that re-minting a token
// pair gives the ID token the same jti too.
func deriveID(id, purpose string) string {
	h := sha256.Sum256([]byte(purpose + "\x00" + id))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := base64.RawURLEncoding.EncodeToString(b)
	return x
}

func sortStrings(s []string) { sort.Strings(s) }
