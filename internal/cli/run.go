package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

func runCommand(e *env) *cobra.Command {
	var (
		params []string
		date   string
		newRun bool
	)
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a pipeline once, now, and print its progress and summary",
		Long: `Run parses and validates the pipeline file, records a new run in the state
directory, executes its tasks in dependency order and prints one line per
task state change, then a summary table. The exit code is 0 when the run
succeeded, 1 when it failed, 130 when it was cancelled (Ctrl-C).

If an earlier run of the same pipeline was interrupted (its process was
killed), run says so and stops: continue it with 'sluice resume RUN_ID', or
start a fresh run anyway with --new.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			given, err := parseParams(params)
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			if date != "" {
				if _, err := time.Parse(time.DateOnly, date); err != nil {
					return exitWith(ExitUsage, fmt.Errorf("--date: %q is not a date (want YYYY-MM-DD)", date))
				}
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, a2 *app.App, pr *progress) error {
				p, err := a2.ParsePipeline(a[0])
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				who, err := e.signedIn(ctx, a2, access.RunTrigger, access.Resource{Type: access.ResRun, Namespace: p.Namespace, Name: p.Name})
				if err != nil {
					return err
				}
				resolved, err := p.ResolveParams(given)
				if err != nil {
					return exitWith(ExitUsage, fmt.Errorf("%s: %w", a[0], err))
				}
				if err := checkSecrets(ctx, a2, p); err != nil {
					return exitWith(ExitFailure, err)
				}
				if !newRun {
					interrupted, err := interruptedRuns(ctx, a2, p)
					if err != nil {
						return err
					}
					if len(interrupted) > 0 {
						r := interrupted[0]
						return exitWith(ExitFailure, fmt.Errorf(
							"run %s of pipeline %s (started %s) was interrupted and has not finished.\n"+
								"  resume it:          sluice resume %s\n"+
								"  or start afresh:    sluice run --new %s",
							r.ID, p.Name, r.CreatedAt.Local().Format(time.DateTime), r.ID, a[0]))
					}
				}
				ev := cliEvent(e, "run.trigger", "pipeline:"+p.Namespace+"/"+p.Name, map[string]string{"logical_date": date})
				who.stamp(&ev)
				// The run and the record of its trigger commit together.
				var run store.Run
				err = audit.Do(ctx, a2.Store, ev, func(tx store.Store) error {
					var err error
					run, err = a2.Engine.CreateRunIn(ctx, tx, p, engine.RunRequest{LogicalDate: date, Params: resolved, Trigger: "manual"})
					return err
				})
				auditCheckpoint(ctx, a2)
				if err != nil {
					return err
				}
				return execute(ctx, e, a2, pr, p, run)
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&params, "param", "p", nil, "set a pipeline parameter, name=value (repeatable)")
	f.StringVar(&date, "date", "", "logical date of the run, YYYY-MM-DD (default today, UTC)")
	f.BoolVar(&newRun, "new", false, "start a new run even if an earlier one was interrupted")
	return cmd
}

func resumeCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "resume RUN_ID",
		Short: "Continue an interrupted run where it stopped",
		Long: `Resume takes over a run whose process died (kill -9, power loss, a crashed
machine): attempts that were running are recorded as interrupted and tried
again, finished tasks are kept, and the run goes on to its end. The pipeline
file must be the version the run started with.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, a2 *app.App, pr *progress) error {
				run, err := a2.Store.GetRun(ctx, a[0])
				if errors.Is(err, store.ErrNotFound) {
					return exitWith(ExitFailure, fmt.Errorf("no run %q (list them with 'sluice runs')", a[0]))
				}
				if err != nil {
					return err
				}
				if run.State.Done() {
					return exitWith(ExitFailure, fmt.Errorf("run %s already ended: %s", run.ID, run.State))
				}
				p, err := a2.ParsePipeline(run.PipelineFile)
				if err != nil {
					return exitWith(ExitFailure, fmt.Errorf("run %s: %w", run.ID, err))
				}
				if err := checkSecrets(ctx, a2, p); err != nil {
					return exitWith(ExitFailure, err)
				}
				if p.Hash != run.PipelineHash {
					return exitWith(ExitFailure, fmt.Errorf(
						"run %s: %s changed since the run started (version %.12s, now %.12s); restore that version to resume, or start a new run",
						run.ID, run.PipelineFile, run.PipelineHash, p.Hash))
				}
				who, err := e.signedIn(ctx, a2, access.RunControl, access.Resource{Type: access.ResRun, Namespace: p.Namespace, Name: p.Name})
				if err != nil {
					return err
				}
				ev := cliEvent(e, "run.resume", "run:"+run.ID, nil)
				who.stamp(&ev)
				if err := auditFirst(ctx, a2, ev); err != nil {
					return err
				}
				return execute(ctx, e, a2, pr, p, run)
			})
		},
	}
}

// interruptedRuns returns the unfinished runs of p that nobody drives.
func interruptedRuns(ctx context.Context, a *app.App, p *pipeline.Pipeline) ([]store.Run, error) {
	runs, err := a.Store.ListRuns(ctx, store.RunFilter{
		Namespace: p.Namespace, Pipeline: p.Name,
		States: []store.RunState{store.RunQueued, store.RunRunning},
	})
	if err != nil {
		return nil, fmt.Errorf("listing earlier runs: %w", err)
	}
	var out []store.Run
	for _, r := range runs {
		if !a.Engine.Active(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// execute drives run to its end under Ctrl-C handling and prints the summary.
func execute(ctx context.Context, e *env, a *app.App, pr *progress, p *pipeline.Pipeline, run store.Run) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-finished:
			return
		case <-sigs:
		}
		if !e.json() {
			pr.note("cancelling: running tasks get SIGTERM, then SIGKILL after %s (Ctrl-C again to quit at once; 'sluice resume' continues)", a.Config.KillGrace)
		}
		cancel()
		// A second signal ends the process at once; the run stays
		// resumable because every state change is already durable.
		select {
		case <-finished:
		case <-sigs:
			os.Exit(ExitCancelled)
		}
	}()
	if !e.json() {
		pr.note("run %s  pipeline %s/%s  logical date %s", run.ID, p.Namespace, p.Name, run.LogicalDate)
	}
	final, err := a.Engine.Execute(ctx, p, run.ID)
	if err != nil && final.ID == "" {
		return err
	}
	s, serr := loadSummary(context.WithoutCancel(ctx), a, final.ID)
	if serr != nil {
		return serr
	}
	if e.json() {
		if werr := e.writeJSON(s); werr != nil {
			return werr
		}
	} else {
		printSummary(e, s)
	}
	switch final.State {
	case store.RunSuccess:
		return nil
	case store.RunCancelled:
		return exitWith(ExitCancelled, nil)
	default:
		return exitWith(ExitFailure, nil)
	}
}

// withApp opens the app with a progress printer as its observer and closes
// it after fn.
func withApp(ctx context.Context, e *env, fn func(context.Context, *app.App, *progress) error) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	pr := &progress{w: e.stdout, quiet: e.json(), last: map[string]time.Time{}}
	a, err := app.Open(ctx, cfg, app.Options{LogOutput: e.stderr, Observer: pr.event, Getenv: e.getenv})
	if err != nil {
		return err
	}
	defer a.Close()
	if a.KEKCreated != "" {
		fmt.Fprintf(e.stderr, "sluice: created a new key-encryption key in %s.\n"+
			"  Everything sluice stores is encrypted under it: back it up now, and keep the backup\n"+
			"  apart from copies of the state directory (see docs/keys.md). Without it, nothing\n"+
			"  in the state directory can be read.\n", a.KEKCreated)
	}
	return fn(ctx, a, pr)
}

func parseParams(kv []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want name=value", s)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--param %q: %s given twice", s, k)
		}
		out[k] = v
	}
	return out, nil
}

// progress prints one line per task state change, and at most one progress
// line per task per second while a data task streams.
type progress struct {
	mu    sync.Mutex
	w     interface{ Write([]byte) (int, error) }
	quiet bool
	last  map[string]time.Time
}

func (p *progress) note(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", a...)
}

func (p *progress) event(ev engine.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := ev.At.Local().Format("15:04:05.000")
	switch ev.Kind {
	case engine.TaskStarted:
		fmt.Fprintf(p.w, "%s  %-20s %-12s attempt %d\n", ts, ev.Task, "running", ev.Attempt)
	case engine.TaskProgress:
		if ev.At.Sub(p.last[ev.Task]) < time.Second {
			return
		}
		p.last[ev.Task] = ev.At
		fmt.Fprintf(p.w, "%s  %-20s %-12s attempt %d  rows %d → %d  %s\n", ts, ev.Task, "running", ev.Attempt,
			ev.RowsIn, ev.RowsOut, rate(ev.RowsIn, ev.Duration))
	case engine.TaskFinished, engine.TaskRetrying:
		line := fmt.Sprintf("%s  %-20s %-12s attempt %d  %s", ts, ev.Task, ev.State, ev.Attempt, ev.Duration.Round(time.Millisecond))
		if ev.RowsIn > 0 || ev.RowsOut > 0 || ev.RowsQuarantined > 0 {
			line += fmt.Sprintf("  rows %d → %d", ev.RowsIn, ev.RowsOut)
			if ev.RowsQuarantined > 0 {
				line += fmt.Sprintf(" (%d quarantined)", ev.RowsQuarantined)
			}
			line += "  " + rate(ev.RowsIn, ev.Duration)
		}
		if ev.Err != "" {
			line += "  " + firstLine(ev.Err)
		}
		fmt.Fprintln(p.w, line)
	case engine.TaskSkipped:
		fmt.Fprintf(p.w, "%s  %-20s %-12s %s\n", ts, ev.Task, "skipped", firstLine(ev.Err))
	}
}

func rate(rows int64, d time.Duration) string {
	if d <= 0 || rows == 0 {
		return ""
	}
	r := float64(rows) / d.Seconds()
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM rows/s", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk rows/s", r/1e3)
	}
	return fmt.Sprintf("%.0f rows/s", r)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
