package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/store"
)

// checkView is one data-quality check result as shown to people and
// scripts. Samples hold masked values only.
type checkView struct {
	Task       string              `json:"task"`
	Attempt    int                 `json:"attempt"`
	Check      string              `json:"check"`
	Kind       string              `json:"kind"`
	Column     string              `json:"column,omitempty"`
	Severity   string              `json:"severity"`
	Checked    int64               `json:"checked"`
	Failing    int64               `json:"failing"`
	FailingPct float64             `json:"failing_pct"`
	Mostly     float64             `json:"mostly"`
	Passed     bool                `json:"passed"`
	Detail     string              `json:"detail,omitempty"`
	Samples    []store.CheckSample `json:"samples,omitempty"`
}

func viewCheck(r store.CheckResult) checkView {
	return checkView{
		Task: r.Task, Attempt: r.Attempt, Check: r.Name, Kind: r.Kind, Column: r.Column, Severity: r.Severity,
		Checked: r.Checked, Failing: r.Failing, FailingPct: r.FailingPct, Mostly: r.Mostly, Passed: r.Passed,
		Detail: r.Detail, Samples: r.Samples,
	}
}

// loadChecks returns a run's check results, or a clear error for an
// unknown run.
func loadChecks(ctx context.Context, a *app.App, runID string) ([]checkView, error) {
	if _, err := a.Store.GetRun(ctx, runID); errors.Is(err, store.ErrNotFound) {
		return nil, exitWith(ExitFailure, fmt.Errorf("no run %q (list them with 'sluice runs')", runID))
	} else if err != nil {
		return nil, err
	}
	rs, err := a.Store.ListCheckResults(ctx, runID)
	if err != nil {
		return nil, err
	}
	views := make([]checkView, 0, len(rs))
	for _, r := range rs {
		views = append(views, viewCheck(r))
	}
	return views, nil
}

// latestChecks keeps, per task, the results of its last attempt that
// recorded any, in task order.
func latestChecks(views []checkView) []checkView {
	last := map[string]int{}
	for _, v := range views {
		last[v.Task] = max(last[v.Task], v.Attempt)
	}
	var out []checkView
	for _, v := range views {
		if v.Attempt == last[v.Task] {
			out = append(out, v)
		}
	}
	return out
}

// qualityLines summarises the checks of each task's last attempt in one
// line per task, e.g. "clean: quality 4/5 passed; failed: email.regex
// (2 failing, 20.00%); consent_filtered=3".
func qualityLines(views []checkView) []string {
	type agg struct {
		checks, passed int
		failed         []string
		consent        int64
		hasConsent     bool
	}
	var order []string
	per := map[string]*agg{}
	for _, v := range latestChecks(views) {
		a, ok := per[v.Task]
		if !ok {
			a = &agg{}
			per[v.Task] = a
			order = append(order, v.Task)
		}
		if v.Kind == "consent" {
			a.consent += v.Failing
			a.hasConsent = true
			continue
		}
		a.checks++
		if v.Passed {
			a.passed++
		} else {
			a.failed = append(a.failed, fmt.Sprintf("%s [%s] (%d failing, %.2f%%)", v.Check, v.Severity, v.Failing, v.FailingPct))
		}
	}
	lines := make([]string, 0, len(order))
	for _, task := range order {
		a := per[task]
		var parts []string
		if a.checks > 0 {
			parts = append(parts, fmt.Sprintf("quality %d/%d passed", a.passed, a.checks))
		}
		if len(a.failed) > 0 {
			parts = append(parts, "failed: "+strings.Join(a.failed, ", "))
		}
		if a.hasConsent {
			parts = append(parts, fmt.Sprintf("consent_filtered=%d", a.consent))
		}
		lines = append(lines, fmt.Sprintf("%s: %s", task, strings.Join(parts, "; ")))
	}
	return lines
}

func qualityCommand(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "quality RUN_ID",
		Short: "Show a run's data-quality check results (values masked)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedInForRun(ctx, ap, access.RunRead, a[0]); err != nil {
					return err
				}
				views, err := loadChecks(ctx, ap, a[0])
				if err != nil {
					return err
				}
				if !all {
					views = latestChecks(views)
				}
				if e.json() {
					return e.writeJSON(views)
				}
				if len(views) == 0 {
					fmt.Fprintf(e.stdout, "run %s has no data-quality results\n", a[0])
					return nil
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TASK\t#\tCHECK\tSEVERITY\tCHECKED\tFAILING\tFAILING %\tMOSTLY\tRESULT\tSAMPLES")
				for _, v := range views {
					result := "pass"
					if !v.Passed {
						result = "FAIL"
					}
					if v.Kind == "consent" {
						result = "filtered"
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%.2f\t%g\t%s\t%s\n", v.Task, v.Attempt, v.Check, v.Severity,
						v.Checked, v.Failing, v.FailingPct, v.Mostly, result, samplesText(v))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all-attempts", false, "show the results of every attempt, not only each task's last")
	return cmd
}

// samplesText renders the samples (masked values) or the detail.
func samplesText(v checkView) string {
	if len(v.Samples) == 0 {
		if v.Detail != "" {
			return v.Detail
		}
		return "-"
	}
	parts := make([]string, len(v.Samples))
	for i, s := range v.Samples {
		parts[i] = s.Pos
		if s.Value != "" {
			parts[i] += "=" + s.Value
		}
	}
	return strings.Join(parts, ", ")
}
