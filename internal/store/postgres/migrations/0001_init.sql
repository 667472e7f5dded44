-- 0001: the initial schema. Times are Unix milliseconds UTC in BIGINT (0
-- means "not set"), as in the SQLite schema, so that both backends keep
-- exactly the same values; slices, maps and realm settings are JSON text
-- (TEXT, not JSONB: JSONB rejects "\u0000" and reorders keys, and nothing
-- queries inside these documents). Names that are ordered or compared use
-- the "C" collation: byte order, as SQLite sorts, whatever the database's
-- locale.

CREATE TABLE realms (
	name     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	id       TEXT    NOT NULL,
	enabled  BOOLEAN NOT NULL,
	settings TEXT    NOT NULL,
	updated  BIGINT  NOT NULL
);

CREATE TABLE clients (
	realm                        TEXT COLLATE "C" NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	client_id                    TEXT COLLATE "C" NOT NULL,
	id                           TEXT    NOT NULL,
	name                         TEXT    NOT NULL,
	enabled                      BOOLEAN NOT NULL,
	public                       BOOLEAN NOT NULL,
	secret_hash                  BYTEA,
	secret_sealed                BYTEA,
	client_authenticator         TEXT    NOT NULL,
	service_accounts_enabled     BOOLEAN NOT NULL,
	direct_access_grants_enabled BOOLEAN NOT NULL,
	standard_flow_enabled        BOOLEAN NOT NULL,
	redirect_uris                TEXT    NOT NULL,
	web_origins                  TEXT    NOT NULL,
	attributes                   TEXT    NOT NULL,
	default_client_scopes        TEXT    NOT NULL,
	optional_scopes              TEXT    NOT NULL,
	jwks                         BYTEA,
	service_account_user_id      TEXT    NOT NULL,
	owner_user_id                TEXT COLLATE "C" NOT NULL,
	scopes                       TEXT    NOT NULL,
	created                      BIGINT  NOT NULL,
	PRIMARY KEY (realm, client_id)
);
CREATE INDEX clients_by_owner ON clients (realm, owner_user_id);

CREATE TABLE users (
	realm                     TEXT COLLATE "C" NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	id                        TEXT COLLATE "C" NOT NULL,
	username                  TEXT COLLATE "C" NOT NULL,
	email                     TEXT COLLATE "C" NOT NULL,
	first_name                TEXT    NOT NULL,
	last_name                 TEXT    NOT NULL,
	enabled                   BOOLEAN NOT NULL,
	email_verified            BOOLEAN NOT NULL,
	created                   BIGINT  NOT NULL,
	password_hash             TEXT    NOT NULL,
	password_created          BIGINT  NOT NULL,
	realm_roles               TEXT    NOT NULL,
	client_roles              TEXT    NOT NULL,
	attributes                TEXT    NOT NULL,
	memberships               TEXT    NOT NULL,
	service_account_client_id TEXT    NOT NULL,
	required_actions          TEXT    NOT NULL,
	not_before                BIGINT  NOT NULL,
	PRIMARY KEY (realm, id)
);
CREATE UNIQUE INDEX users_by_username ON users (realm, username);
CREATE INDEX users_by_email ON users (realm, email);

-- Sessions hang off their user: deleting the user (or, through the user,
-- the realm) deletes them.
CREATE TABLE sessions (
	realm             TEXT COLLATE "C" NOT NULL,
	id                TEXT COLLATE "C" NOT NULL,
	user_id           TEXT COLLATE "C" NOT NULL,
	client_id         TEXT    NOT NULL,
	offline           BOOLEAN NOT NULL,
	started           BIGINT  NOT NULL,
	last_seen         BIGINT  NOT NULL,
	expires           BIGINT  NOT NULL,
	scope             TEXT    NOT NULL,
	refresh_id        TEXT    NOT NULL,
	refresh_uses      INTEGER NOT NULL,
	prev_refresh_id   TEXT    NOT NULL,
	rotated_at        BIGINT  NOT NULL,
	issued_access_jti TEXT    NOT NULL,
	parent_id         TEXT    NOT NULL,
	ip                TEXT    NOT NULL,
	user_agent        TEXT    NOT NULL,
	PRIMARY KEY (realm, id),
	FOREIGN KEY (realm, user_id) REFERENCES users(realm, id) ON DELETE CASCADE
);
CREATE INDEX sessions_by_user ON sessions (realm, user_id, last_seen);
CREATE INDEX sessions_by_expires ON sessions (expires) WHERE expires <> 0;

CREATE TABLE keys (
	realm     TEXT COLLATE "C" NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	kid       TEXT COLLATE "C" NOT NULL,
	alg       TEXT    NOT NULL,
	use       TEXT    NOT NULL,
	private   BYTEA,
	public    BYTEA,
	created   BIGINT  NOT NULL,
	active    BOOLEAN NOT NULL,
	retire_at BIGINT  NOT NULL,
	PRIMARY KEY (realm, kid)
);
CREATE INDEX keys_by_retire_at ON keys (retire_at) WHERE retire_at <> 0;

CREATE TABLE revocations (
	realm   TEXT COLLATE "C" NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	jti     TEXT COLLATE "C" NOT NULL,
	expires BIGINT NOT NULL,
	created BIGINT NOT NULL,
	PRIMARY KEY (realm, jti)
);
CREATE INDEX revocations_by_created ON revocations (created);
CREATE INDEX revocations_by_expires ON revocations (expires) WHERE expires <> 0;

CREATE TABLE use_once (
	realm   TEXT COLLATE "C" NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
	key     TEXT COLLATE "C" NOT NULL,
	expires BIGINT NOT NULL,
	PRIMARY KEY (realm, key)
);
CREATE INDEX use_once_by_expires ON use_once (expires) WHERE expires <> 0;

CREATE TABLE login_failures (
	realm          TEXT COLLATE "C" NOT NULL,
	user_id        TEXT COLLATE "C" NOT NULL,
	num_failures   INTEGER NOT NULL,
	last_failure   BIGINT  NOT NULL,
	last_ip        TEXT    NOT NULL,
	locked_until   BIGINT  NOT NULL,
	locked_forever BOOLEAN NOT NULL,
	PRIMARY KEY (realm, user_id),
	FOREIGN KEY (realm, user_id) REFERENCES users(realm, id) ON DELETE CASCADE
);
