-- 0005: authorization. Custom roles, bindings of users and groups to roles,
-- access requests (the two-person rule), immutable pipeline versions with
-- their approval, protected namespaces and access reviews.
--
-- access_version holds one row: a counter incremented in the transaction of
-- every role or binding change, so that a process caching bindings reloads
-- only when it moved.

CREATE TABLE access_version (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO access_version (id, version) VALUES (1, 0);

CREATE TABLE roles (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL DEFAULT '',
    permissions TEXT    NOT NULL, -- JSON array of permission names
    created_by  TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE bindings (
    id           TEXT    NOT NULL PRIMARY KEY,
    subject_kind TEXT    NOT NULL CHECK (subject_kind IN ('user', 'group')),
    subject      TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    namespace    TEXT    NOT NULL DEFAULT '',
    expires_at   INTEGER,
    granted_by   TEXT    NOT NULL,
    granted_at   INTEGER NOT NULL,
    request_id   TEXT    NOT NULL DEFAULT '',
    last_used_at INTEGER,
    UNIQUE (subject_kind, subject, role, namespace)
) STRICT;

-- DeleteRole's "still bound" check.
CREATE INDEX bindings_by_role ON bindings (role);

CREATE TABLE access_requests (
    id           TEXT    NOT NULL PRIMARY KEY,
    requester    TEXT    NOT NULL,
    subject_kind TEXT    NOT NULL CHECK (subject_kind IN ('user', 'group')),
    subject      TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    namespace    TEXT    NOT NULL DEFAULT '',
    expires_at   INTEGER,
    reason       TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    approver     TEXT    NOT NULL DEFAULT '',
    note         TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    decided_at   INTEGER,
    binding_id   TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX access_requests_by_state ON access_requests (state, created_at);

CREATE TABLE pipeline_versions (
    namespace   TEXT    NOT NULL,
    pipeline    TEXT    NOT NULL,
    number      INTEGER NOT NULL CHECK (number >= 1),
    hash        TEXT    NOT NULL,
    content     BLOB    NOT NULL,
    author      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    diff        TEXT    NOT NULL DEFAULT '',
    approved_by TEXT    NOT NULL DEFAULT '',
    approved_at INTEGER,
    PRIMARY KEY (namespace, pipeline, number)
) STRICT;

CREATE TABLE protected_namespaces (
    namespace TEXT    NOT NULL PRIMARY KEY,
    set_by    TEXT    NOT NULL,
    set_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE access_reviews (
    id       TEXT    NOT NULL PRIMARY KEY,
    reviewer TEXT    NOT NULL,
    at       INTEGER NOT NULL
) STRICT;

CREATE TABLE access_review_decisions (
    review_id  TEXT    NOT NULL REFERENCES access_reviews (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    binding_id TEXT    NOT NULL,
    action     TEXT    NOT NULL CHECK (action IN ('confirm', 'revoke')),
    flags      TEXT    NOT NULL, -- JSON array
    note       TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (review_id, seq)
) STRICT;
