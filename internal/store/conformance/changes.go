package conformance

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// changeWait bounds how long a change may take to arrive; the contract is
// "within a second" across replicas, and far less in one process.
const changeWait = 5 * time.Second

// feed subscribes to s and returns the channel of changes and cancel.
func feed(t *testing.T, s store.Store) (<-chan store.Change, func()) {
	ch := make(chan store.Change, 1024)
	cancel := s.Subscribe(func(c store.Change) { ch <- c })
	t.Cleanup(cancel)
	return ch, cancel
}

// expect reads changes until want arrives, failing after changeWait.
// Changes before it are skipped: a backend may announce more than asked
// (say, a user change beside a session change).
func expect(t *testing.T, ch <-chan store.Change, what string, want store.Change) {
	t.Helper()
	deadline := time.After(changeWait)
	var seen []store.Change
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
			seen = append(seen, got)
		case <-deadline:
			t.Fatalf("%s: no change %+v; saw %+v", what, want, seen)
		}
	}
}

// drain empties ch after writes whose changes have all been seen.
func drain(ch <-chan store.Change) {
	for {
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

func testSubscribe(t *testing.T, s store.Store) {
	c := ctx(t)
	ch, _ := feed(t, s)
	keep := func(x store.Key) (store.Key, error) { return x, nil }
	realm := func(n string) store.Change { return store.Change{Kind: store.ChangeRealm, Realm: n, ID: n} }
	client := store.Change{Kind: store.ChangeClient, Realm: "r", ID: "app"}
	user := store.Change{Kind: store.ChangeUser, Realm: "r", ID: "u1"}
	session := func(id string) store.Change {
		return store.Change{Kind: store.ChangeSession, Realm: "r", ID: id, UserID: "u1"}
	}
	key := store.Change{Kind: store.ChangeKey, Realm: "r", ID: "k1"}

	steps := []struct {
		name  string
		write func() error
		want  []store.Change
	}{
		{"CreateRealm", func() error { return s.CreateRealm(c, fullRealm("r")) }, []store.Change{realm("r")}},
		{"UpdateRealm", func() error {
			return s.UpdateRealm(c, "r", func(r store.Realm) (store.Realm, error) { return r, nil })
		}, []store.Change{realm("r")}},
		{"CreateClient", func() error { return s.CreateClient(c, fullClient("r", "app")) }, []store.Change{client}},
		{"UpdateClient", func() error {
			return s.UpdateClient(c, "r", "app", func(x store.Client) (store.Client, error) { return x, nil })
		}, []store.Change{client}},
		{"DeleteClient", func() error { return s.DeleteClient(c, "r", "app") }, []store.Change{client}},
		{"CreateUser", func() error { return s.CreateUser(c, fullUser("r", "u1", "alice")) }, []store.Change{user}},
		{"CreateUsers", func() error { return s.CreateUsers(c, []store.User{fullUser("r", "u2", "bob")}) },
			[]store.Change{{Kind: store.ChangeUser, Realm: "r", ID: "u2"}}},
		{"UpdateUser", func() error {
			return s.UpdateUser(c, "r", "u1", func(x store.User) (store.User, error) { return x, nil })
		}, []store.Change{user}},
		{"CreateSession", func() error { return s.CreateSession(c, fullSession("r", "s1", "u1", at(0)), admitAll) },
			[]store.Change{session("s1")}},
		{"CreateSession ending one", func() error {
			return s.CreateSession(c, fullSession("r", "s2", "u1", at(time.Second)), func([]store.Session) ([]string, error) {
				return []string{"s1"}, nil
			})
		}, []store.Change{session("s1"), session("s2")}},
		{"UpdateSession", func() error {
			return s.UpdateSession(c, "r", "s2", func(x store.Session) (store.Session, error) {
				x.LastSeen = x.LastSeen.Add(time.Second)
				return x, nil
			})
		}, []store.Change{session("s2")}},
		{"DeleteSession", func() error { return s.DeleteSession(c, "r", "s2") }, []store.Change{session("s2")}},
		{"DeleteUserSessions", func() error {
			if err := s.CreateSession(c, fullSession("r", "s3", "u1", at(0)), admitAll); err != nil {
				return err
			}
			_, err := s.DeleteUserSessions(c, "r", "u1")
			return err
		}, []store.Change{session("s3"), session("s3")}},
		{"DeleteExpired", func() error {
			ss := fullSession("r", "s4", "u1", at(0))
			ss.Expires = time.Now().Add(-time.Minute)
			if err := s.CreateSession(c, ss, admitAll); err != nil {
				return err
			}
			_, err := s.DeleteExpired(c, time.Now())
			return err
		}, []store.Change{session("s4"), session("s4")}},
		{"DeleteUser", func() error {
			if err := s.CreateSession(c, fullSession("r", "s5", "u1", at(0)), admitAll); err != nil {
				return err
			}
			return s.DeleteUser(c, "r", "u1")
		}, []store.Change{session("s5"), session("s5"), user}},
		{"CreateKey", func() error { return s.CreateKey(c, fullKey("r", "k1", at(0))) }, []store.Change{key}},
		{"UpdateKey", func() error { return s.UpdateKey(c, "r", "k1", keep) }, []store.Change{key}},
		{"DeleteKey", func() error { return s.DeleteKey(c, "r", "k1") }, []store.Change{key}},
		{"Revoke", func() error {
			return s.Revoke(c, store.Revocation{Realm: "r", JTI: "j1", Expires: time.Now().Add(time.Hour)})
		}, []store.Change{{Kind: store.ChangeRevocation, Realm: "r", ID: "j1"}}},
		{"ImportRealm", func() error { return s.ImportRealm(c, fullBundle("imp"), false) }, []store.Change{realm("imp")}},
		{"ImportRealm replace", func() error { return s.ImportRealm(c, fullBundle("imp"), true) }, []store.Change{realm("imp")}},
		{"DeleteRealm", func() error { return s.DeleteRealm(c, "r") }, []store.Change{realm("r")}},
	}
	for _, st := range steps {
		ok(t, st.write())
		for _, w := range st.want {
			expect(t, ch, st.name, w)
		}
	}
}

func testSubscribeRollback(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	ok(t, s.CreateSession(c, fullSession("r", "s1", "u1", at(0)), admitAll))
	ch, _ := feed(t, s)

	// Writes that fail or refuse, then one that commits: the first change
	// delivered must be the committed one.
	_ = s.UpdateUser(c, "r", "u1", func(u store.User) (store.User, error) { return u, errRefused })
	_ = s.UpdateSession(c, "r", "s1", func(x store.Session) (store.Session, error) { return x, errRefused })
	_ = s.CreateSession(c, fullSession("r", "s2", "u1", at(0)), func([]store.Session) ([]string, error) {
		return []string{"s1"}, errRefused
	})
	_ = s.CreateUsers(c, []store.User{fullUser("r", "u2", "bob"), fullUser("r", "u3", "user-u1")})
	_ = s.ImportRealm(c, store.RealmBundle{Realm: store.Realm{Name: "r"}}, false)
	_ = s.CreateClient(c, fullClient("no-such-realm", "app"))
	ok(t, s.CreateKey(c, fullKey("r", "marker", at(0))))

	select {
	case got := <-ch:
		want := store.Change{Kind: store.ChangeKey, Realm: "r", ID: "marker"}
		if got != want {
			t.Fatalf("first change after failed writes is %+v, want %+v", got, want)
		}
	case <-time.After(changeWait):
		t.Fatal("no change for the committed write")
	}
}

func testSubscribeCancel(t *testing.T, s store.Store) {
	c := ctx(t)
	ch, cancel := feed(t, s)
	other, _ := feed(t, s)
	seedRealm(t, s, "r")
	expect(t, ch, "before cancel", store.Change{Kind: store.ChangeRealm, Realm: "r", ID: "r"})
	expect(t, other, "before cancel", store.Change{Kind: store.ChangeRealm, Realm: "r", ID: "r"})
	cancel()
	cancel() // idempotent
	drain(ch)

	ok(t, s.CreateClient(c, fullClient("r", "app")))
	// The other subscription still gets the change, so it has been
	// published; the cancelled one must stay silent.
	expect(t, other, "after cancel", store.Change{Kind: store.ChangeClient, Realm: "r", ID: "app"})
	select {
	case got := <-ch:
		t.Fatalf("cancelled subscription received %+v", got)
	case <-time.After(100 * time.Millisecond):
	}
}
