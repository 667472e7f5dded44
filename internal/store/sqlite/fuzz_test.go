package sqlite

import (
	"fmt"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/store"
)

// FuzzUserRoundTrip stores users whose strings come straight from clients
// (a username typed into a login form, a User-Agent header) and checks
// they come back byte for byte and are found by exact lookup. Strings
// inside JSON columns are checked when they are valid UTF-8, which is all
// that a JSON request body can carry.
func FuzzUserRoundTrip(f *testing.F) {
	for _, seed := range [][3]string{
		{"alice", "alice@example.test", "curl/8.5.0"},
		{"", "", ""},
		{"ÄLICE ünïcödé", "a+b@exämple.test", "Mozilla/5.0 (X11; Linux x86_64)"},
		{"with\x00nul", "nul\x00@x", "ua\x00"},
		{"bad\xff\xfeutf8", "\xc3\x28@x", "\xed\xa0\x80"},
		{"'; DROP TABLE users; --", "%_*?", "\\\"{}[]"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	s, err := Open(f.TempDir() + "/gatehouse.db")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	ctx := f.Context()
	if err := s.CreateRealm(ctx, store.Realm{Name: "fuzz"}); err != nil {
		f.Fatal(err)
	}
	n := 0
	f.Fuzz(func(t *testing.T, username, email, userAgent string) {
		n++
		id := fmt.Sprint("id-", n)
		// Usernames are unique in the realm: make each one new.
		username = fmt.Sprint(n, "-", username)
		u := store.User{
			Realm: "fuzz", ID: id, Username: username, Email: email, FirstName: userAgent,
			RealmRoles: []string{"r"}, Attributes: map[string][]string{"k": {"v"}},
		}
		jsonOK := utf8.ValidString(userAgent)
		if jsonOK {
			u.RealmRoles = []string{userAgent}
			u.Attributes = map[string][]string{userAgent: {email}}
			if !utf8.ValidString(email) {
				u.Attributes = map[string][]string{userAgent: {"x"}}
			}
		}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		got, err := s.GetUserByUsername(ctx, "fuzz", username)
		if err != nil {
			t.Fatalf("GetUserByUsername(%q): %v", username, err)
		}
		if !reflect.DeepEqual(got, u) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, u)
		}
		if email != "" {
			byEmail, err := s.GetUserByEmail(ctx, "fuzz", email)
			if err != nil || byEmail.Email != email {
				t.Fatalf("GetUserByEmail(%q) = %q, %v", email, byEmail.Email, err)
			}
		}
		sess := store.Session{Realm: "fuzz", ID: "s-" + id, UserID: id, UserAgent: userAgent, Scope: email}
		if err := s.CreateSession(ctx, sess, nil); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		gotSess, err := s.GetSession(ctx, "fuzz", sess.ID)
		if err != nil || !reflect.DeepEqual(gotSess, sess) {
			t.Fatalf("session round trip: %#v, %v", gotSess, err)
		}
	})
}
