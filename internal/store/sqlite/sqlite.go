// Package sqlite is gatehouse's embedded store: one SQLite file under the
// data directory, no server to run.
//
// SQLite admits one writer at a time, so the store keeps exactly one writer
// connection and runs every write transaction on it, one after the other,
// starting each with BEGIN IMMEDIATE. An update function therefore reads and
// writes its rows while no other write can interleave, in this process or in
// another one that opens the same file (a CLI import, say): the
// read-modify-write is race-free without any row locking. Reads go to a
// separate pool of read-only connections, which WAL mode lets run alongside
// the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store backed by one SQLite database file.
type Store struct {
	w *sql.DB // a pool of exactly one connection: the writer
	r *sql.DB // read-only pool

	// wsem serializes write transactions and the publication of their
	// changes, so that subscribers see changes in commit order. It is a
	// channel rather than a mutex so that a waiting writer honours its
	// context. Holding it is what entitles a goroutine to use wconn and
	// wst.
	wsem  chan struct{}
	wconn *sql.Conn            // the writer connection, held for the store's life
	wst   map[string]*sql.Stmt // statements prepared on wconn
	rst   *stmtCache           // statements prepared on the read pool

	fan sqlstore.Fanout
}

// Option adjusts how Open sets up the database.
type Option func(*options)

type options struct {
	readers     int
	busyTimeout time.Duration
	driver      driverConfig
}

// WithReaders sets the size of the read connection pool (default: the
// larger of 4 and GOMAXPROCS).
func WithReaders(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.readers = n
		}
	}
}

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process on the same file before giving up (default 5 s).
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.busyTimeout = d
		}
	}
}

// driverConfig names a database/sql driver and how to spell a DSN for it;
// the pragmas are in the DSN so that every pooled connection gets them.
type driverConfig struct {
	name string
	dsn  func(path string, writer bool, busy time.Duration) string
}

// Open opens (creating if needed) the database at path, applies any pending
// schema migrations and returns the store. It refuses a database whose
// schema is newer than this binary knows.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{
		readers:     max(4, runtime.GOMAXPROCS(0)),
		busyTimeout: 5 * time.Second,
		driver:      defaultDriver(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}

	w, err := sql.Open(o.driver.name, o.driver.dsn(path, true, o.busyTimeout))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	wconn, err := w.Conn(context.Background())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{
		w: w, wconn: wconn, wst: map[string]*sql.Stmt{},
		wsem: make(chan struct{}, 1),
	}
	if err := s.migrate(context.Background()); err != nil {
		_ = wconn.Close()
		_ = w.Close()
		return nil, err
	}

	// The read pool is opened after the migration so that journal_mode=WAL,
	// which is a property of the file, is already in place.
	r, err := sql.Open(o.driver.name, o.driver.dsn(path, false, o.busyTimeout))
	if err != nil {
		_ = wconn.Close()
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(o.readers)
	r.SetMaxIdleConns(o.readers)
	s.r, s.rst = r, newStmtCache(r)
	if err := s.Ping(context.Background()); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// fileURI turns a file path into the file: URI both drivers accept,
// escaping the characters that would end the path part.
func fileURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// Ping reports whether both the writer and a reader can reach the file.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping reader: %w", err)
	}
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wsem }()
	if err := s.wconn.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	return nil
}

// Close stops every subscription and closes the database.
func (s *Store) Close() error {
	s.fan.Close()
	// Statements first: a connection closes cleanly only without them.
	// Taking wsem waits for a write under way to finish.
	s.wsem <- struct{}{}
	var errs []error
	for q, st := range s.wst {
		errs = append(errs, st.Close())
		delete(s.wst, q)
	}
	errs = append(errs, s.wconn.Close())
	<-s.wsem
	if s.r != nil {
		errs = append(errs, s.rst.close(), s.r.Close())
	}
	return errors.Join(append(errs, s.w.Close())...)
}

// wtx is a write transaction on the writer connection and the changes it
// will announce once it has committed.
type wtx struct {
	ctx     context.Context // never cancelled; see exec
	conn    *sql.Conn
	stmts   map[string]*sql.Stmt
	changes []store.Change
}

func (t *wtx) changed(c store.Change) { t.changes = append(t.changes, c) }

// write runs fn in a write transaction on the writer connection. The
// transaction commits if fn returns nil; fn's error is returned unchanged
// otherwise, and no change is published.
//
// The transaction is spelled out (BEGIN IMMEDIATE ... COMMIT) on the one
// writer connection rather than taken from database/sql's Tx, so that the
// statements prepared on that connection are reused across transactions.
// IMMEDIATE takes SQLite's write lock at once: another process writing the
// same file waits (busy_timeout) before our first read, not after it.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wsem }()

	// The end of a transaction must happen even when ctx is done, or the
	// connection would stay inside it.
	end := context.WithoutCancel(ctx)
	// BEGIN, COMMIT and ROLLBACK go through the connection's statement
	// cache like every other statement: compiling them anew was a tenth
	// of a short write transaction's cost.
	t := &wtx{ctx: end, conn: s.wconn, stmts: s.wst}
	// Only BEGIN honours ctx: it is the statement that can wait, on
	// another process's write lock (busy_timeout).
	begin, err := t.stmt(end, "BEGIN IMMEDIATE")
	if err == nil {
		_, err = begin.ExecContext(ctx)
	}
	if err != nil {
		// A failed BEGIN may still have begun: the driver interrupts a
		// statement when ctx ends and then reports ctx's error even if
		// the statement had already completed. Left inside that
		// transaction, the one writer connection would refuse every
		// later BEGIN for the life of the store. A ROLLBACK with nothing
		// to roll back only fails harmlessly.
		_, _ = t.exec(end, "ROLLBACK")
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	err = fn(t)
	if err == nil {
		err = ctx.Err() // cancelled meanwhile: write nothing
	}
	if err != nil {
		if _, rbErr := t.exec(end, "ROLLBACK"); rbErr != nil {
			return errors.Join(err, fmt.Errorf("sqlite: rollback: %w", rbErr))
		}
		return err
	}
	if _, err := t.exec(end, "COMMIT"); err != nil {
		_, _ = t.exec(end, "ROLLBACK")
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	s.publish(t.changes)
	return nil
}

// mapErr turns SQLite constraint violations into the store's errors. Both
// drivers carry SQLite's own message text, which is what is matched here,
// so the store does not depend on either driver's error type.
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "UNIQUE constraint failed"):
		return fmt.Errorf("%s: %w", what, store.ErrAlreadyExists)
	case strings.Contains(msg, "FOREIGN KEY constraint failed"):
		return fmt.Errorf("%s: realm or user: %w", what, store.ErrNotFound)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// mustAffect returns ErrNotFound when a statement touched no row.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// collect scans every row and closes rows.
func collect[T any](rows *sql.Rows, scan func(sqlstore.Scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read rows: %w", err)
	}
	return out, nil
}

// insertSQL builds INSERT INTO table (cols) VALUES (?, ...).
func insertSQL(table, cols string) string {
	n := len(sqlstore.Columns(cols))
	return "INSERT INTO " + table + " (" + cols + ") VALUES (" + strings.Repeat("?, ", n-1) + "?)"
}

// updateSQL builds UPDATE table SET col = ?, ... WHERE where, with the
// SET values in cols order followed by where's own arguments.
func updateSQL(table, cols, where string) string {
	names := sqlstore.Columns(cols)
	for i, c := range names {
		names[i] = c + " = ?"
	}
	return "UPDATE " + table + " SET " + strings.Join(names, ", ") + " WHERE " + where
}
