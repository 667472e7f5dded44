package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/coretest"
)

const testRealm = `{
  "realm": "fz", "enabled": true,
  "clients": [
    {"clientId": "app", "publicClient": true,
     "redirectUris": ["https://app.example/cb", "https://spa.example/*"], "webOrigins": ["+"]}
  ],
  "users": [{"username": "u1", "enabled": true, "credentials": [{"type": "password", "value": "pw-1"}]}]
}`

// registered are testRealm's redirect URIs and patterns' prefixes.
var registered = []string{"https://app.example/cb", "https://spa.example/"}

// newTestMux serves the OIDC door of a core on a fresh SQLite file, as main
// wires it.
func newTestMux(t testing.TB, publicURL string) *http.ServeMux {
	t.Helper()
	svc, km := coretest.NewWithKeys(t, testRealm, coretest.WithConfig(func(c *core.Config) { c.BaseURL = publicURL }))
	mux := http.NewServeMux()
	New(svc, km, nil, nil).Register(mux)
	return mux
}

func serve(mux http.Handler, req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

func TestParseAuthRequest(t *testing.T) {
	q, _ := url.ParseQuery("client_id=a&redirect_uri=https%3A%2F%2Fx%2F&response_type=code&state=s&nonce=n&code_challenge=c&code_challenge_method=S256&prompt=login&max_age=3&login_hint=bob&extra=ignored")
	req, err := parseAuthRequest(q, "r")
	if err != nil {
		t.Fatal(err)
	}
	want := core.AuthRequest{Realm: "r", ClientID: "a", RedirectURI: "https://x/", ResponseType: "code", State: "s", Nonce: "n",
		CodeChallenge: "c", CodeChallengeMethod: "S256", Prompt: "login", MaxAge: "3", LoginHint: "bob"}
	if req != want {
		t.Errorf("parsed %+v", req)
	}
	if _, err := parseAuthRequest(url.Values{"state": {"a", "b"}}, "r"); err == nil {
		t.Errorf("duplicate state accepted")
	}
	if _, err := parseAuthRequest(url.Values{"nonce": {strings.Repeat("n", maxAuthParam+1)}}, "r"); err == nil {
		t.Errorf("oversized nonce accepted")
	}
}

var cssRule = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

func TestLoginPage(t *testing.T) {
	mux := newTestMux(t, "https://id.example")
	u := "/auth/realms/fz/protocol/openid-connect/auth?" + url.Values{
		"client_id": {"app"}, "response_type": {"code"}, "redirect_uri": {"https://app.example/cb"},
		"login_hint": {`"><script>alert(1)</script>`},
	}.Encode()
	w := serve(mux, httptest.NewRequest(http.MethodGet, u, nil))
	if w.Code != 200 {
		t.Fatalf("login page: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&#34;&gt;&lt;script&gt;") {
		t.Errorf("login_hint not escaped: %s", body)
	}
	// The one style block is what the policy's hash admits.
	m := cssRule.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no style block: %s", body)
	}
	sum := sha256.Sum256([]byte(m[1]))
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q does not admit the page's style", csp)
	}
	if !strings.Contains(body, `action="/auth/realms/fz/login-actions/authenticate"`) {
		t.Errorf("form action under the /auth prefix missing: %s", body)
	}
	var login *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == loginCookie {
			login = c
		}
	}
	if login == nil || login.Path != "/auth/realms/fz/" || !login.HttpOnly || !login.Secure || login.SameSite != http.SameSiteLaxMode {
		t.Errorf("login cookie %+v", login)
	}
}

func TestPreflightUnknownRealm(t *testing.T) {
	mux := newTestMux(t, "http://id.example")
	req := httptest.NewRequest(http.MethodOptions, "/realms/nope/protocol/openid-connect/token", nil)
	req.Header.Set("Origin", "https://spa.example")
	if w := serve(mux, req); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight for an unknown realm allowed")
	}
	req = httptest.NewRequest(http.MethodOptions, "/realms/fz/protocol/openid-connect/token", nil)
	req.Header.Set("Origin", "https://spa.example")
	if w := serve(mux, req); w.Header().Get("Access-Control-Allow-Origin") != "https://spa.example" {
		t.Errorf("preflight from a redirect URI's origin refused: %v", w.Header())
	}
}

var postAction = regexp.MustCompile(`<form method="post" action="([^"]*)">`)

// FuzzAuthorize sends arbitrary query strings to the authorization
// endpoint. Whatever they hold, the answer is never a server error, and a
// redirect (or a form_post form) only ever goes to one of the client's
// registered redirect URIs.
func FuzzAuthorize(f *testing.F) {
	for _, s := range []string{
		"client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=x",
		"client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fspa.example%2Fa%2F..%2F..%2Fevil&prompt=none",
		"client_id=app&response_type=token&redirect_uri=https%3A%2F%2Fspa.example%2Fx&response_mode=fragment",
		"client_id=app&redirect_uri=https%3A%2F%2Fspa.example%2F%3Fa%3Db&code_challenge=abc&code_challenge_method=S512",
		"client_id=app&response_type=code&redirect_uri=https://spa.example/x&prompt=none&max_age=-1",
		"client_id=app&client_id=x&redirect_uri=%zz",
		"client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code",
		"client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fspa.example%2F&request=eyJ&scope=openid+bogus",
		"client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_mode=form_post&prompt=none&state=%22%3E%3Cx",
	} {
		f.Add(s)
	}
	mux := newTestMux(f, "http://id.example")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/realms/fz/protocol/openid-connect/auth", nil)
		req.URL.RawQuery = rawQuery
		w := serve(mux, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q", w.Code, rawQuery)
		}
		loc := ""
		if w.Code >= 300 && w.Code < 400 {
			loc = w.Header().Get("Location")
		} else if body := w.Body.String(); strings.Contains(body, formPostScript) {
			// response_mode=form_post: the form's target
			if m := postAction.FindStringSubmatch(body); m != nil {
				loc = html.UnescapeString(m[1])
			} else {
				t.Fatalf("form_post page without its form for %q", rawQuery)
			}
		}
		if loc != "" {
			ok := false
			for _, r := range registered {
				if strings.HasPrefix(loc, r) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("redirect to %q for %q", loc, rawQuery)
			}
		}
	})
}
