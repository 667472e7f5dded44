package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/server"
)

// replicaBound is how soon a change on one replica must be honoured by
// another: the design's "within a second".
const replicaBound = time.Second

// masterKeyFile writes a fresh master key to a file of its own, to be
// shared by every replica of a test.
func masterKeyFile(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	p := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// answer is an HTTP answer a goroutine other than the test's may collect:
// no t.Fatal inside.
type answer struct {
	status int
	json   map[string]any
	err    error
}

func (a answer) str(k string) string { s, _ := a.json[k].(string); return s }

func tryPost(u string, form url.Values) answer {
	resp, err := http.PostForm(u, form)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, err: err}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// postAlternately sends n token requests with f at once, alternately to
// replicas a and b, and returns how many succeeded. Each refusal must be
// invalid_grant: the invariant under test, decided in the database.
func postAlternately(t *testing.T, a, b *testServer, what string, n int, f url.Values) int {
	t.Helper()
	res := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		ts := a
		if i%2 == 1 {
			ts = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = tryPost(ts.oidc("issue3", "token"), f)
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range res {
		switch {
		case r.err != nil:
			t.Errorf("%s: %v", what, r.err)
		case r.status == 200:
			ok++
		case r.status == 400 && r.str("error") == "invalid_grant":
		default:
			t.Errorf("%s: unexpected %d %v", what, r.status, r.json)
		}
	}
	return ok
}

// within polls ok every 10 ms until it holds or replicaBound has passed,
// and reports how long it took.
func within(t *testing.T, what string, ok func() bool) {
	t.Helper()
	start := time.Now()
	for {
		if ok() {
			t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > replicaBound {
			t.Fatalf("%s: not within %v", what, replicaBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPostgresReplicas runs two gatehouse servers on one PostgreSQL
// schema, as two replicas behind a load balancer would, and checks that
// what one decides the other honours: the invariants at once (they are
// decided in the database), the cached state within a second (it follows
// LISTEN/NOTIFY).
func TestPostgresReplicas(t *testing.T) {
	_, dbURL := pgtest.Schema(t, "gh_e2e_")
	keyFile := masterKeyFile(t)
	echo := httptest.NewServer(http.HandlerFunc(echoHandler))
	t.Cleanup(echo.Close)
	realm := realmVariant(t, "issue3-limits.json", func(m map[string]any) {
		m["revokeRefreshToken"] = true
		m["refreshTokenMaxReuse"] = 0
		m["gatehouse"] = map[string]any{"gateway": map[string]any{
			"operations": []any{map[string]any{"method": "GET", "path": "/me", "upstream": echo.URL}},
		}}
	})
	shared := func(c *server.Config) {
		c.DBURL, c.MasterKeyFile, c.DefaultRealm = dbURL, keyFile, "issue3"
	}
	a := startServer(t, []string{realm}, shared)
	// B answers on its own address but issues and accepts tokens under
	// A's URL: replicas share one public URL, the load balancer's.
	b := startServer(t, []string{realm}, shared, func(c *server.Config) { c.PublicURL = a.URL })
	const pw = "replica-pw"

	t.Run("LoginOnARefreshOnB", func(t *testing.T) {
		createUser(t, a, "issue3", "ua", pw)
		l := mustLogin(t, a, "issue3", "app", "ua", pw)
		r := refresh(t, b, "issue3", "app", l.str("refresh_token"))
		if r.Status != 200 {
			t.Fatalf("refresh on B of A's token: %d %s", r.Status, r.Body)
		}
		if ia, ib := claims(t, l.str("access_token"))["iss"], claims(t, r.str("access_token"))["iss"]; ia != ib {
			t.Errorf("issuers differ: A %v, B %v", ia, ib)
		}
		if ui := userinfo(t, a, "issue3", r.str("access_token")); ui.Status != 200 {
			t.Errorf("A's userinfo with B's token: %d %s", ui.Status, ui.Body)
		}
		// A's refresh token was rotated on B: A must refuse it too.
		if rr := refresh(t, a, "issue3", "app", l.str("refresh_token")); rr.Status != 400 {
			t.Errorf("A accepted the refresh token B rotated away: %d %s", rr.Status, rr.Body)
		}
	})

	// loginSeenByB logs a new user in on A and has B accept the access
	// token, so that it sits in B's caches before A ends it.
	loginSeenByB := func(t *testing.T, user, before string) *response {
		t.Helper()
		createUser(t, a, "issue3", user, pw)
		l := mustLogin(t, a, "issue3", "app", user, pw)
		at := l.str("access_token")
		if ui := userinfo(t, b, "issue3", at); ui.Status != 200 {
			t.Fatalf("B's userinfo before %s: %d %s", before, ui.Status, ui.Body)
		}
		want200(t, "B's gateway before "+before, gwReq(t, b, "GET", "/me", at))
		return l
	}
	// refusedByB waits until B's userinfo, gateway and introspection all
	// refuse at.
	refusedByB := func(t *testing.T, what, at string) {
		t.Helper()
		within(t, what, func() bool {
			return userinfo(t, b, "issue3", at).Status == 401 &&
				gwReq(t, b, "GET", "/me", at).Status == 401 &&
				!active(t, b, at)
		})
	}

	t.Run("LogoutOnARefusedOnB", func(t *testing.T) {
		l := loginSeenByB(t, "ub", "logout")
		at := l.str("access_token")
		if !active(t, b, at) {
			t.Fatal("B's introspection: inactive before logout")
		}
		lo := postForm(t, a.oidc("issue3", "logout"), url.Values{"client_id": {"app"}, "refresh_token": {l.str("refresh_token")}})
		if lo.Status != 204 {
			t.Fatalf("logout on A: %d %s", lo.Status, lo.Body)
		}
		refusedByB(t, "B refuses the logged-out token", at)
	})

	t.Run("RevokeOnAHonouredByB", func(t *testing.T) {
		at := loginSeenByB(t, "uc", "revocation").str("access_token")
		rv := postForm(t, a.oidc("issue3", "revoke"), form("token", at, "token_type_hint", "access_token", "client_id", "app"))
		if rv.Status != 200 {
			t.Fatalf("revoke on A: %d %s", rv.Status, rv.Body)
		}
		refusedByB(t, "B refuses the revoked token", at)
	})

	t.Run("SessionLimitAcrossReplicas", func(t *testing.T) {
		createUser(t, a, "issue3", "ud", pw)
		const n = 50
		ok := postAlternately(t, a, b, "login", n, form("grant_type", "password", "client_id", "app", "username", "ud", "password", pw))
		if ok != 5 {
			t.Errorf("%d of %d parallel logins succeeded, want exactly the limit, 5", ok, n)
		}
		if got := countSessions(t, b, "issue3", userID(t, b, "issue3", "ud")); got != 5 {
			t.Errorf("user has %d sessions, want 5", got)
		}
	})

	t.Run("RefreshOnceAcrossReplicas", func(t *testing.T) {
		createUser(t, a, "issue3", "ue", pw)
		rt := mustLogin(t, a, "issue3", "app", "ue", pw).str("refresh_token")
		const n = 20
		ok := postAlternately(t, a, b, "refresh", n, form("grant_type", "refresh_token", "client_id", "app", "refresh_token", rt))
		if ok != 1 {
			t.Errorf("%d of %d parallel refreshes of one token succeeded, want exactly 1", ok, n)
		}
	})

	t.Run("KeyRotationOnAReachesB", func(t *testing.T) {
		cc := func(ts *testServer) *response {
			t.Helper()
			r := postForm(t, ts.oidc("issue3", "token"), form("grant_type", "client_credentials"), basicAuth("api", "api-secret-3c1f0d9b7a"))
			if r.Status != 200 {
				t.Fatalf("client_credentials: %d %s", r.Status, r.Body)
			}
			return r
		}
		old := tokenKid(t, cc(b).str("access_token"))
		kid, err := a.Srv.Core.RotateKeys(context.Background(), "issue3", "")
		if err != nil {
			t.Fatal(err)
		}
		if kid == old {
			t.Fatalf("rotation kept kid %s", kid)
		}
		var last string
		within(t, "B signs with A's new key", func() bool {
			last = cc(b).str("access_token")
			return tokenKid(t, last) == kid && jwksHas(t, b, kid)
		})
		// The old key stays published, for the tokens it signed.
		if !jwksHas(t, b, old) {
			t.Errorf("B's JWKS dropped the previous key %s", old)
		}
		if !active(t, a, last) {
			t.Error("A rejects B's token signed with the new key")
		}
	})

	t.Run("ReplicaWithAnotherMasterKeyRefused", func(t *testing.T) {
		// It would start, report ready and fail every login with a 500.
		srv, err := server.Open(context.Background(), server.Config{
			DataDir: t.TempDir(), DBURL: dbURL, MasterKeyFile: masterKeyFile(t), PublicURL: a.URL, Passwords: fastPasswords,
		})
		if err == nil {
			_ = srv.Close(context.Background())
			t.Fatal("a replica with another master key started")
		}
		if !strings.Contains(err.Error(), "master key") {
			t.Errorf("error does not name the master key: %v", err)
		}
	})
}

// TestPostgresReplicasStartTogether: replicas started at the same moment
// on an empty database, each told to import the same realm and to create
// the demo realm, all start; one of them imports each realm.
func TestPostgresReplicasStartTogether(t *testing.T) {
	_, dbURL := pgtest.Schema(t, "gh_e2e_")
	keyFile := masterKeyFile(t)
	realm := filepath.Join("testdata", "issue3-limits.json")
	const n = 3
	errs := make([]error, n)
	srvs := make([]*server.Server, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvs[i], errs[i] = server.Open(context.Background(), server.Config{
				DataDir: t.TempDir(), DBURL: dbURL, MasterKeyFile: keyFile, PublicURL: "http://127.0.0.1:1",
				ImportRealms: []string{realm}, Demo: true, Passwords: fastPasswords,
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { _ = srvs[i].Close(context.Background()) })
	}
	for _, r := range []string{"issue3", server.DemoRealm} {
		for i, s := range srvs {
			if s == nil {
				continue
			}
			if ok, err := s.Core.RealmExists(context.Background(), r); err != nil || !ok {
				t.Errorf("replica %d: realm %s exists = %v, %v", i, r, ok, err)
			}
		}
	}
}

// jwksHas reports whether ts's JWKS for issue3 lists kid.
func jwksHas(t *testing.T, ts *testServer, kid string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.oidc("issue3", "certs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, req)
	if r.Status != 200 {
		t.Fatalf("certs: %d %s", r.Status, r.Body)
	}
	ks, _ := r.JSON["keys"].([]any)
	for _, k := range ks {
		if m, _ := k.(map[string]any); m["kid"] == kid {
			return true
		}
	}
	return false
}
