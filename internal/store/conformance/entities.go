package conformance

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func testRealms(t *testing.T, s store.Store) {
	c := ctx(t)
	want := fullRealm("acme")
	ok(t, s.CreateRealm(c, want))
	got, err := s.GetRealm(c, "acme")
	ok(t, err)
	equal(t, "realm", got, want)
	checkTime(t, "Updated", got.Updated, want.Updated)

	wantErr(t, s.CreateRealm(c, fullRealm("acme")), store.ErrAlreadyExists)
	_, err = s.GetRealm(c, "nope")
	wantErr(t, err, store.ErrNotFound)

	// A zero Updated is filled in: caches compare it.
	ok(t, s.CreateRealm(c, store.Realm{Name: "bare"}))
	bare, err := s.GetRealm(c, "bare")
	ok(t, err)
	if bare.Updated.IsZero() {
		t.Fatal("CreateRealm left Updated zero")
	}
	equal(t, "bare settings", bare.Settings, store.RealmSettings{})

	ok(t, s.CreateRealm(c, fullRealm("beta")))
	list, err := s.ListRealms(c)
	ok(t, err)
	equalStrings(t, "ListRealms", ids(list, func(r store.Realm) string { return r.Name }), []string{"acme", "bare", "beta"})
	equal(t, "listed realm", list[0], want)

	ok(t, s.UpdateRealm(c, "acme", func(r store.Realm) (store.Realm, error) {
		equal(t, "realm seen by update", r, want)
		r.Name = "renamed" // ignored: the name is the key
		r.Enabled = false
		r.Settings.AccessTokenLifespan = 60
		r.Settings.Gateway.Operations = r.Settings.Gateway.Operations[:1]
		r.Settings.Extra["new"] = "field"
		return r, nil
	}))
	got, err = s.GetRealm(c, "acme")
	ok(t, err)
	if got.Enabled || got.Settings.AccessTokenLifespan != 60 || len(got.Settings.Gateway.Operations) != 1 ||
		got.Settings.Extra["new"] != "field" {
		t.Fatalf("update not stored: %+v", got)
	}
	if !got.Updated.After(msUTC(want.Updated)) {
		t.Fatalf("Updated did not move forward: %v, was %v", got.Updated, msUTC(want.Updated))
	}
	_, err = s.GetRealm(c, "renamed")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.UpdateRealm(c, "nope", func(r store.Realm) (store.Realm, error) { return r, nil }), store.ErrNotFound)

	ok(t, s.DeleteRealm(c, "beta"))
	_, err = s.GetRealm(c, "beta")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteRealm(c, "beta"), store.ErrNotFound)
}

func testRealmCase(t *testing.T, s store.Store) {
	c := ctx(t)
	ok(t, s.CreateRealm(c, store.Realm{Name: "Acme", ID: "upper"}))
	ok(t, s.CreateRealm(c, store.Realm{Name: "acme", ID: "lower"}))
	r, err := s.GetRealm(c, "Acme")
	ok(t, err)
	if r.ID != "upper" {
		t.Fatalf("GetRealm(Acme) gave %q", r.ID)
	}
	_, err = s.GetRealm(c, "ACME")
	wantErr(t, err, store.ErrNotFound)
	ok(t, s.CreateClient(c, store.Client{Realm: "Acme", ClientID: "App"}))
	ok(t, s.CreateClient(c, store.Client{Realm: "Acme", ClientID: "app"}))
	_, err = s.GetClient(c, "acme", "App")
	wantErr(t, err, store.ErrNotFound)
}

func testDeleteRealmCascade(t *testing.T, s store.Store) {
	c := ctx(t)
	for _, name := range []string{"doomed", "other"} {
		seedRealm(t, s, name)
		ok(t, s.CreateClient(c, fullClient(name, "app")))
		seedUser(t, s, name, "u1")
		ok(t, s.CreateSession(c, fullSession(name, "s1", "u1", at(0)), admitAll))
		ok(t, s.CreateKey(c, fullKey(name, "k1", at(0))))
		ok(t, s.Revoke(c, store.Revocation{Realm: name, JTI: "j1", Expires: time.Now().Add(time.Hour), Created: at(0)}))
		ok(t, s.UseOnce(c, name, "once", time.Now().Add(time.Hour)))
		ok(t, s.UpdateLoginFailure(c, name, "u1", func(f store.LoginFailure) (store.LoginFailure, error) {
			f.NumFailures = 1
			return f, nil
		}))
	}
	ok(t, s.DeleteRealm(c, "doomed"))
	_, err := s.GetRealm(c, "doomed")
	wantErr(t, err, store.ErrNotFound)

	// Re-create the realm: nothing of the old one may come back with it.
	ok(t, s.CreateRealm(c, store.Realm{Name: "doomed"}))
	_, err = s.GetClient(c, "doomed", "app")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUser(c, "doomed", "u1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetSession(c, "doomed", "s1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetLoginFailure(c, "doomed", "u1")
	wantErr(t, err, store.ErrNotFound)
	keys, err := s.ListKeys(c, "doomed")
	ok(t, err)
	mustCount(t, "keys left", len(keys), 0)
	revoked, err := s.IsRevoked(c, "doomed", "j1")
	ok(t, err)
	if revoked {
		t.Fatal("revocation survived DeleteRealm")
	}
	ok(t, s.UseOnce(c, "doomed", "once", time.Now().Add(time.Hour)))
	n, err := s.CountUsers(c, "doomed")
	ok(t, err)
	mustCount(t, "users left", n, 0)
	n, err = s.CountSessions(c, "doomed")
	ok(t, err)
	mustCount(t, "sessions left", n, 0)

	// The other realm is untouched.
	_, err = s.GetClient(c, "other", "app")
	ok(t, err)
	_, err = s.GetSession(c, "other", "s1")
	ok(t, err)
	_, err = s.GetLoginFailure(c, "other", "u1")
	ok(t, err)
	revoked, err = s.IsRevoked(c, "other", "j1")
	ok(t, err)
	if !revoked {
		t.Fatal("other realm's revocation lost")
	}
}

func testClients(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	want := fullClient("r", "app")
	ok(t, s.CreateClient(c, want))
	got, err := s.GetClient(c, "r", "app")
	ok(t, err)
	equal(t, "client", got, want)
	checkTime(t, "Created", got.Created, want.Created)

	wantErr(t, s.CreateClient(c, fullClient("r", "app")), store.ErrAlreadyExists)
	wantErr(t, s.CreateClient(c, fullClient("no-such-realm", "app")), store.ErrNotFound)
	_, err = s.GetClient(c, "r", "nope")
	wantErr(t, err, store.ErrNotFound)

	// A minimal client round-trips its empty fields as empty.
	ok(t, s.CreateClient(c, store.Client{Realm: "r", ClientID: "bare"}))
	bare, err := s.GetClient(c, "r", "bare")
	ok(t, err)
	equal(t, "bare client", bare, store.Client{Realm: "r", ClientID: "bare"})

	for _, id := range []string{"portal-2", "portal-1"} {
		cl := fullClient("r", id)
		cl.OwnerUserID = "dev"
		ok(t, s.CreateClient(c, cl))
	}
	list, err := s.ListClients(c, "r")
	ok(t, err)
	clientID := func(c store.Client) string { return c.ClientID }
	equalStrings(t, "ListClients", ids(list, clientID), []string{"app", "bare", "portal-1", "portal-2"})
	owned, err := s.ListClientsByOwner(c, "r", "dev")
	ok(t, err)
	equalStrings(t, "ListClientsByOwner", ids(owned, clientID), []string{"portal-1", "portal-2"})
	owned, err = s.ListClientsByOwner(c, "r", "someone-else")
	ok(t, err)
	mustCount(t, "clients of another owner", len(owned), 0)

	ok(t, s.UpdateClient(c, "r", "app", func(cl store.Client) (store.Client, error) {
		equal(t, "client seen by update", cl, want)
		cl.ClientID = "ignored"
		cl.Enabled = false
		cl.RedirectURIs = append(cl.RedirectURIs, "https://new.test/cb")
		cl.Attributes["jwks.url"] = "https://app.test/jwks"
		cl.SecretHash = []byte{9, 9, 9}
		return cl, nil
	}))
	got, err = s.GetClient(c, "r", "app")
	ok(t, err)
	want.Enabled = false
	want.RedirectURIs = append(want.RedirectURIs, "https://new.test/cb")
	want.Attributes["jwks.url"] = "https://app.test/jwks"
	want.SecretHash = []byte{9, 9, 9}
	equal(t, "updated client", got, want)
	_, err = s.GetClient(c, "r", "ignored")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.UpdateClient(c, "r", "nope", func(cl store.Client) (store.Client, error) { return cl, nil }), store.ErrNotFound)

	ok(t, s.DeleteClient(c, "r", "app"))
	_, err = s.GetClient(c, "r", "app")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteClient(c, "r", "app"), store.ErrNotFound)
}

func testUsers(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedRealm(t, s, "r2")
	want := fullUser("r", "u1", "alice")
	ok(t, s.CreateUser(c, want))
	got, err := s.GetUser(c, "r", "u1")
	ok(t, err)
	equal(t, "user", got, want)
	checkTime(t, "Created", got.Created, want.Created)
	checkTime(t, "PasswordCreated", got.PasswordCreated, want.PasswordCreated)

	wantErr(t, s.CreateUser(c, fullUser("r", "u1", "other-name")), store.ErrAlreadyExists)
	wantErr(t, s.CreateUser(c, fullUser("r", "u2", "alice")), store.ErrAlreadyExists)
	wantErr(t, s.CreateUser(c, fullUser("no-such-realm", "u1", "alice")), store.ErrNotFound)
	// Same id and username in another realm is another user.
	ok(t, s.CreateUser(c, fullUser("r2", "u1", "alice")))
	_, err = s.GetUser(c, "r", "nope")
	wantErr(t, err, store.ErrNotFound)

	ok(t, s.CreateUser(c, store.User{Realm: "r", ID: "bare", Username: "bare"}))
	bare, err := s.GetUser(c, "r", "bare")
	ok(t, err)
	equal(t, "bare user", bare, store.User{Realm: "r", ID: "bare", Username: "bare"})

	ok(t, s.UpdateUser(c, "r", "u1", func(u store.User) (store.User, error) {
		equal(t, "user seen by update", u, want)
		u.ID = "ignored"
		u.Email = "alice@new.test"
		u.Enabled = false
		u.RealmRoles = []string{"user"}
		u.ClientRoles["other"] = []string{"x"}
		u.Memberships = append(u.Memberships, store.Membership{OrgID: "o2", ID: "MU2"})
		u.RequiredActions = nil
		return u, nil
	}))
	got, err = s.GetUser(c, "r", "u1")
	ok(t, err)
	want.Email = "alice@new.test"
	want.Enabled = false
	want.RealmRoles = []string{"user"}
	want.ClientRoles["other"] = []string{"x"}
	want.Memberships = append(want.Memberships, store.Membership{OrgID: "o2", ID: "MU2"})
	want.RequiredActions = nil
	equal(t, "updated user", got, want)
	got, err = s.GetUserByEmail(c, "r", "alice@new.test")
	ok(t, err)
	if got.ID != "u1" {
		t.Fatalf("GetUserByEmail after update gave %q", got.ID)
	}

	// Renaming onto a taken username is a conflict, and nothing changes.
	ok(t, s.CreateUser(c, fullUser("r", "u3", "carol")))
	err = s.UpdateUser(c, "r", "u3", func(u store.User) (store.User, error) {
		u.Username = "alice"
		u.FirstName = "changed"
		return u, nil
	})
	wantErr(t, err, store.ErrAlreadyExists)
	got, err = s.GetUser(c, "r", "u3")
	ok(t, err)
	if got.Username != "carol" || got.FirstName != "First u3" {
		t.Fatalf("failed rename changed the user: %+v", got)
	}
	ok(t, s.UpdateUser(c, "r", "u3", func(u store.User) (store.User, error) {
		u.Username = "caroline"
		return u, nil
	}))
	_, err = s.GetUserByUsername(c, "r", "carol")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUserByUsername(c, "r", "caroline")
	ok(t, err)
	wantErr(t, s.UpdateUser(c, "r", "nope", func(u store.User) (store.User, error) { return u, nil }), store.ErrNotFound)

	ok(t, s.DeleteUser(c, "r", "u3"))
	_, err = s.GetUser(c, "r", "u3")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteUser(c, "r", "u3"), store.ErrNotFound)
	_, err = s.GetUser(c, "r2", "u1")
	ok(t, err)
}

func testUserLookups(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedRealm(t, s, "r2")
	alice := fullUser("r", "u1", "alice")
	ok(t, s.CreateUser(c, alice))
	bob := fullUser("r", "u2", "bob")
	bob.Email = "shared@example.test"
	zed := fullUser("r", "u3", "zed")
	zed.Email = "shared@example.test"
	noMail := fullUser("r", "u4", "nomail")
	noMail.Email = ""
	ok(t, s.CreateUsers(c, []store.User{zed, bob, noMail}))
	ok(t, s.CreateUser(c, fullUser("r2", "x1", "mallory")))

	got, err := s.GetUserByUsername(c, "r", "alice")
	ok(t, err)
	equal(t, "by username", got, alice)
	_, err = s.GetUserByUsername(c, "r", "Alice")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUserByUsername(c, "r", "mallory")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUserByUsername(c, "r2", "alice")
	wantErr(t, err, store.ErrNotFound)

	got, err = s.GetUserByEmail(c, "r", "alice@example.test")
	ok(t, err)
	equal(t, "by email", got, alice)
	// Several users may share an email; the lookup gives the first by
	// username, deterministically.
	got, err = s.GetUserByEmail(c, "r", "shared@example.test")
	ok(t, err)
	if got.ID != "u2" {
		t.Fatalf("shared email gave %q, want u2 (bob)", got.ID)
	}
	_, err = s.GetUserByEmail(c, "r", "")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUserByEmail(c, "r", "nobody@example.test")
	wantErr(t, err, store.ErrNotFound)
}

func testListUsersPaging(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedRealm(t, s, "r2")
	var names []string
	var us []store.User
	for i := range 25 {
		name := fmt.Sprintf("user%02d", i)
		names = append(names, name)
		us = append(us, fullUser("r", fmt.Sprintf("id-%d", 100-i), name))
	}
	rand.Shuffle(len(us), func(i, j int) { us[i], us[j] = us[j], us[i] })
	ok(t, s.CreateUsers(c, us))
	ok(t, s.CreateUser(c, fullUser("r2", "other", "aaa")))

	n, err := s.CountUsers(c, "r")
	ok(t, err)
	mustCount(t, "CountUsers", n, 25)
	n, err = s.CountUsers(c, "empty")
	ok(t, err)
	mustCount(t, "CountUsers of no realm", n, 0)

	username := func(u store.User) string { return u.Username }
	var paged []string
	for off := 0; off < 30; off += 10 {
		page, err := s.ListUsers(c, "r", off, 10)
		ok(t, err)
		wantLen := min(10, max(0, 25-off))
		mustCount(t, fmt.Sprintf("page at %d", off), len(page), wantLen)
		paged = append(paged, ids(page, username)...)
	}
	equalStrings(t, "paged usernames", paged, names)
	page, err := s.ListUsers(c, "r", 20, 100)
	ok(t, err)
	equalStrings(t, "last page", ids(page, username), names[20:])
	equal(t, "listed user", page[0], fullUser("r", "id-80", "user20"))
	page, err = s.ListUsers(c, "r", 25, 10)
	ok(t, err)
	mustCount(t, "page past the end", len(page), 0)
}

func testCreateUsersAtomic(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "existing")

	batch := []store.User{
		fullUser("r", "b1", "b1"),
		fullUser("r", "b2", "b2"),
		fullUser("r", "b3", "user-existing"), // taken username, last in the batch
	}
	wantErr(t, s.CreateUsers(c, batch), store.ErrAlreadyExists)
	for _, id := range []string{"b1", "b2", "b3"} {
		_, err := s.GetUser(c, "r", id)
		wantErr(t, err, store.ErrNotFound)
	}

	// A conflict inside the batch itself.
	batch = []store.User{fullUser("r", "c1", "dup"), fullUser("r", "c2", "x"), fullUser("r", "c3", "dup")}
	wantErr(t, s.CreateUsers(c, batch), store.ErrAlreadyExists)
	n, err := s.CountUsers(c, "r")
	ok(t, err)
	mustCount(t, "users after failed batches", n, 1)

	ok(t, s.CreateUsers(c, []store.User{fullUser("r", "d1", "d1"), fullUser("r", "d2", "d2")}))
	ok(t, s.CreateUsers(c, nil))
	n, err = s.CountUsers(c, "r")
	ok(t, err)
	mustCount(t, "users after good batch", n, 3)
}

func testDeleteUserCascade(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	seedUser(t, s, "r", "u2")
	for i, u := range []string{"u1", "u1", "u2"} {
		ok(t, s.CreateSession(c, fullSession("r", fmt.Sprint("s", i), u, at(time.Duration(i)*time.Second)), admitAll))
	}
	for _, u := range []string{"u1", "u2"} {
		ok(t, s.UpdateLoginFailure(c, "r", u, func(f store.LoginFailure) (store.LoginFailure, error) {
			f.NumFailures++
			return f, nil
		}))
	}
	ok(t, s.DeleteUser(c, "r", "u1"))
	ss, err := s.ListUserSessions(c, "r", "u1")
	ok(t, err)
	mustCount(t, "sessions of deleted user", len(ss), 0)
	_, err = s.GetSession(c, "r", "s0")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetLoginFailure(c, "r", "u1")
	wantErr(t, err, store.ErrNotFound)

	_, err = s.GetSession(c, "r", "s2")
	ok(t, err)
	_, err = s.GetLoginFailure(c, "r", "u2")
	ok(t, err)
	n, err := s.CountSessions(c, "r")
	ok(t, err)
	mustCount(t, "sessions left", n, 1)

	// A user re-created with the old id starts clean.
	seedUser(t, s, "r", "u1")
	ss, err = s.ListUserSessions(c, "r", "u1")
	ok(t, err)
	mustCount(t, "sessions of re-created user", len(ss), 0)
}
