package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/schedule"
)

// newScheduler returns a scheduler over the app, for the commands that use
// its operations without running its loop.
func newScheduler(a *app.App) (*schedule.Scheduler, error) {
	return schedule.New(schedule.Options{Store: a.Store, Engine: a.Engine, Access: a.Access, Logger: a.Logger,
		StateDir: a.Config.Home, Parse: pipeline.Options{Connectors: a.Connectors}})
}

// triggerScheduler is the caller, who must hold run.trigger on ns/name,
// and a scheduler to create its runs with: where trigger and backfill
// both start.
func (e *env) triggerScheduler(ctx context.Context, a *app.App, ns, name string) (Principal, *schedule.Scheduler, error) {
	who, err := e.signedIn(ctx, a, access.RunTrigger, access.Resource{Type: access.ResRun, Namespace: ns, Name: name})
	if err != nil {
		return Principal{}, nil, err
	}
	sch, err := newScheduler(a)
	if err != nil {
		return Principal{}, nil, err
	}
	return who, sch, nil
}

// splitPipeline reads "NAMESPACE/NAME".
func splitPipeline(s string) (string, string, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", exitWith(ExitUsage, fmt.Errorf("%q: want NAMESPACE/NAME", s))
	}
	return ns, name, nil
}

func triggerCommand(e *env) *cobra.Command {
	var (
		params []string
		date   string
		detach bool
	)
	cmd := &cobra.Command{
		Use:   "trigger NAMESPACE/NAME",
		Short: "Run the newest runnable pushed version of a pipeline now",
		Long: `Trigger creates a manual run of the newest pushed version of a pipeline that
may run on schedule (in a protected namespace, the newest approved one) and
executes it here, printing progress. With --detach the run is left queued for
the scheduler of a running server to execute.

Signed in to a server ('sluice login --server'), the server queues and runs
it; the command follows the run to its end and prints its summary, or with
--detach returns once it is queued. --local acts on the state directory.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ns, name, err := splitPipeline(a[0])
			if err != nil {
				return err
			}
			given, err := parseParams(params)
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			if date != "" {
				if _, err := time.Parse(time.DateOnly, date); err != nil {
					return exitWith(ExitUsage, fmt.Errorf("--date: %q is not a date (want YYYY-MM-DD)", date))
				}
			}
			onServer := func(ctx context.Context, r *remote) error {
				return remoteTrigger(ctx, e, r, ns, name, given, date, detach)
			}
			return e.remoteOrApp(cmd, onServer, func(ctx context.Context, a2 *app.App, pr *progress) error {
				who, sch, err := e.triggerScheduler(ctx, a2, ns, name)
				if err != nil {
					return err
				}
				p, v, err := sch.Runnable(ctx, ns, name)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if _, err := p.ResolveParams(given); err != nil {
					return exitWith(ExitUsage, fmt.Errorf("%s: %w", a[0], err))
				}
				if err := checkSecrets(ctx, a2, p); err != nil {
					return exitWith(ExitFailure, err)
				}
				ev := cliEvent(e, "run.trigger", "pipeline:"+ns+"/"+name,
					map[string]string{"logical_date": date, "version": fmt.Sprint(v.Number), "detach": fmt.Sprint(detach)})
				who.stamp(&ev)
				// The run and the record of its trigger commit together.
				run, err := sch.Trigger(ctx, schedule.TriggerRequest{Namespace: ns, Pipeline: name, Params: given, LogicalDate: date, Detach: true, Audit: &ev})
				auditCheckpoint(ctx, a2)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if detach {
					if e.json() {
						return e.writeJSON(map[string]any{"run": run.ID, "state": run.State, "version": v.Number})
					}
					fmt.Fprintf(e.stdout, "run %s of %s@%d queued for the scheduler\n", run.ID, a[0], v.Number)
					return nil
				}
				if err := sch.PrepareWorkspace(ns, name); err != nil {
					return exitWith(ExitFailure, err)
				}
				return execute(ctx, e, a2, pr, p, run)
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&params, "param", "p", nil, "set a pipeline parameter, name=value (repeatable)")
	f.StringVar(&date, "date", "", "logical date of the run, YYYY-MM-DD (default today in the schedule's zone)")
	f.BoolVar(&detach, "detach", false, "leave the run queued for a running server instead of executing it here "+
		"(on a server: return once it is queued instead of following it)")
	addLocalFlag(cmd)
	return cmd
}

func backfillCommand(e *env) *cobra.Command {
	var (
		from, to string
		dryRun   bool
	)
	cmd := &cobra.Command{
		Use:   "backfill NAMESPACE/NAME --from DATE --to DATE",
		Short: "Run a pipeline for every scheduled tick whose logical date is in a range",
		Long: `Backfill creates one run per tick of the pipeline's schedule whose logical date
(in the schedule's zone) lies in [--from, --to], and executes them oldest
first, at most max_active_runs at a time. A tick whose run already exists (run
by the scheduler or an earlier backfill) is not run again; an unfinished one is
resumed. --dry-run lists the ticks and changes nothing.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ns, name, err := splitPipeline(a[0])
			if err != nil {
				return err
			}
			if from == "" || to == "" {
				return exitWith(ExitUsage, errors.New("--from and --to are required"))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, a2 *app.App, _ *progress) error {
				who, sch, err := e.triggerScheduler(ctx, a2, ns, name)
				if err != nil {
					return err
				}
				req := schedule.BackfillRequest{Namespace: ns, Pipeline: name, From: from, To: to, DryRun: dryRun}
				if !dryRun {
					ev := cliEvent(e, "run.backfill", "pipeline:"+ns+"/"+name, map[string]string{"from": from, "to": to})
					who.stamp(&ev)
					if err := auditFirst(ctx, a2, ev); err != nil {
						return err
					}
					if err := sch.PrepareWorkspace(ns, name); err != nil {
						return exitWith(ExitFailure, err)
					}
				}
				items, err := sch.Backfill(ctx, req)
				if err != nil && items == nil {
					return exitWith(ExitFailure, err)
				}
				if e.json() {
					if werr := e.writeJSON(items); werr != nil {
						return werr
					}
				} else {
					tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "LOGICAL DATE\tTICK\tRUN\tSTATE\tNOTE")
					for _, it := range items {
						note := it.Error
						if it.Existed && note == "" {
							note = "already created"
						}
						state := string(it.State)
						if state == "" {
							state = "-"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.LogicalDate, it.Tick.Format(time.RFC3339), it.RunID, state, note)
					}
					tw.Flush()
				}
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				for _, it := range items {
					if it.Error != "" || (!dryRun && it.State != "success") {
						return exitWith(ExitFailure, errors.New("some backfill runs did not succeed"))
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "first logical date, YYYY-MM-DD")
	f.StringVar(&to, "to", "", "last logical date, YYYY-MM-DD (inclusive)")
	f.BoolVar(&dryRun, "dry-run", false, "list the ticks without creating runs")
	return cmd
}

func scheduleCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Show, pause and resume pipeline schedules",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List scheduled pipelines: next tick, last tick, paused, late runs",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, a2 *app.App, _ *progress) error {
				who, err := e.principal(ctx, a2)
				if err != nil {
					return err
				}
				sch, err := newScheduler(a2)
				if err != nil {
					return err
				}
				all, err := sch.List(ctx)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				sts := []schedule.Status{}
				for _, st := range all {
					if mayRead(ctx, a2, who, access.RunRead, access.Resource{Type: access.ResRun, Namespace: st.Namespace, Name: st.Pipeline}) {
						sts = append(sts, st)
					}
				}
				if e.json() {
					return e.writeJSON(sts)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PIPELINE\tVERSION\tSCHEDULE\tNEXT\tLAST TICK\tPAUSED\tLATE")
				for _, st := range sts {
					version, next, last, paused := "-", "-", "-", "no"
					if st.Version > 0 {
						version = fmt.Sprint(st.Version)
					}
					if !st.Next.IsZero() {
						next = st.Next.Format(time.RFC3339)
					}
					if !st.LastTick.IsZero() {
						last = st.LastTick.Format(time.RFC3339)
					}
					if st.Paused {
						paused = "by " + st.PausedBy
					}
					late := "0"
					if len(st.Late) > 0 {
						late = fmt.Sprintf("%d (last %s)", len(st.Late), st.Late[0].Tick.Format(time.RFC3339))
					}
					sched := st.Schedule
					if st.NotRunnable != "" {
						sched = "not runnable: " + st.NotRunnable
					} else if sched == "" {
						sched = "-"
					}
					fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Namespace, st.Pipeline, version, sched, next, last, paused, late)
				}
				return tw.Flush()
			})
		},
	}
	return group(cmd, list, pauseCommand(e, true), pauseCommand(e, false))
}

// pauseCommand is `schedule pause` (pause) or `schedule resume`.
func pauseCommand(e *env, pause bool) *cobra.Command {
	verb, short := "resume", "Resume a paused schedule"
	if pause {
		verb, short = "pause", "Pause a pipeline's schedule, or a whole namespace's (ticks while paused are skipped)"
	}
	var namespace string
	cmd := &cobra.Command{
		Use:   verb + " [NAMESPACE/NAME | --namespace NS]",
		Short: short,
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ns, name := namespace, ""
			switch {
			case len(a) == 1 && namespace != "":
				return exitWith(ExitUsage, errors.New("give NAMESPACE/NAME or --namespace, not both"))
			case len(a) == 1:
				var err error
				if ns, name, err = splitPipeline(a[0]); err != nil {
					return err
				}
			case namespace == "":
				return exitWith(ExitUsage, errors.New("give NAMESPACE/NAME or --namespace NS"))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, a2 *app.App, _ *progress) error {
				who, err := e.signedIn(ctx, a2, access.RunControl, access.Resource{Type: access.ResRun, Namespace: ns, Name: name})
				if err != nil {
					return err
				}
				target := "namespace:" + ns
				if name != "" {
					target = "pipeline:" + ns + "/" + name
				}
				ev := cliEvent(e, "schedule."+verb, target, nil)
				who.stamp(&ev)
				if err := auditFirst(ctx, a2, ev); err != nil {
					return err
				}
				sch, err := newScheduler(a2)
				if err != nil {
					return err
				}
				if err := sch.SetPaused(ctx, ns, name, who.Actor, pause); err != nil {
					auditFailed(ctx, e, a2, ev, err)
					return exitWith(ExitFailure, err)
				}
				if e.json() {
					return e.writeJSON(map[string]any{"target": target, "paused": pause})
				}
				fmt.Fprintf(e.stdout, "%s: schedule %sd\n", strings.TrimPrefix(strings.TrimPrefix(target, "pipeline:"), "namespace:"), verb)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&namespace, "namespace", "", "the whole namespace")
	return cmd
}
