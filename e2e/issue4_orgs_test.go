package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
)

// orgMemberships lists the caller's memberships through the gateway's
// built-in endpoint, as membership id → organization alias.
func orgMemberships(t *testing.T, ts *testServer, token string, headers ...string) map[string]string {
	t.Helper()
	r := gwReq(t, ts, "GET", "/.gatehouse/memberships", token, headers...)
	if r.Status != 200 {
		t.Fatalf("memberships: %d %s", r.Status, r.Body)
	}
	var list []struct {
		ID           string `json:"id"`
		Organization struct {
			ID, Alias, Name string
		} `json:"organization"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("memberships body %s: %v", r.Body, err)
	}
	out := map[string]string{}
	for _, m := range list {
		if !strings.HasPrefix(m.ID, "MU") {
			t.Errorf("membership id %q does not start with MU", m.ID)
		}
		out[m.ID] = m.Organization.Alias
	}
	return out
}

// TestIssue4OrganizationsRoundTrip: organizations with their members
// survive export and import into another gatehouse, membership ids
// (given and generated) included, and tokens carry Keycloak 26's
// organization claim when the organization scope is requested.
func TestIssue4OrganizationsRoundTrip(t *testing.T) {
	t.Parallel()
	env := startGateway(t)
	ts := env.ts
	aliceTok := gwToken(t, ts, gwRealm, "alice", alicePW4).str("access_token")
	bobTok := gwToken(t, ts, gwRealm, "bob", bobPW4).str("access_token")
	aliceMs := orgMemberships(t, ts, aliceTok)
	if len(aliceMs) != 2 || aliceMs[aliceAcme] != "acme" || aliceMs[aliceGlobex] != "globex" {
		t.Fatalf("alice's memberships: %v", aliceMs)
	}
	bobMs := orgMemberships(t, ts, bobTok)
	if len(bobMs) != 1 {
		t.Fatalf("bob's memberships: %v", bobMs)
	}

	doc, err := ts.Srv.Core.ExportRealm(context.Background(), gwRealm)
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		OrganizationsEnabled bool `json:"organizationsEnabled"`
		Organizations        []struct {
			ID, Alias string
			Members   []struct {
				Username   string              `json:"username"`
				Attributes map[string][]string `json:"attributes"`
			} `json:"members"`
		} `json:"organizations"`
	}
	if err := json.Unmarshal(doc, &exp); err != nil {
		t.Fatal(err)
	}
	if !exp.OrganizationsEnabled || len(exp.Organizations) != 2 {
		t.Fatalf("export: organizationsEnabled %v, %d organizations", exp.OrganizationsEnabled, len(exp.Organizations))
	}
	exported := map[string]string{} // membership id → username@alias
	for _, o := range exp.Organizations {
		for _, m := range o.Members {
			ids := m.Attributes["gatehouse.membershipId"]
			if len(ids) != 1 {
				t.Fatalf("member %s of %s exported without its membership id: %v", m.Username, o.Alias, m.Attributes)
			}
			exported[ids[0]] = m.Username + "@" + o.Alias
		}
	}
	for id := range bobMs {
		if exported[id] != "bob@acme" {
			t.Errorf("bob's generated membership %s exported as %q", id, exported[id])
		}
	}
	if exported[aliceAcme] != "alice@acme" || exported[aliceGlobex] != "alice@globex" || len(exported) != 3 {
		t.Errorf("exported memberships: %v", exported)
	}

	// Import the export into a fresh gatehouse: the same ids.
	file := filepath.Join(t.TempDir(), "gw-export.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	ts2 := startServer(t, []string{file}, func(c *server.Config) { c.DefaultRealm = gwRealm })
	alice2 := orgMemberships(t, ts2, gwToken(t, ts2, gwRealm, "alice", alicePW4).str("access_token"))
	bob2 := orgMemberships(t, ts2, gwToken(t, ts2, gwRealm, "bob", bobPW4).str("access_token"))
	if !mapsEqual(alice2, aliceMs) || !mapsEqual(bob2, bobMs) {
		t.Errorf("after export and import: alice %v (was %v), bob %v (was %v)", alice2, aliceMs, bob2, bobMs)
	}
	// And the re-export is the same document as far as organizations go.
	doc2, err := ts2.Srv.Core.ExportRealm(context.Background(), gwRealm)
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	_ = json.Unmarshal(doc, &a)
	_ = json.Unmarshal(doc2, &b)
	ja, _ := json.Marshal(a["organizations"])
	jb, _ := json.Marshal(b["organizations"])
	if string(ja) != string(jb) {
		t.Errorf("organizations differ after a round trip:\n%s\n%s", ja, jb)
	}

	// The organization claim: only with scope "organization".
	plain := claims(t, aliceTok)
	if _, ok := plain["organization"]; ok {
		t.Errorf("organization claim without the scope: %v", plain["organization"])
	}
	lr := gwToken(t, ts, gwRealm, "alice", alicePW4, "scope", "openid organization")
	c := claims(t, lr.str("access_token"))
	orgs, _ := c["organization"].([]any)
	if len(orgs) != 2 || orgs[0] != "acme" || orgs[1] != "globex" {
		t.Errorf("access token organization claim %v, want [acme globex]", c["organization"])
	}
	if !slices.Contains(strings.Fields(lr.str("scope")), "organization") {
		t.Errorf("granted scope %q lacks organization", lr.str("scope"))
	}
	if id := claims(t, lr.str("id_token")); id["organization"] == nil {
		t.Errorf("ID token lacks the organization claim: %v", id)
	}
	// carol belongs to no organization: no claim even with the scope.
	cl := claims(t, gwToken(t, ts, gwRealm, "carol", carolPW4, "scope", "organization").str("access_token"))
	if _, ok := cl["organization"]; ok {
		t.Errorf("carol's token has organization %v", cl["organization"])
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestIssue4ChoosingTheOrganization: the Organization header (by id and
// by alias), the subdomain, and the UserID header of a user with two
// memberships.
func TestIssue4ChoosingTheOrganization(t *testing.T) {
	t.Parallel()
	env := startGateway(t)
	ts := env.ts
	alice, bob, carol := gwUsersTokens(t, ts)

	t.Run("two memberships need UserID", func(t *testing.T) {
		for _, h := range [][]string{nil, {"UserID: MU-not-hers"}, {"Organization: acme"}} {
			r := gwReq(t, ts, "GET", "/me", alice, h...)
			if r.Status != 403 || string(r.Body) != `{"error": true, "reason": "Invalid WSAUTH: Valid UserID must be supplied"}` {
				t.Errorf("alice with %v: %d %q", h, r.Status, r.Body)
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("alice with %v: Content-Type %q", h, r.Header.Get("Content-Type"))
			}
		}
		for id, org := range map[string]string{aliceAcme: acmeID, aliceGlobex: globexID} {
			r := gwReq(t, ts, "GET", "/me", alice, "UserID: "+id)
			want200(t, "alice UserID "+id, r)
			if r.seen("X-Gatehouse-Organization") != org || r.seen("X-Gatehouse-Membership") != id {
				t.Errorf("UserID %s: upstream saw organization %q membership %q", id, r.seen("X-Gatehouse-Organization"), r.seen("X-Gatehouse-Membership"))
			}
		}
		// The memberships endpoint needs no UserID.
		if ms := orgMemberships(t, ts, alice); len(ms) != 2 {
			t.Errorf("memberships: %v", ms)
		}
		// Nor does a public operation.
		want200(t, "alice public", gwReq(t, ts, "GET", "/docs/x", alice))
	})
	t.Run("one membership needs nothing", func(t *testing.T) {
		r := gwReq(t, ts, "GET", "/me", bob)
		want200(t, "bob", r)
		if r.seen("X-Gatehouse-Organization") != acmeID || r.seen("X-Gatehouse-Organization-Alias") != "acme" {
			t.Errorf("bob: organization %q", r.seen("X-Gatehouse-Organization"))
		}
		if r := gwReq(t, ts, "GET", "/me", bob, "UserID: "+aliceAcme); r.Status != 403 {
			t.Errorf("bob with alice's UserID: %d %s", r.Status, r.Body)
		}
	})
	t.Run("Organization header", func(t *testing.T) {
		for _, name := range []string{"acme", "ACME", acmeID} {
			r := gwReq(t, ts, "GET", "/me", bob, "Organization: "+name)
			want200(t, "bob Organization "+name, r)
			if r.seen("X-Gatehouse-Organization") != acmeID {
				t.Errorf("Organization %s: upstream saw %q", name, r.seen("X-Gatehouse-Organization"))
			}
		}
		for _, name := range []string{"globex", globexID, "nosuch"} {
			r := gwReq(t, ts, "GET", "/me", bob, "Organization: "+name)
			if r.Status != 403 || r.str("error") != "access_denied" {
				t.Errorf("bob Organization %s: %d %s", name, r.Status, r.Body)
			}
		}
		r := gwReq(t, ts, "GET", "/me", alice, "UserID: "+aliceGlobex, "Organization: globex")
		want200(t, "alice globex by both", r)
		r = gwReq(t, ts, "GET", "/me", alice, "UserID: "+aliceGlobex, "Organization: "+acmeID)
		if r.Status != 403 || r.str("error") != "access_denied" {
			t.Errorf("alice globex membership for acme: %d %s", r.Status, r.Body)
		}
		// No membership: fine without an organization, refused with one.
		want200(t, "carol", gwReq(t, ts, "GET", "/me", carol))
		if r := gwReq(t, ts, "GET", "/me", carol, "Organization: acme"); r.Status != 403 {
			t.Errorf("carol for acme: %d %s", r.Status, r.Body)
		}
	})
	t.Run("subdomain", func(t *testing.T) {
		a := gwToken(t, ts, gwSubRealm, "alice", alicePW4).str("access_token")
		b := gwToken(t, ts, gwSubRealm, "bob", bobPW4).str("access_token")
		r := gwReq(t, ts, "GET", "/me", a, "Host: acme."+subDomain, "UserID: "+aliceAcme)
		want200(t, "alice at acme."+subDomain, r)
		if r.seen("X-Gatehouse-Organization") != acmeID || r.seen("X-Forwarded-Host") != "acme."+subDomain {
			t.Errorf("subdomain: upstream saw organization %q, X-Forwarded-Host %q", r.seen("X-Gatehouse-Organization"), r.seen("X-Forwarded-Host"))
		}
		r = gwReq(t, ts, "GET", "/me", a, "Host: globex."+subDomain, "UserID: "+aliceGlobex)
		want200(t, "alice at globex", r)
		if r.seen("X-Gatehouse-Organization") != globexID {
			t.Errorf("globex subdomain: %q", r.seen("X-Gatehouse-Organization"))
		}
		r = gwReq(t, ts, "GET", "/me", a, "Host: globex."+subDomain, "UserID: "+aliceAcme)
		if r.Status != 403 || r.str("error") != "access_denied" {
			t.Errorf("acme membership at globex: %d %s", r.Status, r.Body)
		}
		// In subdomain mode the header is ignored.
		r = gwReq(t, ts, "GET", "/me", b, "Host: ACME."+subDomain+":443", "Organization: globex")
		want200(t, "bob at acme, header ignored", r)
		r = gwReq(t, ts, "GET", "/me", b, "Host: globex."+subDomain)
		if r.Status != 403 {
			t.Errorf("bob at globex: %d %s", r.Status, r.Body)
		}
		// The bare domain names no organization.
		want200(t, "bob at the bare domain", gwReq(t, ts, "GET", "/me", b, "Host: "+subDomain))
		// The host picks the realm: gw's token is not gwsub's.
		wantChallenge(t, "gw token at gwsub", gwReq(t, ts, "GET", "/me", bob, "Host: acme."+subDomain), gwSubRealm)
	})
}
