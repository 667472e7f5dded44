package core_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/store"
)

type storeUser = store.User

func TestEnsurePortalClient(t *testing.T) {
	svc := newRenewService(t, false)
	ctx := context.Background()
	for i := 0; i < 2; i++ { // idempotent
		if err := svc.EnsurePortalClient(ctx, "ws"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := svc.Store().GetClient(ctx, "ws", core.PortalClientID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Public || !c.Enabled || len(c.SecretHash) != 0 {
		t.Fatalf("portal client %+v", c)
	}
	if err := svc.EnsurePortalClient(ctx, "no-such-realm"); err == nil {
		t.Fatal("portal client created in a realm that does not exist")
	}
}

func TestPortalSessions(t *testing.T) {
	svc := newRenewService(t, false)
	ctx := context.Background()
	if err := svc.EnsurePortalClient(ctx, "ws"); err != nil {
		t.Fatal(err)
	}
	u, e := svc.CheckPassword(ctx, "ws", "renny", "renny-pw", "192.0.2.1")
	if e != nil {
		t.Fatal(e)
	}
	one, e := svc.Login(ctx, core.LoginRequest{Realm: "ws", ClientID: core.PortalClientID, UserID: u.ID, Scope: "openid", IP: "192.0.2.1", UserAgent: "test"})
	if e != nil {
		t.Fatal(e)
	}
	two := passwordLogin(t, svc, "app", "", "renny", "renny-pw", "")
	other := passwordLogin(t, svc, "app", "", "plain", "plain-pw", "")

	sess, su, e := svc.ActiveSession(ctx, "ws", one.SessionState)
	if e != nil {
		t.Fatal(e)
	}
	if su.ID != u.ID || sess.ClientID != core.PortalClientID || sess.IP != "192.0.2.1" {
		t.Fatalf("session %+v user %s", sess, su.ID)
	}
	list, e := svc.UserSessions(ctx, "ws", u.ID)
	if e != nil {
		t.Fatal(e)
	}
	if len(list) != 2 {
		t.Fatalf("%d sessions, want 2", len(list))
	}

	// Someone else's session cannot be ended, and looks like none.
	wantErr(t, svc.EndUserSession(ctx, "ws", u.ID, other.SessionState), 404, core.NotFound)
	if _, _, e := svc.ActiveSession(ctx, "ws", other.SessionState); e != nil {
		t.Fatal("other user's session ended")
	}
	if e := svc.EndUserSession(ctx, "ws", u.ID, two.SessionState); e != nil {
		t.Fatal(e)
	}
	wantErr(t, svc.EndUserSession(ctx, "ws", u.ID, two.SessionState), 404, core.NotFound)
	if _, _, e := svc.ActiveSession(ctx, "ws", two.SessionState); e == nil {
		t.Fatal("ended session still active")
	}
	if list, _ := svc.UserSessions(ctx, "ws", u.ID); len(list) != 1 || list[0].ID != one.SessionState {
		t.Fatalf("sessions after end: %+v", list)
	}
	if _, _, e := svc.ActiveSession(ctx, "ws", ""); e == nil {
		t.Fatal("empty sid active")
	}
}
