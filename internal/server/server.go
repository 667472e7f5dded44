// Package server builds a whole gatehouse from its configuration: the store,
// the keys, the core, the front doors and the HTTP routes. main calls it,
// and so do the end-to-end tests, so that what they test is what runs.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientaddr"
	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/fusio"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/oidc"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/portal"
	"github.com/gatehouse/gatehouse/internal/rawconn"
	"github.com/gatehouse/gatehouse/internal/realmjson"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/postgres"
	"github.com/gatehouse/gatehouse/internal/store/sqlite"
	"github.com/gatehouse/gatehouse/internal/syncgw"
)

// Config is the server's configuration, from flags.
type Config struct {
	// Addr is where serve listens (host:port).
	Addr string
	// DataDir holds the SQLite database, the master key (unless
	// GATEHOUSE_MASTER_KEY is set or MasterKeyFile says otherwise) and the
	// demo realm's credentials.
	DataDir string
	// DBURL selects PostgreSQL; empty means embedded SQLite.
	DBURL string
	// MasterKeyFile overrides DataDir/master.key.
	MasterKeyFile string
	// PublicURL is the base of every issuer; default http://Addr.
	PublicURL string
	// ImportRealms are realm-export files imported at start when their
	// realm does not exist yet.
	ImportRealms []string
	// Demo creates the demo realm on first start.
	Demo bool
	// DefaultRealm serves the front doors whose paths name no realm (the
	// Fusio consumer API, the portal, the gateway when no realm's domain
	// matches). Default: "demo".
	DefaultRealm string
	// SMTPURL configures outgoing mail (registration activation links):
	// smtp://user:pass@host:port?from=ADDRESS, or smtps:// for TLS from
	// the start. Empty: no mail.
	SMTPURL string
	// Dev is development mode: without SMTPURL, activation links are
	// written to the log instead of being mailed.
	Dev bool
	// Passwords are the argon2id parameters for new hashes.
	Passwords password.Params
	// RateLimit is requests per second per client address (0: off) to the
	// endpoints that check credentials: the OIDC token endpoints, Fusio's
	// token endpoint, consumer login, registration and activation, the
	// portal's sign-in form and Sync Gateway's _oidc_refresh. They share
	// one bucket per address. RateBurst is the bucket size;
	// RateLimitLoopback applies it to loopback addresses too.
	RateLimit         float64
	RateBurst         int
	RateLimitLoopback bool
	// BodyReadTimeout bounds how long a request to one of gatehouse's own
	// endpoints may take to send its body (default 15 s). The gateway's
	// proxied requests are exempt: their bodies stream under the
	// gateway's own idle timeout.
	BodyReadTimeout time.Duration
	Logger          *slog.Logger
	// Out receives the human-readable start-up text (the demo's curl
	// commands); nil discards it.
	Out io.Writer
}

// Server is a running gatehouse.
type Server struct {
	cfg   Config
	log   *slog.Logger
	Store store.Store
	Keys  *keys.Manager
	Core  *core.Service
	mux   *http.ServeMux
	ready atomic.Bool

	httpSrv *http.Server
	stop    chan struct{}
	wg      sync.WaitGroup
}

// Open builds everything and imports realms; it does not listen yet.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.Addr
	}
	if cfg.DefaultRealm == "" {
		cfg.DefaultRealm = DemoRealm
	}
	if cfg.Passwords == (password.Params{}) {
		cfg.Passwords = password.DefaultParams()
	}
	// The data directory holds the SQLite database and, with PostgreSQL
	// too, the master key file (unless GATEHOUSE_MASTER_KEY or
	// MasterKeyFile says otherwise) and the demo realm's credentials; it
	// is created only when one of those lives there.
	if cfg.DBURL == "" || cfg.Demo || (cfg.MasterKeyFile == "" && os.Getenv(keys.MasterKeyEnv) == "") {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	var st store.Store
	if cfg.DBURL != "" {
		if os.Getenv(keys.MasterKeyEnv) == "" && cfg.MasterKeyFile == "" {
			// A key file under --data is one per machine unless copied.
			cfg.Logger.Warn("with PostgreSQL every replica must use the same master key: set " + keys.MasterKeyEnv + " (or share the key file) on all of them")
		}
		pg, err := postgres.Open(ctx, cfg.DBURL, postgres.WithLogger(cfg.Logger))
		if err != nil {
			return nil, fmt.Errorf("opening the PostgreSQL store: %w", err)
		}
		st = pg
	} else {
		lite, err := sqlite.Open(filepath.Join(cfg.DataDir, "gatehouse.db"))
		if err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		st = lite
	}
	s, err := build(ctx, cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

func build(ctx context.Context, cfg Config, st store.Store) (*Server, error) {
	log := cfg.Logger
	keyFile := cfg.MasterKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "master.key")
	}
	master, created, err := keys.LoadMasterKey(keyFile)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("no master key given: created one; keep it safe and apart from backups of the database, or set "+keys.MasterKeyEnv, "file", keyFile)
	}
	km, err := keys.NewManager(st, master, log)
	if err != nil {
		return nil, err
	}
	if err := checkMasterKey(ctx, st, km); err != nil {
		km.Close()
		return nil, err
	}
	svc, err := core.New(ctx, core.Config{
		Store:     st,
		Keys:      km,
		Passwords: password.NewHasher(cfg.Passwords),
		Secrets:   password.NewSecretHasher(password.DeriveKey(master, "client-secret-hash")),
		BaseURL:   cfg.PublicURL,
		Logger:    log,
		HTTPGet:   httpGet,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, Store: st, Keys: km, Core: svc, stop: make(chan struct{})}
	for _, f := range cfg.ImportRealms {
		if err := s.importAtStart(ctx, f); err != nil {
			return nil, err
		}
	}
	if cfg.Demo {
		if err := s.ensureDemo(ctx); err != nil {
			return nil, err
		}
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s, nil
}

// checkMasterKey refuses a master key that cannot open the keys already
// sealed in the store. Such a server (a replica given another key than the
// rest, a data directory with the wrong key file) would start, report
// ready, and answer every login with an internal error. One key that opens
// is enough: every key in the store was sealed with the same master key.
func checkMasterKey(ctx context.Context, st store.Store, km *keys.Manager) error {
	realms, err := st.ListRealms(ctx)
	if err != nil {
		return err
	}
	for _, r := range realms {
		ks, err := st.ListKeys(ctx, r.Name)
		if err != nil {
			return err
		}
		for _, k := range ks {
			if len(k.Private) == 0 {
				continue
			}
			plain, err := km.Open(k.Private)
			clear(plain)
			if err != nil {
				return fmt.Errorf("the master key does not open the signing keys in the store (realm %q): "+
					"every replica must use the key the store was created with (%s or --master-key-file)", r.Name, keys.MasterKeyEnv)
			}
			return nil
		}
	}
	return nil
}

// importAtStart imports one --import-realm file unless its realm exists.
func (s *Server) importAtStart(ctx context.Context, file string) error {
	p, err := ParseRealmFile(file)
	if err != nil {
		return err
	}
	WarnUnknown(s.log, file, p)
	exists, err := s.Core.RealmExists(ctx, p.Realm.Name)
	if err != nil {
		return err
	}
	if exists {
		s.log.Info("realm exists; import skipped (use `gatehouse import --overwrite` to replace it)", "realm", p.Realm.Name, "file", file)
		return nil
	}
	if err := s.Core.ImportRealm(ctx, p, false); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			// Another replica, started at the same moment, imported it
			// between the check above and this import.
			s.log.Info("realm imported by another replica; import skipped", "realm", p.Realm.Name, "file", file)
			return nil
		}
		return fmt.Errorf("%s: %w", file, err)
	}
	s.log.Info("realm imported", "realm", p.Realm.Name, "file", file, "clients", len(p.Clients), "users", len(p.Users))
	return nil
}

// ParseRealmFile reads and parses a realm-export file; errors name the file
// and the JSON path, and unknown fields are logged as one warning by the
// caller through the returned list.
func ParseRealmFile(file string) (*realmjson.Parsed, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p, err := realmjson.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// WarnUnknown logs, in one line, the fields of a realm export that gatehouse
// does not interpret.
func WarnUnknown(log *slog.Logger, file string, p *realmjson.Parsed) {
	if len(p.Unknown) == 0 {
		return
	}
	const show = 40
	fields := p.Unknown
	more := ""
	if len(fields) > show {
		more = fmt.Sprintf(" (and %d more)", len(fields)-show)
		fields = fields[:show]
	}
	log.Warn("realm export has fields gatehouse does not interpret; they are kept for export but have no effect",
		"file", file, "realm", p.Realm.Name, "fields", strings.Join(fields, ", ")+more)
}

func (s *Server) routes() {
	// One limiter for every door that checks credentials, so that an
	// address has one budget however it asks. It stays a nil interface
	// when off: each door takes nil as "no limit".
	var lim clientaddr.Limiter
	if s.cfg.RateLimit > 0 {
		lim = newRateLimiter(s.cfg.RateLimit, s.cfg.RateBurst, s.cfg.RateLimitLoopback)
	}
	oidc.New(s.Core, s.Keys, s.log, lim).Register(s.mux)
	fusio.New(s.Core, fusio.Options{Realm: s.cfg.DefaultRealm, Logger: s.log, SMTPURL: s.cfg.SMTPURL, Dev: s.cfg.Dev,
		Limiter: lim}).Register(s.mux)
	portal.MustNew(s.Core, portal.Options{DefaultRealm: s.cfg.DefaultRealm, PublicURL: s.cfg.PublicURL, Sealer: s.Keys, Logger: s.log,
		Limiter: lim}).Register(s.mux)
	// Everything that is not one of gatehouse's own paths goes to the
	// gateway of the realm the Host names (or the default realm).
	gw := gateway.New(gatewayAuth{s.Core}, gateway.Options{
		Logger: s.log,
		RealmFor: func(r *http.Request) string {
			if realm, ok := s.Core.RealmForHost(r.Host); ok {
				return realm
			}
			return s.cfg.DefaultRealm
		},
	})
	// Sync Gateway's /{db}/_oidc_refresh cannot be a mux pattern beside
	// /realms/{realm}; it is picked out in front of the gateway instead.
	s.mux.Handle("/", syncgw.New(s.Core, s.log, lim).Wrap(streamingBody(gw)))
	s.mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"UP"}`))
	})
	s.mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !s.ready.Load() || s.Store.Ping(ctx) != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"DOWN"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"UP"}`))
	})
}

// gatewayAuth lets ID tokens reach the gateway, which accepts them only for
// realms whose gateway configuration says so.
type gatewayAuth struct{ *core.Service }

func (a gatewayAuth) Authenticate(ctx context.Context, realm, bearer string) (*core.Principal, error) {
	return a.Service.AuthenticateAllowID(ctx, realm, bearer)
}

// Handler is the whole HTTP surface, with request logging, panic
// containment and the body read deadline.
func (s *Server) Handler() http.Handler {
	return s.logRequests(bodyDeadline(s.cfg.BodyReadTimeout, s.mux))
}

// logRequests logs method, path (never the query, which may carry a
// token), status and duration, and turns a panic into a 500 without a
// stack trace on the wire.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				if !sw.wrote {
					sw.Header().Set("Content-Type", "application/json")
					sw.WriteHeader(500)
					_, _ = sw.Write([]byte(`{"error":"server_error","error_description":"internal error"}`))
				}
			}
			if s.log.Enabled(r.Context(), slog.LevelDebug) || sw.status >= 500 {
				s.log.Log(r.Context(), levelFor(sw.status), "request", "method", r.Method, "path", r.URL.Path,
					"status", sw.status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelDebug
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Serve answers on ln until Close; readiness turns on once it listens.
func (s *Server) Serve(ln net.Listener) error {
	s.httpSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Add(1)
	go s.maintain()
	s.ready.Store(true)
	err := s.httpSrv.Serve(rawconn.Listener{Listener: ln})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// maintain deletes expired sessions and retired keys once a minute.
func (s *Server) maintain() {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := s.Core.Maintain(ctx); err != nil {
				s.log.Warn("maintenance", "err", err)
			}
			cancel()
		}
	}
}

// Close stops serving (letting requests in flight finish) and closes the
// store.
func (s *Server) Close(ctx context.Context) error {
	s.ready.Store(false)
	var err error
	if s.httpSrv != nil {
		err = s.httpSrv.Shutdown(ctx)
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
	s.Core.Close()
	s.Keys.Close()
	if cerr := s.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

// httpGet fetches a client's jwks.url with a short timeout and a size cap.
func httpGet(ctx context.Context, url string) ([]byte, error) {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, errors.New("jwks.url must be http(s)")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks.url answered %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
