// Package conformance is the one test suite every store.Store backend must
// pass. A backend's own test file calls Run with a function that returns a
// fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// Each subtest gets its own store, so subtests do not see each other's
// data. The concurrency subtests are the ones that matter most: they check
// the invariants (session limits, single-use refresh tokens and assertion
// ids) that the store, not the caller, must keep.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Run runs the whole suite against stores made by newStore. newStore must
// return an empty store and arrange (with t.Cleanup) for it to be closed.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Realms", testRealms},
		{"RealmNamesAreCaseSensitive", testRealmCase},
		{"DeleteRealmCascades", testDeleteRealmCascade},
		{"Clients", testClients},
		{"Users", testUsers},
		{"UserLookups", testUserLookups},
		{"ListUsersPaging", testListUsersPaging},
		{"CreateUsersBatchIsAtomic", testCreateUsersAtomic},
		{"DeleteUserCascades", testDeleteUserCascade},
		{"Sessions", testSessions},
		{"CreateSessionAdmit", testCreateSessionAdmit},
		{"Keys", testKeys},
		{"Revocations", testRevocations},
		{"UseOnce", testUseOnce},
		{"LoginFailures", testLoginFailures},
		{"DeleteExpired", testDeleteExpired},
		{"ImportRealm", testImportRealm},
		{"ImportRealmIsAtomic", testImportRealmAtomic},
		{"ImportRealmReplace", testImportRealmReplace},
		{"UpdateFuncErrorAborts", testUpdateAborts},
		{"ConcurrentSessionLimitDeny", testConcurrentDeny},
		{"ConcurrentSessionLimitTerminateOldest", testConcurrentTerminateOldest},
		{"ConcurrentRefreshUses", testConcurrentRefreshUses},
		{"ConcurrentUseOnce", testConcurrentUseOnce},
		{"Subscribe", testSubscribe},
		{"SubscribeSkipsRollbacks", testSubscribeRollback},
		{"SubscribeCancel", testSubscribeCancel},
		{"Ping", func(t *testing.T, s store.Store) { ok(t, s.Ping(context.Background())) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// base is a fixed instant with nanoseconds and a non-UTC zone, so that the
// round-trip tests see the store truncate to milliseconds and answer in
// UTC.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*3600))

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// msUTC is how every time comes back from a store: milliseconds, UTC.
func msUTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// equal compares after normalizing every time field to milliseconds UTC
// (the instant must match; checkTime checks the representation itself).
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s differs:\n got: %+v\nwant: %+v", what, g, w)
	}
}

// checkTime asserts that got is want truncated to milliseconds, in UTC.
func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	w := msUTC(want)
	if !got.Equal(w) || (!got.IsZero() && got.Location() != time.UTC) {
		t.Fatalf("%s = %v (%v), want %v in UTC", what, got, got.Location(), w)
	}
}

// normalize returns a copy of v with every time.Time, however deeply
// nested in structs and slices, rewritten by msUTC.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return v
	}
	out := reflect.New(rv.Type()).Elem()
	normValue(out, rv)
	return out.Interface()
}

var timeType = reflect.TypeOf(time.Time{})

func normValue(dst, src reflect.Value) {
	if src.Type() == timeType {
		dst.Set(reflect.ValueOf(msUTC(src.Interface().(time.Time))))
		return
	}
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			if !dst.Field(i).CanSet() {
				dst.Set(src)
				return
			}
			normValue(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			normValue(dst.Index(i), src.Index(i))
		}
	default:
		dst.Set(src)
	}
}

// ctx is the context of a test.
func ctx(t *testing.T) context.Context { return t.Context() }

// seedRealm creates a realm with settings and returns it.
func seedRealm(t *testing.T, s store.Store, name string) store.Realm {
	t.Helper()
	r := fullRealm(name)
	ok(t, s.CreateRealm(ctx(t), r))
	return r
}

// seedUser creates a user with username "user-<id>".
func seedUser(t *testing.T, s store.Store, realm, id string) store.User {
	t.Helper()
	u := fullUser(realm, id, "user-"+id)
	ok(t, s.CreateUser(ctx(t), u))
	return u
}

func fullRealm(name string) store.Realm {
	return store.Realm{
		Name:    name,
		ID:      "id-" + name,
		Enabled: true,
		Updated: at(0),
		Settings: store.RealmSettings{
			DisplayName:                      "Realm " + name,
			AccessTokenLifespan:              300,
			SSOSessionIdleTimeout:            1800,
			SSOSessionMaxLifespan:            36000,
			OfflineSessionIdleTimeout:        2592000,
			OfflineSessionMaxLifespanEnabled: true,
			OfflineSessionMaxLifespan:        5184000,
			ClientSessionIdleTimeout:         600,
			ClientSessionMaxLifespan:         7200,
			NotBefore:                        1700000000,
			RevokeRefreshToken:               true,
			RefreshTokenMaxReuse:             2,
			RefreshGraceSeconds:              5,
			BruteForce: store.BruteForce{
				Protected: true, PermanentLockout: true, FailureFactor: 30, WaitIncrementSeconds: 60,
				MaxFailureWaitSeconds: 900, MinimumQuickLoginWaitSeconds: 60,
				QuickLoginCheckMilliSeconds: 1000, MaxDeltaTimeSeconds: 43200,
			},
			SessionLimits: &store.SessionLimits{
				RealmLimit: 5, ClientLimit: 2, Behavior: store.TerminateOldestSession, ErrorMessage: "too many",
			},
			DefaultSignatureAlgorithm: "ES256",
			Roles: []store.Role{
				{Name: "admin", ID: "r1", Description: "Admins", Composites: []string{"user", "app/read"},
					Attributes: map[string][]string{"scopes": {"risks:read", "risks:write"}}},
				{Name: "read", ID: "r2", ClientID: "app"},
			},
			DefaultRoles: []string{"user", "offline_access"},
			ClientScopes: []store.ClientScope{
				{Name: "profile", ID: "s1", Protocol: "openid-connect", IncludeInTokenScope: true,
					Attributes: map[string]string{"display.on.consent.screen": "true"}},
			},
			DefaultClientScopes:  []string{"profile", "email"},
			OptionalScopes:       []string{"offline_access"},
			OrganizationsEnabled: true,
			Organizations: []store.Organization{
				{ID: "o1", Name: "Acme", Alias: "acme", Enabled: true, Description: "Acme Corp",
					Domains: []string{"acme.test"}, Attributes: map[string][]string{"tier": {"gold"}}},
			},
			Gateway: &store.Gateway{
				OrgFrom: "subdomain", Domain: "api.test", Audience: "risks", AcceptIDTokens: true,
				Operations: []store.Operation{
					{Method: "GET", Path: "/risks/{id}", Upstream: "http://127.0.0.1:9000", Scopes: []string{"risks:read"},
						ForwardAuthorization: true, TimeoutSeconds: 10},
					{Method: "*", Path: "/health", Upstream: "http://127.0.0.1:9000", Public: true},
				},
			},
			RegistrationAllowed: true,
			VerifyEmail:         true,
			PasswordPolicy:      "length(12)",
			MaxAppsPerUser:      16,
			Aliases:             []string{"db-" + name},
			Extra: map[string]any{
				"smtpServer": map[string]any{"host": "mail.test", "port": "25"},
				"otpPolicy":  "totp",
				"count":      float64(3),
				"flags":      []any{true, "x", float64(1.5)},
			},
		},
	}
}

func fullClient(realm, clientID string) store.Client {
	return store.Client{
		Realm:                     realm,
		ClientID:                  clientID,
		ID:                        "uuid-" + clientID,
		Name:                      "Client " + clientID,
		Enabled:                   true,
		Public:                    false,
		SecretHash:                []byte{0x01, 0x02, 0xfe, 0xff, 0x00, 0x7f},
		SecretSealed:              []byte("sealed-secret-bytes"),
		ClientAuthenticator:       "client-secret-jwt",
		ServiceAccountsEnabled:    true,
		DirectAccessGrantsEnabled: true,
		StandardFlowEnabled:       true,
		RedirectURIs:              []string{"https://app.test/cb", "http://localhost:3000/*"},
		WebOrigins:                []string{"+"},
		Attributes:                map[string]string{"access.token.lifespan": "60", "use.refresh.tokens": "true"},
		DefaultClientScopes:       []string{"profile", "roles"},
		OptionalScopes:            []string{"offline_access"},
		JWKS:                      []byte(`{"keys":[]}`),
		ServiceAccountUserID:      "sa-" + clientID,
		OwnerUserID:               "",
		Scopes:                    []string{"risks:read"},
		Created:                   at(time.Minute),
	}
}

func fullUser(realm, id, username string) store.User {
	return store.User{
		Realm:           realm,
		ID:              id,
		Username:        username,
		Email:           username + "@example.test",
		FirstName:       "First " + id,
		LastName:        "Last " + id,
		Enabled:         true,
		EmailVerified:   true,
		Created:         at(2 * time.Minute),
		PasswordHash:    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		PasswordCreated: at(3 * time.Minute),
		RealmRoles:      []string{"user", "admin"},
		ClientRoles:     map[string][]string{"app": {"read", "write"}},
		Attributes:      map[string][]string{"locale": {"de"}, "phone": {"1", "2"}},
		Memberships:     []store.Membership{{OrgID: "o1", ID: "MU" + id}},
		RequiredActions: []string{"VERIFY_EMAIL"},
		NotBefore:       1700000123,
	}
}

func fullSession(realm, id, userID string, lastSeen time.Time) store.Session {
	return store.Session{
		ID:              id,
		Realm:           realm,
		UserID:          userID,
		ClientID:        "app",
		Offline:         false,
		Started:         at(-time.Hour),
		LastSeen:        lastSeen,
		Expires:         at(time.Hour),
		Scope:           "openid profile",
		RefreshID:       "rt-" + id,
		RefreshUses:     1,
		PrevRefreshID:   "prev-" + id,
		RotatedAt:       at(-time.Minute),
		IssuedAccessJTI: "at-" + id,
		ParentID:        "parent",
		IP:              "192.0.2.1",
		UserAgent:       "curl/8",
	}
}

func fullKey(realm, kid string, created time.Time) store.Key {
	return store.Key{
		Realm:   realm,
		KID:     kid,
		Alg:     "ES256",
		Use:     "sig",
		Private: []byte("sealed-private-" + kid),
		Public:  []byte("public-" + kid),
		Created: created,
		Active:  true,
	}
}

// admitAll admits every session and ends none.
func admitAll([]store.Session) ([]string, error) { return nil, nil }

// errRefused is what the tests' update and admit functions return.
var errRefused = errors.New("conformance: refused by the update function")

func mustCount(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %d, want %d", what, got, want)
	}
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func sessionIDs(ss []store.Session) []string {
	return ids(ss, func(s store.Session) string { return s.ID })
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}
