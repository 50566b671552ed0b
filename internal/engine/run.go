package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/task"
)

// errAttemptTimeout is the cancellation cause of an attempt that ran past
// its task's timeout.
var errAttemptTimeout = errors.New("attempt timed out")

// Execute drives run runID of p to a final state and returns the run as
// recorded.
//
// It claims the run's lease (ErrRunActive if another live owner holds it,
// or if this engine is executing the run already;
// an owner on this host whose process is gone is taken over), renews the
// lease while it works, and first recovers orphans: task runs left running
// by a process that died get their attempt closed as interrupted and are
// due again at once. An interrupted attempt does not use up a retry: the
// task did not fail, the process hosting it went away (a deploy, a reboot,
// the engine killed), and charging the task for that would turn routine
// restarts into failed pipelines. Tasks must therefore tolerate running
// again (at-least-once execution).
//
// Then it runs the DAG. A pending task is queued when its trigger rule is
// satisfied by the final states of the tasks it needs, and skipped (with a
// reason naming the upstream) as soon as the rule can no longer be:
//
//	all_success  runs when every upstream succeeded; skipped when one did not
//	none_failed  runs when every upstream succeeded or was skipped
//	all_done     runs when every upstream is final, whatever its state
//	one_failed   runs as soon as one upstream failed; skipped when all are final and none failed
//
// A cancelled upstream counts as not successful and not failed.
//
// The run's final state is failed if any task failed (even when a
// one_failed task then handled it: the failure happened and stays
// visible), else cancelled if ctx was cancelled or any task was cancelled,
// else success (every task succeeded or was skipped).
//
// When ctx is cancelled, running attempts are cancelled (executors stop
// their work, giving child processes their grace period), every task not
// yet final is recorded cancelled and so is the run; those writes use a
// context detached from ctx so the cancellation itself is durable. The
// returned error is then nil and the run's state says cancelled.
//
// Execute returns an error, leaving the run for a later Execute to resume,
// when the store fails or the lease is lost (ErrLeaseLost).
//
// The driver writes in steps, each one store transaction holding every
// change that follows from one event: the end of an attempt, the tasks
// that became ready or were skipped because of it, the attempts started in
// the slots it freed and, after the last task, the run's end and the
// release of its lease. The claim, the run's start, the recovery of
// orphans and the first attempts are one step too. A chain of tasks costs
// one durable commit per task instead of three, which is most of what a
// short task costs (see bench/run.sh). Every change is still durable
// before anything acts on it: an attempt's process is started only once
// the step recording the start has committed, and observers hear of a
// change only after its commit.
func (e *Engine) Execute(ctx context.Context, p *pipeline.Pipeline, runID string) (store.Run, error) {
	if !validID.Match(runID) {
		return store.Run{}, fmt.Errorf("executing run: invalid run id %q", runID)
	}
	ctx, untrack, ok := e.running.track(ctx, runID)
	if !ok {
		return store.Run{}, fmt.Errorf("run %s is already executing in this process: %w", runID, ErrRunActive)
	}
	defer untrack()
	d, err := e.newDriver(ctx, p, runID)
	if err != nil {
		return store.Run{}, fmt.Errorf("executing run %s: %w", runID, err)
	}
	run, err := d.drive()
	if err != nil {
		if d.claimed && !d.released {
			e.release(runID)
		}
		return run, fmt.Errorf("executing run %s: %w", runID, err)
	}
	return run, nil
}

// release gives up the lease outside a step, when driving stopped on an
// error; a failure is logged, since the lease then simply expires.
func (e *Engine) release(runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if err := e.store.ReleaseRun(ctx, runID, e.owner); err != nil {
		e.log.Warn("releasing run", slog.String("run", runID), slog.Any("error", err))
	}
}

// tstate is the driver's view of one task run.
type tstate struct {
	t        *pipeline.Task
	idx      int
	state    store.TaskState
	attempts int // attempts started
	failures int // attempts that failed or timed out: the retry budget used
	up       []int
	down     []int
	output   string // artifact id, once successful
	err      string
	retry    clock.Timer
}

// result is an attempt's end as a worker reports it to the loop, which
// records it.
type result struct {
	idx       int
	fin       store.FinishAttempt
	artifacts []store.Artifact
	checks    []store.CheckResult
	ev        Event // TaskFinished or TaskRetrying, sent once recorded
	failed    bool  // counts against the retry budget
	abandoned bool  // record nothing: the lease was lost or the store failed
}

// launch is an attempt whose start a step recorded, to be run once the
// step has committed.
type launch struct {
	ts       *tstate
	number   int
	logRel   string            // the attempt's log, relative to the state directory
	failures int               // the retry budget used before this attempt
	inputs   map[string]string // upstream task → artifact id
}

// pendingRetry is a retry timer to arm when the step commits.
type pendingRetry struct {
	ts   *tstate
	wait time.Duration
}

// driver executes one run. Its fields are owned by the loop goroutine
// except where noted.
type driver struct {
	e      *Engine
	p      *pipeline.Pipeline
	runID  string // d.run.ID, fixed: the heartbeat reads it while the loop replaces d.run
	run    store.Run
	parent context.Context // Execute's ctx: cancelled means the run is cancelled
	// ending is set once a step records the run's end and releases the
	// lease: a renewal refused after that commits is no lost lease.
	ending atomic.Bool
	// rctx is cancelled when the parent is, the lease is lost or the
	// store fails; attempts derive from it.
	rctx      context.Context
	cancel    context.CancelCauseFunc
	tasks     []*tstate
	byName    map[string]*tstate
	ready     []int // queued tasks waiting for a slot, FIFO
	active    int   // attempts running
	remaining int   // tasks not final
	maxActive int
	results   chan result // workers → loop; buffered to maxActive so workers never block
	retries   chan int    // retry timers → loop
	logDir    string
	stopping  bool // cancelled: queue nothing more

	// The step in progress: st is its transaction; events, launches and
	// retry timers wait for its commit.
	st       store.Store
	events   []Event
	launches []launch
	timers   []pendingRetry

	claimed   bool // the lease is ours (committed)
	releasing bool // the step in progress records the run's end and releases the lease
	released  bool // the run's end and the lease's release are committed
}

// errRunDone ends the first step without writing: the run is final already.
var errRunDone = errors.New("run is final")

func (e *Engine) newDriver(ctx context.Context, p *pipeline.Pipeline, runID string) (*driver, error) {
	d := &driver{e: e, p: p, runID: runID, parent: ctx, byName: make(map[string]*tstate, len(p.Tasks))}
	for i, t := range p.Tasks {
		if err := checkTaskName(t.Name); err != nil {
			return nil, err
		}
		ts := &tstate{t: t, idx: i, state: store.TaskPending}
		d.tasks = append(d.tasks, ts)
		d.byName[t.Name] = ts
	}
	for _, ts := range d.tasks {
		for _, n := range ts.t.Needs {
			up, ok := d.byName[n]
			if !ok {
				return nil, fmt.Errorf("task %q needs unknown task %q", ts.t.Name, n)
			}
			ts.up = append(ts.up, up.idx)
			up.down = append(up.down, ts.idx)
		}
	}
	d.maxActive = p.MaxActiveTasks
	if d.maxActive <= 0 {
		d.maxActive = e.maxActive
	}
	d.results = make(chan result, d.maxActive)
	d.retries = make(chan int)
	d.logDir = filepath.Join("logs", runID)
	return d, nil
}

// adopt checks that run is a run of the driver's pipeline.
func (d *driver) adopt(run store.Run) error {
	p := d.p
	if run.Pipeline != p.Name || run.Namespace != p.Namespace {
		return fmt.Errorf("run is of pipeline %s/%s, not %s/%s", run.Namespace, run.Pipeline, p.Namespace, p.Name)
	}
	if run.PipelineHash != "" && p.Hash != "" && run.PipelineHash != p.Hash {
		return fmt.Errorf("run was created from version %s of pipeline %s, not %s", run.PipelineHash, p.Name, p.Hash)
	}
	d.run = run
	return nil
}

// step runs fn in one store transaction, through which every write of fn
// goes (d.st). Once it commits, the events it produced are sent, the
// retry timers it set are armed and the attempts it started are launched.
// If it fails, none of that happens and the caller stops driving: the
// store, not the driver's memory, is then the truth a later Execute
// resumes from.
func (d *driver) step(fn func(ctx context.Context) error) error {
	ctx, done := d.storeCtx()
	defer done()
	err := d.e.store.InTx(ctx, func(tx store.Store) error {
		d.st = tx
		defer func() { d.st = nil }()
		return fn(ctx)
	})
	events, launches, timers := d.events, d.launches, d.timers
	d.events, d.launches, d.timers = nil, nil, nil
	releasing := d.releasing
	d.releasing = false
	if err != nil {
		return err
	}
	d.released = d.released || releasing
	for _, ev := range events {
		d.e.emit(ev)
	}
	for _, r := range timers {
		d.arm(r.ts, r.wait)
	}
	for _, l := range launches {
		d.active++
		go d.attempt(l)
	}
	return nil
}

// event queues ev to be sent when the step commits.
func (d *driver) event(ev Event) { d.events = append(d.events, ev) }

// storeCtx is for the driver's own writes: they must complete even while
// the run is being cancelled, or the store would not show the cancellation.
func (d *driver) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(d.parent), recordTimeout)
}

func (d *driver) drive() (store.Run, error) {
	e := d.e
	d.rctx, d.cancel = context.WithCancelCause(d.parent)
	defer d.cancel(nil)

	if err := os.MkdirAll(filepath.Join(e.stateDir, d.logDir), logDirMode); err != nil {
		return d.run, fmt.Errorf("creating log directory: %w", err)
	}
	err := d.step(func(ctx context.Context) error {
		run, err := e.claim(ctx, d.st, d.runID)
		if err != nil {
			return err
		}
		if err := d.adopt(run); err != nil {
			return err
		}
		if run.State.Done() {
			return errRunDone
		}
		if run.State == store.RunQueued {
			if d.run, err = d.st.SetRunState(ctx, store.SetRunState{
				RunID: run.ID, From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: e.clock.Now(),
			}); err != nil {
				return fmt.Errorf("starting run: %w", err)
			}
		}
		d.event(Event{Kind: RunStarted, RunID: d.run.ID, State: string(d.run.State), At: e.clock.Now()})
		if err := d.load(ctx); err != nil {
			return err
		}
		if err := d.start(ctx); err != nil {
			return err
		}
		return d.advance(ctx)
	})
	if errors.Is(err, errRunDone) {
		// The claim rolled back with the step: the run as stored.
		ctx, done := d.storeCtx()
		defer done()
		return e.store.GetRun(ctx, d.runID)
	}
	if err != nil {
		return d.run, err
	}
	d.claimed = true
	stopBeat := d.startHeartbeat()
	defer stopBeat()
	if err := d.loop(); err != nil {
		d.cancel(err)
		d.drain()
		return d.run, err
	}
	return d.run, nil
}

// load reads the task runs, recovers orphans and restores retry budgets.
func (d *driver) load(ctx context.Context) error {
	e := d.e
	trs, err := d.st.ListTaskRuns(ctx, d.run.ID)
	if err != nil {
		return fmt.Errorf("loading task runs: %w", err)
	}
	if len(trs) != len(d.tasks) {
		return fmt.Errorf("run has %d task runs, pipeline has %d tasks", len(trs), len(d.tasks))
	}
	atts, err := d.st.ListAttempts(ctx, d.run.ID, "")
	if err != nil {
		return fmt.Errorf("loading attempts: %w", err)
	}
	for _, a := range atts {
		if ts := d.byName[a.Task]; ts != nil && (a.Outcome == store.OutcomeFailed || a.Outcome == store.OutcomeTimedOut) {
			ts.failures++
		}
	}
	now := e.clock.Now()
	for _, tr := range trs {
		ts, ok := d.byName[tr.Task]
		if !ok {
			return fmt.Errorf("run has task %q, which the pipeline does not", tr.Task)
		}
		ts.state, ts.attempts, ts.output, ts.err = tr.State, tr.Attempts, tr.Output, tr.Error
		if tr.State != store.TaskRunning {
			continue
		}
		// An orphan: the attempt's process is gone with its owner.
		tr2, err := d.st.FinishAttempt(ctx, store.FinishAttempt{
			RunID: d.run.ID, Task: tr.Task, Number: tr.Attempts,
			Outcome: store.OutcomeInterrupted, State: store.TaskUpForRetry, NextAttemptAt: now, At: now,
			Error: "interrupted: the process running the attempt ended",
		})
		if err != nil {
			return fmt.Errorf("recovering task %q: %w", tr.Task, err)
		}
		ts.state = tr2.State
		e.log.Info("recovered interrupted task", slog.String("run", d.run.ID), slog.String("task", tr.Task), slog.Int("attempt", tr.Attempts))
		d.event(Event{Kind: TaskRetrying, RunID: d.run.ID, Task: tr.Task, Attempt: tr.Attempts,
			State: string(tr2.State), Err: tr2.Error, At: now, NextAttemptAt: now})
	}
	return nil
}

// start puts every task where the loop expects it: queued tasks ready,
// retries scheduled, pending tasks evaluated.
func (d *driver) start(ctx context.Context) error {
	now := d.e.clock.Now()
	for _, ts := range d.tasks {
		if !ts.state.Done() {
			d.remaining++
		}
		switch ts.state {
		case store.TaskQueued:
			d.ready = append(d.ready, ts.idx)
		case store.TaskUpForRetry:
			tr, err := d.st.GetTaskRun(ctx, d.run.ID, ts.t.Name)
			if err != nil {
				return fmt.Errorf("loading task %q: %w", ts.t.Name, err)
			}
			if err := d.scheduleRetry(ctx, ts, tr.NextAttemptAt.Sub(now)); err != nil {
				return err
			}
		}
	}
	for _, ts := range d.tasks {
		if ts.state == store.TaskPending {
			if err := d.evaluate(ctx, ts); err != nil {
				return err
			}
		}
	}
	return nil
}

// loop runs until every task is final or the run is cancelled. Results
// that arrive together are recorded in one step.
func (d *driver) loop() error {
	for d.remaining > 0 {
		var err error
		select {
		case r := <-d.results:
			err = d.step(func(ctx context.Context) error {
				if err := d.handle(ctx, r); err != nil {
					return err
				}
				for {
					select {
					case r := <-d.results:
						if err := d.handle(ctx, r); err != nil {
							return err
						}
						continue
					default:
					}
					return d.advance(ctx)
				}
			})
		case i := <-d.retries:
			err = d.step(func(ctx context.Context) error {
				if err := d.requeue(ctx, d.tasks[i]); err != nil {
					return err
				}
				return d.advance(ctx)
			})
		case <-d.rctx.Done():
			if d.parent.Err() == nil {
				return context.Cause(d.rctx) // lease lost
			}
			return d.cancelRun()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// advance ends a step: it starts queued tasks in the free slots, and once
// every task is final it records the run's end.
func (d *driver) advance(ctx context.Context) error {
	if d.remaining == 0 {
		return d.finish(ctx)
	}
	return d.dispatch(ctx)
}

// cancelRun records the cancellation: attempts end (workers report them
// cancelled), then every task not final is cancelled and so is the run.
func (d *driver) cancelRun() error {
	d.stopping = true
	if err := d.drain(); err != nil {
		return err
	}
	return d.step(func(ctx context.Context) error {
		now := d.e.clock.Now()
		for _, ts := range d.tasks {
			if ts.state.Done() {
				continue
			}
			if ts.retry != nil {
				ts.retry.Stop()
			}
			tr, err := d.st.SetTaskState(ctx, store.SetTaskState{
				RunID: d.run.ID, Task: ts.t.Name, At: now, To: store.TaskCancelled, Error: "run cancelled",
				From: []store.TaskState{store.TaskPending, store.TaskQueued, store.TaskUpForRetry},
			})
			if err != nil {
				return fmt.Errorf("cancelling task %q: %w", ts.t.Name, err)
			}
			ts.state = tr.State
			d.remaining--
			d.event(Event{Kind: TaskFinished, RunID: d.run.ID, Task: ts.t.Name, State: string(tr.State), Err: tr.Error, At: now})
		}
		return d.finish(ctx)
	})
}

// drain waits for every running attempt and records its end, each as
// it comes.
func (d *driver) drain() error {
	d.stopping = true
	var first error
	for d.active > 0 {
		r := <-d.results
		if r.abandoned { // nothing to record: no transaction for it
			d.active--
			continue
		}
		if err := d.step(func(ctx context.Context) error { return d.handle(ctx, r) }); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// dispatch starts queued tasks while slots are free: their attempts are
// recorded in the step and launched when it commits.
func (d *driver) dispatch(ctx context.Context) error {
	for d.active+len(d.launches) < d.maxActive && len(d.ready) > 0 && !d.stopping {
		ts := d.tasks[d.ready[0]]
		number := ts.attempts + 1
		logRel := filepath.Join(d.logDir, fmt.Sprintf("%s.%d.log", ts.t.Name, number))
		now := d.e.clock.Now()
		a, err := d.st.StartAttempt(ctx, store.StartAttempt{
			RunID: d.run.ID, Task: ts.t.Name, From: store.TaskQueued, Owner: d.e.owner, At: now, LogPath: logRel,
		})
		if err != nil {
			return fmt.Errorf("starting task %q: %w", ts.t.Name, err)
		}
		if a.Number != number {
			return fmt.Errorf("starting task %q: store opened attempt %d, expected %d: %w", ts.t.Name, a.Number, number, store.ErrConflict)
		}
		d.ready = d.ready[1:]
		ts.attempts, ts.state = number, store.TaskRunning
		inputs := make(map[string]string, len(ts.up))
		for _, u := range ts.up {
			if up := d.tasks[u]; up.output != "" {
				inputs[up.t.Name] = up.output
			}
		}
		d.launches = append(d.launches, launch{ts: ts, number: number, logRel: logRel, failures: ts.failures, inputs: inputs})
		d.event(Event{Kind: TaskStarted, RunID: d.run.ID, Task: ts.t.Name, Attempt: number, State: string(store.TaskRunning), At: now})
	}
	return nil
}

// handle records a worker's result, then what follows from it.
func (d *driver) handle(ctx context.Context, r result) error {
	d.active--
	ts := d.tasks[r.idx]
	if r.abandoned {
		return nil
	}
	for _, a := range r.artifacts {
		if err := d.st.PutArtifact(ctx, a); err != nil {
			return fmt.Errorf("recording the end of task %q attempt %d: %w", ts.t.Name, r.fin.Number, err)
		}
	}
	if len(r.checks) > 0 {
		if err := d.st.PutCheckResults(ctx, d.run.ID, ts.t.Name, r.fin.Number, r.checks); err != nil {
			return fmt.Errorf("recording the end of task %q attempt %d: %w", ts.t.Name, r.fin.Number, err)
		}
	}
	tr, err := d.st.FinishAttempt(ctx, r.fin)
	if err != nil {
		return fmt.Errorf("recording the end of task %q attempt %d: %w", ts.t.Name, r.fin.Number, err)
	}
	// The retry is scheduled from the time as stored (the store may keep
	// less precision), so that the engine and the store agree on it.
	ev := r.ev
	if ev.Kind == TaskRetrying {
		ev.NextAttemptAt = tr.NextAttemptAt
	}
	d.event(ev)
	ts.state, ts.err = r.fin.State, r.fin.Error
	if r.failed {
		ts.failures++
	}
	switch {
	case ts.state.Done():
		ts.output = r.fin.Output
		d.remaining--
		if !d.stopping {
			return d.propagate(ctx, ts)
		}
	case ts.state == store.TaskUpForRetry && !d.stopping:
		return d.scheduleRetry(ctx, ts, tr.NextAttemptAt.Sub(d.e.clock.Now()))
	}
	return nil
}

// scheduleRetry queues ts again after wait, on the engine's clock. The
// timer is armed when the step commits, so that it never fires for a
// retry the store does not show yet.
func (d *driver) scheduleRetry(ctx context.Context, ts *tstate, wait time.Duration) error {
	if wait <= 0 {
		return d.requeue(ctx, ts)
	}
	d.timers = append(d.timers, pendingRetry{ts: ts, wait: wait})
	return nil
}

// arm starts the retry timer of a task up for retry.
func (d *driver) arm(ts *tstate, wait time.Duration) {
	rctx, i := d.rctx, ts.idx
	ts.retry = d.e.clock.AfterFunc(wait, func() {
		select {
		case d.retries <- i:
		case <-rctx.Done():
		}
	})
}

// requeue moves an up_for_retry task back to queued.
func (d *driver) requeue(ctx context.Context, ts *tstate) error {
	ts.retry = nil
	return d.setQueued(ctx, ts, store.TaskUpForRetry)
}

func (d *driver) setQueued(ctx context.Context, ts *tstate, from store.TaskState) error {
	now := d.e.clock.Now()
	tr, err := d.st.SetTaskState(ctx, store.SetTaskState{
		RunID: d.run.ID, Task: ts.t.Name, From: []store.TaskState{from}, To: store.TaskQueued, At: now,
	})
	if err != nil {
		return fmt.Errorf("queueing task %q: %w", ts.t.Name, err)
	}
	ts.state = tr.State
	d.ready = append(d.ready, ts.idx)
	d.event(Event{Kind: TaskQueued, RunID: d.run.ID, Task: ts.t.Name, State: string(tr.State), At: now})
	return nil
}

// propagate re-evaluates the tasks downstream of a task that became
// final, and theirs in turn when they are skipped.
func (d *driver) propagate(ctx context.Context, ts *tstate) error {
	for _, i := range ts.down {
		if down := d.tasks[i]; down.state == store.TaskPending {
			if err := d.evaluate(ctx, down); err != nil {
				return err
			}
		}
	}
	return nil
}

// evaluate applies a pending task's trigger rule to its upstreams' states.
func (d *driver) evaluate(ctx context.Context, ts *tstate) error {
	run, skip, reason := d.decide(ts)
	switch {
	case run:
		return d.setQueued(ctx, ts, store.TaskPending)
	case skip:
		return d.skip(ctx, ts, reason)
	}
	return nil
}

// decide returns whether ts can run now, must be skipped (and why), or
// must wait.
func (d *driver) decide(ts *tstate) (run, skip bool, reason string) {
	var final, success, failed int
	var firstBad, firstFailed *tstate
	for _, u := range ts.up {
		up := d.tasks[u]
		if !up.state.Done() {
			continue
		}
		final++
		switch up.state {
		case store.TaskSuccess:
			success++
		case store.TaskFailed:
			failed++
			if firstFailed == nil {
				firstFailed = up
			}
		}
		if up.state != store.TaskSuccess && firstBad == nil {
			firstBad = up
		}
	}
	n := len(ts.up)
	switch ts.t.TriggerRule {
	case pipeline.AllDone:
		return final == n, false, ""
	case pipeline.OneFailed:
		if failed > 0 {
			return true, false, ""
		}
		if final == n {
			return false, true, fmt.Sprintf("trigger rule one_failed: no upstream failed (needs %s)", strings.Join(ts.t.Needs, ", "))
		}
		return false, false, ""
	case pipeline.NoneFailed:
		for _, u := range ts.up {
			if up := d.tasks[u]; up.state == store.TaskFailed || up.state == store.TaskCancelled {
				return false, true, fmt.Sprintf("trigger rule none_failed: upstream %q %s", up.t.Name, up.state)
			}
		}
		return final == n, false, ""
	default: // all_success
		if firstBad != nil {
			return false, true, fmt.Sprintf("trigger rule all_success: upstream %q %s", firstBad.t.Name, firstBad.state)
		}
		return success == n, false, ""
	}
}

func (d *driver) skip(ctx context.Context, ts *tstate, reason string) error {
	now := d.e.clock.Now()
	tr, err := d.st.SetTaskState(ctx, store.SetTaskState{
		RunID: d.run.ID, Task: ts.t.Name, From: []store.TaskState{store.TaskPending}, To: store.TaskSkipped,
		At: now, Error: reason,
	})
	if err != nil {
		return fmt.Errorf("skipping task %q: %w", ts.t.Name, err)
	}
	ts.state, ts.err = tr.State, reason
	d.remaining--
	d.event(Event{Kind: TaskSkipped, RunID: d.run.ID, Task: ts.t.Name, State: string(tr.State), Err: reason, At: now})
	return d.propagate(ctx, ts)
}

// finish records the run's final state and gives up its lease, in the
// step that made the last task final.
func (d *driver) finish(ctx context.Context) error {
	state := store.RunSuccess
	var failed []string
	var firstErr string
	cancelled := d.stopping // the loop saw the cancellation
	for _, ts := range d.tasks {
		switch ts.state {
		case store.TaskFailed:
			failed = append(failed, ts.t.Name)
			if firstErr == "" {
				firstErr = ts.err
			}
		case store.TaskCancelled:
			cancelled = true
		}
	}
	var msg string
	switch {
	case len(failed) == 1:
		state, msg = store.RunFailed, fmt.Sprintf("task %s failed: %s", failed[0], firstErr)
	case len(failed) > 1:
		state, msg = store.RunFailed, fmt.Sprintf("tasks %s failed; %s: %s", strings.Join(failed, ", "), failed[0], firstErr)
	case cancelled:
		state, msg = store.RunCancelled, "run cancelled"
	}
	now := d.e.clock.Now()
	run, err := d.st.SetRunState(ctx, store.SetRunState{
		RunID: d.run.ID, From: []store.RunState{store.RunRunning}, To: state, At: now, Error: msg,
	})
	if err != nil {
		return fmt.Errorf("finishing run: %w", err)
	}
	d.ending.Store(true)
	if err := d.st.ReleaseRun(ctx, run.ID, d.e.owner); err != nil {
		return err
	}
	run.Owner, run.LeaseExpiresAt = "", time.Time{}
	d.run, d.releasing = run, true
	d.event(Event{Kind: RunFinished, RunID: run.ID, State: string(run.State), Err: msg, At: now, Duration: now.Sub(run.StartedAt)})
	return nil
}

// startHeartbeat renews the lease until the returned stop is called. A
// renewal refused because another owner holds the run cancels the run's
// context with ErrLeaseLost; other failures are retried at the next beat,
// the lease's slack over the interval absorbing them.
func (d *driver) startHeartbeat() (stop func()) {
	e := d.e
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			t := e.clock.NewTimer(e.heartbeat)
			select {
			case <-quit:
				t.Stop()
				return
			case <-t.C():
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(d.parent), e.heartbeat)
			err := e.store.HeartbeatRun(ctx, d.runID, e.owner, e.clock.Now().Add(e.lease))
			cancel()
			if (errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound)) && d.ending.Load() {
				return // renewed after the final step released the lease
			}
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				e.log.Error("lost the lease on a run", slog.String("run", d.runID), slog.Any("error", err))
				d.cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
				return
			}
			if err != nil {
				e.log.Warn("renewing lease", slog.String("run", d.runID), slog.Any("error", err))
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// attempt runs one attempt in its own goroutine and reports to the loop.
func (d *driver) attempt(l launch) {
	d.results <- d.runAttempt(l)
}

// runAttempt executes an attempt whose start is recorded and returns its
// end, for the loop to record.
func (d *driver) runAttempt(l launch) result {
	e := d.e
	ts, number := l.ts, l.number
	t := ts.t
	startAt := e.clock.Now()
	res, execErr := d.execute(ts, number, l.logRel, l.inputs)
	endAt := e.clock.Now()

	r := result{idx: ts.idx}
	// Nothing is recorded when the run is no longer ours or the store
	// failed: the attempt stays running, for the next owner to recover.
	if cause := context.Cause(d.rctx); cause != nil && d.parent.Err() == nil {
		r.abandoned = true
		return r
	}

	fin := store.FinishAttempt{
		RunID: d.run.ID, Task: t.Name, Number: number, At: endAt,
		ExitCode: res.ExitCode, RowsIn: res.RowsIn, RowsOut: res.RowsOut, RowsQuarantined: res.RowsQuarantined,
	}
	ev := Event{Kind: TaskFinished, RunID: d.run.ID, Task: t.Name, Attempt: number, At: endAt, Duration: endAt.Sub(startAt),
		RowsIn: res.RowsIn, RowsOut: res.RowsOut, RowsQuarantined: res.RowsQuarantined}
	switch {
	case d.parent.Err() != nil:
		// Told to stop, the task did not finish its work, even when it
		// exited cleanly on SIGTERM.
		fin.Outcome, fin.State, fin.Error = store.OutcomeCancelled, store.TaskCancelled, "run cancelled"
		if execErr != nil {
			fin.Error += ": " + e.redact.String(execErr.Error())
		}
	case execErr == nil:
		fin.Outcome, fin.State, fin.Output = store.OutcomeSuccess, store.TaskSuccess, res.Output
	default:
		fin.Outcome, fin.Error = store.OutcomeFailed, e.redact.String(execErr.Error())
		retryable := !task.IsPermanent(execErr)
		switch {
		case errors.Is(execErr, errAttemptTimeout):
			fin.Outcome, retryable = store.OutcomeTimedOut, true
		case errors.Is(execErr, task.ErrIntegrity):
			fin.Outcome, retryable = store.OutcomeIntegrity, false
		}
		r.failed = true
		fin.State = store.TaskFailed
		if retryable && l.failures+1 <= t.Policy.Retries {
			fin.State = store.TaskUpForRetry
			fin.NextAttemptAt = endAt.Add(e.backoff(t.Policy, l.failures+1))
			ev.Kind = TaskRetrying
		}
	}
	ev.State, ev.Err = string(fin.State), fin.Error
	r.fin, r.ev, r.artifacts, r.checks = fin, ev, res.Artifacts, res.Checks
	return r
}

// execute runs the executor with the attempt's log, inputs and timeout.
// An executor that panics fails the attempt instead of the engine.
func (d *driver) execute(ts *tstate, number int, logRel string, inputIDs map[string]string) (res task.Result, err error) {
	e := d.e
	t := ts.t
	f := &taskLog{ctx: context.WithoutCancel(d.parent), path: filepath.Join(e.stateDir, logRel), rel: logRel, seal: e.logs}
	// Everything the task prints passes the redactor before it is
	// encrypted and written: a secret the task resolved never reaches
	// the log, however the task prints it.
	log := e.redact.Writer(f)
	defer func() {
		if err != nil {
			fmt.Fprintf(log, "sluice: attempt %d failed: %s\n", number, err)
		}
		if cerr := errors.Join(log.Close(), f.Close()); cerr != nil && err == nil {
			err = fmt.Errorf("closing task log: %w", cerr)
		}
	}()
	exec, ok := e.executors[t.Kind]
	if !ok {
		return res, task.Permanent(fmt.Errorf("task %q: no executor for kind %q", t.Name, t.Kind))
	}
	ictx, idone := d.storeCtx()
	inputs := make(map[string]store.Artifact, len(inputIDs))
	for name, id := range inputIDs {
		a, err := e.store.GetArtifact(ictx, id)
		if err != nil {
			idone()
			return res, task.Permanent(fmt.Errorf("task %q: input from %q: %w", t.Name, name, err))
		}
		inputs[name] = a
	}
	idone()

	started := e.clock.Now()
	actx, cancel := context.WithCancel(d.rctx)
	if t.Policy.Timeout > 0 {
		actx, cancel = context.WithTimeoutCause(d.rctx, t.Policy.Timeout, errAttemptTimeout)
	}
	defer cancel()
	job := &task.Job{
		Run: d.run, Pipeline: d.p, Task: t, Attempt: number,
		Vars: pipeline.Vars{
			LogicalDate: d.run.LogicalDate, RunID: d.run.ID, Pipeline: d.run.Pipeline,
			Namespace: d.run.Namespace, Task: t.Name, Params: maps.Clone(d.run.Params),
			Secret: func(name string) (string, error) {
				if e.secrets == nil {
					return "", fmt.Errorf("secret %q: no secret store", name)
				}
				v, err := e.secrets(actx, name)
				return string(v), err
			},
		},
		Log: log, Inputs: inputs, StateDir: e.stateDir,
		Progress: func(in, out int64) {
			now := e.clock.Now()
			e.emit(Event{Kind: TaskProgress, RunID: d.run.ID, Task: t.Name, Attempt: number,
				State: string(store.TaskRunning), RowsIn: in, RowsOut: out, At: now, Duration: now.Sub(started)})
		},
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("task %q: executor panicked: %v", t.Name, p)
		}
	}()
	res, err = exec.Execute(actx, job)
	// Past its deadline the task was told to stop: even a clean exit (a
	// SIGTERM handler exiting 0) did not finish the work.
	if errors.Is(context.Cause(actx), errAttemptTimeout) && d.rctx.Err() == nil {
		if err != nil {
			err = fmt.Errorf("timed out after %s: %w (%w)", t.Policy.Timeout, errAttemptTimeout, err)
		} else {
			err = fmt.Errorf("timed out after %s: %w", t.Policy.Timeout, errAttemptTimeout)
		}
	}
	return res, err
}
