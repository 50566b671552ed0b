package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/client"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/store"
)

// runView is a run as shown to people and scripts.
type runView struct {
	ID          string            `json:"id"`
	Namespace   string            `json:"namespace"`
	Pipeline    string            `json:"pipeline"`
	Version     string            `json:"version"`
	File        string            `json:"file"`
	LogicalDate string            `json:"logical_date"`
	Params      map[string]string `json:"params,omitempty"`
	Trigger     string            `json:"trigger"`
	State       store.RunState    `json:"state"`
	Error       string            `json:"error,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	StartedAt   *time.Time        `json:"started_at,omitempty"`
	EndedAt     *time.Time        `json:"ended_at,omitempty"`
	DurationMS  int64             `json:"duration_ms"`
}

// taskView is a task run with its output dataset.
type taskView struct {
	Task            string          `json:"task"`
	State           store.TaskState `json:"state"`
	Attempts        int             `json:"attempts"`
	StartedAt       *time.Time      `json:"started_at,omitempty"`
	EndedAt         *time.Time      `json:"ended_at,omitempty"`
	DurationMS      int64           `json:"duration_ms"`
	ExitCode        *int            `json:"exit_code,omitempty"`
	RowsIn          int64           `json:"rows_in"`
	RowsOut         int64           `json:"rows_out"`
	RowsQuarantined int64           `json:"rows_quarantined"`
	Output          string          `json:"output,omitempty"`
	OutputSHA256    string          `json:"output_sha256,omitempty"`
	OutputLocation  string          `json:"output_location,omitempty"`
	Error           string          `json:"error,omitempty"`
}

// attemptView is one attempt.
type attemptView struct {
	Task            string        `json:"task"`
	Number          int           `json:"number"`
	Outcome         store.Outcome `json:"outcome"`
	StartedAt       time.Time     `json:"started_at"`
	EndedAt         *time.Time    `json:"ended_at,omitempty"`
	ExitCode        *int          `json:"exit_code,omitempty"`
	RowsIn          int64         `json:"rows_in"`
	RowsOut         int64         `json:"rows_out"`
	RowsQuarantined int64         `json:"rows_quarantined"`
	Error           string        `json:"error,omitempty"`
	Log             string        `json:"log,omitempty"`
}

// summary is a run with its tasks (and, for show, its attempts).
type summary struct {
	Run      runView       `json:"run"`
	Tasks    []taskView    `json:"tasks"`
	Attempts []attemptView `json:"attempts,omitempty"`
	// Quality holds the data-quality results of each task's last attempt
	// (show only).
	Quality []checkView `json:"quality,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func span(from, to time.Time) time.Duration {
	if from.IsZero() {
		return 0
	}
	if to.IsZero() {
		to = time.Now()
	}
	return to.Sub(from)
}

func viewRun(r store.Run) runView {
	return runView{
		ID: r.ID, Namespace: r.Namespace, Pipeline: r.Pipeline, Version: r.PipelineHash, File: r.PipelineFile,
		LogicalDate: r.LogicalDate, Params: r.Params, Trigger: r.Trigger, State: r.State, Error: r.Error,
		CreatedAt: r.CreatedAt, StartedAt: timePtr(r.StartedAt), EndedAt: timePtr(r.EndedAt),
		DurationMS: span(r.StartedAt, r.EndedAt).Milliseconds(),
	}
}

func loadSummary(ctx context.Context, a *app.App, runID string) (summary, error) {
	r, err := a.Store.GetRun(ctx, runID)
	if errors.Is(err, store.ErrNotFound) {
		return summary{}, exitWith(ExitFailure, fmt.Errorf("no run %q (list them with 'sluice runs')", runID))
	}
	if err != nil {
		return summary{}, err
	}
	trs, err := a.Store.ListTaskRuns(ctx, runID)
	if err != nil {
		return summary{}, err
	}
	arts, err := a.Store.ListArtifacts(ctx, runID)
	if err != nil {
		return summary{}, err
	}
	// What a task delivered: its output dataset, or else what its sink
	// committed in its last attempt.
	delivered := map[string]store.Artifact{}
	for _, art := range arts {
		if art.Kind == "sink" {
			delivered[art.Task] = art
		}
	}
	for _, art := range arts {
		if art.Kind == "output" {
			delivered[art.Task] = art
		}
	}
	s := summary{Run: viewRun(r)}
	for _, tr := range trs {
		tv := taskView{
			Task: tr.Task, State: tr.State, Attempts: tr.Attempts,
			StartedAt: timePtr(tr.StartedAt), EndedAt: timePtr(tr.EndedAt),
			DurationMS: span(tr.StartedAt, tr.EndedAt).Milliseconds(), ExitCode: tr.ExitCode,
			RowsIn: tr.RowsIn, RowsOut: tr.RowsOut, RowsQuarantined: tr.RowsQuarantined,
			Output: tr.Output, Error: tr.Error,
		}
		if art, ok := delivered[tr.Task]; ok && tr.State == store.TaskSuccess {
			tv.OutputSHA256 = art.SHA256
			tv.OutputLocation = art.Path
		}
		s.Tasks = append(s.Tasks, tv)
	}
	return s, nil
}

func printSummary(e *env, s summary) {
	r := s.Run
	fmt.Fprintf(e.stdout, "\nrun %s  %s/%s  %s  %s\n", r.ID, r.Namespace, r.Pipeline, r.State,
		(time.Duration(r.DurationMS) * time.Millisecond).String())
	if r.Error != "" {
		fmt.Fprintf(e.stdout, "error: %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATE\tATTEMPTS\tDURATION\tROWS IN\tROWS OUT\tQUARANTINED\tOUTPUT SHA-256")
	for _, t := range s.Tasks {
		sum := "-"
		if t.OutputSHA256 != "" {
			sum = t.OutputSHA256[:min(16, len(t.OutputSHA256))]
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%s\n", t.Task, t.State, t.Attempts,
			(time.Duration(t.DurationMS) * time.Millisecond).String(), t.RowsIn, t.RowsOut, t.RowsQuarantined, sum)
	}
	tw.Flush()
	for _, t := range s.Tasks {
		if t.Error != "" {
			fmt.Fprintf(e.stdout, "%s: %s\n", t.Task, t.Error)
		}
	}
}

func runsCommand(e *env) *cobra.Command {
	var (
		pipelineName, namespace, state string
		limit                          int
	)
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List recent runs, newest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 10000 {
				return exitWith(ExitUsage, fmt.Errorf("--limit: %d is outside 1..10000", limit))
			}
			f := store.RunFilter{Namespace: namespace, Pipeline: pipelineName, Limit: limit}
			if state != "" {
				s := store.RunState(state)
				switch s {
				case store.RunQueued, store.RunRunning, store.RunSuccess, store.RunFailed, store.RunCancelled:
				default:
					return exitWith(ExitUsage, fmt.Errorf("--state: %q is not one of queued, running, success, failed, cancelled", state))
				}
				f.States = []store.RunState{s}
			}
			onServer := func(ctx context.Context, r *remote) error {
				return remoteRuns(ctx, e, r, client.RunFilter{Namespace: namespace, Pipeline: pipelineName, State: state, Limit: limit})
			}
			return e.remoteOrApp(cmd, onServer, func(ctx context.Context, a *app.App, _ *progress) error {
				who, err := e.principal(ctx, a)
				if err != nil {
					return err
				}
				runs, err := a.Store.ListRuns(ctx, f)
				if err != nil {
					return err
				}
				views := make([]runView, 0, len(runs))
				for _, r := range runs {
					if !mayRead(ctx, a, who, access.RunRead, access.Resource{Type: access.ResRun, Namespace: r.Namespace, Name: r.ID}) {
						continue // runs are listed only where the caller may read them
					}
					v := viewRun(r)
					if !r.State.Done() && !a.Engine.Active(r) {
						v.State = r.State + " (interrupted)"
					}
					views = append(views, v)
				}
				return writeRuns(e, views)
			})
		},
	}
	addLocalFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&pipelineName, "pipeline", "", "only runs of this pipeline")
	f.StringVar(&namespace, "namespace", "", "only runs in this namespace")
	f.StringVar(&state, "state", "", "only runs in this state")
	f.IntVar(&limit, "limit", 20, "how many runs to list")
	return cmd
}

// writeRuns renders runs as 'sluice runs' does: a table, or JSON.
func writeRuns(e *env, views []runView) error {
	if e.json() {
		return e.writeJSON(views)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPIPELINE\tLOGICAL DATE\tSTATE\tSTARTED\tDURATION")
	for _, v := range views {
		started := "-"
		if v.StartedAt != nil {
			started = v.StartedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\t%s\n", v.ID, v.Namespace, v.Pipeline, v.LogicalDate, v.State,
			started, time.Duration(v.DurationMS)*time.Millisecond)
	}
	return tw.Flush()
}

func showCommand(e *env) *cobra.Command {
	return withLocalFlag(&cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run: its tasks, attempts and outputs",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			onServer := func(ctx context.Context, r *remote) error { return remoteShow(ctx, e, r, a[0]) }
			return e.remoteOrApp(cmd, onServer, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedInForRun(ctx, ap, access.RunRead, a[0]); err != nil {
					return err
				}
				s, err := loadSummary(ctx, ap, a[0])
				if err != nil {
					return err
				}
				atts, err := ap.Store.ListAttempts(ctx, a[0], "")
				if err != nil {
					return err
				}
				for _, at := range atts {
					s.Attempts = append(s.Attempts, attemptView{
						Task: at.Task, Number: at.Number, Outcome: at.Outcome, StartedAt: at.StartedAt,
						EndedAt: timePtr(at.EndedAt), ExitCode: at.ExitCode, RowsIn: at.RowsIn, RowsOut: at.RowsOut,
						RowsQuarantined: at.RowsQuarantined, Error: at.Error, Log: at.LogPath,
					})
				}
				checks, err := loadChecks(ctx, ap, a[0])
				if err != nil {
					return err
				}
				s.Quality = latestChecks(checks)
				if e.json() {
					return e.writeJSON(s)
				}
				printSummary(e, s)
				for _, l := range qualityLines(s.Quality) {
					fmt.Fprintln(e.stdout, l)
				}
				return printAttempts(e, s.Attempts)
			})
		},
	})
}

// printAttempts renders the attempts table of 'sluice show'.
func printAttempts(e *env, atts []attemptView) error {
	fmt.Fprintln(e.stdout, "\nattempts:")
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\t#\tOUTCOME\tSTARTED\tDURATION\tEXIT\tERROR")
	for _, at := range atts {
		exit := "-"
		if at.ExitCode != nil {
			exit = fmt.Sprint(*at.ExitCode)
		}
		var end time.Time
		if at.EndedAt != nil {
			end = *at.EndedAt
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", at.Task, at.Number, at.Outcome,
			at.StartedAt.Local().Format("15:04:05.000"), span(at.StartedAt, end).Round(time.Millisecond), exit, firstLine(at.Error))
	}
	return tw.Flush()
}

func logsCommand(e *env) *cobra.Command {
	var attempt int
	cmd := &cobra.Command{
		Use:   "logs RUN_ID [TASK]",
		Short: "Print the logs of a run's task attempts",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			taskName := ""
			if len(a) == 2 {
				taskName = a[1]
			}
			onServer := func(ctx context.Context, r *remote) error { return remoteLogs(ctx, e, r, a[0], taskName, attempt) }
			return e.remoteOrApp(cmd, onServer, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedInForRun(ctx, ap, access.LogRead, a[0]); err != nil {
					return err
				}
				if _, err := ap.Store.GetRun(ctx, a[0]); errors.Is(err, store.ErrNotFound) {
					return exitWith(ExitFailure, fmt.Errorf("no run %q (list them with 'sluice runs')", a[0]))
				} else if err != nil {
					return err
				}
				if taskName != "" {
					if _, err := ap.Store.GetTaskRun(ctx, a[0], taskName); errors.Is(err, store.ErrNotFound) {
						return exitWith(ExitFailure, fmt.Errorf("run %s has no task %q", a[0], taskName))
					} else if err != nil {
						return err
					}
				}
				atts, err := ap.Store.ListAttempts(ctx, a[0], taskName)
				if err != nil {
					return err
				}
				type logEntry struct {
					Task    string `json:"task"`
					Attempt int    `json:"attempt"`
					Log     string `json:"log"`
				}
				var entries []logEntry
				for _, at := range atts {
					if attempt != 0 && at.Number != attempt {
						continue
					}
					text, err := engine.ReadLog(ctx, ap.Keys, ap.Config.Home, at.LogPath)
					if err != nil {
						// Show what could be verified, and say why the rest is not shown.
						text += fmt.Sprintf("\n[sluice: %s]\n", err)
					}
					entries = append(entries, logEntry{Task: at.Task, Attempt: at.Number, Log: text})
				}
				if e.json() {
					return e.writeJSON(entries)
				}
				for _, en := range entries {
					fmt.Fprintf(e.stdout, "==> %s attempt %d <==\n%s", en.Task, en.Attempt, en.Log)
					if n := len(en.Log); n > 0 && en.Log[n-1] != '\n' {
						fmt.Fprintln(e.stdout)
					}
				}
				return nil
			})
		},
	}
	addLocalFlag(cmd)
	cmd.Flags().IntVar(&attempt, "attempt", 0, "only this attempt number")
	return cmd
}
