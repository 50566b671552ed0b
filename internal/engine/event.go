package engine

import "time"

// EventKind says what happened.
type EventKind string

// The event kinds.
const (
	RunStarted   EventKind = "run_started"
	TaskQueued   EventKind = "task_queued"
	TaskStarted  EventKind = "task_started"
	TaskProgress EventKind = "task_progress"
	TaskFinished EventKind = "task_finished" // success, failed or cancelled
	TaskSkipped  EventKind = "task_skipped"
	TaskRetrying EventKind = "task_retrying" // the attempt failed; another is due at NextAttemptAt
	RunFinished  EventKind = "run_finished"
)

// Event is a step of a run, reported to Options.Observer as it happens,
// after the store has recorded it.
type Event struct {
	Kind    EventKind
	RunID   string
	Task    string // "" for run events
	Attempt int    // for task events about an attempt
	// State is the run's state for run events, the task's for task events.
	State           string
	RowsIn          int64
	RowsOut         int64
	RowsQuarantined int64
	Err             string
	At              time.Time
	// Duration of the attempt (TaskFinished, TaskRetrying) or of the run
	// (RunFinished).
	Duration time.Duration
	// NextAttemptAt is when the next attempt is due (TaskRetrying).
	NextAttemptAt time.Time
}
