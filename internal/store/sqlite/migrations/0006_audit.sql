-- 0006: the audit log, its signed checkpoints and their signing keys.
--
-- All three tables are append-only: the triggers below refuse every UPDATE
-- and DELETE, whoever issues it, as a second line of defence behind the
-- store, which has no method to change or delete them. Somebody with write
-- access to this file can drop the triggers and edit rows; that is what
-- audit verification (hash chain, signed checkpoints) detects.

CREATE TABLE audit_events (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    time      INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    resource  TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    event     BLOB    NOT NULL,
    prev_hash BLOB    NOT NULL,
    hash      BLOB    NOT NULL
) STRICT;

-- Filters of 'sluice audit log'.
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_by_action ON audit_events (action, seq);
CREATE INDEX audit_events_by_resource ON audit_events (resource, seq);
CREATE INDEX audit_events_by_time ON audit_events (time);

CREATE TABLE audit_signing_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    public_keyset BLOB    NOT NULL,
    sealed        BLOB    NOT NULL,
    data_key_id   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_checkpoints (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    hash      BLOB    NOT NULL,
    time      INTEGER NOT NULL,
    key_id    TEXT    NOT NULL REFERENCES audit_signing_keys (id),
    signature BLOB    NOT NULL
) STRICT;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_signing_keys_no_update BEFORE UPDATE ON audit_signing_keys
BEGIN SELECT RAISE(ABORT, 'audit signing keys are append-only'); END;
CREATE TRIGGER audit_signing_keys_no_delete BEFORE DELETE ON audit_signing_keys
BEGIN SELECT RAISE(ABORT, 'audit signing keys are append-only'); END;
