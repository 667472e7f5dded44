package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

func insertKey(ctx context.Context, tx *wtx, k store.Key) error {
	if _, err := tx.exec(ctx, insertSQL("keys", sqlstore.KeyColumns), sqlstore.KeyArgs(k)...); err != nil {
		return mapErr(err, "create key "+k.KID)
	}
	tx.changed(store.Change{Kind: store.ChangeKey, Realm: k.Realm, ID: k.KID})
	return nil
}

// ListKeys returns a realm's keys, oldest first.
func (s *Store) ListKeys(ctx context.Context, realm string) ([]store.Key, error) {
	rows, err := s.query(ctx, `SELECT `+sqlstore.KeyColumns+` FROM keys WHERE realm = ? ORDER BY created, kid`, realm)
	if err != nil {
		return nil, mapErr(err, "list keys")
	}
	return collect(rows, sqlstore.ScanKey)
}

// CreateKey inserts k; its realm must exist.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	return s.write(ctx, func(tx *wtx) error { return insertKey(ctx, tx, k) })
}

// UpdateKey runs fn on the stored key and writes its result; realm and kid
// cannot change.
func (s *Store) UpdateKey(ctx context.Context, realm, kid string, fn func(store.Key) (store.Key, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanKey(tx.queryRow(ctx, `SELECT `+sqlstore.KeyColumns+` FROM keys WHERE realm = ? AND kid = ?`, realm, kid))
		if err != nil {
			return mapErr(err, "key "+kid)
		}
		k, err := fn(old)
		if err != nil {
			return err
		}
		k.Realm, k.KID = realm, kid
		if _, err := tx.exec(ctx, updateSQL("keys", sqlstore.KeyColumns, "realm = ? AND kid = ?"), append(sqlstore.KeyArgs(k), realm, kid)...); err != nil {
			return mapErr(err, "update key "+kid)
		}
		tx.changed(store.Change{Kind: store.ChangeKey, Realm: realm, ID: kid})
		return nil
	})
}

// DeleteKey deletes the key.
func (s *Store) DeleteKey(ctx context.Context, realm, kid string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(ctx, `DELETE FROM keys WHERE realm = ? AND kid = ?`, realm, kid)
		if err != nil {
			return mapErr(err, "delete key "+kid)
		}
		if err := mustAffect(res, "key "+kid); err != nil {
			return err
		}
		tx.changed(store.Change{Kind: store.ChangeKey, Realm: realm, ID: kid})
		return nil
	})
}

// Revoke records the revocation; a zero Created is set to now so that
// ListRevocations finds it. Revoking a jti again keeps the first record.
func (s *Store) Revoke(ctx context.Context, r store.Revocation) error {
	if r.Created.IsZero() {
		r.Created = sqlstore.NowMillis()
	}
	return s.write(ctx, func(tx *wtx) error {
		_, err := tx.exec(ctx,
			insertSQL("revocations", sqlstore.RevocationColumns)+` ON CONFLICT (realm, jti) DO NOTHING`,
			sqlstore.RevocationArgs(r)...)
		if err != nil {
			return mapErr(err, "revoke")
		}
		tx.changed(store.Change{Kind: store.ChangeRevocation, Realm: r.Realm, ID: r.JTI})
		return nil
	})
}

// IsRevoked reports whether jti is revoked in the realm.
func (s *Store) IsRevoked(ctx context.Context, realm, jti string) (bool, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM revocations WHERE realm = ? AND jti = ?`, realm, jti).Scan(&n)
	if err != nil {
		return false, mapErr(err, "is revoked")
	}
	return n > 0, nil
}

// ListRevocations returns the revocations of every realm created at or
// after since, oldest first.
func (s *Store) ListRevocations(ctx context.Context, since time.Time) ([]store.Revocation, error) {
	rows, err := s.query(ctx,
		`SELECT `+sqlstore.RevocationColumns+` FROM revocations WHERE created >= ? ORDER BY created, realm, jti`,
		sqlstore.Millis(since))
	if err != nil {
		return nil, mapErr(err, "list revocations")
	}
	return collect(rows, sqlstore.ScanRevocation)
}

// UseOnce records key until expires. A record that has already expired
// counts as absent, so a key may be used again once its time is up even
// before DeleteExpired has run.
func (s *Store) UseOnce(ctx context.Context, realm, key string, expires time.Time) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(ctx,
			`INSERT INTO use_once (realm, key, expires) VALUES (?, ?, ?)
			 ON CONFLICT (realm, key) DO UPDATE SET expires = excluded.expires
			 WHERE use_once.expires != 0 AND use_once.expires < ?`,
			realm, key, sqlstore.Millis(expires), time.Now().UnixMilli())
		if err != nil {
			return mapErr(err, "use once")
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapErr(err, "use once")
		}
		if n == 0 {
			return store.ErrAlreadyExists
		}
		return nil
	})
}

// GetLoginFailure returns the user's brute-force record.
func (s *Store) GetLoginFailure(ctx context.Context, realm, userID string) (store.LoginFailure, error) {
	f, err := sqlstore.ScanLoginFailure(s.queryRow(ctx,
		`SELECT `+sqlstore.LoginFailureColumns+` FROM login_failures WHERE realm = ? AND user_id = ?`, realm, userID))
	if err != nil {
		return store.LoginFailure{}, mapErr(err, "login failure")
	}
	return f, nil
}

// UpdateLoginFailure runs fn on the user's record (a zero one when there
// is none) and stores the result; the user must exist.
func (s *Store) UpdateLoginFailure(ctx context.Context, realm, userID string, fn func(store.LoginFailure) (store.LoginFailure, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanLoginFailure(tx.queryRow(ctx,
			`SELECT `+sqlstore.LoginFailureColumns+` FROM login_failures WHERE realm = ? AND user_id = ?`, realm, userID))
		switch {
		case err == nil:
		case errors.Is(err, sql.ErrNoRows):
			old = store.LoginFailure{Realm: realm, UserID: userID}
		default:
			return mapErr(err, "login failure")
		}
		f, err := fn(old)
		if err != nil {
			return err
		}
		f.Realm, f.UserID = realm, userID
		_, err = tx.exec(ctx, insertSQL("login_failures", sqlstore.LoginFailureColumns)+`
			ON CONFLICT (realm, user_id) DO UPDATE SET num_failures = excluded.num_failures,
				last_failure = excluded.last_failure, last_ip = excluded.last_ip,
				locked_until = excluded.locked_until, locked_forever = excluded.locked_forever`,
			sqlstore.LoginFailureArgs(f)...)
		return mapErr(err, "update login failure")
	})
}

// DeleteLoginFailure deletes the user's record (an admin unlock, or a
// successful login).
func (s *Store) DeleteLoginFailure(ctx context.Context, realm, userID string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(ctx, `DELETE FROM login_failures WHERE realm = ? AND user_id = ?`, realm, userID)
		if err != nil {
			return mapErr(err, "delete login failure")
		}
		return mustAffect(res, "login failure")
	})
}
