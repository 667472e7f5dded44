package sqlite

import (
	"context"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// insertUsers inserts us with one prepared statement; realm, when not
// empty, overrides each user's Realm (an import). The first conflict
// aborts the caller's transaction.
func insertUsers(ctx context.Context, tx *wtx, us []store.User, realm string) error {
	if len(us) == 0 {
		return nil
	}
	stmt, err := tx.stmt(ctx, insertSQL("users", sqlstore.UserColumns))
	if err != nil {
		return err
	}
	for _, u := range us {
		if realm != "" {
			u.Realm = realm
		}
		args, err := sqlstore.UserArgs(u)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return mapErr(err, "create user "+u.Username)
		}
		tx.changed(store.Change{Kind: store.ChangeUser, Realm: u.Realm, ID: u.ID})
	}
	return nil
}

// CreateUser inserts u; its realm must exist and its id and username be
// new in the realm.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return s.CreateUsers(ctx, []store.User{u})
}

// CreateUsers inserts every user or, on the first conflict, none.
func (s *Store) CreateUsers(ctx context.Context, us []store.User) error {
	return s.write(ctx, func(tx *wtx) error { return insertUsers(ctx, tx, us, "") })
}

func (s *Store) getUser(ctx context.Context, what, where string, args ...any) (store.User, error) {
	u, err := sqlstore.ScanUser(s.queryRow(ctx, `SELECT `+sqlstore.UserColumns+` FROM users WHERE `+where, args...))
	if err != nil {
		return store.User{}, mapErr(err, what)
	}
	return u, nil
}

// GetUser returns the user with this id.
func (s *Store) GetUser(ctx context.Context, realm, id string) (store.User, error) {
	return s.getUser(ctx, "user "+id, `realm = ? AND id = ?`, realm, id)
}

// GetUserByUsername returns the user with exactly this username.
func (s *Store) GetUserByUsername(ctx context.Context, realm, username string) (store.User, error) {
	return s.getUser(ctx, "user by username", `realm = ? AND username = ?`, realm, username)
}

// GetUserByEmail returns the user with this email; should several share
// it, the first by username. An empty email matches nobody.
func (s *Store) GetUserByEmail(ctx context.Context, realm, email string) (store.User, error) {
	if email == "" {
		return store.User{}, fmt.Errorf("user by empty email: %w", store.ErrNotFound)
	}
	return s.getUser(ctx, "user by email", `realm = ? AND email = ? ORDER BY username LIMIT 1`, realm, email)
}

// ListUsers returns up to limit users (all when limit <= 0) after skipping
// offset, ordered by username.
func (s *Store) ListUsers(ctx context.Context, realm string, offset, limit int) ([]store.User, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.query(ctx,
		`SELECT `+sqlstore.UserColumns+` FROM users WHERE realm = ? ORDER BY username LIMIT ? OFFSET ?`,
		realm, limit, max(offset, 0))
	if err != nil {
		return nil, mapErr(err, "list users")
	}
	return collect(rows, sqlstore.ScanUser)
}

// CountUsers counts a realm's users.
func (s *Store) CountUsers(ctx context.Context, realm string) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM users WHERE realm = ?`, realm).Scan(&n); err != nil {
		return 0, mapErr(err, "count users")
	}
	return n, nil
}

// UpdateUser runs fn on the stored user and writes its result; realm and
// id cannot change, a username taken by another user gives
// ErrAlreadyExists.
func (s *Store) UpdateUser(ctx context.Context, realm, id string, fn func(store.User) (store.User, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanUser(tx.queryRow(ctx, `SELECT `+sqlstore.UserColumns+` FROM users WHERE realm = ? AND id = ?`, realm, id))
		if err != nil {
			return mapErr(err, "user "+id)
		}
		u, err := fn(old)
		if err != nil {
			return err
		}
		u.Realm, u.ID = realm, id
		args, err := sqlstore.UserArgs(u)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, updateSQL("users", sqlstore.UserColumns, "realm = ? AND id = ?"), append(args, realm, id)...); err != nil {
			return mapErr(err, "update user "+id)
		}
		tx.changed(store.Change{Kind: store.ChangeUser, Realm: realm, ID: id})
		return nil
	})
}

// DeleteUser deletes the user; the schema cascades to their sessions and
// login failure record.
func (s *Store) DeleteUser(ctx context.Context, realm, id string) error {
	return s.write(ctx, func(tx *wtx) error {
		// The sessions go too: announce them, so that gateways drop the
		// tokens cached for them.
		if err := announceUserSessions(ctx, tx, realm, id); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM users WHERE realm = ? AND id = ?`, realm, id)
		if err != nil {
			return mapErr(err, "delete user "+id)
		}
		if err := mustAffect(res, "user "+id); err != nil {
			return err
		}
		tx.changed(store.Change{Kind: store.ChangeUser, Realm: realm, ID: id})
		return nil
	})
}
