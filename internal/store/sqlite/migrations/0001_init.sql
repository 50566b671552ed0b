-- 0001: runs, task runs, attempts and artifacts.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL stands for
-- the zero time.Time ("not yet"). Params is a JSON object of strings.
-- Tables are STRICT so a value of the wrong type is an error, not a silent
-- conversion.

CREATE TABLE runs (
    id               TEXT    NOT NULL PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    pipeline         TEXT    NOT NULL,
    pipeline_hash    TEXT    NOT NULL,
    pipeline_file    TEXT    NOT NULL,
    logical_date     TEXT    NOT NULL,
    params           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    triggered_by     TEXT    NOT NULL,
    state            TEXT    NOT NULL
        CHECK (state IN ('queued', 'running', 'success', 'failed', 'cancelled')),
    error            TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    ended_at         INTEGER,
    owner            TEXT    NOT NULL DEFAULT '',
    lease_expires_at INTEGER
) STRICT;

-- ListRuns: newest first, optionally narrowed by pipeline or state.
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_pipeline ON runs (namespace, pipeline, created_at);
CREATE INDEX runs_by_state ON runs (state, created_at);

CREATE TABLE task_runs (
    run_id           TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task             TEXT    NOT NULL,
    seq              INTEGER NOT NULL CHECK (seq >= 0),
    state            TEXT    NOT NULL
        CHECK (state IN ('pending', 'queued', 'running', 'success', 'failed',
                         'up_for_retry', 'skipped', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  INTEGER,
    started_at       INTEGER,
    ended_at         INTEGER,
    error            TEXT    NOT NULL DEFAULT '',
    exit_code        INTEGER,
    rows_in          INTEGER NOT NULL DEFAULT 0,
    rows_out         INTEGER NOT NULL DEFAULT 0,
    rows_quarantined INTEGER NOT NULL DEFAULT 0,
    output           TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, task),
    UNIQUE (run_id, seq)
) STRICT;

CREATE TABLE attempts (
    run_id           TEXT    NOT NULL,
    task             TEXT    NOT NULL,
    number           INTEGER NOT NULL CHECK (number >= 1),
    outcome          TEXT    NOT NULL
        CHECK (outcome IN ('running', 'success', 'failed', 'timed_out',
                           'cancelled', 'interrupted')),
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

CREATE TABLE artifacts (
    id         TEXT    NOT NULL PRIMARY KEY,
    run_id     TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task       TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    format     TEXT    NOT NULL,
    schema     TEXT    NOT NULL,
    row_count  INTEGER NOT NULL,
    byte_count INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- ListArtifacts: a run's artifacts in creation order.
CREATE INDEX artifacts_by_run ON artifacts (run_id, created_at);
