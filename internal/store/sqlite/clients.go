package sqlite

import (
	"context"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

func insertClient(ctx context.Context, tx *wtx, c store.Client) error {
	args, err := sqlstore.ClientArgs(c)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, insertSQL("clients", sqlstore.ClientColumns), args...)
	if err != nil {
		return mapErr(err, "create client "+c.ClientID)
	}
	tx.changed(store.Change{Kind: store.ChangeClient, Realm: c.Realm, ID: c.ClientID})
	return nil
}

// CreateClient inserts c; its realm must exist.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	return s.write(ctx, func(tx *wtx) error { return insertClient(ctx, tx, c) })
}

// GetClient returns the client with this client_id.
func (s *Store) GetClient(ctx context.Context, realm, clientID string) (store.Client, error) {
	c, err := sqlstore.ScanClient(s.queryRow(ctx,
		`SELECT `+sqlstore.ClientColumns+` FROM clients WHERE realm = ? AND client_id = ?`, realm, clientID))
	if err != nil {
		return store.Client{}, mapErr(err, "client "+clientID)
	}
	return c, nil
}

// ListClients returns a realm's clients ordered by client_id.
func (s *Store) ListClients(ctx context.Context, realm string) ([]store.Client, error) {
	rows, err := s.query(ctx,
		`SELECT `+sqlstore.ClientColumns+` FROM clients WHERE realm = ? ORDER BY client_id`, realm)
	if err != nil {
		return nil, mapErr(err, "list clients")
	}
	return collect(rows, sqlstore.ScanClient)
}

// ListClientsByOwner returns the clients whose OwnerUserID is ownerUserID,
// ordered by client_id.
func (s *Store) ListClientsByOwner(ctx context.Context, realm, ownerUserID string) ([]store.Client, error) {
	rows, err := s.query(ctx,
		`SELECT `+sqlstore.ClientColumns+` FROM clients WHERE realm = ? AND owner_user_id = ? ORDER BY client_id`,
		realm, ownerUserID)
	if err != nil {
		return nil, mapErr(err, "list clients by owner")
	}
	return collect(rows, sqlstore.ScanClient)
}

// UpdateClient runs fn on the stored client and writes its result; the
// realm and client_id cannot change.
func (s *Store) UpdateClient(ctx context.Context, realm, clientID string, fn func(store.Client) (store.Client, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := sqlstore.ScanClient(tx.queryRow(ctx,
			`SELECT `+sqlstore.ClientColumns+` FROM clients WHERE realm = ? AND client_id = ?`, realm, clientID))
		if err != nil {
			return mapErr(err, "client "+clientID)
		}
		c, err := fn(old)
		if err != nil {
			return err
		}
		c.Realm, c.ClientID = realm, clientID
		args, err := sqlstore.ClientArgs(c)
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, updateSQL("clients", sqlstore.ClientColumns, "realm = ? AND client_id = ?"),
			append(args, realm, clientID)...)
		if err != nil {
			return mapErr(err, "update client "+clientID)
		}
		tx.changed(store.Change{Kind: store.ChangeClient, Realm: realm, ID: clientID})
		return nil
	})
}

// DeleteClient deletes the client.
func (s *Store) DeleteClient(ctx context.Context, realm, clientID string) error {
	return s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec(ctx, `DELETE FROM clients WHERE realm = ? AND client_id = ?`, realm, clientID)
		if err != nil {
			return mapErr(err, "delete client "+clientID)
		}
		if err := mustAffect(res, "client "+clientID); err != nil {
			return err
		}
		tx.changed(store.Change{Kind: store.ChangeClient, Realm: realm, ID: clientID})
		return nil
	})
}
