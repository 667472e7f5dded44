// Package coretest builds a core.Service for tests: the real core on the
// real SQLite store, in a file under the test's temporary directory, with
// a fresh master key. The core's own tests and those of the doors built on
// it share it, so that each one tests against the same service main builds
// rather than a copy of its wiring.
package coretest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/realmjson"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
)

// CheapPasswords returns argon2id parameters at the smallest cost the
// hasher accepts. Tests hash many passwords; Keycloak's parameters would
// make a package's tests take minutes and test nothing more.
func CheapPasswords() password.Params {
	return password.Params{Memory: 64, Iterations: 1, Parallelism: 1}
}

// Option adjusts the configuration of the service New builds.
type Option func(*options)

type options struct {
	passwords password.Params
	now       func() time.Time
	config    func(*core.Config)
	wrap      func(store.Store) store.Store
}

// WithConfig lets f adjust the configuration after New has filled it in
// (cache bounds, BaseURL, ...).
func WithConfig(f func(*core.Config)) Option {
	return func(o *options) { o.config = f }
}

// WithStore puts wrap's result between the service and its SQLite store,
// for tests that count or refuse store calls.
func WithStore(wrap func(store.Store) store.Store) Option {
	return func(o *options) { o.wrap = wrap }
}

// WithPasswords hashes user passwords with p instead of CheapPasswords()
// (benchmarks measure Keycloak's parameters).
func WithPasswords(p password.Params) Option {
	return func(o *options) { o.passwords = p }
}

// WithClock makes now the service's clock, for tests of expiry.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// New returns a core.Service on a new SQLite file under t.TempDir() and
// imports realmJSON (a Keycloak realm export) into it unless it is empty.
// The service, its keys and its store are closed when the test ends.
func New(t testing.TB, realmJSON string, opts ...Option) *core.Service {
	t.Helper()
	svc, _ := NewWithKeys(t, realmJSON, opts...)
	return svc
}

// NewWithKeys is New that also returns the service's key manager, which
// the doors need beside the service.
func NewWithKeys(t testing.TB, realmJSON string, opts ...Option) (*core.Service, *keys.Manager) {
	t.Helper()
	o := options{passwords: CheapPasswords()}
	for _, opt := range opts {
		opt(&o)
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	km, err := keys.NewManager(st, master, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(km.Close)
	var s store.Store = st
	if o.wrap != nil {
		s = o.wrap(st)
	}
	cfg := core.Config{
		Store: s, Keys: km,
		Passwords: password.NewHasher(o.passwords),
		Secrets:   password.NewSecretHasher(password.DeriveKey(master, "client-secret-hash")),
		BaseURL:   "http://127.0.0.1:8080",
		Now:       o.now,
	}
	if o.config != nil {
		o.config(&cfg)
	}
	svc, err := core.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	if realmJSON != "" {
		Import(t, svc, realmJSON)
	}
	return svc, km
}

// Import imports realmJSON (a Keycloak realm export) into svc, failing the
// test if it does not parse or import.
func Import(t testing.TB, svc *core.Service, realmJSON string) {
	t.Helper()
	p, err := realmjson.Parse([]byte(realmJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ImportRealm(context.Background(), p, false); err != nil {
		t.Fatal(err)
	}
}
