package coretest_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/coretest"
)

const realm = `{
  "realm": "ct", "enabled": true,
  "clients": [{"clientId": "app", "publicClient": true, "directAccessGrantsEnabled": true}],
  "users": [{"username": "u", "enabled": true, "credentials": [{"type": "password", "value": "u-pw"}]}]
}`

func TestNewImportsTheRealmAndLogsIn(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	svc := coretest.New(t, realm, coretest.WithClock(func() time.Time { return at }))
	resp, err := svc.Token(context.Background(), core.TokenRequest{Realm: "ct", GrantType: core.GrantPassword,
		Client: core.ClientAuth{ClientID: "app"}, Username: "u", Password: "u-pw"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(context.Background(), "ct", resp.AccessToken)
	if err != nil {
		t.Fatalf("the service refuses its own token: %v", err)
	}
	if !p.IssuedAt.Equal(at) {
		t.Errorf("token issued at %v, want the test clock's %v", p.IssuedAt, at)
	}
}

func TestNewWithoutRealmThenImport(t *testing.T) {
	svc := coretest.New(t, "")
	ctx := context.Background()
	if ok, err := svc.RealmExists(ctx, "ct"); err != nil || ok {
		t.Fatalf("realm before import: %v %v", ok, err)
	}
	coretest.Import(t, svc, realm)
	if ok, err := svc.RealmExists(ctx, "ct"); err != nil || !ok {
		t.Fatalf("realm after import: %v %v", ok, err)
	}
}
