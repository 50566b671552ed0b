package sqlite

// The SQL of the store, one constant per statement, so that every query is
// written once and reviewed in one place. Placeholders are positional (?);
// the Go code that binds them lists the arguments in the same order.
//
// Times are INTEGER unix microseconds in UTC and NULL for the zero time (see
// migrations/0001_init.sql).

const (
	runColumns = `id, namespace, pipeline, pipeline_hash, pipeline_file, logical_date,
	params, triggered_by, state, error, created_at, started_at, ended_at, owner, lease_expires_at`

	taskRunColumns = `run_id, task, seq, state, attempts, next_attempt_at, started_at, ended_at,
	error, exit_code, rows_in, rows_out, rows_quarantined, output`

	attemptColumns = `run_id, task, number, outcome, owner, started_at, ended_at, exit_code,
	error, rows_in, rows_out, rows_quarantined, output, log_path`

	artifactColumns = `id, run_id, task, attempt, kind, path, format, schema, row_count,
	byte_count, sha256, created_at, plain_sha256`
)

// Runs.
const (
	qInsertRun = `INSERT INTO runs (` + runColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', '', ?, NULL, NULL, '', NULL)`

	qInsertTaskRun = `INSERT INTO task_runs (run_id, task, seq, state) VALUES (?, ?, ?, 'pending')`

	qGetRun = `SELECT ` + runColumns + ` FROM runs WHERE id = ?`

	// qListRuns is completed by ListRuns with the fragments of the filters
	// in use, then qListRunsOrder; only these constants ever reach the SQL
	// text, values are bound. Separate statements per filter let SQLite
	// pick the matching index (migrations/0010_run_keyset.sql). The id
	// breaks ties between runs created in the same microsecond, so that
	// (created_at, id) is a total order a page cursor can continue from;
	// the row-value comparison of qListRunsBefore is one index range.
	qListRuns            = `SELECT ` + runColumns + ` FROM runs WHERE 1 = 1`
	qListRunsByNamespace = ` AND namespace = ?`
	qListRunsByPipeline  = ` AND pipeline = ?`
	qListRunsByStates    = ` AND state IN (SELECT value FROM json_each(?))`
	// qListRunsByState is the one-state filter: an equality lets SQLite
	// walk runs_by_state in order instead of sorting every match.
	qListRunsByState = ` AND state = ?`
	qListRunsBefore  = ` AND (created_at, id) < (?, ?)`
	qListRunsOrder   = ` ORDER BY created_at DESC, id DESC LIMIT ?`

	// qSetRunState is the compare-and-set of a run's state. The allowed
	// current states are bound as one JSON array, so the statement text
	// does not depend on how many there are.
	// Arguments: to, to (running?), at, to (final?), at, error, error, id, from (JSON).
	qSetRunState = `UPDATE runs SET
		state = ?,
		started_at = CASE WHEN ? = 'running' THEN COALESCE(started_at, ?) ELSE started_at END,
		ended_at = CASE WHEN ? IN ('success', 'failed', 'cancelled') THEN ? ELSE ended_at END,
		error = CASE WHEN ? = '' THEN error ELSE ? END
	WHERE id = ? AND state IN (SELECT value FROM json_each(?))`

	// qClaimRun takes the run's lease when it is free, already ours,
	// expired, or stolen.
	// Arguments: owner, lease until, id, owner, now, steal.
	qClaimRun = `UPDATE runs SET owner = ?, lease_expires_at = ?
	WHERE id = ? AND (
		owner = '' OR owner = ? OR lease_expires_at IS NULL OR lease_expires_at <= ? OR ?
	)`

	qHeartbeatRun = `UPDATE runs SET lease_expires_at = ? WHERE id = ? AND owner = ?`

	qReleaseRun = `UPDATE runs SET owner = '', lease_expires_at = NULL WHERE id = ? AND owner = ?`

	qRunExists = `SELECT 1 FROM runs WHERE id = ?`
)

// Task runs and attempts.
const (
	qGetTaskRun = `SELECT ` + taskRunColumns + ` FROM task_runs WHERE run_id = ? AND task = ?`

	qListTaskRuns = `SELECT ` + taskRunColumns + ` FROM task_runs WHERE run_id = ? ORDER BY seq`

	// Arguments: to, to (final?), at, error, error, run, task, from (JSON).
	qSetTaskState = `UPDATE task_runs SET
		state = ?,
		ended_at = CASE WHEN ? IN ('success', 'failed', 'skipped', 'cancelled') THEN ? ELSE ended_at END,
		error = CASE WHEN ? = '' THEN error ELSE ? END
	WHERE run_id = ? AND task = ? AND state IN (SELECT value FROM json_each(?))`

	// qStartTaskRun moves a task run to running and counts the attempt; the
	// retry time it waited for is spent.
	// Arguments: at, run, task, from.
	qStartTaskRun = `UPDATE task_runs SET
		state = 'running',
		attempts = attempts + 1,
		started_at = COALESCE(started_at, ?),
		next_attempt_at = NULL
	WHERE run_id = ? AND task = ? AND state = ?
	RETURNING attempts`

	qInsertAttempt = `INSERT INTO attempts (run_id, task, number, outcome, owner, started_at, log_path)
	VALUES (?, ?, ?, 'running', ?, ?, ?)`

	// qFinishTaskRun closes the task run's side of an attempt: only while it
	// is running that very attempt.
	// Arguments: state, error, exit code, rows in, rows out, rows
	// quarantined, output, next attempt at, state (final?), at, run, task, number.
	qFinishTaskRun = `UPDATE task_runs SET
		state = ?,
		error = ?,
		exit_code = ?,
		rows_in = ?,
		rows_out = ?,
		rows_quarantined = ?,
		output = ?,
		next_attempt_at = ?,
		ended_at = CASE WHEN ? IN ('success', 'failed', 'skipped', 'cancelled') THEN ? ELSE NULL END
	WHERE run_id = ? AND task = ? AND state = 'running' AND attempts = ?`

	// Arguments: outcome, at, exit code, error, rows in, rows out, rows
	// quarantined, output, run, task, number.
	qFinishAttempt = `UPDATE attempts SET
		outcome = ?,
		ended_at = ?,
		exit_code = ?,
		error = ?,
		rows_in = ?,
		rows_out = ?,
		rows_quarantined = ?,
		output = ?
	WHERE run_id = ? AND task = ? AND number = ? AND outcome = 'running'`

	qGetAttempt = `SELECT ` + attemptColumns + ` FROM attempts WHERE run_id = ? AND task = ? AND number = ?`

	// qListAttempts orders by the task's position in the pipeline, then by
	// attempt. Arguments: run, task, task (empty: all tasks).
	qListAttempts = `SELECT a.run_id, a.task, a.number, a.outcome, a.owner, a.started_at, a.ended_at,
		a.exit_code, a.error, a.rows_in, a.rows_out, a.rows_quarantined, a.output, a.log_path
	FROM attempts a JOIN task_runs t ON t.run_id = a.run_id AND t.task = a.task
	WHERE a.run_id = ? AND (? = '' OR a.task = ?)
	ORDER BY t.seq, a.number`
)

// Artifacts.
const (
	qInsertArtifact = `INSERT INTO artifacts (` + artifactColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	qGetArtifact = `SELECT ` + artifactColumns + ` FROM artifacts WHERE id = ?`

	qListArtifacts = `SELECT ` + artifactColumns + ` FROM artifacts WHERE run_id = ?
	ORDER BY created_at, rowid`
)

// Migrations.
const (
	qCreateMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`

	qSchemaVersion = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`

	qRecordMigration = `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`

	// Rows with applied_at 0 come from a new database's image (see
	// newImage); migrate sets them to the time the file was first opened.
	qStampMigrations = `UPDATE schema_migrations SET applied_at = ? WHERE applied_at = 0`

	// Savepoints give an operation run inside a caller's transaction the
	// same all-or-nothing effect it has on its own. SQLite resolves a
	// repeated name to the innermost savepoint, so nesting needs no counter.
	qSavepoint         = `SAVEPOINT sluice_op`
	qReleaseSavepoint  = `RELEASE SAVEPOINT sluice_op`
	qRollbackSavepoint = `ROLLBACK TO SAVEPOINT sluice_op`
)

// Data keys and secrets.
const (
	dataKeyColumns = `id, purpose, ref, kek_key_id, wrapped, created_at, rewrapped_at`

	qInsertDataKey = `INSERT INTO data_keys (` + dataKeyColumns + `) VALUES (?, ?, ?, ?, ?, ?, NULL)`

	qGetDataKey = `SELECT ` + dataKeyColumns + ` FROM data_keys WHERE id = ?`

	// Arguments: after id, limit.
	qListDataKeys = `SELECT ` + dataKeyColumns + ` FROM data_keys WHERE id > ? ORDER BY id LIMIT ?`

	// qRewrapDataKey is the compare-and-set on the wrapping KEK key.
	// Arguments: to kek, wrapped, at, id, from kek.
	qRewrapDataKey = `UPDATE data_keys SET kek_key_id = ?, wrapped = ?, rewrapped_at = ?
	WHERE id = ? AND kek_key_id = ?`

	qDataKeyExists = `SELECT 1 FROM data_keys WHERE id = ?`

	qCountDataKeysByKEK = `SELECT kek_key_id, COUNT(*) FROM data_keys GROUP BY kek_key_id`

	secretColumns = `name, version, sealed, data_key_id, set_by, set_at`

	qLatestSecretVersion = `SELECT COALESCE(MAX(version), 0) FROM secrets WHERE name = ?`

	qInsertSecret = `INSERT INTO secrets (` + secretColumns + `) VALUES (?, ?, ?, ?, ?, ?)`

	qGetSecret = `SELECT ` + secretColumns + ` FROM secrets WHERE name = ? ORDER BY version DESC LIMIT 1`

	// qListSecrets returns the latest version of each name, without the
	// sealed value.
	qListSecrets = `SELECT s.name, s.version, x'', s.data_key_id, s.set_by, s.set_at
	FROM secrets s
	WHERE s.version = (SELECT MAX(version) FROM secrets WHERE name = s.name)
	ORDER BY s.name`

	qDeleteSecret = `DELETE FROM secrets WHERE name = ?`
)
