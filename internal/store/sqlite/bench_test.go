package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

func openBench(b *testing.B, sync string) *DB {
	b.Helper()
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkStartFinishAttempt measures the two transactions of one task
// attempt: StartAttempt and FinishAttempt. The task retries forever, so
// every iteration starts from up_for_retry.
func BenchmarkStartFinishAttempt(b *testing.B) {
	for _, sync := range []string{SyncFull, SyncNormal} {
		b.Run(sync, func(b *testing.B) {
			ctx := context.Background()
			db := openBench(b, sync)
			now := time.Now()
			if _, err := db.CreateRun(ctx, store.NewRun{ID: "r", Tasks: []string{"t"}, CreatedAt: now}); err != nil {
				b.Fatal(err)
			}
			if _, err := db.SetTaskState(ctx, store.SetTaskState{RunID: "r", Task: "t", From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: now}); err != nil {
				b.Fatal(err)
			}
			from := store.TaskQueued
			b.ReportAllocs()
			for b.Loop() {
				a, err := db.StartAttempt(ctx, store.StartAttempt{RunID: "r", Task: "t", From: from, Owner: "bench", At: now})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := db.FinishAttempt(ctx, store.FinishAttempt{
					RunID: "r", Task: "t", Number: a.Number, Outcome: store.OutcomeFailed, State: store.TaskUpForRetry,
					NextAttemptAt: now, At: now, Error: "again",
				}); err != nil {
					b.Fatal(err)
				}
				from = store.TaskUpForRetry
			}
		})
	}
}

// BenchmarkPipeline100 runs the store side of a 100-task sequential
// pipeline: create the run, claim it, move it to running, run each task,
// finish the run. "separate" commits each task's queue, start and finish on
// its own (about 304 commits per pipeline); "joined" queues and starts a
// task in one InTx (about 204 commits), as an engine can when it starts a
// task the moment it becomes runnable. Every commit is durable at the
// chosen synchronous level.
func BenchmarkPipeline100(b *testing.B) {
	tasks := make([]string, 100)
	for i := range tasks {
		tasks[i] = fmt.Sprintf("task%03d", i)
	}
	for _, sync := range []string{SyncFull, SyncNormal} {
		for _, joined := range []bool{false, true} {
			name := sync + "/separate"
			if joined {
				name = sync + "/joined"
			}
			b.Run(name, func(b *testing.B) {
				db := openBench(b, sync)
				n := 0
				for b.Loop() {
					n++
					runPipeline(b, db, fmt.Sprintf("run-%d", n), tasks, joined)
				}
			})
		}
	}
}

func runPipeline(b *testing.B, db *DB, id string, tasks []string, joined bool) {
	ctx := context.Background()
	now := time.Now()
	if _, err := db.CreateRun(ctx, store.NewRun{ID: id, Tasks: tasks, CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ClaimRun(ctx, store.ClaimRun{RunID: id, Owner: "bench", LeaseUntil: now.Add(time.Minute), Now: now}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.SetRunState(ctx, store.SetRunState{RunID: id, From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: now}); err != nil {
		b.Fatal(err)
	}
	for _, task := range tasks {
		var a store.Attempt
		start := func(s store.Store) error {
			if _, err := s.SetTaskState(ctx, store.SetTaskState{RunID: id, Task: task, From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: now}); err != nil {
				return err
			}
			var err error
			a, err = s.StartAttempt(ctx, store.StartAttempt{RunID: id, Task: task, From: store.TaskQueued, Owner: "bench", At: now})
			return err
		}
		var err error
		if joined {
			err = db.InTx(ctx, start)
		} else {
			err = start(db)
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.FinishAttempt(ctx, store.FinishAttempt{RunID: id, Task: task, Number: a.Number, Outcome: store.OutcomeSuccess, State: store.TaskSuccess, At: now}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.SetRunState(ctx, store.SetRunState{RunID: id, From: []store.RunState{store.RunRunning}, To: store.RunSuccess, At: now}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGetTaskRun measures one read outside a transaction, on the read
// pool: no commit, so the figure is the CPU a query costs (preparing it
// included, where statements are not kept prepared).
func BenchmarkGetTaskRun(b *testing.B) {
	ctx := context.Background()
	db := openBench(b, SyncNormal)
	if _, err := db.CreateRun(ctx, store.NewRun{ID: "r", Tasks: []string{"t"}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.GetTaskRun(ctx, "r", "t"); err != nil {
			b.Fatal(err)
		}
	}
}
