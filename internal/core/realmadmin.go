package core

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/realmjson"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Keycloak's implicit default roles, for a realm export that names none.
var implicitDefaultRoles = []string{"offline_access", "uma_authorization"}

// ImportRealm stores a parsed realm export in one transaction: plain
// passwords are hashed with argon2id, client secrets with the keyed hash
// (and sealed for client_secret_jwt clients), and every client with service
// accounts gets its service-account user. Signing keys are created after.
func (s *Service) ImportRealm(ctx context.Context, p *realmjson.Parsed, replace bool) error {
	b := store.RealmBundle{Realm: p.Realm}
	now := s.now().UTC()
	if b.Realm.Updated.IsZero() {
		b.Realm.Updated = now
	}
	st := &b.Realm.Settings
	if st.DefaultRoles == nil {
		st.DefaultRoles = implicitDefaultRoles
	}
	for _, name := range st.DefaultRoles {
		if !hasRole(st.Roles, name) {
			st.Roles = append(st.Roles, store.Role{Name: name, ID: newID()})
		}
	}

	users := make([]store.User, len(p.Users))
	hashErr := make([]error, len(p.Users))
	// Hash plain passwords on every core: a realm with many plain
	// credentials would otherwise import at one argon2id per 20 ms.
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, ui := range p.Users {
		users[i] = ui.User
		users[i].Realm = b.Realm.Name
		if ui.Password == "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, pw string) {
			defer wg.Done()
			defer func() { <-sem }()
			h, err := s.pw.Hash(pw)
			users[i].PasswordHash, hashErr[i] = h, err
			if users[i].PasswordCreated.IsZero() {
				users[i].PasswordCreated = now
			}
		}(i, ui.Password)
	}
	wg.Wait()
	for _, err := range hashErr {
		if err != nil {
			return err
		}
	}
	saByClient := map[string]int{}
	for i, u := range users {
		if u.ServiceAccountClientID != "" {
			saByClient[u.ServiceAccountClientID] = i
		}
	}
	for _, ci := range p.Clients {
		c := ci.Client
		c.Realm = b.Realm.Name
		if c.ID == "" {
			c.ID = newID()
		}
		if c.Created.IsZero() {
			c.Created = now
		}
		if ci.Secret != "" {
			c.SecretHash = s.secrets.Hash(ci.Secret)
			if c.ClientAuthenticator == "client-secret-jwt" {
				sealed, err := s.keys.Seal([]byte(ci.Secret))
				if err != nil {
					return err
				}
				c.SecretSealed = sealed
			}
		}
		if c.ServiceAccountsEnabled {
			if i, ok := saByClient[c.ClientID]; ok {
				c.ServiceAccountUserID = users[i].ID
			} else {
				u := serviceAccountUser(b.Realm.Name, c.ClientID, now)
				users = append(users, u)
				c.ServiceAccountUserID = u.ID
			}
		}
		b.Clients = append(b.Clients, c)
	}
	b.Users = users
	if err := s.st.ImportRealm(ctx, b, replace); err != nil {
		return err
	}
	s.realmWritten(b.Realm.Name)
	alg := st.DefaultSignatureAlgorithm
	if alg == "" {
		alg = "RS256"
	}
	return s.keys.EnsureRealm(ctx, b.Realm.Name, alg)
}

func serviceAccountUser(realm, clientID string, now time.Time) store.User {
	return store.User{
		Realm:                  realm,
		ID:                     newID(),
		Username:               "service-account-" + clientID,
		Enabled:                true,
		Created:                now,
		ServiceAccountClientID: clientID,
	}
}

func hasRole(roles []store.Role, name string) bool {
	for _, r := range roles {
		if r.ClientID == "" && r.Name == name {
			return true
		}
	}
	return false
}

// ExportRealm renders a realm, its clients and users as Keycloak realm
// export JSON.
func (s *Service) ExportRealm(ctx context.Context, name string) ([]byte, error) {
	r, err := s.st.GetRealm(ctx, name)
	if err != nil {
		return nil, err
	}
	b := store.RealmBundle{Realm: r}
	if b.Clients, err = s.st.ListClients(ctx, name); err != nil {
		return nil, err
	}
	const page = 1000
	for off := 0; ; off += page {
		us, err := s.st.ListUsers(ctx, name, off, page)
		if err != nil {
			return nil, err
		}
		b.Users = append(b.Users, us...)
		if len(us) < page {
			break
		}
	}
	return realmjson.Export(b)
}

// RealmExists reports whether a realm of that name is stored.
func (s *Service) RealmExists(ctx context.Context, name string) (bool, error) {
	_, err := s.st.GetRealm(ctx, name)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("looking up realm %q: %w", name, err)
}

// RotateKeys makes a new signing key for the realm's algorithm; the old one
// stays in the JWKS until every token it signed has expired.
func (s *Service) RotateKeys(ctx context.Context, realm, alg string) (string, error) {
	v, err := s.realm(ctx, realm)
	if err != nil {
		return "", err
	}
	if alg == "" {
		alg = v.r.Settings.DefaultSignatureAlgorithm
	}
	if alg == "" {
		alg = "RS256"
	}
	// The longest an access or ID token of this realm can live: the realm
	// lifespan or any client's override.
	longest := v.r.Settings.AccessTokenLifespan
	clients, err := s.st.ListClients(ctx, realm)
	if err != nil {
		return "", err
	}
	for i := range clients {
		if n := attrInt(&clients[i], "access.token.lifespan"); n > longest {
			longest = n
		}
	}
	return s.keys.Rotate(ctx, realm, alg, time.Duration(longest)*time.Second+time.Minute)
}
