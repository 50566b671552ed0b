-- Data-quality check results: one row per check per task attempt. Samples
-- hold masked values only (see store.CheckSample), as JSON.
CREATE TABLE check_results (
    run_id      TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task        TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    column_name TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    checked     INTEGER NOT NULL,
    failing     INTEGER NOT NULL,
    failing_pct REAL    NOT NULL,
    mostly      REAL    NOT NULL,
    passed      INTEGER NOT NULL,
    detail      TEXT    NOT NULL,
    samples     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (run_id, task, attempt, name)
) STRICT;
