// Package formtoken makes and checks the random tokens that tie a browser
// form to the cookie its page set (double-submit CSRF protection), for the
// login page and the developer portal, and checks that a form post came
// from the same origin.
package formtoken

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// New returns 32 random bytes in unpadded base64url: 43 characters.
func New() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails; it aborts instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// Valid reports whether s has the shape New gives, so that a malformed
// cookie is refused before any comparison.
func Valid(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// Equal compares a form's token with its cookie in constant time; two
// empty tokens are not equal.
func Equal(a, b string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// SameOrigin refuses a POST that a browser says came from elsewhere:
// Sec-Fetch-Site other than same-origin (or none: typed by the user), or
// an Origin header naming another host. Requests with neither (curl, old
// browsers) rely on the token alone.
func SameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
