package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// Engine is what the API needs of the run engine; *engine.Engine
// implements it.
type Engine interface {
	CreateRunIn(ctx context.Context, st store.Store, p *pipeline.Pipeline, req engine.RunRequest) (store.Run, error)
	Execute(ctx context.Context, p *pipeline.Pipeline, runID string) (store.Run, error)
	Active(run store.Run) bool
	Executing(runID string) bool
	Cancel(runID string) bool
}

var _ Engine = (*engine.Engine)(nil)

// runRoutes are the run endpoints.
func (a *API) runRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/runs", Summary: "list runs, newest first",
			Rule: Filtered(access.RunRead), Handle: a.listRuns},
		{Method: http.MethodGet, Pattern: Prefix + "/runs/{id}", Summary: "a run with its tasks",
			Rule: Need(access.RunRead, OfRun(access.ResRun)), Handle: a.getRun},
		{Method: http.MethodPost, Pattern: Prefix + "/runs/{id}/cancel", Summary: "cancel a run",
			Rule: Need(access.RunControl, OfRun(access.ResRun)), Handle: a.cancelRun},
		{Method: http.MethodPost, Pattern: Prefix + "/runs/{id}/retry", Summary: "run a finished run's unsuccessful tasks again",
			Rule: Need(access.RunControl, OfRun(access.ResRun)), Handle: a.retryRun},
		{Method: http.MethodPost, Pattern: Prefix + "/runs/{id}/tasks/{task}/mark", Summary: "mark a task of a finished run success or failed",
			Rule: Need(access.RunControl, OfRun(access.ResRun)), Handle: a.markTask},
		{Method: http.MethodGet, Pattern: Prefix + "/runs/{id}/tasks/{task}/attempts", Summary: "the attempts of a task",
			Rule: Need(access.RunRead, OfRun(access.ResRun)), Handle: a.listAttempts},
		{Method: http.MethodGet, Pattern: Prefix + "/runs/{id}/tasks/{task}/log", Summary: "the log of a task attempt, streamed",
			Rule: Need(access.LogRead, OfRun(access.ResLog)), Handle: a.taskLog},
	}
}

// runKey is the cursor of GET /runs: the (created_at, id) of the last run
// of the previous page, created_at in Unix microseconds.
type runKey struct {
	T  int64  `json:"t"`
	ID string `json:"id"`
}

// maxRunScan bounds the runs one listing reads from the store while
// skipping those the caller may not see. A caller who can read only a
// sparse namespace gets a short (even empty) page with a next_cursor
// rather than a request that walks the whole history.
const maxRunScan = 5000

func (a *API) listRuns(w http.ResponseWriter, r *http.Request, c *Call) error {
	var cur runKey
	limit, err := Paging(r, &cur)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.RunFilter{Namespace: q.Get("namespace"), Pipeline: q.Get("pipeline")}
	if s := q.Get("state"); s != "" {
		st := store.RunState(s)
		switch st {
		case store.RunQueued, store.RunRunning, store.RunSuccess, store.RunFailed, store.RunCancelled:
		default:
			return server.Errorf(server.CodeInvalid, "query parameter state: %q is not one of queued, running, success, failed, cancelled", s)
		}
		f.States = []store.RunState{st}
	}
	if cur.ID != "" {
		f.Before = &store.RunKey{CreatedAt: time.UnixMicro(cur.T).UTC(), ID: cur.ID}
	}
	// Bindings are scoped by namespace, so one decision per namespace
	// serves every run in it.
	allowed := map[string]bool{}
	visible := func(run store.Run) bool {
		ok, seen := allowed[run.Namespace]
		if !seen {
			ok = c.May(r.Context(), access.RunRead, access.Resource{Type: access.ResRun, Namespace: run.Namespace, Name: run.ID})
			allowed[run.Namespace] = ok
		}
		return ok
	}
	var (
		items   []Run
		next    string
		scanned int
	)
	f.Limit = limit + 1
	for {
		batch, err := a.d.Store.ListRuns(r.Context(), f)
		if err != nil {
			return fmt.Errorf("listing runs: %w", err)
		}
		for _, run := range batch {
			scanned++
			k := store.KeyOf(run)
			f.Before = &k
			if !visible(run) {
				continue
			}
			items = append(items, a.runOf(run))
			if len(items) > limit {
				break
			}
		}
		if len(items) > limit {
			items = items[:limit]
			last := items[limit-1]
			next = Cursor(runKey{T: last.CreatedAt.UnixMicro(), ID: last.ID})
			break
		}
		if len(batch) < f.Limit {
			break // no more runs
		}
		if scanned >= maxRunScan {
			next = Cursor(runKey{T: f.Before.CreatedAt.UnixMicro(), ID: f.Before.ID})
			break
		}
		f.Limit = MaxLimit
	}
	return WriteJSON(w, http.StatusOK, NewPage(items, next))
}

// runOf is the wire form of run. The error of a run that is not failed or
// cancelled is left out: a retried run keeps the message of the attempt
// it retried until it ends again.
func (a *API) runOf(run store.Run) Run {
	out := Run{ID: run.ID, Namespace: run.Namespace, Pipeline: run.Pipeline, Version: run.PipelineHash,
		LogicalDate: run.LogicalDate, Params: run.Params, Trigger: run.Trigger, State: string(run.State),
		CreatedAt: run.CreatedAt.UTC(), StartedAt: run.StartedAt.UTC()}
	if out.Params == nil {
		out.Params = map[string]string{}
	}
	if run.State.Done() {
		out.EndedAt = run.EndedAt.UTC()
		if run.State != store.RunSuccess {
			out.Error = run.Error
		}
	}
	return out
}

func taskRunOf(tr store.TaskRun) TaskRun {
	out := TaskRun{Task: tr.Task, State: string(tr.State), Attempts: tr.Attempts, StartedAt: tr.StartedAt.UTC(),
		ExitCode: tr.ExitCode, RowsIn: tr.RowsIn, RowsOut: tr.RowsOut, RowsQuarantined: tr.RowsQuarantined, Output: tr.Output}
	if tr.State.Done() {
		out.EndedAt = tr.EndedAt.UTC()
	}
	if tr.State != store.TaskSuccess {
		out.Error = tr.Error
	}
	return out
}

// loadRun reads the run of the path's {id}: not_found if there is none.
func (a *API) loadRun(r *http.Request) (store.Run, error) {
	id := r.PathValue("id")
	run, err := a.d.Store.GetRun(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Run{}, server.Errorf(server.CodeNotFound, "no run %q", id)
	}
	return run, err
}

// writeRun answers with a run and its task runs, in the given status.
func (a *API) writeRun(ctx context.Context, w http.ResponseWriter, status int, run store.Run) error {
	trs, err := a.d.Store.ListTaskRuns(ctx, run.ID)
	if err != nil {
		return fmt.Errorf("listing tasks of run %s: %w", run.ID, err)
	}
	out := a.runOf(run)
	out.Tasks = make([]TaskRun, 0, len(trs))
	for _, tr := range trs {
		out.Tasks = append(out.Tasks, taskRunOf(tr))
	}
	return WriteJSON(w, status, out)
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request, _ *Call) error {
	run, err := a.loadRun(r)
	if err != nil {
		return err
	}
	return a.writeRun(r.Context(), w, http.StatusOK, run)
}

// event is the audit event of an action by the call's principal through
// the API. Address is the caller's IP address without its port, as every
// API record has it. Record it with audit.Do when the action is a store
// write (both commit or neither does), else with recordFirst before the
// action and recordFailed if the action then fails.
func event(r *http.Request, c *Call, action, resource string, details map[string]string) audit.Event {
	return audit.Event{Actor: c.Principal.Actor, Action: action, Resource: resource, Outcome: audit.OutcomeSuccess,
		Source: audit.SourceAPI, Address: server.ClientIP(r), RequestID: server.RequestID(r.Context()), Details: details}
}

func (a *API) engine() (Engine, error) {
	if a.d.Engine == nil {
		return nil, errors.New("the API was built without an engine")
	}
	return a.d.Engine, nil
}

// cancelRun cancels a run. A run this server is executing is cancelled
// through the engine: running attempts get their kill grace, the
// unfinished tasks and the run are recorded cancelled, and the answer
// (202) comes before that is done — poll the run. A run nobody drives
// (queued for the scheduler, or interrupted) is claimed so that no engine
// picks it up meanwhile and recorded cancelled at once (200). A run driven
// by another live process is refused (409): that process must cancel it.
func (a *API) cancelRun(w http.ResponseWriter, r *http.Request, c *Call) error {
	eng, err := a.engine()
	if err != nil {
		return err
	}
	run, err := a.loadRun(r)
	if err != nil {
		return err
	}
	if run.State.Done() {
		return server.Errorf(server.CodeConflict, "run %s already ended: %s", run.ID, run.State)
	}
	ev := event(r, c, "run.cancel", "run:"+run.ID, nil)
	if eng.Executing(run.ID) {
		// Cancelling through the engine is not a store write that could
		// share the record's transaction: record it first.
		if err := a.recordFirst(r.Context(), ev); err != nil {
			return err
		}
		if eng.Cancel(run.ID) {
			return a.writeRun(r.Context(), w, http.StatusAccepted, run)
		}
		// It ended between the two calls.
		err := server.Errorf(server.CodeConflict, "run %s ended meanwhile; read it again", run.ID)
		a.recordFailed(r.Context(), ev, err)
		return err
	}
	if eng.Active(run) {
		return server.Errorf(server.CodeConflict, "run %s is being executed by %s, not by this server; cancel it there", run.ID, run.Owner)
	}
	run, err = a.cancelIdle(r.Context(), run, ev)
	if err != nil {
		return err
	}
	return a.writeRun(r.Context(), w, http.StatusOK, run)
}

// cancelIdle records a run that no engine drives as cancelled. It holds
// the run's lease meanwhile under an owner no engine can prove dead, so
// the scheduler does not start it halfway through.
func (a *API) cancelIdle(ctx context.Context, run store.Run, ev audit.Event) (store.Run, error) {
	now := a.d.Clock.Now()
	actor := ev.Actor
	owner := "api:" + actor + ":" + strconv.FormatInt(now.UnixNano(), 36)
	if _, err := a.d.Store.ClaimRun(ctx, store.ClaimRun{RunID: run.ID, Owner: owner, LeaseUntil: now.Add(time.Minute), Now: now}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return run, server.Errorf(server.CodeConflict, "run %s was just taken up by an engine; try again", run.ID)
		}
		return run, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = a.d.Store.ReleaseRun(ctx, run.ID, owner)
	}()
	// The cancellation and its record commit together; a cancellation
	// that fails is recorded as such.
	var out store.Run
	err := audit.Do(ctx, a.d.Store, ev, func(tx store.Store) error {
		trs, err := tx.ListTaskRuns(ctx, run.ID)
		if err != nil {
			return err
		}
		for _, tr := range trs {
			if tr.State.Done() {
				continue
			}
			if tr.State == store.TaskRunning {
				// Its process is gone (nobody drives the run): close the attempt.
				if _, err := tx.FinishAttempt(ctx, store.FinishAttempt{RunID: run.ID, Task: tr.Task, Number: tr.Attempts,
					Outcome: store.OutcomeInterrupted, State: store.TaskCancelled, At: now, Error: "run cancelled by " + actor}); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.SetTaskState(ctx, store.SetTaskState{RunID: run.ID, Task: tr.Task, To: store.TaskCancelled, At: now,
				Error: "run cancelled by " + actor, From: []store.TaskState{store.TaskPending, store.TaskQueued, store.TaskUpForRetry}}); err != nil {
				return err
			}
		}
		out, err = tx.SetRunState(ctx, store.SetRunState{RunID: run.ID, To: store.RunCancelled, At: now,
			Error: "run cancelled by " + actor, From: []store.RunState{store.RunQueued, store.RunRunning}})
		return err
	})
	a.checkpoint(ctx)
	if errors.Is(err, store.ErrConflict) {
		return run, server.Errorf(server.CodeConflict, "run %s changed while it was being cancelled; read it again", run.ID)
	}
	if err != nil {
		return run, fmt.Errorf("cancelling run %s: %w", run.ID, err)
	}
	return out, nil
}

// retryRun runs the unsuccessful tasks of a finished (failed or cancelled)
// run again, in place: tasks that succeeded keep their outputs; failed,
// cancelled and skipped tasks go back to pending, so the run's DAG is
// evaluated again from where it stopped; the run is queued and executed
// in the background (202). Each retried task gets at least one attempt:
// the attempts it failed before count against its retries, as they would
// had the run never stopped. Only a run of a stored version that may run
// now (approved, where the namespace is protected) is retried.
func (a *API) retryRun(w http.ResponseWriter, r *http.Request, c *Call) error {
	eng, err := a.engine()
	if err != nil {
		return err
	}
	ctx := r.Context()
	run, err := a.loadRun(r)
	if err != nil {
		return err
	}
	if run.State != store.RunFailed && run.State != store.RunCancelled {
		return server.Errorf(server.CodeConflict, "run %s is %s; only a failed or cancelled run can be retried", run.ID, run.State)
	}
	p, v, err := a.versionOfRun(ctx, run)
	if err != nil {
		return err
	}
	if p == nil {
		return server.Errorf(server.CodeConflict, "run %s was not made from a pushed version of %s/%s, so this server cannot run it again", run.ID, run.Namespace, run.Pipeline)
	}
	ok, why, err := a.d.Access.RunnableOnSchedule(ctx, v)
	if err != nil {
		return err
	}
	if !ok {
		return server.Errorf(server.CodeConflict, "run %s cannot be retried: %s", run.ID, why)
	}
	ev := event(r, c, "run.retry", "run:"+run.ID, map[string]string{"version": strconv.Itoa(v.Number)})
	now := a.d.Clock.Now()
	err = audit.Do(ctx, a.d.Store, ev, func(tx store.Store) error {
		trs, err := tx.ListTaskRuns(ctx, run.ID)
		if err != nil {
			return err
		}
		for _, tr := range trs {
			switch tr.State {
			case store.TaskFailed, store.TaskCancelled, store.TaskSkipped:
				if _, err := tx.SetTaskState(ctx, store.SetTaskState{RunID: run.ID, Task: tr.Task, To: store.TaskPending, At: now,
					From: []store.TaskState{tr.State}, Error: "retry requested by " + c.Principal.Actor}); err != nil {
					return err
				}
			}
		}
		queued, err := tx.SetRunState(ctx, store.SetRunState{RunID: run.ID, From: []store.RunState{run.State}, To: store.RunQueued, At: now})
		if err == nil {
			run = queued
		}
		return err
	})
	a.checkpoint(ctx)
	if errors.Is(err, store.ErrConflict) {
		return server.Errorf(server.CodeConflict, "run %s changed meanwhile; read it again", run.ID)
	}
	if err != nil {
		return fmt.Errorf("retrying run %s: %w", run.ID, err)
	}
	a.execute(eng, p, run.ID)
	return a.writeRun(ctx, w, http.StatusAccepted, run)
}

// execute drives a run in the background under the server's work context.
func (a *API) execute(eng Engine, p *pipeline.Pipeline, runID string) {
	a.d.Go(func(ctx context.Context) {
		_, err := eng.Execute(ctx, p, runID)
		switch {
		case errors.Is(err, engine.ErrRunActive):
			// The scheduler took the queued run up first: it is running.
			a.d.Logger.Info("run already executing", "run", runID)
		case err != nil:
			a.d.Logger.Error("executing run", "run", runID, "error", err)
		}
	})
}

// MarkRequest sets the state of a task of a finished run by hand
// (POST /api/v1/runs/{id}/tasks/{task}/mark).
type MarkRequest struct {
	// State is "success" or "failed".
	State string `json:"state"`
	// Reason is recorded as the task's error (shown when it is marked
	// failed) and in the audit log.
	Reason string `json:"reason,omitempty"`
}

// markTask records a task of a finished run as success or failed: an
// operator's decision that a failure does not matter (success, so a retry
// goes on past it) or that a result must not be trusted (failed, so a
// retry runs it again). Running runs are refused: the engine owns their
// tasks. Attempts are not changed; the mark is in the audit log.
func (a *API) markTask(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req MarkRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	to := store.TaskState(req.State)
	if to != store.TaskSuccess && to != store.TaskFailed {
		return server.Errorf(server.CodeInvalid, "state: want success or failed, got %q", req.State)
	}
	run, tr, err := a.loadTask(r)
	if err != nil {
		return err
	}
	name := tr.Task
	if !run.State.Done() {
		return server.Errorf(server.CodeConflict, "run %s is %s; tasks are marked only once the run has ended", run.ID, run.State)
	}
	if tr.State == to {
		return WriteJSON(w, http.StatusOK, taskRunOf(tr))
	}
	reason := req.Reason
	if reason == "" {
		reason = "marked " + string(to) + " by " + c.Principal.Actor
	}
	ev := event(r, c, "run.mark", "run:"+run.ID, map[string]string{"task": name, "from": string(tr.State), "to": string(to), "reason": reason})
	ctx := r.Context()
	err = audit.Do(ctx, a.d.Store, ev, func(tx store.Store) error {
		marked, err := tx.SetTaskState(ctx, store.SetTaskState{RunID: run.ID, Task: name, To: to, At: a.d.Clock.Now(), Error: reason,
			From: []store.TaskState{store.TaskSuccess, store.TaskFailed, store.TaskSkipped, store.TaskCancelled}})
		if err == nil || errors.Is(err, store.ErrConflict) {
			tr = marked // on conflict, the task as it is
		}
		return err
	})
	a.checkpoint(ctx)
	if errors.Is(err, store.ErrConflict) {
		return server.Errorf(server.CodeConflict, "task %s of run %s is %s and cannot be marked", name, run.ID, tr.State)
	}
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, taskRunOf(tr))
}

// Attempt is one attempt of a task.
type Attempt struct {
	Number          int       `json:"number"`
	Outcome         string    `json:"outcome"`
	StartedAt       time.Time `json:"started_at"`
	EndedAt         time.Time `json:"ended_at,omitzero"`
	ExitCode        *int      `json:"exit_code,omitempty"`
	Error           string    `json:"error,omitempty"`
	RowsIn          int64     `json:"rows_in"`
	RowsOut         int64     `json:"rows_out"`
	RowsQuarantined int64     `json:"rows_quarantined"`
	Output          string    `json:"output,omitempty"`
	// HasLog is false when the attempt wrote nothing to its log.
	HasLog bool `json:"has_log"`
}

// loadTask reads the run and task of the path: not_found for either.
func (a *API) loadTask(r *http.Request) (store.Run, store.TaskRun, error) {
	run, err := a.loadRun(r)
	if err != nil {
		return run, store.TaskRun{}, err
	}
	name := r.PathValue("task")
	tr, err := a.d.Store.GetTaskRun(r.Context(), run.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return run, tr, server.Errorf(server.CodeNotFound, "run %s has no task %q", run.ID, name)
	}
	return run, tr, err
}

// listAttempts lists a task's attempts, oldest first, in one page: their
// number is bounded by the task's retries.
func (a *API) listAttempts(w http.ResponseWriter, r *http.Request, _ *Call) error {
	run, tr, err := a.loadTask(r)
	if err != nil {
		return err
	}
	atts, err := a.d.Store.ListAttempts(r.Context(), run.ID, tr.Task)
	if err != nil {
		return err
	}
	items := make([]Attempt, 0, len(atts))
	for _, at := range atts {
		items = append(items, Attempt{Number: at.Number, Outcome: string(at.Outcome), StartedAt: at.StartedAt.UTC(),
			EndedAt: at.EndedAt.UTC(), ExitCode: at.ExitCode, Error: at.Error, RowsIn: at.RowsIn, RowsOut: at.RowsOut,
			RowsQuarantined: at.RowsQuarantined, Output: at.Output, HasLog: a.logExists(at.LogPath)})
	}
	return WriteJSON(w, http.StatusOK, NewPage(items, ""))
}

func (a *API) logExists(rel string) bool {
	if rel == "" {
		return false
	}
	_, err := os.Lstat(filepath.Join(a.d.StateDir, rel))
	return err == nil
}

// logChunk is how much of a log is decrypted and sent between flushes.
const logChunk = 32 << 10

// taskLog streams the log of one attempt (?attempt=N, default the latest)
// as text/plain, decrypting it as it goes and flushing every chunk: a log
// is never held whole in memory. Secrets were redacted when the log was
// written. Only authenticated bytes are sent; a log cut short (its
// attempt still running, or killed) ends with a line saying where the
// verified text stops.
func (a *API) taskLog(w http.ResponseWriter, r *http.Request, _ *Call) error {
	if a.d.Keys == nil {
		return errors.New("the API was built without a keyring")
	}
	run, tr, err := a.loadTask(r)
	if err != nil {
		return err
	}
	number := tr.Attempts
	if s := r.URL.Query().Get("attempt"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return server.Errorf(server.CodeInvalid, "query parameter attempt: want a number from 1, got %q", s)
		}
		number = n
	}
	atts, err := a.d.Store.ListAttempts(r.Context(), run.ID, tr.Task)
	if err != nil {
		return err
	}
	var at *store.Attempt
	for i := range atts {
		if atts[i].Number == number {
			at = &atts[i]
		}
	}
	if at == nil {
		return server.Errorf(server.CodeNotFound, "task %s of run %s has no attempt %d", tr.Task, run.ID, number)
	}
	var src io.Reader
	if at.LogPath != "" {
		f, err := os.Open(filepath.Join(a.d.StateDir, at.LogPath))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("opening log %s: %w", at.LogPath, err)
		default:
			defer f.Close()
			if src, err = a.d.Keys.DecryptReader(r.Context(), f, engine.LogAAD(at.LogPath)); err != nil {
				return fmt.Errorf("opening log %s: %w", at.LogPath, err)
			}
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Sluice-Attempt", strconv.Itoa(number))
	w.WriteHeader(http.StatusOK)
	if src == nil {
		return nil // never written: empty
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, logChunk)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return nil // the client went away
			}
			_ = rc.Flush()
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			a.d.Logger.Warn("task log ends early", "log", at.LogPath, "error", rerr)
			fmt.Fprintf(w, "\n[sluice: the log ends here: the rest is missing or could not be verified (its attempt is running or was interrupted)]\n")
			return nil
		}
	}
}
