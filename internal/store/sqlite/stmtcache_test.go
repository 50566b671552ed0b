package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// runTask takes task through the engine's three commits: queue, start, finish.
func runTask(ctx context.Context, s store.Store, runID, task string) error {
	if _, err := s.SetTaskState(ctx, store.SetTaskState{RunID: runID, Task: task, From: []store.TaskState{store.TaskPending}, To: store.TaskQueued}); err != nil {
		return err
	}
	a, err := s.StartAttempt(ctx, store.StartAttempt{RunID: runID, Task: task, From: store.TaskQueued, Owner: "w"})
	if err != nil {
		return err
	}
	_, err = s.FinishAttempt(ctx, store.FinishAttempt{RunID: runID, Task: task, Number: a.Number, Outcome: store.OutcomeSuccess, State: store.TaskSuccess})
	return err
}

func TestStmtCacheReusesStatements(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{Synchronous: SyncNormal})
	ctx := t.Context()
	if _, err := db.CreateRun(ctx, store.NewRun{ID: "r", Tasks: []string{"a", "b", "c"}}); err != nil {
		t.Fatal(err)
	}
	if err := runTask(ctx, db, "r", "a"); err != nil {
		t.Fatal(err)
	}
	// A text used once is not prepared: a one-shot command would parse it
	// twice for nothing.
	if db.writeStmts.lookup(qInsertRun) != nil {
		t.Error("writer prepared the run insert after its one use")
	}
	if err := runTask(ctx, db, "r", "b"); err != nil {
		t.Fatal(err)
	}

	// The first two transactions ran their texts unprepared and prepared
	// them after the second; from now on the writer prepares nothing.
	for _, q := range []string{qSetTaskState, qGetTaskRun, qStartTaskRun, qInsertAttempt, qGetAttempt, qFinishTaskRun, qFinishAttempt} {
		if db.writeStmts.lookup(q) == nil {
			t.Errorf("writer cache misses %.40q after its second transaction", q)
		}
	}
	writes := db.writeStmts.prepares
	if err := runTask(ctx, db, "r", "c"); err != nil {
		t.Fatal(err)
	}
	if got := db.writeStmts.prepares; got != writes {
		t.Errorf("writer prepared %d statements again for the same transitions", got-writes)
	}

	// Reads outside a transaction prepare on first use, once.
	reads := db.readStmts.prepares
	for range 3 {
		if tr, err := db.GetTaskRun(ctx, "r", "c"); err != nil || tr.State != store.TaskSuccess {
			t.Fatalf("GetTaskRun = %+v, %v", tr, err)
		}
	}
	if got := db.readStmts.prepares - reads; got != 1 {
		t.Errorf("three GetTaskRun prepared %d statements, want 1", got)
	}
}

// TestStmtCacheNestedSavepoints runs nested InTx calls twice, the second
// time on cached statements: a failed inner operation is rolled back to its
// savepoint, the outer transaction commits the rest, and errors keep their
// sentinels.
func TestStmtCacheNestedSavepoints(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{Synchronous: SyncNormal})
	ctx := t.Context()
	for i := range 2 {
		id := fmt.Sprintf("outer-%d", i)
		err := db.InTx(ctx, func(tx store.Store) error {
			if _, err := tx.CreateRun(ctx, store.NewRun{ID: id, Tasks: []string{"t"}}); err != nil {
				return err
			}
			// CreateRun is itself a savepoint; a duplicate fails inside it.
			_, err := tx.CreateRun(ctx, store.NewRun{ID: id, Tasks: []string{"u"}})
			if !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("duplicate CreateRun: %w, want ErrConflict", err)
			}
			innerErr := errors.New("inner fails")
			err = tx.InTx(ctx, func(inner store.Store) error {
				if _, err := inner.CreateRun(ctx, store.NewRun{ID: id + "-inner", Tasks: []string{"t"}}); err != nil {
					return err
				}
				return innerErr
			})
			if !errors.Is(err, innerErr) {
				return fmt.Errorf("inner InTx: %w, want the callback's error", err)
			}
			return runTask(ctx, tx, id, "t")
		})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if tr, err := db.GetTaskRun(ctx, id, "t"); err != nil || tr.State != store.TaskSuccess {
			t.Errorf("round %d: task after commit = %+v, %v", i, tr, err)
		}
		if _, err := db.GetTaskRun(ctx, id, "u"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("round %d: task of the failed duplicate: %v, want ErrNotFound", i, err)
		}
		if _, err := db.GetRun(ctx, id+"-inner"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("round %d: run of the rolled-back savepoint: %v, want ErrNotFound", i, err)
		}
	}
	if db.writeStmts.lookup(qSavepoint) == nil || db.writeStmts.lookup(qRollbackSavepoint) == nil {
		t.Error("savepoint statements not cached")
	}
}

func TestStmtCacheBounded(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{Synchronous: SyncNormal})
	ctx := t.Context()

	t.Run("Pool", func(t *testing.T) {
		c := newStmtCache(db.read, 3)
		defer c.close()
		q := poolQuerier{c}
		for i := range 6 {
			var got int
			if err := q.QueryRowContext(ctx, fmt.Sprintf("SELECT ? + %d", i), 10).Scan(&got); err != nil || got != 10+i {
				t.Fatalf("query %d = %d, %v", i, got, err)
			}
		}
		if c.len() != 3 {
			t.Errorf("cache holds %d statements, want the bound 3", c.len())
		}
	})
	t.Run("Tx", func(t *testing.T) {
		c := newStmtCache(db.write, 2)
		defer c.close()
		for round := range 2 {
			tx, err := db.write.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			q := txQuerier{tx: tx, c: c}
			for i := range 5 {
				var got int
				if err := q.QueryRowContext(ctx, fmt.Sprintf("SELECT ? * %d", i), 3).Scan(&got); err != nil || got != 3*i {
					t.Fatalf("round %d query %d = %d, %v", round, i, got, err)
				}
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			c.preparePending(ctx)
		}
		if c.len() != 2 {
			t.Errorf("cache holds %d statements, want the bound 2", c.len())
		}
	})
}

// TestStmtCacheErrors checks that the cache leaves errors as they were: a
// query that cannot be prepared reports the driver's error from the call,
// and is not cached.
func TestStmtCacheErrors(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{Synchronous: SyncNormal})
	ctx := t.Context()
	bad := "SELECT nope FROM no_such_table"
	var x int
	if err := db.ops.q.QueryRowContext(ctx, bad).Scan(&x); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("read of a missing table: %v, want the driver's error", err)
	}
	err := db.writeTx(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, "UPDATE no_such_table SET x = 1")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("write to a missing table: %v, want the driver's error", err)
	}
	if db.readStmts.lookup(bad) != nil || db.writeStmts.lookup("UPDATE no_such_table SET x = 1") != nil {
		t.Error("a statement that failed to prepare was cached")
	}
}

func TestStmtCacheClose(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), t.TempDir()+"/close.db", Options{Synchronous: SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, id := range []string{"r", "r1"} { // the writer prepares a text at its second use
		if _, err := db.CreateRun(ctx, store.NewRun{ID: id, Tasks: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.GetRun(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if db.writeStmts.len() == 0 || db.readStmts.len() == 0 {
		t.Fatal("nothing cached to close")
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if db.writeStmts.len() != 0 || db.readStmts.len() != 0 {
		t.Error("statements left in the cache after Close")
	}
	if _, err := db.GetRun(ctx, "r"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("GetRun after Close: %v, want a closed-database error", err)
	}
	if _, err := db.CreateRun(ctx, store.NewRun{ID: "r2"}); err == nil {
		t.Error("CreateRun after Close succeeded")
	}
}

// TestStmtCacheConcurrent shares the caches between goroutines that write
// and read at once (run it with -race).
func TestStmtCacheConcurrent(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{Synchronous: SyncNormal})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const workers, tasks = 4, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			id := fmt.Sprintf("run-%d", w)
			names := make([]string, tasks)
			for i := range names {
				names[i] = fmt.Sprintf("t%d", i)
			}
			if _, err := db.CreateRun(ctx, store.NewRun{ID: id, Tasks: names}); err != nil {
				t.Error(err)
				return
			}
			for _, task := range names {
				if err := runTask(ctx, db, id, task); err != nil {
					t.Error(err)
					return
				}
				if _, err := db.ListTaskRuns(ctx, id); err != nil {
					t.Error(err)
				}
				if _, err := db.ListRuns(ctx, store.RunFilter{Limit: 10}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for w := range workers {
		trs, err := db.ListTaskRuns(ctx, fmt.Sprintf("run-%d", w))
		if err != nil || len(trs) != tasks {
			t.Fatalf("ListTaskRuns = %d, %v", len(trs), err)
		}
		for _, tr := range trs {
			if tr.State != store.TaskSuccess || tr.Attempts != 1 {
				t.Errorf("run-%d %s: %s after %d attempts", w, tr.Task, tr.State, tr.Attempts)
			}
		}
	}
}
