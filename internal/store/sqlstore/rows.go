package sqlstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Each entity has a column list (its key columns first, which the
// PostgreSQL backend's UPDATE builder relies on), a Scan function that
// reads a row selected with those columns, and an Args function that
// lists the entity's values in the same order for an INSERT or UPDATE.

// RealmColumns are the columns of the realms table; name is the key.
const RealmColumns = `name, id, enabled, settings, updated`

// ScanRealm reads a row of RealmColumns.
func ScanRealm(sc Scanner) (store.Realm, error) {
	var (
		r        store.Realm
		settings string
		updated  int64
	)
	if err := sc.Scan(&r.Name, &r.ID, &r.Enabled, &settings, &updated); err != nil {
		return store.Realm{}, err
	}
	// Unlike the other JSON columns, empty settings are an error: every
	// write stores a document.
	if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
		return store.Realm{}, fmt.Errorf("realm %q settings: %w", r.Name, err)
	}
	r.Updated = FromMillis(updated)
	return r, nil
}

// RealmArgs lists r's values in RealmColumns order.
func RealmArgs(r store.Realm) ([]any, error) {
	settings, err := jsonText(r.Settings)
	if err != nil {
		return nil, err
	}
	return []any{r.Name, r.ID, r.Enabled, settings, Millis(r.Updated)}, nil
}

// ClientColumns are the columns of the clients table; (realm, client_id)
// is the key.
const ClientColumns = `realm, client_id, id, name, enabled, public, secret_hash, secret_sealed,
	client_authenticator, service_accounts_enabled, direct_access_grants_enabled,
	standard_flow_enabled, redirect_uris, web_origins, attributes,
	default_client_scopes, optional_scopes, jwks, service_account_user_id,
	owner_user_id, scopes, created`

// ScanClient reads a row of ClientColumns.
func ScanClient(sc Scanner) (store.Client, error) {
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
	c.Created = FromMillis(created)
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

// ClientArgs lists c's values in ClientColumns order.
func ClientArgs(c store.Client) ([]any, error) {
	j, err := jsonCols(c.RedirectURIs, c.WebOrigins, c.Attributes, c.DefaultClientScopes, c.OptionalScopes, c.Scopes)
	if err != nil {
		return nil, err
	}
	return []any{c.Realm, c.ClientID, c.ID, c.Name, c.Enabled, c.Public, nilIfEmpty(c.SecretHash), nilIfEmpty(c.SecretSealed),
		c.ClientAuthenticator, c.ServiceAccountsEnabled, c.DirectAccessGrantsEnabled,
		c.StandardFlowEnabled, j[0], j[1], j[2],
		j[3], j[4], nilIfEmpty(c.JWKS), c.ServiceAccountUserID,
		c.OwnerUserID, j[5], Millis(c.Created)}, nil
}

// UserColumns are the columns of the users table; (realm, id) is the key.
const UserColumns = `realm, id, username, email, first_name, last_name, enabled, email_verified,
	created, password_hash, password_created, realm_roles, client_roles, attributes,
	memberships, service_account_client_id, required_actions, not_before`

// ScanUser reads a row of UserColumns.
func ScanUser(sc Scanner) (store.User, error) {
	var (
		u                                                   store.User
		created, pwCreated                                  int64
		realmRoles, clientRoles, attrs, members, reqActions string
	)
	err := sc.Scan(&u.Realm, &u.ID, &u.Username, &u.Email, &u.FirstName, &u.LastName, &u.Enabled, &u.EmailVerified,
		&created, &u.PasswordHash, &pwCreated, &realmRoles, &clientRoles, &attrs,
		&members, &u.ServiceAccountClientID, &reqActions, &u.NotBefore)
	if err != nil {
		return store.User{}, err
	}
	u.Created, u.PasswordCreated = FromMillis(created), FromMillis(pwCreated)
	err = errors.Join(
		jsonDecode(realmRoles, &u.RealmRoles),
		jsonDecode(clientRoles, &u.ClientRoles),
		jsonDecode(attrs, &u.Attributes),
		jsonDecode(members, &u.Memberships),
		jsonDecode(reqActions, &u.RequiredActions),
	)
	return u, err
}

// UserArgs lists u's values in UserColumns order.
func UserArgs(u store.User) ([]any, error) {
	j, err := jsonCols(u.RealmRoles, u.ClientRoles, u.Attributes, u.Memberships, u.RequiredActions)
	if err != nil {
		return nil, err
	}
	return []any{u.Realm, u.ID, u.Username, u.Email, u.FirstName, u.LastName, u.Enabled, u.EmailVerified,
		Millis(u.Created), u.PasswordHash, Millis(u.PasswordCreated), j[0], j[1], j[2],
		j[3], u.ServiceAccountClientID, j[4], u.NotBefore}, nil
}

// SessionColumns are the columns of the sessions table; (realm, id) is
// the key.
const SessionColumns = `realm, id, user_id, client_id, offline, started, last_seen, expires, scope,
	refresh_id, refresh_uses, prev_refresh_id, rotated_at, issued_access_jti, parent_id,
	ip, user_agent`

// ScanSession reads a row of SessionColumns.
func ScanSession(sc Scanner) (store.Session, error) {
	var (
		s                                     store.Session
		started, lastSeen, expires, rotatedAt int64
	)
	err := sc.Scan(&s.Realm, &s.ID, &s.UserID, &s.ClientID, &s.Offline, &started, &lastSeen, &expires, &s.Scope,
		&s.RefreshID, &s.RefreshUses, &s.PrevRefreshID, &rotatedAt, &s.IssuedAccessJTI, &s.ParentID,
		&s.IP, &s.UserAgent)
	if err != nil {
		return store.Session{}, err
	}
	s.Started, s.LastSeen = FromMillis(started), FromMillis(lastSeen)
	s.Expires, s.RotatedAt = FromMillis(expires), FromMillis(rotatedAt)
	return s, nil
}

// SessionArgs lists s's values in SessionColumns order.
func SessionArgs(s store.Session) []any {
	return []any{s.Realm, s.ID, s.UserID, s.ClientID, s.Offline, Millis(s.Started), Millis(s.LastSeen), Millis(s.Expires), s.Scope,
		s.RefreshID, s.RefreshUses, s.PrevRefreshID, Millis(s.RotatedAt), s.IssuedAccessJTI, s.ParentID,
		s.IP, s.UserAgent}
}

// ScanSessionChange reads the realm, id and user_id of a session row
// (DELETE ... RETURNING realm, id, user_id) as the change that announces
// its deletion.
func ScanSessionChange(sc Scanner) (store.Change, error) {
	c := store.Change{Kind: store.ChangeSession}
	err := sc.Scan(&c.Realm, &c.ID, &c.UserID)
	return c, err
}

// KeyColumns are the columns of the keys table; (realm, kid) is the key.
const KeyColumns = `realm, kid, alg, use, private, public, created, active, retire_at`

// ScanKey reads a row of KeyColumns.
func ScanKey(sc Scanner) (store.Key, error) {
	var (
		k                 store.Key
		created, retireAt int64
	)
	if err := sc.Scan(&k.Realm, &k.KID, &k.Alg, &k.Use, &k.Private, &k.Public, &created, &k.Active, &retireAt); err != nil {
		return store.Key{}, err
	}
	k.Created, k.RetireAt = FromMillis(created), FromMillis(retireAt)
	return k, nil
}

// KeyArgs lists k's values in KeyColumns order.
func KeyArgs(k store.Key) []any {
	return []any{k.Realm, k.KID, k.Alg, k.Use, nilIfEmpty(k.Private), nilIfEmpty(k.Public), Millis(k.Created), k.Active, Millis(k.RetireAt)}
}

// ScanKeyChange reads the realm and kid of a key row (DELETE ...
// RETURNING realm, kid) as the change that announces its deletion.
func ScanKeyChange(sc Scanner) (store.Change, error) {
	c := store.Change{Kind: store.ChangeKey}
	err := sc.Scan(&c.Realm, &c.ID)
	return c, err
}

// RevocationColumns are the columns of the revocations table; (realm,
// jti) is the key.
const RevocationColumns = `realm, jti, expires, created`

// ScanRevocation reads a row of RevocationColumns.
func ScanRevocation(sc Scanner) (store.Revocation, error) {
	var (
		r                store.Revocation
		expires, created int64
	)
	if err := sc.Scan(&r.Realm, &r.JTI, &expires, &created); err != nil {
		return store.Revocation{}, err
	}
	r.Expires, r.Created = FromMillis(expires), FromMillis(created)
	return r, nil
}

// RevocationArgs lists r's values in RevocationColumns order.
func RevocationArgs(r store.Revocation) []any {
	return []any{r.Realm, r.JTI, Millis(r.Expires), Millis(r.Created)}
}

// LoginFailureColumns are the columns of the login_failures table;
// (realm, user_id) is the key.
const LoginFailureColumns = `realm, user_id, num_failures, last_failure, last_ip, locked_until, locked_forever`

// ScanLoginFailure reads a row of LoginFailureColumns.
func ScanLoginFailure(sc Scanner) (store.LoginFailure, error) {
	var (
		f                 store.LoginFailure
		last, lockedUntil int64
	)
	err := sc.Scan(&f.Realm, &f.UserID, &f.NumFailures, &last, &f.LastIP, &lockedUntil, &f.LockedForever)
	if err != nil {
		return store.LoginFailure{}, err
	}
	f.LastFailure, f.LockedUntil = FromMillis(last), FromMillis(lockedUntil)
	return f, nil
}

// LoginFailureArgs lists f's values in LoginFailureColumns order.
func LoginFailureArgs(f store.LoginFailure) []any {
	return []any{f.Realm, f.UserID, f.NumFailures, Millis(f.LastFailure), f.LastIP, Millis(f.LockedUntil), f.LockedForever}
}

// PruneBucket is how coarsely a session's prune_at follows its expires, in
// milliseconds.
const PruneBucket = 10 * 60 * 1000

// PruneAt is the prune_at of a session expiring at expires: expires rounded
// up to the next bucket, 0 for a session that never expires. Indexing
// prune_at rather than expires lets a refresh, which moves expires, leave
// the index alone until the bucket changes; the prune query filters on the
// exact expires after using the index.
func PruneAt(expires time.Time) int64 {
	return PruneCut(Millis(expires))
}

// PruneCut rounds a Unix-millisecond time up to a prune bucket.
func PruneCut(ms int64) int64 {
	if ms == 0 {
		return 0
	}
	return (ms + PruneBucket - 1) / PruneBucket * PruneBucket
}

// SessionChanges compares two versions of a session column by column. mask
// has bit i set for each column i of SessionColumns in which next differs
// from prev, and bit len(SessionColumns) when prune_at must move; args are
// next's values for those columns, in that order. A zero mask means there
// is nothing to write.
func SessionChanges(prev, next store.Session) (mask uint64, args []any) {
	a, b := SessionArgs(prev), SessionArgs(next)
	for i := range b {
		if a[i] != b[i] {
			mask |= 1 << i
			args = append(args, b[i])
		}
	}
	if p := PruneAt(next.Expires); p != PruneAt(prev.Expires) {
		mask |= 1 << len(b)
		args = append(args, p)
	}
	return mask, args
}

// sessionUpdates caches SessionUpdateSQL per dialect ('?' and '$n') and
// mask; refreshes use a handful of masks.
var sessionUpdates [2]sync.Map

// SessionUpdateSQL is the UPDATE of the columns in mask (from
// SessionChanges) followed by WHERE realm = ? AND id = ?, with parameters
// spelled $1, $2, ... when dollar is set (PostgreSQL) and ? otherwise.
func SessionUpdateSQL(mask uint64, dollar bool) string {
	d := 0
	if dollar {
		d = 1
	}
	if q, ok := sessionUpdates[d].Load(mask); ok {
		return q.(string)
	}
	ph := func(n int) string {
		if dollar {
			return "$" + strconv.Itoa(n)
		}
		return "?"
	}
	var set []string
	n := 0
	for i, c := range append(Columns(SessionColumns), "prune_at") {
		if mask&(1<<i) != 0 {
			n++
			set = append(set, c+" = "+ph(n))
		}
	}
	q := "UPDATE sessions SET " + strings.Join(set, ", ") + " WHERE realm = " + ph(n+1) + " AND id = " + ph(n+2)
	sessionUpdates[d].Store(mask, q)
	return q
}
