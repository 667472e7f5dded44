package postgres

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

func insertKey(ctx context.Context, tx *wtx, k store.Key) error {
	if _, err := tx.Exec(ctx, insertSQL("keys", sqlstore.KeyColumns), sqlstore.KeyArgs(k)...); err != nil {
		return mapErr(err, "create key "+k.KID)
	}
	tx.changed(store.Change{Kind: store.ChangeKey, Realm: k.Realm, ID: k.KID})
	return nil
}

// ListKeys returns a realm's keys, oldest first.
func (s *Store) ListKeys(ctx context.Context, realm string) ([]store.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sqlstore.KeyColumns+` FROM keys WHERE realm = $1 ORDER BY created, kid`, realm)
	return collect(rows, err, "list keys", sqlstore.ScanKey)
}

// CreateKey inserts k; its realm must exist.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	return s.write(ctx, func(tx *wtx) error { return insertKey(ctx, tx, k) })
}

// UpdateKey runs fn on the stored key, locked until the transaction ends,
// and writes its result; realm and kid cannot change.
func (s *Store) UpdateKey(ctx context.Context, realm, kid string, fn func(store.Key) (store.Key, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanKey(tx.QueryRow(ctx,
			`SELECT `+sqlstore.KeyColumns+` FROM keys WHERE realm = $1 AND kid = $2 FOR UPDATE`, realm, kid))
		if err != nil {
			return mapErr(err, "key "+kid)
		}
		k, err := fn(old)
		if err != nil {
			return err
		}
		k.Realm, k.KID = realm, kid
		if _, err := tx.Exec(ctx, updateSQL("keys", sqlstore.KeyColumns, 2), sqlstore.KeyArgs(k)...); err != nil {
			return mapErr(err, "update key "+kid)
		}
		tx.changed(store.Change{Kind: store.ChangeKey, Realm: realm, ID: kid})
		return nil
	})
}

// DeleteKey deletes the key.
func (s *Store) DeleteKey(ctx context.Context, realm, kid string) error {
	return s.write(ctx, func(tx *wtx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM keys WHERE realm = $1 AND kid = $2`, realm, kid)
		if err != nil {
			return mapErr(err, "delete key "+kid)
		}
		if err := mustAffect(tag, "key "+kid); err != nil {
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
		_, err := tx.Exec(ctx,
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
	var found bool
	err := s.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM revocations WHERE realm = $1 AND jti = $2)`, realm, jti).Scan(&found)
	if err != nil {
		return false, mapErr(err, "is revoked")
	}
	return found, nil
}

// ListRevocations returns the revocations of every realm created at or
// after since, oldest first.
func (s *Store) ListRevocations(ctx context.Context, since time.Time) ([]store.Revocation, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+sqlstore.RevocationColumns+` FROM revocations WHERE created >= $1 ORDER BY created, realm, jti`,
		sqlstore.Millis(since))
	return collect(rows, err, "list revocations", sqlstore.ScanRevocation)
}

// UseOnce records key until expires, in one statement: of concurrent
// calls on any replica exactly one inserts (or replaces an expired record)
// and the others find a live record and get ErrAlreadyExists. A record
// that has already expired counts as absent, so a key may be used again
// once its time is up even before DeleteExpired has run.
func (s *Store) UseOnce(ctx context.Context, realm, key string, expires time.Time) error {
	return s.write(ctx, func(tx *wtx) error {
		tag, err := tx.Exec(ctx,
			`INSERT INTO use_once (realm, key, expires) VALUES ($1, $2, $3)
			 ON CONFLICT (realm, key) DO UPDATE SET expires = excluded.expires
			 WHERE use_once.expires <> 0 AND use_once.expires < $4`,
			realm, key, sqlstore.Millis(expires), time.Now().UnixMilli())
		if err != nil {
			return mapErr(err, "use once")
		}
		if tag.RowsAffected() == 0 {
			return store.ErrAlreadyExists
		}
		return nil
	})
}

// GetLoginFailure returns the user's brute-force record.
func (s *Store) GetLoginFailure(ctx context.Context, realm, userID string) (store.LoginFailure, error) {
	f, err := sqlstore.ScanLoginFailure(s.pool.QueryRow(ctx,
		`SELECT `+sqlstore.LoginFailureColumns+` FROM login_failures WHERE realm = $1 AND user_id = $2`, realm, userID))
	if err != nil {
		return store.LoginFailure{}, mapErr(err, "login failure")
	}
	return f, nil
}

// UpdateLoginFailure runs fn on the user's record (a zero one when there
// is none) and stores the result; the user must exist.
//
// A zero record is inserted first when there is none, so that there is
// always a row to lock: two concurrent failed logins then count as two,
// where "read nothing, both insert" would count one. A refusal from fn
// rolls the zero record back with everything else.
func (s *Store) UpdateLoginFailure(ctx context.Context, realm, userID string, fn func(store.LoginFailure) (store.LoginFailure, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		_, err := tx.Exec(ctx, `INSERT INTO login_failures (`+sqlstore.LoginFailureColumns+`)
			VALUES ($1, $2, 0, 0, '', 0, false) ON CONFLICT (realm, user_id) DO NOTHING`, realm, userID)
		if err != nil {
			return mapErr(err, "login failure")
		}
		old, err := sqlstore.ScanLoginFailure(tx.QueryRow(ctx,
			`SELECT `+sqlstore.LoginFailureColumns+` FROM login_failures WHERE realm = $1 AND user_id = $2 FOR UPDATE`, realm, userID))
		if err != nil {
			return mapErr(err, "login failure")
		}
		f, err := fn(old)
		if err != nil {
			return err
		}
		f.Realm, f.UserID = realm, userID
		_, err = tx.Exec(ctx, updateSQL("login_failures", sqlstore.LoginFailureColumns, 2), sqlstore.LoginFailureArgs(f)...)
		return mapErr(err, "update login failure")
	})
}

// DeleteLoginFailure deletes the user's record (an admin unlock, or a
// successful login).
func (s *Store) DeleteLoginFailure(ctx context.Context, realm, userID string) error {
	return s.write(ctx, func(tx *wtx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM login_failures WHERE realm = $1 AND user_id = $2`, realm, userID)
		if err != nil {
			return mapErr(err, "delete login failure")
		}
		return mustAffect(tag, "login failure")
	})
}
