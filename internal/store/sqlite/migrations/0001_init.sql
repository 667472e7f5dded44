-- 0001: the initial schema. Times are Unix milliseconds UTC (0 means
-- "not set"); slices, maps and realm settings are JSON text.

CREATE TABLE realms (
	name     TEXT    NOT NULL PRIMARY KEY,
	id       TEXT    NOT NULL,
	enabled  INTEGER NOT NULL,
	settings TEXT    NOT NULL,
	updated  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE clients (
	realm                        TEXT    NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	client_id                    TEXT    NOT NULL,
	id                           TEXT    NOT NULL,
	name                         TEXT    NOT NULL,
	enabled                      INTEGER NOT NULL,
	public                       INTEGER NOT NULL,
	secret_hash                  BLOB,
	secret_sealed                BLOB,
	client_authenticator         TEXT    NOT NULL,
	service_accounts_enabled     INTEGER NOT NULL,
	direct_access_grants_enabled INTEGER NOT NULL,
	standard_flow_enabled        INTEGER NOT NULL,
	redirect_uris                TEXT    NOT NULL,
	web_origins                  TEXT    NOT NULL,
	attributes                   TEXT    NOT NULL,
	default_client_scopes        TEXT    NOT NULL,
	optional_scopes              TEXT    NOT NULL,
	jwks                         BLOB,
	service_account_user_id      TEXT    NOT NULL,
	owner_user_id                TEXT    NOT NULL,
	scopes                       TEXT    NOT NULL,
	created                      INTEGER NOT NULL,
	PRIMARY KEY (realm, client_id)
) WITHOUT ROWID;
CREATE INDEX clients_by_owner ON clients (realm, owner_user_id);

CREATE TABLE users (
	realm                     TEXT    NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	id                        TEXT    NOT NULL,
	username                  TEXT    NOT NULL,
	email                     TEXT    NOT NULL,
	first_name                TEXT    NOT NULL,
	last_name                 TEXT    NOT NULL,
	enabled                   INTEGER NOT NULL,
	email_verified            INTEGER NOT NULL,
	created                   INTEGER NOT NULL,
	password_hash             TEXT    NOT NULL,
	password_created          INTEGER NOT NULL,
	realm_roles               TEXT    NOT NULL,
	client_roles              TEXT    NOT NULL,
	attributes                TEXT    NOT NULL,
	memberships               TEXT    NOT NULL,
	service_account_client_id TEXT    NOT NULL,
	required_actions          TEXT    NOT NULL,
	not_before                INTEGER NOT NULL,
	PRIMARY KEY (realm, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX users_by_username ON users (realm, username);
CREATE INDEX users_by_email ON users (realm, email);

CREATE TABLE sessions (
	realm             TEXT    NOT NULL,
	id                TEXT    NOT NULL,
	user_id           TEXT    NOT NULL,
	client_id         TEXT    NOT NULL,
	offline           INTEGER NOT NULL,
	started           INTEGER NOT NULL,
	last_seen         INTEGER NOT NULL,
	expires           INTEGER NOT NULL,
	scope             TEXT    NOT NULL,
	refresh_id        TEXT    NOT NULL,
	refresh_uses      INTEGER NOT NULL,
	prev_refresh_id   TEXT    NOT NULL,
	rotated_at        INTEGER NOT NULL,
	issued_access_jti TEXT    NOT NULL,
	parent_id         TEXT    NOT NULL,
	ip                TEXT    NOT NULL,
	user_agent        TEXT    NOT NULL,
	PRIMARY KEY (realm, id),
	FOREIGN KEY (realm, user_id) REFERENCES users(realm, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions (realm, user_id, last_seen);
CREATE INDEX sessions_by_expires ON sessions (expires) WHERE expires != 0;

CREATE TABLE keys (
	realm     TEXT    NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	kid       TEXT    NOT NULL,
	alg       TEXT    NOT NULL,
	use       TEXT    NOT NULL,
	private   BLOB,
	public    BLOB,
	created   INTEGER NOT NULL,
	active    INTEGER NOT NULL,
	retire_at INTEGER NOT NULL,
	PRIMARY KEY (realm, kid)
) WITHOUT ROWID;

CREATE TABLE revocations (
	realm   TEXT    NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	jti     TEXT    NOT NULL,
	expires INTEGER NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (realm, jti)
) WITHOUT ROWID;
CREATE INDEX revocations_by_created ON revocations (created);
CREATE INDEX revocations_by_expires ON revocations (expires) WHERE expires != 0;

CREATE TABLE use_once (
	realm   TEXT    NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	key     TEXT    NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (realm, key)
) WITHOUT ROWID;
CREATE INDEX use_once_by_expires ON use_once (expires) WHERE expires != 0;

CREATE TABLE login_failures (
	realm          TEXT    NOT NULL,
	user_id        TEXT    NOT NULL,
	num_failures   INTEGER NOT NULL,
	last_failure   INTEGER NOT NULL,
	last_ip        TEXT    NOT NULL,
	locked_until   INTEGER NOT NULL,
	locked_forever INTEGER NOT NULL,
	PRIMARY KEY (realm, user_id),
	FOREIGN KEY (realm, user_id) REFERENCES users(realm, id) ON DELETE CASCADE
) WITHOUT ROWID;
