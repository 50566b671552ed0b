package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/internal/store"
)

// The SQL of the quality store.
const (
	qInsertCheckResult = `INSERT INTO check_results (run_id, task, attempt, seq, name, kind, column_name,
	severity, checked, failing, failing_pct, mostly, passed, detail, samples, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// qListCheckResults orders by the task's position in the run; a
	// result whose task run is gone sorts last rather than vanishing.
	qListCheckResults = `SELECT c.run_id, c.task, c.attempt, c.name, c.kind, c.column_name, c.severity,
	c.checked, c.failing, c.failing_pct, c.mostly, c.passed, c.detail, c.samples, c.created_at
	FROM check_results c LEFT JOIN task_runs t ON t.run_id = c.run_id AND t.task = c.task
	WHERE c.run_id = ? ORDER BY coalesce(t.seq, 1 << 62), c.task, c.attempt, c.seq`
)

// PutCheckResults records the check results of one task attempt, all or
// none. ErrConflict if the attempt already has a result of the same name.
func (o ops) PutCheckResults(ctx context.Context, runID, task string, attempt int, results []store.CheckResult) error {
	switch {
	case runID == "" || task == "":
		return errors.New("recording check results: empty run id or task")
	case attempt < 1:
		return fmt.Errorf("recording check results of %s/%s: attempt %d: must be at least 1", runID, task, attempt)
	}
	err := o.atomic(ctx, func(q querier) error {
		for i, r := range results {
			if r.Name == "" {
				return fmt.Errorf("result %d: empty name", i+1)
			}
			samples := r.Samples
			if samples == nil {
				samples = []store.CheckSample{}
			}
			sj, err := json.Marshal(samples)
			if err != nil {
				return fmt.Errorf("check %q: encoding samples: %w", r.Name, err)
			}
			_, err = q.ExecContext(ctx, qInsertCheckResult, runID, task, attempt, i, r.Name, r.Kind, r.Column,
				r.Severity, r.Checked, r.Failing, r.FailingPct, r.Mostly, r.Passed, r.Detail, string(sj),
				micros(orNow(r.CreatedAt)))
			if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
				return fmt.Errorf("check %q: already recorded: %w", r.Name, store.ErrConflict)
			}
			if err != nil {
				return fmt.Errorf("check %q: inserting: %w", r.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording check results of %s/%s attempt %d: %w", runID, task, attempt, err)
	}
	return nil
}

// ListCheckResults returns a run's check results by task order, attempt,
// then the order they were put.
func (o ops) ListCheckResults(ctx context.Context, runID string) ([]store.CheckResult, error) {
	rows, err := o.q.QueryContext(ctx, qListCheckResults, runID)
	if err != nil {
		return nil, fmt.Errorf("listing check results of %s: %w", runID, err)
	}
	defer rows.Close()
	var out []store.CheckResult
	for rows.Next() {
		var (
			r       store.CheckResult
			passed  bool
			samples string
			created sql.NullInt64
		)
		if err := rows.Scan(&r.RunID, &r.Task, &r.Attempt, &r.Name, &r.Kind, &r.Column, &r.Severity,
			&r.Checked, &r.Failing, &r.FailingPct, &r.Mostly, &passed, &r.Detail, &samples, &created); err != nil {
			return nil, fmt.Errorf("listing check results of %s: %w", runID, err)
		}
		r.Passed = passed
		if err := json.Unmarshal([]byte(samples), &r.Samples); err != nil {
			return nil, fmt.Errorf("listing check results of %s: check %q: decoding samples: %w", runID, r.Name, err)
		}
		if len(r.Samples) == 0 {
			r.Samples = nil
		}
		r.CreatedAt = fromMicros(created)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing check results of %s: %w", runID, err)
	}
	return out, nil
}
