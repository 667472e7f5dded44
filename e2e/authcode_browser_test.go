package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestAuthCodeBrowser runs the authorization-code flow in headless
// Chromium: the login page (with its Content-Security-Policy), the
// redirect to the app, single sign-on for a second request, and OIDC
// RP-Initiated Logout back to the app, after which the login page shows
// again; then a login with response_mode=form_post. The code exchange and the checks on the session use
// golang.org/x/oauth2 and go-oidc, as a web app's backend would.
func TestAuthCodeBrowser(t *testing.T) {
	node := browserTools(t)
	e := startAuthCode(t)
	artifacts, err := filepath.Abs(filepath.Join("browser", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("browser", "authcode.mjs"), e.origin, filepath.Join(artifacts, "authcode-app.png"))
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	step := func(s ...string) string {
		t.Helper()
		if _, err := stdin.Write([]byte(strings.Join(s, " ") + "\n")); err != nil {
			t.Fatalf("%s: %v\n%s", s[0], err, stderr.String())
		}
		if !lines.Scan() {
			_ = cmd.Wait()
			t.Fatalf("%s: no answer from the browser\n%s", s[0], stderr.String())
		}
		return lines.Text()
	}

	conf := e.config("spa", "")
	verifier := oauth2.GenerateVerifier()
	authURL := func(state string) string { return conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)) }
	arrived, err := url.Parse(step("login", authURL("st-1"), "alice", acAlicePW))
	if err != nil {
		t.Fatal(err)
	}
	if arrived.Scheme+"://"+arrived.Host+arrived.Path != e.callback || arrived.Query().Get("state") != "st-1" {
		t.Fatalf("the browser arrived at %s", arrived)
	}
	tok, err := conf.Exchange(context.Background(), arrived.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange of the browser's code: %v", err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if _, err := e.provider.Verifier(&oidc.Config{ClientID: "spa"}).Verify(context.Background(), idToken); err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if got := step("form?", authURL("st-2")); got != "no-login-page" {
		t.Errorf("single sign-on in the browser: %s", got)
	}

	v := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {e.origin + "/bye"}, "state": {"st-3"}}
	if got := step("visit", e.ts.oidc(acRealm, "logout")+"?"+v.Encode()); got != e.origin+"/bye?state=st-3" {
		t.Errorf("after logout the browser is at %s", got)
	}
	if _, err := e.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Errorf("the session outlived the browser's logout")
	}
	if got := step("form?", authURL("st-4")); got != "login-page" {
		t.Errorf("after logout: %s", got)
	}

	// response_mode=form_post: the page's script, allowed by its hash in
	// the page's CSP, posts the code to the app.
	fpURL := conf.AuthCodeURL("st-5", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "form_post"))
	if got := step("login", fpURL, "alice", acAlicePW); got != e.callback {
		t.Fatalf("form_post: the browser is at %s", got)
	}
	select {
	case f := <-e.posted:
		if f.Get("state") != "st-5" {
			t.Fatalf("the app received %v", f)
		}
		if _, err := conf.Exchange(context.Background(), f.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("exchange of the posted code: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the app received no form_post")
	}

	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("authcode.mjs: %v\n%s", err, stderr.String())
	}
	t.Logf("authcode.mjs: %s", stderr.String())
}
