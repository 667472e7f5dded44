// Package store defines gatehouse's durable state: the entity types and the
// one Store interface that every backend (embedded SQLite, PostgreSQL)
// implements and that the conformance suite in store/conformance checks.
//
// Updates take a function that the backend runs inside its own transaction
// (the shape of dex's storage.UpdateRefreshToken). That one shape is what
// makes a refresh-token rotation or a session-limit check race-free on one
// node and on many: the invariant is decided while the rows are locked, never
// by an in-process mutex alone.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every backend returns (wrapped or not; test with errors.Is).
var (
	// ErrNotFound: the entity does not exist (or no longer does).
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists: a create hit an existing primary or unique key
	// (realm name, client id, username, a used assertion jti).
	ErrAlreadyExists = errors.New("store: already exists")
)

// Store is the whole of gatehouse's durable state. Every method is safe for
// concurrent use by many goroutines and, on PostgreSQL, by many replicas.
//
// An update function passed to an Update* method may run more than once
// (a backend may retry a serialization failure), so it must not have side
// effects beyond computing its result. Returning an error from it aborts the
// transaction and the error is returned unchanged.
type Store interface {
	// ImportRealm writes a realm with its clients, users and keys in one
	// transaction: either all of it lands or none of it. With replace false
	// an existing realm of that name gives ErrAlreadyExists; with replace
	// true the old realm and everything in it is deleted first (same
	// transaction).
	ImportRealm(ctx context.Context, b RealmBundle, replace bool) error

	CreateRealm(ctx context.Context, r Realm) error
	GetRealm(ctx context.Context, name string) (Realm, error)
	ListRealms(ctx context.Context) ([]Realm, error)
	UpdateRealm(ctx context.Context, name string, fn func(Realm) (Realm, error)) error
	// DeleteRealm deletes the realm and everything that belongs to it.
	DeleteRealm(ctx context.Context, name string) error

	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, realm, clientID string) (Client, error)
	ListClients(ctx context.Context, realm string) ([]Client, error)
	// ListClientsByOwner lists the clients (apps) a user created, for the
	// developer portal and its per-user app limit.
	ListClientsByOwner(ctx context.Context, realm, ownerUserID string) ([]Client, error)
	UpdateClient(ctx context.Context, realm, clientID string, fn func(Client) (Client, error)) error
	DeleteClient(ctx context.Context, realm, clientID string) error

	CreateUser(ctx context.Context, u User) error
	// CreateUsers inserts many users in one transaction (seeding, bulk
	// import); the whole batch fails on the first conflict.
	CreateUsers(ctx context.Context, us []User) error
	GetUser(ctx context.Context, realm, id string) (User, error)
	// GetUserByUsername matches the username exactly; callers lowercase
	// it first, as Keycloak stores usernames lowercased.
	GetUserByUsername(ctx context.Context, realm, username string) (User, error)
	GetUserByEmail(ctx context.Context, realm, email string) (User, error)
	// ListUsers pages through a realm's users ordered by username.
	ListUsers(ctx context.Context, realm string, offset, limit int) ([]User, error)
	CountUsers(ctx context.Context, realm string) (int, error)
	UpdateUser(ctx context.Context, realm, id string, fn func(User) (User, error)) error
	// DeleteUser deletes the user, their sessions and login failures.
	DeleteUser(ctx context.Context, realm, id string) error

	// CreateSession inserts s after admit has approved it. admit is called
	// inside the transaction with every session of s.UserID in s.Realm
	// (online and offline, expired or not, ordered by LastSeen, oldest
	// first), while those rows and the user's row are locked against any
	// concurrent CreateSession for the same user. It returns the ids of
	// sessions to delete in the same transaction (a "terminate oldest"
	// limit), or an error to refuse s (a "deny new session" limit).
	CreateSession(ctx context.Context, s Session, admit func(existing []Session) (end []string, err error)) error
	GetSession(ctx context.Context, realm, id string) (Session, error)
	ListUserSessions(ctx context.Context, realm, userID string) ([]Session, error)
	// UpdateSession writes fn's result over the stored session. A backend
	// may skip the write, and announce nothing, when fn changed nothing.
	UpdateSession(ctx context.Context, realm, id string, fn func(Session) (Session, error)) error
	DeleteSession(ctx context.Context, realm, id string) error
	// DeleteUserSessions ends every session of a user (admin logout,
	// disabled user); it returns how many it deleted.
	DeleteUserSessions(ctx context.Context, realm, userID string) (int, error)
	// DeleteExpired removes sessions, revocations and used assertion ids
	// whose Expires is before now. It returns how many rows it deleted.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
	// CountSessions counts live (not deleted) sessions of a realm.
	CountSessions(ctx context.Context, realm string) (int, error)

	// Signing and HMAC keys of a realm, oldest first.
	ListKeys(ctx context.Context, realm string) ([]Key, error)
	CreateKey(ctx context.Context, k Key) error
	UpdateKey(ctx context.Context, realm, kid string, fn func(Key) (Key, error)) error
	DeleteKey(ctx context.Context, realm, kid string) error

	// Revoke records that the token with this jti must no longer be
	// accepted (RFC 7009 revocation of an access token). Revoking twice is
	// not an error.
	Revoke(ctx context.Context, r Revocation) error
	IsRevoked(ctx context.Context, realm, jti string) (bool, error)
	// ListRevocations returns revocations created at or after since, for a
	// gateway that keeps the revocation list in memory.
	ListRevocations(ctx context.Context, since time.Time) ([]Revocation, error)

	// UseOnce records key (a client assertion's jti, scoped by the caller)
	// until expires; a second call with the same realm and key before it
	// expires returns ErrAlreadyExists, on every replica.
	UseOnce(ctx context.Context, realm, key string, expires time.Time) error

	GetLoginFailure(ctx context.Context, realm, userID string) (LoginFailure, error)
	// UpdateLoginFailure runs fn on the current record (a zero record with
	// Realm and UserID set when there is none) and stores the result.
	UpdateLoginFailure(ctx context.Context, realm, userID string, fn func(LoginFailure) (LoginFailure, error)) error
	DeleteLoginFailure(ctx context.Context, realm, userID string) error

	// Subscribe calls fn for every change committed by this store and, on
	// PostgreSQL, by every other replica (LISTEN/NOTIFY). fn runs on the
	// store's own goroutine, after the commit; it must not block for long.
	// Caches drop what a change names; nothing else relies on the feed.
	Subscribe(fn func(Change)) (cancel func())

	// Ping reports whether the store can serve requests (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// RealmBundle is everything ImportRealm writes in one transaction.
type RealmBundle struct {
	Realm   Realm
	Clients []Client
	Users   []User
	Keys    []Key
}

// ChangeKind names the kind of entity a Change is about.
type ChangeKind string

const (
	ChangeRealm      ChangeKind = "realm"
	ChangeClient     ChangeKind = "client"
	ChangeUser       ChangeKind = "user"
	ChangeSession    ChangeKind = "session"
	ChangeKey        ChangeKind = "key"
	ChangeRevocation ChangeKind = "revocation"
)

// Change says that an entity was written or deleted. It carries no data:
// a cache drops the entry and reads the store again when it needs it.
type Change struct {
	Kind  ChangeKind
	Realm string
	// ID is the realm name, client id, user id, session id, key id or the
	// revoked jti. Empty means "everything of this kind in the realm"
	// (a realm import, a bulk delete).
	ID string
	// UserID is set on session changes, so that a gateway can drop every
	// cached token of the user's session without a lookup.
	UserID string
}

// Realm is a tenant: its own users, clients, keys and issuer URL. The
// settings are one document (stored as JSON): they are read on every
// request from memory and written rarely, by an admin.
type Realm struct {
	Name     string // the R in /realms/R; unique
	ID       string // Keycloak's realm id (a UUID), kept for round-trips
	Enabled  bool
	Settings RealmSettings
	// Updated changes on every write; caches compare it.
	Updated time.Time
}

// RealmSettings holds a realm's configuration. Durations are in seconds, as
// Keycloak's realm export has them, so that an import/export round-trips
// exactly; zero means "the Keycloak default" only where a field says so.
type RealmSettings struct {
	DisplayName string `json:"displayName,omitempty"`

	// Token and session lifetimes (Keycloak realm fields of the same name).
	AccessTokenLifespan              int  `json:"accessTokenLifespan"`
	SSOSessionIdleTimeout            int  `json:"ssoSessionIdleTimeout"`
	SSOSessionMaxLifespan            int  `json:"ssoSessionMaxLifespan"`
	OfflineSessionIdleTimeout        int  `json:"offlineSessionIdleTimeout"`
	OfflineSessionMaxLifespanEnabled bool `json:"offlineSessionMaxLifespanEnabled"`
	OfflineSessionMaxLifespan        int  `json:"offlineSessionMaxLifespan"`
	// ClientSessionIdleTimeout and ClientSessionMaxLifespan, when non-zero,
	// shorten the refresh window below the SSO session's (Keycloak 12+).
	ClientSessionIdleTimeout int `json:"clientSessionIdleTimeout,omitempty"`
	ClientSessionMaxLifespan int `json:"clientSessionMaxLifespan,omitempty"`
	// NotBefore: tokens issued before this Unix time are rejected
	// ("not-before-policy" in token responses).
	NotBefore int64 `json:"notBefore,omitempty"`

	// Refresh rotation (RFC 9700 §4.14): with RevokeRefreshToken a refresh
	// token may be used RefreshTokenMaxReuse+1 times; one more use ends the
	// session. RefreshGraceSeconds (gatehouse's own) lets the token rotated
	// out last be presented again within this many seconds and answers with
	// the same new token pair, so that two tabs refreshing at once do not
	// end their session.
	RevokeRefreshToken   bool `json:"revokeRefreshToken"`
	RefreshTokenMaxReuse int  `json:"refreshTokenMaxReuse"`
	RefreshGraceSeconds  int  `json:"refreshGraceSeconds,omitempty"`

	// Brute-force detection, Keycloak's fields and meanings.
	BruteForce BruteForce `json:"bruteForce"`

	// SessionLimits come from a user-session-limits execution in the
	// realm's direct-grant flow; nil means no limit.
	SessionLimits *SessionLimits `json:"sessionLimits,omitempty"`

	// DefaultSignatureAlgorithm signs access and ID tokens: RS256 (the
	// default), PS256, ES256 or EdDSA. A client attribute may override it.
	DefaultSignatureAlgorithm string `json:"defaultSignatureAlgorithm,omitempty"`

	// Roles of the realm (ClientID "") and of its clients.
	Roles []Role `json:"roles,omitempty"`
	// DefaultRoles are given to every new user (Keycloak's
	// default-roles-<realm> composite; Fusio's Consumer).
	DefaultRoles []string `json:"defaultRoles,omitempty"`

	// ClientScopes defines the scopes clients may request (name →
	// whether it puts claims in the token); see the core for how default
	// and optional scopes combine.
	ClientScopes        []ClientScope `json:"clientScopes,omitempty"`
	DefaultClientScopes []string      `json:"defaultDefaultClientScopes,omitempty"`
	OptionalScopes      []string      `json:"defaultOptionalClientScopes,omitempty"`

	OrganizationsEnabled bool           `json:"organizationsEnabled,omitempty"`
	Organizations        []Organization `json:"organizations,omitempty"`

	// Gateway configures the operations gatehouse protects for this realm.
	Gateway *Gateway `json:"gateway,omitempty"`

	// Registration is the developer portal's self-registration policy.
	RegistrationAllowed bool   `json:"registrationAllowed,omitempty"`
	VerifyEmail         bool   `json:"verifyEmail,omitempty"`
	PasswordPolicy      string `json:"passwordPolicy,omitempty"`
	// MaxAppsPerUser caps the apps a developer may create (Fusio: 16).
	MaxAppsPerUser int `json:"maxAppsPerUser,omitempty"`
	// Aliases are other names the realm answers to (a Sync Gateway
	// database name, say).
	Aliases []string `json:"aliases,omitempty"`

	// Extra keeps realm-export fields gatehouse stores but does not
	// interpret, so that an export gives them back.
	Extra map[string]any `json:"extra,omitempty"`
}

// BruteForce mirrors Keycloak's realm brute-force fields.
type BruteForce struct {
	Protected                    bool `json:"bruteForceProtected"`
	PermanentLockout             bool `json:"permanentLockout"`
	FailureFactor                int  `json:"failureFactor"`
	WaitIncrementSeconds         int  `json:"waitIncrementSeconds"`
	MaxFailureWaitSeconds        int  `json:"maxFailureWaitSeconds"`
	MinimumQuickLoginWaitSeconds int  `json:"minimumQuickLoginWaitSeconds"`
	QuickLoginCheckMilliSeconds  int  `json:"quickLoginCheckMilliSeconds"`
	MaxDeltaTimeSeconds          int  `json:"maxDeltaTimeSeconds"`
}

// SessionLimits is Keycloak's user-session-limits authenticator config.
type SessionLimits struct {
	RealmLimit  int `json:"userRealmLimit"`  // 0: no realm-wide limit
	ClientLimit int `json:"userClientLimit"` // 0: no per-client limit
	// Behavior is "Deny new session" or "Terminate oldest session".
	Behavior string `json:"behavior"`
	// ErrorMessage, when set, replaces the default description.
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// Session-limit behaviours, as Keycloak spells them.
const (
	DenyNewSession         = "Deny new session"
	TerminateOldestSession = "Terminate oldest session"
)

// Role is a realm role (ClientID "") or a client role.
type Role struct {
	Name        string `json:"name"`
	ID          string `json:"id,omitempty"`
	ClientID    string `json:"clientId,omitempty"`
	Description string `json:"description,omitempty"`
	// Composites are the realm roles ("name") and client roles
	// ("client/name") that holding this role also grants.
	Composites []string `json:"composites,omitempty"`
	// Attributes as in Keycloak; the gateway reads "scopes" (the scopes
	// this role grants at the gateway, Fusio-style).
	Attributes map[string][]string `json:"attributes,omitempty"`
}

// ClientScope is an OAuth scope a client may request.
type ClientScope struct {
	Name     string `json:"name"`
	ID       string `json:"id,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	// IncludeInTokenScope: whether the name appears in the token's scope
	// claim (Keycloak's include.in.token.scope attribute).
	IncludeInTokenScope bool              `json:"includeInTokenScope"`
	Attributes          map[string]string `json:"attributes,omitempty"`
}

// Organization is a customer organization inside a realm (Keycloak 26).
type Organization struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	Alias       string              `json:"alias"`
	Enabled     bool                `json:"enabled"`
	Description string              `json:"description,omitempty"`
	Domains     []string            `json:"domains,omitempty"`
	Attributes  map[string][]string `json:"attributes,omitempty"`
}

// Gateway is the per-realm policy of the API gateway.
type Gateway struct {
	// OrgFrom picks how a request names its organization: "header" (the
	// Organization header, the default) or "subdomain" ({org}.{Domain}).
	OrgFrom string `json:"orgFrom,omitempty"`
	Domain  string `json:"domain,omitempty"`
	// Audience, when set, must be in every token's aud.
	Audience string `json:"audience,omitempty"`
	// AcceptIDTokens lets an ID token (Sync Gateway style) act as bearer.
	AcceptIDTokens bool        `json:"acceptIdTokens,omitempty"`
	Operations     []Operation `json:"operations,omitempty"`
}

// Operation is one protected (or public) route of the gateway.
type Operation struct {
	Method   string   `json:"method"` // "" or "*" matches every method
	Path     string   `json:"path"`   // /risks, /risks/{id}, /files/*
	Upstream string   `json:"upstream"`
	Public   bool     `json:"public,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	// ForwardAuthorization passes the client's Authorization header on.
	ForwardAuthorization bool `json:"forwardAuthorization,omitempty"`
	TimeoutSeconds       int  `json:"timeoutSeconds,omitempty"`
}

// Client is an OAuth client (Keycloak client, Fusio app).
type Client struct {
	Realm    string
	ClientID string // the client_id on the wire; unique in the realm
	ID       string // Keycloak's internal id (a UUID)
	Name     string
	Enabled  bool
	// Public clients have no secret and may not use client_credentials.
	Public bool
	// SecretHash is the keyed SHA-256 of the client secret (the key lives
	// outside the store, so a copy of the database authenticates nobody).
	SecretHash []byte
	// SecretSealed holds the secret itself, encrypted with the master key,
	// only for clients that use client_secret_jwt (RFC 7523 needs the
	// shared secret as an HMAC key). Empty otherwise.
	SecretSealed []byte
	// ClientAuthenticator: "client-secret" (default), "client-jwt"
	// (private_key_jwt) or "client-secret-jwt", Keycloak's names.
	ClientAuthenticator       string
	ServiceAccountsEnabled    bool
	DirectAccessGrantsEnabled bool
	StandardFlowEnabled       bool
	RedirectURIs              []string
	WebOrigins                []string
	// Attributes as in Keycloak: access.token.lifespan,
	// client.session.idle.timeout, use.refresh.tokens, jwks.url, ...
	Attributes          map[string]string
	DefaultClientScopes []string
	OptionalScopes      []string
	// JWKS holds the client's public keys for private_key_jwt when given
	// inline (JSON Web Key Set document).
	JWKS []byte
	// ServiceAccountUserID is the user the client acts as in
	// client_credentials (Keycloak's service-account-<clientId>).
	ServiceAccountUserID string
	// OwnerUserID is set on apps a developer created in the portal.
	OwnerUserID string
	// Scopes limits the scopes an app may obtain (Fusio apps); empty
	// means no limit beyond the user's roles.
	Scopes  []string
	Created time.Time
}

// User is an account in a realm.
type User struct {
	Realm         string
	ID            string // UUID; the sub claim
	Username      string // lowercased
	Email         string
	FirstName     string
	LastName      string
	Enabled       bool
	EmailVerified bool
	Created       time.Time
	// PasswordHash is the encoded hash (see package password); empty
	// means the user cannot log in with a password.
	PasswordHash string
	// PasswordCreated is when the password was set (Keycloak's
	// createdDate), kept for exports.
	PasswordCreated time.Time
	RealmRoles      []string
	ClientRoles     map[string][]string // clientId → role names
	Attributes      map[string][]string
	// Memberships: the organizations the user belongs to, each with its
	// own stable id (seed 004's MU… values).
	Memberships []Membership
	// ServiceAccountClientID is set for the user behind a client's
	// service account.
	ServiceAccountClientID string
	// RequiredActions (VERIFY_EMAIL, ...) block direct grants until done.
	RequiredActions []string
	// NotBefore: tokens of this user issued before it are rejected.
	NotBefore int64
}

// Membership is a user's membership of one organization.
type Membership struct {
	OrgID string `json:"orgId"`
	// ID is stable for the life of the membership and unique in the realm.
	ID string `json:"id"`
}

// Session is a login (a Keycloak user session with its one client
// session): the server-side state behind refresh tokens.
type Session struct {
	ID       string // the sid claim and session_state
	Realm    string
	UserID   string
	ClientID string // the client that logged in
	// Offline sessions (scope offline_access) survive logout of the login
	// session and use the offline lifetimes.
	Offline  bool
	Started  time.Time // auth_time
	LastSeen time.Time // last login or refresh: idle timeout and "oldest"
	// Expires is when the session ends by itself if not refreshed again
	// (the earlier of idle and max lifespan), kept so that DeleteExpired
	// can clean up without knowing realm settings.
	Expires time.Time
	Scope   string
	// Refresh rotation state. RefreshID is the jti of the one refresh
	// token currently valid when rotation is on; RefreshUses counts its
	// uses. PrevRefreshID/RotatedAt remember the token rotated out last,
	// for the grace window, together with the ids of the pair that
	// replaced it, so that a retry within the window gets that same pair.
	RefreshID     string
	RefreshUses   int
	PrevRefreshID string
	RotatedAt     time.Time
	// IssuedAccessJTI is the jti of the access token minted with
	// RefreshID (re-minted identically within the grace window).
	IssuedAccessJTI string
	// ParentID links an offline session to the login that created it.
	ParentID string
	// IP and UserAgent of the login, shown in the profile panel.
	IP        string
	UserAgent string
}

// Key is a signing key (Use "sig") or a refresh-token HMAC key (Use "hmac").
type Key struct {
	Realm string
	KID   string
	Alg   string // RS256, PS256, ES256, EdDSA, HS256
	Use   string // "sig" or "hmac"
	// Private is the private key (PKCS#8 DER) or HMAC secret, sealed with
	// the master key (AES-256-GCM); never stored in the clear.
	Private []byte
	// Public is the PKIX DER public key; empty for HMAC keys.
	Public  []byte
	Created time.Time
	// Active: new tokens are signed with the newest active key per alg.
	Active bool
	// RetireAt, set when the key is rotated out, is when the last token it
	// signed expires; after it the key leaves the JWKS and is deleted.
	RetireAt time.Time
}

// Revocation marks one token (by jti) as no longer valid until it would
// have expired anyway.
type Revocation struct {
	Realm   string
	JTI     string
	Expires time.Time
	Created time.Time
}

// LoginFailure is Keycloak's brute-force record for one user.
type LoginFailure struct {
	Realm         string
	UserID        string
	NumFailures   int
	LastFailure   time.Time
	LastIP        string
	LockedUntil   time.Time // zero: not temporarily locked
	LockedForever bool      // permanent lockout; an admin unlocks
}
