-- 0003: the digest of an artifact's plaintext (its Arrow stream before
-- encryption), beside the digest of its bytes on disk, so that a reader can
-- prove it got back exactly the data that was written.
ALTER TABLE artifacts ADD COLUMN plain_sha256 TEXT NOT NULL DEFAULT '';

-- An attempt may end with integrity_failed: a dataset it read failed
-- verification. SQLite cannot alter a CHECK constraint, so the attempts
-- table is rebuilt with the same columns and the wider constraint.
CREATE TABLE attempts_v3 (
    run_id           TEXT    NOT NULL,
    task             TEXT    NOT NULL,
    number           INTEGER NOT NULL CHECK (number >= 1),
    outcome          TEXT    NOT NULL
        CHECK (outcome IN ('running', 'success', 'failed', 'timed_out',
                           'cancelled', 'interrupted', 'integrity_failed')),
    owner            TEXT    NOT NULL DEFAULT '',
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    exit_code        INTEGER,
    error            TEXT    NOT NULL DEFAULT '',
    rows_in          INTEGER NOT NULL DEFAULT 0,
    rows_out         INTEGER NOT NULL DEFAULT 0,
    rows_quarantined INTEGER NOT NULL DEFAULT 0,
    output           TEXT    NOT NULL DEFAULT '',
    log_path         TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, task, number),
    FOREIGN KEY (run_id, task) REFERENCES task_runs (run_id, task) ON DELETE CASCADE
) STRICT;
INSERT INTO attempts_v3 SELECT * FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_v3 RENAME TO attempts;
