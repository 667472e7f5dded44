//go:build driverbench

// The driver comparison behind docs/dependencies.md ("SQLite driver"). It
// needs cgo for mattn/go-sqlite3, so it only builds with the driverbench
// tag; ordinary builds link the chosen driver alone.
//
//	go test -tags driverbench -run '^$' -bench Driver -benchtime 2s ./internal/store/sqlite/

package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/gatehouse/gatehouse/internal/store"
)

func mattnDSN(path string, writer bool, busy time.Duration) string {
	dsn := fmt.Sprintf("%s?_busy_timeout=%d&_foreign_keys=1", fileURI(path), busy.Milliseconds())
	if writer {
		return dsn + "&_journal_mode=WAL&_synchronous=NORMAL"
	}
	return dsn + "&_query_only=1"
}

func withDriver(d driverConfig) Option { return func(o *options) { o.driver = d } }

const benchUsers = 1000

// benchStore opens a store on drv with one realm, benchUsers users and one
// session each.
func benchStore(b *testing.B, drv driverConfig) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "gatehouse.db"), withDriver(drv))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.CreateRealm(ctx, store.Realm{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	users := make([]store.User, benchUsers)
	for i := range users {
		users[i] = store.User{
			Realm: "bench", ID: fmt.Sprintf("id-%d", i), Username: fmt.Sprintf("user%d", i),
			Email: fmt.Sprintf("user%d@example.test", i), Enabled: true, Created: time.Now(),
			PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
			RealmRoles:   []string{"user"}, Attributes: map[string][]string{"locale": {"de"}},
		}
	}
	if err := s.CreateUsers(ctx, users); err != nil {
		b.Fatal(err)
	}
	for i := range benchUsers {
		err := s.CreateSession(ctx, benchSession(fmt.Sprintf("s-%d", i), i), nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func benchSession(id string, user int) store.Session {
	now := time.Now()
	return store.Session{
		ID: id, Realm: "bench", UserID: fmt.Sprintf("id-%d", user), ClientID: "app",
		Started: now, LastSeen: now, Expires: now.Add(30 * time.Minute), Scope: "openid profile",
		RefreshID: "rt-" + id, IP: "192.0.2.1", UserAgent: "bench",
	}
}

// terminateOldest keeps at most five sessions per user, as a realm with a
// session limit does, so the admit read stays the size it is in practice.
func terminateOldest(existing []store.Session) ([]string, error) {
	var end []string
	for i := 0; i < len(existing)-4; i++ {
		end = append(end, existing[i].ID)
	}
	return end, nil
}

func BenchmarkDriver(b *testing.B) {
	drivers := []struct {
		name string
		cfg  driverConfig
	}{
		{"modernc", driverConfig{name: "sqlite", dsn: moderncDSN}},
		{"mattn", driverConfig{name: "sqlite3", dsn: mattnDSN}},
	}
	ops := []struct {
		name string
		op   func(s *Store, n int64) error
	}{
		{"GetUserByUsername", func(s *Store, n int64) error {
			_, err := s.GetUserByUsername(context.Background(), "bench", fmt.Sprintf("user%d", n%benchUsers))
			return err
		}},
		{"CreateSession", func(s *Store, n int64) error {
			return s.CreateSession(context.Background(), benchSession(fmt.Sprintf("n-%d", n), int(n%benchUsers)), terminateOldest)
		}},
		{"UpdateSession", func(s *Store, n int64) error {
			return s.UpdateSession(context.Background(), "bench", fmt.Sprintf("s-%d", n%benchUsers), func(x store.Session) (store.Session, error) {
				x.RefreshUses++
				x.LastSeen = time.Now()
				return x, nil
			})
		}},
	}
	for _, d := range drivers {
		for _, o := range ops {
			b.Run(d.name+"/"+o.name+"/serial", func(b *testing.B) {
				s := benchStore(b, d.cfg)
				var n int64
				b.ResetTimer()
				for b.Loop() {
					n++
					if err := o.op(s, n); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "ops/s")
			})
			b.Run(d.name+"/"+o.name+"/parallel8", func(b *testing.B) {
				s := benchStore(b, d.cfg)
				var n atomic.Int64
				// Eight goroutines whatever GOMAXPROCS is.
				b.SetParallelism((8 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := o.op(s, n.Add(1)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}
