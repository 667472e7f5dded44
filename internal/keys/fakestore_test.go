package keys

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// memStore is an in-memory store.Store with real behaviour for keys, realms
// listing and the change feed; every other method panics through the nil
// embedded interface, which tells a test it strayed.
type memStore struct {
	store.Store

	mu       sync.Mutex
	realms   []string
	keys     map[string][]store.Key // realm → keys, oldest first
	subs     map[int]func(store.Change)
	nextSub  int
	listings int // ListKeys calls, to check caching
	// listDelay slows ListKeys down, so that concurrent callers overlap.
	listDelay time.Duration
}

func newMemStore(realms ...string) *memStore {
	return &memStore{realms: realms, keys: map[string][]store.Key{}, subs: map[int]func(store.Change){}}
}

func (s *memStore) notify(c store.Change) {
	s.mu.Lock()
	fns := make([]func(store.Change), 0, len(s.subs))
	for _, fn := range s.subs {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	// Called synchronously after the write, with no lock held: the
	// strictest version of the contract for deadlocks.
	for _, fn := range fns {
		fn(c)
	}
}

func (s *memStore) Subscribe(fn func(store.Change)) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

func (s *memStore) ListRealms(ctx context.Context) ([]store.Realm, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Realm
	for _, r := range s.realms {
		out = append(out, store.Realm{Name: r, Enabled: true})
	}
	return out, nil
}

func (s *memStore) ListKeys(ctx context.Context, realm string) ([]store.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	d := s.listDelay
	s.listings++
	s.mu.Unlock()
	time.Sleep(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Key, len(s.keys[realm]))
	for i, k := range s.keys[realm] {
		out[i] = cloneKey(k)
	}
	return out, nil
}

func (s *memStore) CreateKey(ctx context.Context, k store.Key) error {
	s.mu.Lock()
	for _, o := range s.keys[k.Realm] {
		if o.KID == k.KID {
			s.mu.Unlock()
			return store.ErrAlreadyExists
		}
	}
	s.keys[k.Realm] = append(s.keys[k.Realm], cloneKey(k))
	s.mu.Unlock()
	s.notify(store.Change{Kind: store.ChangeKey, Realm: k.Realm, ID: k.KID})
	return nil
}

func (s *memStore) UpdateKey(ctx context.Context, realm, kid string, fn func(store.Key) (store.Key, error)) error {
	s.mu.Lock()
	ks := s.keys[realm]
	i := slices.IndexFunc(ks, func(k store.Key) bool { return k.KID == kid })
	if i < 0 {
		s.mu.Unlock()
		return store.ErrNotFound
	}
	nk, err := fn(cloneKey(ks[i]))
	if err != nil {
		s.mu.Unlock()
		return err
	}
	nk.Realm, nk.KID = realm, kid
	ks[i] = cloneKey(nk)
	s.mu.Unlock()
	s.notify(store.Change{Kind: store.ChangeKey, Realm: realm, ID: kid})
	return nil
}

func (s *memStore) DeleteKey(ctx context.Context, realm, kid string) error {
	s.mu.Lock()
	ks := s.keys[realm]
	i := slices.IndexFunc(ks, func(k store.Key) bool { return k.KID == kid })
	if i < 0 {
		s.mu.Unlock()
		return store.ErrNotFound
	}
	s.keys[realm] = slices.Delete(ks, i, i+1)
	s.mu.Unlock()
	s.notify(store.Change{Kind: store.ChangeKey, Realm: realm, ID: kid})
	return nil
}

// rawKeys returns the stored keys without counting a listing.
func (s *memStore) rawKeys(realm string) []store.Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys[realm])
}

func cloneKey(k store.Key) store.Key {
	k.Private = slices.Clone(k.Private)
	k.Public = slices.Clone(k.Public)
	return k
}
