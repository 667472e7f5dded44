package core_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/coretest"
	"github.com/gatehouse/gatehouse/internal/store"
)

const appsRealm = `{
  "realm": "apps", "enabled": true, "registrationAllowed": true, "verifyEmail": true,
  "accessTokenLifespan": 300, "ssoSessionIdleTimeout": 1800, "ssoSessionMaxLifespan": 36000,
  "roles": {"realm": [
    {"name": "Consumer", "attributes": {"scopes": ["todo, consumer"]}},
    {"name": "Admin", "composites": {"realm": ["Consumer"]}, "attributes": {"scopes": ["admin"]}}
  ]},
  "defaultRoles": ["Consumer"],
  "gatehouse": {"maxAppsPerUser": 4},
  "users": [
    {"username": "owner", "enabled": true, "email": "owner@example.com", "realmRoles": ["Admin"],
     "credentials": [{"type": "password", "value": "owner-pw"}]},
    {"username": "stranger", "enabled": true,
     "credentials": [{"type": "password", "value": "stranger-pw"}]}
  ]
}`

// appsClock is a settable clock for expiry tests.
type appsClock struct{ ns atomic.Int64 }

func (c *appsClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *appsClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newAppsClock() *appsClock           { c := &appsClock{}; c.ns.Store(time.Now().UnixNano()); return c }
func appsUser(t *testing.T, s *core.Service, name string) store.User {
	t.Helper()
	u, err := s.Store().GetUserByUsername(context.Background(), "apps", name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newAppsService(t *testing.T, clock *appsClock) *core.Service {
	t.Helper()
	return coretest.New(t, appsRealm, coretest.WithClock(clock.now))
}

func coreErr(t *testing.T, err error, status int, msgPart string) {
	t.Helper()
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Status != status || !strings.Contains(ce.Description, msgPart) {
		t.Fatalf("error %v, want status %d with %q", err, status, msgPart)
	}
}

func TestUserScopesFollowRolesAndComposites(t *testing.T) {
	s := newAppsService(t, newAppsClock())
	got, err := s.UserScopes(context.Background(), "apps", appsUser(t, s, "owner").ID)
	if err != nil || strings.Join(got, " ") != "admin consumer todo" {
		t.Fatalf("owner scopes %v %v", got, err)
	}
	// The default role counts for users who were never given it.
	got, _ = s.UserScopes(context.Background(), "apps", appsUser(t, s, "stranger").ID)
	if strings.Join(got, " ") != "consumer todo" {
		t.Fatalf("stranger scopes %v", got)
	}
}

func TestCreateAppLimitIsRaceFree(t *testing.T) {
	s := newAppsService(t, newAppsClock())
	ctx := context.Background()
	owner := appsUser(t, s, "owner")
	var wg sync.WaitGroup
	var ok, refused atomic.Int32
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.CreateApp(ctx, "apps", owner.ID, "app", []string{"todo"})
			var ce *core.Error
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &ce) && strings.Contains(ce.Description, "Maximal amount"):
				refused.Add(1)
			default:
				t.Errorf("unexpected %v", err)
			}
		}()
	}
	wg.Wait()
	apps, err := s.ListApps(ctx, "apps", owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 4 || refused.Load() != 8 || len(apps) != 4 {
		t.Fatalf("created %d, refused %d, stored %d; want 4, 8, 4", ok.Load(), refused.Load(), len(apps))
	}
}

func TestCreateAppDecisions(t *testing.T) {
	clock := newAppsClock()
	s := newAppsService(t, clock)
	ctx := context.Background()
	owner, stranger := appsUser(t, s, "owner"), appsUser(t, s, "stranger")

	c, secret, err := s.CreateApp(ctx, "apps", stranger.ID, "mine", []string{"todo admin", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Scopes, " ") != "todo" || c.OwnerUserID != stranger.ID || c.ServiceAccountUserID != stranger.ID {
		t.Fatalf("app %+v: scopes must be cut to the owner's, the app must act as its owner", c)
	}
	if len(c.SecretHash) == 0 || strings.Contains(string(c.SecretHash), secret) || len(secret) < 40 {
		t.Fatal("secret must be stored only as its keyed hash")
	}
	stored, err := s.Store().GetClient(ctx, "apps", c.ClientID)
	if err != nil || c.Attributes["client_credentials.use_refresh_token"] != "true" || string(stored.SecretHash) != string(c.SecretHash) {
		t.Fatalf("stored app %+v %v", stored, err)
	}
	_, _, err = s.CreateApp(ctx, "apps", stranger.ID, "x", []string{"admin"})
	coreErr(t, err, 400, "at least one valid scope")
	_, _, err = s.CreateApp(ctx, "apps", stranger.ID, "bad\nname", []string{"todo"})
	coreErr(t, err, 400, "Invalid name")

	// The app's token: its owner's, with the app's scopes only.
	resp, err := s.AppToken(ctx, core.AppTokenRequest{Realm: "apps", GrantType: "client_credentials", BasicID: c.ClientID, BasicSecret: secret})
	if err != nil || strings.Join(resp.Scopes, ",") != "todo" || resp.RefreshToken == "" {
		t.Fatalf("app token %+v %v", resp, err)
	}
	p, err := s.Authenticate(ctx, "apps", resp.AccessToken)
	if err != nil || p.Subject != stranger.ID || !p.HasScope("todo") || p.HasScope("consumer") || len(p.RealmRoles) != 0 {
		t.Fatalf("principal %+v %v", p, err)
	}

	// Only the owner revokes; for anyone else the app does not exist.
	coreErr(t, s.RevokeApp(ctx, "apps", owner.ID, c.ClientID), 404, "Could not find app")
	if err := s.RevokeApp(ctx, "apps", stranger.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "apps", resp.AccessToken); err == nil {
		t.Fatal("a revoked app's token still authenticates")
	}
	_, err = s.AppToken(ctx, core.AppTokenRequest{Realm: "apps", GrantType: "client_credentials", BasicID: c.ClientID, BasicSecret: secret})
	coreErr(t, err, 401, "")
}

func TestAppSlotsOfDeletedAppsAreFreed(t *testing.T) {
	clock := newAppsClock()
	s := newAppsService(t, clock)
	ctx := context.Background()
	owner := appsUser(t, s, "owner")
	var ids []string
	for i := 0; i < 4; i++ {
		c, _, err := s.CreateApp(ctx, "apps", owner.ID, "a", []string{"todo"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ClientID)
	}
	// An admin deletes an app behind the portal's back.
	if err := s.Store().DeleteClient(ctx, "apps", ids[0]); err != nil {
		t.Fatal(err)
	}
	// Within the grace minute the slot may still be a creation in flight.
	_, _, err := s.CreateApp(ctx, "apps", owner.ID, "a", []string{"todo"})
	coreErr(t, err, 400, "Maximal amount of apps reached (4)")
	clock.add(2 * time.Minute)
	if _, _, err := s.CreateApp(ctx, "apps", owner.ID, "a", []string{"todo"}); err != nil {
		t.Fatalf("slot of a deleted app not freed: %v", err)
	}
}

func TestRegisterActivate(t *testing.T) {
	clock := newAppsClock()
	s := newAppsService(t, clock)
	ctx := context.Background()
	reg := core.Registration{Realm: "apps", Username: "Newbie", Email: "Newbie@Example.com", Password: "n3wbie-Secret"}

	// Without a way to deliver the token, nothing is stored.
	_, err := s.Register(ctx, reg, nil)
	coreErr(t, err, 503, "no mail server")
	// A failed delivery undoes the registration.
	_, err = s.Register(ctx, reg, func(context.Context, store.User, string) error { return errors.New("smtp down") })
	coreErr(t, err, 503, "could not be sent")
	if _, err := s.Store().GetUserByUsername(ctx, "apps", "newbie"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("undelivered registration left a user: %v", err)
	}
	// The failed try still holds its short claim on the address.
	reg.Email = "Newbie2@Example.com"
	var token string
	u, err := s.Register(ctx, reg, func(_ context.Context, u store.User, tok string) error { token = tok; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "newbie" || u.Email != "newbie2@example.com" || u.EmailVerified || strings.Join(u.RealmRoles, ",") != "Consumer" {
		t.Fatalf("registered user %+v", u)
	}
	stored := appsUser(t, s, "newbie")
	if strings.Contains(strings.Join(stored.Attributes["gatehouse.activation"], ""), token) || token == "" {
		t.Fatal("activation token stored in the clear")
	}
	if _, e := s.CheckPassword(ctx, "apps", "newbie", "n3wbie-Secret", ""); e == nil {
		t.Fatal("login before activation")
	}
	coreErr(t, s.Activate(ctx, "apps", token+"x"), 400, "Invalid")
	coreErr(t, s.Activate(ctx, "apps", "nobody.x"), 400, "Invalid")
	coreErr(t, s.Activate(ctx, "apps", "garbage"), 400, "Invalid")
	if err := s.Activate(ctx, "apps", token); err != nil {
		t.Fatal(err)
	}
	coreErr(t, s.Activate(ctx, "apps", token), 400, "Invalid")
	if _, e := s.CheckPassword(ctx, "apps", "newbie", "n3wbie-Secret", ""); e != nil {
		t.Fatalf("login after activation: %v", e)
	}

	// Tokens expire after a day.
	reg2 := core.Registration{Realm: "apps", Username: "late", Email: "late@example.com", Password: "l4te-Secret"}
	if _, err := s.Register(ctx, reg2, func(_ context.Context, _ store.User, tok string) error { token = tok; return nil }); err != nil {
		t.Fatal(err)
	}
	clock.add(core.ActivationTTL + time.Second)
	coreErr(t, s.Activate(ctx, "apps", token), 400, "expired")

	_, err = s.Register(ctx, core.Registration{Realm: "apps", Username: "owner", Email: "o2@example.com", Password: "0wner-Secret"}, func(context.Context, store.User, string) error { return nil })
	coreErr(t, err, 409, "User already exists")
}

func TestPasswordPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy, user, email, pw string
		want                    []string // reasons, in order; nil: passes
	}{
		{"length(8)", "u", "", "short1", []string{"minimum length 8"}},
		{"length(8)", "u", "", "long-enough", nil},
		{"length(8) and digits(2) and upperCase and lowerCase(1) and specialChars(1)", "u", "", "zyxwvuts",
			[]string{"at least 2 numerical digits", "at least 1 upper case", "at least 1 special"}},
		{"notUsername(undefined) and notEmail", "Alice", "a@x.io", "alice", []string{"equal to the username"}},
		{"notEmail", "u", "a@x.io", "A@X.io", []string{"equal to the email"}},
		{"notContainsUsername", "bob", "", "xxBobxx1", []string{"contain the username"}},
		{"maxLength(5)", "u", "", "918273", []string{"maximum length 5"}},
		{"regexPattern(^[a-z]+[0-9]$)", "u", "", "abc1", nil},
		{"regexPattern([a-z]+)", "u", "", "abc1", []string{"pattern"}},
		{"hashIterations(27500) and passwordHistory(3)", "u", "", "x", nil},
		// The common list applies whatever the policy.
		{"", "u", "", "Password123", []string{"too common"}},
		{"passwordBlacklist(x.txt)", "u", "", "qwerty", []string{"too common"}},
	} {
		p, _ := core.ParsePasswordPolicy(tc.policy)
		got := p.Check(tc.user, tc.email, tc.pw)
		if len(got) != len(tc.want) {
			t.Errorf("%q %q: got %q, want %q", tc.policy, tc.pw, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.Contains(got[i], tc.want[i]) {
				t.Errorf("%q %q: reason %q, want %q", tc.policy, tc.pw, got[i], tc.want[i])
			}
		}
	}
	if _, err := core.ParsePasswordPolicy("length(x) and bogus and regexPattern(()"); err == nil {
		t.Error("problems in a policy must be reported")
	}
	if !core.IsCommonPassword("LetMeIn") || core.IsCommonPassword("correct horse battery staple 9") {
		t.Error("common password list")
	}
}

func TestRegistrationDefaultPolicy(t *testing.T) {
	s := newAppsService(t, newAppsClock())
	err := s.CheckPasswordPolicy(context.Background(), "apps", "newbie", "n@example.com", "newbie")
	coreErr(t, err, 400, "minimum length 8; must not be equal to the username.")
}

// fakeSMTP is a minimal SMTP server on loopback that records one message.
func fakeSMTP(t *testing.T) (addr string, got chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		say := func(s string) { _, _ = conn.Write([]byte(s + "\r\n")) }
		say("220 localhost ESMTP")
		var data strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO"):
				say("250-localhost")
				say("250 AUTH PLAIN")
			case strings.HasPrefix(cmd, "AUTH PLAIN"):
				say("235 ok")
			case strings.HasPrefix(cmd, "MAIL FROM"), strings.HasPrefix(cmd, "RCPT TO"):
				data.WriteString(strings.TrimSpace(line) + "\n")
				say("250 ok")
			case cmd == "DATA":
				say("354 go on")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					data.WriteString(l)
				}
				say("250 queued")
				got <- data.String()
			case cmd == "QUIT":
				say("221 bye")
				return
			default:
				say("250 ok")
			}
		}
	}()
	return ln.Addr().String(), got
}

func TestSMTPMailer(t *testing.T) {
	for _, bad := range []string{"http://h?from=a@b.c", "smtp://?from=a@b.c", "smtp://host", "smtp://host?from=nope", "::"} {
		if _, err := core.ParseSMTPURL(bad); err == nil {
			t.Errorf("ParseSMTPURL(%q) accepted", bad)
		}
	}
	if _, err := core.ParseSMTPURL("smtp://user:s3cret-pass@host?from=x"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v must not repeat the password", err)
	}
	addr, got := fakeSMTP(t)
	m, err := core.ParseSMTPURL("smtp://user:pass@" + addr + "?from=portal@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), "new@example.com", "Activate your account", "line one\nline two\n"); err != nil {
		t.Fatal(err)
	}
	msg := <-got
	for _, want := range []string{"MAIL FROM:<portal@example.com>", "RCPT TO:<new@example.com>", "Subject: Activate your account\r\n", "line one\r\nline two\r\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if err := m.Send(context.Background(), "a@b.c\r\nBcc: x@y.z", "s", "b"); err == nil {
		t.Error("header injection accepted")
	}
}
