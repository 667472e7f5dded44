package e2e

import (
	"bytes"
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
)

// sameAnswer fails unless a and b are the same status and body.
func sameAnswer(t *testing.T, what string, a, b *response) {
	t.Helper()
	if a.Status != b.Status || !bytes.Equal(a.Body, b.Body) {
		t.Errorf("%s: %d %s, but a wrong password gives %d %s", what, a.Status, a.Body, b.Status, b.Body)
	}
}

func lockOut(t *testing.T, ts *testServer, user string) *response {
	t.Helper()
	var wrong *response
	for i := 0; i < 3; i++ {
		wrong = login(t, ts, "issue3-bf", "app", user, "wrong-pw")
		if wrong.Status != 401 || wrong.str("error") != "invalid_grant" {
			t.Fatalf("wrong password %d: %d %s", i, wrong.Status, wrong.Body)
		}
	}
	return wrong
}

func TestIssue3BruteForceLockAndUnlock(t *testing.T) {
	t.Parallel()
	ts := startServer(t, []string{"issue3-bruteforce.json"})
	// Two failures do not lock.
	login(t, ts, "issue3-bf", "app", "victor", "wrong-pw")
	login(t, ts, "issue3-bf", "app", "victor", "wrong-pw")
	mustLogin(t, ts, "issue3-bf", "app", "victor", "right-pw")

	wrong := lockOut(t, ts, "mallory")
	right := login(t, ts, "issue3-bf", "app", "mallory", "right-pw")
	sameAnswer(t, "locked user, right password", right, wrong)
	sameAnswer(t, "unknown user", login(t, ts, "issue3-bf", "app", "nobody", "x"), wrong)
	// Another user is not affected.
	mustLogin(t, ts, "issue3-bf", "app", "victor", "right-pw")

	if err := ts.Srv.Core.Unlock(context.Background(), "issue3-bf", "mallory"); err != nil {
		t.Fatal(err)
	}
	mustLogin(t, ts, "issue3-bf", "app", "mallory", "right-pw")
}

func TestIssue3BruteForcePermanentLockoutAndCLIUnlock(t *testing.T) {
	t.Parallel()
	realm := realmVariant(t, "issue3-bruteforce.json", func(m map[string]any) { m["permanentLockout"] = true })
	ts := startServer(t, []string{realm})
	wrong := lockOut(t, ts, "mallory")
	lf, err := ts.Srv.Store.GetLoginFailure(context.Background(), "issue3-bf", userID(t, ts, "issue3-bf", "mallory"))
	if err != nil || !lf.LockedForever {
		t.Fatalf("login failure record %+v, %v: want LockedForever", lf, err)
	}
	sameAnswer(t, "permanently locked, right password", login(t, ts, "issue3-bf", "app", "mallory", "right-pw"), wrong)

	// The admin command unlocks, against the data directory of a stopped
	// server.
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := boundedCommand(t, bin, "users", "unlock", "--realm", "issue3-bf", "--username", "Mallory", "--data", ts.Data).CombinedOutput()
	if err != nil {
		t.Fatalf("gatehouse users unlock: %v\n%s", err, out)
	}
	ts2 := startServerAt(t, ts.Data, nil)
	mustLogin(t, ts2, "issue3-bf", "app", "mallory", "right-pw")
	if out, err := boundedCommand(t, bin, "users", "unlock", "--realm", "issue3-bf", "--username", "ghost", "--data", t.TempDir()).CombinedOutput(); err == nil {
		t.Errorf("unlocking an unknown user succeeded: %s", out)
	}
}

// TestIssue3LockedPathVerifiesPassword checks, without a clock, that a
// locked account still pays for a full password verification: with a
// 16 MiB argon2id hash every verification allocates at least 16 MiB, so a
// request that skipped it would allocate far less (the control below).
func TestIssue3LockedPathVerifiesPassword(t *testing.T) {
	const mem = 16 * 1024 // KiB
	ts := startServer(t, []string{"issue3-bruteforce.json"}, func(c *server.Config) {
		c.Passwords = password.Params{Memory: mem, Iterations: 1, Parallelism: 1, KeyLen: 32, SaltLen: 16}
	})
	wrong := lockOut(t, ts, "mallory")
	allocs := func(f func() *response) (uint64, *response) {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		r := f()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc, r
	}
	const floor = mem * 1024
	n, r := allocs(func() *response { return login(t, ts, "issue3-bf", "app", "mallory", "right-pw") })
	sameAnswer(t, "locked", r, wrong)
	if n < floor {
		t.Errorf("locked login allocated %d bytes: the password was not verified", n)
	}
	if n, _ = allocs(func() *response { return login(t, ts, "issue3-bf", "app", "nobody", "pw") }); n < floor {
		t.Errorf("unknown-user login allocated %d bytes: no dummy verification", n)
	}
	// Control: a request refused before any password check.
	n, r = allocs(func() *response { return login(t, ts, "issue3-bf", "no-such-client", "mallory", "right-pw") })
	if r.Status != 401 || n >= floor/4 {
		t.Errorf("control: %d, %d bytes; the measurement cannot tell verification apart", r.Status, n)
	}
}

func TestIssue3RateLimit(t *testing.T) {
	t.Parallel()
	form := url.Values{"grant_type": {"password"}, "client_id": {"app"}, "username": {"victor"}, "password": {"right-pw"}}
	limited := startServer(t, []string{"issue3-bruteforce.json"}, func(c *server.Config) {
		c.RateLimit, c.RateBurst, c.RateLimitLoopback = 2, 2, true
	})
	for i := 0; i < 2; i++ {
		if r := postForm(t, limited.oidc("issue3-bf", "token"), form); r.Status != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, r.Status, r.Body)
		}
	}
	r := postForm(t, limited.oidc("issue3-bf", "token"), form)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" || r.str("error") == "" {
		t.Fatalf("third request: %d %s Retry-After=%q, want 429 with Retry-After", r.Status, r.Body, r.Header.Get("Retry-After"))
	}

	open := startServer(t, []string{"issue3-bruteforce.json"})
	for i := 0; i < 20; i++ {
		if r := postForm(t, open.oidc("issue3-bf", "token"), form); r.Status == 429 {
			t.Fatalf("request %d got 429 without a configured rate limit", i)
		}
	}
}
