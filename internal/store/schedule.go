package store

import (
	"context"
	"time"
)

// PipelineRef names a pipeline.
type PipelineRef struct {
	Namespace string
	Pipeline  string
}

// ScheduleTick is the scheduler's watermark for one pipeline: every tick of
// its schedule at or before Tick has been handled (a run created, or the
// tick deliberately skipped), so a restarted scheduler neither skips nor
// repeats one.
type ScheduleTick struct {
	Namespace string
	Pipeline  string
	Tick      time.Time
	UpdatedAt time.Time
}

// AdvanceScheduleTick moves a pipeline's watermark from From to To.
type AdvanceScheduleTick struct {
	Namespace string
	Pipeline  string
	// From is the watermark the caller read; zero when none was recorded.
	From time.Time
	To   time.Time
	At   time.Time
}

// SchedulePause pauses the schedule of one pipeline, or of a whole
// namespace when Pipeline is "".
type SchedulePause struct {
	Namespace string
	Pipeline  string // "" pauses every pipeline of Namespace
	By        string
	At        time.Time
}

// LateRun records a scheduled tick whose run had not succeeded by the
// pipeline's deadline (tick + deadline).
type LateRun struct {
	Namespace string
	Pipeline  string
	Tick      time.Time
	// RunID is the tick's run; "" when none had been created yet (held
	// back by max_active_runs, say).
	RunID      string
	DetectedAt time.Time
}

// LateRunFilter selects late runs. Zero fields do not filter.
type LateRunFilter struct {
	Namespace string
	Pipeline  string
	// Limit caps the number returned (newest tick first); 0 means 100.
	Limit int
}

// ScheduleStore persists the scheduler's state: per-pipeline tick
// watermarks, pauses and late runs. Store embeds it, so transaction-bound
// stores have these methods too.
type ScheduleStore interface {
	// ListVersionedPipelines returns every pipeline with at least one
	// stored version (AccessStore.PutPipelineVersion), ordered by
	// namespace then name: the set the scheduler considers.
	ListVersionedPipelines(ctx context.Context) ([]PipelineRef, error)

	// GetScheduleTick returns a pipeline's watermark, or ErrNotFound if
	// none was recorded.
	GetScheduleTick(ctx context.Context, namespace, pipeline string) (ScheduleTick, error)
	// ListScheduleTicks returns every watermark, ordered by namespace then
	// pipeline.
	ListScheduleTicks(ctx context.Context) ([]ScheduleTick, error)
	// AdvanceScheduleTick is a compare-and-set on a pipeline's watermark:
	// it records p.To if the stored watermark is p.From (none stored when
	// p.From is zero). ErrConflict otherwise: another scheduler moved it.
	AdvanceScheduleTick(ctx context.Context, p AdvanceScheduleTick) error

	// SetSchedulePaused pauses (paused) or resumes a pipeline's or a
	// namespace's schedule. Pausing again keeps the first record; resuming
	// what is not paused is not an error.
	SetSchedulePaused(ctx context.Context, p SchedulePause, paused bool) error
	// ListSchedulePauses returns the pauses, ordered by namespace then
	// pipeline (a namespace's own pause, Pipeline "", first).
	ListSchedulePauses(ctx context.Context) ([]SchedulePause, error)

	// PutLateRun records a late tick. ErrConflict if the pipeline's tick
	// is already recorded: each late tick is recorded once.
	PutLateRun(ctx context.Context, l LateRun) error
	// ListLateRuns returns late runs, newest tick first.
	ListLateRuns(ctx context.Context, f LateRunFilter) ([]LateRun, error)
}
