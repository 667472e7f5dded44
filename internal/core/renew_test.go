package core_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/coretest"
)

// renewRealm has a renewable and an ordinary user, a public and a
// confidential client; rotation is switched per test.
const renewRealm = `{
  "realm": "ws", "enabled": true, "revokeRefreshToken": %ROTATE%,
  "ssoSessionIdleTimeout": 1800, "ssoSessionMaxLifespan": 36000, "accessTokenLifespan": 300,
  "clients": [
    {"clientId": "app", "publicClient": true, "directAccessGrantsEnabled": true},
    {"clientId": "conf", "secret": "conf-secret", "directAccessGrantsEnabled": true}
  ],
  "users": [
    {"username": "renny", "enabled": true, "firstName": "Ren", "lastName": "Ewable",
     "attributes": {"gatehouse.renewable": ["true"]},
     "credentials": [{"type": "password", "value": "renny-pw"}]},
    {"username": "plain", "enabled": true,
     "credentials": [{"type": "password", "value": "plain-pw"}]}
  ]
}`

func newRenewService(t *testing.T, rotate bool) *core.Service {
	t.Helper()
	return coretest.New(t, strings.Replace(renewRealm, "%ROTATE%", strconv.FormatBool(rotate), 1))
}

func passwordLogin(t *testing.T, svc *core.Service, client, secret, user, pw, scope string) *core.TokenResponse {
	t.Helper()
	resp, err := svc.Token(context.Background(), core.TokenRequest{
		Realm: "ws", GrantType: core.GrantPassword,
		Client:   core.ClientAuth{ClientID: client, Secret: secret},
		Username: user, Password: pw, Scope: scope,
	})
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	return resp
}

func payload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func wantErr(t *testing.T, e *core.Error, status int, code string) {
	t.Helper()
	if e == nil {
		t.Fatalf("no error, want %d %s", status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("error %d %s (%s), want %d %s", e.Status, e.Code, e.Description, status, code)
	}
}

func TestRenewIDToken(t *testing.T) {
	svc := newRenewService(t, false)
	ctx := context.Background()
	// No openid at login: the renewal mints an ID token all the same.
	login := passwordLogin(t, svc, "app", "", "renny", "renny-pw", "")
	if login.IDToken != "" {
		t.Fatal("login without openid gave an ID token")
	}
	for i := 0; i < 3; i++ { // a non-rotating realm: the same token renews again
		res, e := svc.RenewIDToken(ctx, "ws", login.RefreshToken)
		if e != nil {
			t.Fatalf("renew %d: %v", i, e)
		}
		if res.SessionID != login.SessionState || res.Name != "renny" || res.RefreshToken == "" || res.ExpiresIn != 300 {
			t.Fatalf("renew %d: %+v", i, res)
		}
		c := payload(t, res.IDToken)
		if c["typ"] != "ID" || c["sid"] != login.SessionState || c["azp"] != "app" || c["iss"] != "http://127.0.0.1:8080/realms/ws" {
			t.Fatalf("ID token claims %v", c)
		}
		p, err := svc.AuthenticateAllowID(ctx, "ws", res.IDToken)
		if err != nil {
			t.Fatalf("renewed ID token not accepted: %v", err)
		}
		if p.TokenType != core.TypeID || p.Username != "" && p.Username != "renny" {
			t.Fatalf("principal %+v", p)
		}
		if _, err := svc.Authenticate(ctx, "ws", res.IDToken); err == nil {
			t.Fatal("ID token accepted where ID tokens are not")
		}
	}
}

func TestRenewIDTokenConfidentialClientWithoutSecret(t *testing.T) {
	svc := newRenewService(t, false)
	login := passwordLogin(t, svc, "conf", "conf-secret", "renny", "renny-pw", "openid")
	res, e := svc.RenewIDToken(context.Background(), "ws", login.RefreshToken)
	if e != nil {
		t.Fatal(e)
	}
	if payload(t, res.IDToken)["azp"] != "conf" {
		t.Fatal("ID token not for the token's own client")
	}
}

func TestRenewIDTokenRefusals(t *testing.T) {
	svc := newRenewService(t, false)
	ctx := context.Background()
	_, e := svc.RenewIDToken(ctx, "ws", "")
	wantErr(t, e, 400, core.InvalidRequest)
	_, e = svc.RenewIDToken(ctx, "ws", "not-a-token")
	wantErr(t, e, 401, core.InvalidToken)
	_, e = svc.RenewIDToken(ctx, "nope", "x")
	if e == nil || e.Status != 404 {
		t.Fatalf("unknown realm: %v", e)
	}

	plain := passwordLogin(t, svc, "app", "", "plain", "plain-pw", "openid")
	_, e = svc.RenewIDToken(ctx, "ws", plain.RefreshToken)
	wantErr(t, e, 400, core.InvalidGrant)
	if !strings.Contains(e.Description, "renewable") {
		t.Fatalf("description %q does not say why", e.Description)
	}
	// The refusal did not touch the session: the token still refreshes.
	if _, err := svc.Token(ctx, core.TokenRequest{Realm: "ws", GrantType: core.GrantRefreshToken,
		Client: core.ClientAuth{ClientID: "app"}, RefreshToken: plain.RefreshToken}); err != nil {
		t.Fatalf("refresh after refused renewal: %v", err)
	}

	// An access token is not a refresh token.
	renny := passwordLogin(t, svc, "app", "", "renny", "renny-pw", "openid")
	_, e = svc.RenewIDToken(ctx, "ws", renny.AccessToken)
	wantErr(t, e, 401, core.InvalidToken)
	// A tampered refresh token.
	_, e = svc.RenewIDToken(ctx, "ws", renny.RefreshToken[:len(renny.RefreshToken)-2]+"AA")
	wantErr(t, e, 401, core.InvalidToken)

	// An ended session: the token no longer renews.
	if e := svc.EndUserSession(ctx, "ws", payload(t, renny.AccessToken)["sub"].(string), renny.SessionState); e != nil {
		t.Fatal(e)
	}
	_, e = svc.RenewIDToken(ctx, "ws", renny.RefreshToken)
	wantErr(t, e, 401, core.InvalidToken)
}

func TestRenewIDTokenRotation(t *testing.T) {
	svc := newRenewService(t, true)
	ctx := context.Background()
	login := passwordLogin(t, svc, "app", "", "renny", "renny-pw", "openid")
	first, e := svc.RenewIDToken(ctx, "ws", login.RefreshToken)
	if e != nil {
		t.Fatal(e)
	}
	if first.RefreshToken == login.RefreshToken {
		t.Fatal("rotating realm gave the same refresh token back")
	}
	second, e := svc.RenewIDToken(ctx, "ws", first.RefreshToken)
	if e != nil {
		t.Fatalf("renew with the rotated token: %v", e)
	}
	// The first token, used again after its successor was used: reuse
	// detection ends the session, so neither works any more.
	_, e = svc.RenewIDToken(ctx, "ws", login.RefreshToken)
	wantErr(t, e, 401, core.InvalidToken)
	_, e = svc.RenewIDToken(ctx, "ws", second.RefreshToken)
	wantErr(t, e, 401, core.InvalidToken)
}

func TestRenewIDTokenDisabledUser(t *testing.T) {
	svc := newRenewService(t, false)
	ctx := context.Background()
	login := passwordLogin(t, svc, "app", "", "renny", "renny-pw", "")
	sub := payload(t, login.AccessToken)["sub"].(string)
	err := svc.Store().UpdateUser(ctx, "ws", sub, func(u storeUser) (storeUser, error) {
		u.Enabled = false
		return u, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, e := svc.RenewIDToken(ctx, "ws", login.RefreshToken)
		return e != nil && e.Status == 401
	})
}

func TestIsRenewable(t *testing.T) {
	for _, c := range []struct {
		attrs map[string][]string
		want  bool
	}{
		{nil, false},
		{map[string][]string{core.RenewableAttribute: {"true"}}, true},
		{map[string][]string{core.RenewableAttribute: {" TRUE "}}, true},
		{map[string][]string{core.RenewableAttribute: {"false"}}, false},
		{map[string][]string{core.RenewableAttribute: {"yes"}}, false},
		{map[string][]string{"renewable": {"true"}}, false},
	} {
		if got := core.IsRenewable(&storeUser{Attributes: c.attrs}); got != c.want {
			t.Errorf("IsRenewable(%v) = %v", c.attrs, got)
		}
	}
	if core.IsRenewable(nil) {
		t.Error("nil user renewable")
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
