package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/conformance"
)

// admin connects to the test database, skipping the test when there is
// none, except in CI, where a missing database is a failure.
func admin(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL not reachable (CI=true): %v", err)
		}
		t.Skipf("PostgreSQL not reachable (set GATEHOUSE_TEST_POSTGRES): %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// freshSchema creates an empty schema, dropped when the test ends, and
// returns a URL whose search_path selects it.
func freshSchema(t *testing.T) (schema, dsn string) {
	t.Helper()
	return pgtest.Schema(t, "gh_")
}

func open(t *testing.T, dsn string, opts ...Option) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	admin(t) // skip the lot at once when there is no database
	conformance.Run(t, func(t *testing.T) store.Store {
		_, dsn := freshSchema(t)
		return open(t, dsn)
	})
}

// collector records the changes one subscriber receives.
type collector struct {
	mu  sync.Mutex
	got []store.Change
	ch  chan store.Change
}

func subscribe(t *testing.T, s *Store) *collector {
	c := &collector{ch: make(chan store.Change, 4096)}
	cancel := s.Subscribe(func(ch store.Change) {
		c.mu.Lock()
		c.got = append(c.got, ch)
		c.mu.Unlock()
		c.ch <- ch
	})
	t.Cleanup(cancel)
	return c
}

// await waits up to d for want, skipping other changes.
func (c *collector) await(t *testing.T, d time.Duration, want store.Change) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case got := <-c.ch:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %+v within %v", want, d)
		}
	}
}

func (c *collector) count(want store.Change) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, g := range c.got {
		if g == want {
			n++
		}
	}
	return n
}

func seed(t *testing.T, s store.Store, realm string, users ...string) {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateRealm(ctx, store.Realm{Name: realm}); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := s.CreateUser(ctx, store.User{Realm: realm, ID: u, Username: u}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTwoReplicas runs two stores on one schema, as two replicas would.
func TestTwoReplicas(t *testing.T) {
	_, dsn := freshSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	seed(t, a, "r", "u1")

	fromA, fromB := subscribe(t, a), subscribe(t, b)
	sess := store.Session{Realm: "r", ID: "s1", UserID: "u1", Expires: time.Now().Add(time.Hour)}
	if err := a.CreateSession(ctx, sess, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetSession(ctx, "r", "s1"); err != nil {
		t.Fatalf("replica B does not see A's session: %v", err)
	}
	start := time.Now()
	if err := a.DeleteSession(ctx, "r", "s1"); err != nil {
		t.Fatal(err)
	}
	gone := store.Change{Kind: store.ChangeSession, Realm: "r", ID: "s1", UserID: "u1"}
	fromB.await(t, time.Second, gone)
	t.Logf("logout on A reached B after %v", time.Since(start))
	fromA.await(t, time.Second, gone)
	// Once from the create and once from the delete, never doubled by a
	// local delivery beside the NOTIFY one.
	time.Sleep(200 * time.Millisecond)
	for name, c := range map[string]*collector{"A": fromA, "B": fromB} {
		if n := c.count(gone); n != 2 {
			t.Errorf("subscriber of %s saw the session change %d times, want 2", name, n)
		}
	}

	// Concurrent logins of one user, split across the replicas, keep the
	// session limit.
	const racers, limit = 50, 5
	errDenied := errors.New("session limit reached")
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b
			}
			s := store.Session{Realm: "r", ID: fmt.Sprintf("login-%02d", i), UserID: "u1", LastSeen: time.Now()}
			errs[i] = st.CreateSession(ctx, s, func(existing []store.Session) ([]string, error) {
				if len(existing) >= limit {
					return nil, errDenied
				}
				return nil, nil
			})
		}()
	}
	wg.Wait()
	admitted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			admitted++
		case !errors.Is(err, errDenied):
			t.Fatalf("login %d: %v", i, err)
		}
	}
	list, err := b.ListUserSessions(ctx, "r", "u1")
	if err != nil {
		t.Fatal(err)
	}
	if admitted != limit || len(list) != limit {
		t.Fatalf("admitted %d, stored %d; want %d", admitted, len(list), limit)
	}

	// Refresh rotation across replicas: every use counts once.
	if err := a.CreateSession(ctx, store.Session{Realm: "r", ID: "rot", UserID: "u2-missing"}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of unknown user: %v", err)
	}
	rot := list[0].ID
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b
			}
			errs[i] = st.UpdateSession(ctx, "r", rot, func(s store.Session) (store.Session, error) {
				s.RefreshUses++
				return s, nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs[:20] {
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
	}
	got, err := a.GetSession(ctx, "r", rot)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshUses != 20 {
		t.Fatalf("RefreshUses = %d after 20 concurrent updates on two replicas", got.RefreshUses)
	}
}

// TestListenerReconnect cuts the listener's connection: the store must
// reconnect, tell subscribers to drop everything, and deliver what follows.
func TestListenerReconnect(t *testing.T) {
	_, dsn := freshSchema(t)
	s := open(t, dsn)
	ctx := t.Context()
	c := subscribe(t, s)
	seed(t, s, "r")
	c.await(t, 2*time.Second, store.Change{Kind: store.ChangeRealm, Realm: "r", ID: "r"})

	pid := s.listenPID.Load()
	var ok bool
	if err := admin(t).QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate listener %d: %v %v", pid, ok, err)
	}
	for _, want := range resetChanges() {
		c.await(t, 10*time.Second, want)
	}
	if s.listenPID.Load() == pid {
		t.Fatal("listener pid unchanged after reconnect")
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after reconnect: %v", err)
	}
	if err := s.CreateClient(ctx, store.Client{Realm: "r", ClientID: "app"}); err != nil {
		t.Fatal(err)
	}
	c.await(t, 2*time.Second, store.Change{Kind: store.ChangeClient, Realm: "r", ID: "app"})
}

// TestSchemasAreSeparate: deployments in two schemas of one database share
// nothing, not even the change feed.
func TestSchemasAreSeparate(t *testing.T) {
	_, dsn1 := freshSchema(t)
	_, dsn2 := freshSchema(t)
	s1, s2 := open(t, dsn1), open(t, dsn2)
	if s1.channel == s2.channel {
		t.Fatalf("both schemas notify on %q", s1.channel)
	}
	c2 := subscribe(t, s2)
	c1 := subscribe(t, s1)
	seed(t, s1, "r")
	c1.await(t, 2*time.Second, store.Change{Kind: store.ChangeRealm, Realm: "r", ID: "r"})
	if _, err := s2.GetRealm(t.Context(), "r"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("realm of schema 1 visible in schema 2: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(c2.got); n != 0 {
		t.Fatalf("schema 2 received %d changes of schema 1", n)
	}
}

// TestMigrations: replicas starting together migrate once; a schema from
// a newer binary is refused.
func TestMigrations(t *testing.T) {
	schema, dsn := freshSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(t.Context(), dsn)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
	}
	conn := admin(t)
	ctx := t.Context()
	var v, rows int
	if err := conn.QueryRow(ctx, "SELECT MAX(version), COUNT(*) FROM "+schema+".schema_version").Scan(&v, &rows); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion() || rows != 1 || v < 1 {
		t.Fatalf("schema_version = %d (%d rows), want %d", v, rows, SchemaVersion())
	}
	for _, idx := range []string{"users_by_username", "users_by_email", "sessions_by_user",
		"sessions_by_prune", "revocations_by_created", "clients_by_owner"} {
		var n int
		err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = $2", schema, idx).Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("index %s: n=%d err=%v", idx, n, err)
		}
	}

	if _, err := conn.Exec(ctx, "UPDATE "+schema+".schema_version SET version = 999"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dsn)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open accepted a schema newer than the binary")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	// A URL that cannot be parsed is refused without echoing it: it may
	// hold a password.
	_, err := Open(ctx, "postgres://user:s3cret-pw@127.0.0.1:notaport/db")
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("bad URL: %v", err)
	}
	admin(t)
	// A search_path naming no schema is refused with a clear message.
	_, err = Open(ctx, pgtest.WithSearchPath(t, pgtest.URL(), "gh_does_not_exist"))
	if err == nil || !strings.Contains(err.Error(), "search_path") {
		t.Fatalf("missing schema: %v", err)
	}
}

// TestLargeTransactionFeed: a transaction with more changes than one
// notification holds delivers all of them, in order.
func TestLargeTransactionFeed(t *testing.T) {
	_, dsn := freshSchema(t)
	s := open(t, dsn)
	seed(t, s, "r")
	c := subscribe(t, s)
	const n = 1200
	us := make([]store.User, n)
	for i := range us {
		us[i] = store.User{Realm: "r", ID: fmt.Sprintf("user-with-a-longish-id-%05d", i), Username: fmt.Sprintf("u%05d", i)}
	}
	if err := s.CreateUsers(t.Context(), us); err != nil {
		t.Fatal(err)
	}
	for i := range us {
		select {
		case got := <-c.ch:
			want := store.Change{Kind: store.ChangeUser, Realm: "r", ID: us[i].ID}
			if got != want {
				t.Fatalf("change %d = %+v, want %+v", i, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d changes arrived", i, n)
		}
	}
}

func TestEncodeChanges(t *testing.T) {
	var cs []store.Change
	for i := range 500 {
		cs = append(cs, store.Change{Kind: store.ChangeSession, Realm: "realm", ID: fmt.Sprintf("session-%04d", i), UserID: "user"})
	}
	huge := strings.Repeat("x", 9000)
	cs = append(cs,
		store.Change{Kind: store.ChangeRevocation, Realm: "realm", ID: huge},
		store.Change{Kind: store.ChangeUser, Realm: huge, ID: "u"},
		store.Change{Kind: store.ChangeClient, Realm: "q\"uote\\\x00é", ID: "<&>"},
	)
	payloads := encodeChanges(cs)
	if len(payloads) < 2 {
		t.Fatalf("%d changes fit in %d payloads", len(cs), len(payloads))
	}
	var got []store.Change
	for _, p := range payloads {
		if len(p) >= 8000 {
			t.Fatalf("payload of %d bytes", len(p))
		}
		dec, barrier, err := decodePayload(p)
		if err != nil || barrier != "" {
			t.Fatalf("decode: %v %q", err, barrier)
		}
		got = append(got, dec...)
	}
	want := append(cs[:500:500],
		store.Change{Kind: store.ChangeRevocation, Realm: "realm"},
		store.Change{Kind: store.ChangeUser},
		cs[502],
	)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("round trip differs: got %d changes, want %d", len(got), len(want))
	}
	if encodeChanges(nil) != nil {
		t.Fatal("no changes should give no payload")
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, p := range encodeChanges([]store.Change{
		{Kind: store.ChangeSession, Realm: "r", ID: "s1", UserID: "u1"},
		{Kind: store.ChangeRealm, Realm: "r", ID: "r"},
	}) {
		f.Add(p)
	}
	f.Add(`{"b":"0123456789abcdef"}`)
	f.Add(`{"c":[{"k":"bogus","r":"r","i":"x"}]}`)
	f.Add(`{"c":null,"b":""}`)
	f.Add(`[1,2,3]`)
	f.Add(`{"c":[{"k":1}]}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, p string) {
		cs, _, err := decodePayload(p)
		if err != nil {
			return
		}
		for _, c := range cs {
			if !knownKind(c.Kind) {
				t.Fatalf("unknown kind %q passed on", c.Kind)
			}
		}
		// What decodes re-encodes to the same changes.
		var again []store.Change
		for _, q := range encodeChanges(cs) {
			d, _, err := decodePayload(q)
			if err != nil {
				t.Fatal(err)
			}
			again = append(again, d...)
		}
		if len(again) != len(cs) {
			t.Fatalf("re-encoding gave %d changes, want %d", len(again), len(cs))
		}
	})
}

// withIdleCheck shortens the listener's idle ping, to exercise it.
func withIdleCheck(d time.Duration) Option { return func(o *options) { o.idle = d } }

// TestListenerIdlePing: a quiet listener pings its connection and keeps it;
// no reconnect, no resets, and changes still arrive afterwards.
func TestListenerIdlePing(t *testing.T) {
	_, dsn := freshSchema(t)
	s := open(t, dsn, withIdleCheck(20*time.Millisecond))
	c := subscribe(t, s)
	pid := s.listenPID.Load()
	time.Sleep(300 * time.Millisecond)
	seed(t, s, "r")
	c.await(t, 2*time.Second, store.Change{Kind: store.ChangeRealm, Realm: "r", ID: "r"})
	if s.listenPID.Load() != pid {
		t.Fatal("listener reconnected while idle")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) != 1 {
		t.Fatalf("got %+v, want only the realm change", c.got)
	}
}
