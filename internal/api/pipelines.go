package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/schedule"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// pipelineRoutes are the pipeline endpoints.
func (a *API) pipelineRoutes() []Route {
	const one = Prefix + "/pipelines/{namespace}/{name}"
	pipe := InNamespace(access.ResPipeline)
	runs := InNamespace(access.ResRun)
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/pipelines", Summary: "list pipelines",
			Rule: Filtered(access.PipelineRead), Handle: a.listPipelines},
		{Method: http.MethodGet, Pattern: one, Summary: "a pipeline",
			Rule: Need(access.PipelineRead, pipe), Handle: a.getPipeline},
		{Method: http.MethodGet, Pattern: one + "/versions", Summary: "list a pipeline's versions, newest first",
			Rule: Need(access.PipelineRead, pipe), Handle: a.listVersions},
		{Method: http.MethodPost, Pattern: one + "/versions", Summary: "push a pipeline file as the next version",
			Rule: Need(access.PipelineWrite, pipe), Handle: a.pushVersion},
		{Method: http.MethodGet, Pattern: one + "/versions/{number}", Summary: "a version with its content and diff",
			Rule: Need(access.PipelineRead, pipe), Handle: a.getVersion},
		{Method: http.MethodPost, Pattern: one + "/versions/{number}/approve", Summary: "approve a version",
			Rule: Need(access.PipelineApprove, pipe), Handle: a.approveVersion},
		{Method: http.MethodPost, Pattern: one + "/pause", Summary: "pause a pipeline's schedule",
			Rule: Need(access.RunControl, runs), Handle: a.pauser(true)},
		{Method: http.MethodPost, Pattern: one + "/resume", Summary: "resume a pipeline's schedule",
			Rule: Need(access.RunControl, runs), Handle: a.pauser(false)},
		{Method: http.MethodPost, Pattern: one + "/runs", Summary: "trigger a run",
			Rule: Need(access.RunTrigger, runs), Handle: a.triggerRun},
	}
}

// Pipeline is a pipeline as the server knows it: from its pushed versions
// and its schedule.
type Pipeline struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// LatestVersion is the newest version's number; ApprovedVersion the
	// newest approved one (0: none).
	LatestVersion int `json:"latest_version"`
	// Owner is who pushed the first version: the pipeline's creator.
	Owner           string `json:"owner"`
	ApprovedVersion int    `json:"approved_version"`
	Protected       bool   `json:"protected"`
	// RunnableVersion is what a trigger or the schedule runs: the newest
	// version, or in a protected namespace the newest approved one. 0 when
	// none may run; NotRunnable says why.
	RunnableVersion int    `json:"runnable_version"`
	NotRunnable     string `json:"not_runnable,omitempty"`
	// Schedule, Classification, Description and Tasks are those of the
	// runnable version (of the latest when none may run).
	Schedule       string   `json:"schedule,omitempty"`
	Classification string   `json:"classification,omitempty"`
	Description    string   `json:"description,omitempty"`
	Tasks          []string `json:"tasks,omitempty"`
	Paused         bool     `json:"paused"`
	// PausedBy names who paused it ("namespace alice" when the whole
	// namespace is paused).
	PausedBy string `json:"paused_by,omitempty"`
	// LastRuns are the newest runs, newest first (at most five).
	LastRuns []RunBrief `json:"last_runs"`
}

// RunBrief is a run in a pipeline's summary.
type RunBrief struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`
	LogicalDate string    `json:"logical_date"`
	CreatedAt   time.Time `json:"created_at"`
}

// pipelineKey is the cursor of GET /pipelines.
type pipelineKey struct {
	Namespace string `json:"ns"`
	Name      string `json:"name"`
}

func (a *API) listPipelines(w http.ResponseWriter, r *http.Request, c *Call) error {
	var cur pipelineKey
	limit, err := Paging(r, &cur)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ns := r.URL.Query().Get("namespace")
	refs, err := a.d.Store.ListVersionedPipelines(ctx)
	if err != nil {
		return fmt.Errorf("listing pipelines: %w", err)
	}
	pauses, err := a.pauses(ctx)
	if err != nil {
		return err
	}
	var (
		items []Pipeline
		next  string
	)
	for _, ref := range refs {
		if ns != "" && ref.Namespace != ns {
			continue
		}
		if cur.Namespace != "" && (ref.Namespace < cur.Namespace || ref.Namespace == cur.Namespace && ref.Pipeline <= cur.Name) {
			continue
		}
		if !c.May(ctx, access.PipelineRead, access.Resource{Type: access.ResPipeline, Namespace: ref.Namespace, Name: ref.Pipeline}) {
			continue
		}
		if len(items) == limit {
			last := items[limit-1]
			next = Cursor(pipelineKey{Namespace: last.Namespace, Name: last.Name})
			break
		}
		p, err := a.pipelineOf(ctx, ref, pauses, false)
		if err != nil {
			return err
		}
		items = append(items, p)
	}
	return WriteJSON(w, http.StatusOK, NewPage(items, next))
}

func (a *API) pauses(ctx context.Context) (map[store.PipelineRef]store.SchedulePause, error) {
	ps, err := a.d.Store.ListSchedulePauses(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing pauses: %w", err)
	}
	m := make(map[store.PipelineRef]store.SchedulePause, len(ps))
	for _, p := range ps {
		m[store.PipelineRef{Namespace: p.Namespace, Pipeline: p.Pipeline}] = p
	}
	return m, nil
}

// pipelineOf summarises ref; not_found when it has no version.
func (a *API) pipelineOf(ctx context.Context, ref store.PipelineRef, pauses map[store.PipelineRef]store.SchedulePause, tasks bool) (Pipeline, error) {
	out := Pipeline{Namespace: ref.Namespace, Name: ref.Pipeline, LastRuns: []RunBrief{}}
	vs, err := a.d.Store.ListPipelineVersions(ctx, ref.Namespace, ref.Pipeline)
	if err != nil {
		return out, fmt.Errorf("listing versions of %s/%s: %w", ref.Namespace, ref.Pipeline, err)
	}
	if len(vs) == 0 {
		return out, server.Errorf(server.CodeNotFound, "no pipeline %s/%s: no version was pushed", ref.Namespace, ref.Pipeline)
	}
	out.LatestVersion, out.Owner = vs[len(vs)-1].Number, vs[0].Author
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].ApprovedBy != "" {
			out.ApprovedVersion = vs[i].Number
			break
		}
	}
	if out.Protected, err = a.d.Store.IsNamespaceProtected(ctx, ref.Namespace); err != nil {
		return out, err
	}
	if p, ok := pauses[store.PipelineRef{Namespace: ref.Namespace}]; ok {
		out.Paused, out.PausedBy = true, "namespace "+p.By
	} else if p, ok := pauses[ref]; ok {
		out.Paused, out.PausedBy = true, p.By
	}
	var p *pipeline.Pipeline
	if a.d.Scheduler != nil {
		var v access.Version
		p, v, err = a.d.Scheduler.Runnable(ctx, ref.Namespace, ref.Pipeline)
		switch {
		case errors.Is(err, schedule.ErrNotRunnable):
			out.NotRunnable = err.Error()
			p = nil
		case err != nil:
			// A stored version that no longer parses (a connector
			// removed since) must not hide the pipeline from its list;
			// the cause names server paths, so it goes to the log.
			a.d.Logger.Error("reading the runnable version", "pipeline", ref.Namespace+"/"+ref.Pipeline, "error", err)
			out.NotRunnable = schedule.UnparsableReason
			p = nil
		default:
			out.RunnableVersion = v.Number
		}
	}
	if p == nil {
		if p, err = a.parseVersion(ctx, ref, out.LatestVersion); err != nil {
			p = nil
		}
	}
	if p != nil {
		out.Schedule, out.Classification, out.Description = p.Schedule, string(p.Classification), p.Description
		if tasks {
			for _, t := range p.Tasks {
				out.Tasks = append(out.Tasks, t.Name)
			}
		}
	}
	runs, err := a.d.Store.ListRuns(ctx, store.RunFilter{Namespace: ref.Namespace, Pipeline: ref.Pipeline, Limit: 5})
	if err != nil {
		return out, err
	}
	for _, run := range runs {
		out.LastRuns = append(out.LastRuns, RunBrief{ID: run.ID, State: string(run.State), LogicalDate: run.LogicalDate, CreatedAt: run.CreatedAt.UTC()})
	}
	return out, nil
}

// workspaceFile is the path a stored version is parsed as, the same as
// the scheduler's: its relative paths resolve in the pipeline's workspace
// under the state directory.
func (a *API) workspaceFile(namespace, name string) string {
	return filepath.Join(a.d.StateDir, "pipelines", namespace, name, "pipeline.yaml")
}

// parseVersion parses stored version number of ref.
func (a *API) parseVersion(ctx context.Context, ref store.PipelineRef, number int) (*pipeline.Pipeline, error) {
	pv, err := a.d.Store.GetPipelineVersion(ctx, ref.Namespace, ref.Pipeline, number)
	if err != nil {
		return nil, err
	}
	return pipeline.Parse(a.workspaceFile(ref.Namespace, ref.Pipeline), pv.Content, pipeline.Options{})
}

// versionOfRun finds the stored version a run was made from (by its
// content hash) and parses it; a nil pipeline when the run was made from a
// file that was never pushed (`sluice run FILE`).
func (a *API) versionOfRun(ctx context.Context, run store.Run) (*pipeline.Pipeline, access.Version, error) {
	vs, err := a.d.Store.ListPipelineVersions(ctx, run.Namespace, run.Pipeline)
	if err != nil {
		return nil, access.Version{}, fmt.Errorf("listing versions of %s/%s: %w", run.Namespace, run.Pipeline, err)
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].Hash != run.PipelineHash {
			continue
		}
		ref := store.PipelineRef{Namespace: run.Namespace, Pipeline: run.Pipeline}
		p, err := a.parseVersion(ctx, ref, vs[i].Number)
		if err != nil {
			return nil, access.Version{}, fmt.Errorf("parsing %s/%s@%d: %w", run.Namespace, run.Pipeline, vs[i].Number, err)
		}
		return p, access.Version{Namespace: run.Namespace, Pipeline: run.Pipeline, Number: vs[i].Number, Hash: vs[i].Hash}, nil
	}
	return nil, access.Version{}, nil
}

func refOf(r *http.Request) store.PipelineRef {
	return store.PipelineRef{Namespace: r.PathValue("namespace"), Pipeline: r.PathValue("name")}
}

func (a *API) getPipeline(w http.ResponseWriter, r *http.Request, _ *Call) error {
	pauses, err := a.pauses(r.Context())
	if err != nil {
		return err
	}
	p, err := a.pipelineOf(r.Context(), refOf(r), pauses, true)
	if err != nil {
		return err
	}
	SetETag(w, strconv.Itoa(p.LatestVersion))
	return WriteJSON(w, http.StatusOK, p)
}

func versionOf(v access.Version, full bool) Version {
	out := Version{Namespace: v.Namespace, Pipeline: v.Pipeline, Number: v.Number, Hash: v.Hash, Author: v.Author,
		CreatedAt: v.CreatedAt.UTC(), Approved: v.Approved, Approver: v.Approver, ApprovedAt: v.ApprovedAt.UTC()}
	if full {
		out.Content, out.Diff = string(v.Content), v.Diff
	}
	return out
}

// versionKey is the cursor of a version listing: the last number shown.
type versionKey struct {
	Number int `json:"n"`
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request, c *Call) error {
	var cur versionKey
	limit, err := Paging(r, &cur)
	if err != nil {
		return err
	}
	ref := refOf(r)
	vs, err := a.d.Access.Versions(r.Context(), c.Principal.Subject, ref.Namespace, ref.Pipeline)
	if err != nil {
		return accessError(err)
	}
	if len(vs) == 0 {
		return server.Errorf(server.CodeNotFound, "no pipeline %s/%s: no version was pushed", ref.Namespace, ref.Pipeline)
	}
	var (
		items []Version
		next  string
	)
	for i := len(vs) - 1; i >= 0; i-- {
		if cur.Number > 0 && vs[i].Number >= cur.Number {
			continue
		}
		if len(items) == limit {
			next = Cursor(versionKey{Number: items[limit-1].Number})
			break
		}
		items = append(items, versionOf(vs[i], false))
	}
	return WriteJSON(w, http.StatusOK, NewPage(items, next))
}

// versionNumber reads the path's {number}.
func versionNumber(r *http.Request) (int, error) {
	s := r.PathValue("number")
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, server.Errorf(server.CodeInvalid, "version number: want a number from 1, got %q", s)
	}
	return n, nil
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request, _ *Call) error {
	n, err := versionNumber(r)
	if err != nil {
		return err
	}
	ref := refOf(r)
	pv, err := a.d.Store.GetPipelineVersion(r.Context(), ref.Namespace, ref.Pipeline, n)
	if errors.Is(err, store.ErrNotFound) {
		return server.Errorf(server.CodeNotFound, "pipeline %s/%s has no version %d", ref.Namespace, ref.Pipeline, n)
	}
	if err != nil {
		return err
	}
	v := access.Version{Namespace: pv.Namespace, Pipeline: pv.Pipeline, Number: pv.Number, Hash: pv.Hash, Content: pv.Content,
		Author: pv.Author, CreatedAt: pv.CreatedAt, Diff: pv.Diff, Approved: pv.ApprovedBy != "", Approver: pv.ApprovedBy, ApprovedAt: pv.ApprovedAt}
	SetETag(w, strconv.Itoa(v.Number))
	return WriteJSON(w, http.StatusOK, versionOf(v, true))
}

// pushFile is the file name parse errors of a pushed version are reported
// against: the pipeline's own file, not a path on the server.
const pushFile = "pipeline.yaml"

// pushVersion validates a pipeline file and stores it as the next
// version. The file must parse (with the server's connectors; every error
// is reported, each as pipeline.yaml:line:col) and name the pipeline of the
// path. With If-Match, the request goes ahead only if it names the latest
// version (its number, as GET sends it in ETag), so two people editing
// one pipeline do not overwrite each other unknowingly. Content identical
// to the latest version stores nothing and answers that version (200);
// a new version is 201.
func (a *API) pushVersion(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req PushRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	ref := refOf(r)
	if req.Content == "" {
		return server.Errorf(server.CodeInvalid, "content: the pipeline file is empty")
	}
	latest := 0
	if pv, err := a.d.Store.LatestPipelineVersion(r.Context(), ref.Namespace, ref.Pipeline); err == nil {
		latest = pv.Number
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := IfMatch(r, strconv.Itoa(latest)); err != nil {
		return err
	}
	p, err := pipeline.Parse(pushFile, []byte(req.Content), pipeline.Options{})
	if err != nil {
		return server.Errorf(server.CodeInvalid, "%s", err.Error())
	}
	if p.Namespace != ref.Namespace || p.Name != ref.Pipeline {
		return server.Errorf(server.CodeInvalid, "%s: the file defines pipeline %s/%s, not %s/%s", pushFile, p.Namespace, p.Name, ref.Namespace, ref.Pipeline)
	}
	v, err := a.d.Access.PushVersion(r.Context(), c.Principal.Subject, ref.Namespace, ref.Pipeline, []byte(req.Content))
	if err != nil {
		return accessError(err)
	}
	if a.d.Scheduler != nil {
		a.d.Scheduler.Wake()
	}
	status := http.StatusCreated
	if v.Number == latest {
		status = http.StatusOK
	}
	w.Header().Set("Location", fmt.Sprintf("%s/pipelines/%s/%s/versions/%d", Prefix, ref.Namespace, ref.Pipeline, v.Number))
	SetETag(w, strconv.Itoa(v.Number))
	return WriteJSON(w, status, versionOf(v, false))
}

// approveVersion approves a version. The access service enforces the
// two-person rule (an author cannot approve their own version: 403) and
// records the approval in the audit log; approving twice is a conflict.
func (a *API) approveVersion(w http.ResponseWriter, r *http.Request, c *Call) error {
	n, err := versionNumber(r)
	if err != nil {
		return err
	}
	ref := refOf(r)
	v, err := a.d.Access.Approve(r.Context(), c.Principal.Subject, ref.Namespace, ref.Pipeline, n)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return server.Errorf(server.CodeNotFound, "pipeline %s/%s has no version %d", ref.Namespace, ref.Pipeline, n)
	case errors.Is(err, store.ErrConflict):
		return server.Errorf(server.CodeConflict, "version %d of %s/%s is already approved", n, ref.Namespace, ref.Pipeline)
	case err != nil:
		return accessError(err)
	}
	if a.d.Scheduler != nil {
		a.d.Scheduler.Wake()
	}
	return WriteJSON(w, http.StatusOK, versionOf(v, false))
}

// accessError maps the access service's refusals to API errors: a
// segregation-of-duties rule is forbidden with the rule named, a denial
// forbidden, a malformed argument invalid.
func accessError(err error) error {
	var sod *access.SoDError
	switch {
	case errors.As(err, &sod):
		msg := "segregation of duties (" + sod.Rule + "): " + sod.Detail
		if sod.Rule == access.RuleSelfApproveVersion {
			msg += "; another person with pipeline.approve must approve it"
		}
		return &server.Error{Code: server.CodeForbidden, Message: msg, Err: err}
	case errors.Is(err, access.ErrDenied):
		return &server.Error{Code: server.CodeForbidden, Message: "not allowed", Err: err}
	case errors.Is(err, access.ErrInvalid):
		return &server.Error{Code: server.CodeInvalid, Message: "the request is not valid", Err: err}
	}
	return err
}

// pauser pauses or resumes the schedule of one pipeline. Pausing keeps
// the first pause's record; both are idempotent and audited.
func (a *API) pauser(pause bool) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		if a.d.Scheduler == nil {
			return errors.New("the API was built without a scheduler")
		}
		ref := refOf(r)
		ctx := r.Context()
		if _, err := a.d.Store.LatestPipelineVersion(ctx, ref.Namespace, ref.Pipeline); errors.Is(err, store.ErrNotFound) {
			return server.Errorf(server.CodeNotFound, "no pipeline %s/%s: no version was pushed", ref.Namespace, ref.Pipeline)
		} else if err != nil {
			return err
		}
		action := "schedule.resume"
		if pause {
			action = "schedule.pause"
		}
		ev := event(r, c, action, "pipeline:"+ref.Namespace+"/"+ref.Pipeline, nil)
		if err := a.recordFirst(ctx, ev); err != nil {
			return err
		}
		if err := a.d.Scheduler.SetPaused(ctx, ref.Namespace, ref.Pipeline, c.Principal.User.Username, pause); err != nil {
			a.recordFailed(ctx, ev, err)
			return fmt.Errorf("%s %s/%s: %w", action, ref.Namespace, ref.Pipeline, err)
		}
		pauses, err := a.pauses(ctx)
		if err != nil {
			return err
		}
		p, err := a.pipelineOf(ctx, ref, pauses, false)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, p)
	}
}

// triggerRun creates a manual run of the pipeline's runnable version (the
// newest; in a protected namespace the newest approved by a second
// person) and executes it in the background: the answer (202) is the run,
// queued; poll GET /runs/{id} for its progress. Parameters are resolved
// against the pipeline's declarations (400 naming the bad one); the
// logical date defaults to today in the schedule's zone.
func (a *API) triggerRun(w http.ResponseWriter, r *http.Request, c *Call) error {
	eng, err := a.engine()
	if err != nil {
		return err
	}
	if a.d.Scheduler == nil {
		return errors.New("the API was built without a scheduler")
	}
	var req TriggerRequest
	if r.ContentLength != 0 {
		if err := Decode(r, &req); err != nil {
			return err
		}
	}
	ref := refOf(r)
	ctx := r.Context()
	p, v, err := a.d.Scheduler.Runnable(ctx, ref.Namespace, ref.Pipeline)
	if errors.Is(err, schedule.ErrUnparsable) {
		a.d.Logger.Error("reading the runnable version", "pipeline", ref.Namespace+"/"+ref.Pipeline, "error", err)
		return server.Errorf(server.CodeConflict, "%s", schedule.UnparsableReason)
	}
	if errors.Is(err, schedule.ErrNotRunnable) {
		if _, lerr := a.d.Store.LatestPipelineVersion(ctx, ref.Namespace, ref.Pipeline); errors.Is(lerr, store.ErrNotFound) {
			return server.Errorf(server.CodeNotFound, "no pipeline %s/%s: no version was pushed", ref.Namespace, ref.Pipeline)
		}
		return &server.Error{Code: server.CodeConflict, Message: err.Error(), Err: err}
	}
	if err != nil {
		return err
	}
	params, err := p.ResolveParams(req.Params)
	if err != nil {
		return &server.Error{Code: server.CodeInvalid, Message: "params: " + err.Error(), Err: err}
	}
	date := req.LogicalDate
	if date == "" {
		date = a.d.Clock.Now().UTC().Format(time.DateOnly)
		if p.Schedule != "" {
			if cr, err := schedule.ParseCron(p.Schedule); err == nil {
				date = cr.LogicalDate(a.d.Clock.Now())
			}
		}
	} else if _, err := time.Parse(time.DateOnly, date); err != nil {
		return server.Errorf(server.CodeInvalid, "logical_date: %q is not YYYY-MM-DD", date)
	}
	if err := a.d.Scheduler.PrepareWorkspace(ref.Namespace, ref.Pipeline); err != nil {
		return err
	}
	// The run and the record of its trigger commit together.
	ev := event(r, c, "run.trigger", "pipeline:"+ref.Namespace+"/"+ref.Pipeline,
		map[string]string{"version": strconv.Itoa(v.Number), "logical_date": date})
	var run store.Run
	err = audit.Do(ctx, a.d.Store, ev, func(tx store.Store) error {
		var err error
		run, err = eng.CreateRunIn(ctx, tx, p, engine.RunRequest{LogicalDate: date, Params: params, Trigger: schedule.TriggerManual})
		return err
	})
	if err != nil {
		return fmt.Errorf("triggering %s/%s: %w", ref.Namespace, ref.Pipeline, err)
	}
	a.execute(eng, p, run.ID)
	w.Header().Set("Location", Prefix+"/runs/"+run.ID)
	return WriteJSON(w, http.StatusAccepted, a.runOf(run))
}
