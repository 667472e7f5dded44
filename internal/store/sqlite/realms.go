package sqlite

import (
	"context"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

func insertRealm(ctx context.Context, tx *wtx, r store.Realm) error {
	if r.Updated.IsZero() {
		r.Updated = sqlstore.NowMillis()
	}
	args, err := sqlstore.RealmArgs(r)
	if err != nil {
		return err
	}
	if _, err := tx.exec(ctx, insertSQL("realms", sqlstore.RealmColumns), args...); err != nil {
		return mapErr(err, "create realm "+r.Name)
	}
	tx.changed(store.Change{Kind: store.ChangeRealm, Realm: r.Name, ID: r.Name})
	return nil
}

// CreateRealm inserts r; Updated is set to now when zero.
func (s *Store) CreateRealm(ctx context.Context, r store.Realm) error {
	return s.write(ctx, func(tx *wtx) error { return insertRealm(ctx, tx, r) })
}

// GetRealm returns the realm named name.
func (s *Store) GetRealm(ctx context.Context, name string) (store.Realm, error) {
	r, err := sqlstore.ScanRealm(s.queryRow(ctx, `SELECT `+sqlstore.RealmColumns+` FROM realms WHERE name = ?`, name))
	if err != nil {
		return store.Realm{}, mapErr(err, "realm "+name)
	}
	return r, nil
}

// ListRealms returns every realm ordered by name.
func (s *Store) ListRealms(ctx context.Context) ([]store.Realm, error) {
	rows, err := s.query(ctx, `SELECT `+sqlstore.RealmColumns+` FROM realms ORDER BY name`)
	if err != nil {
		return nil, mapErr(err, "list realms")
	}
	return collect(rows, sqlstore.ScanRealm)
}

// UpdateRealm runs fn on the stored realm and writes its result. The name
// cannot change, and Updated always moves forward so that caches comparing
// it see the write.
func (s *Store) UpdateRealm(ctx context.Context, name string, fn func(store.Realm) (store.Realm, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanRealm(tx.queryRow(ctx, `SELECT `+sqlstore.RealmColumns+` FROM realms WHERE name = ?`, name))
		if err != nil {
			return mapErr(err, "realm "+name)
		}
		r, err := fn(old)
		if err != nil {
			return err
		}
		r.Name = name
		r.Updated = sqlstore.NextUpdated(old.Updated)
		args, err := sqlstore.RealmArgs(r)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, updateSQL("realms", sqlstore.RealmColumns, "name = ?"), append(args, name)...); err != nil {
			return mapErr(err, "update realm "+name)
		}
		tx.changed(store.Change{Kind: store.ChangeRealm, Realm: name, ID: name})
		return nil
	})
}

// DeleteRealm deletes the realm; the schema's ON DELETE CASCADE takes its
// clients, users, sessions, keys, revocations and login failures with it.
func (s *Store) DeleteRealm(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(ctx, `DELETE FROM realms WHERE name = ?`, name)
		if err != nil {
			return mapErr(err, "delete realm "+name)
		}
		if err := mustAffect(res, "realm "+name); err != nil {
			return err
		}
		tx.changed(store.Change{Kind: store.ChangeRealm, Realm: name, ID: name})
		return nil
	})
}

// ImportRealm writes the bundle in one transaction. Every client, user and
// key is written into b.Realm.Name whatever its own Realm field says.
func (s *Store) ImportRealm(ctx context.Context, b store.RealmBundle, replace bool) error {
	name := b.Realm.Name
	return s.write(ctx, func(tx *wtx) error {
		if replace {
			if _, err := tx.exec(ctx, `DELETE FROM realms WHERE name = ?`, name); err != nil {
				return mapErr(err, "replace realm "+name)
			}
		}
		if err := insertRealm(ctx, tx, b.Realm); err != nil {
			return err
		}
		for _, c := range b.Clients {
			c.Realm = name
			if err := insertClient(ctx, tx, c); err != nil {
				return err
			}
		}
		if err := insertUsers(ctx, tx, b.Users, name); err != nil {
			return err
		}
		for _, k := range b.Keys {
			k.Realm = name
			if err := insertKey(ctx, tx, k); err != nil {
				return err
			}
		}
		// One change names the whole realm: caches drop all of it, so
		// the per-entity changes are not needed.
		tx.changes = []store.Change{{Kind: store.ChangeRealm, Realm: name, ID: name}}
		return nil
	})
}
