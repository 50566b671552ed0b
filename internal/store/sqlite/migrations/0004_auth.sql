-- 0004: identity: users, TOTP enrolments, recovery codes, API tokens and
-- sessions.
--
-- No secret is stored in the clear: passwords are argon2id hashes (PHC
-- strings), TOTP secrets are sealed by the keyring, and API tokens, session
-- ids and recovery codes are stored as SHA-256 digests of high-entropy
-- random values. Users are disabled, never deleted: audit records name them.

CREATE TABLE users (
    id                   TEXT    NOT NULL PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE,
    display_name         TEXT    NOT NULL DEFAULT '',
    groups               TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
    disabled             INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
    password_hash        TEXT    NOT NULL DEFAULT '',
    oidc_issuer          TEXT    NOT NULL DEFAULT '',
    oidc_subject         TEXT    NOT NULL DEFAULT '',
    failed_logins        INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until         INTEGER,
    last_login_at        INTEGER,
    password_changed_at  INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;

-- One account per OIDC identity; accounts without one are not constrained.
CREATE UNIQUE INDEX users_by_oidc ON users (oidc_issuer, oidc_subject) WHERE oidc_subject <> '';

CREATE TABLE totp (
    user_id      TEXT    NOT NULL PRIMARY KEY REFERENCES users (id),
    sealed       BLOB    NOT NULL,
    data_key_id  TEXT    NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (id),
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, hash)
) STRICT;

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    hash         BLOB    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    owner_id     TEXT    NOT NULL REFERENCES users (id),
    scopes       TEXT    NOT NULL DEFAULT '[]', -- JSON array of permission strings
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE INDEX api_tokens_by_owner ON api_tokens (owner_id, created_at);

CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    hash         BLOB    NOT NULL UNIQUE,
    user_id      TEXT    NOT NULL REFERENCES users (id),
    method       TEXT    NOT NULL,
    mfa          INTEGER NOT NULL DEFAULT 0 CHECK (mfa IN (0, 1)),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
