package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
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

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/server"
)

// defaultPostgresURL is the PostgreSQL this machine runs;
// GATEHOUSE_TEST_POSTGRES points the tests elsewhere.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// replicaBound is how soon a change on one replica must be honoured by
// another: the design's "within a second".
const replicaBound = time.Second

func postgresURL() string {
	if u := os.Getenv("GATEHOUSE_TEST_POSTGRES"); u != "" {
		return u
	}
	return defaultPostgresURL
}

// pgSchema creates an empty schema, dropped when the test ends (after
// every server the test started has closed), and returns a database URL
// whose search_path selects it. Without a reachable database the test is
// skipped, except in CI, where that is a failure.
func pgSchema(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, postgresURL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL not reachable (CI=true): %v", err)
		}
		t.Skipf("PostgreSQL not reachable (set GATEHOUSE_TEST_POSTGRES): %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "gh_e2e_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = conn.Close(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		_ = conn.Close(ctx)
	})
	return withSearchPath(t, postgresURL(), schema)
}

// withSearchPath adds search_path to a URL or key=value connection string.
func withSearchPath(t *testing.T, dsn, schema string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

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
	dbURL := pgSchema(t)
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

	t.Run("LogoutOnARefusedOnB", func(t *testing.T) {
		createUser(t, a, "issue3", "ub", pw)
		l := mustLogin(t, a, "issue3", "app", "ub", pw)
		at := l.str("access_token")
		// B has checked the token, so it sits in B's caches.
		if ui := userinfo(t, b, "issue3", at); ui.Status != 200 {
			t.Fatalf("B's userinfo before logout: %d %s", ui.Status, ui.Body)
		}
		want200(t, "B's gateway before logout", gwReq(t, b, "GET", "/me", at))
		if !active(t, b, at) {
			t.Fatal("B's introspection: inactive before logout")
		}
		lo := postForm(t, a.oidc("issue3", "logout"), url.Values{"client_id": {"app"}, "refresh_token": {l.str("refresh_token")}})
		if lo.Status != 204 {
			t.Fatalf("logout on A: %d %s", lo.Status, lo.Body)
		}
		within(t, "B refuses the logged-out token", func() bool {
			return userinfo(t, b, "issue3", at).Status == 401 &&
				gwReq(t, b, "GET", "/me", at).Status == 401 &&
				!active(t, b, at)
		})
	})

	t.Run("RevokeOnAHonouredByB", func(t *testing.T) {
		createUser(t, a, "issue3", "uc", pw)
		l := mustLogin(t, a, "issue3", "app", "uc", pw)
		at := l.str("access_token")
		if ui := userinfo(t, b, "issue3", at); ui.Status != 200 {
			t.Fatalf("B's userinfo before revocation: %d %s", ui.Status, ui.Body)
		}
		want200(t, "B's gateway before revocation", gwReq(t, b, "GET", "/me", at))
		rv := postForm(t, a.oidc("issue3", "revoke"), form("token", at, "token_type_hint", "access_token", "client_id", "app"))
		if rv.Status != 200 {
			t.Fatalf("revoke on A: %d %s", rv.Status, rv.Body)
		}
		within(t, "B refuses the revoked token", func() bool {
			return userinfo(t, b, "issue3", at).Status == 401 &&
				gwReq(t, b, "GET", "/me", at).Status == 401 &&
				!active(t, b, at)
		})
	})

	t.Run("SessionLimitAcrossReplicas", func(t *testing.T) {
		createUser(t, a, "issue3", "ud", pw)
		const n = 50
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
				res[i] = tryPost(ts.oidc("issue3", "token"), form("grant_type", "password", "client_id", "app", "username", "ud", "password", pw))
			}()
		}
		wg.Wait()
		ok := 0
		for _, r := range res {
			switch {
			case r.err != nil:
				t.Errorf("login: %v", r.err)
			case r.status == 200:
				ok++
			case r.status == 400 && r.str("error") == "invalid_grant":
			default:
				t.Errorf("login: unexpected %d %v", r.status, r.json)
			}
		}
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
				res[i] = tryPost(ts.oidc("issue3", "token"), form("grant_type", "refresh_token", "client_id", "app", "refresh_token", rt))
			}()
		}
		wg.Wait()
		ok := 0
		for _, r := range res {
			switch {
			case r.err != nil:
				t.Errorf("refresh: %v", r.err)
			case r.status == 200:
				ok++
			case r.status == 400 && r.str("error") == "invalid_grant":
			default:
				t.Errorf("refresh: unexpected %d %v", r.status, r.json)
			}
		}
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
	dbURL := pgSchema(t)
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

// tokenKid is the kid in a JWT's header.
func tokenKid(t *testing.T, jwt string) string {
	t.Helper()
	h, _, _ := strings.Cut(jwt, ".")
	b, err := decodeSegment(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	kid, _ := m["kid"].(string)
	return kid
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
