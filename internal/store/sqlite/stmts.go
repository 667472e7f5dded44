package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// stmtCache keeps one prepared statement per query text for the read
// pool. Every query the
// store runs is one of a few dozen constant strings, and preparing is a
// large share of a short statement's cost (SQLite compiles the SQL each
// time), so each is prepared once per connection and reused.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// errRow is a row whose Scan fails with err (a statement that could not be
// prepared).
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queryRow runs a one-row query on the read pool.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) sqlstore.Scanner {
	st, err := s.rst.get(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a query on the read pool.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.rst.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// stmt returns the statement for query prepared on the writer
// connection, preparing it the first time.
func (t *wtx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	st, err := t.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	t.stmts[query] = st
	return st, nil
}

// exec, query and queryRow run a statement of the transaction. They take
// a ctx to share the querier interface with the read pool, but run every
// statement under the transaction's own context, which cannot be
// cancelled: a cancellable one makes the driver and database/sql each
// start a watcher goroutine per statement, a measurable share of a short
// write. write checks the caller's ctx before it commits instead, so a
// cancelled caller still writes nothing.
func (t *wtx) exec(_ context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(t.ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *wtx) query(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(t.ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

func (t *wtx) queryRow(_ context.Context, query string, args ...any) sqlstore.Scanner {
	st, err := t.stmt(t.ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(t.ctx, args...)
}
