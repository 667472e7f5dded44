package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// rotationRealm is issue3-base.json with refresh rotation configured.
func rotationRealm(t *testing.T, revoke bool, maxReuse, graceSeconds int) string {
	return realmVariant(t, "issue3-base.json", func(m map[string]any) {
		m["revokeRefreshToken"] = revoke
		m["refreshTokenMaxReuse"] = maxReuse
		if graceSeconds > 0 {
			m["gatehouse"] = map[string]any{"refreshGraceSeconds": graceSeconds}
		}
	})
}

func sessionGone(t *testing.T, ts *testServer, sid string) bool {
	t.Helper()
	_, err := ts.Srv.Store.GetSession(context.Background(), "issue3", sid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return errors.Is(err, store.ErrNotFound)
}

func TestIssue3RefreshRotationParallel(t *testing.T) {
	for _, maxReuse := range []int{0, 2} {
		t.Run(fmt.Sprintf("maxReuse=%d", maxReuse), func(t *testing.T) {
			ts := startServer(t, []string{rotationRealm(t, true, maxReuse, 0)})
			l := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
			const n = 50
			res := make([]*response, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					res[i] = refresh(t, ts, "issue3", "app", l.str("refresh_token"))
				}(i)
			}
			wg.Wait()
			var winners []*response
			for _, r := range res {
				switch {
				case r.Status == 200:
					winners = append(winners, r)
				case r.Status == 400 && r.str("error") == "invalid_grant":
				default:
					t.Errorf("unexpected answer %d %s", r.Status, r.Body)
				}
			}
			if len(winners) != maxReuse+1 {
				t.Fatalf("%d refreshes succeeded, want exactly %d", len(winners), maxReuse+1)
			}
			if !sessionGone(t, ts, l.str("session_state")) {
				t.Fatal("session survived a stale refresh token")
			}
			for _, w := range winners {
				if r := refresh(t, ts, "issue3", "app", w.str("refresh_token")); r.Status != 400 || r.str("error") != "invalid_grant" {
					t.Errorf("winner's new refresh token after reuse detection: %d %s", r.Status, r.Body)
				}
				if active(t, ts, w.str("access_token")) {
					t.Error("winner's access token still active after reuse detection")
				}
			}
		})
	}
}

func TestIssue3RefreshRotationSequential(t *testing.T) {
	ts := startServer(t, []string{rotationRealm(t, true, 0, 0)})
	l := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
	r1 := refresh(t, ts, "issue3", "app", l.str("refresh_token"))
	if r1.Status != 200 {
		t.Fatalf("first refresh: %d %s", r1.Status, r1.Body)
	}
	if r1.str("refresh_token") == l.str("refresh_token") {
		t.Fatal("rotation on, but the same refresh token came back")
	}
	r2 := refresh(t, ts, "issue3", "app", l.str("refresh_token"))
	if r2.Status != 400 || r2.str("error") != "invalid_grant" || r2.str("error_description") != "Stale token" {
		t.Fatalf("reuse: %d %s, want 400 invalid_grant Stale token", r2.Status, r2.Body)
	}
	if !sessionGone(t, ts, l.str("session_state")) {
		t.Fatal("session survived reuse")
	}
	if r := refresh(t, ts, "issue3", "app", r1.str("refresh_token")); r.Status != 400 {
		t.Errorf("rotated token after reuse detection: %d %s", r.Status, r.Body)
	}
	if ui := userinfo(t, ts, "issue3", r1.str("access_token")); ui.Status != 401 {
		t.Errorf("access token of the ended session: userinfo %d", ui.Status)
	}

	// maxReuse 2: the token works three times, the fourth ends the session.
	ts2 := startServer(t, []string{rotationRealm(t, true, 2, 0)})
	l2 := mustLogin(t, ts2, "issue3", "app", "alice", "alice-pw")
	for i := 0; i < 3; i++ {
		if r := refresh(t, ts2, "issue3", "app", l2.str("refresh_token")); r.Status != 200 {
			t.Fatalf("use %d of 3: %d %s", i+1, r.Status, r.Body)
		}
	}
	if r := refresh(t, ts2, "issue3", "app", l2.str("refresh_token")); r.str("error_description") != "Stale token" {
		t.Fatalf("4th use: %d %s", r.Status, r.Body)
	}
}

func TestIssue3RefreshGraceWindow(t *testing.T) {
	ts := startServer(t, []string{rotationRealm(t, true, 0, 5)})
	l := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw", "scope", "openid")
	a := refresh(t, ts, "issue3", "app", l.str("refresh_token"))
	if a.Status != 200 {
		t.Fatalf("first refresh: %d %s", a.Status, a.Body)
	}
	time.Sleep(1100 * time.Millisecond) // a retry a little later still gets the same pair
	b := refresh(t, ts, "issue3", "app", l.str("refresh_token"))
	if b.Status != 200 {
		t.Fatalf("retry within the grace window: %d %s", b.Status, b.Body)
	}
	if a.str("refresh_token") != b.str("refresh_token") {
		t.Error("grace retry gave a different refresh token")
	}
	if a.str("access_token") != b.str("access_token") {
		t.Error("grace retry gave a different access token (RS256 signatures are deterministic)")
	}
	if a.str("id_token") != b.str("id_token") {
		t.Error("grace retry gave a different ID token")
	}
	ca, cb := claims(t, a.str("access_token")), claims(t, b.str("access_token"))
	for _, k := range []string{"jti", "iat", "exp", "sid"} {
		if fmt.Sprint(ca[k]) != fmt.Sprint(cb[k]) {
			t.Errorf("claim %s: %v then %v", k, ca[k], cb[k])
		}
	}
	if a.JSON["refresh_expires_in"] != b.JSON["refresh_expires_in"] || a.JSON["expires_in"] != b.JSON["expires_in"] {
		t.Errorf("lifetimes differ: %s / %s", a.Body, b.Body)
	}
	if sessionGone(t, ts, l.str("session_state")) {
		t.Fatal("session ended by a retry within the grace window")
	}
	// The pair works: the new refresh token rotates on.
	c := refresh(t, ts, "issue3", "app", b.str("refresh_token"))
	if c.Status != 200 {
		t.Fatalf("refresh with the re-issued token: %d %s", c.Status, c.Body)
	}
	// The first token is two generations old now: stale, session over.
	if r := refresh(t, ts, "issue3", "app", l.str("refresh_token")); r.str("error_description") != "Stale token" {
		t.Fatalf("two generations old: %d %s", r.Status, r.Body)
	}
	if !sessionGone(t, ts, l.str("session_state")) {
		t.Fatal("session survived a stale token")
	}
}

func TestIssue3RefreshGraceExpires(t *testing.T) {
	ts := startServer(t, []string{rotationRealm(t, true, 0, 1)})
	l := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
	if r := refresh(t, ts, "issue3", "app", l.str("refresh_token")); r.Status != 200 {
		t.Fatalf("first refresh: %d %s", r.Status, r.Body)
	}
	time.Sleep(2100 * time.Millisecond)
	if r := refresh(t, ts, "issue3", "app", l.str("refresh_token")); r.str("error_description") != "Stale token" {
		t.Fatalf("after the grace window: %d %s", r.Status, r.Body)
	}
	if !sessionGone(t, ts, l.str("session_state")) {
		t.Fatal("session survived reuse after the grace window")
	}
}

func TestIssue3RefreshRotationOff(t *testing.T) {
	ts := startServer(t, []string{rotationRealm(t, false, 0, 0)})
	l := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
	prev := l.str("refresh_token")
	for i := 0; i < 3; i++ {
		r := refresh(t, ts, "issue3", "app", l.str("refresh_token"))
		if r.Status != 200 {
			t.Fatalf("reuse %d of the first token: %d %s", i, r.Status, r.Body)
		}
		if r2 := refresh(t, ts, "issue3", "app", prev); r2.Status != 200 {
			t.Fatalf("previous token: %d %s", r2.Status, r2.Body)
		}
		prev = r.str("refresh_token")
	}
}
