package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// seedPasswordEnv names the environment variable seed reads the shared
// password from when --password-file is not given; a password on the
// command line would show in every process listing.
const seedPasswordEnv = "GATEHOUSE_SEED_PASSWORD"

// seedBatch is how many users one CreateUsers transaction inserts: large
// enough that a million users take a few hundred commits, small enough that
// one batch's memory stays in the tens of megabytes.
const seedBatch = 5000

// seedCmd fills an existing realm with many users and live sessions, for
// load tests at scale. Every user gets the same argon2id hash, computed
// once: hashing a million passwords would take hours of CPU and measure
// nothing but the hash.
func seedCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	loc := addStoreFlags(fs)
	realm := fs.String("realm", "", "existing realm to fill")
	users := fs.Int("users", 0, "users to create: PREFIX1 .. PREFIXN (0: add sessions to the realm's existing users)")
	sessions := fs.Int("sessions", 0, "live sessions to create, spread round-robin over the seeded (or existing) users")
	prefix := fs.String("prefix", "user", "user name `PREFIX`")
	client := fs.String("client", "app", "client `ID` the seeded sessions belong to")
	pwFile := fs.String("password-file", "", "`FILE` whose first line is every seeded user's password (default: $"+seedPasswordEnv+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{"unexpected argument " + fs.Arg(0)}
	case *realm == "":
		return usageError{"--realm is required"}
	case *users < 0 || *sessions < 0:
		return usageError{"--users and --sessions must not be negative"}
	case *users == 0 && *sessions == 0:
		return usageError{"nothing to do: give --users, --sessions or both"}
	case *prefix == "" || strings.ToLower(*prefix) != *prefix:
		return usageError{"--prefix must be non-empty and lowercase (usernames are stored lowercased)"}
	}
	var pw string
	if *users > 0 {
		var err error
		if pw, err = seedPassword(*pwFile); err != nil {
			return err
		}
	}
	srv, err := loc.open(stderr)
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())
	ctx := context.Background()
	r, err := srv.Store.GetRealm(ctx, *realm)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("realm %q does not exist (import it first)", *realm)
	}
	if err != nil {
		return err
	}
	if *sessions > 0 {
		if _, err := srv.Store.GetClient(ctx, *realm, *client); err != nil {
			return fmt.Errorf("--client %q: %w", *client, err)
		}
	}
	start := time.Now()
	var ids []string
	if *users > 0 {
		// Keycloak's default argon2id parameters, as a server started
		// without --argon2-* flags uses: a login then verifies without
		// asking for a rehash, so the seeded hash costs what a real one does.
		hash, err := password.NewHasher(password.DefaultParams()).Hash(pw)
		if err != nil {
			return err
		}
		if ids, err = seedUsers(ctx, srv.Store, *realm, *prefix, *users, hash); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "seeded %d users %s1..%s%d in realm %q in %s\n", *users, *prefix, *prefix, *users, *realm,
			time.Since(start).Round(time.Millisecond))
	} else if *sessions > 0 {
		if ids, err = existingUsers(ctx, srv.Store, *realm, *prefix, *sessions); err != nil {
			return err
		}
	}
	start = time.Now()
	if err := seedSessions(ctx, srv.Store, r, *client, ids, *sessions); err != nil {
		return err
	}
	if *sessions > 0 {
		fmt.Fprintf(stdout, "seeded %d live sessions of client %q in %s\n", *sessions, *client, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// seedPassword reads the shared password from file, or from the
// environment when file is empty.
func seedPassword(file string) (string, error) {
	if file == "" {
		pw := os.Getenv(seedPasswordEnv)
		if pw == "" {
			return "", usageError{"give the seeded users' password with --password-file or $" + seedPasswordEnv}
		}
		return pw, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4096))
	if !sc.Scan() || strings.TrimRight(sc.Text(), "\r") == "" {
		return "", fmt.Errorf("--password-file %s: no password on the first line", file)
	}
	return strings.TrimRight(sc.Text(), "\r"), nil
}

// seedUsers creates prefix1..prefixN in batches and returns their ids in
// order.
func seedUsers(ctx context.Context, st store.Store, realm, prefix string, n int, hash string) ([]string, error) {
	ids := make([]string, 0, n)
	now := time.Now().UTC().Truncate(time.Second)
	batch := make([]store.User, 0, seedBatch)
	for i := 1; i <= n; i++ {
		id := core.NewID()
		ids = append(ids, id)
		batch = append(batch, store.User{
			Realm: realm, ID: id, Username: fmt.Sprintf("%s%d", prefix, i),
			Enabled: true, EmailVerified: true, Created: now,
			PasswordHash: hash, PasswordCreated: now,
		})
		if len(batch) == seedBatch || i == n {
			if err := st.CreateUsers(ctx, batch); err != nil {
				if errors.Is(err, store.ErrAlreadyExists) {
					return nil, fmt.Errorf("users %s%d..%s%d: one of them exists already (seed an empty realm, or use another --prefix): %w",
						prefix, i-len(batch)+1, prefix, i, err)
				}
				return nil, err
			}
			batch = batch[:0]
		}
	}
	return ids, nil
}

// existingUsers returns the ids of up to n users of the realm whose names
// start with prefix (service accounts excluded), for sessions added to a
// realm seeded earlier.
func existingUsers(ctx context.Context, st store.Store, realm, prefix string, n int) ([]string, error) {
	var ids []string
	const page = 10000
	for off := 0; len(ids) < n; off += page {
		us, err := st.ListUsers(ctx, realm, off, page)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if len(ids) < n && u.ServiceAccountClientID == "" && strings.HasPrefix(u.Username, prefix) {
				ids = append(ids, u.ID)
			}
		}
		if len(us) < page {
			break
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("realm %q has no users named %s...: seed some with --users", realm, prefix)
	}
	return ids, nil
}

// seedSessions creates n sessions spread round-robin over users, live for
// the realm's SSO idle timeout (capped by its max lifespan), as a password
// login would leave them.
func seedSessions(ctx context.Context, st store.Store, r store.Realm, client string, users []string, n int) error {
	now := time.Now().UTC().Truncate(time.Second)
	life := r.Settings.SSOSessionIdleTimeout
	if m := r.Settings.SSOSessionMaxLifespan; m > 0 && (life <= 0 || m < life) {
		life = m
	}
	if life <= 0 {
		life = 1800 // Keycloak's default SSO idle timeout
	}
	for i := range n {
		s := store.Session{
			ID: core.NewID(), Realm: r.Name, UserID: users[i%len(users)], ClientID: client,
			Started: now, LastSeen: now, Expires: now.Add(time.Duration(life) * time.Second),
			Scope: "openid profile email", RefreshID: core.NewID(),
		}
		// No session limit is applied: seeding states how many sessions
		// exist, it does not log anyone in.
		if err := st.CreateSession(ctx, s, nil); err != nil {
			return fmt.Errorf("session %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}
