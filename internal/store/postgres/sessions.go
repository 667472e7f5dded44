package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// querier is what both the pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func userSessions(ctx context.Context, q querier, realm, userID string) ([]store.Session, error) {
	rows, err := q.Query(ctx,
		`SELECT `+sqlstore.SessionColumns+` FROM sessions WHERE realm = $1 AND user_id = $2 ORDER BY last_seen, id`, realm, userID)
	return collect(rows, err, "list sessions", sqlstore.ScanSession)
}

// CreateSession inserts s if admit approves, ending the sessions admit
// names. It locks the user's row first: every other CreateSession for the
// user, on any replica, waits there until this one commits, and then (a
// READ COMMITTED statement sees what committed before it started) lists
// the sessions including this one. That is what holds a session limit
// under concurrent logins.
func (s *Store) CreateSession(ctx context.Context, sess store.Session, admit func(existing []store.Session) (end []string, err error)) error {
	return s.write(ctx, func(tx *wtx) error {
		if err := lockUser(ctx, tx, sess.Realm, sess.UserID); err != nil {
			return err
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
				tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE realm = $1 AND id = $2 AND user_id = $3`,
					sess.Realm, id, sess.UserID)
				if err != nil {
					return mapErr(err, "end session")
				}
				if tag.RowsAffected() > 0 {
					tx.changed(store.Change{Kind: store.ChangeSession, Realm: sess.Realm, ID: id, UserID: sess.UserID})
				}
			}
		}
		if _, err := tx.Exec(ctx, insertSessionSQL, append(sqlstore.SessionArgs(sess), sqlstore.PruneAt(sess.Expires))...); err != nil {
			return mapErr(err, "create session")
		}
		tx.changed(store.Change{Kind: store.ChangeSession, Realm: sess.Realm, ID: sess.ID, UserID: sess.UserID})
		return nil
	})
}

// GetSession returns the session with this id.
func (s *Store) GetSession(ctx context.Context, realm, id string) (store.Session, error) {
	sess, err := sqlstore.ScanSession(s.pool.QueryRow(ctx,
		`SELECT `+sqlstore.SessionColumns+` FROM sessions WHERE realm = $1 AND id = $2`, realm, id))
	if err != nil {
		return store.Session{}, mapErr(err, "session")
	}
	return sess, nil
}

// ListUserSessions returns the user's sessions, least recently seen first.
func (s *Store) ListUserSessions(ctx context.Context, realm, userID string) ([]store.Session, error) {
	return userSessions(ctx, s.pool, realm, userID)
}

// UpdateSession runs fn on the stored session and writes its result;
// realm, id and user cannot change. This is where a refresh token's single
// use is decided: the row is locked (FOR UPDATE) before fn sees it, so a
// concurrent refresh on any replica waits and then sees this one's result.
func (s *Store) UpdateSession(ctx context.Context, realm, id string, fn func(store.Session) (store.Session, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanSession(tx.QueryRow(ctx,
			`SELECT `+sqlstore.SessionColumns+` FROM sessions WHERE realm = $1 AND id = $2 FOR UPDATE`, realm, id))
		if err != nil {
			return mapErr(err, "session")
		}
		sess, err := fn(old)
		if err != nil {
			return err
		}
		sess.Realm, sess.ID, sess.UserID = realm, id, old.UserID
		// Only the changed columns: a refresh then touches no indexed
		// column and PostgreSQL can update the row in place (HOT).
		mask, args := sqlstore.SessionChanges(old, sess)
		if mask == 0 {
			return nil // nothing changed: no write, nothing to announce
		}
		if _, err := tx.Exec(ctx, sqlstore.SessionUpdateSQL(mask, true), append(args, realm, id)...); err != nil {
			return mapErr(err, "update session")
		}
		tx.changed(store.Change{Kind: store.ChangeSession, Realm: realm, ID: id, UserID: old.UserID})
		return nil
	})
}

// insertSessionSQL inserts a row of SessionColumns plus its prune_at.
var insertSessionSQL = insertSQL("sessions", sqlstore.SessionColumns+", prune_at")

// DeleteSession ends one session.
func (s *Store) DeleteSession(ctx context.Context, realm, id string) error {
	return s.write(ctx, func(tx *wtx) error {
		var userID string
		err := tx.QueryRow(ctx, `DELETE FROM sessions WHERE realm = $1 AND id = $2 RETURNING user_id`, realm, id).Scan(&userID)
		if err != nil {
			return mapErr(err, "session")
		}
		tx.changed(store.Change{Kind: store.ChangeSession, Realm: realm, ID: id, UserID: userID})
		return nil
	})
}

// deleteUserSessions deletes every session of the user and announces
// exactly the ones it deleted.
func deleteUserSessions(ctx context.Context, tx *wtx, realm, userID string) (int, error) {
	rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE realm = $1 AND user_id = $2 RETURNING id`, realm, userID)
	ids, err := collect(rows, err, "delete sessions", func(sc sqlstore.Scanner) (string, error) {
		var id string
		err := sc.Scan(&id)
		return id, err
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		tx.changed(store.Change{Kind: store.ChangeSession, Realm: realm, ID: id, UserID: userID})
	}
	return len(ids), nil
}

// DeleteUserSessions ends every session of the user.
func (s *Store) DeleteUserSessions(ctx context.Context, realm, userID string) (int, error) {
	var n int
	err := s.write(ctx, func(tx *wtx) error {
		var err error
		n, err = deleteUserSessions(ctx, tx, realm, userID)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// CountSessions counts a realm's stored sessions.
func (s *Store) CountSessions(ctx context.Context, realm string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE realm = $1`, realm).Scan(&n); err != nil {
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
		rows, err := tx.Query(ctx,
			`DELETE FROM sessions WHERE prune_at <> 0 AND prune_at <= $1 AND expires <> 0 AND expires < $2
			 RETURNING realm, id, user_id`, sqlstore.PruneCut(cut), cut)
		gone, err := collect(rows, err, "delete expired sessions", sqlstore.ScanSessionChange)
		if err != nil {
			return err
		}
		total += len(gone)
		tx.changes = append(tx.changes, gone...)

		rows, err = tx.Query(ctx,
			`DELETE FROM keys WHERE retire_at <> 0 AND retire_at < $1 RETURNING realm, kid`, cut)
		keys, err := collect(rows, err, "delete retired keys", sqlstore.ScanKeyChange)
		if err != nil {
			return err
		}
		total += len(keys)
		tx.changes = append(tx.changes, keys...)

		for _, q := range []string{
			`DELETE FROM revocations WHERE expires <> 0 AND expires < $1`,
			`DELETE FROM use_once WHERE expires <> 0 AND expires < $1`,
		} {
			tag, err := tx.Exec(ctx, q, cut)
			if err != nil {
				return mapErr(err, "delete expired")
			}
			total += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}
