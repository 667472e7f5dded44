package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const seedRealm = `{"realm": "load", "enabled": true, "ssoSessionIdleTimeout": 600,
 "clients": [{"clientId": "app", "publicClient": true, "directAccessGrantsEnabled": true}]}`

func TestSeed(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	realmFile := filepath.Join(dir, "realm.json")
	pwFile := filepath.Join(dir, "pw")
	const pw = "Seeded-Password-42"
	if err := os.WriteFile(realmFile, []byte(seedRealm), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gh := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := gh("import", "--data", data, realmFile); code != 0 {
		t.Fatalf("import: %d %s", code, out)
	}
	// More users than one batch, so that batching and numbering across
	// batches are exercised.
	n := seedBatch + 3
	code, out := gh("seed", "--data", data, "--realm", "load", "--users", "5003", "--sessions", "7", "--password-file", pwFile)
	if code != 0 {
		t.Fatalf("seed: %d %s", code, out)
	}
	if strings.Contains(out, pw) {
		t.Fatal("seed printed the password")
	}
	// Sessions added later, to the users already there.
	if code, out := gh("seed", "--data", data, "--realm", "load", "--sessions", "5"); code != 0 {
		t.Fatalf("seed --sessions: %d %s", code, out)
	}

	srv, err := offline(data, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	ctx := context.Background()
	if got, err := srv.Store.CountUsers(ctx, "load"); err != nil || got != n {
		t.Fatalf("CountUsers = %d, %v; want %d", got, err, n)
	}
	if got, err := srv.Store.CountSessions(ctx, "load"); err != nil || got != 12 {
		t.Fatalf("CountSessions = %d, %v; want 12", got, err)
	}
	last, err := srv.Store.GetUserByUsername(ctx, "load", "user5003")
	if err != nil || !last.Enabled {
		t.Fatalf("user5003: %+v, %v", last, err)
	}
	first, err := srv.Store.GetUserByUsername(ctx, "load", "user1")
	if err != nil {
		t.Fatal(err)
	}
	firstSessions, err := srv.Store.ListUserSessions(ctx, "load", first.ID)
	if err != nil || len(firstSessions) == 0 {
		t.Fatalf("user1 has no session: %v", err)
	}
	s := firstSessions[0]
	if s.ClientID != "app" || s.Offline || !s.Expires.After(s.Started) || s.Expires.Sub(s.Started).Seconds() != 600 {
		t.Errorf("seeded session %+v", s)
	}

	// The shared hash is a real argon2id hash of the password.
	if _, e := srv.Core.CheckPassword(ctx, "load", "user4242", pw, "127.0.0.1"); e != nil {
		t.Fatalf("seeded user cannot log in: %v", e)
	}
	if _, e := srv.Core.CheckPassword(ctx, "load", "user4242", pw+"x", "127.0.0.1"); e == nil {
		t.Fatal("wrong password accepted")
	}
	if first.PasswordHash != last.PasswordHash || !strings.HasPrefix(first.PasswordHash, "$argon2id$v=19$m=7168,t=5,p=1$") {
		t.Errorf("hash %q / %q: want one shared argon2id hash at Keycloak's parameters", first.PasswordHash, last.PasswordHash)
	}
}

func TestSeedRefuses(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	realmFile := filepath.Join(dir, "realm.json")
	if err := os.WriteFile(realmFile, []byte(seedRealm), 0o600); err != nil {
		t.Fatal(err)
	}
	var sink bytes.Buffer
	if code := run([]string{"import", "--data", data, realmFile}, &sink, &sink); code != 0 {
		t.Fatalf("import: %s", sink.String())
	}
	t.Setenv(seedPasswordEnv, "from-the-environment")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"seed", "--data", data, "--users", "1"}, 2},                                     // no realm
		{[]string{"seed", "--data", data, "--realm", "load"}, 2},                                  // nothing to do
		{[]string{"seed", "--data", data, "--realm", "load", "--users", "-1"}, 2},                 // negative
		{[]string{"seed", "--data", data, "--realm", "load", "--users", "1", "--prefix", "U"}, 2}, // not lowercase
		{[]string{"seed", "--data", data, "--realm", "nope", "--users", "1"}, 1},                  // unknown realm
		{[]string{"seed", "--data", data, "--realm", "load", "--sessions", "1", "--client", "nope"}, 1},
		{[]string{"seed", "--data", data, "--realm", "load", "--sessions", "1"}, 1}, // no users yet
		{[]string{"seed", "--data", data, "--realm", "load", "--users", "2"}, 0},
		{[]string{"seed", "--data", data, "--realm", "load", "--users", "2"}, 1}, // they exist now
	} {
		sink.Reset()
		if code := run(tc.args, &sink, &sink); code != tc.code {
			t.Errorf("%q: exit %d, want %d: %s", tc.args, code, tc.code, sink.String())
		}
		if strings.Contains(sink.String(), "from-the-environment") {
			t.Errorf("%q printed the password", tc.args)
		}
	}
}
