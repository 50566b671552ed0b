package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/secrets"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
	"github.com/sluicehq/sluice/internal/task"
)

// kindFunc is the task kind the test executors run.
const kindFunc pipeline.Kind = "func"

// execFunc adapts a function to Executor.
type execFunc func(ctx context.Context, job *task.Job) (task.Result, error)

func (f execFunc) Execute(ctx context.Context, job *task.Job) (task.Result, error) {
	return f(ctx, job)
}

func openStore(tb testing.TB, dir string) store.Store {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "sluice.db"), sqlite.Options{Synchronous: sqlite.SyncNormal})
	if err != nil {
		tb.Fatalf("opening store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// newKeyring returns a real keyring over st with a fresh keyset file in
// dir: task logs are always encrypted.
func newKeyring(tb testing.TB, st store.Store, dir string) *keys.Keyring {
	tb.Helper()
	kek, err := keys.LoadFile(dir)
	if err != nil {
		tb.Fatalf("loading KEK: %v", err)
	}
	return keys.New(st, kek, keys.Options{})
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) observe(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// index returns the position of the first event of kind for task, or -1.
func (r *recorder) index(kind EventKind, taskName string) int {
	for i, ev := range r.all() {
		if ev.Kind == kind && ev.Task == taskName {
			return i
		}
	}
	return -1
}

type env struct {
	keys     *keys.Keyring
	store    store.Store
	stateDir string
	clock    *clock.Fake
	rec      *recorder
	engine   *Engine
}

type envOpt func(*Options)

// readLog decrypts an attempt log.
func (en *env) readLog(rel string) ([]byte, error) {
	s, err := ReadLog(context.Background(), en.keys, en.stateDir, rel)
	return []byte(s), err
}

func newEnv(t *testing.T, executors map[pipeline.Kind]Executor, opts ...envOpt) *env {
	t.Helper()
	dir := t.TempDir()
	st := openStore(t, dir)
	en := &env{
		keys:     newKeyring(t, st, dir),
		store:    st,
		stateDir: filepath.Join(dir, "state"),
		clock:    clock.NewFake(time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)),
		rec:      &recorder{},
	}
	o := Options{
		Store: en.store, Executors: executors, Clock: en.clock, StateDir: en.stateDir, Logs: en.keys, Redact: secrets.NewRedactor(),
		Observer: en.rec.observe, LeaseDuration: 2 * time.Hour, HeartbeatEvery: time.Hour,
		Rand: mrand.New(mrand.NewPCG(1, 2)),
	}
	for _, f := range opts {
		f(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	en.engine = e
	return en
}

func newPipeline(t testing.TB, tasks ...*pipeline.Task) *pipeline.Pipeline {
	for _, tk := range tasks {
		if tk.Kind == "" {
			tk.Kind = kindFunc
		}
		if tk.TriggerRule == "" {
			tk.TriggerRule = pipeline.AllSuccess
		}
	}
	return &pipeline.Pipeline{Name: "p", Namespace: "default", Tasks: tasks, Dir: t.TempDir(), Hash: "abc123"}
}

func tk(name string, needs ...string) *pipeline.Task {
	return &pipeline.Task{Name: name, Needs: needs}
}

// run creates a run of p and executes it.
func (en *env) run(t *testing.T, ctx context.Context, p *pipeline.Pipeline) store.Run {
	t.Helper()
	run, err := en.engine.CreateRun(ctx, p, RunRequest{LogicalDate: "2026-11-24", Params: map[string]string{"day": "tue"}})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	got, err := en.engine.Execute(ctx, p, run.ID)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return got
}

func (en *env) taskStates(t *testing.T, runID string) map[string]store.TaskState {
	t.Helper()
	trs, err := en.store.ListTaskRuns(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.TaskState{}
	for _, tr := range trs {
		m[tr.Task] = tr.State
	}
	return m
}

func (en *env) outcomes(t *testing.T, runID, taskName string) []store.Outcome {
	t.Helper()
	atts, err := en.store.ListAttempts(context.Background(), runID, taskName)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Outcome
	for _, a := range atts {
		out = append(out, a.Outcome)
	}
	return out
}

// checkLogs asserts every attempt of the run has its log file, private.
func (en *env) checkLogs(t *testing.T, runID string) []store.Attempt {
	t.Helper()
	atts, err := en.store.ListAttempts(context.Background(), runID, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range atts {
		want := filepath.Join("logs", runID, fmt.Sprintf("%s.%d.log", a.Task, a.Number))
		if a.LogPath != want {
			t.Errorf("attempt %s.%d: LogPath = %q, want %q", a.Task, a.Number, a.LogPath, want)
		}
		fi, err := os.Stat(filepath.Join(en.stateDir, a.LogPath))
		if errors.Is(err, os.ErrNotExist) && a.Outcome == store.OutcomeSuccess {
			continue // logs are created on first write; a silent success has none
		}
		if err != nil {
			t.Errorf("attempt %s.%d: %v", a.Task, a.Number, err)
			continue
		}
		if a.Outcome == store.OutcomeFailed {
			b, _ := en.readLog(a.LogPath)
			if !strings.Contains(string(b), "failed") {
				t.Errorf("log of failed attempt %s.%d does not say why: %q", a.Task, a.Number, b)
			}
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("log %s mode %v, want 0600", a.LogPath, fi.Mode().Perm())
		}
		// Logs are encrypted at rest: no line of the text is on disk.
		raw, _ := os.ReadFile(filepath.Join(en.stateDir, a.LogPath))
		text, _ := en.readLog(a.LogPath)
		for _, line := range bytes.Split(text, []byte("\n")) {
			if len(line) >= 8 && bytes.Contains(raw, line) {
				t.Errorf("log %s holds plaintext %q", a.LogPath, line)
			}
		}
	}
	fi, err := os.Stat(filepath.Join(en.stateDir, "logs", runID))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("log directory mode %v, want 0700", fi.Mode().Perm())
	}
	return atts
}

// succeed is an executor that logs and succeeds.
var succeed = execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
	fmt.Fprintf(job.Log, "hello from %s attempt %d of %s for %s\n", job.Task.Name, job.Attempt, job.Vars.RunID, job.Vars.LogicalDate)
	return task.Result{RowsIn: 2, RowsOut: 1}, nil
})

func TestDAGs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tasks []*pipeline.Task
	}{
		{"linear", []*pipeline.Task{tk("a"), tk("b", "a"), tk("c", "b")}},
		{"diamond", []*pipeline.Task{tk("a"), tk("b", "a"), tk("c", "a"), tk("d", "b", "c")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: succeed})
			p := newPipeline(t, tt.tasks...)
			run := en.run(t, context.Background(), p)
			if run.State != store.RunSuccess || run.Error != "" || run.Owner != "" {
				t.Fatalf("run = %s %q owner %q, want success, no error, released", run.State, run.Error, run.Owner)
			}
			for name, st := range en.taskStates(t, run.ID) {
				if st != store.TaskSuccess {
					t.Errorf("task %s is %s, want success", name, st)
				}
			}
			// Every task started only after each task it needs finished.
			for _, task := range p.Tasks {
				start := en.rec.index(TaskStarted, task.Name)
				if start < 0 {
					t.Fatalf("no TaskStarted for %s", task.Name)
				}
				for _, n := range task.Needs {
					if fin := en.rec.index(TaskFinished, n); fin < 0 || fin > start {
						t.Errorf("%s started (event %d) before %s finished (event %d)", task.Name, start, n, fin)
					}
				}
			}
			atts := en.checkLogs(t, run.ID)
			if len(atts) != len(p.Tasks) {
				t.Fatalf("%d attempts, want %d", len(atts), len(p.Tasks))
			}
			for _, a := range atts {
				if a.Outcome != store.OutcomeSuccess || a.RowsIn != 2 || a.RowsOut != 1 || a.Owner != en.engine.Owner() {
					t.Errorf("attempt %+v: want success with rows 2/1 by %s", a, en.engine.Owner())
				}
				b, err := en.readLog(a.LogPath)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("hello from %s attempt 1 of %s for 2026-11-24\n", a.Task, run.ID)
				if string(b) != want {
					t.Errorf("log of %s = %q, want %q", a.Task, b, want)
				}
			}
			evs := en.rec.all()
			if evs[0].Kind != RunStarted || evs[len(evs)-1].Kind != RunFinished || evs[len(evs)-1].State != string(store.RunSuccess) {
				t.Errorf("events start with %s and end with %s %s", evs[0].Kind, evs[len(evs)-1].Kind, evs[len(evs)-1].State)
			}
		})
	}
}

func TestTriggerRules(t *testing.T) {
	t.Parallel()
	fail := errors.New("boom")
	exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
		if strings.HasPrefix(job.Task.Name, "bad") {
			return task.Result{}, task.Permanent(fail)
		}
		return task.Result{}, nil
	})
	rule := func(r pipeline.TriggerRule, name string, needs ...string) *pipeline.Task {
		x := tk(name, needs...)
		x.TriggerRule = r
		return x
	}
	p := newPipeline(t,
		tk("ok"),
		tk("bad"),
		tk("skipped_child", "bad"),
		rule(pipeline.AllSuccess, "all_success_ok", "ok"),
		rule(pipeline.AllSuccess, "all_success_bad", "ok", "bad"),
		tk("grandchild", "skipped_child"),
		rule(pipeline.NoneFailed, "none_failed_skipped", "ok", "skipped_child"),
		rule(pipeline.NoneFailed, "none_failed_bad", "ok", "bad"),
		rule(pipeline.AllDone, "all_done", "ok", "bad", "skipped_child"),
		rule(pipeline.OneFailed, "one_failed_bad", "ok", "bad"),
		rule(pipeline.OneFailed, "one_failed_ok", "ok"),
		rule(pipeline.AllSuccess, "after_one_failed_skip", "one_failed_ok"),
	)
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec})
	run := en.run(t, context.Background(), p)

	type want struct {
		state  store.TaskState
		reason string
	}
	wants := map[string]want{
		"ok":                    {store.TaskSuccess, ""},
		"bad":                   {store.TaskFailed, "boom"},
		"skipped_child":         {store.TaskSkipped, `trigger rule all_success: upstream "bad" failed`},
		"all_success_ok":        {store.TaskSuccess, ""},
		"all_success_bad":       {store.TaskSkipped, `trigger rule all_success: upstream "bad" failed`},
		"grandchild":            {store.TaskSkipped, `trigger rule all_success: upstream "skipped_child" skipped`},
		"none_failed_skipped":   {store.TaskSuccess, ""},
		"none_failed_bad":       {store.TaskSkipped, `trigger rule none_failed: upstream "bad" failed`},
		"all_done":              {store.TaskSuccess, ""},
		"one_failed_bad":        {store.TaskSuccess, ""},
		"one_failed_ok":         {store.TaskSkipped, "trigger rule one_failed: no upstream failed (needs ok)"},
		"after_one_failed_skip": {store.TaskSkipped, `trigger rule all_success: upstream "one_failed_ok" skipped`},
	}
	trs, err := en.store.ListTaskRuns(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		t.Run(tr.Task, func(t *testing.T) {
			w := wants[tr.Task]
			if tr.State != w.state || tr.Error != w.reason {
				t.Errorf("state %s %q, want %s %q", tr.State, tr.Error, w.state, w.reason)
			}
			if tr.State == store.TaskSkipped && tr.Attempts != 0 {
				t.Errorf("skipped task has %d attempts", tr.Attempts)
			}
		})
	}
	if run.State != store.RunFailed || !strings.Contains(run.Error, "task bad failed: boom") {
		t.Errorf("run = %s %q, want failed naming bad (a one_failed handler does not hide the failure)", run.State, run.Error)
	}
}

// TestOneFailedRunsAtOnce: a one_failed task starts as soon as one upstream
// fails, while another upstream is still running; the running upstream
// waits for the handler, so waiting for all upstreams would never end.
func TestOneFailedRunsAtOnce(t *testing.T) {
	t.Parallel()
	handled := make(chan struct{})
	exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
		switch job.Task.Name {
		case "bad":
			return task.Result{}, task.Permanent(errors.New("boom"))
		case "slow":
			select {
			case <-handled:
				return task.Result{}, nil
			case <-ctx.Done():
				return task.Result{}, ctx.Err()
			}
		case "handler":
			close(handled)
		}
		return task.Result{}, nil
	})
	handler := tk("handler", "bad", "slow")
	handler.TriggerRule = pipeline.OneFailed
	p := newPipeline(t, tk("bad"), tk("slow"), handler)
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run := en.run(t, ctx, p)
	want := map[string]store.TaskState{"bad": store.TaskFailed, "slow": store.TaskSuccess, "handler": store.TaskSuccess}
	if diff := cmp.Diff(want, en.taskStates(t, run.ID)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if run.State != store.RunFailed {
		t.Errorf("run %s, want failed", run.State)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		policy    pipeline.Policy
		failFirst int // attempts that fail before one succeeds
		waits     []time.Duration
		want      store.TaskState
	}{
		{
			name:      "constant",
			policy:    pipeline.Policy{Retries: 3, Backoff: pipeline.BackoffConstant, RetryDelay: time.Minute},
			failFirst: 2, waits: []time.Duration{time.Minute, time.Minute}, want: store.TaskSuccess,
		},
		{
			name:      "exponential_capped",
			policy:    pipeline.Policy{Retries: 4, Backoff: pipeline.BackoffExponential, RetryDelay: time.Second, MaxRetryDelay: 5 * time.Second},
			failFirst: 4, waits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}, want: store.TaskSuccess,
		},
		{
			name:      "exhausted",
			policy:    pipeline.Policy{Retries: 2, Backoff: pipeline.BackoffExponential, RetryDelay: 10 * time.Second},
			failFirst: 99, waits: []time.Duration{10 * time.Second, 20 * time.Second}, want: store.TaskFailed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
				n := calls.Add(1)
				if int(n) != job.Attempt {
					return task.Result{}, fmt.Errorf("attempt %d on call %d", job.Attempt, n)
				}
				if int(n) <= tt.failFirst {
					return task.Result{}, errors.New("flaky")
				}
				return task.Result{}, nil
			})
			en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec})
			x := tk("x")
			x.Policy = tt.policy
			p := newPipeline(t, x)
			run, err := en.engine.CreateRun(context.Background(), p, RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := en.engine.Execute(context.Background(), p, run.ID)
				done <- err
			}()
			for i, wait := range tt.waits {
				en.clock.BlockUntil(2) // the heartbeat and the retry wait
				tr, err := en.store.GetTaskRun(context.Background(), run.ID, "x")
				if err != nil {
					t.Fatal(err)
				}
				if tr.State != store.TaskUpForRetry {
					t.Fatalf("retry %d: task is %s, want up_for_retry", i+1, tr.State)
				}
				if want := en.clock.Now().Add(wait); !tr.NextAttemptAt.Equal(want) {
					t.Errorf("retry %d: NextAttemptAt = %s, want now+%s = %s", i+1, tr.NextAttemptAt, wait, want)
				}
				en.clock.Advance(wait)
			}
			if err := <-done; err != nil {
				t.Fatalf("Execute: %v", err)
			}
			tr, err := en.store.GetTaskRun(context.Background(), run.ID, "x")
			if err != nil {
				t.Fatal(err)
			}
			if tr.State != tt.want || tr.Attempts != len(tt.waits)+1 {
				t.Errorf("task %s after %d attempts, want %s after %d", tr.State, tr.Attempts, tt.want, len(tt.waits)+1)
			}
			var retrying int
			for _, ev := range en.rec.all() {
				if ev.Kind == TaskRetrying {
					retrying++
				}
			}
			if retrying != len(tt.waits) {
				t.Errorf("%d TaskRetrying events, want %d", retrying, len(tt.waits))
			}
			en.checkLogs(t, run.ID)
		})
	}
}

func TestRetryJitter(t *testing.T) {
	t.Parallel()
	exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
		return task.Result{}, errors.New("always")
	})
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec})
	const d = 10 * time.Second
	x := tk("x")
	x.Policy = pipeline.Policy{Retries: 8, Backoff: pipeline.BackoffConstant, RetryDelay: d, Jitter: true}
	p := newPipeline(t, x)
	run, err := en.engine.CreateRun(context.Background(), p, RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := en.engine.Execute(context.Background(), p, run.ID)
		done <- err
	}()
	distinct := map[time.Duration]bool{}
	for i := 0; i < x.Policy.Retries; i++ {
		en.clock.BlockUntil(2)
		tr, err := en.store.GetTaskRun(context.Background(), run.ID, "x")
		if err != nil {
			t.Fatal(err)
		}
		wait := tr.NextAttemptAt.Sub(en.clock.Now())
		if wait < d/2 || wait > d {
			t.Errorf("retry %d: wait %s outside [%s, %s]", i+1, wait, d/2, d)
		}
		distinct[wait] = true
		en.clock.Advance(wait)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(distinct) < 2 {
		t.Errorf("jittered waits all equal: %v", distinct)
	}
	if got := en.outcomes(t, run.ID, "x"); len(got) != x.Policy.Retries+1 {
		t.Errorf("%d attempts, want %d", len(got), x.Policy.Retries+1)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	e := &Engine{rand: mrand.New(mrand.NewPCG(3, 4))}
	tests := []struct {
		name string
		pol  pipeline.Policy
		n    int
		want time.Duration
	}{
		{"constant", pipeline.Policy{Backoff: pipeline.BackoffConstant, RetryDelay: 3 * time.Second}, 5, 3 * time.Second},
		{"exp_first", pipeline.Policy{Backoff: pipeline.BackoffExponential, RetryDelay: time.Second}, 1, time.Second},
		{"exp_fourth", pipeline.Policy{Backoff: pipeline.BackoffExponential, RetryDelay: time.Second}, 4, 8 * time.Second},
		{"exp_capped", pipeline.Policy{Backoff: pipeline.BackoffExponential, RetryDelay: time.Second, MaxRetryDelay: 5 * time.Second}, 10, 5 * time.Second},
		{"exp_huge_n_capped", pipeline.Policy{Backoff: pipeline.BackoffExponential, RetryDelay: time.Second, MaxRetryDelay: time.Hour}, 500, time.Hour},
		{"zero", pipeline.Policy{}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.backoff(tt.pol, tt.n); got != tt.want {
				t.Errorf("backoff(%d) = %s, want %s", tt.n, got, tt.want)
			}
		})
	}
}

func TestPermanentErrorNotRetried(t *testing.T) {
	t.Parallel()
	exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
		return task.Result{}, task.Permanent(errors.New("missing input"))
	})
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec})
	x := tk("x")
	x.Policy = pipeline.Policy{Retries: 3, RetryDelay: time.Minute}
	run := en.run(t, context.Background(), newPipeline(t, x))
	if diff := cmp.Diff([]store.Outcome{store.OutcomeFailed}, en.outcomes(t, run.ID, "x")); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	if run.State != store.RunFailed || !strings.Contains(run.Error, "missing input") {
		t.Errorf("run %s %q, want failed with the cause", run.State, run.Error)
	}
	// The cause is in the attempt's log too.
	b, err := en.readLog(filepath.Join("logs", run.ID, "x.1.log"))
	if err != nil || !strings.Contains(string(b), "missing input") {
		t.Errorf("log = %q (%v), want the error", b, err)
	}
}

func TestExecutorPanicFailsTask(t *testing.T) {
	t.Parallel()
	exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) { panic("bug") })
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec})
	run := en.run(t, context.Background(), newPipeline(t, tk("x")))
	if run.State != store.RunFailed || !strings.Contains(run.Error, "panicked: bug") {
		t.Errorf("run %s %q, want failed by the panic", run.State, run.Error)
	}
}

func TestArtifactsReachDownstream(t *testing.T) {
	t.Parallel()
	var got map[string]store.Artifact
	exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
		if job.Task.Name == "produce" {
			a := store.Artifact{ID: "art-" + job.Run.ID, RunID: job.Run.ID, Task: "produce", Attempt: job.Attempt,
				Kind: "output", Path: "artifacts/x.arrow", Format: "arrow-ipc-stream", Rows: 7, SHA256: "00ff"}
			return task.Result{RowsOut: 7, Artifacts: []store.Artifact{a}, Output: a.ID}, nil
		}
		got = job.Inputs
		return task.Result{}, nil
	})
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec})
	run := en.run(t, context.Background(), newPipeline(t, tk("produce"), tk("consume", "produce")))
	if run.State != store.RunSuccess {
		t.Fatalf("run %s %q", run.State, run.Error)
	}
	in, ok := got["produce"]
	if !ok || in.ID != "art-"+run.ID || in.Rows != 7 || in.SHA256 != "00ff" {
		t.Errorf("consume got inputs %+v, want produce's artifact", got)
	}
	tr, err := en.store.GetTaskRun(context.Background(), run.ID, "produce")
	if err != nil || tr.Output != "art-"+run.ID {
		t.Errorf("produce Output = %q (%v)", tr.Output, err)
	}
}

func TestMaxActiveTasks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		pipelineMax, opts int
		want              int
	}{
		{"pipeline", 3, 0, 3},
		{"engine_default", 0, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const n = 10
			var active, peak atomic.Int32
			started := make(chan struct{}, n)
			release := make(chan struct{})
			exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
				cur := active.Add(1)
				for {
					p := peak.Load()
					if cur <= p || peak.CompareAndSwap(p, cur) {
						break
					}
				}
				started <- struct{}{}
				<-release
				active.Add(-1)
				return task.Result{}, nil
			})
			en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec}, func(o *Options) { o.MaxActiveTasks = tt.opts })
			var tasks []*pipeline.Task
			for i := range n {
				tasks = append(tasks, tk(fmt.Sprintf("t%d", i)))
			}
			p := newPipeline(t, tasks...)
			p.MaxActiveTasks = tt.pipelineMax
			run, err := en.engine.CreateRun(context.Background(), p, RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan store.Run, 1)
			go func() {
				r, err := en.engine.Execute(context.Background(), p, run.ID)
				if err != nil {
					t.Error(err)
				}
				done <- r
			}()
			for range tt.want {
				<-started
			}
			for range n - tt.want {
				release <- struct{}{}
				<-started
			}
			for range tt.want {
				release <- struct{}{}
			}
			if r := <-done; r.State != store.RunSuccess {
				t.Fatalf("run %s", r.State)
			}
			if got := int(peak.Load()); got != tt.want {
				t.Errorf("peak concurrency %d, want %d", got, tt.want)
			}
		})
	}
}

// script is a script task.
func script(name, s string, needs ...string) *pipeline.Task {
	x := tk(name, needs...)
	x.Kind, x.Script = pipeline.KindScript, s
	return x
}

func shellExecutors(grace time.Duration) map[pipeline.Kind]Executor {
	sh := task.NewShell(grace)
	return map[pipeline.Kind]Executor{pipeline.KindShell: sh, pipeline.KindScript: sh, kindFunc: succeed}
}

// pidAlive reports whether pid is a live (not zombie) process.
func pidAlive(pid int) bool { return processAlive(pid) }

// waitGone waits for the OS to reap pid: a killed orphan is reaped by
// init asynchronously, which nothing can signal to the test.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for pidAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	en := newEnv(t, shellExecutors(200*time.Millisecond), func(o *Options) { o.Clock = clock.Real{} })
	x := script("sleepy", `echo $$ > "sleepy.$SLUICE_ATTEMPT.pid"; exec sleep 5`)
	x.Policy = pipeline.Policy{Retries: 1, Timeout: 100 * time.Millisecond}
	p := newPipeline(t, x)
	start := time.Now()
	run := en.run(t, context.Background(), p)
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("run took %s: the timeout did not stop the task", elapsed)
	}
	if diff := cmp.Diff([]store.Outcome{store.OutcomeTimedOut, store.OutcomeTimedOut}, en.outcomes(t, run.ID, "sleepy")); diff != "" {
		t.Errorf("outcomes (-want +got), a timeout is retryable:\n%s", diff)
	}
	if run.State != store.RunFailed || !strings.Contains(run.Error, "timed out after 100ms") {
		t.Errorf("run %s %q, want failed by timeout", run.State, run.Error)
	}
	for _, n := range []string{"1", "2"} {
		waitGone(t, readPid(t, filepath.Join(p.Dir, "sleepy."+n+".pid")))
	}
	en.checkLogs(t, run.ID)
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	tests := []struct {
		name       string
		script     string
		wantInLog  string
		minElapsed time.Duration
	}{
		{
			name:      "graceful",
			script:    `trap 'echo cleaned up; exit 0' TERM; sleep 30 & echo $! > child.pid; echo ready > ready.fifo; wait`,
			wantInLog: "cleaned up",
		},
		{
			name:       "ignores_sigterm",
			script:     `trap '' TERM; sleep 30 & echo $! > child.pid; echo ready > ready.fifo; while :; do wait; done`,
			minElapsed: grace,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			en := newEnv(t, shellExecutors(grace), func(o *Options) { o.Clock = clock.Real{} })
			// "other" finishes before "work" starts; "after" waits for "work".
			p := newPipeline(t, tk("other"), script("work", tt.script, "other"), tk("after", "work"))
			// A FIFO tells the test the script is ready, without polling.
			fifo := filepath.Join(p.Dir, "ready.fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			run, err := en.engine.CreateRun(context.Background(), p, RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type out struct {
				run store.Run
				err error
			}
			done := make(chan out, 1)
			go func() {
				r, err := en.engine.Execute(ctx, p, run.ID)
				done <- out{r, err}
			}()
			f, err := os.Open(fifo) // blocks until the script opens it
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			start := time.Now()
			cancel()
			var o out
			select {
			case o = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Execute did not return after cancellation")
			}
			if o.err != nil {
				t.Fatalf("Execute: %v", o.err)
			}
			if elapsed := time.Since(start); elapsed < tt.minElapsed {
				t.Errorf("returned %s after cancel, before the grace period %s", elapsed, tt.minElapsed)
			}
			if o.run.State != store.RunCancelled {
				t.Errorf("run %s %q, want cancelled", o.run.State, o.run.Error)
			}
			stored, err := en.store.GetRun(context.Background(), run.ID)
			if err != nil || stored.State != store.RunCancelled || stored.Owner != "" {
				t.Errorf("stored run %s owner %q (%v), want cancelled and released", stored.State, stored.Owner, err)
			}
			want := map[string]store.TaskState{"work": store.TaskCancelled, "after": store.TaskCancelled, "other": store.TaskSuccess}
			if diff := cmp.Diff(want, en.taskStates(t, run.ID)); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]store.Outcome{store.OutcomeCancelled}, en.outcomes(t, run.ID, "work")); diff != "" {
				t.Errorf("work attempts (-want +got):\n%s", diff)
			}
			b, err := en.readLog(filepath.Join("logs", run.ID, "work.1.log"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantInLog != "" && !strings.Contains(string(b), tt.wantInLog) {
				t.Errorf("log %q lacks %q", b, tt.wantInLog)
			}
			waitGone(t, readPid(t, filepath.Join(p.Dir, "child.pid")))
		})
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestOrphanRecovery(t *testing.T) {
	t.Parallel()
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: succeed})
	x := tk("x") // no retries: an interruption must not use the budget
	p := newPipeline(t, x, tk("y", "x"))
	ctx := context.Background()
	run, err := en.engine.CreateRun(ctx, p, RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// What a process killed mid-attempt leaves behind.
	host, _ := os.Hostname()
	dead := fmt.Sprintf("%s:%d:x", host, deadPid(t))
	now := en.clock.Now()
	if _, err := en.store.ClaimRun(ctx, store.ClaimRun{RunID: run.ID, Owner: dead, LeaseUntil: now.Add(time.Hour), Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := en.store.SetRunState(ctx, store.SetRunState{RunID: run.ID, From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := en.store.SetTaskState(ctx, store.SetTaskState{RunID: run.ID, Task: "x", From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := en.store.StartAttempt(ctx, store.StartAttempt{RunID: run.ID, Task: "x", From: store.TaskQueued, Owner: dead, At: now, LogPath: "logs/" + run.ID + "/x.1.log"}); err != nil {
		t.Fatal(err)
	}

	got, err := en.engine.Execute(ctx, p, run.ID)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if got.State != store.RunSuccess {
		t.Fatalf("run %s %q, want success", got.State, got.Error)
	}
	if diff := cmp.Diff([]store.Outcome{store.OutcomeInterrupted, store.OutcomeSuccess}, en.outcomes(t, run.ID, "x")); diff != "" {
		t.Errorf("x attempts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.Outcome{store.OutcomeSuccess}, en.outcomes(t, run.ID, "y")); diff != "" {
		t.Errorf("y attempts (-want +got):\n%s", diff)
	}
	atts, err := en.store.ListAttempts(ctx, run.ID, "x")
	if err != nil {
		t.Fatal(err)
	}
	if atts[1].Owner != en.engine.Owner() {
		t.Errorf("rerun by %q, want %q", atts[1].Owner, en.engine.Owner())
	}
	if _, err := os.Stat(filepath.Join(en.stateDir, atts[1].LogPath)); err != nil {
		t.Errorf("log of the rerun: %v", err)
	}
}

func TestRunActive(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	tests := []struct {
		name  string
		owner string
	}{
		{"live_process_same_host", fmt.Sprintf("%s:%d:other", host, os.Getppid())},
		{"this_process_other_engine", fmt.Sprintf("%s:%d:other", host, os.Getpid())},
		{"other_host", "elsewhere:1:x"},
		{"unknown_format", "someone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: succeed})
			p := newPipeline(t, tk("x"))
			ctx := context.Background()
			run, err := en.engine.CreateRun(ctx, p, RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			now := en.clock.Now()
			if _, err := en.store.ClaimRun(ctx, store.ClaimRun{RunID: run.ID, Owner: tt.owner, LeaseUntil: now.Add(time.Minute), Now: now}); err != nil {
				t.Fatal(err)
			}
			_, err = en.engine.Execute(ctx, p, run.ID)
			if !errors.Is(err, ErrRunActive) || !strings.Contains(err.Error(), tt.owner) {
				t.Fatalf("err = %v, want ErrRunActive naming %s", err, tt.owner)
			}
			if st := en.taskStates(t, run.ID)["x"]; st != store.TaskPending {
				t.Errorf("task %s, want untouched pending", st)
			}
			// Once the lease expires, the run is anyone's.
			en.clock.Advance(2 * time.Minute)
			if r, err := en.engine.Execute(ctx, p, run.ID); err != nil || r.State != store.RunSuccess {
				t.Errorf("after lease expiry: %s, %v; want success", r.State, err)
			}
		})
	}
}

func TestCreateRun(t *testing.T) {
	t.Parallel()
	en := newEnv(t, nil)
	p := newPipeline(t, tk("a"), tk("b", "a"))
	run, err := en.engine.CreateRun(context.Background(), p, RunRequest{Params: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.ID, "20261125T083000Z-") || len(run.ID) != len("20261125T083000Z-")+6 {
		t.Errorf("id %q, want a sortable timestamp id", run.ID)
	}
	if run.LogicalDate != "2026-11-25" || run.Trigger != "manual" || run.State != store.RunQueued || run.PipelineHash != "abc123" {
		t.Errorf("run %+v", run)
	}
	if diff := cmp.Diff(map[string]string{"k": "v"}, run.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	bad := []RunRequest{{ID: "../x"}, {ID: "a/b"}, {LogicalDate: "25/11/2026"}}
	for _, req := range bad {
		if _, err := en.engine.CreateRun(context.Background(), p, req); err == nil {
			t.Errorf("CreateRun(%+v) succeeded, want an error", req)
		}
	}
	if _, err := en.engine.CreateRun(context.Background(), p, RunRequest{ID: run.ID}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate id: err = %v, want ErrConflict", err)
	}
}

func TestExecuteRejectsOtherVersion(t *testing.T) {
	t.Parallel()
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: succeed})
	p := newPipeline(t, tk("a"))
	run, err := en.engine.CreateRun(context.Background(), p, RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p2 := *p
	p2.Hash = "def456"
	if _, err := en.engine.Execute(context.Background(), &p2, run.ID); err == nil || !strings.Contains(err.Error(), "def456") {
		t.Errorf("err = %v, want a version mismatch", err)
	}
	r, err := en.store.GetRun(context.Background(), run.ID)
	if err != nil || r.Owner != "" {
		t.Errorf("run left owned by %q (%v)", r.Owner, err)
	}
}

func TestLeaseLost(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	exec := execFunc(func(ctx context.Context, job *task.Job) (task.Result, error) {
		close(started)
		<-ctx.Done()
		return task.Result{}, ctx.Err()
	})
	en := newEnv(t, map[pipeline.Kind]Executor{kindFunc: exec})
	p := newPipeline(t, tk("x"))
	ctx := context.Background()
	run, err := en.engine.CreateRun(ctx, p, RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := en.engine.Execute(ctx, p, run.ID)
		done <- err
	}()
	<-started
	now := en.clock.Now()
	if _, err := en.store.ClaimRun(ctx, store.ClaimRun{RunID: run.ID, Owner: "elsewhere:1:thief", LeaseUntil: now.Add(3 * time.Hour), Now: now, Steal: true}); err != nil {
		t.Fatal(err)
	}
	en.clock.BlockUntil(1) // the heartbeat
	en.clock.Advance(time.Hour)
	if err := <-done; !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Execute: %v, want ErrLeaseLost", err)
	}
	// Nothing was recorded over the new owner's run: the attempt is still
	// open, for the new owner to recover.
	if diff := cmp.Diff([]store.Outcome{store.OutcomeRunning}, en.outcomes(t, run.ID, "x")); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	r, err := en.store.GetRun(ctx, run.ID)
	if err != nil || r.Owner != "elsewhere:1:thief" || r.State != store.RunRunning {
		t.Errorf("run %s owned by %q (%v), want running, the thief's", r.State, r.Owner, err)
	}
}

// TestTimeoutCleanExit: a task that exits 0 on the SIGTERM of its timeout
// did not finish its work; the attempt is timed out, not successful.
func TestTimeoutCleanExit(t *testing.T) {
	t.Parallel()
	en := newEnv(t, shellExecutors(time.Second), func(o *Options) { o.Clock = clock.Real{} })
	x := script("quitter", `trap 'exit 0' TERM; sleep 5 & wait`)
	x.Policy = pipeline.Policy{Timeout: 100 * time.Millisecond}
	run := en.run(t, context.Background(), newPipeline(t, x))
	if diff := cmp.Diff([]store.Outcome{store.OutcomeTimedOut}, en.outcomes(t, run.ID, "quitter")); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if run.State != store.RunFailed {
		t.Errorf("run %s, want failed", run.State)
	}
}
