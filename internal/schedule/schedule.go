// Package schedule is the scheduler: it turns the cron schedules of pushed
// pipeline versions into runs, applies each pipeline's catch-up policy after
// downtime, keeps at most max_active_runs runs of a pipeline going, honours
// pauses, detects late ticks, and serves manual triggers and backfills.
//
// Its state lives in the store (store.ScheduleStore): a per-pipeline tick
// watermark (every tick at or before it was handled), pauses and late runs.
// A tick's run id is derived from the pipeline and the tick, so creating it
// twice fails with store.ErrConflict, which the scheduler reads as "already
// created": a restart between creating a run and advancing the watermark
// neither duplicates nor loses the tick.
//
// One scheduler per store: with the embedded SQLite store that is one per
// state directory. Several schedulers on one PostgreSQL store will elect a
// leader (an advisory lock) before evaluating; until then the watermark's
// compare-and-set and the deterministic run ids keep a second scheduler
// from duplicating work, though both would try.
package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// Sentinel errors.
// UnparsableReason is what a listing says of a pipeline whose runnable
// version does not parse; the parser's message, which names paths of the
// machine, is logged instead.
const UnparsableReason = "the runnable version does not parse on this server; the server log says why"

var (
	// ErrNotRunnable: the pipeline has no version that may run on
	// schedule (none pushed, or, in a protected namespace, none approved).
	ErrNotRunnable = errors.New("no runnable version")
	// ErrUnparsable: the runnable version stored does not parse (with
	// this binary's spec and connectors), so it cannot run.
	ErrUnparsable = errors.New("stored version does not parse")
	// ErrNoSchedule: the pipeline's runnable version has no schedule, so
	// it has no ticks to backfill.
	ErrNoSchedule = errors.New("pipeline has no schedule")
)

// Triggers recorded on the runs the scheduler creates.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
	TriggerBackfill = "backfill"
)

// Defaults for Options.
const (
	// DefaultRefresh bounds how long the loop sleeps when no tick is due
	// sooner, so pipelines pushed, paused or resumed by another process
	// are noticed.
	DefaultRefresh = time.Minute
	// DefaultStopGrace is how long Stop waits for runs in flight.
	DefaultStopGrace = 10 * time.Second
	// maxOnTime bounds the ticks one evaluation handles as on time for a
	// pipeline (held back by max_active_runs, they accumulate).
	maxOnTime = 1000
)

// Engine creates and executes runs; *engine.Engine implements it.
type Engine interface {
	CreateRunIn(ctx context.Context, st store.Store, p *pipeline.Pipeline, req engine.RunRequest) (store.Run, error)
	Execute(ctx context.Context, p *pipeline.Pipeline, runID string) (store.Run, error)
	Active(run store.Run) bool
}

// Access says whether a pipeline version may run on schedule;
// *access.Service implements it.
type Access interface {
	RunnableOnSchedule(ctx context.Context, v access.Version) (bool, string, error)
}

// Options configure a Scheduler. Store, Engine, Access and StateDir are
// required.
type Options struct {
	Store  store.Store
	Engine Engine
	Access Access
	// Clock drives ticks, catch-up and deadlines; default clock.Real.
	Clock clock.Clock
	// Logger receives the scheduler's diagnostics; default discards.
	Logger *slog.Logger
	// StateDir is the state directory. A version's content is parsed as
	// the file StateDir/pipelines/<namespace>/<name>/pipeline.yaml, so its
	// relative paths resolve inside that per-pipeline workspace (created
	// 0700 before a run executes): a stored version has no directory of
	// its own, and the directory it was pushed from is another machine's.
	StateDir string
	// Parse configures pipeline parsing (the connector registry).
	Parse pipeline.Options
	// Refresh is the longest the loop sleeps; default DefaultRefresh.
	Refresh time.Duration
	// StopGrace is how long Stop waits for runs in flight; default
	// DefaultStopGrace. Runs still going after it keep their lease until
	// the process exits, and the next scheduler resumes them.
	StopGrace time.Duration
	// Observer, if set, receives every Event synchronously; it must not
	// block.
	Observer func(Event)
}

// EventKind says what happened.
type EventKind string

// Event kinds.
const (
	EventRunCreated  EventKind = "run_created"  // a tick's run was created (or found created)
	EventRunStarted  EventKind = "run_started"  // a run was handed to the engine
	EventRunFinished EventKind = "run_finished" // the engine returned from a run
	EventTickSkipped EventKind = "tick_skipped" // a tick was skipped (catch-up policy, pause)
	EventLate        EventKind = "late"         // a late tick was recorded
)

// Event is something the scheduler did, for observers and tests.
type Event struct {
	Kind      EventKind
	Namespace string
	Pipeline  string
	Tick      time.Time // zero for runs not created from a tick
	RunID     string
	State     store.RunState // for EventRunFinished
	Reason    string         // for EventTickSkipped
	At        time.Time
}

// Scheduler creates and starts scheduled runs. It is safe for concurrent
// use; Start runs its loop, and the other methods work without it.
type Scheduler struct {
	opts  Options
	st    store.Store
	eng   Engine
	acc   Access
	clock clock.Clock
	log   *slog.Logger
	wake  chan struct{}

	mu        sync.Mutex
	startedAt time.Time // ticks before it were missed (downtime)
	cache     map[store.PipelineRef]cached
	watch     map[store.PipelineRef]map[time.Time]string // tick → run id, for deadlines
	inflight  map[string]store.PipelineRef
	cancel    context.CancelFunc
	loopDone  chan struct{}
	obsMu     sync.Mutex
	runs      sync.WaitGroup
}

type cached struct {
	hash string
	p    *pipeline.Pipeline
}

// New returns a Scheduler for opts.
func New(opts Options) (*Scheduler, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("scheduler options: no store")
	case opts.Engine == nil:
		return nil, errors.New("scheduler options: no engine")
	case opts.Access == nil:
		return nil, errors.New("scheduler options: no access service")
	case opts.StateDir == "":
		return nil, errors.New("scheduler options: no state directory")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	return &Scheduler{
		opts: opts, st: opts.Store, eng: opts.Engine, acc: opts.Access, clock: opts.Clock, log: opts.Logger,
		wake:     make(chan struct{}, 1),
		cache:    map[store.PipelineRef]cached{},
		watch:    map[store.PipelineRef]map[time.Time]string{},
		inflight: map[string]store.PipelineRef{},
	}, nil
}

// Start runs the scheduling loop until Stop or ctx ends: it evaluates every
// pipeline, sleeps on the clock until the next tick or deadline (at most
// Refresh), and evaluates again; a run finishing wakes it early. Ticks
// before Start are the downtime the catch-up policies apply to.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("starting scheduler: already started")
	}
	if s.startedAt.IsZero() {
		s.startedAt = s.clock.Now()
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.loopDone = make(chan struct{})
	go s.loop(ctx)
	return nil
}

// Stop ends the loop and waits up to StopGrace for runs in flight. It is
// idempotent and safe to call without Start.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.loopDone
	s.cancel = func() {} // a later Start fails, a later Stop is a no-op
	s.mu.Unlock()
	if cancel == nil || done == nil {
		return
	}
	cancel()
	<-done
	finished := make(chan struct{})
	go func() { s.runs.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(s.opts.StopGrace):
		s.log.Warn("scheduler stopped with runs in flight; they resume on the next start")
	}
}

// Wake makes the loop evaluate now, e.g. after a version was pushed in
// this process.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) loop(ctx context.Context) {
	defer close(s.loopDone)
	for {
		next, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("evaluating schedules", slog.Any("error", err))
		}
		now := s.clock.Now()
		wait := s.opts.Refresh
		if !next.IsZero() && next.Sub(now) < wait {
			wait = max(next.Sub(now), 0)
		}
		t := s.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-s.wake:
			t.Stop()
		}
	}
}

func (s *Scheduler) emit(ev Event) {
	if s.opts.Observer == nil {
		return
	}
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	s.opts.Observer(ev)
}

// RunOnce evaluates every versioned pipeline once at the clock's time:
// applies catch-up, creates due runs and hands them to the engine (in
// goroutines), resumes runs left unfinished, and records late ticks. It
// returns when the next evaluation is due (zero: nothing scheduled). An
// error with one pipeline is logged and does not stop the others.
func (s *Scheduler) RunOnce(ctx context.Context) (time.Time, error) {
	now := s.clock.Now()
	s.mu.Lock()
	if s.startedAt.IsZero() {
		s.startedAt = now
	}
	s.mu.Unlock()
	refs, err := s.st.ListVersionedPipelines(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("evaluating schedules: %w", err)
	}
	paused, err := s.pauses(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("evaluating schedules: %w", err)
	}
	var next time.Time
	for _, ref := range refs {
		n, err := s.evaluate(ctx, ref, now, paused)
		if err != nil {
			if ctx.Err() != nil {
				return next, ctx.Err()
			}
			s.log.Error("evaluating schedule", slog.String("pipeline", ref.Namespace+"/"+ref.Pipeline), slog.Any("error", err))
			continue
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next, nil
}

// pauses returns the paused pipelines; a namespace pause is keyed with
// Pipeline "".
func (s *Scheduler) pauses(ctx context.Context) (map[store.PipelineRef]store.SchedulePause, error) {
	ps, err := s.st.ListSchedulePauses(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[store.PipelineRef]store.SchedulePause, len(ps))
	for _, p := range ps {
		m[store.PipelineRef{Namespace: p.Namespace, Pipeline: p.Pipeline}] = p
	}
	return m, nil
}

func isPaused(m map[store.PipelineRef]store.SchedulePause, ref store.PipelineRef) bool {
	_, ns := m[store.PipelineRef{Namespace: ref.Namespace}]
	_, p := m[ref]
	return ns || p
}

// Cron is a parsed schedule with the zone its logical dates are in.
type Cron struct {
	sched cron.Schedule
	loc   *time.Location
}

// ParseCron parses a pipeline's schedule as package pipeline validated it
// (five fields or a descriptor, with an optional CRON_TZ= or TZ= prefix).
// Without a zone prefix the schedule is in UTC, whatever the host's zone.
func ParseCron(spec string) (Cron, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return Cron{}, fmt.Errorf("parsing schedule %q: %w", spec, err)
	}
	loc := time.UTC
	if ss, ok := sched.(*cron.SpecSchedule); ok && ss.Location != time.Local {
		loc = ss.Location
	}
	return Cron{sched: sched, loc: loc}, nil
}

// starBit marks a cron field written as "*" in robfig's SpecSchedule.
const starBit = 1 << 63

// Next returns the first tick strictly after t.
//
// Across daylight-saving changes a schedule with fixed hours behaves as
// the classic cron does, so a daily pipeline runs exactly once per day: a
// time inside the hour skipped when clocks go forward fires at the moment
// of the change, and a time inside the hour repeated when clocks go back
// fires on its first occurrence only. Schedules with a "*" hour fire every
// elapsed hour.
func (c Cron) Next(t time.Time) time.Time {
	n := c.sched.Next(t.In(c.loc))
	ss, ok := c.sched.(*cron.SpecSchedule)
	if !ok || ss.Hour&starBit != 0 || n.IsZero() {
		return n
	}
	if tr, ok := c.gapTick(ss, t, n); ok {
		return tr
	}
	for c.repeated(n) {
		n = c.sched.Next(n)
	}
	return n
}

// gapTick finds a clocks-forward change in (t, n) whose skipped wall-clock
// times include one the schedule names; it returns the change's instant.
func (c Cron) gapTick(ss *cron.SpecSchedule, t, n time.Time) (time.Time, bool) {
	_, o1 := t.In(c.loc).Zone()
	_, o2 := n.In(c.loc).Zone()
	if o2 <= o1 {
		return time.Time{}, false
	}
	lo, hi := t, n // offset o1 at lo, o2 at hi
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if _, o := mid.In(c.loc).Zone(); o == o1 {
			lo = mid
		} else {
			hi = mid
		}
	}
	tr := hi.Truncate(time.Second)
	if _, o := tr.In(c.loc).Zone(); o != o2 {
		tr = tr.Add(time.Second)
	}
	if !tr.After(t) {
		return time.Time{}, false
	}
	// The skipped wall-clock times, matched against the spec in UTC,
	// where they exist.
	w := tr.In(time.FixedZone("", o1))
	start := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, time.UTC)
	utc := *ss
	utc.Location = time.UTC
	first := utc.Next(start.Add(-time.Second))
	if first.Before(start.Add(time.Duration(o2-o1) * time.Second)) {
		return tr, true
	}
	return time.Time{}, false
}

// repeated reports whether n's wall-clock time already occurred an hour
// (or whatever the change was) earlier, clocks having gone back.
func (c Cron) repeated(n time.Time) bool {
	_, on := n.In(c.loc).Zone()
	_, ob := n.Add(-3 * time.Hour).In(c.loc).Zone()
	if ob <= on {
		return false
	}
	e := n.Add(-time.Duration(ob-on) * time.Second)
	const wall = "2006-01-02 15:04:05"
	return e.In(c.loc).Format(wall) == n.In(c.loc).Format(wall)
}

// LogicalDate is the date of tick in the schedule's zone, YYYY-MM-DD.
func (c Cron) LogicalDate(tick time.Time) string { return tick.In(c.loc).Format(time.DateOnly) }

// Location is the schedule's zone.
func (c Cron) Location() *time.Location { return c.loc }

// RunID is the id of the run of ns/name for tick: the same inputs give the
// same id, which is what makes creating a tick's run idempotent. Long names
// are replaced by a digest to stay within the engine's 128 characters.
func RunID(namespace, name string, tick time.Time) string {
	ts := tick.UTC().Format("20060102T150405Z")
	id := "tick-" + namespace + "." + name + "-" + ts
	if len(id) > 128 {
		sum := sha256.Sum256([]byte(namespace + "/" + name))
		id = "tick-" + hex.EncodeToString(sum[:12]) + "-" + ts
	}
	return id
}

// tickOf recovers the tick from a RunID; false for other ids.
func tickOf(id string) (time.Time, bool) {
	if !strings.HasPrefix(id, "tick-") || len(id) < len("20060102T150405Z") {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", id[len(id)-len("20060102T150405Z"):])
	return t, err == nil
}

// Runnable returns the newest version of namespace/name that may run on
// schedule, parsed. ErrNotRunnable (wrapped, with the reason) if none may.
func (s *Scheduler) Runnable(ctx context.Context, namespace, name string) (*pipeline.Pipeline, access.Version, error) {
	ref := store.PipelineRef{Namespace: namespace, Pipeline: name}
	vs, err := s.st.ListPipelineVersions(ctx, namespace, name)
	if err != nil {
		return nil, access.Version{}, fmt.Errorf("listing versions of %s/%s: %w", namespace, name, err)
	}
	reason := "no version pushed"
	for i := len(vs) - 1; i >= 0; i-- {
		v := access.Version{Namespace: namespace, Pipeline: name, Number: vs[i].Number, Hash: vs[i].Hash}
		ok, why, err := s.acc.RunnableOnSchedule(ctx, v)
		if err != nil {
			return nil, access.Version{}, fmt.Errorf("checking %s: %w", v, err)
		}
		if !ok {
			if i == len(vs)-1 {
				reason = why
			}
			continue
		}
		p, err := s.parsed(ctx, ref, v)
		if err != nil {
			return nil, access.Version{}, err
		}
		return p, v, nil
	}
	return nil, access.Version{}, fmt.Errorf("%s/%s: %s: %w", namespace, name, reason, ErrNotRunnable)
}

// parsed returns version v parsed, from the cache when its hash is known.
func (s *Scheduler) parsed(ctx context.Context, ref store.PipelineRef, v access.Version) (*pipeline.Pipeline, error) {
	s.mu.Lock()
	c, ok := s.cache[ref]
	s.mu.Unlock()
	if ok && c.hash == v.Hash {
		return c.p, nil
	}
	pv, err := s.st.GetPipelineVersion(ctx, v.Namespace, v.Pipeline, v.Number)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", v, err)
	}
	p, err := pipeline.Parse(s.workspaceFile(ref), pv.Content, s.opts.Parse)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w: %w", v, ErrUnparsable, err)
	}
	if p.Namespace != v.Namespace || p.Name != v.Pipeline {
		return nil, fmt.Errorf("parsing %s: %w: the file names pipeline %s/%s", v, ErrUnparsable, p.Namespace, p.Name)
	}
	s.mu.Lock()
	s.cache[ref] = cached{hash: v.Hash, p: p}
	s.mu.Unlock()
	return p, nil
}

// workspaceFile is the path a version of ref is parsed as.
func (s *Scheduler) workspaceFile(ref store.PipelineRef) string {
	return filepath.Join(s.opts.StateDir, "pipelines", ref.Namespace, ref.Pipeline, "pipeline.yaml")
}
