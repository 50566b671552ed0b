package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/internal/store"
)

// The SQL of the schedule store (migrations/0009_schedule.sql).
const (
	qListVersioned = `SELECT DISTINCT namespace, pipeline FROM pipeline_versions ORDER BY namespace, pipeline`
	qGetTick       = `SELECT namespace, pipeline, tick, updated_at FROM schedule_ticks WHERE namespace = ? AND pipeline = ?`
	qListTicks     = `SELECT namespace, pipeline, tick, updated_at FROM schedule_ticks ORDER BY namespace, pipeline`
	qInsertTick    = `INSERT INTO schedule_ticks (namespace, pipeline, tick, updated_at) VALUES (?, ?, ?, ?)`
	qAdvanceTick   = `UPDATE schedule_ticks SET tick = ?, updated_at = ? WHERE namespace = ? AND pipeline = ? AND tick = ?`
	qPause         = `INSERT INTO schedule_pauses (namespace, pipeline, paused_by, paused_at) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, pipeline) DO NOTHING`
	qResume        = `DELETE FROM schedule_pauses WHERE namespace = ? AND pipeline = ?`
	qListPauses    = `SELECT namespace, pipeline, paused_by, paused_at FROM schedule_pauses ORDER BY namespace, pipeline`
	qInsertLate    = `INSERT INTO late_runs (namespace, pipeline, tick, run_id, detected_at) VALUES (?, ?, ?, ?, ?)`
	lateCols       = `namespace, pipeline, tick, run_id, detected_at`
	qListLate      = `SELECT ` + lateCols + ` FROM late_runs
	WHERE (? = '' OR namespace = ?) AND (? = '' OR pipeline = ?) ORDER BY tick DESC, namespace, pipeline LIMIT ?`
)

// ListVersionedPipelines returns every pipeline with a stored version.
func (o ops) ListVersionedPipelines(ctx context.Context) ([]store.PipelineRef, error) {
	rs, err := queryAccessRows(ctx, o.q, func(s scanner) (store.PipelineRef, error) {
		var r store.PipelineRef
		err := s.Scan(&r.Namespace, &r.Pipeline)
		return r, err
	}, qListVersioned)
	if err != nil {
		return nil, fmt.Errorf("listing versioned pipelines: %w", err)
	}
	return rs, nil
}

func scanTick(s scanner) (store.ScheduleTick, error) {
	var (
		t             store.ScheduleTick
		tick, updated sql.NullInt64
	)
	if err := s.Scan(&t.Namespace, &t.Pipeline, &tick, &updated); err != nil {
		return t, err
	}
	t.Tick, t.UpdatedAt = fromMicros(tick), fromMicros(updated)
	return t, nil
}

// GetScheduleTick returns a pipeline's watermark, or ErrNotFound.
func (o ops) GetScheduleTick(ctx context.Context, namespace, pipeline string) (store.ScheduleTick, error) {
	t, err := scanTick(o.q.QueryRowContext(ctx, qGetTick, namespace, pipeline))
	return found(t, err, "getting schedule tick of %s/%s", namespace, pipeline)
}

// ListScheduleTicks returns every watermark.
func (o ops) ListScheduleTicks(ctx context.Context) ([]store.ScheduleTick, error) {
	ts, err := queryAccessRows(ctx, o.q, scanTick, qListTicks)
	if err != nil {
		return nil, fmt.Errorf("listing schedule ticks: %w", err)
	}
	return ts, nil
}

// AdvanceScheduleTick is a compare-and-set on a pipeline's watermark. A
// zero p.At means now.
func (o ops) AdvanceScheduleTick(ctx context.Context, p store.AdvanceScheduleTick) error {
	if p.Namespace == "" || p.Pipeline == "" || p.To.IsZero() {
		return fmt.Errorf("advancing schedule tick of %s/%s: empty namespace, pipeline or tick", p.Namespace, p.Pipeline)
	}
	at := micros(orNow(p.At))
	err := o.atomic(ctx, func(q querier) error {
		if p.From.IsZero() {
			_, err := q.ExecContext(ctx, qInsertTick, p.Namespace, p.Pipeline, p.To.UnixMicro(), at)
			if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
				return fmt.Errorf("a watermark is already recorded: %w", store.ErrConflict)
			}
			return err
		}
		err := execAccessOne(ctx, q, qAdvanceTick, p.To.UnixMicro(), at, p.Namespace, p.Pipeline, p.From.UnixMicro())
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("watermark is no longer %s: %w", p.From.UTC().Format("2006-01-02T15:04:05.999999Z"), store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("advancing schedule tick of %s/%s: %w", p.Namespace, p.Pipeline, err)
	}
	return nil
}

// SetSchedulePaused pauses or resumes a pipeline or a namespace. A zero
// p.At means now.
func (o ops) SetSchedulePaused(ctx context.Context, p store.SchedulePause, paused bool) error {
	if p.Namespace == "" {
		return errors.New("pausing schedule: empty namespace")
	}
	err := o.atomic(ctx, func(q querier) error {
		if paused {
			_, err := q.ExecContext(ctx, qPause, p.Namespace, p.Pipeline, p.By, micros(orNow(p.At)))
			return err
		}
		_, err := q.ExecContext(ctx, qResume, p.Namespace, p.Pipeline)
		return err
	})
	if err != nil {
		return fmt.Errorf("setting schedule of %s/%s paused=%t: %w", p.Namespace, p.Pipeline, paused, err)
	}
	return nil
}

// ListSchedulePauses returns the pauses.
func (o ops) ListSchedulePauses(ctx context.Context) ([]store.SchedulePause, error) {
	ps, err := queryAccessRows(ctx, o.q, func(s scanner) (store.SchedulePause, error) {
		var (
			p  store.SchedulePause
			at sql.NullInt64
		)
		err := s.Scan(&p.Namespace, &p.Pipeline, &p.By, &at)
		p.At = fromMicros(at)
		return p, err
	}, qListPauses)
	if err != nil {
		return nil, fmt.Errorf("listing schedule pauses: %w", err)
	}
	return ps, nil
}

// PutLateRun records a late tick once. A zero DetectedAt means now.
func (o ops) PutLateRun(ctx context.Context, l store.LateRun) error {
	if l.Namespace == "" || l.Pipeline == "" || l.Tick.IsZero() {
		return fmt.Errorf("recording late run of %s/%s: empty namespace, pipeline or tick", l.Namespace, l.Pipeline)
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertLate, l.Namespace, l.Pipeline, l.Tick.UnixMicro(), l.RunID, micros(orNow(l.DetectedAt)))
		return err
	})
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("recording late run of %s/%s: tick already recorded: %w", l.Namespace, l.Pipeline, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("recording late run of %s/%s: %w", l.Namespace, l.Pipeline, err)
	}
	return nil
}

// ListLateRuns returns late runs, newest tick first.
func (o ops) ListLateRuns(ctx context.Context, f store.LateRunFilter) ([]store.LateRun, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	ls, err := queryAccessRows(ctx, o.q, func(s scanner) (store.LateRun, error) {
		var (
			l              store.LateRun
			tick, detected sql.NullInt64
		)
		err := s.Scan(&l.Namespace, &l.Pipeline, &tick, &l.RunID, &detected)
		l.Tick, l.DetectedAt = fromMicros(tick), fromMicros(detected)
		return l, err
	}, qListLate, f.Namespace, f.Namespace, f.Pipeline, f.Pipeline, limit)
	if err != nil {
		return nil, fmt.Errorf("listing late runs: %w", err)
	}
	return ls, nil
}
