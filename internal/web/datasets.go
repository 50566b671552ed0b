package web

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/store"
)

// datasetRowsShown is how many rows the rows view of a dataset shows.
const datasetRowsShown = 50

type datasetView struct {
	store.Artifact
	Parents []store.Artifact
	// Readable: the dataset is in the format the rows view reads (a
	// sink's record of where data went is not).
	Readable bool
}

type datasetsView struct {
	Run      store.Run
	Datasets []datasetView
	Checks   []store.CheckResult
	// Lineage draws the datasets and what each was made from.
	Lineage template.HTML
}

// datasetsPage lists the datasets a run wrote (schema, rows, checksums),
// their lineage (the outputs of the upstream tasks they were made from),
// drawn as a graph and listed as text, and the run's data-quality
// results, with a link to each readable dataset's rows.
func (u *UI) datasetsPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	run, err := u.loadRun(ctx, v, access.RunRead, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := u.authorize(ctx, v, access.DatasetReadMasked, access.Resource{Type: access.ResDataset, Namespace: run.Namespace, Name: run.Pipeline}); err != nil {
		return err
	}
	arts, err := u.d.Store.ListArtifacts(ctx, run.ID)
	if err != nil {
		return err
	}
	checks, err := u.d.Store.ListCheckResults(ctx, run.ID)
	if err != nil {
		return err
	}
	upstream := map[string][]string{}
	if p := u.runPipeline(ctx, run); p != nil {
		for _, t := range p.Tasks {
			up := slices.Clone(t.Needs)
			if t.Input != "" && !slices.Contains(up, t.Input) {
				up = append(up, t.Input)
			}
			upstream[t.Name] = up
		}
	}
	view := datasetsView{Run: run, Checks: checks}
	for _, a := range arts {
		dv := datasetView{Artifact: a, Readable: a.Format == artifact.Format}
		for _, b := range arts {
			if b.Kind == "output" && slices.Contains(upstream[a.Task], b.Task) {
				dv.Parents = append(dv.Parents, b)
			}
		}
		view.Datasets = append(view.Datasets, dv)
	}
	view.Lineage = lineageSVG(run, view.Datasets)
	u.render(w, r, http.StatusOK, "datasets", v, "Datasets of run "+run.ID, view)
	return nil
}

// lineageSVG draws a run's datasets as a graph: one box per dataset,
// named by the task that wrote it (with its kind and attempt below), an
// arrow from each dataset to those made from it. The dataset's id is in
// the box's tooltip and in the drawing's description.
func lineageSVG(run store.Run, ds []datasetView) template.HTML {
	gs := make([]graphNode, len(ds))
	for i, d := range ds {
		g := graphNode{id: d.ID, name: d.Task, sub: d.Kind + " · attempt " + strconv.Itoa(d.Attempt),
			title: fmt.Sprintf("%s: %s of %s, attempt %d, %d rows", d.ID, d.Kind, d.Task, d.Attempt, d.Rows),
			class: "k-" + d.Kind}
		for _, p := range d.Parents {
			g.needs = append(g.needs, p.ID)
		}
		gs[i] = g
	}
	return graphSVG("lineage", "Lineage of the datasets of run "+run.ID, "no dataset was made from another", gs)
}

// cellView is one value of the rows view.
type cellView struct {
	Text         string
	Null, Masked bool
}

type columnView struct {
	api.Column
	Masked bool
}

type rowsView struct {
	Run       store.Run
	Dataset   store.Artifact
	Columns   []columnView
	Rows      [][]cellView
	Shown     int
	Truncated bool
	// Raw: the values are shown as stored. CanRaw: the viewer may ask
	// for that (dataset.read_raw), so the page offers it.
	Raw, CanRaw bool
	Href        string
}

// datasetRowsPage shows the first rows of a dataset of the run, read
// and masked by api.ReadDatasetRows exactly as the REST API does: masked
// (every string column and every declared personal-data column) unless
// the viewer asked for raw values with ?raw=1 and holds dataset.read_raw,
// a privileged read recorded in the audit log before a byte is read. The
// raw view is never the default: a viewer who may see raw values gets a
// link to them. Asking for them without the permission is refused (and
// the refusal recorded), not quietly masked.
func (u *UI) datasetRowsPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	run, err := u.loadRun(ctx, v, access.RunRead, r.PathValue("id"))
	if err != nil {
		return err
	}
	id := r.PathValue("dataset")
	res := access.Resource{Type: access.ResDataset, Namespace: run.Namespace, Name: id}
	if err := u.authorize(ctx, v, access.DatasetReadMasked, res); err != nil {
		return err
	}
	art, err := u.d.Store.GetArtifact(ctx, id)
	if err != nil {
		return notFoundIf(err)
	}
	if art.RunID != run.ID {
		return errNotFound
	}
	wantRaw := r.URL.Query().Get("raw") == "1"
	view := rowsView{Run: run, Dataset: art, CanRaw: u.may(ctx, v, access.DatasetReadRaw, res),
		Href: "/runs/" + pathEsc(run.ID) + "/datasets/" + pathEsc(art.ID)}
	if wantRaw && !view.CanRaw {
		if err := u.authorize(ctx, v, access.DatasetReadRaw, res); err != nil {
			return err
		}
	}
	rows, err := u.d.API.ReadDatasetRows(ctx, v.P, art, run, datasetRowsShown, wantRaw)
	if err != nil {
		return err
	}
	view.Raw, view.Truncated, view.Shown = !rows.Masked, rows.Truncated, len(rows.Rows)
	masked := make([]bool, len(rows.Columns))
	for i, c := range rows.Columns {
		masked[i] = slices.Contains(rows.MaskedColumns, c.Name)
		view.Columns = append(view.Columns, columnView{Column: c, Masked: masked[i]})
	}
	view.Rows = make([][]cellView, len(rows.Rows))
	for i, row := range rows.Rows {
		cells := make([]cellView, len(row))
		for j, val := range row {
			if val == nil {
				cells[j] = cellView{Text: "null", Null: true}
				continue
			}
			cells[j] = cellView{Text: fmt.Sprint(val), Masked: j < len(masked) && masked[j]}
		}
		view.Rows[i] = cells
	}
	title := "Rows of " + art.ID
	u.render(w, r, http.StatusOK, "rows", v, title, view)
	return nil
}
