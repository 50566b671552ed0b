package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// workspaceMode is the mode of a pipeline's workspace: runs may write data there.
const workspaceMode = 0o700

// evaluate handles one pipeline at now and returns when it next needs
// attention (zero: never, as far as this evaluation knows).
func (s *Scheduler) evaluate(ctx context.Context, ref store.PipelineRef, now time.Time, paused map[store.PipelineRef]store.SchedulePause) (time.Time, error) {
	p, _, err := s.Runnable(ctx, ref.Namespace, ref.Pipeline)
	if errors.Is(err, ErrNotRunnable) {
		s.log.Debug("not scheduling", slog.String("pipeline", ref.Namespace+"/"+ref.Pipeline), slog.Any("reason", err))
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	// Unfinished runs come first: they hold max_active_runs, and runs
	// queued by a detached trigger wait for this.
	count, err := s.resumeUnfinished(ctx, ref, p)
	if err != nil {
		return time.Time{}, err
	}
	if p.Schedule == "" {
		return time.Time{}, nil
	}
	c, err := ParseCron(p.Schedule)
	if err != nil {
		return time.Time{}, err
	}
	wm, err := s.st.GetScheduleTick(ctx, ref.Namespace, ref.Pipeline)
	if errors.Is(err, store.ErrNotFound) {
		// First sight of a scheduled pipeline: its history is not owed;
		// the first tick is the next one.
		err = s.st.AdvanceScheduleTick(ctx, store.AdvanceScheduleTick{Namespace: ref.Namespace, Pipeline: ref.Pipeline, To: now, At: now})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return time.Time{}, err
		}
		return c.Next(now), nil
	}
	if err != nil {
		return time.Time{}, err
	}

	s.mu.Lock()
	startedAt := s.startedAt
	s.mu.Unlock()
	pol := p.Scheduling
	keepMissed := 0
	switch pol.Catchup {
	case pipeline.CatchupLatest:
		keepMissed = 1
	case pipeline.CatchupAll:
		keepMissed = max(pol.CatchupLimit, 1)
	}
	// Due ticks: (watermark, now]. Missed ones (before the scheduler
	// started) are thinned by the catch-up policy, keeping the most recent.
	var (
		missed, onTime []time.Time
		skipped        int
		lastSkipped    time.Time
	)
	for t := c.Next(wm.Tick); !t.After(now); t = c.Next(t) {
		if t.Before(startedAt) {
			missed = append(missed, t)
			if len(missed) > keepMissed {
				lastSkipped = missed[0]
				missed = missed[1:]
				skipped++
			}
			continue
		}
		if len(onTime) == maxOnTime {
			break
		}
		onTime = append(onTime, t)
	}
	due := append(missed, onTime...)
	if isPaused(paused, ref) {
		// Ticks during a pause are skipped, not owed: backfill runs them.
		for _, t := range due {
			skipped++
			lastSkipped = t
			s.emit(Event{Kind: EventTickSkipped, Namespace: ref.Namespace, Pipeline: ref.Pipeline, Tick: t, Reason: "paused", At: now})
		}
		due = nil
	} else if skipped > 0 {
		s.log.Info("skipping missed ticks", slog.String("pipeline", ref.Namespace+"/"+ref.Pipeline),
			slog.Int("ticks", skipped), slog.String("catchup", string(pol.Catchup)))
		s.emit(Event{Kind: EventTickSkipped, Namespace: ref.Namespace, Pipeline: ref.Pipeline, Tick: lastSkipped,
			Reason: fmt.Sprintf("catchup %s: %d missed ticks skipped", pol.Catchup, skipped), At: now})
	}
	mark := wm.Tick
	if !lastSkipped.IsZero() {
		if err := s.advance(ctx, ref, mark, lastSkipped, now); err != nil {
			return time.Time{}, err
		}
		mark = lastSkipped
	}

	var pending []time.Time
	for i, t := range due {
		if count >= max(pol.MaxActiveRuns, 1) {
			pending = due[i:]
			break
		}
		run, created, err := s.createTickRun(ctx, p, c, t, TriggerSchedule)
		if err != nil {
			return time.Time{}, err
		}
		if err := s.advance(ctx, ref, mark, t, now); err != nil {
			return time.Time{}, err
		}
		mark = t
		s.watchTick(ref, t, run.ID, pol.Deadline)
		if created || !run.State.Done() && !s.isInflight(run.ID) && !s.eng.Active(run) {
			s.startRun(ctx, ref, p, run.ID, t)
			count++
		}
	}

	next := c.Next(now)
	if d := pol.Deadline; d > 0 {
		n, err := s.checkLate(ctx, ref, pending, d, now)
		if err != nil {
			return time.Time{}, err
		}
		if !n.IsZero() && n.Before(next) {
			next = n
		}
	}
	return next, nil
}

// advance moves ref's watermark from from to to.
func (s *Scheduler) advance(ctx context.Context, ref store.PipelineRef, from, to, now time.Time) error {
	err := s.st.AdvanceScheduleTick(ctx, store.AdvanceScheduleTick{Namespace: ref.Namespace, Pipeline: ref.Pipeline, From: from, To: to, At: now})
	if err != nil {
		return fmt.Errorf("recording tick %s of %s/%s: %w", to.UTC().Format(time.RFC3339), ref.Namespace, ref.Pipeline, err)
	}
	return nil
}

// createTickRun creates the run of tick t, or finds it created; created
// reports which.
func (s *Scheduler) createTickRun(ctx context.Context, p *pipeline.Pipeline, c Cron, t time.Time, trigger string) (store.Run, bool, error) {
	id := RunID(p.Namespace, p.Name, t)
	params, err := p.ResolveParams(nil)
	if err != nil {
		return store.Run{}, false, fmt.Errorf("creating run %s: %w", id, err)
	}
	run, err := s.eng.CreateRunIn(ctx, s.st, p, engine.RunRequest{ID: id, LogicalDate: c.LogicalDate(t), Params: params, Trigger: trigger})
	if errors.Is(err, store.ErrConflict) {
		run, err = s.st.GetRun(ctx, id)
		if err != nil {
			return store.Run{}, false, fmt.Errorf("reading run %s: %w", id, err)
		}
		s.emit(Event{Kind: EventRunCreated, Namespace: p.Namespace, Pipeline: p.Name, Tick: t, RunID: id, At: s.clock.Now()})
		return run, false, nil
	}
	if err != nil {
		return store.Run{}, false, err
	}
	s.emit(Event{Kind: EventRunCreated, Namespace: p.Namespace, Pipeline: p.Name, Tick: t, RunID: id, At: s.clock.Now()})
	return run, true, nil
}

// resumeUnfinished counts ref's unfinished runs against max_active_runs
// and starts those nobody drives (left by a crash, or queued by a detached
// trigger), oldest first, within the cap. Runs of a version that may not
// run on schedule, or of content that is not a stored version, are left
// alone and not counted.
func (s *Scheduler) resumeUnfinished(ctx context.Context, ref store.PipelineRef, current *pipeline.Pipeline) (int, error) {
	runs, err := s.st.ListRuns(ctx, store.RunFilter{Namespace: ref.Namespace, Pipeline: ref.Pipeline,
		States: []store.RunState{store.RunQueued, store.RunRunning}, Limit: 1000})
	if err != nil {
		return 0, fmt.Errorf("listing unfinished runs of %s/%s: %w", ref.Namespace, ref.Pipeline, err)
	}
	slices.Reverse(runs) // oldest first
	limit := max(current.Scheduling.MaxActiveRuns, 1)
	count := 0
	var versions []store.PipelineVersion
	for _, run := range runs {
		if s.isInflight(run.ID) || s.eng.Active(run) {
			count++
			continue
		}
		if count >= limit {
			continue
		}
		p := current
		if run.PipelineHash != current.Hash {
			if versions == nil {
				if versions, err = s.st.ListPipelineVersions(ctx, ref.Namespace, ref.Pipeline); err != nil {
					return 0, fmt.Errorf("listing versions of %s/%s: %w", ref.Namespace, ref.Pipeline, err)
				}
			}
			i := slices.IndexFunc(versions, func(v store.PipelineVersion) bool { return v.Hash == run.PipelineHash })
			if i < 0 {
				continue
			}
			v := access.Version{Namespace: ref.Namespace, Pipeline: ref.Pipeline, Number: versions[i].Number, Hash: versions[i].Hash}
			ok, _, err := s.acc.RunnableOnSchedule(ctx, v)
			if err != nil {
				return 0, fmt.Errorf("checking %s: %w", v, err)
			}
			if !ok {
				continue
			}
			pv, err := s.st.GetPipelineVersion(ctx, v.Namespace, v.Pipeline, v.Number)
			if err != nil {
				return 0, fmt.Errorf("reading %s: %w", v, err)
			}
			if p, err = pipeline.Parse(s.workspaceFile(ref), pv.Content, s.opts.Parse); err != nil {
				return 0, fmt.Errorf("parsing %s: %w", v, err)
			}
		}
		tick, _ := tickOf(run.ID)
		if !tick.IsZero() && run.Trigger == TriggerSchedule {
			s.watchTick(ref, tick, run.ID, current.Scheduling.Deadline)
		}
		s.startRun(ctx, ref, p, run.ID, tick)
		count++
	}
	return count, nil
}

func (s *Scheduler) isInflight(runID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inflight[runID]
	return ok
}

// startRun hands a run to the engine in a goroutine of its own. The
// execution outlives ctx's cancellation (Stop must not cancel runs: a
// cancelled run is final, an interrupted one resumes); its end wakes the
// loop.
func (s *Scheduler) startRun(ctx context.Context, ref store.PipelineRef, p *pipeline.Pipeline, runID string, tick time.Time) {
	s.mu.Lock()
	if _, ok := s.inflight[runID]; ok {
		s.mu.Unlock()
		return
	}
	s.inflight[runID] = ref
	s.mu.Unlock()
	if err := s.PrepareWorkspace(ref.Namespace, ref.Pipeline); err != nil {
		s.log.Error("creating pipeline workspace", slog.String("run", runID), slog.Any("error", err))
	}
	s.emit(Event{Kind: EventRunStarted, Namespace: ref.Namespace, Pipeline: ref.Pipeline, Tick: tick, RunID: runID, At: s.clock.Now()})
	s.runs.Add(1)
	go func() {
		defer s.runs.Done()
		run, err := s.eng.Execute(context.WithoutCancel(ctx), p, runID)
		if err != nil {
			s.log.Error("executing run", slog.String("run", runID), slog.Any("error", err))
		}
		s.mu.Lock()
		delete(s.inflight, runID)
		s.mu.Unlock()
		s.emit(Event{Kind: EventRunFinished, Namespace: ref.Namespace, Pipeline: ref.Pipeline, Tick: tick, RunID: runID, State: run.State, At: s.clock.Now()})
		s.Wake()
	}()
}

// PrepareWorkspace creates the directory a pushed version of
// namespace/name runs in (its relative paths resolve there), mode 0700.
func (s *Scheduler) PrepareWorkspace(namespace, name string) error {
	dir := filepath.Dir(s.workspaceFile(store.PipelineRef{Namespace: namespace, Pipeline: name}))
	if err := os.MkdirAll(dir, workspaceMode); err != nil {
		return fmt.Errorf("creating the workspace of %s/%s: %w", namespace, name, err)
	}
	return nil
}

// Wait blocks until every run handed to the engine has returned.
func (s *Scheduler) Wait() { s.runs.Wait() }

// watchTick remembers a tick whose run must succeed by its deadline.
func (s *Scheduler) watchTick(ref store.PipelineRef, tick time.Time, runID string, deadline time.Duration) {
	if deadline <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watch[ref]
	if w == nil {
		w = map[time.Time]string{}
		s.watch[ref] = w
	}
	w[tick] = runID
}

// checkLate records the watched ticks and the ticks still pending (held
// back by max_active_runs) whose deadline has passed without a successful
// run; it returns the earliest deadline still ahead.
func (s *Scheduler) checkLate(ctx context.Context, ref store.PipelineRef, pending []time.Time, deadline time.Duration, now time.Time) (time.Time, error) {
	s.mu.Lock()
	watched := make(map[time.Time]string, len(s.watch[ref])+len(pending))
	for t, id := range s.watch[ref] {
		watched[t] = id
	}
	s.mu.Unlock()
	for _, t := range pending {
		if _, ok := watched[t]; !ok {
			watched[t] = ""
		}
	}
	var next time.Time
	for t, id := range watched {
		due := t.Add(deadline)
		if due.After(now) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		late := true
		if id != "" {
			run, err := s.st.GetRun(ctx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return time.Time{}, fmt.Errorf("checking deadline of run %s: %w", id, err)
			}
			late = err != nil || run.State != store.RunSuccess || run.EndedAt.After(due)
		}
		if late {
			err := s.st.PutLateRun(ctx, store.LateRun{Namespace: ref.Namespace, Pipeline: ref.Pipeline, Tick: t, RunID: id, DetectedAt: now})
			switch {
			case err == nil:
				s.log.Warn("late run", slog.String("pipeline", ref.Namespace+"/"+ref.Pipeline), slog.Time("tick", t), slog.String("run", id))
				s.emit(Event{Kind: EventLate, Namespace: ref.Namespace, Pipeline: ref.Pipeline, Tick: t, RunID: id, At: now})
			case !errors.Is(err, store.ErrConflict):
				return time.Time{}, err
			}
		}
		if id != "" {
			s.mu.Lock()
			delete(s.watch[ref], t)
			s.mu.Unlock()
		}
	}
	return next, nil
}
