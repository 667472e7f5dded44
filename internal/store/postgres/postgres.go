// Package postgres is gatehouse's store for running several replicas: one
// PostgreSQL database (or one schema in it) shared by every gatehouse
// process.
//
// Every write runs in a READ COMMITTED transaction that first locks the
// rows it decides on (SELECT ... FOR UPDATE): an update function sees the
// newest committed row and no other replica can write that row until the
// transaction ends, so a read-modify-write is race-free across processes.
// CreateSession locks the user's row before it lists the user's sessions,
// which serializes concurrent logins of one user on every replica.
// Deadlocks and serialization failures (SQLSTATE 40P01, 40001) are retried
// a few times, so an update function may run more than once, as the
// store.Store contract allows.
//
// Changes reach subscribers through LISTEN/NOTIFY: a write queues its
// changes with pg_notify inside its own transaction (PostgreSQL sends them
// on commit and drops them on rollback), and every Store listens on a
// dedicated connection and hands what arrives, its own changes and other
// replicas', to its subscribers in commit order. A change is delivered
// once, through the listener only.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store backed by PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	channel string // the NOTIFY channel of this schema
	log     *slog.Logger
	retries int
	idle    time.Duration // listener: ping after this much silence

	// listenCfg makes the listener's own connection, outside the pool:
	// a pooled connection would be handed back and its LISTEN lost.
	listenCfg *pgx.ConnConfig
	listening atomic.Bool  // the listener is connected now
	listenPID atomic.Int32 // its backend pid, for tests that cut it
	stop      context.CancelFunc
	done      chan struct{} // closed when the listener has exited

	fan     sqlstore.Fanout
	subMu   sync.Mutex             // orders admissions and deliveries
	pending map[string]*pendingSub // Subscribe barriers not yet seen
	closed  bool
}

// Option adjusts how Open sets up the store.
type Option func(*options)

type options struct {
	log     *slog.Logger
	channel string
	retries int
	idle    time.Duration
}

// WithLogger sets where the store reports listener reconnects (default:
// nowhere). Nothing the store logs contains a secret or a payload.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithChannel sets the LISTEN/NOTIFY channel. The default is
// "gatehouse_changes" for the public schema and "gatehouse_changes_<schema>"
// otherwise, so that deployments in different schemas of one database do
// not see each other's changes; every replica of one deployment must use
// the same channel.
func WithChannel(name string) Option {
	return func(o *options) {
		if name != "" {
			o.channel = name
		}
	}
}

// WithRetries sets how many times a write that hit a deadlock or a
// serialization failure is tried again (default 5).
func WithRetries(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.retries = n
		}
	}
}

// defaultConnectTimeout applies when the URL sets no connect_timeout.
const defaultConnectTimeout = 10 * time.Second

// maxIdentifier is PostgreSQL's limit on a channel name (NAMEDATALEN-1).
const maxIdentifier = 63

// Open connects to the database at url (a postgres:// URL or key=value
// string as libpq reads them; pgxpool's pool_max_conns and friends apply;
// connect_timeout defaults to 10 s),
// applies any pending schema migrations and starts listening for changes.
// Tables live in the first schema of the connection's search_path (set it
// in the URL, e.g. ?search_path=gatehouse); a database whose schema is
// newer than this binary knows is refused.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler), retries: 5, idle: idleCheck}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parser's message may quote the URL, password and all.
		return nil, errors.New("postgres: the database URL cannot be parsed (not shown: it may hold a password)")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without one an unreachable host holds a start-up (or a
		// listener reconnect) for the system's TCP timeout, minutes.
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	lctx, stop := context.WithCancel(context.Background())
	s := &Store{
		pool: pool, log: o.log, retries: o.retries, idle: o.idle,
		listenCfg: cfg.ConnConfig.Copy(),
		stop:      stop, done: make(chan struct{}),
		pending: map[string]*pendingSub{},
	}
	schema, err := s.migrate(ctx)
	if err != nil {
		stop()
		pool.Close()
		return nil, err
	}
	s.channel = o.channel
	if s.channel == "" {
		s.channel = channelFor(schema)
	}
	if len(s.channel) > maxIdentifier {
		stop()
		pool.Close()
		return nil, fmt.Errorf("postgres: channel name longer than %d bytes", maxIdentifier)
	}
	// The first LISTEN happens before Open returns, so that no change
	// committed after Open can be missed; later reconnects are the
	// listener's own business.
	conn, err := s.connectListener(ctx)
	if err != nil {
		stop()
		pool.Close()
		return nil, err
	}
	go s.listen(lctx, conn)
	return s, nil
}

// Ping reports whether the database answers and the change feed is
// connected: a replica that cannot hear other replicas' writes would serve
// from stale caches.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	if !s.listening.Load() {
		return errors.New("postgres: change feed not connected (reconnecting)")
	}
	return nil
}

// Close stops every subscription and the listener, and closes the pool
// once the connections in use are back.
func (s *Store) Close() error {
	s.subMu.Lock()
	if s.closed {
		s.subMu.Unlock()
		return nil
	}
	s.closed = true
	s.fan.Close()
	// A Subscribe still waiting for its barrier returns now, with nothing
	// subscribed.
	s.admitAllPendingLocked()
	s.subMu.Unlock()
	s.stop()
	<-s.done
	s.pool.Close()
	return nil
}

// wtx is a write transaction and the changes it will announce on commit.
type wtx struct {
	pgx.Tx
	changes []store.Change
}

func (t *wtx) changed(c store.Change) { t.changes = append(t.changes, c) }

// write runs fn in a transaction, retrying it after a deadlock or a
// serialization failure. fn's own errors come back unchanged and end the
// transaction without announcing anything.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		if err == nil || attempt >= s.retries || !retryable(err) {
			return err
		}
		// A short random pause lets the other side of a deadlock finish.
		pause := time.Duration(1+rand.IntN(10*(attempt+1))) * time.Millisecond
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(*wtx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	// Rollback must reach the server even when ctx is done, or the
	// connection would go back to the pool inside a transaction.
	end := context.WithoutCancel(ctx)
	t := &wtx{Tx: tx}
	if err := fn(t); err != nil {
		if rbErr := tx.Rollback(end); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			return errors.Join(err, fmt.Errorf("postgres: rollback: %w", rbErr))
		}
		return err
	}
	for _, p := range encodeChanges(t.changes) {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, p); err != nil {
			_ = tx.Rollback(end)
			return fmt.Errorf("postgres: notify: %w", err)
		}
	}
	if err := tx.Commit(end); err != nil {
		return mapErr(err, "commit")
	}
	return nil
}

// retryable reports a failure that running the transaction again can
// cure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// mapErr turns constraint violations into the store's errors. The
// message names what failed but never the values involved (the server's
// detail text, which quotes them, is left out).
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	case errors.As(err, &pe) && pe.Code == "23505": // unique_violation
		return fmt.Errorf("%s: %w", what, store.ErrAlreadyExists)
	case errors.As(err, &pe) && pe.Code == "23503": // foreign_key_violation
		return fmt.Errorf("%s: realm or user: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// mustAffect returns ErrNotFound when a statement touched no row.
func mustAffect(tag pgconn.CommandTag, what string) error {
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// collect scans every row and closes rows; no rows gives nil.
func collect[T any](rows pgx.Rows, err error, what string, scan func(sqlstore.Scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, mapErr(err, what)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, mapErr(err, what)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err, what)
	}
	return out, nil
}

// insertSQL builds INSERT INTO table (cols) VALUES ($1, ...).
func insertSQL(table, cols string) string {
	n := len(sqlstore.Columns(cols))
	ph := make([]string, n)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return "INSERT INTO " + table + " (" + cols + ") VALUES (" + strings.Join(ph, ", ") + ")"
}

// updateSQL builds UPDATE table SET col = $n, ... WHERE k1 = $1 AND ...
// for the columns of cols that are not keys; the arguments are the full
// column list in cols order, keys included, so that one args function
// serves inserts and updates. The key columns must come first in cols.
func updateSQL(table, cols string, keys int) string {
	names := sqlstore.Columns(cols)
	var set, where []string
	for i, c := range names {
		p := c + " = $" + strconv.Itoa(i+1)
		if i < keys {
			where = append(where, p)
		} else {
			set = append(set, p)
		}
	}
	return "UPDATE " + table + " SET " + strings.Join(set, ", ") + " WHERE " + strings.Join(where, " AND ")
}
