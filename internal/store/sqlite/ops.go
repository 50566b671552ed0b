package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/internal/store"
)

// querier is what the operations need from a connection, so each query is
// written once whether it runs on its own or inside a caller's transaction.
// The store hands the operations poolQuerier (reads outside a transaction)
// and txQuerier (everything in one), which run the SQL through the pool's
// statement cache; *sql.DB, *sql.Conn and *sql.Tx satisfy it too.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ops implements the operations of store.Store (all but InTx and Close) for
// both the DB and a transaction-bound store.
type ops struct {
	// q serves reads made outside atomic: the read pool for the DB, the
	// transaction for a transaction-bound store.
	q querier
	// atomic runs fn all-or-nothing: a write transaction of its own for
	// the DB, a savepoint within the transaction for a bound store.
	atomic func(ctx context.Context, fn func(q querier) error) error
}

// txStore is the store.Store that InTx hands to its callback: every
// operation runs on the one transaction.
type txStore struct {
	ops
}

var _ store.Store = (*txStore)(nil)

func newTxStore(q querier) *txStore {
	return &txStore{ops: ops{q: q, atomic: savepoint(q)}}
}

// InTx nests: fn runs in a savepoint of the enclosing transaction, which is
// rolled back to if fn fails. The enclosing transaction decides the commit.
func (t *txStore) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return t.atomic(ctx, func(querier) error { return fn(t) })
}

// Close does nothing: the transaction ends when the InTx callback returns.
func (t *txStore) Close() error { return nil }

// savepoint returns an atomic runner for a transaction: each call is a
// savepoint, released on success and rolled back to on failure, so a
// failed operation leaves no partial writes even if the caller goes on
// with the transaction.
func savepoint(q querier) func(ctx context.Context, fn func(q querier) error) error {
	return func(ctx context.Context, fn func(q querier) error) error {
		if _, err := q.ExecContext(ctx, qSavepoint); err != nil {
			return fmt.Errorf("opening savepoint: %w", err)
		}
		// Undoing must happen even if ctx is what made fn fail.
		undoCtx := context.WithoutCancel(ctx)
		if err := fn(q); err != nil {
			if _, rerr := q.ExecContext(undoCtx, qRollbackSavepoint); rerr != nil {
				return errors.Join(err, fmt.Errorf("rolling back savepoint: %w", rerr))
			}
			if _, rerr := q.ExecContext(undoCtx, qReleaseSavepoint); rerr != nil {
				return errors.Join(err, fmt.Errorf("releasing savepoint: %w", rerr))
			}
			return err
		}
		if _, err := q.ExecContext(ctx, qReleaseSavepoint); err != nil {
			return fmt.Errorf("releasing savepoint: %w", err)
		}
		return nil
	}
}

// CreateRun inserts the run (queued) and its task runs (pending, Seq in the
// order of p.Tasks). A zero CreatedAt means now. ErrConflict if the id
// exists.
func (o ops) CreateRun(ctx context.Context, p store.NewRun) (store.Run, error) {
	if err := validateNewRun(p); err != nil {
		return store.Run{}, fmt.Errorf("creating run %q: %w", p.ID, err)
	}
	params := "{}"
	if len(p.Params) > 0 {
		b, err := json.Marshal(p.Params)
		if err != nil {
			return store.Run{}, fmt.Errorf("creating run %q: encoding params: %w", p.ID, err)
		}
		params = string(b)
	}
	var run store.Run
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertRun, p.ID, p.Namespace, p.Pipeline, p.PipelineHash,
			p.PipelineFile, p.LogicalDate, params, p.Trigger, micros(orNow(p.CreatedAt)))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("id exists: %w", store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("inserting run: %w", err)
		}
		for i, task := range p.Tasks {
			if _, err := q.ExecContext(ctx, qInsertTaskRun, p.ID, task, i); err != nil {
				return fmt.Errorf("inserting task run %q: %w", task, err)
			}
		}
		run, err = getRun(ctx, q, p.ID)
		return err
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("creating run %q: %w", p.ID, err)
	}
	return run, nil
}

func validateNewRun(p store.NewRun) error {
	if p.ID == "" {
		return errors.New("empty id")
	}
	seen := make(map[string]bool, len(p.Tasks))
	for i, t := range p.Tasks {
		if t == "" {
			return fmt.Errorf("task %d: empty name", i)
		}
		if seen[t] {
			return fmt.Errorf("task %q: listed twice", t)
		}
		seen[t] = true
	}
	return nil
}

// GetRun returns a run by id, or ErrNotFound.
func (o ops) GetRun(ctx context.Context, id string) (store.Run, error) {
	r, err := getRun(ctx, o.q, id)
	if err != nil {
		return store.Run{}, fmt.Errorf("getting run %q: %w", id, err)
	}
	return r, nil
}

func getRun(ctx context.Context, q querier, id string) (store.Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, qGetRun, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Run{}, store.ErrNotFound
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("reading run: %w", err)
	}
	return r, nil
}

// ListRuns returns runs newest first (by CreatedAt, then by ID), after
// f.Before when it is set.
func (o ops) ListRuns(ctx context.Context, f store.RunFilter) ([]store.Run, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("listing runs: negative limit %d", f.Limit)
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	query := qListRuns
	var args []any
	if f.Namespace != "" {
		query += qListRunsByNamespace
		args = append(args, f.Namespace)
	}
	if f.Pipeline != "" {
		query += qListRunsByPipeline
		args = append(args, f.Pipeline)
	}
	if len(f.States) == 1 {
		query += qListRunsByState
		args = append(args, string(f.States[0]))
	} else if len(f.States) > 1 {
		states, err := json.Marshal(f.States)
		if err != nil {
			return nil, fmt.Errorf("listing runs: encoding states: %w", err)
		}
		query += qListRunsByStates
		args = append(args, string(states))
	}
	if f.Before != nil {
		query += qListRunsBefore
		args = append(args, f.Before.CreatedAt.UnixMicro(), f.Before.ID)
	}
	query += qListRunsOrder
	args = append(args, limit)

	return queryAll(ctx, o.q, scanRun, "listing runs", query, args...)
}

// SetRunState moves the run from one of p.From to p.To. A zero At means
// now. On ErrConflict the returned Run is the run as it is.
func (o ops) SetRunState(ctx context.Context, p store.SetRunState) (store.Run, error) {
	from, err := runStatesJSON(p.From, p.To)
	if err != nil {
		return store.Run{}, fmt.Errorf("setting state of run %q: %w", p.RunID, err)
	}
	at := micros(orNow(p.At))
	var run store.Run
	err = o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qSetRunState, p.To, p.To, at, p.To, at, p.Error, p.Error, p.RunID, from)
		if err != nil {
			return fmt.Errorf("updating run: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("updating run: %w", err)
		}
		if run, err = getRun(ctx, q, p.RunID); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("run is %s, not one of %v: %w", run.State, p.From, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return run, fmt.Errorf("setting state of run %q to %s: %w", p.RunID, p.To, err)
	}
	return run, nil
}

func runStatesJSON(from []store.RunState, to store.RunState) (string, error) {
	return statesJSON(from, to, validRunState, "run")
}

// statesJSON checks a transition's states (kind names them in errors) and
// encodes the states it may start from as the JSON list the transition's
// query takes.
func statesJSON[S ~string](from []S, to S, valid func(S) bool, kind string) (string, error) {
	if !valid(to) {
		return "", fmt.Errorf("unknown %s state %q", kind, to)
	}
	if len(from) == 0 {
		return "", errors.New("no states to move from")
	}
	for _, s := range from {
		if !valid(s) {
			return "", fmt.Errorf("unknown %s state %q", kind, s)
		}
	}
	b, err := json.Marshal(from)
	if err != nil {
		return "", fmt.Errorf("encoding states: %w", err)
	}
	return string(b), nil
}

// ClaimRun makes p.Owner the run's driver until p.LeaseUntil. A lease
// expires at LeaseUntil itself; a zero Now means now. On ErrConflict the
// returned Run shows the holder.
func (o ops) ClaimRun(ctx context.Context, p store.ClaimRun) (store.Run, error) {
	if p.Owner == "" {
		return store.Run{}, fmt.Errorf("claiming run %q: empty owner", p.RunID)
	}
	if p.LeaseUntil.IsZero() {
		return store.Run{}, fmt.Errorf("claiming run %q: no lease end", p.RunID)
	}
	var run store.Run
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qClaimRun, p.Owner, micros(p.LeaseUntil), p.RunID,
			p.Owner, micros(orNow(p.Now)), p.Steal)
		if err != nil {
			return fmt.Errorf("updating run: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("updating run: %w", err)
		}
		if run, err = getRun(ctx, q, p.RunID); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("held by %q until %s: %w", run.Owner, run.LeaseExpiresAt.Format(time.RFC3339Nano), store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return run, fmt.Errorf("claiming run %q for %q: %w", p.RunID, p.Owner, err)
	}
	return run, nil
}

// HeartbeatRun extends owner's lease to until; ErrConflict if owner no
// longer holds the run, ErrNotFound if it does not exist.
func (o ops) HeartbeatRun(ctx context.Context, runID, owner string, until time.Time) error {
	if owner == "" {
		return fmt.Errorf("renewing lease of run %q: empty owner", runID)
	}
	err := o.atomic(ctx, func(q querier) error {
		return expectOwned(ctx, q, runID, owner, qHeartbeatRun, micros(until), runID, owner)
	})
	if err != nil {
		return fmt.Errorf("renewing lease of run %q for %q: %w", runID, owner, err)
	}
	return nil
}

// ReleaseRun clears the run's owner if it is owner, and does nothing if
// someone else holds it (there is nothing of owner's left to release).
// ErrNotFound if the run does not exist.
func (o ops) ReleaseRun(ctx context.Context, runID, owner string) error {
	err := o.atomic(ctx, func(q querier) error {
		err := expectOwned(ctx, q, runID, owner, qReleaseRun, runID, owner)
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("releasing run %q by %q: %w", runID, owner, err)
	}
	return nil
}

// expectOwned runs an owner-guarded update and tells a run that is not the
// owner's (ErrConflict) from one that does not exist (ErrNotFound).
func expectOwned(ctx context.Context, q querier, runID, owner, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("updating run: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("updating run: %w", err)
	}
	if n > 0 {
		return nil
	}
	var one int
	err = q.QueryRowContext(ctx, qRunExists, runID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("reading run: %w", err)
	}
	return fmt.Errorf("not held by %q: %w", owner, store.ErrConflict)
}

// ListTaskRuns returns a run's task runs in Seq order; none for an unknown
// run.
func (o ops) ListTaskRuns(ctx context.Context, runID string) ([]store.TaskRun, error) {
	return queryAll(ctx, o.q, scanTaskRun, fmt.Sprintf("listing task runs of run %q", runID), qListTaskRuns, runID)
}

// GetTaskRun returns one task run, or ErrNotFound.
func (o ops) GetTaskRun(ctx context.Context, runID, task string) (store.TaskRun, error) {
	tr, err := getTaskRun(ctx, o.q, runID, task)
	if err != nil {
		return store.TaskRun{}, fmt.Errorf("getting task %q of run %q: %w", task, runID, err)
	}
	return tr, nil
}

func getTaskRun(ctx context.Context, q querier, runID, task string) (store.TaskRun, error) {
	tr, err := scanTaskRun(q.QueryRowContext(ctx, qGetTaskRun, runID, task))
	if errors.Is(err, sql.ErrNoRows) {
		return store.TaskRun{}, store.ErrNotFound
	}
	if err != nil {
		return store.TaskRun{}, fmt.Errorf("reading task run: %w", err)
	}
	return tr, nil
}

// SetTaskState moves a task run from one of p.From to p.To outside an
// attempt; moving to running is StartAttempt's job and refused here. A zero
// At means now. ErrConflict (with the task run as it is) if it is in none
// of p.From, ErrNotFound if it does not exist.
func (o ops) SetTaskState(ctx context.Context, p store.SetTaskState) (store.TaskRun, error) {
	from, err := taskStatesJSON(p.From, p.To)
	if err != nil {
		return store.TaskRun{}, fmt.Errorf("setting state of task %q of run %q: %w", p.Task, p.RunID, err)
	}
	at := micros(orNow(p.At))
	var tr store.TaskRun
	err = o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qSetTaskState, p.To, p.To, at, p.Error, p.Error, p.RunID, p.Task, from)
		if err != nil {
			return fmt.Errorf("updating task run: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("updating task run: %w", err)
		}
		if tr, err = getTaskRun(ctx, q, p.RunID, p.Task); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("task run is %s, not one of %v: %w", tr.State, p.From, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return tr, fmt.Errorf("setting state of task %q of run %q to %s: %w", p.Task, p.RunID, p.To, err)
	}
	return tr, nil
}

func taskStatesJSON(from []store.TaskState, to store.TaskState) (string, error) {
	if to == store.TaskRunning {
		return "", errors.New("a task run becomes running only by starting an attempt")
	}
	return statesJSON(from, to, validTaskState, "task")
}

// StartAttempt moves the task run from p.From to running and opens attempt
// number Attempts+1 with outcome running. A zero At means now. ErrConflict
// (another starter won, or the task run moved) if the task run is not in
// p.From, ErrNotFound if it does not exist.
func (o ops) StartAttempt(ctx context.Context, p store.StartAttempt) (store.Attempt, error) {
	if !validTaskState(p.From) || p.From == store.TaskRunning {
		return store.Attempt{}, fmt.Errorf("starting task %q of run %q: cannot start from state %q", p.Task, p.RunID, p.From)
	}
	at := micros(orNow(p.At))
	var a store.Attempt
	err := o.atomic(ctx, func(q querier) error {
		var number int
		err := q.QueryRowContext(ctx, qStartTaskRun, at, p.RunID, p.Task, p.From).Scan(&number)
		if errors.Is(err, sql.ErrNoRows) {
			tr, err := getTaskRun(ctx, q, p.RunID, p.Task)
			if err != nil {
				return err
			}
			return fmt.Errorf("task run is %s, not %s: %w", tr.State, p.From, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("updating task run: %w", err)
		}
		if _, err := q.ExecContext(ctx, qInsertAttempt, p.RunID, p.Task, number, p.Owner, at, p.LogPath); err != nil {
			return fmt.Errorf("inserting attempt %d: %w", number, err)
		}
		a, err = scanAttempt(q.QueryRowContext(ctx, qGetAttempt, p.RunID, p.Task, number))
		if err != nil {
			return fmt.Errorf("reading attempt %d: %w", number, err)
		}
		return nil
	})
	if err != nil {
		return store.Attempt{}, fmt.Errorf("starting task %q of run %q: %w", p.Task, p.RunID, err)
	}
	return a, nil
}

// FinishAttempt closes attempt p.Number and moves the task run to p.State
// (success, failed, up_for_retry or cancelled). NextAttemptAt is kept for
// up_for_retry only; EndedAt is set for final states. A zero At means now.
// ErrConflict (with the task run as it is) if the task run is not running
// or p.Number is not its current attempt; ErrNotFound if it does not exist.
func (o ops) FinishAttempt(ctx context.Context, p store.FinishAttempt) (store.TaskRun, error) {
	if err := validateFinish(p); err != nil {
		return store.TaskRun{}, fmt.Errorf("finishing attempt %d of task %q of run %q: %w", p.Number, p.Task, p.RunID, err)
	}
	at := micros(orNow(p.At))
	next := any(nil)
	if p.State == store.TaskUpForRetry {
		next = micros(p.NextAttemptAt)
	}
	exit := exitCode(p.ExitCode)
	var tr store.TaskRun
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qFinishTaskRun, p.State, p.Error, exit, p.RowsIn, p.RowsOut,
			p.RowsQuarantined, p.Output, next, p.State, at, p.RunID, p.Task, p.Number)
		if err != nil {
			return fmt.Errorf("updating task run: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("updating task run: %w", err)
		}
		if n == 0 {
			if tr, err = getTaskRun(ctx, q, p.RunID, p.Task); err != nil {
				return err
			}
			return fmt.Errorf("task run is %s at attempt %d: %w", tr.State, tr.Attempts, store.ErrConflict)
		}
		res, err = q.ExecContext(ctx, qFinishAttempt, p.Outcome, at, exit, p.Error, p.RowsIn, p.RowsOut,
			p.RowsQuarantined, p.Output, p.RunID, p.Task, p.Number)
		if err != nil {
			return fmt.Errorf("updating attempt: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("updating attempt: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("attempt is not open: %w", store.ErrConflict)
		}
		tr, err = getTaskRun(ctx, q, p.RunID, p.Task)
		return err
	})
	if err != nil {
		return tr, fmt.Errorf("finishing attempt %d of task %q of run %q: %w", p.Number, p.Task, p.RunID, err)
	}
	return tr, nil
}

func validateFinish(p store.FinishAttempt) error {
	switch p.State {
	case store.TaskSuccess, store.TaskFailed, store.TaskUpForRetry, store.TaskCancelled:
	default:
		return fmt.Errorf("cannot finish into task state %q", p.State)
	}
	if !validOutcome(p.Outcome) || p.Outcome == store.OutcomeRunning {
		return fmt.Errorf("cannot finish with outcome %q", p.Outcome)
	}
	if p.Number < 1 {
		return fmt.Errorf("attempt number %d: attempts count from 1", p.Number)
	}
	return nil
}

// ListAttempts returns the attempts of a run (of one task if task != ""),
// by task Seq then attempt number; none for an unknown run or task.
func (o ops) ListAttempts(ctx context.Context, runID, task string) ([]store.Attempt, error) {
	return queryAll(ctx, o.q, scanAttempt, fmt.Sprintf("listing attempts of run %q", runID), qListAttempts, runID, task, task)
}

// PutArtifact records an artifact. A zero Created means now. ErrConflict if
// the id exists, ErrNotFound if its run does not.
func (o ops) PutArtifact(ctx context.Context, a store.Artifact) error {
	if a.ID == "" {
		return errors.New("recording artifact: empty id")
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertArtifact, a.ID, a.RunID, a.Task, a.Attempt, a.Kind, a.Path,
			a.Format, a.Schema, a.Rows, a.Bytes, a.SHA256, micros(orNow(a.Created)), a.PlainSHA256)
		switch {
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY):
			return fmt.Errorf("id exists: %w", store.ErrConflict)
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
			return fmt.Errorf("run %q: %w", a.RunID, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("inserting artifact: %w", err)
		}
		if !a.ExpiresAt.IsZero() {
			if _, err := q.ExecContext(ctx, qSetArtifactExpiry, a.ID, micros(a.ExpiresAt)); err != nil {
				return fmt.Errorf("recording expiry: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording artifact %q: %w", a.ID, err)
	}
	return nil
}

// GetArtifact returns an artifact by id, or ErrNotFound.
func (o ops) GetArtifact(ctx context.Context, id string) (store.Artifact, error) {
	a, err := scanArtifact(o.q.QueryRowContext(ctx, qGetArtifact, id))
	return found(a, err, "getting artifact %q", id)
}

// ListArtifacts returns a run's artifacts in creation order.
func (o ops) ListArtifacts(ctx context.Context, runID string) ([]store.Artifact, error) {
	return queryAll(ctx, o.q, scanArtifact, fmt.Sprintf("listing artifacts of run %q", runID), qListArtifacts, runID)
}

// found finishes a single-row read: it returns v when err is nil, and
// otherwise err wrapped in the message format (args) names, with
// sql.ErrNoRows turned into store.ErrNotFound, so every getter reports a
// missing row and a failed read alike.
func found[T any](v T, err error, format string, args ...any) (T, error) {
	if err == nil {
		return v, nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	var zero T
	return zero, fmt.Errorf(format+": %w", append(args, err)...)
}
