package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/schedule"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// recentRuns is how many runs the pipeline list shows per pipeline.
const recentRuns = 5

// maxPipelineBytes bounds a pushed pipeline file.
const maxPipelineBytes = 512 << 10

type pipelineRow struct {
	Namespace, Name string
	Schedule        string
	Classification  string
	// Owner is who pushed the first version: the pipeline's creator.
	Owner       string
	Paused      bool
	PausedBy    string
	Latest      int
	Approved    int // newest approved version, 0 if none
	Runnable    int // the version that runs; 0 if none may
	NotRunnable string
	Runs        []store.Run
}

type pipelinesView struct {
	Rows    []pipelineRow
	CanPush bool
}

func pipelineRes(ns, name string) access.Resource {
	return access.Resource{Type: access.ResPipeline, Namespace: ns, Name: name}
}

func runRes(ns, name string) access.Resource {
	return access.Resource{Type: access.ResRun, Namespace: ns, Name: name}
}

// pipelines lists the versioned pipelines the viewer may read.
func (u *UI) pipelines(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	sts, err := u.d.Scheduler.List(ctx)
	if err != nil {
		return err
	}
	view := pipelinesView{CanPush: u.mayPushSomewhere(ctx, v)}
	for _, st := range sts {
		if !u.may(ctx, v, access.PipelineRead, pipelineRes(st.Namespace, st.Pipeline)) {
			continue
		}
		row := pipelineRow{Namespace: st.Namespace, Name: st.Pipeline, Schedule: st.Schedule, Classification: st.Classification,
			Paused: st.Paused, PausedBy: st.PausedBy, Runnable: st.Version, NotRunnable: st.NotRunnable}
		vs, err := u.d.Store.ListPipelineVersions(ctx, st.Namespace, st.Pipeline)
		if err != nil {
			return err
		}
		for _, pv := range vs {
			if row.Owner == "" {
				row.Owner = pv.Author
			}
			row.Latest = pv.Number
			if pv.ApprovedBy != "" {
				row.Approved = pv.Number
			}
		}
		if u.may(ctx, v, access.RunRead, runRes(st.Namespace, st.Pipeline)) {
			if row.Runs, err = u.d.Store.ListRuns(ctx, store.RunFilter{Namespace: st.Namespace, Pipeline: st.Pipeline, Limit: recentRuns}); err != nil {
				return err
			}
		}
		view.Rows = append(view.Rows, row)
	}
	u.render(w, r, http.StatusOK, "pipelines", v, "Pipelines", view)
	return nil
}

// mayPushSomewhere reports whether the viewer holds pipeline.write
// globally or in a namespace one of their bindings names, which decides
// whether the list offers the push form.
func (u *UI) mayPushSomewhere(ctx context.Context, v *viewer) bool {
	if u.may(ctx, v, access.PipelineWrite, pipelineRes("", "")) {
		return true
	}
	bs, err := u.d.Store.ListBindings(ctx)
	if err != nil {
		return false
	}
	for _, b := range bs {
		if b.Namespace != "" && u.may(ctx, v, access.PipelineWrite, pipelineRes(b.Namespace, "")) {
			return true
		}
	}
	return false
}

type versionRow struct {
	store.PipelineVersion
	Current    bool
	CanApprove bool
}

type pipelineView struct {
	Namespace, Name string
	Versions        []versionRow
	Version         store.PipelineVersion
	DAG             template.HTML
	ParseError      string
	Schedule        string
	Runs            []store.Run
	CanTrigger      bool
	CanWrite        bool
	CanRuns         bool
	Runnable        string
	Push            pushView
}

// pipelinePage shows one pipeline: its DAG, versions with their diff and
// approval, recent runs, and the actions the viewer may take.
func (u *UI) pipelinePage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if err := u.authorize(ctx, v, access.PipelineRead, pipelineRes(ns, name)); err != nil {
		return err
	}
	vs, err := u.d.Store.ListPipelineVersions(ctx, ns, name)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return errNotFound
	}
	number := vs[len(vs)-1].Number
	if s := r.URL.Query().Get("version"); s != "" {
		if number, err = strconv.Atoi(s); err != nil {
			return errNotFound
		}
	}
	cur, err := u.d.Store.GetPipelineVersion(ctx, ns, name, number)
	if err != nil {
		return notFoundIf(err)
	}
	mayApprove := u.may(ctx, v, access.PipelineApprove, pipelineRes(ns, name))
	view := pipelineView{Namespace: ns, Name: name, Version: cur,
		Push:       pushView{Target: ns + "/" + name, CSRFToken: v.CSRF},
		CanTrigger: u.may(ctx, v, access.RunTrigger, runRes(ns, name)),
		CanWrite:   u.may(ctx, v, access.PipelineWrite, pipelineRes(ns, name)),
		CanRuns:    u.may(ctx, v, access.RunRead, runRes(ns, name)),
	}
	for i := len(vs) - 1; i >= 0; i-- {
		pv := vs[i]
		// The author may not approve their own version: the button is
		// left off rather than offered and refused.
		view.Versions = append(view.Versions, versionRow{PipelineVersion: pv, Current: pv.Number == number,
			CanApprove: mayApprove && pv.ApprovedBy == "" && pv.Author != v.P.User.Username})
	}
	p, err := pipeline.Parse(name+".yaml", cur.Content, u.d.Parse)
	if err != nil {
		view.ParseError = err.Error()
	} else {
		view.DAG, view.Schedule = dagSVG(p, nil), p.Schedule
	}
	if _, rv, err := u.d.Scheduler.Runnable(ctx, ns, name); err == nil {
		view.Runnable = fmt.Sprintf("version %d runs on schedule and when triggered", rv.Number)
	} else if errors.Is(err, schedule.ErrNotRunnable) {
		view.Runnable = "no version may run: " + err.Error()
	} else if errors.Is(err, schedule.ErrUnparsable) {
		server.Logger(ctx).Error("reading the runnable version", "pipeline", ns+"/"+name, "error", err)
		view.Runnable = schedule.UnparsableReason
	} else {
		return err
	}
	if view.CanRuns {
		if view.Runs, err = u.d.Store.ListRuns(ctx, store.RunFilter{Namespace: ns, Pipeline: name, Limit: 10}); err != nil {
			return err
		}
	}
	u.render(w, r, http.StatusOK, "pipeline", v, ns+"/"+name, view)
	return nil
}

type pushView struct {
	Content string
	Errors  []string
	// Target is "namespace/name" when the form pushes to one pipeline.
	Target    string
	CSRFToken string
}

// pushForm shows the form for pushing a new pipeline.
func (u *UI) pushForm(w http.ResponseWriter, r *http.Request, v *viewer) error {
	u.render(w, r, http.StatusOK, "push", v, "Push a pipeline", pushView{CSRFToken: v.CSRF})
	return nil
}

// push validates a pipeline file (pasted, or uploaded) with pipeline.Parse
// and stores it as the next version of the pipeline it names. The file's
// problems are shown with their file:line:col; the push itself is
// authorized (pipeline.write in the file's namespace) and recorded by
// the access service.
func (u *UI) push(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	content, filename, err := pushedFile(r)
	if err != nil {
		return err
	}
	view := pushView{Content: string(content), Target: r.PostFormValue("pipeline"), CSRFToken: v.CSRF}
	// On the pipeline page the form pushes to that pipeline; elsewhere the
	// file names it.
	back := func(status int) error {
		u.render(w, r, status, "push", v, "Push a pipeline", view)
		return nil
	}
	if strings.TrimSpace(string(content)) == "" {
		view.Errors = []string{"the pipeline file is empty: paste it or choose a file"}
		return back(http.StatusBadRequest)
	}
	p, err := pipeline.Parse(filename, content, u.d.Parse)
	if err != nil {
		var es pipeline.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				view.Errors = append(view.Errors, e.Error())
			}
		} else {
			view.Errors = []string{err.Error()}
		}
		return back(http.StatusBadRequest)
	}
	if want := r.PostFormValue("pipeline"); want != "" && want != p.Namespace+"/"+p.Name {
		view.Errors = []string{fmt.Sprintf("%s: the file names pipeline %s/%s, not %s", filename, p.Namespace, p.Name, want)}
		return back(http.StatusBadRequest)
	}
	if err := u.authorize(ctx, v, access.PipelineWrite, pipelineRes(p.Namespace, p.Name)); err != nil {
		return err
	}
	ver, err := u.d.Access.PushVersion(ctx, v.P.Subject, p.Namespace, p.Name, content)
	if err != nil {
		return accessError(err)
	}
	// The new version may change what runs and when: the scheduler
	// looks again now rather than at its next tick.
	u.d.Scheduler.Wake()
	http.Redirect(w, r, fmt.Sprintf("/pipelines/%s/%s?version=%d", pathEsc(ver.Namespace), pathEsc(ver.Pipeline), ver.Number), http.StatusSeeOther)
	return nil
}

// pathEsc escapes one path segment.
func pathEsc(s string) string { return url.PathEscape(s) }

// pushedFile returns the uploaded file when one was chosen, else the
// textarea's text, and the name errors should point at.
func pushedFile(r *http.Request) ([]byte, string, error) {
	if err := r.ParseMultipartForm(maxPipelineBytes); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return nil, "", &server.Error{Code: server.CodeInvalid, Message: "the form could not be read", Err: err}
	}
	if f, h, err := r.FormFile("file"); err == nil {
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxPipelineBytes+1))
		if err != nil {
			return nil, "", &server.Error{Code: server.CodeInvalid, Message: "the file could not be read", Err: err}
		}
		if len(b) > maxPipelineBytes {
			return nil, "", server.Errorf(server.CodeTooLarge, "the pipeline file is over %d bytes", maxPipelineBytes)
		}
		if len(b) > 0 {
			return b, path.Base(h.Filename), nil
		}
	}
	text := strings.ReplaceAll(r.PostFormValue("content"), "\r\n", "\n")
	return []byte(text), "pipeline.yaml", nil
}

// accessError turns the access service's refusals into pages: a denial
// is a 403, a segregation-of-duties refusal or a bad argument a 400, a
// conflict a 409; anything else stays internal.
func accessError(err error) error {
	var sod *access.SoDError
	switch {
	case errors.As(err, &sod):
		return &server.Error{Code: server.CodeConflict, Message: "Refused by rule " + sod.Rule + ": " + sod.Detail, Err: err}
	case errors.Is(err, access.ErrDenied):
		return &server.Error{Code: server.CodeForbidden, Message: "Not allowed: " + err.Error(), Err: err}
	case errors.Is(err, access.ErrInvalid), errors.Is(err, access.ErrUnknownRole), errors.Is(err, access.ErrUnknownPermission):
		return &server.Error{Code: server.CodeInvalid, Message: err.Error(), Err: err}
	case errors.Is(err, access.ErrRequestExpired):
		return &server.Error{Code: server.CodeConflict, Message: err.Error(), Err: err}
	case errors.Is(err, store.ErrConflict):
		return &server.Error{Code: server.CodeConflict, Message: "Someone else changed it first; reload the page.", Err: err}
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	}
	return err
}

// approve approves a version. The access service checks pipeline.approve
// and the two-person rule (nobody approves their own version), and
// records the approval.
func (u *UI) approve(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil {
		return errNotFound
	}
	if err := u.authorize(ctx, v, access.PipelineApprove, pipelineRes(ns, name)); err != nil {
		return err
	}
	if _, err := u.d.Access.Approve(ctx, v.P.Subject, ns, name, n); err != nil {
		return accessError(err)
	}
	// An approved version may now be the one that runs.
	u.d.Scheduler.Wake()
	http.Redirect(w, r, fmt.Sprintf("/pipelines/%s/%s?version=%d", pathEsc(ns), pathEsc(name), n), http.StatusSeeOther)
	return nil
}

// trigger queues a manual run of the newest runnable version for the
// server's scheduler, the run and the audit record of its trigger
// committing together (as with `sluice trigger` and the API), and opens
// the run's page.
func (u *UI) trigger(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if err := u.authorize(ctx, v, access.RunTrigger, runRes(ns, name)); err != nil {
		return err
	}
	ev := audit.Event{Actor: v.P.Actor, Action: "run.trigger", Resource: "pipeline:" + ns + "/" + name,
		Source: audit.SourceAPI, Address: server.ClientIP(r),
		RequestID: server.RequestID(ctx), Details: map[string]string{"via": "ui"}}
	if err := u.d.Scheduler.PrepareWorkspace(ns, name); err != nil {
		return err
	}
	run, err := u.d.Scheduler.Trigger(ctx, schedule.TriggerRequest{Namespace: ns, Pipeline: name, Detach: true, Audit: &ev})
	if err != nil {
		if errors.Is(err, schedule.ErrNotRunnable) {
			return &server.Error{Code: server.CodeConflict, Message: "Nothing to run: " + err.Error(), Err: err}
		}
		if errors.Is(err, schedule.ErrUnparsable) {
			return &server.Error{Code: server.CodeConflict, Message: schedule.UnparsableReason, Err: err}
		}
		if errors.Is(err, pipeline.ErrParams) {
			return &server.Error{Code: server.CodeInvalid, Message: err.Error(), Err: err}
		}
		return err
	}
	http.Redirect(w, r, "/runs/"+pathEsc(run.ID), http.StatusSeeOther)
	return nil
}
