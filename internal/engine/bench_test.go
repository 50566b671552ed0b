package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/secrets"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
	"github.com/sluicehq/sluice/internal/task"
)

// BenchmarkEngineNoop measures the engine's own overhead: one run of 1,000
// no-op tasks per iteration on the real SQLite store, with synchronous=FULL
// (the default: durable across power loss) and NORMAL (durable across a
// process crash), independent or in one chain. It reports ns per task and, for the chain,
// the lag from a task finishing to the next one starting (median, p99):
// from the engine's clock reading when the upstream's executor returned to
// the moment the downstream's executor is called, so that it includes
// every commit in between.
func BenchmarkEngineNoop(b *testing.B) {
	const n = 1000
	for _, bc := range []struct{ shape, sync string }{
		{"independent", sqlite.SyncFull}, {"sequential", sqlite.SyncFull},
		{"independent", sqlite.SyncNormal}, {"sequential", sqlite.SyncNormal},
	} {
		shape := bc.shape
		b.Run(shape+"/"+bc.sync, func(b *testing.B) {
			dir := b.TempDir()
			st, err := sqlite.Open(context.Background(), filepath.Join(dir, "sluice.db"), sqlite.Options{Synchronous: bc.sync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			tasks := make([]*pipeline.Task, n)
			for i := range tasks {
				tasks[i] = &pipeline.Task{Name: fmt.Sprintf("t%04d", i), Kind: kindFunc, TriggerRule: pipeline.AllSuccess}
				if shape == "sequential" && i > 0 {
					tasks[i].Needs = []string{tasks[i-1].Name}
				}
			}
			p := &pipeline.Pipeline{Name: "bench", Namespace: "default", Tasks: tasks, Dir: dir, MaxActiveTasks: 16}

			finished := make([]time.Time, n)
			started := make([]time.Time, n) // written by the executors, read after Execute
			noop := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
				if i, err := strconv.Atoi(job.Task.Name[1:]); err == nil {
					started[i] = time.Now()
				}
				return task.Result{}, nil
			})
			observe := func(ev Event) {
				if ev.Kind == TaskFinished {
					if i, err := strconv.Atoi(ev.Task[1:]); err == nil {
						finished[i] = ev.At
					}
				}
			}
			e, err := New(Options{
				Store: st, Logs: newKeyring(b, st, dir), Redact: secrets.NewRedactor(), Executors: map[pipeline.Kind]Executor{kindFunc: noop},
				StateDir: filepath.Join(dir, "state"), Observer: observe,
			})
			if err != nil {
				b.Fatal(err)
			}
			var lags []time.Duration
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				run, err := e.CreateRun(ctx, p, RunRequest{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				got, err := e.Execute(ctx, p, run.ID)
				if err != nil || got.State != store.RunSuccess {
					b.Fatalf("run %s: %v", got.State, err)
				}
				if shape == "sequential" {
					for i := 1; i < n; i++ {
						lags = append(lags, started[i].Sub(finished[i-1]))
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/task")
			if len(lags) > 0 {
				slices.Sort(lags)
				b.ReportMetric(float64(lags[len(lags)/2].Microseconds()), "lag-p50-µs")
				b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds()), "lag-p99-µs")
			}
		})
	}
}
