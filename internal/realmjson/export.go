package realmjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// field is one member of an ordered JSON object.
type field struct {
	k string
	v any
}

// ordered is a JSON object whose members keep their order, so that an
// export reads like Keycloak's (realm identity first, users and clients
// later) instead of in alphabetical order.
type ordered []field

// MarshalJSON writes the members in order.
func (o ordered) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := marshal(f.k)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := marshal(f.v)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func (o *ordered) add(k string, v any) { *o = append(*o, field{k, v}) }

// marshal is json.Marshal without HTML escaping: the export is a file, and
// URLs and policies read better with their & and < intact.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func listMapOrEmpty(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = orEmpty(v)
	}
	return out
}

// Export renders a realm bundle as Keycloak realm-export JSON, indented by
// two spaces. Password hashes become Keycloak password credentials; client
// secrets, stored hashed, are written as the gatehouse.secretHash attribute
// and never as "secret"; Settings.Extra comes back at the top level. Keys
// (RealmBundle.Keys) are not exported: they are sealed with the master key
// of this installation. Parse of the result gives the bundle back.
func Export(b store.RealmBundle) ([]byte, error) {
	r := b.Realm
	s := r.Settings
	var doc ordered
	if r.ID != "" {
		doc.add("id", r.ID)
	}
	doc.add("realm", r.Name)
	if s.DisplayName != "" {
		doc.add("displayName", s.DisplayName)
	}
	doc.add("enabled", r.Enabled)
	doc.add("notBefore", s.NotBefore)
	if s.DefaultSignatureAlgorithm != "" {
		doc.add("defaultSignatureAlgorithm", s.DefaultSignatureAlgorithm)
	}
	doc.add("revokeRefreshToken", s.RevokeRefreshToken)
	doc.add("refreshTokenMaxReuse", s.RefreshTokenMaxReuse)
	doc.add("accessTokenLifespan", s.AccessTokenLifespan)
	doc.add("ssoSessionIdleTimeout", s.SSOSessionIdleTimeout)
	doc.add("ssoSessionMaxLifespan", s.SSOSessionMaxLifespan)
	doc.add("offlineSessionIdleTimeout", s.OfflineSessionIdleTimeout)
	doc.add("offlineSessionMaxLifespanEnabled", s.OfflineSessionMaxLifespanEnabled)
	doc.add("offlineSessionMaxLifespan", s.OfflineSessionMaxLifespan)
	doc.add("clientSessionIdleTimeout", s.ClientSessionIdleTimeout)
	doc.add("clientSessionMaxLifespan", s.ClientSessionMaxLifespan)
	doc.add("registrationAllowed", s.RegistrationAllowed)
	doc.add("verifyEmail", s.VerifyEmail)
	bf := s.BruteForce
	doc.add("bruteForceProtected", bf.Protected)
	doc.add("permanentLockout", bf.PermanentLockout)
	doc.add("maxFailureWaitSeconds", bf.MaxFailureWaitSeconds)
	doc.add("minimumQuickLoginWaitSeconds", bf.MinimumQuickLoginWaitSeconds)
	doc.add("waitIncrementSeconds", bf.WaitIncrementSeconds)
	doc.add("quickLoginCheckMilliSeconds", bf.QuickLoginCheckMilliSeconds)
	doc.add("maxDeltaTimeSeconds", bf.MaxDeltaTimeSeconds)
	doc.add("failureFactor", bf.FailureFactor)
	if s.PasswordPolicy != "" {
		doc.add("passwordPolicy", s.PasswordPolicy)
	}
	doc.add("organizationsEnabled", s.OrganizationsEnabled)

	clientIDs := map[string]string{} // clientId → internal id
	for _, c := range b.Clients {
		clientIDs[c.ClientID] = c.ID
	}
	roles, defaultRole, legacyDefaults := exportRoles(r, clientIDs)
	doc.add("roles", roles)
	if defaultRole != nil {
		doc.add("defaultRole", defaultRole)
	}
	// Without a default-roles-<realm> role the defaults go the pre-13
	// way: realm role names here, client roles on their client.
	clientDefaults := map[string][]string{}
	var realmDefaults []string
	if legacyDefaults {
		for _, d := range s.DefaultRoles {
			if cid, name, ok := splitComposite(d, clientIDs, nil); ok {
				clientDefaults[cid] = append(clientDefaults[cid], name)
			} else {
				realmDefaults = append(realmDefaults, d)
			}
		}
		if len(realmDefaults) > 0 {
			doc.add("defaultRoles", realmDefaults)
		}
	}
	if len(s.ClientScopes) > 0 {
		doc.add("clientScopes", exportClientScopes(s.ClientScopes))
	}
	if len(s.DefaultClientScopes) > 0 {
		doc.add("defaultDefaultClientScopes", s.DefaultClientScopes)
	}
	if len(s.OptionalScopes) > 0 {
		doc.add("defaultOptionalClientScopes", s.OptionalScopes)
	}

	users := make([]ordered, 0, len(b.Users))
	for _, u := range b.Users {
		ou, err := exportUser(u)
		if err != nil {
			return nil, err
		}
		users = append(users, ou)
	}
	doc.add("users", users)

	clients := make([]ordered, 0, len(b.Clients))
	for _, c := range b.Clients {
		clients = append(clients, exportClient(c, clientDefaults[c.ClientID]))
		delete(clientDefaults, c.ClientID)
	}
	if len(clientDefaults) > 0 {
		return nil, fmt.Errorf("realmjson: default roles name clients that do not exist: %v", sortedKeys(clientDefaults))
	}
	doc.add("clients", clients)

	orgs, err := exportOrganizations(s.Organizations, b.Users)
	if err != nil {
		return nil, err
	}
	if orgs != nil {
		doc.add("organizations", orgs)
	}

	flows, configs, direct, err := exportFlows(s.Extra, s.SessionLimits)
	if err != nil {
		return nil, err
	}
	if flows != nil {
		doc.add("authenticationFlows", flows)
	}
	if configs != nil {
		doc.add("authenticatorConfig", configs)
	}
	if direct != "" {
		doc.add("directGrantFlow", direct)
	}

	known := map[string]bool{}
	for _, k := range realmKeys {
		known[k] = true
	}
	for _, k := range sortedKeys(s.Extra) {
		if !known[k] {
			doc.add(k, s.Extra[k])
		}
	}

	var gh ordered
	if s.RefreshGraceSeconds != 0 {
		gh.add("refreshGraceSeconds", s.RefreshGraceSeconds)
	}
	if s.MaxAppsPerUser != 0 {
		gh.add("maxAppsPerUser", s.MaxAppsPerUser)
	}
	if len(s.Aliases) > 0 {
		gh.add("aliases", s.Aliases)
	}
	if s.Gateway != nil {
		gh.add("gateway", s.Gateway)
	}
	if len(gh) > 0 {
		doc.add("gatehouse", gh)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("realmjson: %w", err)
	}
	return buf.Bytes(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// splitComposite splits a "client/role" reference. Client ids may hold
// slashes (SAML entity ids are URLs) and so may role names, so a known
// client id wins, then a realm role of the whole name; otherwise the last
// slash splits.
func splitComposite(ref string, clientIDs map[string]string, realmRoles map[string]bool) (cid, name string, isClient bool) {
	for i := 0; i < len(ref); i++ {
		if ref[i] != '/' {
			continue
		}
		if _, ok := clientIDs[ref[:i]]; ok {
			return ref[:i], ref[i+1:], true
		}
	}
	if realmRoles[ref] {
		return "", ref, false
	}
	if i := strings.LastIndexByte(ref, '/'); i > 0 {
		return ref[:i], ref[i+1:], true
	}
	return "", ref, false
}

// exportRoles writes roles.realm and roles.client and picks the default
// role: Keycloak's default-roles-<realm>, whose composites become the
// realm's DefaultRoles. legacy reports that there is no such role, so the
// defaults must be written as the older "defaultRoles" lists.
func exportRoles(r store.Realm, clientIDs map[string]string) (roles ordered, defaultRole ordered, legacy bool) {
	s := r.Settings
	container := r.ID
	if container == "" {
		container = r.Name
	}
	realmRoles := map[string]bool{}
	for _, ro := range s.Roles {
		if ro.ClientID == "" {
			realmRoles[ro.Name] = true
		}
	}
	defName := ""
	if want := "default-roles-" + strings.ToLower(r.Name); realmRoles[want] {
		defName = want
	} else {
		for _, ro := range s.Roles {
			if ro.ClientID == "" && strings.HasPrefix(ro.Name, "default-roles-") {
				defName = ro.Name
				break
			}
		}
	}
	if defName == "" && len(s.DefaultRoles) > 0 {
		// An import may have named any role as defaultRole; the one
		// that grants exactly the defaults is it.
		for _, ro := range s.Roles {
			if ro.ClientID == "" && slices.Equal(ro.Composites, s.DefaultRoles) {
				defName = ro.Name
				break
			}
		}
	}

	var realm []ordered
	byClient := map[string][]ordered{}
	for _, ro := range s.Roles {
		comps := ro.Composites
		if ro.ClientID == "" && ro.Name == defName {
			// DefaultRoles is the source of truth for what the
			// default role grants.
			comps = s.DefaultRoles
		}
		var o ordered
		if ro.ID != "" {
			o.add("id", ro.ID)
		}
		o.add("name", ro.Name)
		if ro.Description != "" {
			o.add("description", ro.Description)
		}
		o.add("composite", len(comps) > 0)
		if len(comps) > 0 {
			var cr ordered
			var realmComps []string
			clientComps := map[string][]string{}
			for _, c := range comps {
				if cid, name, ok := splitComposite(c, clientIDs, realmRoles); ok {
					clientComps[cid] = append(clientComps[cid], name)
				} else {
					realmComps = append(realmComps, c)
				}
			}
			if len(realmComps) > 0 {
				cr.add("realm", realmComps)
			}
			if len(clientComps) > 0 {
				cr.add("client", clientComps)
			}
			o.add("composites", cr)
		}
		o.add("clientRole", ro.ClientID != "")
		if ro.ClientID == "" {
			o.add("containerId", container)
		} else if id := clientIDs[ro.ClientID]; id != "" {
			o.add("containerId", id)
		}
		o.add("attributes", listMapOrEmpty(ro.Attributes))
		if ro.ClientID == "" {
			realm = append(realm, o)
			if ro.Name == defName {
				defaultRole = ordered{}
				if ro.ID != "" {
					defaultRole.add("id", ro.ID)
				}
				defaultRole.add("name", ro.Name)
				if ro.Description != "" {
					defaultRole.add("description", ro.Description)
				}
				defaultRole.add("composite", true)
				defaultRole.add("clientRole", false)
				defaultRole.add("containerId", container)
			}
		} else {
			byClient[ro.ClientID] = append(byClient[ro.ClientID], o)
		}
	}
	roles.add("realm", orEmpty(realm))
	var client ordered
	for _, cid := range sortedKeys(byClient) {
		client.add(cid, byClient[cid])
	}
	roles.add("client", orEmptyOrdered(client))
	return roles, defaultRole, defName == ""
}

func orEmptyOrdered(o ordered) ordered {
	if o == nil {
		return ordered{}
	}
	return o
}

func exportClientScopes(scopes []store.ClientScope) []ordered {
	out := make([]ordered, 0, len(scopes))
	for _, cs := range scopes {
		var o ordered
		if cs.ID != "" {
			o.add("id", cs.ID)
		}
		o.add("name", cs.Name)
		if cs.Protocol != "" {
			o.add("protocol", cs.Protocol)
		}
		attrs := make(map[string]string, len(cs.Attributes)+1)
		for k, v := range cs.Attributes {
			attrs[k] = v
		}
		attrs[attrIncludeInScope] = strconv.FormatBool(cs.IncludeInTokenScope)
		o.add("attributes", attrs)
		out = append(out, o)
	}
	return out
}

func exportUser(u store.User) (ordered, error) {
	var o ordered
	o.add("id", u.ID)
	if !u.Created.IsZero() {
		o.add("createdTimestamp", u.Created.UnixMilli())
	}
	o.add("username", u.Username)
	o.add("enabled", u.Enabled)
	o.add("emailVerified", u.EmailVerified)
	if u.FirstName != "" {
		o.add("firstName", u.FirstName)
	}
	if u.LastName != "" {
		o.add("lastName", u.LastName)
	}
	if u.Email != "" {
		o.add("email", u.Email)
	}
	if len(u.Attributes) > 0 {
		o.add("attributes", listMapOrEmpty(u.Attributes))
	}
	if u.ServiceAccountClientID != "" {
		o.add("serviceAccountClientId", u.ServiceAccountClientID)
	}
	creds := []ordered{}
	if u.PasswordHash != "" {
		sd, cd, err := password.ToKeycloak(u.PasswordHash)
		if err != nil {
			// The message names the user, never the hash.
			return nil, fmt.Errorf("realmjson: user %q: password hash cannot be exported: %w", u.Username, err)
		}
		var c ordered
		c.add("type", credentialPassword)
		if !u.PasswordCreated.IsZero() {
			c.add("createdDate", u.PasswordCreated.UnixMilli())
		}
		c.add("secretData", sd)
		c.add("credentialData", cd)
		creds = append(creds, c)
	}
	o.add("credentials", creds)
	o.add("requiredActions", orEmpty(u.RequiredActions))
	if len(u.RealmRoles) > 0 {
		o.add("realmRoles", u.RealmRoles)
	}
	if len(u.ClientRoles) > 0 {
		o.add("clientRoles", listMapOrEmpty(u.ClientRoles))
	}
	o.add("notBefore", u.NotBefore)
	return o, nil
}

func exportClient(c store.Client, defaultRoles []string) ordered {
	var o ordered
	o.add("id", c.ID)
	o.add("clientId", c.ClientID)
	if c.Name != "" {
		o.add("name", c.Name)
	}
	o.add("enabled", c.Enabled)
	if c.ClientAuthenticator != "" {
		o.add("clientAuthenticatorType", c.ClientAuthenticator)
	}
	o.add("redirectUris", orEmpty(c.RedirectURIs))
	o.add("webOrigins", orEmpty(c.WebOrigins))
	o.add("standardFlowEnabled", c.StandardFlowEnabled)
	o.add("directAccessGrantsEnabled", c.DirectAccessGrantsEnabled)
	o.add("serviceAccountsEnabled", c.ServiceAccountsEnabled)
	o.add("publicClient", c.Public)
	attrs := make(map[string]string, len(c.Attributes)+6)
	for k, v := range c.Attributes {
		attrs[k] = v
	}
	if len(c.SecretHash) > 0 {
		attrs[AttrSecretHash] = base64.StdEncoding.EncodeToString(c.SecretHash)
	}
	if len(c.SecretSealed) > 0 {
		attrs[AttrSecretSealed] = base64.StdEncoding.EncodeToString(c.SecretSealed)
	}
	if len(c.JWKS) > 0 {
		attrs[attrJWKS] = string(c.JWKS)
	}
	if c.OwnerUserID != "" {
		attrs[AttrOwner] = c.OwnerUserID
	}
	if len(c.Scopes) > 0 {
		attrs[AttrScopes] = strings.Join(c.Scopes, " ")
	}
	if !c.Created.IsZero() {
		attrs[AttrCreated] = strconv.FormatInt(c.Created.UnixMilli(), 10)
	}
	o.add("attributes", attrs)
	if len(c.DefaultClientScopes) > 0 {
		o.add("defaultClientScopes", c.DefaultClientScopes)
	}
	if len(c.OptionalScopes) > 0 {
		o.add("optionalClientScopes", c.OptionalScopes)
	}
	if len(defaultRoles) > 0 {
		o.add("defaultRoles", defaultRoles)
	}
	return o
}

// exportOrganizations writes the organizations with their members, taken
// from the users' memberships; each member carries its membership id as
// the gatehouse.membershipId attribute so that the id survives.
func exportOrganizations(orgs []store.Organization, users []store.User) ([]ordered, error) {
	members := map[string][]ordered{}
	for _, u := range users {
		for _, m := range u.Memberships {
			var mo ordered
			mo.add("username", u.Username)
			mo.add("attributes", map[string][]string{AttrMembershipID: {m.ID}})
			members[m.OrgID] = append(members[m.OrgID], mo)
		}
	}
	if len(orgs) == 0 && len(members) == 0 {
		return nil, nil
	}
	out := make([]ordered, 0, len(orgs))
	for _, org := range orgs {
		var o ordered
		o.add("id", org.ID)
		o.add("name", org.Name)
		o.add("alias", org.Alias)
		o.add("enabled", org.Enabled)
		if org.Description != "" {
			o.add("description", org.Description)
		}
		o.add("attributes", listMapOrEmpty(org.Attributes))
		domains := []ordered{}
		for _, d := range org.Domains {
			// gatehouse does not keep whether a domain was verified.
			domains = append(domains, ordered{{"name", d}, {"verified", false}})
		}
		o.add("domains", domains)
		o.add("members", orEmpty(members[org.ID]))
		delete(members, org.ID)
		out = append(out, o)
	}
	if len(members) > 0 {
		return nil, fmt.Errorf("realmjson: memberships name organizations that do not exist: %v", sortedKeys(members))
	}
	return out, nil
}
