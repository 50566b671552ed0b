package task

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/quality"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/transform"
)

// transformOptions gives the steps what they read besides the stream: the
// datasets join steps and relationship checks read, the run's time (what
// freshness is measured against, so a retry judges the same data the same
// way), and the consent sources of consent steps.
func (d *Data) transformOptions(job *Job, env data.Env) transform.Options {
	inputs := d.joinInputs(job)
	for _, s := range job.Task.Transform {
		if s.Check == nil {
			continue
		}
		for _, r := range s.Check.Rules {
			if r.Kind != pipeline.CheckRelationship {
				continue
			}
			name := r.ToTask
			inputs[name] = func(ctx context.Context) (data.Source, error) { return d.openDataset(ctx, job, name) }
		}
	}
	now := job.Run.CreatedAt
	// A consent list is read whole or not at all: a record the connector
	// cannot read might be a revocation, so it fails the task instead of
	// going to quarantine.
	cenv := env
	cenv.Quarantine = consentQuarantine{}
	return transform.Options{
		Inputs: inputs,
		Now:    now,
		OpenEndpoint: func(ctx context.Context, ep *pipeline.Endpoint) (data.Source, error) {
			conn, err := d.connector(ep, "source")
			if err != nil {
				return nil, err
			}
			return conn.OpenSource(ctx, ep.Config, cenv)
		},
	}
}

// consentQuarantine refuses every record: see transformOptions.
type consentQuarantine struct{}

// Reject implements data.Quarantine by failing.
func (consentQuarantine) Reject(_ context.Context, r data.Reject) error {
	return fmt.Errorf("consent record at %s cannot be read (%s): a consent list must be read whole", r.Pos, r.Reason)
}

// recordQuality collects the results of the task's check and consent
// steps into res and its log. When a check of severity fail did not pass,
// the task fails, permanently (the same input fails the same way): the
// quarantine is kept so the records can be inspected, the output is not
// (the caller's deferred Abort discards it).
func recordQuality(ctx context.Context, job *Job, chain *transform.Chain, q *quarantine, res *Result, rowsIn, rowsOut int64) error {
	results := chain.Quality()
	res.ConsentFiltered = chain.Stats().ConsentFiltered
	if len(results) == 0 {
		return nil
	}
	res.Checks = checkResults(job, results)
	for _, r := range results {
		verdict := "passed"
		if !r.Passed {
			verdict = "FAILED"
		}
		logf(job.Log, "check %s (%s): %d of %d failing (%.2f%%), %s", r.Name, r.Severity, r.Failing, r.Checked, r.FailingPct, verdict)
	}
	failed := quality.Failed(results)
	if len(failed) == 0 {
		return nil
	}
	t := job.Task
	names := make([]string, len(failed))
	for i, r := range failed {
		names[i] = fmt.Sprintf("%s (%d of %d failing)", r.Name, r.Failing, r.Checked)
		if r.Detail != "" {
			names[i] = fmt.Sprintf("%s (%s)", r.Name, r.Detail)
		}
	}
	res.RowsIn, res.RowsOut, res.RowsQuarantined = rowsIn, rowsOut, q.rejected()
	qa, err := q.commit(ctx, job)
	if err != nil {
		return fmt.Errorf("task %s: writing quarantine: %w", t.Name, err)
	}
	where := ""
	if qa != nil {
		res.Artifacts = append(res.Artifacts, *qa)
		where = fmt.Sprintf("; the quarantined records are in %s", filepath.Join(job.StateDir, qa.Path))
	}
	msg := fmt.Sprintf("task %s: quality check failed (severity fail): %s; nothing was written%s", t.Name, strings.Join(names, ", "), where)
	logf(job.Log, "error: %s", msg)
	return Permanent(fmt.Errorf("%s", msg))
}

// checkResults turns check results into the records the store keeps.
func checkResults(job *Job, results []quality.Result) []store.CheckResult {
	out := make([]store.CheckResult, len(results))
	for i, r := range results {
		var samples []store.CheckSample
		for _, s := range r.Samples {
			samples = append(samples, store.CheckSample{Pos: s.Pos, Value: s.Value})
		}
		out[i] = store.CheckResult{
			RunID: job.Run.ID, Task: job.Task.Name, Attempt: job.Attempt,
			Name: r.Name, Kind: r.Kind, Column: r.Column, Severity: r.Severity,
			Checked: r.Checked, Failing: r.Failing, FailingPct: r.FailingPct, Mostly: r.Mostly,
			Passed: r.Passed, Detail: r.Detail, Samples: samples,
		}
	}
	return out
}
