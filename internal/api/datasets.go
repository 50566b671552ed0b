package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/quality"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// datasetRoutes are the dataset endpoints. Datasets are the artifacts
// tasks write: reading their metadata needs dataset.read_masked in the
// run's namespace, like reading their rows masked; raw rows need
// dataset.read_raw on top.
func (a *API) datasetRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/runs/{id}/datasets", Summary: "the datasets of a run",
			Rule: Need(access.DatasetReadMasked, OfRun(access.ResDataset)), Handle: a.runDatasets},
		{Method: http.MethodGet, Pattern: Prefix + "/datasets/{id}", Summary: "a dataset's metadata, schema, lineage and quality",
			Rule: Need(access.DatasetReadMasked, OfDataset(access.ResDataset)), Handle: a.getDataset},
		{Method: http.MethodGet, Pattern: Prefix + "/datasets/{id}/rows", Summary: "read a dataset's first rows",
			Rule: Need(access.DatasetReadMasked, OfDataset(access.ResDataset)), Handle: a.datasetRows},
	}
}

// OfDataset names a resource of type t for the dataset (artifact) in the
// path's {id} wildcard, in the namespace of the run that wrote it. An
// unknown dataset is decided with no namespace, so only a global binding
// learns that it does not exist.
func OfDataset(t access.ResourceType) func(r *http.Request, a *API) (access.Resource, error) {
	return func(r *http.Request, a *API) (access.Resource, error) {
		id := r.PathValue("id")
		res := access.Resource{Type: t, Name: id}
		art, err := a.d.Store.GetArtifact(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("reading dataset %s: %w", id, err)
		}
		run, err := a.d.Store.GetRun(r.Context(), art.RunID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return res, fmt.Errorf("reading run %s: %w", art.RunID, err)
		default:
			res.Namespace = run.Namespace
		}
		return res, nil
	}
}

// Column is one field of a dataset's schema.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Dataset describes a dataset a task wrote.
type Dataset struct {
	ID        string `json:"id"`
	RunID     string `json:"run_id"`
	Namespace string `json:"namespace"`
	Pipeline  string `json:"pipeline"`
	Task      string `json:"task"`
	Attempt   int    `json:"attempt"`
	// Kind is "output" (what downstream tasks read) or "quarantine"
	// (records that failed a quality check).
	Kind        string    `json:"kind"`
	Format      string    `json:"format"`
	Schema      []Column  `json:"schema"`
	Rows        int64     `json:"rows"`
	Bytes       int64     `json:"bytes"`
	SHA256      string    `json:"sha256"`
	PlainSHA256 string    `json:"plain_sha256,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// Classification is the pipeline's, where the run's version is known.
	Classification string `json:"classification,omitempty"`
	// PIIColumns are the columns the task declares as personal data.
	PIIColumns []string `json:"pii_columns,omitempty"`
	// Parents are the datasets the task read (the outputs of the tasks it
	// needs, in the same run): the dataset's lineage one step up.
	Parents []string `json:"parents"`
	// Quality is the outcome of the task's data-quality checks in the
	// attempt that wrote the dataset.
	Quality []CheckResult `json:"quality"`
}

// CheckResult is the outcome of one data-quality check.
type CheckResult struct {
	Name       string        `json:"name"`
	Kind       string        `json:"kind"`
	Column     string        `json:"column,omitempty"`
	Severity   string        `json:"severity"`
	Checked    int64         `json:"checked"`
	Failing    int64         `json:"failing"`
	FailingPct float64       `json:"failing_pct"`
	Mostly     float64       `json:"mostly"`
	Passed     bool          `json:"passed"`
	Detail     string        `json:"detail,omitempty"`
	Samples    []CheckSample `json:"samples"`
}

// CheckSample is a failing record of a check, its value masked.
type CheckSample struct {
	Pos   string `json:"pos"`
	Value string `json:"value,omitempty"`
}

// runContext is what describing a run's datasets needs, read once per
// request.
type runContext struct {
	run    store.Run
	p      *pipeline.Pipeline // nil when the run's version is not stored
	tasks  map[string]store.TaskRun
	checks []store.CheckResult
}

func (a *API) loadRunContext(ctx context.Context, run store.Run) (*runContext, error) {
	rc := &runContext{run: run, tasks: map[string]store.TaskRun{}}
	p, _, err := a.versionOfRun(ctx, run)
	if err != nil {
		// Metadata stays readable when the version no longer parses;
		// only classification and lineage are then unknown.
		a.d.Logger.Warn("reading the version of a run", "run", run.ID, "error", err)
	}
	rc.p = p
	trs, err := a.d.Store.ListTaskRuns(ctx, run.ID)
	if err != nil {
		return nil, fmt.Errorf("listing tasks of run %s: %w", run.ID, err)
	}
	for _, tr := range trs {
		rc.tasks[tr.Task] = tr
	}
	if rc.checks, err = a.d.Store.ListCheckResults(ctx, run.ID); err != nil {
		return nil, fmt.Errorf("listing check results of run %s: %w", run.ID, err)
	}
	return rc, nil
}

func (rc *runContext) task(name string) *pipeline.Task {
	if rc.p == nil {
		return nil
	}
	for _, t := range rc.p.Tasks {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (rc *runContext) dataset(art store.Artifact) Dataset {
	d := Dataset{ID: art.ID, RunID: art.RunID, Namespace: rc.run.Namespace, Pipeline: rc.run.Pipeline, Task: art.Task,
		Attempt: art.Attempt, Kind: art.Kind, Format: art.Format, Schema: []Column{}, Rows: art.Rows, Bytes: art.Bytes,
		SHA256: art.SHA256, PlainSHA256: art.PlainSHA256, CreatedAt: art.Created.UTC(), Parents: []string{}, Quality: []CheckResult{}}
	if s, err := artifact.DecodeSchema(art.Schema); err == nil {
		for _, f := range s.Fields {
			d.Schema = append(d.Schema, Column{Name: f.Name, Type: f.Type.String()})
		}
	}
	if rc.p != nil {
		d.Classification = string(rc.p.Classification)
	}
	if t := rc.task(art.Task); t != nil {
		for c := range t.PIIColumns {
			d.PIIColumns = append(d.PIIColumns, c)
		}
		slices.Sort(d.PIIColumns)
		ups := slices.Clone(t.Needs)
		if t.Input != "" && !slices.Contains(ups, t.Input) {
			ups = append(ups, t.Input)
		}
		for _, up := range ups {
			if tr, ok := rc.tasks[up]; ok && tr.Output != "" {
				d.Parents = append(d.Parents, tr.Output)
			}
		}
	}
	for _, cr := range rc.checks {
		if cr.Task != art.Task || cr.Attempt != art.Attempt {
			continue
		}
		out := CheckResult{Name: cr.Name, Kind: cr.Kind, Column: cr.Column, Severity: cr.Severity, Checked: cr.Checked,
			Failing: cr.Failing, FailingPct: cr.FailingPct, Mostly: cr.Mostly, Passed: cr.Passed, Detail: cr.Detail,
			Samples: []CheckSample{}}
		for _, s := range cr.Samples {
			out.Samples = append(out.Samples, CheckSample{Pos: s.Pos, Value: s.Value})
		}
		d.Quality = append(d.Quality, out)
	}
	return d
}

// runDatasets lists the datasets of a run in creation order, in one page
// (a run has one output per data task and attempt, and a quarantine per
// task that quarantined records).
func (a *API) runDatasets(w http.ResponseWriter, r *http.Request, _ *Call) error {
	run, err := a.loadRun(r)
	if err != nil {
		return err
	}
	arts, err := a.d.Store.ListArtifacts(r.Context(), run.ID)
	if err != nil {
		return fmt.Errorf("listing datasets of run %s: %w", run.ID, err)
	}
	rc, err := a.loadRunContext(r.Context(), run)
	if err != nil {
		return err
	}
	items := make([]Dataset, 0, len(arts))
	for _, art := range arts {
		items = append(items, rc.dataset(art))
	}
	return WriteJSON(w, http.StatusOK, NewPage(items, ""))
}

// loadDataset reads the dataset of the path's {id} and its run.
func (a *API) loadDataset(r *http.Request) (store.Artifact, store.Run, error) {
	id := r.PathValue("id")
	art, err := a.d.Store.GetArtifact(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return art, store.Run{}, server.Errorf(server.CodeNotFound, "no dataset %q", id)
	}
	if err != nil {
		return art, store.Run{}, err
	}
	run, err := a.d.Store.GetRun(r.Context(), art.RunID)
	if errors.Is(err, store.ErrNotFound) {
		return art, run, server.Errorf(server.CodeNotFound, "no dataset %q", id)
	}
	return art, run, err
}

func (a *API) getDataset(w http.ResponseWriter, r *http.Request, _ *Call) error {
	art, run, err := a.loadDataset(r)
	if err != nil {
		return err
	}
	rc, err := a.loadRunContext(r.Context(), run)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, rc.dataset(art))
}

// Row limits of GET /datasets/{id}/rows.
const (
	defaultRows = 100
	maxRows     = 500
)

// DatasetRows are the first rows of a dataset.
type DatasetRows struct {
	Dataset string   `json:"dataset"`
	Columns []Column `json:"columns"`
	// Rows are the values in column order: strings, numbers, booleans,
	// timestamps as RFC 3339 strings, null.
	Rows [][]any `json:"rows"`
	// Masked is true when values were masked: MaskedColumns are the
	// columns whose values are shown as "ab***".
	Masked        bool     `json:"masked"`
	MaskedColumns []string `json:"masked_columns"`
	// Truncated is true when the dataset has more rows than were read.
	Truncated bool `json:"truncated"`
}

// datasetRows reads up to ?limit= rows (default 100, at most 500) of a
// dataset, as ReadDatasetRows describes.
func (a *API) datasetRows(w http.ResponseWriter, r *http.Request, c *Call) error {
	limit := defaultRows
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxRows {
			return server.Errorf(server.CodeInvalid, "query parameter limit: want a number from 1 to %d, got %q", maxRows, s)
		}
		limit = n
	}
	art, run, err := a.loadDataset(r)
	if err != nil {
		return err
	}
	out, err := a.ReadDatasetRows(r.Context(), c.Principal, art, run, limit, true)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, out)
}

// ReadDatasetRows reads the first limit rows of dataset art, written by
// run, after verifying its checksum, as p may see them. The caller has
// already checked dataset.read_masked on the dataset. What p sees depends
// on their permissions: with dataset.read_raw in the run's namespace, and
// when the caller asks for it with wantRaw, the values as stored (a
// privileged read: the decision is recorded in the audit log before a
// byte is read); otherwise every string column and every column the task
// declares as personal data is masked. Nothing records which undeclared
// columns hold personal data, so masking every string column is what
// keeps an undeclared email address from showing. The REST API always
// asks for raw values (a holder of dataset.read_raw gets them); the web
// UI asks only when the viewer chose to see them. Errors are
// *server.Error where the caller should see the reason.
func (a *API) ReadDatasetRows(ctx context.Context, p Principal, art store.Artifact, run store.Run, limit int, wantRaw bool) (DatasetRows, error) {
	if a.d.Keys == nil {
		return DatasetRows{}, errors.New("the API was built without a keyring")
	}
	if art.Format != artifact.Format {
		return DatasetRows{}, server.Errorf(server.CodeConflict, "dataset %s is in format %q, which the API does not read", art.ID, art.Format)
	}
	res := access.Resource{Type: access.ResDataset, Namespace: run.Namespace, Name: art.ID}
	raw := wantRaw && a.May(ctx, p, access.DatasetReadRaw, res)
	if raw {
		if err := a.Authorize(ctx, p, access.DatasetReadRaw, res); err != nil {
			return DatasetRows{}, err
		}
	}
	rc, err := a.loadRunContext(ctx, run)
	if err != nil {
		return DatasetRows{}, err
	}
	declared := map[string]bool{}
	if t := rc.task(art.Task); t != nil {
		for col := range t.PIIColumns {
			declared[col] = true
		}
	}
	rd, err := artifact.Open(filepath.Join(a.d.StateDir, art.Path), art.SHA256, artifact.Options{
		Unwrap: a.d.Keys.Unwrapper(ctx, artifact.AAD(art.ID)), PlainSHA256: art.PlainSHA256,
	})
	if errors.Is(err, artifact.ErrIntegrity) {
		return DatasetRows{}, &server.Error{Code: server.CodeConflict, Message: "dataset " + art.ID + " failed its integrity check: its file is not what the task wrote", Err: err}
	}
	if err != nil {
		return DatasetRows{}, fmt.Errorf("opening dataset %s: %w", art.ID, err)
	}
	defer rd.Close()
	schema := rd.Schema()
	out := DatasetRows{Dataset: art.ID, Columns: []Column{}, Rows: [][]any{}, Masked: !raw, MaskedColumns: []string{}}
	mask := make([]bool, len(schema.Fields))
	for i, f := range schema.Fields {
		out.Columns = append(out.Columns, Column{Name: f.Name, Type: f.Type.String()})
		if !raw && (f.Type == data.String || declared[f.Name]) {
			mask[i] = true
			out.MaskedColumns = append(out.MaskedColumns, f.Name)
		}
	}
	for len(out.Rows) < limit {
		b, err := rd.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if errors.Is(err, artifact.ErrIntegrity) {
			return DatasetRows{}, &server.Error{Code: server.CodeConflict, Message: "dataset " + art.ID + " failed its integrity check", Err: err}
		}
		if err != nil {
			return DatasetRows{}, fmt.Errorf("reading dataset %s: %w", art.ID, err)
		}
		for i := 0; i < b.Len; i++ {
			if len(out.Rows) == limit {
				out.Truncated = true
				break
			}
			row := make([]any, len(b.Cols))
			for j := range b.Cols {
				row[j] = cellOf(&b.Cols[j], i, mask[j])
			}
			out.Rows = append(out.Rows, row)
		}
	}
	if !out.Truncated && int64(len(out.Rows)) < art.Rows && len(out.Rows) == limit {
		out.Truncated = true
	}
	return out, nil
}

// cellOf is the JSON value of row i of col, masked when mask is set.
func cellOf(col *data.Column, i int, mask bool) any {
	if col.IsNull(i) {
		return nil
	}
	var v any
	switch col.Type {
	case data.String:
		v = col.Strings[i]
	case data.Int:
		v = col.Ints[i]
	case data.Float:
		f := col.Floats[i]
		if math.IsNaN(f) || math.IsInf(f, 0) {
			v = strconv.FormatFloat(f, 'g', -1, 64) // JSON has no NaN or infinity
		} else {
			v = f
		}
	case data.Bool:
		v = col.Bools[i]
	case data.Timestamp:
		v = col.Times[i].UTC().Format(time.RFC3339Nano)
	}
	if mask {
		return quality.Mask(fmt.Sprint(v))
	}
	return v
}
