-- 0007: privacy: erasure evidence, artifact retention and deletions.
--
-- erasures keeps the proof that a data subject was erased: a keyed hash of
-- the subject id (never the id), who did it and what was destroyed or
-- rewritten. artifact_expiry is the end of each artifact's retention;
-- artifact_deletions outlives the artifact records it describes.

CREATE TABLE erasures (
    id             TEXT    NOT NULL PRIMARY KEY,
    subject_hash   TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    actor          TEXT    NOT NULL,
    keys_destroyed INTEGER NOT NULL CHECK (keys_destroyed >= 0),
    artifacts      TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(artifacts)),
    row_count      INTEGER NOT NULL CHECK (row_count >= 0)
) STRICT;

CREATE INDEX erasures_by_time ON erasures (at, id);

CREATE TABLE artifact_expiry (
    artifact_id TEXT    NOT NULL PRIMARY KEY REFERENCES artifacts (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL
) STRICT;

-- ListExpiredArtifacts.
CREATE INDEX artifact_expiry_by_time ON artifact_expiry (expires_at);

CREATE TABLE artifact_deletions (
    seq         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    artifact_id TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    task        TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    at          INTEGER NOT NULL
) STRICT;
