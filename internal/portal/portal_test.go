package portal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/formtoken"
)

// gcmSealer is AES-256-GCM with a random key, the construction
// keys.Manager uses with the master key.
type gcmSealer struct{ aead cipher.AEAD }

func newSealer(t testing.TB) gcmSealer {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return gcmSealer{a}
}

func (s gcmSealer) Seal(p []byte) ([]byte, error) {
	n := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(n)
	return s.aead.Seal(n, n, p, nil), nil
}

func (s gcmSealer) Open(c []byte) ([]byte, error) {
	if len(c) < s.aead.NonceSize() {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, c[:s.aead.NonceSize()], c[s.aead.NonceSize():], nil)
}

func newHandler(t testing.TB) *Handler {
	h, err := New(nil, Options{DefaultRealm: "demo", Sealer: newSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCookieSealOpen(t *testing.T) {
	h := newHandler(t)
	cd := cookieData{Realm: "demo", SessionID: "sid", UserID: "uid", CSRF: formtoken.New(), RefreshToken: "rt"}
	v, err := h.seal(cd)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "rt") && strings.Contains(v, "sid") {
		t.Fatal("cookie readable")
	}
	got, err := h.open(v)
	if err != nil || *got != cd {
		t.Fatalf("open: %+v %v", got, err)
	}
	// Tampering, another key, or a value sealed for something else fail.
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	raw[len(raw)-1] ^= 1
	if _, err := h.open(base64.RawURLEncoding.EncodeToString(raw)); err == nil {
		t.Fatal("tampered cookie opened")
	}
	if _, err := newHandler(t).open(v); err == nil {
		t.Fatal("cookie opened with another key")
	}
	other, _ := h.opts.Sealer.Seal([]byte(`{"r":"demo","s":"sid","u":"uid","c":"` + cd.CSRF + `"}`))
	if _, err := h.open(base64.RawURLEncoding.EncodeToString(other)); err == nil {
		t.Fatal("value sealed without the portal context opened")
	}
}

func TestCSPHashMatchesScript(t *testing.T) {
	h := newHandler(t)
	sum := sha256.Sum256([]byte(h.script))
	if !strings.Contains(h.csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Fatalf("CSP %q does not allow the script", h.csp)
	}
	if strings.Contains(h.csp, "unsafe") {
		t.Fatal("CSP allows unsafe sources")
	}
}

// FuzzOpenCookie: a cookie is untrusted input; opening any value fails
// cleanly or yields a complete cookie, and never panics.
func FuzzOpenCookie(f *testing.F) {
	h := newHandler(f)
	good, _ := h.seal(cookieData{Realm: "demo", SessionID: "s", UserID: "u", CSRF: formtoken.New()})
	for _, s := range []string{"", "x", good, good[:len(good)/2], "%%%", strings.Repeat("A", 4000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cd, err := h.open(v)
		if err == nil && (cd.SessionID == "" || cd.UserID == "" || !formtoken.Valid(cd.CSRF)) {
			t.Fatalf("incomplete cookie accepted: %+v", cd)
		}
	})
}

// spent is a limiter whose budget is gone.
type spent struct{}

func (spent) Allow(string) (bool, int) { return false, 7 }

// TestSignInRateLimited: a sign-in from an address over its budget gets the
// portal's refusal page with 429 and Retry-After, before the form or the
// store is looked at; the sign-in page itself is not limited.
func TestSignInRateLimited(t *testing.T) {
	h, err := New(nil, Options{DefaultRealm: "demo", Sealer: newSealer(t), Limiter: spent{}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	for _, p := range []string{"/portal/login", "/realms/other/portal/login"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", p, strings.NewReader("username=a&password=b"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		mux.ServeHTTP(rec, req)
		if rec.Code != 429 || rec.Header().Get("Retry-After") != "7" ||
			!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
			!strings.Contains(rec.Body.String(), "Too many sign-in attempts") ||
			rec.Header().Get("Content-Security-Policy") == "" {
			t.Fatalf("%s: %d %v %s", p, rec.Code, rec.Header(), rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/portal/portal.css", nil))
	if rec.Code != 200 {
		t.Fatalf("stylesheet: %d", rec.Code)
	}
}
