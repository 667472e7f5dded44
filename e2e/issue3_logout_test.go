package e2e

import (
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIssue3LogoutIsImmediate: once logout (or revocation) has answered,
// the session's access token is refused by the very next request, even
// while other requests keep loading the session into the server's caches.
func TestIssue3LogoutIsImmediate(t *testing.T) {
	ts := startServer(t, []string{"issue3-base.json"})
	for i := 0; i < 40; i++ {
		l := mustLogin(t, ts, "issue3", "app", "alice", "alice-pw")
		at := l.str("access_token")
		var stop atomic.Bool
		var wg sync.WaitGroup
		// Readers load the session into the cache while refreshes
		// (each a session change) keep dropping it.
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					userinfo(t, ts, "issue3", at)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				refresh(t, ts, "issue3", "app", l.str("refresh_token"))
			}
		}()
		time.Sleep(5 * time.Millisecond)
		var lo *response
		if i%2 == 0 {
			lo = postForm(t, ts.oidc("issue3", "logout"), url.Values{"client_id": {"app"}, "refresh_token": {l.str("refresh_token")}})
		} else {
			lo = postForm(t, ts.oidc("issue3", "revoke"), url.Values{"client_id": {"app"}, "token": {l.str("refresh_token")}})
		}
		if lo.Status != 204 && lo.Status != 200 {
			t.Fatalf("logout: %d %s", lo.Status, lo.Body)
		}
		if r := userinfo(t, ts, "issue3", at); r.Status != 401 {
			t.Errorf("round %d: token accepted right after its session ended: %d", i, r.Status)
		}
		stop.Store(true)
		wg.Wait()
		if r := userinfo(t, ts, "issue3", at); r.Status != 401 {
			t.Fatalf("round %d: token still accepted after its session ended: %d", i, r.Status)
		}
	}
}
