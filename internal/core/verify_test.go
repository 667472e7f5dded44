package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/coretest"
	"github.com/gatehouse/gatehouse/internal/store"
)

const notBeforeRealm = `{"realm": "nb", "enabled": true,
  "clients": [{"clientId": "svc", "secret": "svc-secret", "serviceAccountsEnabled": true}]}`

// A not-before policy (the realm's or the user's), or a disabled realm,
// must stop tokens the bearer check has already cached, not only tokens it has not seen yet.
func TestPolicyChangesReachCachedTokens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*store.Realm)
	}{
		{"not-before", func(r *store.Realm) { r.Settings.NotBefore = time.Now().Add(time.Hour).Unix() }},
		{"realm disabled", func(r *store.Realm) { r.Enabled = false }},
		{"user not-before", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := coretest.New(t, notBeforeRealm)
			ctx := context.Background()
			resp, err := svc.Token(ctx, core.TokenRequest{Realm: "nb", GrantType: core.GrantClientCredentials,
				Client: core.ClientAuth{ClientID: "svc", Secret: "svc-secret"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Authenticate(ctx, "nb", resp.AccessToken); err != nil {
				t.Fatalf("fresh token refused: %v", err)
			}
			if tc.change != nil {
				err = svc.Store().UpdateRealm(ctx, "nb", func(r store.Realm) (store.Realm, error) {
					tc.change(&r)
					return r, nil
				})
			} else {
				p, _ := svc.Authenticate(ctx, "nb", resp.AccessToken)
				err = svc.Store().UpdateUser(ctx, "nb", p.Subject, func(u store.User) (store.User, error) {
					u.NotBefore = time.Now().Add(time.Hour).Unix()
					return u, nil
				})
			}
			if err != nil {
				t.Fatal(err)
			}
			// The realm change reaches the core through the change feed.
			deadline := time.Now().Add(2 * time.Second)
			for {
				_, err := svc.Authenticate(ctx, "nb", resp.AccessToken)
				if err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("cached token still accepted after the policy change")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
