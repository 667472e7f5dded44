package conformance

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func fullBundle(name string) store.RealmBundle {
	sa := fullUser(name, "sa", "service-account-app")
	sa.ServiceAccountClientID = "app"
	return store.RealmBundle{
		Realm:   fullRealm(name),
		Clients: []store.Client{fullClient(name, "app"), fullClient(name, "web")},
		Users:   []store.User{fullUser(name, "u1", "alice"), fullUser(name, "u2", "bob"), sa},
		Keys:    []store.Key{fullKey(name, "k1", at(0)), fullKey(name, "k2", at(time.Second))},
	}
}

// checkBundle asserts that the realm holds exactly what b has.
func checkBundle(t *testing.T, s store.Store, b store.RealmBundle) {
	t.Helper()
	c := ctx(t)
	r, err := s.GetRealm(c, b.Realm.Name)
	ok(t, err)
	equal(t, "imported realm", r, b.Realm)
	clients, err := s.ListClients(c, b.Realm.Name)
	ok(t, err)
	equal(t, "imported clients", clients, b.Clients)
	users, err := s.ListUsers(c, b.Realm.Name, 0, 0)
	ok(t, err)
	for _, want := range b.Users {
		got, err := s.GetUser(c, b.Realm.Name, want.ID)
		ok(t, err)
		equal(t, "imported user", got, want)
	}
	mustCount(t, "imported users", len(users), len(b.Users))
	keys, err := s.ListKeys(c, b.Realm.Name)
	ok(t, err)
	equal(t, "imported keys", keys, b.Keys)
}

func testImportRealm(t *testing.T, s store.Store) {
	c := ctx(t)
	b := fullBundle("imp")
	ok(t, s.ImportRealm(c, b, false))
	checkBundle(t, s, b)
	wantErr(t, s.ImportRealm(c, fullBundle("imp"), false), store.ErrAlreadyExists)
	checkBundle(t, s, b)

	// A bundle of just a realm is fine.
	ok(t, s.ImportRealm(c, store.RealmBundle{Realm: store.Realm{Name: "empty"}}, false))
	_, err := s.GetRealm(c, "empty")
	ok(t, err)
}

func testImportRealmAtomic(t *testing.T, s store.Store) {
	c := ctx(t)
	b := fullBundle("imp")
	b.Users = append(b.Users, fullUser("imp", "u9", "alice")) // duplicate username, last
	if err := s.ImportRealm(c, b, false); err == nil {
		t.Fatal("import with a duplicate username succeeded")
	}
	_, err := s.GetRealm(c, "imp")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetClient(c, "imp", "app")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUser(c, "imp", "u1")
	wantErr(t, err, store.ErrNotFound)
	n, err := s.CountUsers(c, "imp")
	ok(t, err)
	mustCount(t, "users left by a failed import", n, 0)
	keys, err := s.ListKeys(c, "imp")
	ok(t, err)
	mustCount(t, "keys left by a failed import", len(keys), 0)
	realms, err := s.ListRealms(c)
	ok(t, err)
	mustCount(t, "realms left by a failed import", len(realms), 0)

	// A failed replace leaves the old realm as it was.
	old := fullBundle("imp")
	ok(t, s.ImportRealm(c, old, false))
	bad := fullBundle("imp")
	bad.Clients = append(bad.Clients, fullClient("imp", "app"))
	if err := s.ImportRealm(c, bad, true); err == nil {
		t.Fatal("replace with a duplicate client succeeded")
	}
	checkBundle(t, s, old)
}

func testImportRealmReplace(t *testing.T, s store.Store) {
	c := ctx(t)
	old := fullBundle("imp")
	old.Clients = append(old.Clients, fullClient("imp", "legacy"))
	old.Users = append(old.Users, fullUser("imp", "gone", "gone"))
	old.Keys = append(old.Keys, fullKey("imp", "old-key", at(time.Hour)))
	ok(t, s.ImportRealm(c, old, false))
	ok(t, s.CreateSession(c, fullSession("imp", "s-old", "u1", at(0)), admitAll))
	ok(t, s.CreateSession(c, fullSession("imp", "s-gone", "gone", at(0)), admitAll))
	seedRealm(t, s, "bystander")
	seedUser(t, s, "bystander", "u1")

	repl := fullBundle("imp")
	repl.Realm.Settings.AccessTokenLifespan = 42
	repl.Clients = repl.Clients[:1]
	repl.Users[0].Email = "new@example.test"
	repl.Keys = []store.Key{fullKey("imp", "k3", at(0))}
	ok(t, s.ImportRealm(c, repl, true))
	checkBundle(t, s, repl)

	_, err := s.GetClient(c, "imp", "legacy")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUser(c, "imp", "gone")
	wantErr(t, err, store.ErrNotFound)
	// Sessions of the old realm end, even for users of the same id.
	for _, id := range []string{"s-old", "s-gone"} {
		_, err = s.GetSession(c, "imp", id)
		wantErr(t, err, store.ErrNotFound)
	}
	n, err := s.CountSessions(c, "imp")
	ok(t, err)
	mustCount(t, "sessions after replace", n, 0)
	_, err = s.GetUser(c, "bystander", "u1")
	ok(t, err)

	// Replace also works when there is nothing to replace.
	ok(t, s.ImportRealm(c, fullBundle("fresh"), true))
	checkBundle(t, s, fullBundle("fresh"))
}
