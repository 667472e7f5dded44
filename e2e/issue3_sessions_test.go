package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// limitsRealm is issue3-limits.json with its user-session-limits
// authenticator config replaced.
func limitsRealm(t *testing.T, realmLimit, clientLimit, behavior string) string {
	return realmVariant(t, "issue3-limits.json", func(m map[string]any) {
		m["authenticatorConfig"] = []any{map[string]any{
			"alias": "limits",
			"config": map[string]any{
				"userRealmLimit": realmLimit, "userClientLimit": clientLimit, "behavior": behavior,
			},
		}}
	})
}

func userID(t *testing.T, ts *testServer, realm, username string) string {
	t.Helper()
	u, err := ts.Srv.Store.GetUserByUsername(context.Background(), realm, username)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func countSessions(t *testing.T, ts *testServer, realm, uid string) int {
	t.Helper()
	ss, err := ts.Srv.Store.ListUserSessions(context.Background(), realm, uid)
	if err != nil {
		t.Fatal(err)
	}
	return len(ss)
}

func TestIssue3SessionLimitDenyNew(t *testing.T) {
	ts := startServer(t, []string{"issue3-limits.json"})
	var rts []string
	for i := 0; i < 5; i++ {
		rts = append(rts, mustLogin(t, ts, "issue3", "app", "alice", "alice-pw").str("refresh_token"))
	}
	r := login(t, ts, "issue3", "app", "alice", "alice-pw")
	if r.Status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("6th login: %d %s, want 400 invalid_grant", r.Status, r.Body)
	}
	if d := r.str("error_description"); !strings.Contains(d, "5") || !strings.Contains(strings.ToLower(d), "limit") {
		t.Errorf("description %q does not name the limit", d)
	}
	// The five existing sessions are untouched.
	for i, rt := range rts {
		if rr := refresh(t, ts, "issue3", "app", rt); rr.Status != 200 {
			t.Errorf("session %d after the refused login: %d %s", i, rr.Status, rr.Body)
		}
	}
	if n := countSessions(t, ts, "issue3", userID(t, ts, "issue3", "alice")); n != 5 {
		t.Errorf("sessions = %d, want 5", n)
	}
	// Another user is not affected by alice's limit.
	mustLogin(t, ts, "issue3", "app", "bob", "bob-pw")
}

func TestIssue3SessionLimitTerminateOldest(t *testing.T) {
	ts := startServer(t, []string{limitsRealm(t, "5", "0", store.TerminateOldestSession)})
	var logins []*response
	for i := 0; i < 5; i++ {
		logins = append(logins, mustLogin(t, ts, "issue3", "app", "alice", "alice-pw"))
		if i == 1 {
			// Session times have one-second resolution: let the first
			// two be clearly older than the rest.
			time.Sleep(1100 * time.Millisecond)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	// Refreshing session 0 makes session 1 the least recently used.
	r0 := refresh(t, ts, "issue3", "app", logins[0].str("refresh_token"))
	if r0.Status != 200 {
		t.Fatalf("refresh of session 0: %d %s", r0.Status, r0.Body)
	}
	if !active(t, ts, logins[1].str("access_token")) {
		t.Fatal("session 1's access token inactive before the limit was hit")
	}
	mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")

	r1 := refresh(t, ts, "issue3", "app", logins[1].str("refresh_token"))
	if r1.Status != 400 || r1.str("error") != "invalid_grant" {
		t.Errorf("refresh of the oldest session: %d %s, want 400 invalid_grant", r1.Status, r1.Body)
	}
	if active(t, ts, logins[1].str("access_token")) {
		t.Error("the ended session's access token still introspects active")
	}
	if ui := userinfo(t, ts, "issue3", logins[1].str("access_token")); ui.Status != 401 {
		t.Errorf("userinfo with the ended session's token: %d", ui.Status)
	}
	for _, i := range []int{2, 3, 4} {
		if rr := refresh(t, ts, "issue3", "app", logins[i].str("refresh_token")); rr.Status != 200 {
			t.Errorf("session %d: %d %s", i, rr.Status, rr.Body)
		}
	}
	if rr := refresh(t, ts, "issue3", "app", r0.str("refresh_token")); rr.Status != 200 {
		t.Errorf("recently refreshed session 0: %d %s", rr.Status, rr.Body)
	}
	if n := countSessions(t, ts, "issue3", userID(t, ts, "issue3", "alice")); n != 5 {
		t.Errorf("sessions = %d, want 5", n)
	}
}

func TestIssue3SessionLimitPerClient(t *testing.T) {
	t.Run("deny", func(t *testing.T) {
		ts := startServer(t, []string{limitsRealm(t, "0", "2", store.DenyNewSession)})
		mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
		mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
		r := login(t, ts, "issue3", "app", "alice", "alice-pw")
		if r.Status != 400 || r.str("error") != "invalid_grant" || !strings.Contains(r.str("error_description"), "2") {
			t.Fatalf("3rd login to app: %d %s", r.Status, r.Body)
		}
		// The limit is per client: app2 still admits two.
		mustLogin(t, ts, "issue3", "app2", "alice", "alice-pw")
		mustLogin(t, ts, "issue3", "app2", "alice", "alice-pw")
		if r := login(t, ts, "issue3", "app2", "alice", "alice-pw"); r.Status != 400 {
			t.Fatalf("3rd login to app2: %d %s", r.Status, r.Body)
		}
	})
	t.Run("terminate", func(t *testing.T) {
		ts := startServer(t, []string{limitsRealm(t, "0", "2", store.TerminateOldestSession)})
		other := mustLogin(t, ts, "issue3", "app2", "alice", "alice-pw")
		first := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
		time.Sleep(1100 * time.Millisecond)
		mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
		mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
		if r := refresh(t, ts, "issue3", "app", first.str("refresh_token")); r.Status != 400 {
			t.Errorf("oldest app session survived: %d %s", r.Status, r.Body)
		}
		// app2's session is older still, but it is another client's.
		if r := refresh(t, ts, "issue3", "app2", other.str("refresh_token")); r.Status != 200 {
			t.Errorf("app2 session ended by app's limit: %d %s", r.Status, r.Body)
		}
		if n := countSessions(t, ts, "issue3", userID(t, ts, "issue3", "alice")); n != 3 {
			t.Errorf("sessions = %d, want 3 (2 app + 1 app2)", n)
		}
	})
}

// TestIssue3SessionLimitParallel: 50 logins at once for one user with a
// limit of 5 leave exactly 5 sessions, whichever the behaviour.
func TestIssue3SessionLimitParallel(t *testing.T) {
	for _, behavior := range []string{store.DenyNewSession, store.TerminateOldestSession} {
		t.Run(strings.ReplaceAll(behavior, " ", "_"), func(t *testing.T) {
			ts := startServer(t, []string{limitsRealm(t, "5", "0", behavior)})
			uid := userID(t, ts, "issue3", "alice")
			for round := 0; round < 3; round++ {
				const n = 50
				status := make([]int, n)
				var wg sync.WaitGroup
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						status[i] = login(t, ts, "issue3", "app", "alice", "alice-pw").Status
					}(i)
				}
				wg.Wait()
				ok, denied := 0, 0
				for _, s := range status {
					switch s {
					case 200:
						ok++
					case 400:
						denied++
					default:
						t.Errorf("round %d: unexpected status %d", round, s)
					}
				}
				if got := countSessions(t, ts, "issue3", uid); got != 5 {
					t.Errorf("round %d: %d sessions, want 5", round, got)
				}
				switch behavior {
				case store.DenyNewSession:
					// Each round starts with no session (see below).
					const want = 5
					if ok != want || denied != n-want {
						t.Errorf("round %d: %d admitted, %d denied; want %d, %d", round, ok, denied, want, n-want)
					}
				case store.TerminateOldestSession:
					if ok != n {
						t.Errorf("round %d: %d of %d logins admitted", round, ok, n)
					}
				}
				if behavior == store.DenyNewSession {
					if _, err := ts.Srv.Store.DeleteUserSessions(context.Background(), "issue3", uid); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}
