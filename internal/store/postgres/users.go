package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// userBatch is how many inserts go to the server in one round trip.
const userBatch = 500

// insertUsers inserts us, a batch of statements per round trip; realm,
// when not empty, overrides each user's Realm (an import). The first
// conflict aborts the caller's transaction.
func insertUsers(ctx context.Context, tx *wtx, us []store.User, realm string) error {
	q := insertSQL("users", sqlstore.UserColumns)
	for len(us) > 0 {
		n := min(len(us), userBatch)
		chunk := us[:n]
		us = us[n:]
		var b pgx.Batch
		for _, u := range chunk {
			if realm != "" {
				u.Realm = realm
			}
			args, err := sqlstore.UserArgs(u)
			if err != nil {
				return err
			}
			b.Queue(q, args...)
		}
		res := tx.SendBatch(ctx, &b)
		for _, u := range chunk {
			if _, err := res.Exec(); err != nil {
				_ = res.Close()
				return mapErr(err, "create user "+u.Username)
			}
			if realm != "" {
				u.Realm = realm
			}
			tx.changed(store.Change{Kind: store.ChangeUser, Realm: u.Realm, ID: u.ID})
		}
		if err := res.Close(); err != nil {
			return mapErr(err, "create users")
		}
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
	if len(us) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *wtx) error { return insertUsers(ctx, tx, us, "") })
}

func (s *Store) getUser(ctx context.Context, what, where string, args ...any) (store.User, error) {
	u, err := sqlstore.ScanUser(s.pool.QueryRow(ctx, `SELECT `+sqlstore.UserColumns+` FROM users WHERE `+where, args...))
	if err != nil {
		return store.User{}, mapErr(err, what)
	}
	return u, nil
}

// GetUser returns the user with this id.
func (s *Store) GetUser(ctx context.Context, realm, id string) (store.User, error) {
	return s.getUser(ctx, "user "+id, `realm = $1 AND id = $2`, realm, id)
}

// GetUserByUsername returns the user with exactly this username.
func (s *Store) GetUserByUsername(ctx context.Context, realm, username string) (store.User, error) {
	return s.getUser(ctx, "user by username", `realm = $1 AND username = $2`, realm, username)
}

// GetUserByEmail returns the user with this email; should several share
// it, the first by username. An empty email matches nobody.
func (s *Store) GetUserByEmail(ctx context.Context, realm, email string) (store.User, error) {
	if email == "" {
		return store.User{}, fmt.Errorf("user by empty email: %w", store.ErrNotFound)
	}
	return s.getUser(ctx, "user by email", `realm = $1 AND email = $2 ORDER BY username LIMIT 1`, realm, email)
}

// ListUsers returns up to limit users (all when limit <= 0) after skipping
// offset, ordered by username.
func (s *Store) ListUsers(ctx context.Context, realm string, offset, limit int) ([]store.User, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = int64(limit)
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+sqlstore.UserColumns+` FROM users WHERE realm = $1 ORDER BY username LIMIT $2 OFFSET $3`,
		realm, lim, int64(max(offset, 0)))
	return collect(rows, err, "list users", sqlstore.ScanUser)
}

// CountUsers counts a realm's users.
func (s *Store) CountUsers(ctx context.Context, realm string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE realm = $1`, realm).Scan(&n); err != nil {
		return 0, mapErr(err, "count users")
	}
	return n, nil
}

// UpdateUser runs fn on the stored user, locked until the transaction
// ends, and writes its result; realm and id cannot change, a username
// taken by another user gives ErrAlreadyExists.
func (s *Store) UpdateUser(ctx context.Context, realm, id string, fn func(store.User) (store.User, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanUser(tx.QueryRow(ctx,
			`SELECT `+sqlstore.UserColumns+` FROM users WHERE realm = $1 AND id = $2 FOR UPDATE`, realm, id))
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
		if _, err := tx.Exec(ctx, updateSQL("users", sqlstore.UserColumns, 2), args...); err != nil {
			return mapErr(err, "update user "+id)
		}
		tx.changed(store.Change{Kind: store.ChangeUser, Realm: realm, ID: id})
		return nil
	})
}

// DeleteUser deletes the user with their sessions and login failures. The
// user's row is locked first, so that no login can add a session between
// the sessions being announced and the user going.
func (s *Store) DeleteUser(ctx context.Context, realm, id string) error {
	return s.write(ctx, func(tx *wtx) error {
		if err := lockUser(ctx, tx, realm, id); err != nil {
			return err
		}
		if _, err := deleteUserSessions(ctx, tx, realm, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE realm = $1 AND id = $2`, realm, id)
		if err != nil {
			return mapErr(err, "delete user "+id)
		}
		if err := mustAffect(tag, "user "+id); err != nil {
			return err
		}
		tx.changed(store.Change{Kind: store.ChangeUser, Realm: realm, ID: id})
		return nil
	})
}

// lockUser locks the user's row until the transaction ends; ErrNotFound
// when there is no such user.
func lockUser(ctx context.Context, tx *wtx, realm, id string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE realm = $1 AND id = $2 FOR UPDATE`, realm, id).Scan(&one)
	return mapErr(err, "user "+id)
}
