package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/conformance"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "gatehouse.db"))
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
	conformance.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestOpenSetsPragmasAndSchema(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	var mode string
	if err := s.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
	for _, db := range []interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}{s.wconn, s.r} {
		var fk, busy int
		if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if fk != 1 || busy != 5000 {
			t.Fatalf("foreign_keys = %d, busy_timeout = %d", fk, busy)
		}
	}
	// Readers cannot write, so no write can bypass the writer's lock.
	if _, err := s.r.ExecContext(ctx, "DELETE FROM realms"); err == nil {
		t.Fatal("a reader connection accepted a write")
	}
	var v int
	if err := s.r.QueryRowContext(ctx, "SELECT version FROM schema_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion() || v < 1 {
		t.Fatalf("schema_version = %d, want %d", v, SchemaVersion())
	}
	// The hot lookups have their indexes.
	for _, idx := range []string{"users_by_username", "users_by_email", "sessions_by_user",
		"sessions_by_prune", "revocations_by_created", "clients_by_owner"} {
		var n int
		err := s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND name = ?", idx).Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("index %s: n=%d err=%v", idx, n, err)
		}
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	ctx := t.Context()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRealm(ctx, store.Realm{Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, WithReaders(2), WithBusyTimeout(time.Second))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetRealm(ctx, "kept"); err != nil {
		t.Fatalf("realm lost on reopen: %v", err)
	}
	var rows int
	if err := s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_version").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("schema_version rows = %d (%v)", rows, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.wconn.ExecContext(t.Context(), "UPDATE schema_version SET version = ?", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a database from a newer binary")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("Open accepted an empty path")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "no", "such", "dir", "gatehouse.db")); err == nil {
		t.Fatal("Open accepted a path in a missing directory")
	}
}

func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gatehouse.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}

// TestTwoStoresOneFile: a second process (a CLI import while the server
// runs) writes the same file; busy_timeout and BEGIN IMMEDIATE make both
// see a consistent result.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	ctx := t.Context()
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.CreateRealm(ctx, store.Realm{Name: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateUser(ctx, store.User{Realm: "r", ID: "u", Username: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateSession(ctx, store.Session{Realm: "r", ID: "s", UserID: "u"}, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := st.UpdateSession(ctx, "r", "s", func(s store.Session) (store.Session, error) {
				if s.RefreshUses >= 7 {
					return s, errors.New("used up")
				}
				s.RefreshUses++
				return s, nil
			})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got, err := b.GetSession(ctx, "r", "s")
	if err != nil {
		t.Fatal(err)
	}
	if wins != 7 || got.RefreshUses != 7 {
		t.Fatalf("wins = %d, RefreshUses = %d, want 7 and 7", wins, got.RefreshUses)
	}
}

func TestCloseStopsSubscribers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan store.Change, 10)
	s.Subscribe(func(c store.Change) { got <- c })
	if err := s.CreateRealm(t.Context(), store.Realm{Name: "r"}); err != nil {
		t.Fatal(err)
	}
	<-got
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cancel := s.Subscribe(func(store.Change) { t.Error("subscription after Close") })
	cancel()
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}

// A refresh-shaped update writes only what changed: the indexed columns,
// and so their index pages, are left alone, and prune_at follows expires
// only when its bucket moves.
func TestSessionUpdateWritesOnlyChangedColumns(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000).UTC()
	prev := store.Session{Realm: "r", ID: "s", UserID: "u", ClientID: "app", Started: base,
		LastSeen: base, Expires: base.Add(30 * time.Minute), RefreshID: "g1"}

	if q, args := sessionUpdate(prev, prev); q != "" || args != nil {
		t.Fatalf("no change: got %q %v", q, args)
	}

	next := prev
	next.LastSeen = base.Add(time.Second)
	next.Expires = prev.Expires.Add(time.Second)
	q, args := sessionUpdate(prev, next)
	want := "UPDATE sessions SET last_seen = ?, expires = ? WHERE realm = ? AND id = ?"
	if sqlstore.PruneAt(next.Expires) != sqlstore.PruneAt(prev.Expires) {
		t.Fatal("test data crosses a prune bucket")
	}
	if q != want || len(args) != 2 {
		t.Fatalf("got %q %v, want %q", q, args, want)
	}

	next.Expires = prev.Expires.Add(sqlstore.PruneBucket * time.Millisecond)
	next.RefreshID = "g2"
	q, args = sessionUpdate(prev, next)
	want = "UPDATE sessions SET last_seen = ?, expires = ?, refresh_id = ?, prune_at = ? WHERE realm = ? AND id = ?"
	if q != want || len(args) != 4 || args[3] != sqlstore.PruneAt(next.Expires) {
		t.Fatalf("got %q %v, want %q", q, args, want)
	}
}

// Expired sessions are found through the coarse prune_at index and
// deleted by their exact expiry: one a millisecond past it goes, one a
// millisecond short of it in the same bucket stays.
func TestDeleteExpiredUsesExactExpiry(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if err := s.ImportRealm(ctx, store.RealmBundle{Realm: store.Realm{Name: "r", Enabled: true},
		Users: []store.User{{Realm: "r", ID: "u", Username: "u", Enabled: true}}}, false); err != nil {
		t.Fatal(err)
	}
	// A bucket boundary plus 5 minutes: both expiries share a bucket.
	now := time.UnixMilli(1_700_000_000_000/sqlstore.PruneBucket*sqlstore.PruneBucket + 5*60*1000)
	for id, exp := range map[string]time.Time{"gone": now.Add(-time.Millisecond), "kept": now.Add(time.Millisecond)} {
		sess := store.Session{Realm: "r", ID: id, UserID: "u", ClientID: "app", Started: now.Add(-time.Hour),
			LastSeen: now.Add(-time.Minute), Expires: exp}
		if err := s.CreateSession(ctx, sess, nil); err != nil {
			t.Fatal(err)
		}
	}
	if sqlstore.PruneAt(now.Add(-time.Millisecond)) != sqlstore.PruneAt(now.Add(time.Millisecond)) {
		t.Fatal("test data crosses a prune bucket")
	}
	n, err := s.DeleteExpired(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1", n, err)
	}
	if _, err := s.GetSession(ctx, "r", "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := s.GetSession(ctx, "r", "kept"); err != nil {
		t.Fatalf("live session: %v", err)
	}
	var p int64
	if err := s.r.QueryRowContext(ctx, "SELECT prune_at FROM sessions WHERE id = 'kept'").Scan(&p); err != nil || p != sqlstore.PruneAt(now.Add(time.Millisecond)) {
		t.Fatalf("prune_at = %d, %v", p, err)
	}
}
