package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func testSessions(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	seedUser(t, s, "r", "u2")

	want := fullSession("r", "s1", "u1", at(30*time.Second))
	want.Offline = true
	ok(t, s.CreateSession(c, want, admitAll))
	got, err := s.GetSession(c, "r", "s1")
	ok(t, err)
	equal(t, "session", got, want)
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"Started", got.Started, want.Started},
		{"LastSeen", got.LastSeen, want.LastSeen},
		{"Expires", got.Expires, want.Expires},
		{"RotatedAt", got.RotatedAt, want.RotatedAt},
	} {
		checkTime(t, tc.name, tc.got, tc.want)
	}
	ok(t, s.CreateSession(c, store.Session{Realm: "r", ID: "bare", UserID: "u2"}, admitAll))
	bare, err := s.GetSession(c, "r", "bare")
	ok(t, err)
	equal(t, "bare session", bare, store.Session{Realm: "r", ID: "bare", UserID: "u2"})

	wantErr(t, s.CreateSession(c, fullSession("r", "s1", "u1", at(0)), admitAll), store.ErrAlreadyExists)
	wantErr(t, s.CreateSession(c, fullSession("r", "s9", "no-such-user", at(0)), admitAll), store.ErrNotFound)
	_, err = s.GetSession(c, "r", "nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetSession(c, "other-realm", "s1")
	wantErr(t, err, store.ErrNotFound)

	// Sessions list least recently seen first, whatever order they came in.
	ok(t, s.CreateSession(c, fullSession("r", "s3", "u1", at(10*time.Second)), admitAll))
	ok(t, s.CreateSession(c, fullSession("r", "s2", "u1", at(20*time.Second)), admitAll))
	list, err := s.ListUserSessions(c, "r", "u1")
	ok(t, err)
	equalStrings(t, "ListUserSessions", sessionIDs(list), []string{"s3", "s2", "s1"})
	equal(t, "listed session", list[2], want)
	n, err := s.CountSessions(c, "r")
	ok(t, err)
	mustCount(t, "CountSessions", n, 4)

	ok(t, s.UpdateSession(c, "r", "s1", func(ss store.Session) (store.Session, error) {
		equal(t, "session seen by update", ss, want)
		ss.ID, ss.UserID = "ignored", "u2"
		ss.RefreshUses = 0
		ss.PrevRefreshID, ss.RefreshID = ss.RefreshID, "rt-new"
		ss.RotatedAt = at(5 * time.Second)
		ss.LastSeen = at(40 * time.Second)
		ss.Expires = time.Time{}
		return ss, nil
	}))
	got, err = s.GetSession(c, "r", "s1")
	ok(t, err)
	want.RefreshUses = 0
	want.PrevRefreshID, want.RefreshID = want.RefreshID, "rt-new"
	want.RotatedAt = at(5 * time.Second)
	want.LastSeen = at(40 * time.Second)
	want.Expires = time.Time{}
	equal(t, "updated session", got, want)
	_, err = s.GetSession(c, "r", "ignored")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.UpdateSession(c, "r", "nope", func(ss store.Session) (store.Session, error) { return ss, nil }), store.ErrNotFound)

	ok(t, s.DeleteSession(c, "r", "s1"))
	_, err = s.GetSession(c, "r", "s1")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteSession(c, "r", "s1"), store.ErrNotFound)

	deleted, err := s.DeleteUserSessions(c, "r", "u1")
	ok(t, err)
	mustCount(t, "DeleteUserSessions", deleted, 2)
	deleted, err = s.DeleteUserSessions(c, "r", "u1")
	ok(t, err)
	mustCount(t, "DeleteUserSessions again", deleted, 0)
	n, err = s.CountSessions(c, "r")
	ok(t, err)
	mustCount(t, "CountSessions after deletes", n, 1)
}

func testCreateSessionAdmit(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	seedUser(t, s, "r", "u2")
	ok(t, s.CreateSession(c, fullSession("r", "other", "u2", at(0)), admitAll))

	// admit sees every session of the user (offline too), oldest first.
	for i, id := range []string{"b", "c", "a"} {
		ss := fullSession("r", id, "u1", at(time.Duration(3-i)*time.Second))
		ss.Offline = id == "c"
		ok(t, s.CreateSession(c, ss, admitAll))
	}
	var seen []string
	ok(t, s.CreateSession(c, fullSession("r", "d", "u1", at(time.Minute)), func(existing []store.Session) ([]string, error) {
		seen = sessionIDs(existing)
		for _, e := range existing {
			if e.UserID != "u1" {
				t.Errorf("admit saw session %s of user %s", e.ID, e.UserID)
			}
		}
		return nil, nil
	}))
	equalStrings(t, "sessions seen by admit", seen, []string{"a", "c", "b"})

	// A refusal is returned unchanged and stores nothing.
	err := s.CreateSession(c, fullSession("r", "e", "u1", at(time.Minute)), func([]store.Session) ([]string, error) {
		return nil, errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("refusing admit gave %v", err)
	}
	_, err = s.GetSession(c, "r", "e")
	wantErr(t, err, store.ErrNotFound)

	// Ended sessions go in the same transaction as the new one lands.
	ok(t, s.CreateSession(c, fullSession("r", "f", "u1", at(2*time.Minute)), func(existing []store.Session) ([]string, error) {
		return []string{existing[0].ID, existing[1].ID}, nil
	}))
	list, err := s.ListUserSessions(c, "r", "u1")
	ok(t, err)
	equalStrings(t, "after terminate oldest", sessionIDs(list), []string{"b", "d", "f"})

	// admit cannot end another user's session.
	ok(t, s.CreateSession(c, fullSession("r", "g", "u1", at(3*time.Minute)), func([]store.Session) ([]string, error) {
		return []string{"other"}, nil
	}))
	_, err = s.GetSession(c, "r", "other")
	ok(t, err)

	// A refusal after asking to end sessions ends nothing.
	err = s.CreateSession(c, fullSession("r", "h", "u1", at(4*time.Minute)), func(existing []store.Session) ([]string, error) {
		return sessionIDs(existing), errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("refusing admit gave %v", err)
	}
	list, err = s.ListUserSessions(c, "r", "u1")
	ok(t, err)
	equalStrings(t, "after refused admit", sessionIDs(list), []string{"b", "d", "f", "g"})
}

func testKeys(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	k2 := fullKey("r", "k2", at(2*time.Second))
	k1 := fullKey("r", "k1", at(1*time.Second))
	hmac := store.Key{Realm: "r", KID: "h1", Alg: "HS256", Use: "hmac", Private: []byte("sealed-hmac"), Created: at(3 * time.Second), Active: true}
	for _, k := range []store.Key{k2, k1, hmac} {
		ok(t, s.CreateKey(c, k))
	}
	wantErr(t, s.CreateKey(c, k1), store.ErrAlreadyExists)
	wantErr(t, s.CreateKey(c, fullKey("no-such-realm", "k1", at(0))), store.ErrNotFound)
	keys, err := s.ListKeys(c, "r")
	ok(t, err)
	equal(t, "ListKeys", keys, []store.Key{k1, k2, hmac})
	checkTime(t, "Created", keys[0].Created, k1.Created)

	ok(t, s.UpdateKey(c, "r", "k1", func(k store.Key) (store.Key, error) {
		equal(t, "key seen by update", k, k1)
		k.KID = "ignored"
		k.Active = false
		k.RetireAt = at(time.Hour)
		return k, nil
	}))
	k1.Active, k1.RetireAt = false, at(time.Hour)
	keys, err = s.ListKeys(c, "r")
	ok(t, err)
	equal(t, "ListKeys after update", keys, []store.Key{k1, k2, hmac})
	checkTime(t, "RetireAt", keys[0].RetireAt, k1.RetireAt)
	wantErr(t, s.UpdateKey(c, "r", "nope", func(k store.Key) (store.Key, error) { return k, nil }), store.ErrNotFound)

	ok(t, s.DeleteKey(c, "r", "k1"))
	wantErr(t, s.DeleteKey(c, "r", "k1"), store.ErrNotFound)
	keys, err = s.ListKeys(c, "r")
	ok(t, err)
	equal(t, "ListKeys after delete", keys, []store.Key{k2, hmac})
	keys, err = s.ListKeys(c, "empty")
	ok(t, err)
	mustCount(t, "keys of no realm", len(keys), 0)
}

func testRevocations(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedRealm(t, s, "r2")
	r1 := store.Revocation{Realm: "r", JTI: "j1", Expires: at(time.Hour), Created: at(time.Second)}
	r2 := store.Revocation{Realm: "r2", JTI: "j2", Expires: at(time.Hour), Created: at(2 * time.Second)}
	r3 := store.Revocation{Realm: "r", JTI: "j3", Expires: at(time.Hour), Created: at(3 * time.Second)}
	for _, r := range []store.Revocation{r3, r1, r2} {
		ok(t, s.Revoke(c, r))
	}
	ok(t, s.Revoke(c, r1)) // twice is not an error

	for _, tc := range []struct {
		realm, jti string
		want       bool
	}{{"r", "j1", true}, {"r2", "j2", true}, {"r", "j2", false}, {"r", "nope", false}} {
		got, err := s.IsRevoked(c, tc.realm, tc.jti)
		ok(t, err)
		if got != tc.want {
			t.Fatalf("IsRevoked(%s, %s) = %v", tc.realm, tc.jti, got)
		}
	}
	all, err := s.ListRevocations(c, time.Time{})
	ok(t, err)
	equal(t, "all revocations", all, []store.Revocation{r1, r2, r3})
	checkTime(t, "Created", all[0].Created, r1.Created)
	since, err := s.ListRevocations(c, at(2*time.Second))
	ok(t, err)
	equal(t, "revocations since", since, []store.Revocation{r2, r3})
	none, err := s.ListRevocations(c, at(time.Minute))
	ok(t, err)
	mustCount(t, "revocations from the future", len(none), 0)

	// A revocation without Created is dated by the store, so that a
	// gateway polling ListRevocations finds it.
	before := time.Now().Add(-time.Second)
	ok(t, s.Revoke(c, store.Revocation{Realm: "r", JTI: "undated", Expires: time.Now().Add(time.Hour)}))
	recent, err := s.ListRevocations(c, before)
	ok(t, err)
	if len(recent) != 1 || recent[0].JTI != "undated" {
		t.Fatalf("undated revocation not listed: %+v", recent)
	}
}

func testUseOnce(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedRealm(t, s, "r2")
	exp := time.Now().Add(time.Hour)
	ok(t, s.UseOnce(c, "r", "client/jti-1", exp))
	wantErr(t, s.UseOnce(c, "r", "client/jti-1", exp), store.ErrAlreadyExists)
	wantErr(t, s.UseOnce(c, "r", "client/jti-1", exp.Add(time.Hour)), store.ErrAlreadyExists)
	ok(t, s.UseOnce(c, "r", "client/jti-2", exp))
	ok(t, s.UseOnce(c, "r2", "client/jti-1", exp))

	// Once its time is up, a key may be used again (its token has expired
	// anyway), cleaned up or not.
	ok(t, s.UseOnce(c, "r", "stale", time.Now().Add(-time.Minute)))
	ok(t, s.UseOnce(c, "r", "stale", exp))
	wantErr(t, s.UseOnce(c, "r", "stale", exp), store.ErrAlreadyExists)
}

func testLoginFailures(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	_, err := s.GetLoginFailure(c, "r", "u1")
	wantErr(t, err, store.ErrNotFound)

	want := store.LoginFailure{
		Realm: "r", UserID: "u1", NumFailures: 1, LastFailure: at(time.Second), LastIP: "198.51.100.7",
		LockedUntil: at(time.Minute), LockedForever: true,
	}
	ok(t, s.UpdateLoginFailure(c, "r", "u1", func(f store.LoginFailure) (store.LoginFailure, error) {
		equal(t, "fresh login failure", f, store.LoginFailure{Realm: "r", UserID: "u1"})
		f.NumFailures++
		f.LastFailure, f.LastIP, f.LockedUntil, f.LockedForever = want.LastFailure, want.LastIP, want.LockedUntil, true
		return f, nil
	}))
	got, err := s.GetLoginFailure(c, "r", "u1")
	ok(t, err)
	equal(t, "login failure", got, want)
	checkTime(t, "LastFailure", got.LastFailure, want.LastFailure)

	ok(t, s.UpdateLoginFailure(c, "r", "u1", func(f store.LoginFailure) (store.LoginFailure, error) {
		equal(t, "stored login failure", f, want)
		f.NumFailures++
		f.LockedUntil, f.LockedForever = time.Time{}, false
		return f, nil
	}))
	want.NumFailures, want.LockedUntil, want.LockedForever = 2, time.Time{}, false
	got, err = s.GetLoginFailure(c, "r", "u1")
	ok(t, err)
	equal(t, "login failure after second update", got, want)

	wantErr(t, s.UpdateLoginFailure(c, "r", "no-such-user", func(f store.LoginFailure) (store.LoginFailure, error) {
		f.NumFailures++
		return f, nil
	}), store.ErrNotFound)

	ok(t, s.DeleteLoginFailure(c, "r", "u1"))
	_, err = s.GetLoginFailure(c, "r", "u1")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteLoginFailure(c, "r", "u1"), store.ErrNotFound)
}

func testDeleteExpired(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	seedUser(t, s, "r", "u1")
	now := time.Now()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)

	mk := func(id string, expires time.Time) {
		ss := fullSession("r", id, "u1", at(0))
		ss.Expires = expires
		ok(t, s.CreateSession(c, ss, admitAll))
	}
	mk("old", past)
	mk("live", future)
	mk("forever", time.Time{})
	ok(t, s.Revoke(c, store.Revocation{Realm: "r", JTI: "old", Expires: past, Created: past}))
	ok(t, s.Revoke(c, store.Revocation{Realm: "r", JTI: "live", Expires: future, Created: past}))
	ok(t, s.UseOnce(c, "r", "old", past))
	ok(t, s.UseOnce(c, "r", "live", future))
	retired := fullKey("r", "retired", at(0))
	retired.RetireAt = past
	retiring := fullKey("r", "retiring", at(time.Second))
	retiring.RetireAt = future
	current := fullKey("r", "current", at(2*time.Second))
	for _, k := range []store.Key{retired, retiring, current} {
		ok(t, s.CreateKey(c, k))
	}

	n, err := s.DeleteExpired(c, now)
	ok(t, err)
	mustCount(t, "DeleteExpired", n, 4)

	left, err := s.ListUserSessions(c, "r", "u1")
	ok(t, err)
	equalStrings(t, "sessions left", sessionIDs(left), []string{"forever", "live"})
	for jti, want := range map[string]bool{"old": false, "live": true} {
		got, err := s.IsRevoked(c, "r", jti)
		ok(t, err)
		if got != want {
			t.Fatalf("IsRevoked(%s) = %v after DeleteExpired", jti, got)
		}
	}
	wantErr(t, s.UseOnce(c, "r", "live", future), store.ErrAlreadyExists)
	ok(t, s.UseOnce(c, "r", "old", future))
	keys, err := s.ListKeys(c, "r")
	ok(t, err)
	equalStrings(t, "keys left", ids(keys, func(k store.Key) string { return k.KID }), []string{"retiring", "current"})

	n, err = s.DeleteExpired(c, now)
	ok(t, err)
	mustCount(t, "DeleteExpired again", n, 0)
}

func testUpdateAborts(t *testing.T, s store.Store) {
	c := ctx(t)
	seedRealm(t, s, "r")
	u := seedUser(t, s, "r", "u1")
	cl := fullClient("r", "app")
	ok(t, s.CreateClient(c, cl))
	ss := fullSession("r", "s1", "u1", at(0))
	ok(t, s.CreateSession(c, ss, admitAll))
	k := fullKey("r", "k1", at(0))
	ok(t, s.CreateKey(c, k))
	lf := store.LoginFailure{Realm: "r", UserID: "u1", NumFailures: 3}
	ok(t, s.UpdateLoginFailure(c, "r", "u1", func(store.LoginFailure) (store.LoginFailure, error) { return lf, nil }))
	realmBefore, err := s.GetRealm(c, "r")
	ok(t, err)

	// Each update changes its entity and then refuses: nothing may land,
	// and the refusal comes back as it was (wrapped or not).
	wrapped := fmt.Errorf("wrapped: %w", errRefused)
	for name, err := range map[string]error{
		"UpdateRealm": s.UpdateRealm(c, "r", func(r store.Realm) (store.Realm, error) {
			r.Enabled = !r.Enabled
			r.Settings.AccessTokenLifespan = 1
			return r, errRefused
		}),
		"UpdateClient": s.UpdateClient(c, "r", "app", func(x store.Client) (store.Client, error) {
			x.Name = "changed"
			return x, wrapped
		}),
		"UpdateUser": s.UpdateUser(c, "r", "u1", func(x store.User) (store.User, error) {
			x.Email = "changed@example.test"
			return x, errRefused
		}),
		"UpdateSession": s.UpdateSession(c, "r", "s1", func(x store.Session) (store.Session, error) {
			x.RefreshUses = 99
			return x, errRefused
		}),
		"UpdateKey": s.UpdateKey(c, "r", "k1", func(x store.Key) (store.Key, error) {
			x.Active = false
			return x, errRefused
		}),
		"UpdateLoginFailure": s.UpdateLoginFailure(c, "r", "u1", func(x store.LoginFailure) (store.LoginFailure, error) {
			x.NumFailures = 100
			return x, errRefused
		}),
	} {
		if !errors.Is(err, errRefused) {
			t.Fatalf("%s: got %v, want the update function's error", name, err)
		}
	}

	gotRealm, err := s.GetRealm(c, "r")
	ok(t, err)
	equal(t, "realm after refused update", gotRealm, realmBefore)
	gotClient, err := s.GetClient(c, "r", "app")
	ok(t, err)
	equal(t, "client after refused update", gotClient, cl)
	gotUser, err := s.GetUser(c, "r", "u1")
	ok(t, err)
	equal(t, "user after refused update", gotUser, u)
	gotSession, err := s.GetSession(c, "r", "s1")
	ok(t, err)
	equal(t, "session after refused update", gotSession, ss)
	keys, err := s.ListKeys(c, "r")
	ok(t, err)
	equal(t, "key after refused update", keys, []store.Key{k})
	gotLF, err := s.GetLoginFailure(c, "r", "u1")
	ok(t, err)
	equal(t, "login failure after refused update", gotLF, lf)
}
