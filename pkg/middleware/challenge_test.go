package middleware_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/middleware"
)

func TestChallengeString(t *testing.T) {
	for _, c := range []struct {
		c    middleware.Challenge
		want string
	}{
		{middleware.Challenge{}, `Bearer`},
		{middleware.Challenge{Realm: "acme"}, `Bearer realm="acme"`},
		{middleware.Challenge{Realm: "acme", Error: "invalid_token", Description: "token expired"},
			`Bearer realm="acme", error="invalid_token", error_description="token expired"`},
		{middleware.Challenge{Realm: "acme", Error: "insufficient_scope", Scope: "a b"},
			`Bearer realm="acme", error="insufficient_scope", scope="a b"`},
		{middleware.Challenge{Error: "insufficient_scope", Scope: "a"}, `Bearer error="insufficient_scope", scope="a"`},
		// Quote and backslash are escaped; control and non-ASCII
		// characters, which RFC 6750 §3 does not allow, become "?".
		{middleware.Challenge{Description: `a "b" \ c` + "\n\u00e9"}, `Bearer error_description="a \"b\" \\ c??"`},
	} {
		if got := c.c.String(); got != c.want {
			t.Errorf("%+v: got %s, want %s", c.c, got, c.want)
		}
	}
}

// FuzzChallenge: whatever the values, the challenge is one line of
// printable ASCII whose quoted-strings end where they should.
func FuzzChallenge(f *testing.F) {
	f.Add("acme", "invalid_token", "token expired", "")
	f.Add("", "", `"\`, "\x00\xff")
	f.Add("r\"ealm", "e", "d\r\nSet-Cookie: x", "s c")
	f.Fuzz(func(t *testing.T, realm, code, desc, scope string) {
		s := middleware.Challenge{Realm: realm, Error: code, Description: desc, Scope: scope}.String()
		if !strings.HasPrefix(s, "Bearer") {
			t.Fatalf("%q does not start with the scheme", s)
		}
		quotes, escaped := 0, false
		for i := 0; i < len(s); i++ {
			b := s[i]
			if b < 0x20 || b > 0x7e {
				t.Fatalf("%q has byte %#x", s, b)
			}
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				quotes++
			}
		}
		if quotes%2 != 0 || escaped {
			t.Fatalf("%q: unbalanced quoted-string", s)
		}
	})
}

// A handler that needs a scope the middleware does not require for the
// whole service refuses with the challenge the middleware would write.
func ExampleChallenge() {
	c := middleware.Challenge{Realm: "acme", Error: "insufficient_scope", Scope: "risks:write"}
	fmt.Println(c)
	// Output: Bearer realm="acme", error="insufficient_scope", scope="risks:write"
}

func TestBearerToken(t *testing.T) {
	for _, c := range []struct {
		h           []string
		tok         string
		present, ok bool
	}{
		{nil, "", false, false},
		{[]string{"Bearer abc.def-_~+/=="}, "abc.def-_~+/==", true, true},
		{[]string{"bearer  abc"}, "abc", true, true},
		{[]string{"Basic abc"}, "", false, false},
		{[]string{"Bearer"}, "", true, false},
		{[]string{"Bearer a=b"}, "", true, false},
		{[]string{"Bearer =="}, "", true, false}, // padding alone is no token
		{[]string{"Bearer a\x80"}, "", true, false},
		{[]string{"Bearer a\"b"}, "", true, false},
		{[]string{"Bearer a", "Bearer b"}, "", true, false},
	} {
		h := http.Header{"Authorization": c.h}
		tok, present, ok := middleware.BearerToken(h)
		if tok != c.tok || present != c.present || ok != c.ok {
			t.Errorf("%q: got %q %v %v", c.h, tok, present, ok)
		}
	}
}
