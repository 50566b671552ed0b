package schedule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/store"
)

// TriggerRequest asks for a manual run of the newest runnable version.
type TriggerRequest struct {
	Namespace string
	Pipeline  string
	// Params are given parameter values, resolved against the pipeline's
	// declarations (defaults filled in, types checked).
	Params map[string]string
	// LogicalDate is YYYY-MM-DD; default today in the schedule's zone (UTC
	// for an unscheduled pipeline).
	LogicalDate string
	// Detach leaves the run queued for a running scheduler to execute.
	Detach bool
	// Audit, when set, is the audit event of the trigger: it commits in
	// the run's creation transaction (audit.Do), so the run exists only
	// with its record, and a creation that fails is recorded as a failure.
	// Trigger sets its "version" and "logical_date" details to the version
	// and date the run was created with.
	Audit *audit.Event
}

// Trigger creates a manual run and, unless req.Detach, executes it to a
// final state. ErrNotRunnable if no version may run; pipeline.ErrParams
// (wrapped) for bad parameters.
func (s *Scheduler) Trigger(ctx context.Context, req TriggerRequest) (store.Run, error) {
	p, v, err := s.Runnable(ctx, req.Namespace, req.Pipeline)
	if err != nil {
		return store.Run{}, fmt.Errorf("triggering %s/%s: %w", req.Namespace, req.Pipeline, err)
	}
	params, err := p.ResolveParams(req.Params)
	if err != nil {
		return store.Run{}, fmt.Errorf("triggering %s/%s: %w", req.Namespace, req.Pipeline, err)
	}
	date := req.LogicalDate
	if date == "" {
		date = s.clock.Now().UTC().Format(time.DateOnly)
		if p.Schedule != "" {
			if c, err := ParseCron(p.Schedule); err == nil {
				date = c.LogicalDate(s.clock.Now())
			}
		}
	}
	rr := engine.RunRequest{LogicalDate: date, Params: params, Trigger: TriggerManual}
	var run store.Run
	create := func(st store.Store) (err error) {
		run, err = s.eng.CreateRunIn(ctx, st, p, rr)
		return err
	}
	if req.Audit != nil {
		ev := *req.Audit
		ev.Details = maps.Clone(ev.Details)
		if ev.Details == nil {
			ev.Details = map[string]string{}
		}
		ev.Details["version"], ev.Details["logical_date"] = strconv.Itoa(v.Number), date
		err = audit.Do(ctx, s.st, ev, create)
	} else {
		err = create(s.st)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("triggering %s/%s: %w", req.Namespace, req.Pipeline, err)
	}
	if req.Detach {
		s.Wake()
		return run, nil
	}
	run, err = s.eng.Execute(ctx, p, run.ID)
	if err != nil {
		return run, fmt.Errorf("triggering %s/%s: %w", req.Namespace, req.Pipeline, err)
	}
	return run, nil
}

// BackfillRequest asks for the runs of every tick whose logical date is in
// [From, To] (YYYY-MM-DD, inclusive).
type BackfillRequest struct {
	Namespace string
	Pipeline  string
	From, To  string
	// DryRun lists the ticks without creating anything.
	DryRun bool
}

// BackfillItem is one tick of a backfill and what became of it.
type BackfillItem struct {
	Tick        time.Time
	LogicalDate string
	RunID       string
	// Existed is true when the tick's run had already been created (by
	// the scheduler or an earlier backfill): it is resumed if unfinished,
	// not run again.
	Existed bool
	State   store.RunState // after the backfill ("" in a dry run)
	Error   string
}

// maxBackfill bounds one backfill, so a typo in a date cannot queue a
// century of runs.
const maxBackfill = 10000

// Backfill creates one run per tick whose logical date lies in the range,
// with the tick's deterministic run id (so a tick already run is not run
// again), and executes them oldest first, at most max_active_runs at a
// time. ErrNoSchedule if the pipeline has no schedule.
func (s *Scheduler) Backfill(ctx context.Context, req BackfillRequest) ([]BackfillItem, error) {
	items, err := s.backfill(ctx, req)
	if err != nil {
		return items, fmt.Errorf("backfilling %s/%s: %w", req.Namespace, req.Pipeline, err)
	}
	return items, nil
}

func (s *Scheduler) backfill(ctx context.Context, req BackfillRequest) ([]BackfillItem, error) {
	p, _, err := s.Runnable(ctx, req.Namespace, req.Pipeline)
	if err != nil {
		return nil, err
	}
	if p.Schedule == "" {
		return nil, ErrNoSchedule
	}
	c, err := ParseCron(p.Schedule)
	if err != nil {
		return nil, err
	}
	from, err := time.ParseInLocation(time.DateOnly, req.From, c.Location())
	if err != nil {
		return nil, fmt.Errorf("--from %q is not YYYY-MM-DD", req.From)
	}
	to, err := time.ParseInLocation(time.DateOnly, req.To, c.Location())
	if err != nil {
		return nil, fmt.Errorf("--to %q is not YYYY-MM-DD", req.To)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("--to %s is before --from %s", req.To, req.From)
	}
	end := to.AddDate(0, 0, 1) // midnight after the last day
	var items []BackfillItem
	for t := c.Next(from.Add(-time.Nanosecond)); t.Before(end); t = c.Next(t) {
		if len(items) == maxBackfill {
			return nil, fmt.Errorf("the range holds more than %d ticks: split it", maxBackfill)
		}
		items = append(items, BackfillItem{Tick: t.UTC(), LogicalDate: c.LogicalDate(t), RunID: RunID(p.Namespace, p.Name, t)})
	}
	if req.DryRun {
		for i := range items {
			run, err := s.st.GetRun(ctx, items[i].RunID)
			switch {
			case err == nil:
				items[i].Existed, items[i].State = true, run.State
			case !errors.Is(err, store.ErrNotFound):
				return items, fmt.Errorf("reading run %s: %w", items[i].RunID, err)
			}
		}
		return items, nil
	}

	// Up to max_active_runs workers take the ticks in order.
	var (
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range max(p.Scheduling.MaxActiveRuns, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				it := &items[i]
				run, created, err := s.createTickRun(ctx, p, c, it.Tick, TriggerBackfill)
				if err != nil {
					it.Error = err.Error()
					continue
				}
				it.Existed, it.State = !created, run.State
				if run.State.Done() || s.eng.Active(run) {
					continue
				}
				run, err = s.eng.Execute(ctx, p, run.ID)
				if err != nil {
					it.Error = err.Error()
				}
				it.State = run.State
			}
		}()
	}
	for i := range items {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	return items, ctx.Err()
}

// Status is the schedule of one versioned pipeline, for `schedule list`.
type Status struct {
	Namespace string
	Pipeline  string
	// Version is the number of the runnable version; 0 when none may run
	// (NotRunnable says why).
	Version     int
	NotRunnable string
	Schedule    string
	// Classification is the runnable version's (the pipeline spec's
	// classification); "" when none may run.
	Classification string
	// Next is the next tick not yet handled: in the past when a tick is
	// held back (max_active_runs) or the scheduler is not running.
	Next time.Time
	// LastTick is the watermark: every tick up to it was handled.
	LastTick time.Time
	Paused   bool
	// PausedBy names who paused it, with "namespace " before it when the
	// whole namespace is paused.
	PausedBy string
	Late     []store.LateRun
}

// List reports the schedule of every versioned pipeline.
func (s *Scheduler) List(ctx context.Context) ([]Status, error) {
	refs, err := s.st.ListVersionedPipelines(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	paused, err := s.pauses(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	now := s.clock.Now()
	out := make([]Status, 0, len(refs))
	for _, ref := range refs {
		st := Status{Namespace: ref.Namespace, Pipeline: ref.Pipeline}
		if p, ok := paused[store.PipelineRef{Namespace: ref.Namespace}]; ok {
			st.Paused, st.PausedBy = true, "namespace "+p.By
		} else if p, ok := paused[ref]; ok {
			st.Paused, st.PausedBy = true, p.By
		}
		p, v, err := s.Runnable(ctx, ref.Namespace, ref.Pipeline)
		switch {
		case errors.Is(err, ErrNotRunnable):
			st.NotRunnable = err.Error()
		case errors.Is(err, ErrUnparsable):
			// One pipeline that cannot run does not hide the others. The
			// cause names paths of this machine: it goes to the log.
			s.log.Error("reading the runnable version", "pipeline", ref.Namespace+"/"+ref.Pipeline, "error", err)
			st.NotRunnable = UnparsableReason
		case err != nil:
			return nil, fmt.Errorf("listing schedules: %w", err)
		default:
			st.Version, st.Schedule, st.Classification = v.Number, p.Schedule, string(p.Classification)
		}
		wm, err := s.st.GetScheduleTick(ctx, ref.Namespace, ref.Pipeline)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("listing schedules: %w", err)
		}
		st.LastTick = wm.Tick
		if st.Schedule != "" {
			c, err := ParseCron(st.Schedule)
			if err != nil {
				return nil, fmt.Errorf("listing schedules: %w", err)
			}
			from := wm.Tick
			if from.IsZero() {
				from = now
			}
			st.Next = c.Next(from).UTC()
		}
		if st.Late, err = s.st.ListLateRuns(ctx, store.LateRunFilter{Namespace: ref.Namespace, Pipeline: ref.Pipeline, Limit: 10}); err != nil {
			return nil, fmt.Errorf("listing schedules: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// SetPaused pauses or resumes the schedule of namespace/name, or of the
// whole namespace when name is "". Ticks while paused are skipped; on
// resume the schedule goes on from the next tick (backfill runs the
// skipped ones).
func (s *Scheduler) SetPaused(ctx context.Context, namespace, name, by string, paused bool) error {
	err := s.st.SetSchedulePaused(ctx, store.SchedulePause{Namespace: namespace, Pipeline: name, By: by, At: s.clock.Now()}, paused)
	if err != nil {
		return err
	}
	s.Wake()
	return nil
}
