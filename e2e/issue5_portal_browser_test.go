package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIssue5PortalBrowser signs in to the portal in headless Chromium,
// copies the renewable token with the Copy button, reads it back from the
// clipboard and trades it at _oidc_refresh for an ID token, as seed 004's
// users do. It needs Debian's chromium and e2e/browser's node_modules
// (npm ci --prefix e2e/browser); without them it skips, except under CI,
// where it fails.
func TestIssue5PortalBrowser(t *testing.T) {
	node := browserTools(t)

	ts, _ := startSyncServer(t)
	artifacts, err := filepath.Abs(filepath.Join("browser", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "portal-panel.png")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("browser", "portal.mjs"), ts.URL, "uimu", "uimu-password", shot)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("portal.mjs: %v\n%s", err, stderr.String())
	}
	t.Logf("portal.mjs: %s", strings.TrimSpace(stderr.String()))
	t.Logf("screenshot: %s", shot)
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot at %s", shot)
	}
	for _, mu := range []string{muGail, muMcN} {
		if !strings.Contains(stderr.String(), mu) {
			t.Errorf("membership %s not seen on the panel", mu)
		}
	}

	token := strings.TrimSpace(stdout.String())
	if strings.Count(token, ".") != 2 {
		t.Fatal("clipboard did not hold a token")
	}
	r := oidcRefresh(t, ts, "whitespace-ws", token)
	if r.Status != 200 || r.str("id_token") == "" || r.str("name") != "uimu" {
		t.Fatalf("_oidc_refresh with the copied token: %d %s", r.Status, r.Body)
	}
	if c := claims(t, r.str("id_token")); c["typ"] != "ID" || c["preferred_username"] != "uimu" {
		t.Fatalf("id_token claims %v", c)
	}
}

const chromiumPath = "/usr/bin/chromium"

// browserTools returns node, after checking for Debian's chromium and
// e2e/browser's node_modules; without them the test skips, except under
// CI, where it fails.
func browserTools(t *testing.T) (node string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; CI must install it (.ci/run: apt-get install -y chromium; npm ci --prefix e2e/browser)", what)
		}
		t.Skipf("%s is missing: install it (apt-get install -y chromium; npm ci --prefix e2e/browser) to run the browser test", what)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(chromiumPath)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	if _, err := os.Stat(filepath.Join("browser", "node_modules", "playwright-core")); err != nil {
		missing("e2e/browser/node_modules (playwright-core)")
	}
	return node
}
