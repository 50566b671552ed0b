package store

import (
	"context"
	"time"
)

// CheckSample is one failing record of a data-quality check, as the run
// keeps it: where the record was and its value MASKED (e.g. "ab***"). A
// sample never holds a raw value: any value may be personal data, and check
// results are read by people who may not see it.
type CheckSample struct {
	// Pos names the record, e.g. "line 42" or "row 7".
	Pos string `json:"pos"`
	// Value is the masked value that failed, or "" when the check is not
	// about one value (a custom expression, say).
	Value string `json:"value,omitempty"`
}

// CheckResult is the outcome of one data-quality check in one attempt of a
// task.
type CheckResult struct {
	RunID   string
	Task    string
	Attempt int
	// Name identifies the check within the task, e.g. "email.regex",
	// "row_count" or a custom check's own name.
	Name string
	// Kind is the kind of check: not_null, unique, regex, row_count, ...,
	// or "consent" for the records a consent step filtered out.
	Kind string
	// Column is the column checked, "" for checks on the whole dataset.
	Column string
	// Severity is warn, quarantine or fail (filter for consent).
	Severity string
	// Checked is the number of values (or records) the check evaluated;
	// Failing how many of them failed, and FailingPct that share in
	// percent (0 when nothing was checked).
	Checked    int64
	Failing    int64
	FailingPct float64
	// Mostly is the pass fraction the check needs, in (0, 1]; 1 means
	// every value.
	Mostly float64
	// Passed is whether the pass fraction reached Mostly.
	Passed bool
	// Detail explains the outcome of a dataset check, e.g. "0 rows, want
	// at least 1"; never a raw value.
	Detail string
	// Samples are up to five failing records, values masked.
	Samples []CheckSample
	// CreatedAt is when the result was recorded; zero means now.
	CreatedAt time.Time
}

// QualityStore persists data-quality check results per run.
// Store embeds it, so transaction-bound stores have these methods too.
type QualityStore interface {
	// PutCheckResults records the check results of one attempt of a task.
	// The engine calls it in the transaction that finishes the attempt,
	// so results exist exactly when the attempt's end does. The RunID,
	// Task and Attempt of each result are set from the arguments.
	// ErrConflict if the attempt already has a result of the same name.
	PutCheckResults(ctx context.Context, runID, task string, attempt int, results []CheckResult) error
	// ListCheckResults returns a run's check results ordered by task
	// (in the run's task order), attempt, then the order they were put.
	ListCheckResults(ctx context.Context, runID string) ([]CheckResult, error)
}
