package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server"
)

// FuzzTokenEndpoint throws arbitrary bodies, content types and
// authorization headers at the token endpoint (and its neighbours, which
// parse the same form) of a real server with a real realm: whatever comes
// in, the answer is never a 5xx and always JSON.
func FuzzTokenEndpoint(f *testing.F) {
	ctx := context.Background()
	srv, err := server.Open(ctx, server.Config{
		Addr:         "127.0.0.1:0",
		DataDir:      f.TempDir(),
		PublicURL:    "http://gatehouse.test",
		ImportRealms: []string{filepath.Join("testdata", "issue2-shop.json")},
		Passwords:    fastPasswords,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = srv.Close(c)
	})
	h := srv.Handler()

	// A valid refresh token and access token make the seeds reach deep.
	login := httptest.NewRecorder()
	h.ServeHTTP(login, fuzzRequest("token", "application/x-www-form-urlencoded", "",
		"grant_type=password&client_id=shop-web&username=alice&password="+alicePassword))
	var tok map[string]any
	_ = json.Unmarshal(login.Body.Bytes(), &tok)
	rt, _ := tok["refresh_token"].(string)
	at, _ := tok["access_token"].(string)

	const ct = "application/x-www-form-urlencoded"
	seeds := []struct {
		endpoint, ct, authz, body string
	}{
		{"token", ct, "", "grant_type=password&client_id=shop-web&username=alice&password=" + alicePassword},
		{"token", ct, "", "grant_type=password&client_id=shop-web&username=alice&password=wrong"},
		{"token", ct, basicAuth("shop-backend", shopBackendSecret)[len("Authorization: "):], "grant_type=client_credentials"},
		{"token", ct, "", "grant_type=client_credentials&client_id=shop-backend&client_secret=" + shopBackendSecret},
		{"token", ct, "", "grant_type=refresh_token&client_id=shop-web&refresh_token=" + rt},
		{"token", ct, "", "grant_type=refresh_token&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id=shop-web&refresh_token=" + rt},
		{"token", ct, "", "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + at},
		{"token", ct, "Basic Og==", "grant_type=client_credentials"},
		{"token", ct, "Basic !!!", "grant_type=password"},
		{"token", ct + "; charset=utf-8", "", "grant_type=password&grant_type=password"},
		{"token", "application/json", "", `{"grant_type":"password"}`},
		{"token", ct, "", "grant_type=%zz"},
		{"token", ct, "", "grant_type=password&client_id=shop-web&username=alice&password=x&scope=openid+offline_access+bogus"},
		{"token", "", "", ""},
		{"token", ct, "Bearer " + at, "grant_type=password"},
		{"token/introspect", ct, basicAuth("shop-backend", shopBackendSecret)[len("Authorization: "):], "token=" + at},
		{"token/introspect", ct, "", "client_id=shop-web&token=" + rt},
		{"revoke", ct, "", "client_id=shop-web&token=" + at},
		{"logout", ct, "", "client_id=shop-web&refresh_token=" + rt},
		{"userinfo", ct, "Bearer " + at, "access_token=" + at},
	}
	for _, s := range seeds {
		f.Add(s.endpoint, s.ct, s.authz, s.body)
	}
	f.Fuzz(func(t *testing.T, endpoint, contentType, authz, body string) {
		switch endpoint {
		case "token", "token/introspect", "revoke", "logout", "userinfo":
		default:
			endpoint = "token"
		}
		req := fuzzRequest(endpoint, contentType, authz, body)
		if req == nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q (Content-Type %q, Authorization %q): %d %s", endpoint, body, contentType, authz, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Content-Type"); rec.Code >= 400 && !strings.HasPrefix(got, "application/json") {
			t.Fatalf("%s error answer with Content-Type %q: %d %s", endpoint, got, rec.Code, rec.Body)
		}
		if rec.Body.Len() > 0 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s invalid JSON: %q", endpoint, rec.Body)
		}
	})
}

// fuzzRequest builds a POST to one of the shop realm's endpoints; nil when
// the header values cannot be sent over HTTP at all.
func fuzzRequest(endpoint, contentType, authz, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "http://gatehouse.test/realms/shop/protocol/openid-connect/"+endpoint, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.1:1234"
	for _, v := range []string{contentType, authz} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	return req
}
