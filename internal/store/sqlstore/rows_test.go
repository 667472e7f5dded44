package sqlstore

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// row is a result row as a driver returns it: the values an Args function
// produced, read back into Scan's destinations. NULL (nil) reads as the
// zero value, as both backends' non-null columns and nullable blobs do.
// A column count that differs from the destinations is an error, so a
// column list, its Args and its Scan that disagree fail here.
type row []any

func (r row) Scan(dest ...any) error {
	if len(dest) != len(r) {
		return fmt.Errorf("scan: %d columns into %d destinations", len(r), len(dest))
	}
	for i, v := range r {
		d := reflect.ValueOf(dest[i]).Elem()
		if v == nil {
			d.SetZero()
			continue
		}
		rv := reflect.ValueOf(v)
		if !rv.Type().AssignableTo(d.Type()) {
			return fmt.Errorf("scan: column %d: %T into %s", i, v, d.Type())
		}
		if b, ok := v.([]byte); ok { // drivers hand out their own copy
			rv = reflect.ValueOf(append([]byte(nil), b...))
		}
		d.Set(rv)
	}
	return nil
}

var (
	t0 = time.Date(2025, 3, 1, 12, 30, 45, 123_000_000, time.UTC)
	t1 = t0.Add(36 * time.Hour)
)

// roundTrip checks that an entity written with args comes back from scan
// equal to want, and that the column list has one column per value.
func roundTrip[T any](t *testing.T, cols string, args []any, scan func(Scanner) (T, error), want T) {
	t.Helper()
	if n := len(Columns(cols)); n != len(args) {
		t.Fatalf("%d columns but %d values", n, len(args))
	}
	got, err := scan(row(args))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestRealmRoundTrip(t *testing.T) {
	r := store.Realm{Name: "acme", ID: "9f3c", Enabled: true, Updated: t0, Settings: store.RealmSettings{
		DisplayName: "Acme", AccessTokenLifespan: 300, RevokeRefreshToken: true,
		SessionLimits: &store.SessionLimits{RealmLimit: 3, Behavior: store.DenyNewSession},
		Roles:         []store.Role{{Name: "admin", Attributes: map[string][]string{"scopes": {"risks:read"}}}},
		Extra:         map[string]any{"smtpServer": map[string]any{"host": "mail"}},
	}}
	roundTrip(t, RealmColumns, must(RealmArgs(r)), ScanRealm, r)
	roundTrip(t, RealmColumns, must(RealmArgs(store.Realm{Name: "bare"})), ScanRealm, store.Realm{Name: "bare"})
}

func TestClientRoundTrip(t *testing.T) {
	c := store.Client{
		Realm: "acme", ClientID: "cli", ID: "uuid", Name: "CLI", Enabled: true,
		SecretHash: []byte{1, 2, 3}, SecretSealed: []byte{4}, ClientAuthenticator: "client-secret-jwt",
		ServiceAccountsEnabled: true, DirectAccessGrantsEnabled: true, StandardFlowEnabled: true,
		RedirectURIs: []string{"https://app.test/cb"}, WebOrigins: []string{"+"},
		Attributes:          map[string]string{"access.token.lifespan": "60"},
		DefaultClientScopes: []string{"profile"}, OptionalScopes: []string{"offline_access"},
		JWKS: []byte(`{"keys":[]}`), ServiceAccountUserID: "sa", OwnerUserID: "dev",
		Scopes: []string{"risks:read"}, Created: t0,
	}
	roundTrip(t, ClientColumns, must(ClientArgs(c)), ScanClient, c)
	// Empty blobs are stored as NULL and read back as nil, not as an
	// empty slice: callers test for a secret with len or nil alike.
	bare := store.Client{Realm: "acme", ClientID: "public", Public: true, SecretHash: []byte{}}
	want := bare
	want.SecretHash = nil
	roundTrip(t, ClientColumns, must(ClientArgs(bare)), ScanClient, want)
}

func TestUserRoundTrip(t *testing.T) {
	u := store.User{
		Realm: "acme", ID: "u1", Username: "alice", Email: "alice@example.test", FirstName: "Alice",
		LastName: "Liddell", Enabled: true, EmailVerified: true, Created: t0,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", PasswordCreated: t1,
		RealmRoles:             []string{"user"},
		ClientRoles:            map[string][]string{"api": {"reader"}},
		Attributes:             map[string][]string{"tenant": {"t1", "t2"}},
		Memberships:            []store.Membership{{OrgID: "o1", ID: "MU1"}},
		ServiceAccountClientID: "svc", RequiredActions: []string{"VERIFY_EMAIL"}, NotBefore: 1700000000,
	}
	roundTrip(t, UserColumns, must(UserArgs(u)), ScanUser, u)
	roundTrip(t, UserColumns, must(UserArgs(store.User{Realm: "acme", ID: "u2"})), ScanUser, store.User{Realm: "acme", ID: "u2"})
}

func TestSessionRoundTrip(t *testing.T) {
	s := store.Session{
		ID: "s1", Realm: "acme", UserID: "u1", ClientID: "cli", Offline: true,
		Started: t0, LastSeen: t1, Expires: t1.Add(time.Hour), Scope: "openid offline_access",
		RefreshID: "r2", RefreshUses: 1, PrevRefreshID: "r1", RotatedAt: t1,
		IssuedAccessJTI: "a2", ParentID: "s0", IP: "192.0.2.1", UserAgent: "curl/8.5.0",
	}
	roundTrip(t, SessionColumns, SessionArgs(s), ScanSession, s)
	roundTrip(t, SessionColumns, SessionArgs(store.Session{}), ScanSession, store.Session{})
}

func TestKeyRoundTrip(t *testing.T) {
	k := store.Key{Realm: "acme", KID: "k1", Alg: "ES256", Use: "sig", Private: []byte{9, 9}, Public: []byte{8},
		Created: t0, Active: true, RetireAt: t1}
	roundTrip(t, KeyColumns, KeyArgs(k), ScanKey, k)
	hmac := store.Key{Realm: "acme", KID: "h1", Alg: "HS256", Use: "hmac", Private: []byte{1}, Created: t0}
	roundTrip(t, KeyColumns, KeyArgs(hmac), ScanKey, hmac)
}

func TestRevocationAndLoginFailureRoundTrip(t *testing.T) {
	r := store.Revocation{Realm: "acme", JTI: "j1", Expires: t1, Created: t0}
	roundTrip(t, RevocationColumns, RevocationArgs(r), ScanRevocation, r)
	f := store.LoginFailure{Realm: "acme", UserID: "u1", NumFailures: 4, LastFailure: t0, LastIP: "192.0.2.7",
		LockedUntil: t1, LockedForever: true}
	roundTrip(t, LoginFailureColumns, LoginFailureArgs(f), ScanLoginFailure, f)
	roundTrip(t, LoginFailureColumns, LoginFailureArgs(store.LoginFailure{}), ScanLoginFailure, store.LoginFailure{})
}

func TestChangeScanners(t *testing.T) {
	c, err := ScanSessionChange(row{"acme", "s1", "u1"})
	if want := (store.Change{Kind: store.ChangeSession, Realm: "acme", ID: "s1", UserID: "u1"}); err != nil || c != want {
		t.Fatalf("ScanSessionChange = %+v, %v", c, err)
	}
	c, err = ScanKeyChange(row{"acme", "k1"})
	if want := (store.Change{Kind: store.ChangeKey, Realm: "acme", ID: "k1"}); err != nil || c != want {
		t.Fatalf("ScanKeyChange = %+v, %v", c, err)
	}
}

func TestScanErrors(t *testing.T) {
	// A driver error comes back as it is, so that the backend can map
	// "no rows" to ErrNotFound.
	errNoRows := errors.New("no rows in result set")
	if _, err := ScanUser(errScanner{errNoRows}); !errors.Is(err, errNoRows) {
		t.Fatalf("ScanUser error = %v", err)
	}
	if _, err := ScanRealm(row{"broken", "", true, "{not json", int64(0)}); err == nil || !strings.Contains(err.Error(), `realm "broken" settings`) {
		t.Fatalf("ScanRealm on bad settings: %v", err)
	}
	if _, err := ScanRealm(row{"empty", "", true, "", int64(0)}); err == nil {
		t.Fatal("ScanRealm accepted empty settings")
	}
	args := must(UserArgs(store.User{Realm: "acme", ID: "u1"}))
	args[12] = `{"api": "not a list"}` // client_roles
	if _, err := ScanUser(row(args)); err == nil || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("ScanUser on bad client_roles: %v", err)
	}
	// NULL-ish JSON text leaves the field unset.
	args[12] = "null"
	if u, err := ScanUser(row(args)); err != nil || u.ClientRoles != nil {
		t.Fatalf("ScanUser on null client_roles: %+v, %v", u.ClientRoles, err)
	}
}

type errScanner struct{ err error }

func (e errScanner) Scan(...any) error { return e.err }

func TestArgsEncodeError(t *testing.T) {
	r := store.Realm{Name: "acme", Settings: store.RealmSettings{Extra: map[string]any{"f": func() {}}}}
	if _, err := RealmArgs(r); err == nil {
		t.Fatal("RealmArgs encoded a func")
	}
}

func TestTimes(t *testing.T) {
	if Millis(time.Time{}) != 0 || !FromMillis(0).IsZero() {
		t.Fatal("the zero time must be stored as 0 and read back as zero")
	}
	// Stored at millisecond precision, read back in UTC.
	local := time.Date(2025, 3, 1, 13, 30, 45, 123_456_789, time.FixedZone("CET", 3600))
	got := FromMillis(Millis(local))
	if got.Location() != time.UTC || !got.Equal(local.Truncate(time.Millisecond)) {
		t.Fatalf("FromMillis(Millis(%v)) = %v", local, got)
	}
	now := NowMillis()
	if now.Location() != time.UTC || now.Nanosecond()%int(time.Millisecond) != 0 || !FromMillis(Millis(now)).Equal(now) {
		t.Fatalf("NowMillis = %v does not survive storage unchanged", now)
	}
	if next := NextUpdated(time.Time{}); next.Before(now) {
		t.Fatalf("NextUpdated(zero) = %v, before %v", next, now)
	}
	future := now.Add(time.Hour)
	if next := NextUpdated(future); !next.Equal(future.Add(time.Millisecond)) {
		t.Fatalf("NextUpdated after a clock step back = %v, want %v", next, future.Add(time.Millisecond))
	}
}

func TestColumns(t *testing.T) {
	got := Columns("realm, id,\n\tname")
	if !reflect.DeepEqual(got, []string{"realm", "id", "name"}) {
		t.Fatalf("Columns = %q", got)
	}
}

// FuzzScanUser feeds arbitrary text to a user row's JSON columns, which a
// database shared with other tools may hold: scanning must not panic, and
// a user it accepts must survive being written and read again unchanged.
func FuzzScanUser(f *testing.F) {
	f.Add(`["user"]`, `{"api":["reader"]}`, `{"k":["v"]}`, `[{"orgId":"o","id":"m"}]`, `["VERIFY_EMAIL"]`)
	f.Add("", "null", "{}", "[]", "null")
	f.Add(`[1]`, `{"a":null}`, `{"k":"v"}`, `[{"orgId":1}]`, `"x"`)
	f.Add("\xff", `{"\u0000":["\ud800"]}`, `[`, `{}}`, `[[]]`)
	f.Fuzz(func(t *testing.T, realmRoles, clientRoles, attrs, members, reqActions string) {
		args := must(UserArgs(store.User{Realm: "r", ID: "u", Username: "n", Created: t0}))
		args[11], args[12], args[13], args[14], args[16] = realmRoles, clientRoles, attrs, members, reqActions
		u, err := ScanUser(row(args))
		if err != nil {
			return
		}
		again, err := UserArgs(u)
		if err != nil {
			t.Fatalf("UserArgs of a scanned user: %v", err)
		}
		u2, err := ScanUser(row(again))
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("second round trip: %v\n got %#v\nwant %#v", err, u2, u)
		}
	})
}

// FuzzScanRealm does the same for the realm settings document: scanning
// must not panic, and a realm it accepts must be stored the same way
// however often it is read and written again.
func FuzzScanRealm(f *testing.F) {
	f.Add(`{"accessTokenLifespan":300,"sessionLimits":{"userRealmLimit":2}}`)
	f.Add(`{"extra":{"a":[1,2.5,"x",null,true,{"b":-0}]}}`)
	f.Add(`{"roles":[{"name":"r","attributes":{"scopes":["s"]}}],"gateway":{"operations":[{"path":"/x"}]}}`)
	f.Add(`null`)
	f.Add(`{"accessTokenLifespan":"300"}`)
	f.Add(`{"roles":[]}`)
	f.Fuzz(func(t *testing.T, settings string) {
		r, err := ScanRealm(row{"acme", "id", true, settings, int64(1)})
		if err != nil {
			return
		}
		// Empty lists are left out of the document (omitempty) and read
		// back as nil, so what must be stable is the stored form.
		args, err := RealmArgs(r)
		if err != nil {
			t.Fatalf("RealmArgs of a scanned realm: %v", err)
		}
		r2, err := ScanRealm(row(args))
		if err != nil {
			t.Fatalf("second round trip: %v", err)
		}
		if again := must(RealmArgs(r2)); !reflect.DeepEqual(again, args) {
			t.Fatalf("stored form changed:\n got %q\nwant %q", again, args)
		}
	})
}

func TestSessionUpdateSQLDialects(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000).UTC()
	prev := store.Session{Realm: "r", ID: "s", UserID: "u", LastSeen: base, Expires: base.Add(time.Hour), RefreshUses: 1}
	next := prev
	next.RefreshUses = 2
	next.Expires = prev.Expires.Add(PruneBucket * time.Millisecond)
	mask, args := SessionChanges(prev, next)
	if len(args) != 3 || args[2] != PruneAt(next.Expires) {
		t.Fatalf("args %v", args)
	}
	if got, want := SessionUpdateSQL(mask, true), "UPDATE sessions SET expires = $1, refresh_uses = $2, prune_at = $3 WHERE realm = $4 AND id = $5"; got != want {
		t.Fatalf("dollar:\n got %q\nwant %q", got, want)
	}
	if got, want := SessionUpdateSQL(mask, false), "UPDATE sessions SET expires = ?, refresh_uses = ?, prune_at = ? WHERE realm = ? AND id = ?"; got != want {
		t.Fatalf("question:\n got %q\nwant %q", got, want)
	}
	if mask, args := SessionChanges(prev, prev); mask != 0 || args != nil {
		t.Fatalf("unchanged: %b %v", mask, args)
	}
}
