package web

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// gridRuns is how many runs the grid shows, newest on the right.
const gridRuns = 25

// gridCol is one run in the grid's header.
type gridCol struct {
	ID, Short, Href, Date, State, Class, Mark string
}

// gridCell is one task run. Href, Title and Class are computed once here
// so the template only copies strings: the grid is the largest page.
type gridCell struct {
	Href, Title, Class, Mark, State string
}

type gridRow struct {
	Task  string
	Cells []gridCell
}

type gridView struct {
	Namespace, Name string
	Runs            []gridCol
	Rows            []gridRow
}

// buildGrid lays runs (newest first, as the store lists them) out as
// columns, oldest on the left, and tasks as rows: the tasks of the newest
// run in its order, then tasks only older runs had.
func buildGrid(ns, name string, runs []store.Run, tasks map[string][]store.TaskRun) gridView {
	g := gridView{Namespace: ns, Name: name}
	cols := slices.Clone(runs)
	slices.Reverse(cols)
	var order []string
	seen := map[string]int{}
	for i := len(cols) - 1; i >= 0; i-- {
		for _, tr := range tasks[cols[i].ID] {
			if _, ok := seen[tr.Task]; !ok {
				seen[tr.Task] = len(order)
				order = append(order, tr.Task)
			}
		}
	}
	g.Rows = make([]gridRow, len(order))
	cells := make([]gridCell, len(order)*len(cols))
	for i, t := range order {
		g.Rows[i] = gridRow{Task: t, Cells: cells[i*len(cols) : (i+1)*len(cols) : (i+1)*len(cols)]}
	}
	for c, run := range cols {
		href := "/runs/" + pathEsc(run.ID)
		g.Runs = append(g.Runs, gridCol{ID: run.ID, Short: shortID(run.ID), Href: href, Date: run.LogicalDate,
			State: string(run.State), Class: stateClass(string(run.State)), Mark: stateMark(string(run.State))})
		for _, tr := range tasks[run.ID] {
			st := string(tr.State)
			g.Rows[seen[tr.Task]].Cells[c] = gridCell{Href: href + "/tasks/" + pathEsc(tr.Task),
				Title: tr.Task + " in run " + run.ID + " (" + run.LogicalDate + "): " + st,
				Class: stateClass(st), Mark: stateMark(st), State: st}
		}
	}
	for i := range cells {
		if cells[i].Class == "" {
			cells[i].Class = "s-none"
		}
	}
	return g
}

func shortID(id string) string {
	if len(id) > 10 {
		return id[len(id)-10:]
	}
	return id
}

// runsGrid shows the last runs of a pipeline against its tasks.
func (u *UI) runsGrid(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if err := u.authorize(ctx, v, access.RunRead, runRes(ns, name)); err != nil {
		return err
	}
	runs, err := u.d.Store.ListRuns(ctx, store.RunFilter{Namespace: ns, Pipeline: name, Limit: gridRuns})
	if err != nil {
		return err
	}
	tasks := make(map[string][]store.TaskRun, len(runs))
	for _, run := range runs {
		if tasks[run.ID], err = u.d.Store.ListTaskRuns(ctx, run.ID); err != nil {
			return err
		}
	}
	u.render(w, r, http.StatusOK, "grid", v, "Runs of "+ns+"/"+name, buildGrid(ns, name, runs, tasks))
	return nil
}

// loadRun reads a run and checks perm on it (in its namespace). An
// unknown run is checked without a namespace, so only a global binding
// learns that it does not exist.
func (u *UI) loadRun(ctx context.Context, v *viewer, perm access.Permission, id string) (store.Run, error) {
	run, err := u.d.Store.GetRun(ctx, id)
	res := access.Resource{Type: access.ResRun, Name: id}
	if perm == access.LogRead {
		res.Type = access.ResLog
	}
	if err == nil {
		res.Namespace = run.Namespace
	} else if !isNotFound(err) {
		return run, err
	}
	if aerr := u.authorize(ctx, v, perm, res); aerr != nil {
		return run, aerr
	}
	return run, notFoundIf(err)
}

// runPipeline parses the version a run ran, found by its hash among the
// pipeline's versions; nil when the run came from a file never pushed.
func (u *UI) runPipeline(ctx context.Context, run store.Run) *pipeline.Pipeline {
	vs, err := u.d.Store.ListPipelineVersions(ctx, run.Namespace, run.Pipeline)
	if err != nil {
		return nil
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].Hash != run.PipelineHash {
			continue
		}
		pv, err := u.d.Store.GetPipelineVersion(ctx, run.Namespace, run.Pipeline, vs[i].Number)
		if err != nil {
			return nil
		}
		p, err := pipeline.Parse(run.Pipeline+".yaml", pv.Content, u.d.Parse)
		if err != nil {
			return nil
		}
		return p
	}
	return nil
}

// loadRunTasks reads the run id, for a viewer with run.read, and its task
// runs.
func (u *UI) loadRunTasks(ctx context.Context, v *viewer, id string) (store.Run, []store.TaskRun, error) {
	run, err := u.loadRun(ctx, v, access.RunRead, id)
	if err != nil {
		return run, nil, err
	}
	trs, err := u.d.Store.ListTaskRuns(ctx, run.ID)
	return run, trs, err
}

type runView struct {
	Run         store.Run
	Tasks       []store.TaskRun
	DAG         template.HTML
	CanDatasets bool
	CanLogs     bool
}

// runPage shows a run: its state, a DAG coloured by task state, and the
// task runs. The page script polls status.json while the run is going.
func (u *UI) runPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	run, trs, err := u.loadRunTasks(ctx, v, r.PathValue("id"))
	if err != nil {
		return err
	}
	view := runView{Run: run, Tasks: trs,
		CanDatasets: u.may(ctx, v, access.DatasetReadMasked, access.Resource{Type: access.ResDataset, Namespace: run.Namespace, Name: run.Pipeline}),
		CanLogs:     u.may(ctx, v, access.LogRead, access.Resource{Type: access.ResLog, Namespace: run.Namespace, Name: run.ID})}
	if p := u.runPipeline(ctx, run); p != nil {
		states := make(map[string]store.TaskState, len(trs))
		for _, tr := range trs {
			states[tr.Task] = tr.State
		}
		view.DAG = dagSVG(p, states)
	}
	u.render(w, r, http.StatusOK, "run", v, "Run "+run.ID, view)
	return nil
}

// statusJSON is the body of status.json, what the page script needs.
type statusJSON struct {
	State string       `json:"state"`
	Class string       `json:"class"`
	Done  bool         `json:"done"`
	Tasks []taskStatus `json:"tasks"`
}

type taskStatus struct {
	Task     string `json:"task"`
	State    string `json:"state"`
	Class    string `json:"class"`
	Mark     string `json:"mark"`
	Attempts int    `json:"attempts"`
}

// runStatus answers the page script's poll with the run's and its tasks'
// states.
func (u *UI) runStatus(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	run, trs, err := u.loadRunTasks(ctx, v, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := statusJSON{State: string(run.State), Class: stateClass(string(run.State)), Done: run.State.Done(), Tasks: []taskStatus{}}
	for _, tr := range trs {
		st := string(tr.State)
		out.Tasks = append(out.Tasks, taskStatus{Task: tr.Task, State: st, Class: stateClass(st), Mark: stateMark(st), Attempts: tr.Attempts})
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

type attemptView struct {
	store.Attempt
	Log string
}

type taskView struct {
	Run      store.Run
	Task     store.TaskRun
	Attempts []attemptView
	CanLogs  bool
}

// taskPage shows a task run's attempts and, for viewers with log.read,
// each attempt's log.
func (u *UI) taskPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	run, err := u.loadRun(ctx, v, access.RunRead, r.PathValue("id"))
	if err != nil {
		return err
	}
	tr, err := u.d.Store.GetTaskRun(ctx, run.ID, r.PathValue("task"))
	if err != nil {
		return notFoundIf(err)
	}
	atts, err := u.d.Store.ListAttempts(ctx, run.ID, tr.Task)
	if err != nil {
		return err
	}
	view := taskView{Run: run, Task: tr,
		CanLogs: u.may(ctx, v, access.LogRead, access.Resource{Type: access.ResLog, Namespace: run.Namespace, Name: run.ID})}
	for i := len(atts) - 1; i >= 0; i-- {
		av := attemptView{Attempt: atts[i]}
		if view.CanLogs {
			av.Log = u.readLog(ctx, atts[i].LogPath)
		}
		view.Attempts = append(view.Attempts, av)
	}
	u.render(w, r, http.StatusOK, "task", v, tr.Task+" in run "+run.ID, view)
	return nil
}
