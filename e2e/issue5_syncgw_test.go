package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
)

// Seed 004's membership ids: one user (uimu) in two organizations.
const (
	muGail     = "MU00000000-0000-0000-0000-000000000000"
	muMcN      = "MU11111111-1111-1111-1111-111111111111"
	muPlain    = "MU22222222-2222-2222-2222-222222222222"
	wsAuthBody = `{"error": true, "reason": "Invalid WSAUTH: Valid UserID must be supplied"}`
)

// risksUpstream answers /risks with the risks of the organization the
// gateway names: 3 for gailbkr, 2 for mcneillieuwr.
func risksUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		org := r.Header.Get("X-Gatehouse-Organization-Alias")
		n := map[string]int{"gailbkr": 3, "mcneillieuwr": 2}[org]
		var risks []map[string]any
		for i := 0; i < n; i++ {
			risks = append(risks, map[string]any{"InsuredName": fmt.Sprintf("%s risk %d", org, i),
				"channels": []string{org + "_ALL"}, "membership": r.Header.Get("X-Gatehouse-Membership")})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(risks)
	}))
	t.Cleanup(up.Close)
	return up
}

// syncRealmFile writes testdata/issue5-syncgw.json for realm with the
// upstream's URL filled in.
func syncRealmFile(t *testing.T, realm string, rotate bool, upstream string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "issue5-syncgw.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("__REALM__", realm, "__ROTATE__", fmt.Sprint(rotate), "__UPSTREAM__", upstream).Replace(string(b))
	f := filepath.Join(t.TempDir(), realm+".json")
	if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// syncLogBuffer collects the server's log for a test to search.
type syncLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSyncServer runs gatehouse with realms ws (no rotation) and wsrot
// (rotation), ws the default realm (gateway and portal), logging at debug
// level into the returned buffer.
func startSyncServer(t *testing.T) (*testServer, *syncLogBuffer) {
	t.Helper()
	up := risksUpstream(t)
	logs := &syncLogBuffer{}
	ts := startServer(t, []string{syncRealmFile(t, "ws", false, up.URL), syncRealmFile(t, "wsrot", true, up.URL)},
		func(c *server.Config) {
			c.DefaultRealm = "ws"
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
	return ts, logs
}

func getURL(t *testing.T, u string, headers ...string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return do(t, req)
}

func passwordRefreshToken(t *testing.T, ts *testServer, realm, user, pw string) string {
	t.Helper()
	r := postForm(t, ts.oidc(realm, "token"), url.Values{"grant_type": {"password"}, "client_id": {"ws-cli"},
		"username": {user}, "password": {pw}})
	if r.Status != 200 || r.str("refresh_token") == "" {
		t.Fatalf("password grant: %d %s", r.Status, r.Body)
	}
	return r.str("refresh_token")
}

func oidcRefresh(t *testing.T, ts *testServer, db, token string) *response {
	t.Helper()
	return getURL(t, ts.URL+"/"+db+"/_oidc_refresh?refresh_token="+url.QueryEscape(token))
}

// TestIssue5Seed004 runs seed 004 as written: the renewable token copied
// from the profile panel, _oidc_refresh on the bucket, the id_token as a
// bearer on $API/risks with and without the UserID header.
func TestIssue5Seed004(t *testing.T) {
	ts, logs := startSyncServer(t)
	p := newPortalClient(t, ts, "/portal/")
	p.signIn("uimu", "uimu-password")
	page := p.get()
	renewable := tokenInPage(t, page)

	// export TOKEN=`curl $SYNC/$BUCKET/_oidc_refresh?refresh_token=$RENEWABLE | jq -r .id_token`
	r := oidcRefresh(t, ts, "whitespace-ws", renewable)
	if r.Status != 200 {
		t.Fatalf("_oidc_refresh: %d %s", r.Status, r.Body)
	}
	token := r.str("id_token")
	if token == "" || r.str("session_id") == "" || r.str("name") != "uimu" {
		t.Fatalf("_oidc_refresh answer %s", r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	if c := claims(t, token); c["typ"] != "ID" || c["sid"] != r.str("session_id") {
		t.Fatalf("id_token claims %v", c)
	}

	// curl -H "Authorization: Bearer $TOKEN" $API/risks: two organizations, no UserID.
	r = getURL(t, ts.URL+"/risks", "Authorization: Bearer "+token)
	if r.Status == 200 || string(r.Body) != wsAuthBody {
		t.Fatalf("no UserID: %d %s", r.Status, r.Body)
	}
	// A UserID that is not the user's.
	r = getURL(t, ts.URL+"/risks", "Authorization: Bearer "+token, "UserID: "+muPlain)
	if string(r.Body) != wsAuthBody {
		t.Fatalf("foreign UserID: %d %s", r.Status, r.Body)
	}
	for mu, want := range map[string]int{muGail: 3, muMcN: 2} {
		r = getURL(t, ts.URL+"/risks", "Authorization: Bearer "+token, "UserID:"+mu)
		var risks []map[string]any
		if r.Status != 200 || json.Unmarshal(r.Body, &risks) != nil || len(risks) != want {
			t.Fatalf("UserID %s: %d %s", mu, r.Status, r.Body)
		}
		if risks[0]["membership"] != mu {
			t.Fatalf("upstream saw membership %v, want %s", risks[0]["membership"], mu)
		}
	}
	// The same renewable token works again (no rotation in this realm).
	if r := oidcRefresh(t, ts, "ws", renewable); r.Status != 200 {
		t.Fatalf("second _oidc_refresh: %d %s", r.Status, r.Body)
	}
	// Nothing logged the refresh token (the query) or the ID token.
	if l := logs.String(); strings.Contains(l, renewable) || strings.Contains(l, token) || strings.Contains(l, "refresh_token=") {
		t.Fatal("a token reached the log")
	}
}

func TestIssue5SyncGatewayErrors(t *testing.T) {
	ts, _ := startSyncServer(t)
	plain := passwordRefreshToken(t, ts, "ws", "plain", "plain-password")
	renewable := passwordRefreshToken(t, ts, "ws", "uimu", "uimu-password")
	for _, c := range []struct {
		name, path string
		status     int
		reason     string
	}{
		{"unflagged account", "/ws/_oidc_refresh?refresh_token=" + url.QueryEscape(plain), 400, "not enabled for renewable"},
		{"missing token", "/ws/_oidc_refresh", 400, "refresh_token"},
		{"empty token", "/ws/_oidc_refresh?refresh_token=", 400, "refresh_token"},
		{"invalid token", "/ws/_oidc_refresh?refresh_token=abc.def.ghi", 401, "Invalid refresh token"},
		{"token of another realm", "/wsrot/_oidc_refresh?refresh_token=" + url.QueryEscape(renewable), 401, "Invalid refresh token"},
		{"bad escape", "/ws/_oidc_refresh?refresh_token=%zz", 400, "refresh_token"},
	} {
		r := getURL(t, ts.URL+c.path)
		if r.Status != c.status || r.JSON == nil || r.str("error") != http.StatusText(c.status) || !strings.Contains(r.str("reason"), c.reason) {
			t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
		}
	}
	// Alias and realm name both resolve; an unknown database goes to the
	// gateway, which has no such route.
	for _, db := range []string{"ws", "whitespace-ws"} {
		if r := oidcRefresh(t, ts, db, renewable); r.Status != 200 || r.str("name") != "uimu" {
			t.Errorf("%s: %d %s", db, r.Status, r.Body)
		}
	}
	if r := oidcRefresh(t, ts, "nosuchdb", renewable); r.Status == 200 || r.Status >= 500 {
		t.Errorf("unknown db: %d %s", r.Status, r.Body)
	}
	// An ID token is not accepted where the realm does not allow it: the
	// token endpoint's refresh grant does not take one either.
	id := oidcRefresh(t, ts, "ws", renewable).str("id_token")
	r := postForm(t, ts.oidc("ws", "token"), url.Values{"grant_type": {"refresh_token"}, "client_id": {"ws-cli"}, "refresh_token": {id}})
	if r.Status != 400 {
		t.Errorf("ID token as refresh token: %d %s", r.Status, r.Body)
	}
}

// TestIssue5SyncGatewayRotation: in a realm that rotates refresh tokens,
// the answer's refresh_token is the one to use next, and presenting the old
// one again ends the session (reuse detection).
func TestIssue5SyncGatewayRotation(t *testing.T) {
	ts, _ := startSyncServer(t)
	first := passwordRefreshToken(t, ts, "wsrot", "uimu", "uimu-password")
	r := oidcRefresh(t, ts, "whitespace-wsrot", first)
	if r.Status != 200 || r.str("refresh_token") == "" || r.str("refresh_token") == first {
		t.Fatalf("first renewal: %d %s", r.Status, r.Body)
	}
	second := r.str("refresh_token")
	if r := oidcRefresh(t, ts, "wsrot", second); r.Status != 200 {
		t.Fatalf("renewal with the rotated token: %d %s", r.Status, r.Body)
	}
	if r := oidcRefresh(t, ts, "wsrot", first); r.Status != 401 {
		t.Fatalf("reused token: %d %s", r.Status, r.Body)
	}
	// Reuse ended the session: the newest token is dead too.
	if r := oidcRefresh(t, ts, "wsrot", second); r.Status != 401 {
		t.Fatalf("token after reuse detection: %d %s", r.Status, r.Body)
	}
}

// portalClient is a browser without JavaScript: a cookie jar, no
// automatic redirects.
type portalClient struct {
	t    *testing.T
	ts   *testServer
	base string
	c    *http.Client
}

func newPortalClient(t *testing.T, ts *testServer, base string) *portalClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &portalClient{t: t, ts: ts, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *portalClient) do(req *http.Request) *response {
	p.t.Helper()
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b.Bytes()}
}

func (p *portalClient) get() *response {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.ts.URL+p.base, nil)
	r := p.do(req)
	if r.Status != 200 {
		p.t.Fatalf("GET %s: %d %s", p.base, r.Status, r.Body)
	}
	return r
}

func (p *portalClient) post(path string, form url.Values) *response {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.ts.URL+p.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return p.do(req)
}

var (
	csrfRe  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	tokenRe = regexp.MustCompile(`id="renewable-token"[^>]*>([^<]+)<`)
)

func csrfIn(t *testing.T, r *response) string {
	t.Helper()
	m := csrfRe.FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no CSRF token in page %s", r.Body)
	}
	return html.UnescapeString(string(m[1]))
}

func tokenInPage(t *testing.T, r *response) string {
	t.Helper()
	m := tokenRe.FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no renewable token in page")
	}
	return strings.TrimSpace(html.UnescapeString(string(m[1])))
}

func (p *portalClient) signIn(user, pw string) {
	p.t.Helper()
	csrf := csrfIn(p.t, p.get())
	r := p.post("login", url.Values{"csrf": {csrf}, "username": {user}, "password": {pw}})
	if r.Status != http.StatusSeeOther {
		p.t.Fatalf("sign in: %d %s", r.Status, r.Body)
	}
}

func TestIssue5PortalOverHTTP(t *testing.T) {
	ts, logs := startSyncServer(t)
	p := newPortalClient(t, ts, "/portal/")

	// The sign-in page: escaped, uncacheable, locked down.
	r := p.get()
	if !bytes.Contains(r.Body, []byte(`action="/portal/login"`)) {
		t.Fatalf("sign-in page %s", r.Body)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
		if r.Header.Get(h) != want {
			t.Errorf("%s = %q", h, r.Header.Get(h))
		}
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	csrf := csrfIn(t, r)

	// Without the CSRF token, or from another site: refused.
	if r := p.post("login", url.Values{"username": {"uimu"}, "password": {"uimu-password"}}); r.Status != 403 {
		t.Fatalf("sign-in without CSRF token: %d", r.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/portal/login", strings.NewReader(url.Values{"csrf": {csrf}, "username": {"uimu"}, "password": {"uimu-password"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if r := p.do(req); r.Status != 403 {
		t.Fatalf("cross-origin sign-in: %d", r.Status)
	}
	// A wrong password: the form again, with a message and the name kept.
	r = p.post("login", url.Values{"csrf": {csrf}, "username": {"uimu"}, "password": {"wrong"}})
	if r.Status != 401 || !bytes.Contains(r.Body, []byte("Invalid username or password")) || !bytes.Contains(r.Body, []byte(`value="uimu"`)) {
		t.Fatalf("wrong password: %d %s", r.Status, r.Body)
	}
	// The right one: a sealed, HttpOnly, SameSite=Lax cookie, no token in the URL.
	r = p.post("login", url.Values{"csrf": {csrf}, "username": {"uimu"}, "password": {"uimu-password"}})
	if r.Status != 303 || r.Header.Get("Location") != "/portal/" {
		t.Fatalf("sign in: %d %v", r.Status, r.Header)
	}
	var sc *http.Cookie
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "gatehouse_portal" {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/portal/" {
		t.Fatalf("session cookie %+v", sc)
	}
	if strings.Contains(sc.Value, "eyJ") {
		t.Fatal("session cookie holds a readable JWT")
	}

	// The panel.
	page := p.get()
	for _, want := range []string{"uimu", "Una Imu", "uimu@example.com", muGail, muMcN, "Gail Broking", "McNeillie Underwriting", "gatehouse-portal", "this session", `id="copy"`} {
		if !bytes.Contains(page.Body, []byte(want)) {
			t.Errorf("panel lacks %q", want)
		}
	}
	if bytes.Contains(page.Body, []byte(muPlain)) {
		t.Error("panel shows another user's membership")
	}
	renewable := tokenInPage(t, page)
	if r := oidcRefresh(t, ts, "ws", renewable); r.Status != 200 {
		t.Fatalf("panel token does not renew: %d %s", r.Status, r.Body)
	}
	csrf = csrfIn(t, page)

	// Another session of the same user, from the token endpoint.
	other := passwordRefreshToken(t, ts, "ws", "uimu", "uimu-password")
	otherSID := claims(t, other)["sid"].(string)
	page = p.get()
	if !bytes.Contains(page.Body, []byte(otherSID)) || !bytes.Contains(page.Body, []byte("ws-cli")) {
		t.Fatal("second session not listed")
	}
	// Ending it needs the CSRF token.
	if r := p.post("sessions/end", url.Values{"session": {otherSID}}); r.Status != 403 {
		t.Fatalf("end without CSRF: %d", r.Status)
	}
	if r := p.post("sessions/end", url.Values{"session": {otherSID}, "csrf": {"x" + csrf[1:]}}); r.Status != 403 {
		t.Fatalf("end with a wrong CSRF token: %d", r.Status)
	}
	if r := oidcRefresh(t, ts, "ws", other); r.Status != 200 {
		t.Fatalf("session ended by a refused request: %d", r.Status)
	}
	if r := p.post("sessions/end", url.Values{"session": {otherSID}, "csrf": {csrf}}); r.Status != 303 {
		t.Fatalf("end session: %d %s", r.Status, r.Body)
	}
	if r := oidcRefresh(t, ts, "ws", other); r.Status != 401 {
		t.Fatalf("ended session still renews: %d", r.Status)
	}
	if page := p.get(); bytes.Contains(page.Body, []byte(otherSID)) {
		t.Fatal("ended session still listed")
	}
	// Someone else's session cannot be ended from here.
	plainRT := passwordRefreshToken(t, ts, "ws", "plain", "plain-password")
	if r := p.post("sessions/end", url.Values{"session": {claims(t, plainRT)["sid"].(string)}, "csrf": {csrf}}); r.Status != 404 {
		t.Fatalf("ending another user's session: %d", r.Status)
	}
	if r := postForm(t, ts.oidc("ws", "token"), url.Values{"grant_type": {"refresh_token"}, "client_id": {"ws-cli"}, "refresh_token": {plainRT}}); r.Status != 200 {
		t.Fatalf("other user's session harmed: %d", r.Status)
	}
	// Ending the current session signs out.
	currentSID := claims(t, renewable)["sid"].(string)
	if r := p.post("sessions/end", url.Values{"session": {currentSID}, "csrf": {csrf}}); r.Status != 303 {
		t.Fatalf("end current session: %d", r.Status)
	}
	if page := p.get(); !bytes.Contains(page.Body, []byte(`action="/portal/login"`)) {
		t.Fatal("not signed out after ending the current session")
	}
	if r := oidcRefresh(t, ts, "ws", renewable); r.Status != 401 {
		t.Fatalf("token of the ended portal session: %d", r.Status)
	}

	// An unflagged account sees no token; signing out ends its session.
	q := newPortalClient(t, ts, "/portal/")
	q.signIn("plain", "plain-password")
	page = q.get()
	if bytes.Contains(page.Body, []byte("renewable-token")) || bytes.Contains(page.Body, []byte("<script")) || !bytes.Contains(page.Body, []byte(muPlain)) {
		t.Fatal("unflagged account's panel wrong")
	}
	if r := q.post("logout", url.Values{"csrf": {csrfIn(t, page)}}); r.Status != 303 {
		t.Fatalf("sign out: %d", r.Status)
	}
	if page := q.get(); !bytes.Contains(page.Body, []byte(`action="/portal/login"`)) {
		t.Fatal("still signed in after signing out")
	}

	// The realm-scoped portal answers too, with its own cookie path.
	rp := newPortalClient(t, ts, "/realms/wsrot/portal/")
	rp.signIn("uimu", "uimu-password")
	if page := rp.get(); !bytes.Contains(page.Body, []byte(muGail)) {
		t.Fatal("realm portal panel lacks memberships")
	}
	if r := getURL(t, ts.URL+"/realms/nope/portal/"); r.Status != 404 {
		t.Fatalf("portal of an unknown realm: %d", r.Status)
	}
	if strings.Contains(logs.String(), renewable) {
		t.Fatal("token in the log")
	}
}
