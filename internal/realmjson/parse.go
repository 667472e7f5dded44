// Package realmjson reads and writes Keycloak's realm-export JSON, the format
// gatehouse configures realms with and gives them back in.
//
// Parse maps the fields gatehouse interprets onto the store types and lists
// every other field as Unknown; unknown top-level fields are also kept in
// RealmSettings.Extra so that Export writes them back. Defaults for absent
// fields are those of Keycloak's own importer. docs/realm-json.md lists the
// fields read and written.
package realmjson

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Attribute names gatehouse adds to Keycloak's representations to carry
// what Keycloak has no field for.
const (
	// AttrSecretHash carries a client's hashed secret (base64, standard
	// alphabet): gatehouse stores secrets hashed, so an export cannot give
	// the secret itself.
	AttrSecretHash = "gatehouse.secretHash"
	// AttrSecretSealed carries a client secret sealed with the master key
	// (client_secret_jwt clients only); it opens only where that key is.
	AttrSecretSealed = "gatehouse.secretSealed"
	// AttrOwner carries the id of the user who created an app.
	AttrOwner = "gatehouse.ownerUserId"
	// AttrScopes carries an app's scope limit, space-separated.
	AttrScopes = "gatehouse.scopes"
	// AttrCreated carries a client's creation time, Unix milliseconds.
	AttrCreated = "gatehouse.createdTimestamp"
	// AttrMembershipID carries an organization member's stable membership
	// id (the MU… value).
	AttrMembershipID = "gatehouse.membershipId"
)

// Keycloak attribute and value names this package reads.
const (
	attrJWKS              = "jwks.string"
	attrIncludeInScope    = "include.in.token.scope"
	maskedSecret          = "**********"
	defaultAuthenticator  = "client-secret"
	credentialPassword    = "password"
	actionUpdatePassword  = "UPDATE_PASSWORD"
	sessionLimitsProvider = "user-session-limits"
)

// Keycloak realm defaults, applied where the document has no value.
const (
	DefaultAccessTokenLifespan          = 300
	DefaultSSOSessionIdleTimeout        = 1800
	DefaultSSOSessionMaxLifespan        = 36000
	DefaultOfflineSessionIdleTimeout    = 2592000
	DefaultOfflineSessionMaxLifespan    = 5184000
	DefaultFailureFactor                = 30
	DefaultWaitIncrementSeconds         = 60
	DefaultMaxFailureWaitSeconds        = 900
	DefaultMinimumQuickLoginWaitSeconds = 60
	DefaultQuickLoginCheckMilliSeconds  = 1000
	DefaultMaxDeltaTimeSeconds          = 43200
)

// ClientImport is a client read from an export, with its secret still to be
// hashed by the caller (the hashing key lives outside this package).
type ClientImport struct {
	Client store.Client
	// Secret is the plain "secret" field, "" when there is none, when the
	// export masked it, or when Client.SecretHash came from the
	// gatehouse.secretHash attribute of a gatehouse export.
	Secret string
}

// UserImport is a user read from an export.
type UserImport struct {
	User store.User
	// Password is a plain credential "value" for the caller to hash; ""
	// when the credential came hashed (User.PasswordHash is then set) or
	// when the user has no password.
	Password string
}

// Parsed is one realm-export document as gatehouse understands it.
type Parsed struct {
	Realm   store.Realm
	Clients []ClientImport
	Users   []UserImport
	// Unknown lists the JSON paths of fields gatehouse does not interpret,
	// e.g. "smtpServer" or "clients[2].protocolMappers", in the order Parse
	// meets them, for an importer to warn about.
	Unknown []string
}

// Realm-level keys that Parse interprets; every other top-level key is
// unknown and kept in Settings.Extra.
var realmKeys = []string{
	"realm", "id", "enabled", "displayName",
	"accessTokenLifespan", "ssoSessionIdleTimeout", "ssoSessionMaxLifespan",
	"offlineSessionIdleTimeout", "offlineSessionMaxLifespanEnabled", "offlineSessionMaxLifespan",
	"clientSessionIdleTimeout", "clientSessionMaxLifespan", "notBefore",
	"revokeRefreshToken", "refreshTokenMaxReuse",
	"bruteForceProtected", "permanentLockout", "failureFactor", "waitIncrementSeconds",
	"maxFailureWaitSeconds", "minimumQuickLoginWaitSeconds", "quickLoginCheckMilliSeconds",
	"maxDeltaTimeSeconds",
	"defaultSignatureAlgorithm", "registrationAllowed", "verifyEmail", "passwordPolicy",
	"organizationsEnabled", "organizations",
	"defaultDefaultClientScopes", "defaultOptionalClientScopes", "clientScopes",
	"roles", "defaultRole", "defaultRoles", "clients", "users", "gatehouse",
	"authenticationFlows", "authenticatorConfig", "directGrantFlow",
}

// codeKeys are realm fields the core reads from Settings.Extra (the
// lifetimes of an authorization code and of a login page): kept there
// verbatim, so that an export gives them back, but not reported unknown.
var codeKeys = []string{"accessCodeLifespan", "accessCodeLifespanLogin"}

// Parse reads one realm-export document. Malformed input gives a *PathError
// that names the JSON path of the fault and what is wrong with it.
//
// Absent fields take Keycloak's defaults, including the ones for enabled as
// Keycloak's importer applies them: a realm without "enabled" is disabled, a
// client is enabled, a user is disabled.
func Parse(data []byte) (*Parsed, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, syntaxError(data, err)
	}
	if top == nil {
		return nil, &PathError{Msg: "expected a JSON object (a realm representation)"}
	}
	p := &parser{}
	o := &object{p: p, m: top, seen: map[string]bool{}}
	out := &Parsed{}
	if err := p.realm(o, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *parser) realm(o *object, out *Parsed) error {
	r := &out.Realm
	s := &r.Settings
	s.AccessTokenLifespan = DefaultAccessTokenLifespan
	s.SSOSessionIdleTimeout = DefaultSSOSessionIdleTimeout
	s.SSOSessionMaxLifespan = DefaultSSOSessionMaxLifespan
	s.OfflineSessionIdleTimeout = DefaultOfflineSessionIdleTimeout
	s.OfflineSessionMaxLifespan = DefaultOfflineSessionMaxLifespan
	s.BruteForce = store.BruteForce{
		FailureFactor:                DefaultFailureFactor,
		WaitIncrementSeconds:         DefaultWaitIncrementSeconds,
		MaxFailureWaitSeconds:        DefaultMaxFailureWaitSeconds,
		MinimumQuickLoginWaitSeconds: DefaultMinimumQuickLoginWaitSeconds,
		QuickLoginCheckMilliSeconds:  DefaultQuickLoginCheckMilliSeconds,
		MaxDeltaTimeSeconds:          DefaultMaxDeltaTimeSeconds,
	}

	o.str("realm", &r.Name)
	if o.err == nil && r.Name == "" {
		o.fail("realm", "required: the realm name")
	}
	o.str("id", &r.ID)
	o.boolean("enabled", &r.Enabled)
	o.str("displayName", &s.DisplayName)
	o.integer("accessTokenLifespan", &s.AccessTokenLifespan)
	o.integer("ssoSessionIdleTimeout", &s.SSOSessionIdleTimeout)
	o.integer("ssoSessionMaxLifespan", &s.SSOSessionMaxLifespan)
	o.integer("offlineSessionIdleTimeout", &s.OfflineSessionIdleTimeout)
	o.boolean("offlineSessionMaxLifespanEnabled", &s.OfflineSessionMaxLifespanEnabled)
	o.integer("offlineSessionMaxLifespan", &s.OfflineSessionMaxLifespan)
	o.integer("clientSessionIdleTimeout", &s.ClientSessionIdleTimeout)
	o.integer("clientSessionMaxLifespan", &s.ClientSessionMaxLifespan)
	o.int64("notBefore", &s.NotBefore)
	o.boolean("revokeRefreshToken", &s.RevokeRefreshToken)
	o.integer("refreshTokenMaxReuse", &s.RefreshTokenMaxReuse)
	bf := &s.BruteForce
	o.boolean("bruteForceProtected", &bf.Protected)
	o.boolean("permanentLockout", &bf.PermanentLockout)
	o.integer("failureFactor", &bf.FailureFactor)
	o.integer("waitIncrementSeconds", &bf.WaitIncrementSeconds)
	o.integer("maxFailureWaitSeconds", &bf.MaxFailureWaitSeconds)
	o.integer("minimumQuickLoginWaitSeconds", &bf.MinimumQuickLoginWaitSeconds)
	o.integer("quickLoginCheckMilliSeconds", &bf.QuickLoginCheckMilliSeconds)
	o.integer("maxDeltaTimeSeconds", &bf.MaxDeltaTimeSeconds)
	o.str("defaultSignatureAlgorithm", &s.DefaultSignatureAlgorithm)
	o.boolean("registrationAllowed", &s.RegistrationAllowed)
	o.boolean("verifyEmail", &s.VerifyEmail)
	o.str("passwordPolicy", &s.PasswordPolicy)
	o.boolean("organizationsEnabled", &s.OrganizationsEnabled)
	o.strings("defaultDefaultClientScopes", &s.DefaultClientScopes)
	o.strings("defaultOptionalClientScopes", &s.OptionalScopes)
	if o.err != nil {
		return o.err
	}
	steps := []func(*object, *Parsed) error{
		p.gatehouse, p.clientScopes, p.roles, p.clients, p.users,
		p.organizations, p.sessionLimits,
	}
	for _, step := range steps {
		if err := step(o, out); err != nil {
			return err
		}
	}
	// Unknown realm fields stay in Extra so that an export gives them
	// back; authenticationFlows, authenticatorConfig and directGrantFlow
	// are read for the session limits and kept verbatim for the same
	// reason.
	o.ignore(realmKeys...)
	o.ignore(codeKeys...)
	extraKeys := o.unknownKeys()
	extraKeys = append(extraKeys, flowKeys...)
	extraKeys = append(extraKeys, codeKeys...)
	for _, k := range extraKeys {
		raw, ok := o.m[k]
		if !ok {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return &PathError{Path: keyPath("", k), Msg: "unreadable value"}
		}
		if s.Extra == nil {
			s.Extra = map[string]any{}
		}
		s.Extra[k] = v
	}
	if err := o.close(); err != nil {
		return err
	}
	for i := range out.Clients {
		out.Clients[i].Client.Realm = r.Name
	}
	for i := range out.Users {
		out.Users[i].User.Realm = r.Name
	}
	out.Unknown = p.unknown
	return nil
}

// gatehouse reads the "gatehouse" object: the realm settings Keycloak has no
// field for.
func (p *parser) gatehouse(top *object, out *Parsed) error {
	raw, ok := top.get("gatehouse")
	if !ok {
		return nil
	}
	s := &out.Realm.Settings
	o, err := p.object("gatehouse", raw)
	if err != nil {
		return err
	}
	o.integer("refreshGraceSeconds", &s.RefreshGraceSeconds)
	o.integer("maxAppsPerUser", &s.MaxAppsPerUser)
	o.strings("aliases", &s.Aliases)
	if graw, ok := o.get("gateway"); ok {
		g, err := p.gateway(keyPath(o.path, "gateway"), graw)
		if err != nil {
			return err
		}
		s.Gateway = g
	}
	return o.close()
}

func (p *parser) gateway(path string, raw json.RawMessage) (*store.Gateway, error) {
	o, err := p.object(path, raw)
	if err != nil {
		return nil, err
	}
	g := &store.Gateway{}
	o.str("orgFrom", &g.OrgFrom)
	o.str("domain", &g.Domain)
	o.str("audience", &g.Audience)
	o.boolean("acceptIdTokens", &g.AcceptIDTokens)
	if ops, ok := o.get("operations"); ok {
		opath := keyPath(path, "operations")
		list, err := array(opath, ops)
		if err != nil {
			return nil, err
		}
		for i, raw := range list {
			oo, err := p.object(indexPath(opath, i), raw)
			if err != nil {
				return nil, err
			}
			var op store.Operation
			oo.str("method", &op.Method)
			oo.str("path", &op.Path)
			oo.str("upstream", &op.Upstream)
			oo.boolean("public", &op.Public)
			oo.strings("scopes", &op.Scopes)
			oo.boolean("forwardAuthorization", &op.ForwardAuthorization)
			oo.integer("timeoutSeconds", &op.TimeoutSeconds)
			if err := oo.close(); err != nil {
				return nil, err
			}
			g.Operations = append(g.Operations, op)
		}
	}
	return g, o.close()
}

func (p *parser) clientScopes(top *object, out *Parsed) error {
	raw, ok := top.get("clientScopes")
	if !ok {
		return nil
	}
	list, err := array("clientScopes", raw)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, raw := range list {
		path := indexPath("clientScopes", i)
		o, err := p.object(path, raw)
		if err != nil {
			return err
		}
		cs := store.ClientScope{IncludeInTokenScope: true}
		o.str("name", &cs.Name)
		o.str("id", &cs.ID)
		o.str("protocol", &cs.Protocol)
		o.stringMap("attributes", &cs.Attributes)
		if err := o.close(); err != nil {
			return err
		}
		if cs.Name == "" {
			return &PathError{Path: keyPath(path, "name"), Msg: "required"}
		}
		if seen[cs.Name] {
			return &PathError{Path: keyPath(path, "name"), Msg: fmt.Sprintf("duplicate client scope %q", cs.Name)}
		}
		seen[cs.Name] = true
		// The attribute becomes the field; Export writes it back.
		if v, ok := cs.Attributes[attrIncludeInScope]; ok {
			cs.IncludeInTokenScope = v == "true"
			delete(cs.Attributes, attrIncludeInScope)
			if len(cs.Attributes) == 0 {
				cs.Attributes = nil
			}
		}
		out.Realm.Settings.ClientScopes = append(out.Realm.Settings.ClientScopes, cs)
	}
	return nil
}

// roles reads roles.realm and roles.client, then the default roles: the
// composites of Keycloak 13+'s "defaultRole", or the older "defaultRoles"
// list.
func (p *parser) roles(top *object, out *Parsed) error {
	s := &out.Realm.Settings
	if raw, ok := top.get("roles"); ok {
		o, err := p.object("roles", raw)
		if err != nil {
			return err
		}
		if rraw, ok := o.get("realm"); ok {
			roles, err := p.roleList("roles.realm", rraw, "")
			if err != nil {
				return err
			}
			s.Roles = append(s.Roles, roles...)
		}
		if craw, ok := o.get("client"); ok {
			co, err := p.object("roles.client", craw)
			if err != nil {
				return err
			}
			cids := make([]string, 0, len(co.m))
			for cid := range co.m {
				cids = append(cids, cid)
			}
			sort.Strings(cids)
			for _, cid := range cids {
				raw, ok := co.get(cid)
				if !ok {
					continue
				}
				roles, err := p.roleList(keyPath("roles.client", cid), raw, cid)
				if err != nil {
					return err
				}
				s.Roles = append(s.Roles, roles...)
			}
			if err := co.close(); err != nil {
				return err
			}
		}
		if err := o.close(); err != nil {
			return err
		}
	}

	if raw, ok := top.get("defaultRole"); ok {
		o, err := p.object("defaultRole", raw)
		if err != nil {
			return err
		}
		var name string
		o.str("name", &name)
		o.ignore("id", "description", "composite", "clientRole", "containerId", "composites", "attributes")
		if err := o.close(); err != nil {
			return err
		}
		if name == "" {
			return &PathError{Path: "defaultRole.name", Msg: "required"}
		}
		found := false
		for _, r := range s.Roles {
			if r.ClientID == "" && r.Name == name {
				s.DefaultRoles = append([]string(nil), r.Composites...)
				found = true
				break
			}
		}
		if !found {
			return &PathError{Path: "defaultRole.name", Msg: fmt.Sprintf("no realm role %q in roles.realm", name)}
		}
	} else if top.has("defaultRoles") {
		var names []string
		top.strings("defaultRoles", &names)
		if top.err != nil {
			return top.err
		}
		s.DefaultRoles = append(s.DefaultRoles, names...)
	}
	return nil
}

func (p *parser) roleList(path string, raw json.RawMessage, clientID string) ([]store.Role, error) {
	list, err := array(path, raw)
	if err != nil {
		return nil, err
	}
	var roles []store.Role
	seen := map[string]bool{}
	for i, raw := range list {
		rpath := indexPath(path, i)
		o, err := p.object(rpath, raw)
		if err != nil {
			return nil, err
		}
		r := store.Role{ClientID: clientID}
		o.str("name", &r.Name)
		o.str("id", &r.ID)
		o.str("description", &r.Description)
		o.listMap("attributes", &r.Attributes)
		o.ignore("composite", "clientRole", "containerId")
		if craw, ok := o.get("composites"); ok {
			comps, err := p.composites(keyPath(rpath, "composites"), craw)
			if err != nil {
				return nil, err
			}
			r.Composites = comps
		}
		if err := o.close(); err != nil {
			return nil, err
		}
		if r.Name == "" {
			return nil, &PathError{Path: keyPath(rpath, "name"), Msg: "required"}
		}
		if seen[r.Name] {
			return nil, &PathError{Path: keyPath(rpath, "name"), Msg: fmt.Sprintf("duplicate role %q", r.Name)}
		}
		seen[r.Name] = true
		roles = append(roles, r)
	}
	return roles, nil
}

// composites flattens {"realm": [names], "client": {"cid": [names]}} into
// store.Role.Composites: "name" and "cid/name", realm roles first, clients in
// name order.
func (p *parser) composites(path string, raw json.RawMessage) ([]string, error) {
	o, err := p.object(path, raw)
	if err != nil {
		return nil, err
	}
	var out, realm []string
	o.strings("realm", &realm)
	out = append(out, realm...)
	var client map[string][]string
	if o.has("client") {
		o.listMap("client", &client)
	} else {
		o.ignore("client")
	}
	cids := make([]string, 0, len(client))
	for cid := range client {
		cids = append(cids, cid)
	}
	sort.Strings(cids)
	for _, cid := range cids {
		for _, n := range client[cid] {
			out = append(out, cid+"/"+n)
		}
	}
	return out, o.close()
}

func (p *parser) clients(top *object, out *Parsed) error {
	raw, ok := top.get("clients")
	if !ok {
		return nil
	}
	list, err := array("clients", raw)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	ids := map[string]bool{}
	for i, raw := range list {
		path := indexPath("clients", i)
		ci, err := p.client(path, raw, &out.Realm.Settings)
		if err != nil {
			return err
		}
		if ci.Client.ClientID == "" {
			return &PathError{Path: keyPath(path, "clientId"), Msg: "required"}
		}
		if seen[ci.Client.ClientID] {
			return &PathError{Path: keyPath(path, "clientId"), Msg: fmt.Sprintf("duplicate clientId %q", ci.Client.ClientID)}
		}
		seen[ci.Client.ClientID] = true
		if ids[ci.Client.ID] {
			return &PathError{Path: keyPath(path, "id"), Msg: fmt.Sprintf("duplicate client id %q", ci.Client.ID)}
		}
		ids[ci.Client.ID] = true
		out.Clients = append(out.Clients, ci)
	}
	return nil
}

func (p *parser) client(path string, raw json.RawMessage, s *store.RealmSettings) (ClientImport, error) {
	var ci ClientImport
	c := &ci.Client
	o, err := p.object(path, raw)
	if err != nil {
		return ci, err
	}
	c.Enabled = true
	c.StandardFlowEnabled = true
	c.ClientAuthenticator = defaultAuthenticator
	o.str("clientId", &c.ClientID)
	o.str("id", &c.ID)
	o.str("name", &c.Name)
	o.boolean("enabled", &c.Enabled)
	o.boolean("publicClient", &c.Public)
	o.str("clientAuthenticatorType", &c.ClientAuthenticator)
	o.boolean("serviceAccountsEnabled", &c.ServiceAccountsEnabled)
	o.boolean("directAccessGrantsEnabled", &c.DirectAccessGrantsEnabled)
	o.boolean("standardFlowEnabled", &c.StandardFlowEnabled)
	o.strings("redirectUris", &c.RedirectURIs)
	o.strings("webOrigins", &c.WebOrigins)
	o.stringMap("attributes", &c.Attributes)
	o.strings("defaultClientScopes", &c.DefaultClientScopes)
	o.strings("optionalClientScopes", &c.OptionalScopes)
	// access is computed by Keycloak for the admin console.
	o.ignore("access")
	var secret string
	if o.str("secret", &secret) && secret == maskedSecret {
		// An admin-console partial export masks secrets; there is
		// nothing to import, and the importer should say so.
		p.unknown = append(p.unknown, keyPath(path, "secret"))
		secret = ""
	}
	// Keycloak before 13 kept a client's default roles on the client.
	var defRoles []string
	o.strings("defaultRoles", &defRoles)
	if err := o.close(); err != nil {
		return ci, err
	}
	for _, n := range defRoles {
		s.DefaultRoles = append(s.DefaultRoles, c.ClientID+"/"+n)
	}
	if c.ID == "" {
		c.ID = newUUID()
	}
	ci.Secret = secret
	apath := keyPath(path, "attributes")
	if v, ok := c.Attributes[AttrSecretHash]; ok {
		h, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(h) == 0 {
			return ci, &PathError{Path: keyPath(apath, AttrSecretHash), Msg: "expected standard base64"}
		}
		c.SecretHash = h
		ci.Secret = ""
		delete(c.Attributes, AttrSecretHash)
	}
	if v, ok := c.Attributes[AttrSecretSealed]; ok {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return ci, &PathError{Path: keyPath(apath, AttrSecretSealed), Msg: "expected standard base64"}
		}
		c.SecretSealed = b
		delete(c.Attributes, AttrSecretSealed)
	}
	if v, ok := c.Attributes[attrJWKS]; ok {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal([]byte(v), &set); err != nil || set.Keys == nil {
			return ci, &PathError{Path: keyPath(apath, attrJWKS), Msg: "expected a JSON Web Key Set ({\"keys\": [...]})"}
		}
		c.JWKS = []byte(v)
		delete(c.Attributes, attrJWKS)
	}
	if v, ok := c.Attributes[AttrOwner]; ok {
		c.OwnerUserID = v
		delete(c.Attributes, AttrOwner)
	}
	if v, ok := c.Attributes[AttrScopes]; ok {
		c.Scopes = strings.Fields(v)
		delete(c.Attributes, AttrScopes)
	}
	if v, ok := c.Attributes[AttrCreated]; ok {
		var ms int64
		if _, err := fmt.Sscan(v, &ms); err != nil || fmt.Sprint(ms) != v {
			return ci, &PathError{Path: keyPath(apath, AttrCreated), Msg: "expected Unix milliseconds"}
		}
		c.Created = time.UnixMilli(ms).UTC()
		delete(c.Attributes, AttrCreated)
	}
	if len(c.Attributes) == 0 {
		c.Attributes = nil
	}
	return ci, nil
}

func (p *parser) users(top *object, out *Parsed) error {
	raw, ok := top.get("users")
	if !ok {
		return nil
	}
	list, err := array("users", raw)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	ids := map[string]bool{}
	for i, raw := range list {
		path := indexPath("users", i)
		ui, err := p.user(path, raw)
		if err != nil {
			return err
		}
		if names[ui.User.Username] {
			return &PathError{Path: keyPath(path, "username"), Msg: fmt.Sprintf("duplicate username %q", ui.User.Username)}
		}
		names[ui.User.Username] = true
		if ids[ui.User.ID] {
			return &PathError{Path: keyPath(path, "id"), Msg: fmt.Sprintf("duplicate user id %q", ui.User.ID)}
		}
		ids[ui.User.ID] = true
		out.Users = append(out.Users, ui)
	}
	// A service-account user names its client; the client points back.
	for _, ui := range out.Users {
		if cid := ui.User.ServiceAccountClientID; cid != "" {
			for j := range out.Clients {
				if out.Clients[j].Client.ClientID == cid {
					out.Clients[j].Client.ServiceAccountUserID = ui.User.ID
				}
			}
		}
	}
	return nil
}

func (p *parser) user(path string, raw json.RawMessage) (UserImport, error) {
	var ui UserImport
	u := &ui.User
	o, err := p.object(path, raw)
	if err != nil {
		return ui, err
	}
	o.str("username", &u.Username)
	o.str("id", &u.ID)
	o.str("email", &u.Email)
	o.str("firstName", &u.FirstName)
	o.str("lastName", &u.LastName)
	o.boolean("enabled", &u.Enabled)
	o.boolean("emailVerified", &u.EmailVerified)
	var created int64
	if o.int64("createdTimestamp", &created) {
		u.Created = time.UnixMilli(created).UTC()
	}
	o.strings("realmRoles", &u.RealmRoles)
	o.listMap("clientRoles", &u.ClientRoles)
	o.listMap("attributes", &u.Attributes)
	o.strings("requiredActions", &u.RequiredActions)
	o.int64("notBefore", &u.NotBefore)
	o.str("serviceAccountClientId", &u.ServiceAccountClientID)
	// Computed by Keycloak from the credentials and the caller's rights.
	o.ignore("totp", "disableableCredentialTypes", "access", "self")
	craw, hasCreds := o.get("credentials")
	if o.err != nil {
		return ui, o.err
	}
	if u.Username == "" {
		return ui, &PathError{Path: keyPath(path, "username"), Msg: "required"}
	}
	u.Username = strings.ToLower(u.Username)
	if u.ID == "" {
		u.ID = newUUID()
	}
	if hasCreds {
		if err := p.credentials(keyPath(path, "credentials"), craw, &ui); err != nil {
			return ui, err
		}
	}
	return ui, o.close()
}

// credentials reads a user's password credential: a plain "value" to be
// hashed by the caller, or Keycloak's stored hash as secretData and
// credentialData. Other credential types (otp, webauthn) are listed as
// unknown.
func (p *parser) credentials(path string, raw json.RawMessage, ui *UserImport) error {
	list, err := array(path, raw)
	if err != nil {
		return err
	}
	found := false
	for i, raw := range list {
		cpath := indexPath(path, i)
		o, err := p.object(cpath, raw)
		if err != nil {
			return err
		}
		var typ string
		o.str("type", &typ)
		if o.err != nil {
			return o.err
		}
		if typ == "" {
			return &PathError{Path: keyPath(cpath, "type"), Msg: "required"}
		}
		if typ != credentialPassword {
			p.unknown = append(p.unknown, cpath)
			continue
		}
		var value, secretData, credentialData string
		var created int64
		var temporary bool
		hasValue := o.str("value", &value)
		hasSecret := o.str("secretData", &secretData)
		hasCred := o.str("credentialData", &credentialData)
		o.int64("createdDate", &created)
		o.boolean("temporary", &temporary)
		// Labels and ids of a credential mean nothing once imported.
		o.ignore("id", "userLabel", "priority")
		if err := o.close(); err != nil {
			return err
		}
		if found {
			return &PathError{Path: cpath, Msg: "more than one password credential"}
		}
		found = true
		switch {
		case hasSecret:
			if !hasCred {
				return &PathError{Path: keyPath(cpath, "credentialData"), Msg: "required with secretData"}
			}
			h, err := password.FromKeycloak(secretData, credentialData)
			if err != nil {
				return &PathError{Path: keyPath(cpath, "secretData"), Msg: "unusable password hash: " + err.Error()}
			}
			ui.User.PasswordHash = h
		case hasValue:
			if value == "" {
				return &PathError{Path: keyPath(cpath, "value"), Msg: "empty password"}
			}
			ui.Password = value
		default:
			return &PathError{Path: cpath, Msg: "password credential has neither value nor secretData"}
		}
		if created != 0 {
			ui.User.PasswordCreated = time.UnixMilli(created).UTC()
		}
		// Keycloak turns a temporary password into a required action.
		if temporary && !slices.Contains(ui.User.RequiredActions, actionUpdatePassword) {
			ui.User.RequiredActions = append(ui.User.RequiredActions, actionUpdatePassword)
		}
	}
	return nil
}

// organizations reads Keycloak 26 organizations and turns each member into
// a membership on that user.
func (p *parser) organizations(top *object, out *Parsed) error {
	raw, ok := top.get("organizations")
	if !ok {
		return nil
	}
	list, err := array("organizations", raw)
	if err != nil {
		return err
	}
	byName := make(map[string]int, len(out.Users))
	for i, ui := range out.Users {
		byName[ui.User.Username] = i
	}
	orgIDs := map[string]bool{}
	memberIDs := map[string]bool{}
	s := &out.Realm.Settings
	for i, raw := range list {
		path := indexPath("organizations", i)
		o, err := p.object(path, raw)
		if err != nil {
			return err
		}
		org := store.Organization{Enabled: true}
		o.str("id", &org.ID)
		o.str("name", &org.Name)
		o.str("alias", &org.Alias)
		o.boolean("enabled", &org.Enabled)
		o.str("description", &org.Description)
		o.listMap("attributes", &org.Attributes)
		if o.err != nil {
			return o.err
		}
		if org.Name == "" {
			return &PathError{Path: keyPath(path, "name"), Msg: "required"}
		}
		if org.ID == "" {
			org.ID = newUUID()
		}
		if org.Alias == "" {
			org.Alias = org.Name
		}
		if orgIDs[org.ID] {
			return &PathError{Path: keyPath(path, "id"), Msg: fmt.Sprintf("duplicate organization id %q", org.ID)}
		}
		orgIDs[org.ID] = true
		if draw, ok := o.get("domains"); ok {
			dpath := keyPath(path, "domains")
			dl, err := array(dpath, draw)
			if err != nil {
				return err
			}
			for j, raw := range dl {
				do, err := p.object(indexPath(dpath, j), raw)
				if err != nil {
					return err
				}
				var name string
				var verified bool
				do.str("name", &name)
				do.boolean("verified", &verified)
				if err := do.close(); err != nil {
					return err
				}
				if name == "" {
					return &PathError{Path: keyPath(indexPath(dpath, j), "name"), Msg: "required"}
				}
				org.Domains = append(org.Domains, name)
			}
		}
		if mraw, ok := o.get("members"); ok {
			mpath := keyPath(path, "members")
			ml, err := array(mpath, mraw)
			if err != nil {
				return err
			}
			inOrg := map[string]bool{}
			for j, raw := range ml {
				jpath := indexPath(mpath, j)
				mo, err := p.object(jpath, raw)
				if err != nil {
					return err
				}
				var username string
				var attrs map[string][]string
				mo.str("username", &username)
				mo.listMap("attributes", &attrs)
				if err := mo.close(); err != nil {
					return err
				}
				username = strings.ToLower(username)
				ui, ok := byName[username]
				if username == "" || !ok {
					return &PathError{Path: keyPath(jpath, "username"), Msg: fmt.Sprintf("no user %q in users", username)}
				}
				if inOrg[username] {
					return &PathError{Path: keyPath(jpath, "username"), Msg: fmt.Sprintf("user %q is a member twice", username)}
				}
				inOrg[username] = true
				m := store.Membership{OrgID: org.ID}
				if v := attrs[AttrMembershipID]; len(v) > 0 && v[0] != "" {
					m.ID = v[0]
				} else {
					m.ID = "MU" + newUUID()
				}
				if memberIDs[m.ID] {
					return &PathError{Path: keyPath(keyPath(jpath, "attributes"), AttrMembershipID), Msg: fmt.Sprintf("duplicate membership id %q", m.ID)}
				}
				memberIDs[m.ID] = true
				u := &out.Users[ui].User
				u.Memberships = append(u.Memberships, m)
			}
		}
		if err := o.close(); err != nil {
			return err
		}
		s.Organizations = append(s.Organizations, org)
	}
	return nil
}

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (it aborts the program
	// instead when the system's source fails).
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
