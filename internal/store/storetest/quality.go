package storetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

// runningAttempt creates run id with tasks and starts attempt 1 of each.
func runningAttempt(t *testing.T, s store.Store, id string, tasks ...string) {
	t.Helper()
	createRun(t, s, id, tasks...)
	for _, task := range tasks {
		if _, err := s.SetTaskState(t.Context(), store.SetTaskState{RunID: id, Task: task,
			From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: at(1)}); err != nil {
			t.Fatalf("SetTaskState(%s/%s): %v", id, task, err)
		}
		if _, err := s.StartAttempt(t.Context(), store.StartAttempt{RunID: id, Task: task, From: store.TaskQueued, At: at(2)}); err != nil {
			t.Fatalf("StartAttempt(%s/%s): %v", id, task, err)
		}
	}
}

// finishWithChecks finishes attempt 1 of task and records results in one
// transaction, as the engine does; fail makes the transaction fail after
// both writes.
func finishWithChecks(t *testing.T, s store.Store, runID, task string, results []store.CheckResult, fail error) error {
	t.Helper()
	return s.InTx(t.Context(), func(tx store.Store) error {
		if err := tx.PutCheckResults(t.Context(), runID, task, 1, results); err != nil {
			return err
		}
		if _, err := tx.FinishAttempt(t.Context(), store.FinishAttempt{RunID: runID, Task: task, Number: 1,
			Outcome: store.OutcomeSuccess, State: store.TaskSuccess, At: at(3)}); err != nil {
			return err
		}
		return fail
	})
}

func checkResult(name string, failing int64, passed bool) store.CheckResult {
	return store.CheckResult{
		Name: name, Kind: "regex", Column: "email", Severity: "quarantine", Checked: 10, Failing: failing,
		FailingPct: float64(failing) * 10, Mostly: 0.9, Passed: passed, Detail: "",
		Samples:   []store.CheckSample{{Pos: "line 2", Value: "ab***"}, {Pos: "line 7", Value: "***"}},
		CreatedAt: at(3),
	}
}

func testCheckResults(t *testing.T, s store.Store) {
	t.Run("InAttemptTransaction", func(t *testing.T) {
		t.Parallel()
		// Tasks are put out of order: the listing follows the run's task order.
		runningAttempt(t, s, "qc", "extract", "clean")
		clean := []store.CheckResult{checkResult("email.regex", 2, false), {
			Name: "row_count", Kind: "row_count", Severity: "fail", Checked: 10, Mostly: 1, Passed: true,
			Detail: "10 rows, want at least 1", CreatedAt: at(3),
		}}
		extract := []store.CheckResult{checkResult("id.not_null", 0, true)}
		wantErr(t, finishWithChecks(t, s, "qc", "clean", clean, nil), nil)
		wantErr(t, finishWithChecks(t, s, "qc", "extract", extract, nil), nil)

		got, err := s.ListCheckResults(t.Context(), "qc")
		wantErr(t, err, nil)
		var want []store.CheckResult
		for _, r := range append(append([]store.CheckResult(nil), extract...), clean...) {
			task := "clean"
			if r.Name == "id.not_null" {
				task = "extract"
			}
			r.RunID, r.Task, r.Attempt = "qc", task, 1
			want = append(want, r)
		}
		if d := cmp.Diff(want, got, eq()); d != "" {
			t.Errorf("ListCheckResults (-want +got):\n%s", d)
		}
	})
	t.Run("RolledBackWithTheAttempt", func(t *testing.T) {
		t.Parallel()
		runningAttempt(t, s, "qc-rollback", "t")
		boom := errors.New("boom")
		err := finishWithChecks(t, s, "qc-rollback", "t", []store.CheckResult{checkResult("email.regex", 1, true)}, boom)
		wantErr(t, err, boom)
		got, err := s.ListCheckResults(t.Context(), "qc-rollback")
		wantErr(t, err, nil)
		if len(got) != 0 {
			t.Errorf("ListCheckResults after rollback = %d results, want none", len(got))
		}
		tr, err := s.GetTaskRun(t.Context(), "qc-rollback", "t")
		wantErr(t, err, nil)
		if tr.State != store.TaskRunning {
			t.Errorf("task state after rollback = %s, want %s", tr.State, store.TaskRunning)
		}
	})
	t.Run("DuplicateNameConflicts", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "qc-dup", "t")
		r := checkResult("email.regex", 1, true)
		wantErr(t, s.PutCheckResults(t.Context(), "qc-dup", "t", 1, []store.CheckResult{r}), nil)
		wantErr(t, s.PutCheckResults(t.Context(), "qc-dup", "t", 1, []store.CheckResult{checkResult("x", 0, true), r}), store.ErrConflict)
		// All or none: the first result of the failed call is not kept.
		got, err := s.ListCheckResults(t.Context(), "qc-dup")
		wantErr(t, err, nil)
		if len(got) != 1 || got[0].Name != "email.regex" {
			t.Errorf("ListCheckResults = %+v, want only email.regex", got)
		}
		// Another attempt may record the same check.
		wantErr(t, s.PutCheckResults(t.Context(), "qc-dup", "t", 2, []store.CheckResult{r}), nil)
	})
	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "qc-bad", "t")
		for name, call := range map[string]func() error{
			"empty run":  func() error { return s.PutCheckResults(t.Context(), "", "t", 1, nil) },
			"attempt 0":  func() error { return s.PutCheckResults(t.Context(), "qc-bad", "t", 0, nil) },
			"empty name": func() error { return s.PutCheckResults(t.Context(), "qc-bad", "t", 1, []store.CheckResult{{}}) },
		} {
			if err := call(); err == nil {
				t.Errorf("%s: PutCheckResults succeeded, want an error", name)
			}
		}
	})
}
