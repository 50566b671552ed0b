-- 0009: the scheduler. Per-pipeline tick watermarks (every tick at or before
-- tick has been handled), pauses of a pipeline or a whole namespace
-- (pipeline = ''), and late runs (a tick not succeeded by its deadline).

CREATE TABLE schedule_ticks (
    namespace  TEXT    NOT NULL,
    pipeline   TEXT    NOT NULL,
    tick       INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, pipeline)
) STRICT;

CREATE TABLE schedule_pauses (
    namespace TEXT    NOT NULL,
    pipeline  TEXT    NOT NULL DEFAULT '',
    paused_by TEXT    NOT NULL,
    paused_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, pipeline)
) STRICT;

CREATE TABLE late_runs (
    namespace   TEXT    NOT NULL,
    pipeline    TEXT    NOT NULL,
    tick        INTEGER NOT NULL,
    run_id      TEXT    NOT NULL DEFAULT '',
    detected_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, pipeline, tick)
) STRICT;

CREATE INDEX late_runs_by_tick ON late_runs (tick);
