package schedule

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/secrets"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
	"github.com/sluicehq/sluice/internal/task"
)

// gate is the executor of the shell task kind in these tests: an attempt
// succeeds at once, or, while the gate is closed, waits until it opens.
type gate struct {
	mu      sync.Mutex
	closed  bool
	open    chan struct{}
	started chan string // run ids, as attempts start
}

func newGate() *gate { return &gate{open: make(chan struct{}), started: make(chan string, 100)} }

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.open = make(chan struct{})
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.open)
	}
}

func (g *gate) Execute(ctx context.Context, job *task.Job) (task.Result, error) {
	g.started <- job.Run.ID
	g.mu.Lock()
	closed, open := g.closed, g.open
	g.mu.Unlock()
	if closed {
		select {
		case <-open:
		case <-ctx.Done():
			return task.Result{}, ctx.Err()
		}
	}
	return task.Result{}, nil
}

type env struct {
	t      testing.TB
	store  store.Store
	clock  *clock.Fake
	gate   *gate
	eng    *engine.Engine
	access *access.Service
	dir    string
}

func newEnv(t testing.TB, now time.Time) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "sluice.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	kek, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatalf("loading KEK: %v", err)
	}
	en := &env{t: t, store: st, clock: clock.NewFake(now), gate: newGate(), dir: dir}
	en.eng, err = engine.New(engine.Options{
		Store: st, Executors: map[pipeline.Kind]engine.Executor{pipeline.KindShell: en.gate}, Clock: en.clock,
		StateDir: filepath.Join(dir, "state"), Logs: keys.New(st, kek, keys.Options{}), Redact: secrets.NewRedactor(),
	})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	en.access, err = access.New(t.Context(), access.Config{
		Store:  st,
		Record: func(context.Context, access.Event) error { return nil },
		MFA:    access.MFAFunc(func(string) bool { return true }),
		Clock:  en.clock.Now,
	})
	if err != nil {
		t.Fatalf("access: %v", err)
	}
	return en
}

// scheduler returns a new scheduler over the env: a new one is a restart.
func (en *env) scheduler(obs func(Event)) *Scheduler {
	en.t.Helper()
	s, err := New(Options{Store: en.store, Engine: en.eng, Access: en.access, Clock: en.clock,
		StateDir: filepath.Join(en.dir, "state"), Observer: obs})
	if err != nil {
		en.t.Fatalf("New: %v", err)
	}
	return s
}

// push stores a version of ns/name with the given top-level settings.
func (en *env) push(ns, name, settings string) store.PipelineVersion {
	en.t.Helper()
	src := fmt.Sprintf("pipeline: %s\nnamespace: %s\n%s\ntasks:\n  a:\n    shell: [echo, \"{{ .LogicalDate }}\"]\n", name, ns, settings)
	v, err := en.store.PutPipelineVersion(en.t.Context(), store.PipelineVersion{Namespace: ns, Pipeline: name,
		Hash: pipelineHash(src), Content: []byte(src), Author: "ann", CreatedAt: en.clock.Now()})
	if err != nil {
		en.t.Fatalf("pushing: %v", err)
	}
	return v
}

func pipelineHash(src string) string {
	p, err := pipeline.Parse("x.yaml", []byte(src), pipeline.Options{})
	if err != nil {
		panic(err)
	}
	return p.Hash
}

// runOnce evaluates once and waits for the runs it started.
func (en *env) runOnce(s *Scheduler) time.Time {
	en.t.Helper()
	next, err := s.RunOnce(en.t.Context())
	if err != nil {
		en.t.Fatalf("RunOnce: %v", err)
	}
	s.Wait()
	return next
}

// runs returns the ids of ns/name's runs, oldest first, with their
// logical dates and triggers.
func (en *env) runs(ns, name string) []string {
	en.t.Helper()
	rs, err := en.store.ListRuns(en.t.Context(), store.RunFilter{Namespace: ns, Pipeline: name, Limit: 1000})
	if err != nil {
		en.t.Fatalf("ListRuns: %v", err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.ID+" "+r.LogicalDate+" "+r.Trigger+" "+string(r.State))
	}
	slices.Sort(out)
	return out
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func TestCronDST(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		spec  string
		from  time.Time
		ticks []time.Time
		dates []string
	}{
		{"SpringForwardFixedTimeExists", "CRON_TZ=Europe/Berlin 0 3 * * *", utc(2026, 3, 27, 12, 0),
			[]time.Time{utc(2026, 3, 28, 2, 0), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 1, 0)},
			[]string{"2026-03-28", "2026-03-29", "2026-03-30"}},
		{"SpringForwardSkippedHourFiresAtChange", "CRON_TZ=Europe/Berlin 30 2 * * *", utc(2026, 3, 27, 12, 0),
			[]time.Time{utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)},
			[]string{"2026-03-28", "2026-03-29", "2026-03-30"}},
		{"FallBackRepeatedHourFiresOnce", "CRON_TZ=Europe/Berlin 0 2 * * *", utc(2026, 10, 23, 12, 0),
			[]time.Time{utc(2026, 10, 24, 0, 0), utc(2026, 10, 25, 0, 0), utc(2026, 10, 26, 1, 0)},
			[]string{"2026-10-24", "2026-10-25", "2026-10-26"}},
		{"FallBackHourlyFiresEveryElapsedHour", "CRON_TZ=Europe/Berlin 0 * * * *", utc(2026, 10, 24, 23, 30),
			[]time.Time{utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 2, 0)},
			[]string{"2026-10-25", "2026-10-25", "2026-10-25"}},
		{"UTCWithoutZone", "0 2 * * *", utc(2026, 3, 28, 12, 0),
			[]time.Time{utc(2026, 3, 29, 2, 0), utc(2026, 3, 30, 2, 0)},
			[]string{"2026-03-29", "2026-03-30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseCron(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			var ticks []time.Time
			var dates []string
			for x := tc.from; len(ticks) < len(tc.ticks); {
				x = c.Next(x)
				ticks, dates = append(ticks, x.UTC()), append(dates, c.LogicalDate(x))
			}
			if d := cmp.Diff(tc.ticks, ticks); d != "" {
				t.Errorf("ticks (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.dates, dates); d != "" {
				t.Errorf("logical dates (-want +got):\n%s", d)
			}
		})
	}
}

// TestTicksAcrossDST drives the scheduler tick by tick with the fake clock
// over the spring change in Europe/Berlin.
func TestTicksAcrossDST(t *testing.T) {
	t.Parallel()
	en := newEnv(t, utc(2026, 3, 27, 12, 0))
	en.push("crm", "berlin", `schedule: "CRON_TZ=Europe/Berlin 0 3 * * *"`)
	s := en.scheduler(nil)
	next := en.runOnce(s)
	var fired []time.Time
	for range 3 {
		en.clock.Set(next)
		fired = append(fired, next.UTC())
		next = en.runOnce(s)
	}
	want := []time.Time{utc(2026, 3, 28, 2, 0), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 1, 0)}
	if d := cmp.Diff(want, fired); d != "" {
		t.Errorf("wake-ups (-want +got):\n%s", d)
	}
	wantRuns := []string{
		"tick-crm.berlin-20260328T020000Z 2026-03-28 schedule success",
		"tick-crm.berlin-20260329T010000Z 2026-03-29 schedule success",
		"tick-crm.berlin-20260330T010000Z 2026-03-30 schedule success",
	}
	if d := cmp.Diff(wantRuns, en.runs("crm", "berlin")); d != "" {
		t.Errorf("runs (-want +got):\n%s", d)
	}
}

func TestCatchup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		settings string
		want     []string // logical dates run
	}{
		{"None", "catchup: none", nil},
		{"Latest", "catchup: latest", []string{"2026-03-15"}},
		{"Default", "", []string{"2026-03-15"}},
		{"AllCapped", "catchup: all\ncatchup_limit: 4", []string{"2026-03-12", "2026-03-13", "2026-03-14", "2026-03-15"}},
		{"AllCappedConcurrent", "catchup: all\ncatchup_limit: 3\nmax_active_runs: 3", []string{"2026-03-13", "2026-03-14", "2026-03-15"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			en := newEnv(t, utc(2026, 3, 1, 12, 0))
			en.push("crm", "daily", "schedule: \"0 2 * * *\"\n"+tc.settings)
			en.runOnce(en.scheduler(nil)) // first sight: the watermark is now
			// Down for two weeks: ticks of March 2..15 are missed.
			en.clock.Set(utc(2026, 3, 15, 12, 0))
			s := en.scheduler(nil)
			for range 10 { // max_active_runs 1 creates one run per evaluation
				en.runOnce(s)
			}
			var got []string
			rs, _ := en.store.ListRuns(t.Context(), store.RunFilter{Namespace: "crm", Pipeline: "daily"})
			for _, r := range rs {
				got = append(got, r.LogicalDate)
			}
			slices.Sort(got)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("logical dates run (-want +got):\n%s", d)
			}
			wm, err := en.store.GetScheduleTick(t.Context(), "crm", "daily")
			if err != nil || !wm.Tick.Equal(utc(2026, 3, 15, 2, 0)) {
				t.Errorf("watermark = %v, %v; want 2026-03-15T02:00Z", wm.Tick, err)
			}
		})
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	t.Run("NoDuplicateNoMiss", func(t *testing.T) {
		t.Parallel()
		en := newEnv(t, utc(2026, 3, 1, 0, 30))
		en.push("crm", "hourly", `schedule: "0 * * * *"`)
		s1 := en.scheduler(nil)
		next := en.runOnce(s1)
		for range 2 {
			en.clock.Set(next)
			next = en.runOnce(s1)
		}
		// Restart half-way to the next tick, then run two more ticks.
		en.clock.Set(utc(2026, 3, 1, 2, 30))
		s2 := en.scheduler(nil)
		next = en.runOnce(s2)
		for range 2 {
			en.clock.Set(next)
			next = en.runOnce(s2)
		}
		want := []string{
			"tick-crm.hourly-20260301T010000Z 2026-03-01 schedule success",
			"tick-crm.hourly-20260301T020000Z 2026-03-01 schedule success",
			"tick-crm.hourly-20260301T030000Z 2026-03-01 schedule success",
			"tick-crm.hourly-20260301T040000Z 2026-03-01 schedule success",
		}
		if d := cmp.Diff(want, en.runs("crm", "hourly")); d != "" {
			t.Errorf("runs (-want +got):\n%s", d)
		}
	})
	// A crash after creating a tick's run and before recording the tick:
	// the restarted scheduler finds the run and executes it, once.
	for _, catchup := range []string{"none", "latest", "all"} {
		t.Run("CrashBeforeWatermark/"+catchup, func(t *testing.T) {
			t.Parallel()
			en := newEnv(t, utc(2026, 3, 1, 0, 30))
			en.push("crm", "hourly", "schedule: \"0 * * * *\"\ncatchup: "+catchup)
			s1 := en.scheduler(nil)
			en.runOnce(s1)
			p, _, err := s1.Runnable(t.Context(), "crm", "hourly")
			if err != nil {
				t.Fatal(err)
			}
			tick := utc(2026, 3, 1, 1, 0)
			if _, err := en.eng.CreateRun(t.Context(), p, engine.RunRequest{ID: RunID("crm", "hourly", tick), LogicalDate: "2026-03-01", Trigger: TriggerSchedule}); err != nil {
				t.Fatal(err)
			}
			en.clock.Set(utc(2026, 3, 1, 1, 5))
			en.runOnce(en.scheduler(nil))
			want := []string{"tick-crm.hourly-20260301T010000Z 2026-03-01 schedule success"}
			if d := cmp.Diff(want, en.runs("crm", "hourly")); d != "" {
				t.Errorf("runs (-want +got):\n%s", d)
			}
		})
	}
}

func TestPause(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, pauseName string }{{"Pipeline", "daily"}, {"Namespace", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			en := newEnv(t, utc(2026, 3, 1, 12, 0))
			en.push("crm", "daily", `schedule: "0 2 * * *"`)
			en.push("bi", "other", `schedule: "0 2 * * *"`)
			var skipped []time.Time
			s := en.scheduler(func(ev Event) {
				if ev.Kind == EventTickSkipped && ev.Pipeline == "daily" {
					skipped = append(skipped, ev.Tick)
				}
			})
			en.runOnce(s)
			if err := s.SetPaused(t.Context(), "crm", tc.pauseName, "ops", true); err != nil {
				t.Fatal(err)
			}
			en.clock.Set(utc(2026, 3, 2, 2, 0))
			en.runOnce(s)
			if err := s.SetPaused(t.Context(), "crm", tc.pauseName, "ops", false); err != nil {
				t.Fatal(err)
			}
			en.clock.Set(utc(2026, 3, 3, 2, 0))
			en.runOnce(s)
			want := []string{"tick-crm.daily-20260303T020000Z 2026-03-03 schedule success"}
			if d := cmp.Diff(want, en.runs("crm", "daily")); d != "" {
				t.Errorf("runs (-want +got):\n%s", d)
			}
			if d := cmp.Diff([]time.Time{utc(2026, 3, 2, 2, 0)}, skipped); d != "" {
				t.Errorf("skipped ticks (-want +got):\n%s", d)
			}
			if got := len(en.runs("bi", "other")); got != 2 {
				t.Errorf("other namespace ran %d times, want 2", got)
			}
		})
	}
}

func TestProtectedNamespace(t *testing.T) {
	t.Parallel()
	en := newEnv(t, utc(2026, 3, 1, 12, 0))
	ctx := t.Context()
	if err := en.store.SetNamespaceProtected(ctx, store.ProtectedNamespace{Namespace: "fin", SetBy: "sec"}, true); err != nil {
		t.Fatal(err)
	}
	v1 := en.push("fin", "ledger", "schedule: \"0 2 * * *\"\ndescription: one")
	en.push("fin", "ledger", "schedule: \"0 2 * * *\"\ndescription: two") // not approved
	en.push("fin", "draft", `schedule: "0 2 * * *"`)                      // never approved
	if _, err := en.store.ApprovePipelineVersion(ctx, "fin", "ledger", v1.Number, "bob", en.clock.Now()); err != nil {
		t.Fatal(err)
	}
	s := en.scheduler(nil)
	en.runOnce(s)
	en.clock.Set(utc(2026, 3, 2, 2, 0))
	en.runOnce(s)
	rs, err := en.store.ListRuns(ctx, store.RunFilter{Namespace: "fin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Pipeline != "ledger" || rs[0].PipelineHash != v1.Hash {
		t.Fatalf("runs = %+v, want one run of ledger version 1 (%s)", rs, v1.Hash)
	}
	st, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range st {
		switch x.Pipeline {
		case "ledger":
			if x.Version != 1 {
				t.Errorf("ledger: runnable version %d, want 1", x.Version)
			}
		case "draft":
			if x.Version != 0 || x.NotRunnable == "" {
				t.Errorf("draft: version %d, reason %q; want not runnable", x.Version, x.NotRunnable)
			}
		}
	}
}

// A stored version that no longer parses makes its pipeline not runnable
// (the parser's message, which names paths, goes to the log); the other
// pipelines are still listed.
func TestListUnparsableVersion(t *testing.T) {
	t.Parallel()
	en := newEnv(t, utc(2026, 3, 1, 12, 0))
	ctx := t.Context()
	en.push("crm", "good", `schedule: "0 2 * * *"`)
	if _, err := en.store.PutPipelineVersion(ctx, store.PipelineVersion{Namespace: "crm", Pipeline: "broken",
		Hash: "h1", Content: []byte("pipeline: broken\nnamespace: crm\ntasks:\n  a:\n    shelll: [true]\n"),
		Author: "ann", CreatedAt: en.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	s := en.scheduler(nil)
	st, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	got := map[string]Status{}
	for _, x := range st {
		got[x.Pipeline] = x
	}
	if got["good"].Version != 1 {
		t.Errorf("good: %+v, want version 1", got["good"])
	}
	if b := got["broken"]; b.Version != 0 || b.NotRunnable != UnparsableReason {
		t.Errorf("broken: version %d, reason %q; want not runnable: %s", b.Version, b.NotRunnable, UnparsableReason)
	}
	if _, err := s.Trigger(ctx, TriggerRequest{Namespace: "crm", Pipeline: "broken"}); !errors.Is(err, ErrUnparsable) {
		t.Errorf("triggering the unparsable version: %v, want ErrUnparsable", err)
	}
}

func TestMaxActiveRuns(t *testing.T) {
	t.Parallel()
	en := newEnv(t, utc(2026, 3, 1, 0, 30))
	en.push("crm", "hourly", "schedule: \"0 * * * *\"\nmax_active_runs: 2")
	s := en.scheduler(nil)
	en.runOnce(s)
	en.gate.close()
	for h := 1; h <= 3; h++ {
		en.clock.Set(utc(2026, 3, 1, h, 0))
		if _, err := s.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		if h <= 2 {
			<-en.gate.started // the run is executing
		}
	}
	rs, _ := en.store.ListRuns(t.Context(), store.RunFilter{Namespace: "crm"})
	if len(rs) != 2 {
		t.Fatalf("%d runs while 2 block, want 2 (max_active_runs)", len(rs))
	}
	en.gate.release()
	s.Wait()
	en.runOnce(s) // the held-back 03:00 tick
	want := []string{
		"tick-crm.hourly-20260301T010000Z 2026-03-01 schedule success",
		"tick-crm.hourly-20260301T020000Z 2026-03-01 schedule success",
		"tick-crm.hourly-20260301T030000Z 2026-03-01 schedule success",
	}
	if d := cmp.Diff(want, en.runs("crm", "hourly")); d != "" {
		t.Errorf("runs (-want +got):\n%s", d)
	}
}

func TestLateRuns(t *testing.T) {
	t.Parallel()
	en := newEnv(t, utc(2026, 3, 1, 12, 0))
	en.push("crm", "a", "schedule: \"0 2 * * *\"\ndeadline: 2h")
	en.push("crm", "b", "schedule: \"0 2 * * *\"\ndeadline: 2h")
	s := en.scheduler(nil)
	en.runOnce(s)
	// Both runs block past their deadline.
	en.clock.Set(utc(2026, 3, 2, 2, 0))
	en.gate.close()
	next, err := s.RunOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	<-en.gate.started
	<-en.gate.started
	if want := utc(2026, 3, 2, 4, 0); !next.Equal(want) {
		t.Errorf("next wake-up %v, want the deadline %v", next, want)
	}
	en.clock.Set(utc(2026, 3, 2, 4, 0))
	if _, err := s.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	en.gate.release()
	s.Wait()
	late, err := en.store.ListLateRuns(t.Context(), store.LateRunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range late {
		got = append(got, l.Pipeline+" "+l.Tick.UTC().Format(time.RFC3339)+" "+l.RunID)
	}
	slices.Sort(got)
	want := []string{
		"a 2026-03-02T02:00:00Z tick-crm.a-20260302T020000Z",
		"b 2026-03-02T02:00:00Z tick-crm.b-20260302T020000Z",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("late runs (-want +got):\n%s", d)
	}
	// The next day both succeed in time: nothing more is recorded.
	en.clock.Set(utc(2026, 3, 3, 2, 0))
	en.runOnce(s)
	en.clock.Set(utc(2026, 3, 3, 4, 0))
	en.runOnce(s)
	late, _ = en.store.ListLateRuns(t.Context(), store.LateRunFilter{})
	if len(late) != 2 {
		t.Errorf("%d late runs after an on-time day, want 2", len(late))
	}
}

func TestBackfill(t *testing.T) {
	t.Parallel()
	en := newEnv(t, utc(2026, 4, 1, 12, 0))
	en.push("crm", "berlin", `schedule: "CRON_TZ=Europe/Berlin 30 2 * * *"`)
	s := en.scheduler(nil)
	req := BackfillRequest{Namespace: "crm", Pipeline: "berlin", From: "2026-03-28", To: "2026-03-30", DryRun: true}
	items, err := s.Backfill(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.LogicalDate+" "+it.Tick.Format(time.RFC3339))
	}
	want := []string{"2026-03-28 2026-03-28T01:30:00Z", "2026-03-29 2026-03-29T01:00:00Z", "2026-03-30 2026-03-30T00:30:00Z"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("dry run (-want +got):\n%s", d)
	}
	if n := len(en.runs("crm", "berlin")); n != 0 {
		t.Fatalf("dry run created %d runs", n)
	}
	req.DryRun = false
	items, err = s.Backfill(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.State != store.RunSuccess || it.Existed || it.Error != "" {
			t.Errorf("item %+v: want a new successful run", it)
		}
	}
	items, err = s.Backfill(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if !it.Existed {
			t.Errorf("second backfill recreated %s", it.RunID)
		}
	}
	if n := len(en.runs("crm", "berlin")); n != 3 {
		t.Errorf("%d runs after two backfills, want 3", n)
	}
}

func TestTrigger(t *testing.T) {
	t.Parallel()
	en := newEnv(t, utc(2026, 3, 1, 12, 0))
	en.push("crm", "manual", "params:\n  region: eu")
	s := en.scheduler(nil)
	run, err := s.Trigger(t.Context(), TriggerRequest{Namespace: "crm", Pipeline: "manual", Params: map[string]string{"region": "us"}, LogicalDate: "2026-02-01"})
	if err != nil {
		t.Fatal(err)
	}
	if run.State != store.RunSuccess || run.Params["region"] != "us" || run.LogicalDate != "2026-02-01" || run.Trigger != TriggerManual {
		t.Errorf("run = %+v", run)
	}
	// Detached: queued, then executed by the scheduler's evaluation.
	run, err = s.Trigger(t.Context(), TriggerRequest{Namespace: "crm", Pipeline: "manual", Detach: true})
	if err != nil || run.State != store.RunQueued {
		t.Fatalf("detached trigger: %+v, %v", run, err)
	}
	en.runOnce(s) // the scheduler executes the queued run
	if got, _ := en.store.GetRun(t.Context(), run.ID); got.State != store.RunSuccess {
		t.Errorf("detached run is %s after an evaluation, want success", got.State)
	}
	if _, err := s.Trigger(t.Context(), TriggerRequest{Namespace: "crm", Pipeline: "nope"}); err == nil {
		t.Error("triggering an unknown pipeline succeeded")
	}
}

// A trigger given its audit event commits the run with the record; one
// that cannot create its run leaves only a failure record; an event that
// could not be recorded stops the trigger before anything is created.
func TestTriggerAudited(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	en := newEnv(t, utc(2026, 3, 1, 12, 0))
	en.push("crm", "manual", "")
	s := en.scheduler(nil)
	ev := audit.Event{Actor: "ann", Action: "run.trigger", Resource: "pipeline:crm/manual", Source: audit.SourceCLI}
	req := TriggerRequest{Namespace: "crm", Pipeline: "manual", Detach: true, Audit: &ev}

	run, err := s.Trigger(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	bad := req
	bad.LogicalDate = "2026-13-45" // the engine refuses to create the run
	if _, err := s.Trigger(ctx, bad); err == nil {
		t.Error("a trigger with logical date 2026-13-45 succeeded")
	}
	unrecordable := ev
	unrecordable.Actor = ""
	bad = req
	bad.Audit = &unrecordable
	if _, err := s.Trigger(ctx, bad); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Errorf("a trigger whose event cannot be recorded: %v, want %v", err, audit.ErrInvalidEvent)
	}

	if runs := en.runs("crm", "manual"); len(runs) != 1 || !strings.HasPrefix(runs[0], run.ID+" ") {
		t.Errorf("runs = %q, want only %s", runs, run.ID)
	}
	entries, err := audit.List(ctx, en.store, store.AuditFilter{Action: "run.trigger"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, string(e.Outcome)+" "+e.Reason)
	}
	if len(got) != 2 || got[0] != "success " || !strings.HasPrefix(got[1], "failure creating run of manual: logical date") {
		t.Errorf("audit records = %q, want a success, then the failure of the bad date", got)
	}
	// The record names the version and the logical date the run was
	// created with, which the caller did not give.
	if d := entries[0].Details; d["version"] != "1" || d["logical_date"] != "2026-03-01" {
		t.Errorf("success record details = %v, want version 1, logical_date 2026-03-01", d)
	}
}

// TestLoop runs the real loop: Start, a tick, a run, Stop (twice).
func TestLoop(t *testing.T) {
	t.Parallel()
	en := newEnv(t, utc(2026, 3, 1, 0, 30))
	en.push("crm", "hourly", `schedule: "0 * * * *"`)
	events := make(chan Event, 100)
	s := en.scheduler(func(ev Event) { events <- ev })
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	en.clock.BlockUntil(1)
	en.clock.Set(utc(2026, 3, 1, 1, 0))
	for ev := range events {
		if ev.Kind == EventRunFinished {
			if ev.RunID != "tick-crm.hourly-20260301T010000Z" || ev.State != store.RunSuccess {
				t.Errorf("finished %+v", ev)
			}
			break
		}
	}
	s.Stop()
	s.Stop()
}
