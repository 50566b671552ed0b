package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// micros is the stored form of t: unix microseconds (UTC by definition), or
// NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros; times come back in UTC.
func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// orNow fills in a time the caller left zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

func exitCode(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func fromExitCode(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	c := int(v.Int64)
	return &c
}

func scanRun(s scanner) (store.Run, error) {
	var (
		r                      store.Run
		params, state          string
		created                int64
		started, ended, leaseT sql.NullInt64
	)
	err := s.Scan(&r.ID, &r.Namespace, &r.Pipeline, &r.PipelineHash, &r.PipelineFile, &r.LogicalDate,
		&params, &r.Trigger, &state, &r.Error, &created, &started, &ended, &r.Owner, &leaseT)
	if err != nil {
		return store.Run{}, err
	}
	if err := json.Unmarshal([]byte(params), &r.Params); err != nil {
		return store.Run{}, fmt.Errorf("run %q: decoding params: %w", r.ID, err)
	}
	if len(r.Params) == 0 {
		r.Params = nil
	}
	r.State = store.RunState(state)
	r.CreatedAt = time.UnixMicro(created).UTC()
	r.StartedAt = fromMicros(started)
	r.EndedAt = fromMicros(ended)
	r.LeaseExpiresAt = fromMicros(leaseT)
	return r, nil
}

func scanTaskRun(s scanner) (store.TaskRun, error) {
	var (
		tr                   store.TaskRun
		state                string
		next, started, ended sql.NullInt64
		exit                 sql.NullInt64
	)
	err := s.Scan(&tr.RunID, &tr.Task, &tr.Seq, &state, &tr.Attempts, &next, &started, &ended,
		&tr.Error, &exit, &tr.RowsIn, &tr.RowsOut, &tr.RowsQuarantined, &tr.Output)
	if err != nil {
		return store.TaskRun{}, err
	}
	tr.State = store.TaskState(state)
	tr.NextAttemptAt = fromMicros(next)
	tr.StartedAt = fromMicros(started)
	tr.EndedAt = fromMicros(ended)
	tr.ExitCode = fromExitCode(exit)
	return tr, nil
}

func scanAttempt(s scanner) (store.Attempt, error) {
	var (
		a       store.Attempt
		outcome string
		started int64
		ended   sql.NullInt64
		exit    sql.NullInt64
	)
	err := s.Scan(&a.RunID, &a.Task, &a.Number, &outcome, &a.Owner, &started, &ended, &exit,
		&a.Error, &a.RowsIn, &a.RowsOut, &a.RowsQuarantined, &a.Output, &a.LogPath)
	if err != nil {
		return store.Attempt{}, err
	}
	a.Outcome = store.Outcome(outcome)
	a.StartedAt = time.UnixMicro(started).UTC()
	a.EndedAt = fromMicros(ended)
	a.ExitCode = fromExitCode(exit)
	return a, nil
}

func scanArtifact(s scanner) (store.Artifact, error) {
	var (
		a       store.Artifact
		created int64
	)
	err := s.Scan(&a.ID, &a.RunID, &a.Task, &a.Attempt, &a.Kind, &a.Path, &a.Format, &a.Schema,
		&a.Rows, &a.Bytes, &a.SHA256, &created, &a.PlainSHA256)
	if err != nil {
		return store.Artifact{}, err
	}
	a.Created = time.UnixMicro(created).UTC()
	return a, nil
}

func validRunState(s store.RunState) bool {
	switch s {
	case store.RunQueued, store.RunRunning, store.RunSuccess, store.RunFailed, store.RunCancelled:
		return true
	}
	return false
}

func validTaskState(s store.TaskState) bool {
	switch s {
	case store.TaskPending, store.TaskQueued, store.TaskRunning, store.TaskSuccess, store.TaskFailed,
		store.TaskUpForRetry, store.TaskSkipped, store.TaskCancelled:
		return true
	}
	return false
}

func validOutcome(o store.Outcome) bool {
	switch o {
	case store.OutcomeRunning, store.OutcomeSuccess, store.OutcomeFailed, store.OutcomeTimedOut,
		store.OutcomeCancelled, store.OutcomeInterrupted, store.OutcomeIntegrity:
		return true
	}
	return false
}

func scanDataKey(s scanner) (store.DataKey, error) {
	var (
		k         store.DataKey
		kek       int64
		created   int64
		rewrapped sql.NullInt64
	)
	if err := s.Scan(&k.ID, &k.Purpose, &k.Ref, &kek, &k.Wrapped, &created, &rewrapped); err != nil {
		return store.DataKey{}, err
	}
	k.KEKKeyID = uint32(kek)
	k.CreatedAt = time.UnixMicro(created).UTC()
	k.RewrappedAt = fromMicros(rewrapped)
	return k, nil
}

func scanSecret(s scanner) (store.Secret, error) {
	var (
		sec   store.Secret
		setAt int64
	)
	if err := s.Scan(&sec.Name, &sec.Version, &sec.Sealed, &sec.DataKeyID, &sec.SetBy, &setAt); err != nil {
		return store.Secret{}, err
	}
	if len(sec.Sealed) == 0 {
		sec.Sealed = nil
	}
	sec.SetAt = time.UnixMicro(setAt).UTC()
	return sec, nil
}

// queryAll runs a listing query and scans every row with scan; what names
// the listing in errors ("listing task runs of run \"r1\"").
func queryAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), what, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
