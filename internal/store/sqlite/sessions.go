package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// querier is what both the store (its read pool) and a write transaction
// offer.
type querier interface {
	query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func userSessions(ctx context.Context, q querier, realm, userID string) ([]store.Session, error) {
	rows, err := q.query(ctx,
		`SELECT `+sqlstore.SessionColumns+` FROM sessions WHERE realm = ? AND user_id = ? ORDER BY last_seen, id`, realm, userID)
	if err != nil {
		return nil, mapErr(err, "list sessions")
	}
	return collect(rows, sqlstore.ScanSession)
}

// CreateSession inserts s if admit approves, ending the sessions admit
// names. The write transaction holds SQLite's one write lock from its
// first statement, so no other CreateSession for the user (or any other
// write) can run between admit's read and the insert.
func (s *Store) CreateSession(ctx context.Context, sess store.Session, admit func(existing []store.Session) (end []string, err error)) error {
	return s.write(ctx, func(tx *wtx) error {
		var one int
		err := tx.queryRow(ctx, `SELECT 1 FROM users WHERE realm = ? AND id = ?`, sess.Realm, sess.UserID).Scan(&one)
		if err != nil {
			return mapErr(err, "session user "+sess.UserID)
		}
		if admit != nil {
			existing, err := userSessions(ctx, tx, sess.Realm, sess.UserID)
			if err != nil {
				return err
			}
			end, err := admit(existing)
			if err != nil {
				return err
			}
			for _, id := range end {
				// Only the user's own sessions can be ended this way.
				res, err := tx.exec(ctx, `DELETE FROM sessions WHERE realm = ? AND id = ? AND user_id = ?`,
					sess.Realm, id, sess.UserID)
				if err != nil {
					return mapErr(err, "end session")
				}
				if n, _ := res.RowsAffected(); n > 0 {
					tx.changed(store.Change{Kind: store.ChangeSession, Realm: sess.Realm, ID: id, UserID: sess.UserID})
				}
			}
		}
		if _, err := tx.exec(ctx, insertSessionSQL, append(sqlstore.SessionArgs(sess), sqlstore.PruneAt(sess.Expires))...); err != nil {
			return mapErr(err, "create session")
		}
		tx.changed(store.Change{Kind: store.ChangeSession, Realm: sess.Realm, ID: sess.ID, UserID: sess.UserID})
		return nil
	})
}

// GetSession returns the session with this id.
func (s *Store) GetSession(ctx context.Context, realm, id string) (store.Session, error) {
	sess, err := sqlstore.ScanSession(s.queryRow(ctx,
		`SELECT `+sqlstore.SessionColumns+` FROM sessions WHERE realm = ? AND id = ?`, realm, id))
	if err != nil {
		return store.Session{}, mapErr(err, "session")
	}
	return sess, nil
}

// ListUserSessions returns the user's sessions, least recently seen first.
func (s *Store) ListUserSessions(ctx context.Context, realm, userID string) ([]store.Session, error) {
	return userSessions(ctx, s, realm, userID)
}

// UpdateSession runs fn on the stored session and writes its result;
// realm, id and user cannot change. This is where a refresh token's single
// use is decided: fn sees the row as of this transaction, and no other
// write runs until it commits.
func (s *Store) UpdateSession(ctx context.Context, realm, id string, fn func(store.Session) (store.Session, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanSession(tx.queryRow(ctx,
			`SELECT `+sqlstore.SessionColumns+` FROM sessions WHERE realm = ? AND id = ?`, realm, id))
		if err != nil {
			return mapErr(err, "session")
		}
		sess, err := fn(old)
		if err != nil {
			return err
		}
		sess.Realm, sess.ID, sess.UserID = realm, id, old.UserID
		q, args := sessionUpdate(old, sess)
		if q == "" {
			return nil // nothing changed: no write, nothing to announce
		}
		if _, err = tx.exec(ctx, q, append(args, realm, id)...); err != nil {
			return mapErr(err, "update session")
		}
		tx.changed(store.Change{Kind: store.ChangeSession, Realm: realm, ID: id, UserID: old.UserID})
		return nil
	})
}

// insertSessionSQL inserts a row of SessionColumns plus its prune_at.
var insertSessionSQL = insertSQL("sessions", sqlstore.SessionColumns+", prune_at")

// sessionUpdate returns an UPDATE of only the columns in which next differs
// from prev, with its SET arguments; "" when nothing differs. A refresh
// changes last_seen and expires and, with rotation on, the generation
// columns: writing only those leaves the indexed columns, and so the index
// pages, untouched.
func sessionUpdate(prev, next store.Session) (string, []any) {
	mask, args := sqlstore.SessionChanges(prev, next)
	if mask == 0 {
		return "", nil
	}
	return sqlstore.SessionUpdateSQL(mask, false), args
}

// DeleteSession ends one session.
func (s *Store) DeleteSession(ctx context.Context, realm, id string) error {
	return s.write(ctx, func(tx *wtx) error {
		var userID string
		err := tx.queryRow(ctx, `DELETE FROM sessions WHERE realm = ? AND id = ? RETURNING user_id`, realm, id).Scan(&userID)
		if err != nil {
			return mapErr(err, "session")
		}
		tx.changed(store.Change{Kind: store.ChangeSession, Realm: realm, ID: id, UserID: userID})
		return nil
	})
}

// announceUserSessions records a change for every session of the user,
// ahead of deleting them.
func announceUserSessions(ctx context.Context, tx *wtx, realm, userID string) error {
	rows, err := tx.query(ctx, `SELECT id FROM sessions WHERE realm = ? AND user_id = ?`, realm, userID)
	if err != nil {
		return mapErr(err, "list sessions")
	}
	ids, err := collect(rows, func(sc sqlstore.Scanner) (string, error) {
		var id string
		err := sc.Scan(&id)
		return id, err
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		tx.changed(store.Change{Kind: store.ChangeSession, Realm: realm, ID: id, UserID: userID})
	}
	return nil
}

// DeleteUserSessions ends every session of the user.
func (s *Store) DeleteUserSessions(ctx context.Context, realm, userID string) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		if err := announceUserSessions(ctx, tx, realm, userID); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM sessions WHERE realm = ? AND user_id = ?`, realm, userID)
		if err != nil {
			return mapErr(err, "delete sessions")
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// CountSessions counts a realm's stored sessions.
func (s *Store) CountSessions(ctx context.Context, realm string) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE realm = ?`, realm).Scan(&n); err != nil {
		return 0, mapErr(err, "count sessions")
	}
	return n, nil
}

// DeleteExpired removes sessions, revocations and used-once keys whose
// expiry (when set) is before now, and keys whose RetireAt (when set) is
// before now.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	cut := now.UnixMilli()
	total := 0
	err := s.write(ctx, func(tx *wtx) error {
		total = 0
		rows, err := tx.query(ctx,
			`DELETE FROM sessions WHERE prune_at != 0 AND prune_at <= ? AND expires != 0 AND expires < ?
			 RETURNING realm, id, user_id`, sqlstore.PruneCut(cut), cut)
		if err != nil {
			return mapErr(err, "delete expired sessions")
		}
		gone, err := collect(rows, sqlstore.ScanSessionChange)
		if err != nil {
			return err
		}
		total += len(gone)
		tx.changes = append(tx.changes, gone...)

		rows, err = tx.query(ctx,
			`DELETE FROM keys WHERE retire_at != 0 AND retire_at < ? RETURNING realm, kid`, cut)
		if err != nil {
			return mapErr(err, "delete retired keys")
		}
		keys, err := collect(rows, sqlstore.ScanKeyChange)
		if err != nil {
			return err
		}
		total += len(keys)
		tx.changes = append(tx.changes, keys...)

		for _, q := range []string{
			`DELETE FROM revocations WHERE expires != 0 AND expires < ?`,
			`DELETE FROM use_once WHERE expires != 0 AND expires < ?`,
		} {
			res, err := tx.exec(ctx, q, cut)
			if err != nil {
				return mapErr(err, "delete expired")
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlite: delete expired: %w", err)
			}
			total += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}
