package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/task"
)

// countingStore counts the transactions begun on a store and the state
// changes written on it outside one.
type countingStore struct {
	store.Store
	txs   atomic.Int32
	loose atomic.Int32
}

func (s *countingStore) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	s.txs.Add(1)
	return s.Store.InTx(ctx, fn)
}

func (s *countingStore) ClaimRun(ctx context.Context, p store.ClaimRun) (store.Run, error) {
	s.loose.Add(1)
	return s.Store.ClaimRun(ctx, p)
}

func (s *countingStore) ReleaseRun(ctx context.Context, runID, owner string) error {
	s.loose.Add(1)
	return s.Store.ReleaseRun(ctx, runID, owner)
}

func (s *countingStore) SetRunState(ctx context.Context, p store.SetRunState) (store.Run, error) {
	s.loose.Add(1)
	return s.Store.SetRunState(ctx, p)
}

func (s *countingStore) SetTaskState(ctx context.Context, p store.SetTaskState) (store.TaskRun, error) {
	s.loose.Add(1)
	return s.Store.SetTaskState(ctx, p)
}

func (s *countingStore) StartAttempt(ctx context.Context, p store.StartAttempt) (store.Attempt, error) {
	s.loose.Add(1)
	return s.Store.StartAttempt(ctx, p)
}

func (s *countingStore) FinishAttempt(ctx context.Context, p store.FinishAttempt) (store.TaskRun, error) {
	s.loose.Add(1)
	return s.Store.FinishAttempt(ctx, p)
}

// TestStepsCommitOncePerTask pins down what makes a short task cheap: the
// driver writes only in steps, one transaction each, and a chain of n
// tasks takes n+1 of them (the first starts the run and its first task;
// each later one ends a task and starts the next, the last ends the run).
// Every commit waits for the disk, so a step more per task would show in
// every run as a millisecond lost per task.
func TestStepsCommitOncePerTask(t *testing.T) {
	t.Parallel()
	noop := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) { return task.Result{}, nil })
	const n = 5
	for _, shape := range []string{"chain", "independent"} {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			var cs *countingStore
			en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: noop}, func(o *Options) {
				cs = &countingStore{Store: o.Store}
				o.Store = cs
			})
			var tasks []*pipeline.Task
			for i := range n {
				tt := tk(fmt.Sprintf("t%d", i))
				if shape == "chain" && i > 0 {
					tt.Needs = []string{tasks[i-1].Name}
				}
				tasks = append(tasks, tt)
			}
			p := newPipeline(t, tasks...)
			ctx := context.Background()
			run, err := en.engine.CreateRun(ctx, p, RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			cs.txs.Store(0)
			cs.loose.Store(0)
			got, err := en.engine.Execute(ctx, p, run.ID)
			if err != nil || got.State != store.RunSuccess {
				t.Fatalf("Execute = %s, %v; want success", got.State, err)
			}
			if got.Owner != "" {
				t.Errorf("run owner %q after Execute, want the lease released", got.Owner)
			}
			if l := cs.loose.Load(); l != 0 {
				t.Errorf("%d state changes written outside a step", l)
			}
			txs := cs.txs.Load()
			switch shape {
			case "chain":
				if txs != n+1 {
					t.Errorf("%d transactions for a chain of %d tasks, want %d", txs, n, n+1)
				}
			case "independent":
				// All start in the first step; ends that arrive together
				// share a step.
				if txs < 2 || txs > n+1 {
					t.Errorf("%d transactions for %d independent tasks, want 2 to %d", txs, n, n+1)
				}
			}
		})
	}
}
