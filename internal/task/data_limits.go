package task

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/transform"
)

// checkContract compares a data task's output schema with the contract it
// declares (schema: in the spec). Every drift is written to the task's log
// and returned; with on_drift: fail, it is also a permanent error listing
// them all, since a rerun produces the same schema.
func checkContract(job *Job, schema *data.Schema) ([]string, error) {
	if job.Task.Contract == nil {
		return nil, nil
	}
	return driftLines(job, transform.CheckContract(job.Task.Contract, schema))
}

// logf writes one line to the task's log, if it has one.
func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// driftLines reports the drifts of a task's output against its contract.
func driftLines(job *Job, drifts []transform.Drift) ([]string, error) {
	t := job.Task
	if len(drifts) == 0 {
		return nil, nil
	}
	lines := make([]string, len(drifts))
	for i, d := range drifts {
		lines[i] = d.String()
	}
	switch t.Contract.OnDrift {
	case pipeline.DriftWarn:
		for _, l := range lines {
			logf(job.Log, "warning: schema drift: %s", l)
		}
		return lines, nil
	case pipeline.DriftEvolve:
		for _, l := range lines {
			logf(job.Log, "schema evolved: %s", l)
		}
		return lines, nil
	}
	for _, l := range lines {
		logf(job.Log, "error: schema drift: %s", l)
	}
	return lines, Permanent(fmt.Errorf("task %s: the output schema drifts from the contract at %s (on_drift: fail): %s",
		t.Name, t.Contract.Pos, strings.Join(lines, "; ")))
}

// exceedsBadLimits reports whether bad quarantined records out of rowsIn
// break the task's max_bad_rows or max_bad_ratio.
func exceedsBadLimits(t *pipeline.Task, bad, rowsIn int64) bool {
	return badLimitMsg(t, bad, rowsIn) != ""
}

// badLimitMsg says which limit bad records out of rowsIn break, or "".
func badLimitMsg(t *pipeline.Task, bad, rowsIn int64) string {
	if t.MaxBadRows != nil && bad > *t.MaxBadRows {
		return fmt.Sprintf("%d records quarantined, more than max_bad_rows (%d)", bad, *t.MaxBadRows)
	}
	if t.MaxBadRatio != nil && rowsIn > 0 {
		ratio := float64(bad) / float64(rowsIn)
		if ratio > *t.MaxBadRatio {
			return fmt.Sprintf("%d of %d records quarantined (%.2f%%), more than max_bad_ratio (%g)", bad, rowsIn, ratio*100, *t.MaxBadRatio)
		}
	}
	return ""
}

// tooManyBad fails a task whose quarantine broke its limits. The
// quarantine is kept (committed) so the rejected records can be read and
// fixed; the output is not: the caller's deferred Abort discards it. The
// failure is permanent: the same input gives the same rejects.
func (d *Data) tooManyBad(ctx context.Context, job *Job, q *quarantine, res Result, rowsIn, rowsOut int64) (Result, error) {
	t := job.Task
	msg := badLimitMsg(t, q.rejected(), rowsIn)
	res.RowsIn, res.RowsOut, res.RowsQuarantined = rowsIn, rowsOut, q.rejected()
	qa, err := q.commit(ctx, job)
	if err != nil {
		return res, fmt.Errorf("task %s: %s; writing quarantine: %w", t.Name, msg, err)
	}
	where := "nowhere (no record was kept)"
	if qa != nil {
		res.Artifacts = append(res.Artifacts, *qa)
		where = fmt.Sprintf("quarantine dataset %s (%s)", qa.ID, filepath.Join(job.StateDir, qa.Path))
	}
	logf(job.Log, "error: %s; nothing was written; the rejected records are in %s", msg, where)
	return res, Permanent(fmt.Errorf("task %s: %s; nothing was written; the rejected records are in %s", t.Name, msg, where))
}
