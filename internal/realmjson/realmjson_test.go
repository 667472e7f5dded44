package realmjson

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

func readTestdata(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/acme-realm.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustParse(t *testing.T, data []byte) *Parsed {
	t.Helper()
	p, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestDefaults(t *testing.T) {
	p := mustParse(t, []byte(`{"realm":"min"}`))
	r := p.Realm
	eq(t, "name", r.Name, "min")
	// Keycloak's importer leaves a realm without "enabled" disabled.
	eq(t, "enabled", r.Enabled, false)
	want := store.RealmSettings{
		AccessTokenLifespan:       300,
		SSOSessionIdleTimeout:     1800,
		SSOSessionMaxLifespan:     36000,
		OfflineSessionIdleTimeout: 2592000,
		OfflineSessionMaxLifespan: 5184000,
		BruteForce: store.BruteForce{
			FailureFactor:                30,
			WaitIncrementSeconds:         60,
			MaxFailureWaitSeconds:        900,
			MinimumQuickLoginWaitSeconds: 60,
			QuickLoginCheckMilliSeconds:  1000,
			MaxDeltaTimeSeconds:          43200,
		},
	}
	eq(t, "settings", r.Settings, want)
	eq(t, "unknown", p.Unknown, []string(nil))

	p = mustParse(t, []byte(`{"realm":"min","clients":[{"clientId":"c"}],"users":[{"username":"U"}],
		"organizations":[{"name":"Org"}]}`))
	c := p.Clients[0].Client
	// A client without "enabled" is enabled; a user is not (Keycloak).
	eq(t, "client enabled", c.Enabled, true)
	eq(t, "client standard flow", c.StandardFlowEnabled, true)
	eq(t, "client authenticator", c.ClientAuthenticator, "client-secret")
	if !uuidV4.MatchString(c.ID) {
		t.Errorf("generated client id %q is not a UUID v4", c.ID)
	}
	u := p.Users[0].User
	eq(t, "user enabled", u.Enabled, false)
	eq(t, "username", u.Username, "u")
	if !uuidV4.MatchString(u.ID) {
		t.Errorf("generated user id %q is not a UUID v4", u.ID)
	}
	org := p.Realm.Settings.Organizations[0]
	eq(t, "org enabled", org.Enabled, true)
	eq(t, "org alias", org.Alias, "Org")
	if !uuidV4.MatchString(org.ID) {
		t.Errorf("generated org id %q is not a UUID v4", org.ID)
	}
}

func TestParseRealm(t *testing.T) {
	p := mustParse(t, readTestdata(t))
	r := p.Realm
	s := r.Settings
	eq(t, "name", r.Name, "acme")
	eq(t, "id", r.ID, "4f1b6c9e-2a7d-4e0b-9d1e-6a0c3f7b8e21")
	eq(t, "enabled", r.Enabled, true)
	eq(t, "displayName", s.DisplayName, "ACME Risk Services")
	eq(t, "lifetimes", []int{s.AccessTokenLifespan, s.SSOSessionIdleTimeout, s.SSOSessionMaxLifespan,
		s.OfflineSessionIdleTimeout, s.OfflineSessionMaxLifespan, s.ClientSessionIdleTimeout, s.ClientSessionMaxLifespan},
		[]int{600, 3600, 72000, 1296000, 2592000, 1200, 36000})
	eq(t, "offlineSessionMaxLifespanEnabled", s.OfflineSessionMaxLifespanEnabled, true)
	eq(t, "notBefore", s.NotBefore, int64(1700000000))
	eq(t, "revokeRefreshToken", s.RevokeRefreshToken, true)
	eq(t, "refreshTokenMaxReuse", s.RefreshTokenMaxReuse, 1)
	eq(t, "bruteForce", s.BruteForce, store.BruteForce{
		Protected: true, FailureFactor: 5, WaitIncrementSeconds: 120, MaxFailureWaitSeconds: 600,
		MinimumQuickLoginWaitSeconds: 30, QuickLoginCheckMilliSeconds: 500, MaxDeltaTimeSeconds: 21600,
	})
	eq(t, "defaultSignatureAlgorithm", s.DefaultSignatureAlgorithm, "ES256")
	eq(t, "registrationAllowed", s.RegistrationAllowed, true)
	eq(t, "verifyEmail", s.VerifyEmail, true)
	eq(t, "passwordPolicy", s.PasswordPolicy, "length(12) and notUsername(undefined)")
	eq(t, "organizationsEnabled", s.OrganizationsEnabled, true)
	eq(t, "defaultDefaultClientScopes", s.DefaultClientScopes, []string{"profile", "email", "roles"})
	eq(t, "defaultOptionalClientScopes", s.OptionalScopes, []string{"offline_access", "risks:read"})
	eq(t, "gatehouse", []int{s.RefreshGraceSeconds, s.MaxAppsPerUser}, []int{10, 16})
	eq(t, "aliases", s.Aliases, []string{"acme-db"})
	eq(t, "gateway", s.Gateway, &store.Gateway{
		OrgFrom: "header", Audience: "risk-api",
		Operations: []store.Operation{
			{Method: "GET", Path: "/risks", Upstream: "http://127.0.0.1:9001", Scopes: []string{"risks:read"}, TimeoutSeconds: 30},
			{Method: "*", Path: "/health", Upstream: "http://127.0.0.1:9001", Public: true},
		},
	})
	eq(t, "sessionLimits", s.SessionLimits, &store.SessionLimits{
		RealmLimit: 3, ClientLimit: 1, Behavior: store.TerminateOldestSession, ErrorMessage: "Too many sessions",
	})

	eq(t, "clientScopes", s.ClientScopes, []store.ClientScope{
		{Name: "profile", ID: "6b6b6b6b-0000-4000-8000-000000000001", Protocol: "openid-connect", IncludeInTokenScope: true,
			Attributes: map[string]string{"display.on.consent.screen": "true", "consent.screen.text": "${profileScopeConsentText}"}},
		{Name: "email", ID: "6b6b6b6b-0000-4000-8000-000000000002", Protocol: "openid-connect", IncludeInTokenScope: true},
		{Name: "roles", ID: "6b6b6b6b-0000-4000-8000-000000000003", Protocol: "openid-connect", IncludeInTokenScope: false,
			Attributes: map[string]string{"display.on.consent.screen": "true"}},
		{Name: "offline_access", ID: "6b6b6b6b-0000-4000-8000-000000000004", Protocol: "openid-connect", IncludeInTokenScope: true},
		{Name: "risks:read", Protocol: "openid-connect", IncludeInTokenScope: true},
	})

	eq(t, "roles", s.Roles, []store.Role{
		{Name: "default-roles-acme", ID: "0d6a3c2e-1111-4a4a-8c8c-000000000001", Description: "${role_default-roles}",
			Composites: []string{"offline_access", "uma_authorization", "account/view-profile", "account/manage-account"}},
		{Name: "offline_access", ID: "0d6a3c2e-1111-4a4a-8c8c-000000000002", Description: "${role_offline-access}"},
		{Name: "uma_authorization", ID: "0d6a3c2e-1111-4a4a-8c8c-000000000003", Description: "${role_uma_authorization}"},
		{Name: "risk-reader", ID: "0d6a3c2e-1111-4a4a-8c8c-000000000004", Description: "Reads risks",
			Attributes: map[string][]string{"scopes": {"risks:read", "files:read"}}},
		{Name: "risk-admin", ID: "0d6a3c2e-1111-4a4a-8c8c-000000000005", Composites: []string{"risk-reader", "risk-api/write"}},
		{Name: "view-profile", ID: "7c2d9a10-2222-4b4b-9d9d-000000000003", ClientID: "account"},
		{Name: "manage-account", ID: "7c2d9a10-2222-4b4b-9d9d-000000000004", ClientID: "account"},
		{Name: "read", ID: "7c2d9a10-2222-4b4b-9d9d-000000000001", ClientID: "risk-api"},
		{Name: "write", ID: "7c2d9a10-2222-4b4b-9d9d-000000000002", ClientID: "risk-api", Description: "Writes risks",
			Composites: []string{"risk-api/read"}},
	})
	eq(t, "defaultRoles", s.DefaultRoles, []string{"offline_access", "uma_authorization", "account/view-profile", "account/manage-account"})

	eq(t, "organizations", s.Organizations, []store.Organization{
		{ID: "0a0a0a0a-0000-4000-8000-000000000001", Name: "ACME Corp", Alias: "acme-corp", Enabled: true,
			Description: "The parent company", Domains: []string{"acme.example"}, Attributes: map[string][]string{"tier": {"gold"}}},
		{ID: "0a0a0a0a-0000-4000-8000-000000000002", Name: "Globex", Alias: "globex", Enabled: false, Domains: []string{"globex.example"}},
	})

	// Unknown top-level fields and the flows are kept for export.
	for _, k := range []string{"smtpServer", "sslRequired", "keycloakVersion", "displayNameHtml", "authenticationFlows", "authenticatorConfig", "directGrantFlow"} {
		if _, ok := s.Extra[k]; !ok {
			t.Errorf("Extra has no %q", k)
		}
	}
	eq(t, "Extra smtpServer", s.Extra["smtpServer"], any(map[string]any{"host": "smtp.acme.example", "from": "noreply@acme.example", "port": "587"}))
	for _, k := range []string{"realm", "users", "clients", "roles", "gatehouse"} {
		if _, ok := s.Extra[k]; ok {
			t.Errorf("Extra holds interpreted field %q", k)
		}
	}
}

func TestParseClients(t *testing.T) {
	p := mustParse(t, readTestdata(t))
	if len(p.Clients) != 5 {
		t.Fatalf("got %d clients", len(p.Clients))
	}
	api := p.Clients[0]
	eq(t, "secret", api.Secret, "Zm9vYmFyLXJpc2stYXBpLXNlY3JldC0xMjM0NTY3ODkw")
	eq(t, "risk-api", api.Client, store.Client{
		Realm: "acme", ClientID: "risk-api", ID: "9e0f4b2a-3333-4c4c-aeae-000000000001", Name: "Risk API", Enabled: true,
		ClientAuthenticator: "client-secret", DirectAccessGrantsEnabled: true,
		Attributes:          map[string]string{"access.token.lifespan": "300", "client.session.idle.timeout": "900", "use.refresh.tokens": "true"},
		DefaultClientScopes: []string{"profile", "email", "roles"}, OptionalScopes: []string{"offline_access", "risks:read"},
	})
	svc := p.Clients[1].Client
	eq(t, "service account user", svc.ServiceAccountUserID, "a1a1a1a1-0000-4000-8000-000000000004")
	eq(t, "serviceAccountsEnabled", svc.ServiceAccountsEnabled, true)
	spa := p.Clients[2].Client
	eq(t, "spa public", spa.Public, true)
	eq(t, "spa enabled default", spa.Enabled, true)
	eq(t, "spa redirectUris", spa.RedirectURIs, []string{"https://risk.acme.example/*", "http://localhost:3000/*"})
	eq(t, "spa webOrigins", spa.WebOrigins, []string{"+"})
	eq(t, "spa secret", p.Clients[2].Secret, "")
	jwt := p.Clients[4].Client
	eq(t, "jwt authenticator", jwt.ClientAuthenticator, "client-jwt")
	eq(t, "jwt enabled", jwt.Enabled, false)
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(jwt.JWKS, &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] != "batch-1" {
		t.Errorf("JWKS = %s (%v)", jwt.JWKS, err)
	}
	if _, ok := jwt.Attributes["jwks.string"]; ok {
		t.Error("jwks.string left in Attributes")
	}
	eq(t, "jwt use.jwks.string", jwt.Attributes["use.jwks.string"], "true")
}

func TestParseUsers(t *testing.T) {
	p := mustParse(t, readTestdata(t))
	if len(p.Users) != 5 {
		t.Fatalf("got %d users", len(p.Users))
	}
	alice := p.Users[0]
	eq(t, "alice password", alice.Password, "")
	eq(t, "alice", alice.User, store.User{
		Realm: "acme", ID: "a1a1a1a1-0000-4000-8000-000000000001", Username: "alice", Email: "alice@acme.example",
		FirstName: "Alice", LastName: "Archer", Enabled: true, EmailVerified: true,
		Created:         time.UnixMilli(1700000001000).UTC(),
		PasswordHash:    "$argon2id$v=19$m=7168,t=5,p=1$Nb9ZKUzY2amPEf3Zcm/piA$WIzk1fKkfsOqhLlHuqH8NXvIsmNzOMbFCw/cI+7ux00",
		PasswordCreated: time.UnixMilli(1700000002000).UTC(),
		RealmRoles:      []string{"default-roles-acme", "risk-admin"},
		ClientRoles:     map[string][]string{"risk-api": {"write"}},
		Attributes:      map[string][]string{"department": {"risk"}, "locale": {"en"}},
		Memberships: []store.Membership{
			{OrgID: "0a0a0a0a-0000-4000-8000-000000000001", ID: "MU00000000-0000-0000-0000-000000000000"},
			{OrgID: "0a0a0a0a-0000-4000-8000-000000000002", ID: "MU11111111-1111-1111-1111-111111111111"},
		},
	})
	hasher := password.NewHasher(password.DefaultParams())
	if ok, _ := hasher.Verify(alice.User.PasswordHash, "alice-Secret-1"); !ok {
		t.Error("alice's imported argon2 hash does not verify")
	}
	bob := p.Users[1].User
	eq(t, "bob username lowercased", bob.Username, "bob")
	eq(t, "bob requiredActions", bob.RequiredActions, []string{"VERIFY_EMAIL"})
	eq(t, "bob notBefore", bob.NotBefore, int64(1700000100))
	if ok, _ := hasher.Verify(bob.PasswordHash, "bob-Secret-2"); !ok {
		t.Error("bob's imported pbkdf2 hash does not verify")
	}
	if len(bob.Memberships) != 1 || bob.Memberships[0].OrgID != "0a0a0a0a-0000-4000-8000-000000000001" ||
		!regexp.MustCompile(`^MU[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bob.Memberships[0].ID) {
		t.Errorf("bob memberships = %+v, want one generated MU id", bob.Memberships)
	}
	carol := p.Users[2]
	eq(t, "carol password", carol.Password, "carol-Temporary-3")
	eq(t, "carol hash", carol.User.PasswordHash, "")
	eq(t, "carol temporary → UPDATE_PASSWORD", carol.User.RequiredActions, []string{"UPDATE_PASSWORD"})
	eq(t, "service account", p.Users[3].User.ServiceAccountClientID, "risk-service")
	dave := p.Users[4].User
	eq(t, "dave enabled", dave.Enabled, false)
	if !uuidV4.MatchString(dave.ID) {
		t.Errorf("dave id %q", dave.ID)
	}
}

func TestUnknownPaths(t *testing.T) {
	p := mustParse(t, readTestdata(t))
	want := []string{
		"smtpServer", "sslRequired", "keycloakVersion", "displayNameHtml", "groups",
		"clients[0].protocol", "clients[0].bearerOnly", "clients[1].protocolMappers",
		"clientScopes[0].protocolMappers", "clientScopes[0].description",
		"users[0].credentials[1]", "users[0].groups", "users[1].groups",
		"organizations[0].members[1].membershipType", "organizations[0].redirectUrl", "organizations[0].identityProviders",
		"clientScopeMappings",
	}
	for _, w := range want {
		if !slices.Contains(p.Unknown, w) {
			t.Errorf("Unknown lacks %q", w)
		}
	}
	notWant := []string{
		"users[0].totp", "users[0].credentials[0].id", "roles.realm[0].containerId", "authenticationFlows",
		"authenticatorConfig", "directGrantFlow", "gatehouse", "defaultRole", "realm", "clients[0].secret",
	}
	for _, n := range notWant {
		if slices.Contains(p.Unknown, n) {
			t.Errorf("Unknown has interpreted field %q", n)
		}
	}
	for _, u := range p.Unknown {
		if strings.HasPrefix(u, "authenticationFlows") || strings.HasPrefix(u, "gatehouse") {
			t.Errorf("Unknown has %q", u)
		}
	}

	p = mustParse(t, []byte(`{"realm":"r","gatehouse":{"future":1,"gateway":{"x":1,"operations":[{"path":"/a","y":2}]}},
		"roles":{"realm":[{"name":"a","weird":1,"composites":{"realm":["b"],"odd":1}}],"other":[]},
		"clients":[{"clientId":"c.1","secret":"**********"}],"my key.x":1}`))
	eq(t, "unknown", p.Unknown, []string{
		"gatehouse.gateway.operations[0].y", "gatehouse.gateway.x", "gatehouse.future",
		"roles.realm[0].composites.odd", "roles.realm[0].weird", "roles.other",
		"clients[0].secret", `["my key.x"]`,
	})
	eq(t, "masked secret", p.Clients[0].Secret, "")
	eq(t, "extra", p.Realm.Settings.Extra, map[string]any{"my key.x": float64(1)})
}

func TestParseErrors(t *testing.T) {
	cred := func(c string) string {
		return `{"realm":"r","users":[{"username":"a"},{"username":"b","credentials":[` + c + `]}]}`
	}
	tests := []struct {
		name, doc, path, msg string
	}{
		{"syntax", "{\n  \"realm\": \"r\",\n  oops\n}", "", "line 3, column 3"},
		{"empty", "", "", "invalid JSON"},
		{"not an object", `[1,2]`, "", "expected a JSON object"},
		{"null", `null`, "", "expected a JSON object"},
		{"no realm", `{"enabled":true}`, "realm", "required"},
		{"realm wrong type", `{"realm":5}`, "realm", "expected a string"},
		{"int wrong type", `{"realm":"r","accessTokenLifespan":"300"}`, "accessTokenLifespan", "expected an integer"},
		{"int fraction", `{"realm":"r","failureFactor":1.5}`, "failureFactor", "expected an integer"},
		{"bool wrong type", `{"realm":"r","enabled":"yes"}`, "enabled", "expected true or false"},
		{"strings wrong type", `{"realm":"r","defaultDefaultClientScopes":"profile"}`, "defaultDefaultClientScopes", "expected an array of strings"},
		{"clients not array", `{"realm":"r","clients":{}}`, "clients", "expected an array"},
		{"client not object", `{"realm":"r","clients":[1]}`, "clients[0]", "expected an object"},
		{"client attributes", `{"realm":"r","clients":[{"clientId":"c","attributes":{"a":1}}]}`, "clients[0].attributes", "expected an object of strings"},
		{"client no id", `{"realm":"r","clients":[{"name":"x"}]}`, "clients[0].clientId", "required"},
		{"duplicate clientId", `{"realm":"r","clients":[{"clientId":"c"},{"clientId":"c"}]}`, "clients[1].clientId", "duplicate clientId"},
		{"bad secret hash", `{"realm":"r","clients":[{"clientId":"c","attributes":{"gatehouse.secretHash":"%%%"}}]}`, `clients[0].attributes["gatehouse.secretHash"]`, "base64"},
		{"bad jwks", `{"realm":"r","clients":[{"clientId":"c","attributes":{"jwks.string":"nope"}}]}`, `clients[0].attributes["jwks.string"]`, "JSON Web Key Set"},
		{"user no username", `{"realm":"r","users":[{"username":"a"},{"email":"x@y"}]}`, "users[1].username", "required"},
		{"duplicate username", `{"realm":"r","users":[{"username":"Ann"},{"username":"ann"}]}`, "users[1].username", "duplicate username"},
		{"user attributes", `{"realm":"r","users":[{"username":"a","attributes":{"k":[1]}}]}`, "users[0].attributes.k", "expected an array of strings"},
		{"credential neither", cred(`{"type":"password"}`), "users[1].credentials[0]", "neither value nor secretData"},
		{"credential empty value", cred(`{"type":"password","value":""}`), "users[1].credentials[0].value", "empty password"},
		{"credential no type", cred(`{"value":"x"}`), "users[1].credentials[0].type", "required"},
		{"credential no credentialData", cred(`{"type":"password","secretData":"{}"}`), "users[1].credentials[0].credentialData", "required"},
		{"credential unparsable", cred(`{"type":"password","secretData":"{\"value\":\"!!\",\"salt\":\"\"}","credentialData":"{\"hashIterations\":1,\"algorithm\":\"pbkdf2-sha256\"}"}`),
			"users[1].credentials[0].secretData", "unusable password hash"},
		{"credential unknown algorithm", cred(`{"type":"password","secretData":"{\"value\":\"AAAAAAAA\",\"salt\":\"AAAA\"}","credentialData":"{\"hashIterations\":1,\"algorithm\":\"md5\"}"}`),
			"users[1].credentials[0].secretData", "not supported"},
		{"secretData wrong type", cred(`{"type":"password","secretData":{}}`), "users[1].credentials[0].secretData", "expected a string"},
		{"two passwords", cred(`{"type":"password","value":"a"},{"type":"password","value":"b"}`), "users[1].credentials[1]", "more than one"},
		{"role no name", `{"realm":"r","roles":{"realm":[{}]}}`, "roles.realm[0].name", "required"},
		{"duplicate role", `{"realm":"r","roles":{"client":{"c":[{"name":"a"},{"name":"a"}]}}}`, "roles.client.c[1].name", "duplicate role"},
		{"defaultRole missing", `{"realm":"r","defaultRole":{"name":"default-roles-r"}}`, "defaultRole.name", "no realm role"},
		{"composites wrong type", `{"realm":"r","roles":{"realm":[{"name":"a","composites":{"realm":"b"}}]}}`, "roles.realm[0].composites.realm", "expected an array of strings"},
		{"scope no name", `{"realm":"r","clientScopes":[{"protocol":"openid-connect"}]}`, "clientScopes[0].name", "required"},
		{"member unknown user", `{"realm":"r","organizations":[{"name":"o","members":[{"username":"ghost"}]}]}`, "organizations[0].members[0].username", "no user"},
		{"member twice", `{"realm":"r","users":[{"username":"a"}],"organizations":[{"name":"o","members":[{"username":"a"},{"username":"A"}]}]}`,
			"organizations[0].members[1].username", "member twice"},
		{"duplicate membership id", `{"realm":"r","users":[{"username":"a"},{"username":"b"}],"organizations":[{"name":"o","members":[
			{"username":"a","attributes":{"gatehouse.membershipId":["MU1"]}},{"username":"b","attributes":{"gatehouse.membershipId":"MU1"}}]}]}`,
			`organizations[0].members[1].attributes["gatehouse.membershipId"]`, "duplicate membership id"},
		{"gateway operation", `{"realm":"r","gatehouse":{"gateway":{"operations":[{"timeoutSeconds":"x"}]}}}`, "gatehouse.gateway.operations[0].timeoutSeconds", "expected an integer"},
		{"limit config missing", `{"realm":"r","directGrantFlow":"d","authenticationFlows":[{"alias":"d","authenticationExecutions":[
			{"authenticator":"user-session-limits","authenticatorConfig":"nope","requirement":"REQUIRED"}]}]}`,
			"authenticationFlows[0].authenticationExecutions[0].authenticatorConfig", "no authenticatorConfig"},
		{"limit not a number", `{"realm":"r","directGrantFlow":"d","authenticationFlows":[{"alias":"d","authenticationExecutions":[
			{"authenticator":"user-session-limits","authenticatorConfig":"c"}]}],"authenticatorConfig":[{"alias":"c","config":{"userRealmLimit":"many"}}]}`,
			"authenticatorConfig[0].config.userRealmLimit", "non-negative integer"},
		{"limit behavior", `{"realm":"r","directGrantFlow":"d","authenticationFlows":[{"alias":"d","authenticationExecutions":[
			{"authenticator":"user-session-limits","authenticatorConfig":"c"}]}],"authenticatorConfig":[{"alias":"c","config":{"behavior":"Explode"}}]}`,
			"authenticatorConfig[0].config.behavior", "expected"},
		{"flows wrong type", `{"realm":"r","authenticationFlows":{}}`, "authenticationFlows", "expected an array"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *PathError", err, err)
			}
			if pe.Path != tc.path || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("err = %q (path %q), want path %q and a message with %q", pe.Error(), pe.Path, tc.path, tc.msg)
			}
			if pe.Error() != pe.Path+": "+pe.Msg {
				t.Errorf("Error() = %q", pe.Error())
			}
		})
	}
}

func TestPasswordValueNotInErrors(t *testing.T) {
	_, err := Parse([]byte(`{"realm":"r","users":[{"username":"a","credentials":[{"type":"password","value":"hunter2-secret","secretData":"x","credentialData":"y"}]}]}`))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

func TestSessionLimitsFlowRules(t *testing.T) {
	doc := func(req string) string {
		return `{"realm":"r","directGrantFlow":"d","authenticationFlows":[
			{"alias":"d","authenticationExecutions":[{"authenticatorFlow":true,"flowAlias":"sub","requirement":"` + req + `"},
				{"authenticatorFlow":true,"flowAlias":"d"}]},
			{"alias":"sub","authenticationExecutions":[{"authenticator":"user-session-limits","authenticatorConfig":"c","requirement":"REQUIRED"}]},
			{"alias":"other","authenticationExecutions":[{"authenticator":"user-session-limits","authenticatorConfig":"c"}]}],
			"authenticatorConfig":[{"alias":"c","config":{"userClientLimit":"2"}}]}`
	}
	p := mustParse(t, []byte(doc("CONDITIONAL")))
	// Behaviour defaults to Keycloak's "Deny new session"; the flow's
	// reference to itself does not loop.
	eq(t, "limits", p.Realm.Settings.SessionLimits, &store.SessionLimits{ClientLimit: 2, Behavior: store.DenyNewSession})
	p = mustParse(t, []byte(doc("DISABLED")))
	eq(t, "limits in a disabled sub-flow", p.Realm.Settings.SessionLimits, (*store.SessionLimits)(nil))
	p = mustParse(t, []byte(strings.Replace(doc("REQUIRED"), `"directGrantFlow":"d"`, `"directGrantFlow":"other2"`, 1)))
	eq(t, "limits outside the direct-grant flow", p.Realm.Settings.SessionLimits, (*store.SessionLimits)(nil))
}

func TestLegacyDefaultRoles(t *testing.T) {
	p := mustParse(t, []byte(`{"realm":"old","defaultRoles":["offline_access","uma_authorization"],
		"roles":{"realm":[{"name":"offline_access"},{"name":"uma_authorization"}]},
		"clients":[{"clientId":"account","defaultRoles":["view-profile"]}]}`))
	eq(t, "defaultRoles", p.Realm.Settings.DefaultRoles, []string{"offline_access", "uma_authorization", "account/view-profile"})
	out, err := Export(bundle(p))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["defaultRole"]; ok {
		t.Error("export invented a defaultRole")
	}
	eq(t, "exported defaultRoles", doc["defaultRoles"], any([]any{"offline_access", "uma_authorization"}))
	p2 := mustParse(t, out)
	eq(t, "round trip", p2.Realm.Settings.DefaultRoles, p.Realm.Settings.DefaultRoles)
}

// bundle turns a parse into what the store would hold: plain secrets and
// passwords hashed by the caller.
func bundle(p *Parsed) store.RealmBundle {
	b := store.RealmBundle{Realm: p.Realm}
	for _, c := range p.Clients {
		if c.Secret != "" {
			h := sha256.Sum256([]byte(c.Secret))
			c.Client.SecretHash = h[:]
		}
		b.Clients = append(b.Clients, c.Client)
	}
	for _, u := range p.Users {
		if u.Password != "" {
			h, err := password.NewHasher(password.Params{Memory: 64, Iterations: 1}).Hash(u.Password)
			if err != nil {
				panic(err)
			}
			u.User.PasswordHash = h
		}
		b.Users = append(b.Users, u.User)
	}
	return b
}

func parsedBundle(t *testing.T, data []byte) store.RealmBundle {
	t.Helper()
	p := mustParse(t, data)
	for _, c := range p.Clients {
		if c.Secret != "" {
			t.Fatalf("client %s: secret %q came back from an export", c.Client.ClientID, c.Secret)
		}
	}
	for _, u := range p.Users {
		if u.Password != "" {
			t.Fatalf("user %s: plain password came back from an export", u.User.Username)
		}
	}
	return bundle(p)
}

func TestRoundTrip(t *testing.T) {
	orig := bundle(mustParse(t, readTestdata(t)))
	// Fields only gatehouse has travel as attributes.
	orig.Clients[2].OwnerUserID = orig.Users[0].ID
	orig.Clients[2].Scopes = []string{"risks:read", "files:read"}
	orig.Clients[2].Created = time.UnixMilli(1700000009000).UTC()
	orig.Clients[4].SecretSealed = []byte("sealed-bytes")

	out, err := Export(orig)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) || !strings.HasPrefix(string(out), "{\n  \"id\": ") {
		t.Fatalf("export is not 2-space indented JSON:\n%.200s", out)
	}
	if strings.Contains(string(out), "Zm9vYmFyLXJpc2stYXBpLXNlY3JldC0xMjM0NTY3ODkw") {
		t.Error("export contains a plain client secret")
	}
	if strings.Contains(string(out), `"secret"`) {
		t.Error("export writes a secret field")
	}
	got := parsedBundle(t, out)
	eq(t, "realm", got.Realm, orig.Realm)
	eq(t, "clients", got.Clients, orig.Clients)
	eq(t, "users", got.Users, orig.Users)

	// Exporting the re-imported bundle gives the same bytes.
	out2, err := Export(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(out2) != string(out) {
		t.Error("second export differs from the first")
	}
}

func TestExportKeycloakShape(t *testing.T) {
	out, err := Export(bundle(mustParse(t, readTestdata(t))))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Realm       string `json:"realm"`
		DefaultRole struct {
			Name string `json:"name"`
		} `json:"defaultRole"`
		Users []struct {
			Username    string `json:"username"`
			Credentials []struct {
				Type, SecretData, CredentialData string
				CreatedDate                      int64
			} `json:"credentials"`
		} `json:"users"`
		Clients []struct {
			ClientID   string            `json:"clientId"`
			Secret     *string           `json:"secret"`
			Attributes map[string]string `json:"attributes"`
		} `json:"clients"`
		Organizations []struct {
			Domains []struct{ Name string }
			Members []struct {
				Username   string
				Attributes map[string][]string
			}
		} `json:"organizations"`
		SMTP      map[string]string `json:"smtpServer"`
		Gatehouse map[string]any    `json:"gatehouse"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	eq(t, "defaultRole", doc.DefaultRole.Name, "default-roles-acme")
	c := doc.Users[0].Credentials[0]
	eq(t, "credential type", c.Type, "password")
	eq(t, "createdDate", c.CreatedDate, int64(1700000002000))
	h, err := password.FromKeycloak(c.SecretData, c.CredentialData)
	if err != nil || !strings.HasPrefix(h, "$argon2id$") {
		t.Errorf("exported credential reads back as %q, %v", h, err)
	}
	if doc.Clients[0].Secret != nil {
		t.Error("client secret exported")
	}
	sum := sha256.Sum256([]byte("Zm9vYmFyLXJpc2stYXBpLXNlY3JldC0xMjM0NTY3ODkw"))
	want := []byte(doc.Clients[0].Attributes[AttrSecretHash])
	if string(want) == "" {
		t.Fatal("no gatehouse.secretHash attribute")
	}
	p := mustParse(t, out)
	eq(t, "secret hash", p.Clients[0].Client.SecretHash, sum[:])
	eq(t, "membership id attribute", doc.Organizations[0].Members[0].Attributes[AttrMembershipID], []string{"MU00000000-0000-0000-0000-000000000000"})
	eq(t, "smtp", doc.SMTP["host"], "smtp.acme.example")
	if _, ok := doc.Gatehouse["gateway"]; !ok {
		t.Error("gatehouse.gateway missing")
	}
}

func TestExportSessionLimits(t *testing.T) {
	// Limits set by an admin on a realm with no flows: export writes a
	// direct-grant flow that carries them.
	b := bundle(mustParse(t, []byte(`{"realm":"r"}`)))
	b.Realm.Settings.SessionLimits = &store.SessionLimits{RealmLimit: 2, Behavior: store.DenyNewSession, ErrorMessage: "Limit"}
	out, err := Export(b)
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, out)
	eq(t, "limits from new flow", p.Realm.Settings.SessionLimits, b.Realm.Settings.SessionLimits)

	// Changed limits on an imported realm update its config in place.
	b = bundle(mustParse(t, readTestdata(t)))
	extraBefore, _ := json.Marshal(b.Realm.Settings.Extra)
	b.Realm.Settings.SessionLimits = &store.SessionLimits{RealmLimit: 1, Behavior: store.DenyNewSession}
	out, err = Export(b)
	if err != nil {
		t.Fatal(err)
	}
	if extraAfter, _ := json.Marshal(b.Realm.Settings.Extra); string(extraAfter) != string(extraBefore) {
		t.Error("Export changed the bundle's Extra")
	}
	p = mustParse(t, out)
	eq(t, "updated limits", p.Realm.Settings.SessionLimits, b.Realm.Settings.SessionLimits)
	eq(t, "directGrantFlow kept", p.Realm.Settings.Extra["directGrantFlow"], any("limited direct grant"))

	// Limits removed: the execution is disabled, so none are read back.
	b.Realm.Settings.SessionLimits = nil
	out, err = Export(b)
	if err != nil {
		t.Fatal(err)
	}
	p = mustParse(t, out)
	eq(t, "removed limits", p.Realm.Settings.SessionLimits, (*store.SessionLimits)(nil))

	// A direct-grant flow without the execution gets one appended.
	b = bundle(mustParse(t, []byte(`{"realm":"r","directGrantFlow":"dg","authenticationFlows":[{"alias":"dg",
		"authenticationExecutions":[{"authenticator":"direct-grant-validate-username","priority":10}]}]}`)))
	b.Realm.Settings.SessionLimits = &store.SessionLimits{ClientLimit: 4, Behavior: store.TerminateOldestSession}
	out, err = Export(b)
	if err != nil {
		t.Fatal(err)
	}
	p = mustParse(t, out)
	eq(t, "appended limits", p.Realm.Settings.SessionLimits, b.Realm.Settings.SessionLimits)
}

func TestExportErrors(t *testing.T) {
	b := bundle(mustParse(t, []byte(`{"realm":"r","users":[{"username":"a"}]}`)))
	b.Users[0].PasswordHash = "not-a-hash"
	if _, err := Export(b); err == nil || strings.Contains(err.Error(), "not-a-hash") {
		t.Errorf("bad hash: err = %v", err)
	}
	b.Users[0].PasswordHash = ""
	b.Users[0].Memberships = []store.Membership{{OrgID: "gone", ID: "MU1"}}
	if _, err := Export(b); err == nil {
		t.Error("membership of a missing organization exported")
	}
}

func TestSplitComposite(t *testing.T) {
	clients := map[string]string{"https://sp.example/saml": "1", "api": "2"}
	realm := map[string]bool{"team/lead": true}
	for _, tc := range []struct{ ref, cid, name string }{
		{"https://sp.example/saml/viewer", "https://sp.example/saml", "viewer"},
		{"api/read", "api", "read"},
		{"team/lead", "", "team/lead"},
		{"plain", "", "plain"},
		{"gone/x", "gone", "x"},
	} {
		cid, name, _ := splitComposite(tc.ref, clients, realm)
		if cid != tc.cid || name != tc.name {
			t.Errorf("splitComposite(%q) = %q, %q; want %q, %q", tc.ref, cid, name, tc.cid, tc.name)
		}
	}
}

func FuzzParse(f *testing.F) {
	// A compact document that reaches every branch; the full testdata
	// file is too large for the fuzzer to minimize quickly.
	f.Add([]byte(`{"realm":"r","enabled":true,"gatehouse":{"gateway":{"operations":[{"path":"/a","scopes":["s"]}]}},
		"roles":{"realm":[{"name":"default-roles-r","composites":{"realm":["x"],"client":{"c":["y"]}}},{"name":"x"}],
		"client":{"c":[{"name":"y"}]}},"defaultRole":{"name":"default-roles-r"},
		"clientScopes":[{"name":"s","attributes":{"include.in.token.scope":"false"}}],
		"clients":[{"clientId":"c","secret":"s","attributes":{"jwks.string":"{\"keys\":[]}","gatehouse.secretHash":"AAAA"}}],
		"users":[{"username":"U","credentials":[{"type":"password","value":"p","temporary":true}]},
		{"username":"v","credentials":[{"type":"password","secretData":"{\"value\":\"AAAAAAAA\",\"salt\":\"AAAA\"}","credentialData":"{\"hashIterations\":1,\"algorithm\":\"pbkdf2-sha256\"}"}]}],
		"organizations":[{"name":"o","domains":[{"name":"o.example"}],"members":[{"username":"u"}]}],
		"directGrantFlow":"d","authenticationFlows":[{"alias":"d","authenticationExecutions":[{"flowAlias":"e"}]},
		{"alias":"e","authenticationExecutions":[{"authenticator":"user-session-limits","authenticatorConfig":"l"}]}],
		"authenticatorConfig":[{"alias":"l","config":{"userRealmLimit":"2"}}],"smtpServer":{}}`))
	f.Add([]byte(`{"realm":"min"}`))
	f.Add([]byte(`{"realm":"r","users":[{"username":"a","credentials":[{"type":"password","secretData":"{}","credentialData":"{}"}]}]}`))
	f.Add([]byte(`{"realm":"r","directGrantFlow":"d","authenticationFlows":[{"alias":"d","authenticationExecutions":[{"flowAlias":"d"}]}]}`))
	f.Add([]byte(`{"realm":"r","roles":{"realm":[{"name":"a","composites":{"client":{"c":"x"}}}]},"defaultRole":{"name":"a"}}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, not *PathError", err, err)
			}
			return
		}
		// What parses must export; hashes that fail to convert back
		// are the only allowed failure.
		if _, err := Export(bundle(p)); err != nil && !strings.Contains(err.Error(), "password hash") {
			t.Fatalf("Export of a parsed document: %v", err)
		}
	})
}

func TestClientSecretHashAttributeWins(t *testing.T) {
	p := mustParse(t, []byte(`{"realm":"r","clients":[{"clientId":"c","secret":"plain",
		"attributes":{"gatehouse.secretHash":"AQID","gatehouse.ownerUserId":"u1","gatehouse.scopes":"a b",
		"gatehouse.createdTimestamp":"1700000000123","keep":"me"}}]}`))
	ci := p.Clients[0]
	eq(t, "secret", ci.Secret, "")
	eq(t, "hash", ci.Client.SecretHash, []byte{1, 2, 3})
	eq(t, "owner", ci.Client.OwnerUserID, "u1")
	eq(t, "scopes", ci.Client.Scopes, []string{"a", "b"})
	eq(t, "created", ci.Client.Created, time.UnixMilli(1700000000123).UTC())
	eq(t, "attributes", ci.Client.Attributes, map[string]string{"keep": "me"})

	_, err := Parse([]byte(`{"realm":"r","clients":[{"clientId":"c","attributes":{"gatehouse.createdTimestamp":"soon"}}]}`))
	var pe *PathError
	if !errors.As(err, &pe) || pe.Path != `clients[0].attributes["gatehouse.createdTimestamp"]` {
		t.Errorf("err = %v", err)
	}
}

// The store keeps RealmSettings as one JSON document; an export of a realm
// read back from it must equal the export of the realm as imported.
func TestExportAfterStoreJSON(t *testing.T) {
	b := bundle(mustParse(t, readTestdata(t)))
	before, err := Export(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(b.Realm.Settings)
	if err != nil {
		t.Fatal(err)
	}
	var s store.RealmSettings
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	b.Realm.Settings = s
	after, err := Export(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Error("export changed after the settings went through JSON")
	}
}
