package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/coretest"
	"github.com/gatehouse/gatehouse/internal/store"
)

// countingStore counts the realm reads that reach the store, and can hold
// back its change feed, so that a test sees what a node knows before the
// feed brings it its own writes.
type countingStore struct {
	store.Store
	realmReads atomic.Int64
	feed       sync.RWMutex
}

func (c *countingStore) Subscribe(fn func(store.Change)) func() {
	return c.Store.Subscribe(func(ch store.Change) {
		c.feed.RLock()
		defer c.feed.RUnlock()
		fn(ch)
	})
}

// holdFeed stops changes reaching the core until the returned func runs.
func (c *countingStore) holdFeed() (release func()) {
	c.feed.Lock()
	return c.feed.Unlock
}

func (c *countingStore) GetRealm(ctx context.Context, name string) (store.Realm, error) {
	c.realmReads.Add(1)
	return c.Store.GetRealm(ctx, name)
}

// newCountedService is coretest.New with cfg's cache bounds and a store
// that counts realm reads.
func newCountedService(t *testing.T, cfg core.Config) (*core.Service, *countingStore) {
	t.Helper()
	var cs *countingStore
	svc := coretest.New(t, "",
		coretest.WithStore(func(st store.Store) store.Store { cs = &countingStore{Store: st}; return cs }),
		coretest.WithConfig(func(c *core.Config) {
			c.UserCacheSize, c.ClientCacheSize = cfg.UserCacheSize, cfg.ClientCacheSize
			c.SessionCacheSize, c.MissingRealmCacheSize = cfg.SessionCacheSize, cfg.MissingRealmCacheSize
		}))
	return svc, cs
}

// TestCachesBounded: every account that gets a token is cached, but no
// more of them than the configured bounds, and a token whose user, client
// or session was pushed out is still checked correctly.
func TestCachesBounded(t *testing.T) {
	svc, _ := newCountedService(t, core.Config{UserCacheSize: 5, ClientCacheSize: 3, SessionCacheSize: 5})
	var users, clients []string
	for i := range 12 {
		users = append(users, fmt.Sprintf(`{"username": "u%d", "enabled": true, "credentials": [{"type": "password", "value": "pw"}]}`, i))
	}
	for i := range 6 {
		clients = append(clients, fmt.Sprintf(`{"clientId": "svc%d", "secret": "s", "serviceAccountsEnabled": true}`, i))
	}
	coretest.Import(t, svc, `{"realm": "many", "enabled": true, "clients": [
	  {"clientId": "app", "publicClient": true, "directAccessGrantsEnabled": true}, `+strings.Join(clients, ",")+`],
	  "users": [`+strings.Join(users, ",")+`]}`)
	ctx := context.Background()
	var tokens []string
	for i := range 12 {
		resp, err := svc.Token(ctx, core.TokenRequest{Realm: "many", GrantType: core.GrantPassword,
			Client: core.ClientAuth{ClientID: "app"}, Username: fmt.Sprintf("u%d", i), Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, resp.AccessToken)
	}
	for i := range 6 {
		resp, err := svc.Token(ctx, core.TokenRequest{Realm: "many", GrantType: core.GrantClientCredentials,
			Client: core.ClientAuth{ClientID: fmt.Sprintf("svc%d", i), Secret: "s"}})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, resp.AccessToken)
	}
	for round := range 2 {
		for _, tok := range tokens {
			if _, err := svc.Authenticate(ctx, "many", tok); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		u, c, s := svc.CacheLens()
		if u > 5 || c > 3 || s > 5 || u == 0 || c == 0 || s == 0 {
			t.Fatalf("round %d: %d users, %d clients, %d sessions cached; bounds 5, 3, 5", round, u, c, s)
		}
		svc.DropTokenCache()
	}
}

// TestUnknownRealmNoStoreRead: a request naming a realm that does not
// exist costs no store read, however many different names are tried; a
// realm imported afterwards is found at once, also under a name that was
// looked up, and found missing, before.
func TestUnknownRealmNoStoreRead(t *testing.T) {
	svc, cs := newCountedService(t, core.Config{})
	ctx := context.Background()
	before := cs.realmReads.Load()
	for i := range 1000 {
		if _, err := svc.Realm(ctx, fmt.Sprintf("nope-%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("nope-%d: %v", i, err)
		}
	}
	if n := cs.realmReads.Load() - before; n != 0 {
		t.Fatalf("1000 unknown names cost %d store reads", n)
	}
	release := cs.holdFeed()
	defer release()
	coretest.Import(t, svc, `{"realm": "nope-7", "enabled": true}`)
	if _, err := svc.Realm(ctx, "nope-7"); err != nil {
		t.Fatalf("realm not found right after its import: %v", err)
	}
}

// TestMissingRealmCache: while the list of realm names is being read again
// after a realm change, the bounded cache of missing names keeps repeated
// lookups of an unknown name off the store, and forgets a name as soon as
// a realm of that name is imported.
func TestMissingRealmCache(t *testing.T) {
	svc, cs := newCountedService(t, core.Config{MissingRealmCacheSize: 4})
	ctx := context.Background()
	svc.ForgetRealmNames()
	before := cs.realmReads.Load()
	for range 100 {
		if _, err := svc.Realm(ctx, "ghost"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n := cs.realmReads.Load() - before; n != 1 {
		t.Fatalf("100 lookups of one unknown name cost %d store reads, want 1", n)
	}
	release := cs.holdFeed()
	defer release()
	coretest.Import(t, svc, `{"realm": "ghost", "enabled": true}`)
	svc.ForgetRealmNames()
	if _, err := svc.Realm(ctx, "ghost"); err != nil {
		t.Fatalf("realm not found right after its import: %v", err)
	}
}
