package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/task"
)

// TestCancelByID cancels a run by its id while a task blocks: the run and
// its unfinished tasks are recorded cancelled, and a run that is not
// executing here cannot be cancelled.
func TestCancelByID(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	block := execFunc(func(ctx context.Context, _ *task.Job) (task.Result, error) {
		close(started)
		<-ctx.Done()
		return task.Result{}, ctx.Err()
	})
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: block}, func(o *Options) { o.Clock = clock.Real{} })
	p := newPipeline(t, tk("wait"), tk("after", "wait"))
	run, err := en.engine.CreateRun(context.Background(), p, RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if en.engine.Cancel(run.ID) {
		t.Fatal("Cancel of a run not executing reported true")
	}
	done := make(chan store.Run, 1)
	go func() {
		r, err := en.engine.Execute(context.Background(), p, run.ID)
		if err != nil {
			t.Errorf("Execute: %v", err)
		}
		done <- r
	}()
	<-started
	if _, err := en.engine.Execute(context.Background(), p, run.ID); !errors.Is(err, ErrRunActive) {
		t.Errorf("a second Execute of the run in this process: %v, want ErrRunActive", err)
	}
	if !en.engine.Executing(run.ID) || !en.engine.Cancel(run.ID) {
		t.Fatal("Cancel of an executing run reported false")
	}
	select {
	case r := <-done:
		if r.State != store.RunCancelled {
			t.Errorf("run is %s, want cancelled", r.State)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Execute did not return after Cancel")
	}
	if got := en.taskStates(t, run.ID); got["wait"] != store.TaskCancelled || got["after"] != store.TaskCancelled {
		t.Errorf("task states %v, want both cancelled", got)
	}
	if en.engine.Executing(run.ID) {
		t.Error("the run is still registered after Execute returned")
	}
}
