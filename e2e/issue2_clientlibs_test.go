package e2e

import (
	"context"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestIssue2OAuth2Library drives gatehouse with golang.org/x/oauth2, as a
// Go client written against Keycloak would.
func TestIssue2OAuth2Library(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	ctx := context.Background()
	tokenURL := ts.oidc(shopRealm, "token")

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		conf := &oauth2.Config{
			ClientID:     "shop-backend",
			ClientSecret: shopBackendSecret,
			Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: style},
		}
		tok, err := conf.PasswordCredentialsToken(ctx, "alice", alicePassword)
		if err != nil {
			t.Fatalf("PasswordCredentialsToken (style %d): %v", style, err)
		}
		if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Type() != "Bearer" || !tok.Valid() {
			t.Errorf("password token (style %d): %+v", style, tok)
		}
		if ss, _ := tok.Extra("session_state").(string); ss == "" {
			t.Errorf("no session_state extra")
		}
		// The library refreshes an expired token by itself.
		tok.Expiry = tok.Expiry.AddDate(-1, 0, 0)
		fresh, err := conf.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatalf("refresh through TokenSource (style %d): %v", style, err)
		}
		if fresh.AccessToken == tok.AccessToken || !fresh.Valid() {
			t.Errorf("TokenSource did not refresh")
		}

		cc := &clientcredentials.Config{
			ClientID:     "shop-backend",
			ClientSecret: shopBackendSecret,
			TokenURL:     tokenURL,
			AuthStyle:    style,
		}
		ct, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("clientcredentials (style %d): %v", style, err)
		}
		if ct.AccessToken == "" || !ct.Valid() || claims(t, ct.AccessToken)["azp"] != "shop-backend" {
			t.Errorf("client credentials token (style %d): %+v", style, ct)
		}

		bad := *cc
		bad.ClientSecret = "wrong"
		_, err = bad.Token(ctx)
		re, ok := err.(*oauth2.RetrieveError)
		if !ok || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 {
			t.Errorf("bad secret (style %d): %v", style, err)
		}
	}

	// A public client with the library's default (auto-detected) style.
	pub := &oauth2.Config{ClientID: "shop-web", Endpoint: oauth2.Endpoint{TokenURL: tokenURL}}
	if _, err := pub.PasswordCredentialsToken(ctx, "alice", alicePassword); err != nil {
		t.Errorf("public client, auto style: %v", err)
	}
	_, err := pub.PasswordCredentialsToken(ctx, "alice", "wrong")
	if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Errorf("wrong password: %v", err)
	}
}

// TestIssue2GoOIDC verifies gatehouse's ID and access tokens with
// github.com/coreos/go-oidc: discovery, JWKS, signatures, issuer, audience.
func TestIssue2GoOIDC(t *testing.T) {
	ts := startServer(t, []string{"issue2-shop.json"})
	ctx := context.Background()
	issuer := ts.URL + "/realms/" + shopRealm
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	if provider.Endpoint().TokenURL != ts.oidc(shopRealm, "token") {
		t.Errorf("token URL %q", provider.Endpoint().TokenURL)
	}

	r := passwordGrant(t, ts, shopRealm, "shop-web", "alice", alicePassword, "scope", "openid")
	idt, err := provider.Verifier(&oidc.Config{ClientID: "shop-web"}).Verify(ctx, r.str("id_token"))
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var idc struct {
		Email             string `json:"email"`
		PreferredUsername string `json:"preferred_username"`
		Sid               string `json:"sid"`
	}
	if err := idt.Claims(&idc); err != nil {
		t.Fatal(err)
	}
	if idc.PreferredUsername != "alice" || idc.Email != "alice@shop.example" || idc.Sid != r.str("session_state") {
		t.Errorf("ID token claims %+v", idc)
	}
	if err := idt.VerifyAccessToken(r.str("access_token")); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	// The ID token is for shop-web, not for anyone else.
	if _, err := provider.Verifier(&oidc.Config{ClientID: "shop-backend"}).Verify(ctx, r.str("id_token")); err == nil {
		t.Errorf("ID token accepted for another client")
	}

	at, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, r.str("access_token"))
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	if at.Subject != idt.Subject || at.Issuer != issuer {
		t.Errorf("access token subject %q issuer %q", at.Subject, at.Issuer)
	}

	// A token whose signature was tampered with fails.
	tampered := r.str("access_token")
	tampered = tampered[:len(tampered)-4] + "AAAA"
	if _, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, tampered); err == nil {
		t.Errorf("tampered token verified")
	}

	// And the userinfo endpoint through the library.
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: r.str("access_token"), TokenType: "Bearer"}))
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	if ui.Subject != idt.Subject || ui.Email != "alice@shop.example" {
		t.Errorf("userinfo %+v", ui)
	}
}
