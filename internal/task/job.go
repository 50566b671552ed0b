// Package task holds the task kinds sluice runs behind one contract: an
// executor receives a Job (one attempt of one task of one run) and returns
// a Result. The engine owns states, retries and timeouts; an executor only
// does the work and says how it went.
package task

import (
	"errors"
	"io"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// Job is one attempt at one task, as an executor receives it.
type Job struct {
	Run      store.Run
	Pipeline *pipeline.Pipeline
	Task     *pipeline.Task
	// Attempt is the attempt number, from 1.
	Attempt int
	// Vars are the values templates in the task's settings may use.
	Vars pipeline.Vars
	// Log is the attempt's log; a child process's stdout and stderr go here.
	Log io.Writer
	// Inputs are the output datasets of upstream tasks, by task name.
	Inputs map[string]store.Artifact
	// StateDir is the state directory; artifact and log paths are relative to it.
	StateDir string
	// Progress reports rows read and written so far. It may be nil; call
	// ReportProgress, which is safe either way.
	Progress func(rowsIn, rowsOut int64)
}

// ReportProgress calls j.Progress if it is set.
func (j *Job) ReportProgress(rowsIn, rowsOut int64) {
	if j.Progress != nil {
		j.Progress(rowsIn, rowsOut)
	}
}

// Result is what an attempt produced, successful or not: the engine records
// it with the attempt's outcome.
type Result struct {
	// ExitCode is the exit status of a child process, if the task ran one.
	// A child killed by signal N reports 128+N, as shells do.
	ExitCode        *int
	RowsIn          int64
	RowsOut         int64
	RowsQuarantined int64
	// Artifacts the attempt wrote; the engine records them together with
	// the attempt's end, in one transaction.
	Artifacts []store.Artifact
	// Output is the id of the artifact holding the task's output dataset
	// (one of Artifacts), or "".
	Output string
	// SchemaDrift lists how a data task's output schema departs from the
	// contract it declares, one description per difference; nil when it
	// keeps the contract or declares none.
	SchemaDrift []string
	// Checks are the results of the task's data-quality checks (and one
	// per consent step); the engine records them in the transaction that
	// finishes the attempt.
	Checks []store.CheckResult
	// ConsentFiltered is how many records consent steps filtered out
	// (part of the filtered records).
	ConsentFiltered int64
}

// ErrIntegrity marks a failure to verify stored data: a dataset that was
// tampered with, truncated, swapped for another, or cannot be decrypted.
// Executors wrap it (with Permanent: retrying cannot mend bytes); the engine
// records such an attempt as an integrity failure, apart from ordinary
// failures, because it says the stored data cannot be trusted.
var ErrIntegrity = errors.New("integrity failure")

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying cannot fix: bad
// configuration, a missing executable or input, an integrity failure. The
// engine fails the task at once instead of spending its retries on it.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
