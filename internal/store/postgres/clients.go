package postgres

import (
	"context"
	"errors"

	"github.com/gatehouse/gatehouse/internal/store"
)

// clientCols starts with the two key columns (see updateSQL).
const clientCols = `realm, client_id, id, name, enabled, public, secret_hash, secret_sealed,
	client_authenticator, service_accounts_enabled, direct_access_grants_enabled,
	standard_flow_enabled, redirect_uris, web_origins, attributes,
	default_client_scopes, optional_scopes, jwks, service_account_user_id,
	owner_user_id, scopes, created`

func scanClient(sc scanner) (store.Client, error) {
	var (
		c                                                       store.Client
		redirects, origins, attrs, defScopes, optScopes, scopes string
		created                                                 int64
	)
	err := sc.Scan(&c.Realm, &c.ClientID, &c.ID, &c.Name, &c.Enabled, &c.Public, &c.SecretHash, &c.SecretSealed,
		&c.ClientAuthenticator, &c.ServiceAccountsEnabled, &c.DirectAccessGrantsEnabled,
		&c.StandardFlowEnabled, &redirects, &origins, &attrs,
		&defScopes, &optScopes, &c.JWKS, &c.ServiceAccountUserID,
		&c.OwnerUserID, &scopes, &created)
	if err != nil {
		return store.Client{}, err
	}
	c.Created = fromMS(created)
	err = errors.Join(
		jsonDecode(redirects, &c.RedirectURIs),
		jsonDecode(origins, &c.WebOrigins),
		jsonDecode(attrs, &c.Attributes),
		jsonDecode(defScopes, &c.DefaultClientScopes),
		jsonDecode(optScopes, &c.OptionalScopes),
		jsonDecode(scopes, &c.Scopes),
	)
	return c, err
}

// clientArgs lists c's column values in clientCols order.
func clientArgs(c store.Client) ([]any, error) {
	j, err := jsonCols(c.RedirectURIs, c.WebOrigins, c.Attributes, c.DefaultClientScopes, c.OptionalScopes, c.Scopes)
	if err != nil {
		return nil, err
	}
	return []any{c.Realm, c.ClientID, c.ID, c.Name, c.Enabled, c.Public, nilIfEmpty(c.SecretHash), nilIfEmpty(c.SecretSealed),
		c.ClientAuthenticator, c.ServiceAccountsEnabled, c.DirectAccessGrantsEnabled,
		c.StandardFlowEnabled, j[0], j[1], j[2],
		j[3], j[4], nilIfEmpty(c.JWKS), c.ServiceAccountUserID,
		c.OwnerUserID, j[5], ms(c.Created)}, nil
}

func insertClient(ctx context.Context, tx *wtx, c store.Client) error {
	args, err := clientArgs(c)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertSQL("clients", clientCols), args...); err != nil {
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
	c, err := scanClient(s.pool.QueryRow(ctx,
		`SELECT `+clientCols+` FROM clients WHERE realm = $1 AND client_id = $2`, realm, clientID))
	if err != nil {
		return store.Client{}, mapErr(err, "client "+clientID)
	}
	return c, nil
}

// ListClients returns a realm's clients ordered by client_id.
func (s *Store) ListClients(ctx context.Context, realm string) ([]store.Client, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+clientCols+` FROM clients WHERE realm = $1 ORDER BY client_id`, realm)
	return collect(rows, err, "list clients", scanClient)
}

// ListClientsByOwner returns the clients whose OwnerUserID is ownerUserID,
// ordered by client_id.
func (s *Store) ListClientsByOwner(ctx context.Context, realm, ownerUserID string) ([]store.Client, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+clientCols+` FROM clients WHERE realm = $1 AND owner_user_id = $2 ORDER BY client_id`,
		realm, ownerUserID)
	return collect(rows, err, "list clients by owner", scanClient)
}

// UpdateClient runs fn on the stored client, locked until the transaction
// ends, and writes its result; the realm and client_id cannot change.
func (s *Store) UpdateClient(ctx context.Context, realm, clientID string, fn func(store.Client) (store.Client, error)) error {
	return s.write(ctx, func(tx *wtx) error {
		old, err := scanClient(tx.QueryRow(ctx,
			`SELECT `+clientCols+` FROM clients WHERE realm = $1 AND client_id = $2 FOR UPDATE`, realm, clientID))
		if err != nil {
			return mapErr(err, "client "+clientID)
		}
		c, err := fn(old)
		if err != nil {
			return err
		}
		c.Realm, c.ClientID = realm, clientID
		args, err := clientArgs(c)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, updateSQL("clients", clientCols, 2), args...); err != nil {
			return mapErr(err, "update client "+clientID)
		}
		tx.changed(store.Change{Kind: store.ChangeClient, Realm: realm, ID: clientID})
		return nil
	})
}

// DeleteClient deletes the client.
func (s *Store) DeleteClient(ctx context.Context, realm, clientID string) error {
	return s.write(ctx, func(tx *wtx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE realm = $1 AND client_id = $2`, realm, clientID)
		if err != nil {
			return mapErr(err, "delete client "+clientID)
		}
		if err := mustAffect(tag, "client "+clientID); err != nil {
			return err
		}
		tx.changed(store.Change{Kind: store.ChangeClient, Realm: realm, ID: clientID})
		return nil
	})
}
