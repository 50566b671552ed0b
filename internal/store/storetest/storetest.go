// Package storetest is the conformance suite of store.Store: the executable
// definition of the contract every store implementation (SQLite, PostgreSQL)
// must pass. It uses the store only through the interface.
//
// An implementation's tests call Run with a function opening a fresh, empty
// store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluicehq/sluice/internal/store"
)

// Opener returns a new, empty store for one test, registering its cleanup
// on t.
type Opener func(t *testing.T) store.Store

// Run runs the whole suite. Groups of subtests share one store and run in
// parallel with distinct run ids, so the suite also exercises concurrent use.
func Run(t *testing.T, open Opener) {
	t.Run("Runs", func(t *testing.T) { testRuns(t, open(t)) })
	t.Run("ListRuns", func(t *testing.T) { testListRuns(t, open(t)) })
	t.Run("ListRunsDefaultLimit", func(t *testing.T) { testListRunsDefaultLimit(t, open(t)) })
	t.Run("ListRunsPaging", func(t *testing.T) { testListRunsPaging(t, open(t)) })
	t.Run("SetRunState", func(t *testing.T) { testSetRunState(t, open(t)) })
	t.Run("Lease", func(t *testing.T) { testLease(t, open(t)) })
	t.Run("SetTaskState", func(t *testing.T) { testSetTaskState(t, open(t)) })
	t.Run("StartAttempt", func(t *testing.T) { testStartAttempt(t, open(t)) })
	t.Run("FinishAttempt", func(t *testing.T) { testFinishAttempt(t, open(t)) })
	t.Run("Retries", func(t *testing.T) { testRetries(t, open(t)) })
	t.Run("Artifacts", func(t *testing.T) { testArtifacts(t, open(t)) })
	t.Run("InTx", func(t *testing.T) { testInTx(t, open(t)) })
	t.Run("ConcurrentStart", func(t *testing.T) { testConcurrentStart(t, open(t)) })
	t.Run("DataKeys", func(t *testing.T) { testDataKeys(t, open(t)) })
	t.Run("ConcurrentRewrap", func(t *testing.T) { testConcurrentRewrap(t, open(t)) })
	t.Run("Secrets", func(t *testing.T) { testSecrets(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open(t)); testAuditCheckpoints(t, open(t)) })
	t.Run("CheckResults", func(t *testing.T) { testCheckResults(t, open(t)) })
	t.Run("Privacy", func(t *testing.T) { testPrivacy(t, open(t)) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open(t)) })
	t.Run("Access", func(t *testing.T) { testAccess(t, open(t)) })
	t.Run("Schedule", func(t *testing.T) { testSchedule(t, open(t)) })
}

// at is a fixed instant plus sec seconds: test times are exact to the
// microsecond, the precision every implementation keeps.
func at(sec int) time.Time {
	return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
}

func intp(i int) *int { return &i }

// eq makes cmp treat nil and empty slices and maps alike; times compare
// with time.Time.Equal, cmp's default for types with an Equal method.
func eq() cmp.Option { return cmpopts.EquateEmpty() }

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func createRun(t *testing.T, s store.Store, id string, tasks ...string) store.Run {
	t.Helper()
	r, err := s.CreateRun(t.Context(), store.NewRun{
		ID: id, Namespace: "ns", Pipeline: "p", PipelineHash: "h", PipelineFile: "p.yaml",
		LogicalDate: "2026-03-01", Trigger: "manual", Tasks: tasks, CreatedAt: at(0),
	})
	if err != nil {
		t.Fatalf("CreateRun(%q): %v", id, err)
	}
	return r
}

func testRuns(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := store.NewRun{
		ID: "r1", Namespace: "crm", Pipeline: "customers", PipelineHash: "abc", PipelineFile: "c.yaml",
		LogicalDate: "2026-03-01", Params: map[string]string{"region": "eu", "full": "true"},
		Trigger: "manual", Tasks: []string{"extract", "clean", "load"}, CreatedAt: at(1),
	}
	want := store.Run{
		ID: "r1", Namespace: "crm", Pipeline: "customers", PipelineHash: "abc", PipelineFile: "c.yaml",
		LogicalDate: "2026-03-01", Params: map[string]string{"region": "eu", "full": "true"},
		Trigger: "manual", State: store.RunQueued, CreatedAt: at(1),
	}
	got, err := s.CreateRun(ctx, in)
	wantErr(t, err, nil)
	if d := cmp.Diff(want, got, eq()); d != "" {
		t.Errorf("CreateRun (-want +got):\n%s", d)
	}

	t.Run("Get", func(t *testing.T) {
		t.Parallel()
		got, err := s.GetRun(t.Context(), "r1")
		wantErr(t, err, nil)
		if d := cmp.Diff(want, got, eq()); d != "" {
			t.Errorf("GetRun (-want +got):\n%s", d)
		}
	})
	t.Run("TaskRunsPendingInFileOrder", func(t *testing.T) {
		t.Parallel()
		got, err := s.ListTaskRuns(t.Context(), "r1")
		wantErr(t, err, nil)
		var want []store.TaskRun
		for i, task := range in.Tasks {
			want = append(want, store.TaskRun{RunID: "r1", Task: task, Seq: i, State: store.TaskPending})
		}
		if d := cmp.Diff(want, got, eq()); d != "" {
			t.Errorf("ListTaskRuns (-want +got):\n%s", d)
		}
		one, err := s.GetTaskRun(t.Context(), "r1", "clean")
		wantErr(t, err, nil)
		if d := cmp.Diff(want[1], one, eq()); d != "" {
			t.Errorf("GetTaskRun (-want +got):\n%s", d)
		}
	})
	t.Run("DuplicateID", func(t *testing.T) {
		t.Parallel()
		dup := in
		dup.Pipeline = "other"
		_, err := s.CreateRun(t.Context(), dup)
		wantErr(t, err, store.ErrConflict)
		got, err := s.GetRun(t.Context(), "r1")
		wantErr(t, err, nil)
		if got.Pipeline != "customers" {
			t.Errorf("duplicate overwrote the run: pipeline %q", got.Pipeline)
		}
	})
	t.Run("NoParamsNoTasks", func(t *testing.T) {
		t.Parallel()
		r := createRun(t, s, "bare")
		if len(r.Params) != 0 {
			t.Errorf("Params = %v, want empty", r.Params)
		}
		trs, err := s.ListTaskRuns(t.Context(), "bare")
		wantErr(t, err, nil)
		if len(trs) != 0 {
			t.Errorf("task runs = %v, want none", trs)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := s.GetRun(t.Context(), "nope")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetTaskRun(t.Context(), "r1", "nope")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetTaskRun(t.Context(), "nope", "extract")
		wantErr(t, err, store.ErrNotFound)
		trs, err := s.ListTaskRuns(t.Context(), "nope")
		wantErr(t, err, nil)
		if len(trs) != 0 {
			t.Errorf("ListTaskRuns of unknown run = %v, want none", trs)
		}
	})
}

func testListRuns(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Created out of order, so the result order is the store's doing.
	seed := []struct {
		id, ns, pipeline string
		created          int
		state            store.RunState
	}{
		{"c", "crm", "customers", 3, store.RunRunning},
		{"a", "crm", "customers", 1, store.RunSuccess},
		{"e", "ops", "customers", 5, store.RunQueued},
		{"b", "crm", "orders", 2, store.RunFailed},
		{"d", "crm", "orders", 4, store.RunQueued},
	}
	for _, r := range seed {
		_, err := s.CreateRun(ctx, store.NewRun{
			ID: r.id, Namespace: r.ns, Pipeline: r.pipeline, LogicalDate: "2026-03-01",
			Trigger: "schedule", CreatedAt: at(r.created),
		})
		wantErr(t, err, nil)
		if r.state == store.RunQueued {
			continue
		}
		if r.state != store.RunRunning {
			_, err = s.SetRunState(ctx, store.SetRunState{RunID: r.id, From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: at(10)})
			wantErr(t, err, nil)
		}
		from := store.RunQueued
		if r.state != store.RunRunning {
			from = store.RunRunning
		}
		_, err = s.SetRunState(ctx, store.SetRunState{RunID: r.id, From: []store.RunState{from}, To: r.state, At: at(11)})
		wantErr(t, err, nil)
	}

	tests := []struct {
		name   string
		filter store.RunFilter
		want   []string
	}{
		{"All", store.RunFilter{}, []string{"e", "d", "c", "b", "a"}},
		{"Namespace", store.RunFilter{Namespace: "crm"}, []string{"d", "c", "b", "a"}},
		{"Pipeline", store.RunFilter{Pipeline: "customers"}, []string{"e", "c", "a"}},
		{"NamespaceAndPipeline", store.RunFilter{Namespace: "crm", Pipeline: "customers"}, []string{"c", "a"}},
		{"OneState", store.RunFilter{States: []store.RunState{store.RunQueued}}, []string{"e", "d"}},
		{"States", store.RunFilter{States: []store.RunState{store.RunSuccess, store.RunFailed}}, []string{"b", "a"}},
		{"Limit", store.RunFilter{Limit: 2}, []string{"e", "d"}},
		{"AllFilters", store.RunFilter{Namespace: "crm", Pipeline: "orders", States: []store.RunState{store.RunQueued, store.RunFailed}, Limit: 1}, []string{"d"}},
		{"NoMatch", store.RunFilter{Namespace: "none"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runs, err := s.ListRuns(t.Context(), tt.filter)
			wantErr(t, err, nil)
			var got []string
			for _, r := range runs {
				got = append(got, r.ID)
			}
			if d := cmp.Diff(tt.want, got, eq()); d != "" {
				t.Errorf("ListRuns(%+v) ids (-want +got):\n%s", tt.filter, d)
			}
		})
	}
}

// testListRunsDefaultLimit has a store of its own: its runs would crowd
// the other listings.
func testListRunsDefaultLimit(t *testing.T, s store.Store) {
	for i := range 105 {
		_, err := s.CreateRun(t.Context(), store.NewRun{ID: fmt.Sprintf("many-%03d", i), Namespace: "ns", Pipeline: "p", CreatedAt: at(i)})
		wantErr(t, err, nil)
	}
	runs, err := s.ListRuns(t.Context(), store.RunFilter{})
	wantErr(t, err, nil)
	if len(runs) != 100 {
		t.Fatalf("got %d runs, want 100", len(runs))
	}
	if runs[0].ID != "many-104" || runs[99].ID != "many-005" {
		t.Errorf("first, last = %q, %q; want many-104, many-005", runs[0].ID, runs[99].ID)
	}
}

// testListRunsPaging walks every run page by page with RunFilter.Before:
// each run is seen exactly once, in order, including runs that share a
// creation instant (ordered by id) and under a filter; a run created while
// paging (newer than the first page) does not shift later pages.
func testListRunsPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []string
	for i := range 23 {
		// Pairs of runs share an instant, so ties are on every page edge.
		id := fmt.Sprintf("page-%02d", i)
		ns := "even"
		if i%2 == 1 {
			ns = "odd"
		}
		_, err := s.CreateRun(ctx, store.NewRun{ID: id, Namespace: ns, Pipeline: "p", CreatedAt: at(i / 2)})
		wantErr(t, err, nil)
		want = append([]string{id}, want...)
	}
	walk := func(f store.RunFilter) []string {
		var got []string
		for pages := 0; ; pages++ {
			if pages > 30 {
				t.Fatal("paging does not end")
			}
			runs, err := s.ListRuns(ctx, f)
			wantErr(t, err, nil)
			for _, r := range runs {
				got = append(got, r.ID)
			}
			if len(runs) < f.Limit {
				return got
			}
			k := store.KeyOf(runs[len(runs)-1])
			f.Before = &k
			if pages == 0 {
				// A newer run arrives after the first page was read.
				_, err := s.CreateRun(ctx, store.NewRun{ID: fmt.Sprintf("late-%v", f.Namespace), Namespace: "even", Pipeline: "p", CreatedAt: at(100)})
				wantErr(t, err, nil)
			}
		}
	}
	if d := cmp.Diff(want, walk(store.RunFilter{Limit: 5})); d != "" {
		t.Errorf("pages of 5 (-want +got):\n%s", d)
	}
	var odd []string
	for _, id := range want {
		var n int
		fmt.Sscanf(id, "page-%d", &n)
		if n%2 == 1 {
			odd = append(odd, id)
		}
	}
	if d := cmp.Diff(odd, walk(store.RunFilter{Namespace: "odd", Limit: 4})); d != "" {
		t.Errorf("pages of 4 in namespace odd (-want +got):\n%s", d)
	}
	one, err := s.ListRuns(ctx, store.RunFilter{Namespace: "odd", States: []store.RunState{store.RunQueued}, Before: &store.RunKey{CreatedAt: at(1), ID: "page-03"}, Limit: 10})
	wantErr(t, err, nil)
	if len(one) != 1 || one[0].ID != "page-01" {
		t.Errorf("odd runs before page-03 = %v, want [page-01]", one)
	}
}

// allRunStates lists every run state.
func allRunStates() []store.RunState {
	return []store.RunState{store.RunQueued, store.RunRunning, store.RunSuccess, store.RunFailed, store.RunCancelled}
}

// runInState creates run id and moves it to st.
func runInState(t *testing.T, s store.Store, id string, st store.RunState) {
	t.Helper()
	createRun(t, s, id)
	if st == store.RunQueued {
		return
	}
	from := store.RunQueued
	if st != store.RunRunning && st != store.RunCancelled {
		_, err := s.SetRunState(t.Context(), store.SetRunState{RunID: id, From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: at(1)})
		wantErr(t, err, nil)
		from = store.RunRunning
	}
	r, err := s.SetRunState(t.Context(), store.SetRunState{RunID: id, From: []store.RunState{from}, To: st, At: at(2)})
	wantErr(t, err, nil)
	if r.State != st {
		t.Fatalf("setup: run %q is %s, want %s", id, r.State, st)
	}
}

func testSetRunState(t *testing.T, s store.Store) {
	// Every transition of the run state machine, tried from every state:
	// allowed exactly when the run is in From.
	transitions := []struct{ from, to store.RunState }{
		{store.RunQueued, store.RunRunning},
		{store.RunQueued, store.RunCancelled},
		{store.RunRunning, store.RunSuccess},
		{store.RunRunning, store.RunFailed},
		{store.RunRunning, store.RunCancelled},
	}
	for _, tr := range transitions {
		for _, cur := range allRunStates() {
			t.Run(fmt.Sprintf("%s_to_%s_from_%s", tr.from, tr.to, cur), func(t *testing.T) {
				t.Parallel()
				id := fmt.Sprintf("%s-%s-%s", tr.from, tr.to, cur)
				runInState(t, s, id, cur)
				before, err := s.GetRun(t.Context(), id)
				wantErr(t, err, nil)
				got, err := s.SetRunState(t.Context(), store.SetRunState{RunID: id, From: []store.RunState{tr.from}, To: tr.to, At: at(50), Error: "why"})
				if cur != tr.from {
					wantErr(t, err, store.ErrConflict)
					after, err := s.GetRun(t.Context(), id)
					wantErr(t, err, nil)
					if d := cmp.Diff(before, after, eq()); d != "" {
						t.Errorf("refused transition changed the run (-before +after):\n%s", d)
					}
					return
				}
				wantErr(t, err, nil)
				want := before
				want.State = tr.to
				want.Error = "why"
				if tr.to == store.RunRunning {
					want.StartedAt = at(50)
				}
				if tr.to.Done() {
					want.EndedAt = at(50)
				}
				if d := cmp.Diff(want, got, eq()); d != "" {
					t.Errorf("SetRunState (-want +got):\n%s", d)
				}
			})
		}
	}
	t.Run("SeveralFrom", func(t *testing.T) {
		t.Parallel()
		runInState(t, s, "several", store.RunRunning)
		r, err := s.SetRunState(t.Context(), store.SetRunState{RunID: "several", From: []store.RunState{store.RunQueued, store.RunRunning}, To: store.RunCancelled, At: at(9)})
		wantErr(t, err, nil)
		if r.State != store.RunCancelled {
			t.Errorf("state = %s, want cancelled", r.State)
		}
	})
	t.Run("StartedAtSetOnce", func(t *testing.T) {
		t.Parallel()
		runInState(t, s, "once", store.RunRunning) // started at(2)
		r, err := s.SetRunState(t.Context(), store.SetRunState{RunID: "once", From: []store.RunState{store.RunRunning}, To: store.RunRunning, At: at(30)})
		wantErr(t, err, nil)
		if !r.StartedAt.Equal(at(2)) {
			t.Errorf("StartedAt = %s, want %s (the first start)", r.StartedAt, at(2))
		}
		if !r.EndedAt.IsZero() {
			t.Errorf("EndedAt = %s, want zero while running", r.EndedAt)
		}
	})
	t.Run("ErrorKeptWhenEmpty", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "errkeep")
		_, err := s.SetRunState(t.Context(), store.SetRunState{RunID: "errkeep", From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: at(1), Error: "first"})
		wantErr(t, err, nil)
		r, err := s.SetRunState(t.Context(), store.SetRunState{RunID: "errkeep", From: []store.RunState{store.RunRunning}, To: store.RunFailed, At: at(2)})
		wantErr(t, err, nil)
		if r.Error != "first" {
			t.Errorf("Error = %q, want %q kept", r.Error, "first")
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := s.SetRunState(t.Context(), store.SetRunState{RunID: "nope", From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: at(1)})
		wantErr(t, err, store.ErrNotFound)
	})
}

func testLease(t *testing.T, s store.Store) {
	claim := func(t *testing.T, id, owner string, until, now int, steal bool) (store.Run, error) {
		t.Helper()
		return s.ClaimRun(t.Context(), store.ClaimRun{RunID: id, Owner: owner, LeaseUntil: at(until), Now: at(now), Steal: steal})
	}
	tests := []struct {
		name      string
		holder    string // claims at 0 until 100 first, unless empty
		owner     string
		now       int
		steal     bool
		wantErr   error
		wantOwner string
	}{
		{name: "Free", owner: "e1", now: 10, wantOwner: "e1"},
		{name: "SameOwner", holder: "e1", owner: "e1", now: 10, wantOwner: "e1"},
		{name: "LiveLeaseRefused", holder: "e1", owner: "e2", now: 99, wantErr: store.ErrConflict, wantOwner: "e1"},
		{name: "ExpiredLeaseTaken", holder: "e1", owner: "e2", now: 100, wantOwner: "e2"},
		{name: "LongExpiredLeaseTaken", holder: "e1", owner: "e2", now: 500, wantOwner: "e2"},
		{name: "Steal", holder: "e1", owner: "e2", now: 10, steal: true, wantOwner: "e2"},
	}
	for _, tt := range tests {
		t.Run("Claim"+tt.name, func(t *testing.T) {
			t.Parallel()
			id := "claim-" + tt.name
			createRun(t, s, id)
			if tt.holder != "" {
				_, err := claim(t, id, tt.holder, 100, 0, false)
				wantErr(t, err, nil)
			}
			r, err := claim(t, id, tt.owner, tt.now+100, tt.now, tt.steal)
			wantErr(t, err, tt.wantErr)
			if r.Owner != tt.wantOwner {
				t.Errorf("returned Owner = %q, want %q", r.Owner, tt.wantOwner)
			}
			got, err := s.GetRun(t.Context(), id)
			wantErr(t, err, nil)
			wantUntil := at(tt.now + 100)
			if tt.wantErr != nil {
				wantUntil = at(100)
			}
			if got.Owner != tt.wantOwner || !got.LeaseExpiresAt.Equal(wantUntil) {
				t.Errorf("stored lease = %q until %s, want %q until %s", got.Owner, got.LeaseExpiresAt, tt.wantOwner, wantUntil)
			}
		})
	}
	t.Run("ClaimNotFound", func(t *testing.T) {
		t.Parallel()
		_, err := claim(t, "nope", "e1", 10, 0, false)
		wantErr(t, err, store.ErrNotFound)
	})
	t.Run("Heartbeat", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "hb")
		_, err := claim(t, "hb", "e1", 100, 0, false)
		wantErr(t, err, nil)
		wantErr(t, s.HeartbeatRun(t.Context(), "hb", "e1", at(200)), nil)
		r, err := s.GetRun(t.Context(), "hb")
		wantErr(t, err, nil)
		if !r.LeaseExpiresAt.Equal(at(200)) {
			t.Errorf("LeaseExpiresAt = %s, want %s", r.LeaseExpiresAt, at(200))
		}
		// A heartbeat after the lease expired still renews it while nobody
		// else has claimed the run.
		wantErr(t, s.HeartbeatRun(t.Context(), "hb", "e1", at(300)), nil)
	})
	t.Run("HeartbeatByNonOwnerRefused", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "hb-other")
		_, err := claim(t, "hb-other", "e1", 100, 0, false)
		wantErr(t, err, nil)
		wantErr(t, s.HeartbeatRun(t.Context(), "hb-other", "e2", at(500)), store.ErrConflict)
		r, err := s.GetRun(t.Context(), "hb-other")
		wantErr(t, err, nil)
		if r.Owner != "e1" || !r.LeaseExpiresAt.Equal(at(100)) {
			t.Errorf("lease = %q until %s, want e1 until %s", r.Owner, r.LeaseExpiresAt, at(100))
		}
	})
	t.Run("HeartbeatAfterStolen", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "hb-stolen")
		_, err := claim(t, "hb-stolen", "e1", 100, 0, false)
		wantErr(t, err, nil)
		_, err = claim(t, "hb-stolen", "e2", 200, 10, true)
		wantErr(t, err, nil)
		wantErr(t, s.HeartbeatRun(t.Context(), "hb-stolen", "e1", at(300)), store.ErrConflict)
	})
	t.Run("HeartbeatUnclaimed", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "hb-free")
		wantErr(t, s.HeartbeatRun(t.Context(), "hb-free", "e1", at(300)), store.ErrConflict)
	})
	t.Run("HeartbeatNotFound", func(t *testing.T) {
		t.Parallel()
		wantErr(t, s.HeartbeatRun(t.Context(), "nope", "e1", at(300)), store.ErrNotFound)
	})
	t.Run("Release", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "rel")
		_, err := claim(t, "rel", "e1", 100, 0, false)
		wantErr(t, err, nil)
		wantErr(t, s.ReleaseRun(t.Context(), "rel", "e1"), nil)
		r, err := s.GetRun(t.Context(), "rel")
		wantErr(t, err, nil)
		if r.Owner != "" {
			t.Errorf("Owner = %q after release, want none", r.Owner)
		}
		// Released: another engine claims it at once, lease or not.
		_, err = claim(t, "rel", "e2", 100, 1, false)
		wantErr(t, err, nil)
	})
	t.Run("ReleaseByNonOwnerKeepsHolder", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "rel-other")
		_, err := claim(t, "rel-other", "e1", 100, 0, false)
		wantErr(t, err, nil)
		wantErr(t, s.ReleaseRun(t.Context(), "rel-other", "e2"), nil)
		r, err := s.GetRun(t.Context(), "rel-other")
		wantErr(t, err, nil)
		if r.Owner != "e1" {
			t.Errorf("Owner = %q, want e1 still", r.Owner)
		}
	})
	t.Run("ReleaseNotFound", func(t *testing.T) {
		t.Parallel()
		wantErr(t, s.ReleaseRun(t.Context(), "nope", "e1"), store.ErrNotFound)
	})
}

// allTaskStates lists every task state.
func allTaskStates() []store.TaskState {
	return []store.TaskState{
		store.TaskPending, store.TaskQueued, store.TaskRunning, store.TaskSuccess, store.TaskFailed,
		store.TaskUpForRetry, store.TaskSkipped, store.TaskCancelled,
	}
}

// taskInState creates run id with one task "t" and brings the task to st
// by the store's own transitions. A task that ran has had one attempt.
func taskInState(t *testing.T, s store.Store, id string, st store.TaskState) {
	t.Helper()
	ctx := t.Context()
	createRun(t, s, id, "t")
	set := func(from, to store.TaskState) {
		t.Helper()
		_, err := s.SetTaskState(ctx, store.SetTaskState{RunID: id, Task: "t", From: []store.TaskState{from}, To: to, At: at(1)})
		wantErr(t, err, nil)
	}
	switch st {
	case store.TaskPending:
	case store.TaskQueued:
		set(store.TaskPending, store.TaskQueued)
	case store.TaskSkipped, store.TaskCancelled:
		set(store.TaskPending, st)
	default:
		set(store.TaskPending, store.TaskQueued)
		_, err := s.StartAttempt(ctx, store.StartAttempt{RunID: id, Task: "t", From: store.TaskQueued, Owner: "e1", At: at(2)})
		wantErr(t, err, nil)
		if st == store.TaskRunning {
			break
		}
		outcome := store.OutcomeSuccess
		if st != store.TaskSuccess {
			outcome = store.OutcomeFailed
		}
		_, err = s.FinishAttempt(ctx, store.FinishAttempt{RunID: id, Task: "t", Number: 1, Outcome: outcome, State: st, At: at(3), NextAttemptAt: at(4)})
		wantErr(t, err, nil)
	}
	tr, err := s.GetTaskRun(ctx, id, "t")
	wantErr(t, err, nil)
	if tr.State != st {
		t.Fatalf("setup: task is %s, want %s", tr.State, st)
	}
}

func testSetTaskState(t *testing.T, s store.Store) {
	// The transitions outside an attempt, each tried from every state.
	transitions := []struct{ from, to store.TaskState }{
		{store.TaskPending, store.TaskQueued},
		{store.TaskPending, store.TaskSkipped},
		{store.TaskPending, store.TaskCancelled},
		{store.TaskQueued, store.TaskCancelled},
		{store.TaskUpForRetry, store.TaskQueued},
		{store.TaskUpForRetry, store.TaskCancelled},
	}
	for _, tr := range transitions {
		for _, cur := range allTaskStates() {
			t.Run(fmt.Sprintf("%s_to_%s_from_%s", tr.from, tr.to, cur), func(t *testing.T) {
				t.Parallel()
				id := fmt.Sprintf("%s-%s-%s", tr.from, tr.to, cur)
				taskInState(t, s, id, cur)
				before, err := s.GetTaskRun(t.Context(), id, "t")
				wantErr(t, err, nil)
				got, err := s.SetTaskState(t.Context(), store.SetTaskState{RunID: id, Task: "t", From: []store.TaskState{tr.from}, To: tr.to, At: at(60), Error: "reason"})
				if cur != tr.from {
					wantErr(t, err, store.ErrConflict)
					after, err := s.GetTaskRun(t.Context(), id, "t")
					wantErr(t, err, nil)
					if d := cmp.Diff(before, after, eq()); d != "" {
						t.Errorf("refused transition changed the task run (-before +after):\n%s", d)
					}
					return
				}
				wantErr(t, err, nil)
				want := before
				want.State = tr.to
				want.Error = "reason"
				if tr.to.Done() {
					want.EndedAt = at(60)
				}
				if d := cmp.Diff(want, got, eq(), cmpopts.IgnoreFields(store.TaskRun{}, "NextAttemptAt")); d != "" {
					t.Errorf("SetTaskState (-want +got):\n%s", d)
				}
			})
		}
	}
	t.Run("ErrorKeptWhenEmpty", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		taskInState(t, s, "keep", store.TaskRunning)
		_, err := s.FinishAttempt(ctx, store.FinishAttempt{RunID: "keep", Task: "t", Number: 1, Outcome: store.OutcomeFailed, State: store.TaskUpForRetry, At: at(5), Error: "boom"})
		wantErr(t, err, nil)
		got, err := s.SetTaskState(ctx, store.SetTaskState{RunID: "keep", Task: "t", From: []store.TaskState{store.TaskUpForRetry}, To: store.TaskQueued, At: at(9)})
		wantErr(t, err, nil)
		if got.Error != "boom" {
			t.Errorf("Error = %q, want %q kept", got.Error, "boom")
		}
		got, err = s.SetTaskState(ctx, store.SetTaskState{RunID: "keep", Task: "t", From: []store.TaskState{store.TaskQueued}, To: store.TaskCancelled, At: at(10), Error: "cancelled by operator"})
		wantErr(t, err, nil)
		if got.Error != "cancelled by operator" {
			t.Errorf("Error = %q, want %q", got.Error, "cancelled by operator")
		}
	})
	t.Run("SeveralFrom", func(t *testing.T) {
		t.Parallel()
		taskInState(t, s, "several", store.TaskQueued)
		got, err := s.SetTaskState(t.Context(), store.SetTaskState{RunID: "several", Task: "t", From: []store.TaskState{store.TaskPending, store.TaskQueued}, To: store.TaskCancelled, At: at(9)})
		wantErr(t, err, nil)
		if got.State != store.TaskCancelled || !got.EndedAt.Equal(at(9)) {
			t.Errorf("got %s ended %s, want cancelled ended %s", got.State, got.EndedAt, at(9))
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "nf", "t")
		for _, ids := range [][2]string{{"nf", "nope"}, {"nope", "t"}} {
			_, err := s.SetTaskState(t.Context(), store.SetTaskState{RunID: ids[0], Task: ids[1], From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: at(1)})
			wantErr(t, err, store.ErrNotFound)
		}
	})
}

func testStartAttempt(t *testing.T, s store.Store) {
	for _, cur := range allTaskStates() {
		t.Run("FromQueuedWhen_"+string(cur), func(t *testing.T) {
			t.Parallel()
			id := "start-" + string(cur)
			taskInState(t, s, id, cur)
			before, err := s.GetTaskRun(t.Context(), id, "t")
			wantErr(t, err, nil)
			a, err := s.StartAttempt(t.Context(), store.StartAttempt{RunID: id, Task: "t", From: store.TaskQueued, Owner: "e2", At: at(70), LogPath: "logs/x.log"})
			if cur != store.TaskQueued {
				wantErr(t, err, store.ErrConflict)
				after, err := s.GetTaskRun(t.Context(), id, "t")
				wantErr(t, err, nil)
				if d := cmp.Diff(before, after, eq()); d != "" {
					t.Errorf("refused start changed the task run (-before +after):\n%s", d)
				}
				as, err := s.ListAttempts(t.Context(), id, "t")
				wantErr(t, err, nil)
				if len(as) != before.Attempts {
					t.Errorf("%d attempts recorded, want %d", len(as), before.Attempts)
				}
				return
			}
			wantErr(t, err, nil)
			wantA := store.Attempt{RunID: id, Task: "t", Number: 1, Outcome: store.OutcomeRunning, Owner: "e2", StartedAt: at(70), LogPath: "logs/x.log"}
			if d := cmp.Diff(wantA, a, eq()); d != "" {
				t.Errorf("StartAttempt (-want +got):\n%s", d)
			}
			tr, err := s.GetTaskRun(t.Context(), id, "t")
			wantErr(t, err, nil)
			if tr.State != store.TaskRunning || tr.Attempts != 1 || !tr.StartedAt.Equal(at(70)) || !tr.EndedAt.IsZero() {
				t.Errorf("task run = %+v, want running, 1 attempt, started %s", tr, at(70))
			}
		})
	}
	t.Run("FromUpForRetry", func(t *testing.T) {
		t.Parallel()
		taskInState(t, s, "start-direct-retry", store.TaskUpForRetry)
		a, err := s.StartAttempt(t.Context(), store.StartAttempt{RunID: "start-direct-retry", Task: "t", From: store.TaskUpForRetry, At: at(80)})
		wantErr(t, err, nil)
		if a.Number != 2 {
			t.Errorf("Number = %d, want 2", a.Number)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "start-nf", "t")
		_, err := s.StartAttempt(t.Context(), store.StartAttempt{RunID: "start-nf", Task: "nope", From: store.TaskQueued, At: at(1)})
		wantErr(t, err, store.ErrNotFound)
		_, err = s.StartAttempt(t.Context(), store.StartAttempt{RunID: "nope", Task: "t", From: store.TaskQueued, At: at(1)})
		wantErr(t, err, store.ErrNotFound)
	})
}

func testFinishAttempt(t *testing.T, s store.Store) {
	for _, cur := range allTaskStates() {
		if cur == store.TaskRunning {
			continue
		}
		t.Run("RefusedWhen_"+string(cur), func(t *testing.T) {
			t.Parallel()
			id := "finish-" + string(cur)
			taskInState(t, s, id, cur)
			before, err := s.GetTaskRun(t.Context(), id, "t")
			wantErr(t, err, nil)
			_, err = s.FinishAttempt(t.Context(), store.FinishAttempt{RunID: id, Task: "t", Number: max(before.Attempts, 1), Outcome: store.OutcomeSuccess, State: store.TaskSuccess, At: at(90)})
			wantErr(t, err, store.ErrConflict)
			after, err := s.GetTaskRun(t.Context(), id, "t")
			wantErr(t, err, nil)
			if d := cmp.Diff(before, after, eq()); d != "" {
				t.Errorf("refused finish changed the task run (-before +after):\n%s", d)
			}
		})
	}
	finals := []struct {
		state   store.TaskState
		outcome store.Outcome
	}{
		{store.TaskSuccess, store.OutcomeSuccess},
		{store.TaskFailed, store.OutcomeFailed},
		{store.TaskFailed, store.OutcomeTimedOut},
		{store.TaskFailed, store.OutcomeInterrupted},
		{store.TaskFailed, store.OutcomeIntegrity},
		{store.TaskUpForRetry, store.OutcomeFailed},
		{store.TaskCancelled, store.OutcomeCancelled},
	}
	for _, f := range finals {
		t.Run(fmt.Sprintf("To_%s_%s", f.state, f.outcome), func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("finish-to-%s-%s", f.state, f.outcome)
			taskInState(t, s, id, store.TaskRunning) // started at(2)
			got, err := s.FinishAttempt(t.Context(), store.FinishAttempt{
				RunID: id, Task: "t", Number: 1, Outcome: f.outcome, State: f.state, NextAttemptAt: at(200),
				At: at(100), ExitCode: intp(3), Error: "exit 3", RowsIn: 10, RowsOut: 8, RowsQuarantined: 2, Output: "art-1",
			})
			wantErr(t, err, nil)
			want := store.TaskRun{
				RunID: id, Task: "t", State: f.state, Attempts: 1, StartedAt: at(2), Error: "exit 3",
				ExitCode: intp(3), RowsIn: 10, RowsOut: 8, RowsQuarantined: 2, Output: "art-1",
			}
			if f.state == store.TaskUpForRetry {
				want.NextAttemptAt = at(200)
			} else {
				want.EndedAt = at(100)
			}
			if d := cmp.Diff(want, got, eq()); d != "" {
				t.Errorf("FinishAttempt (-want +got):\n%s", d)
			}
			as, err := s.ListAttempts(t.Context(), id, "t")
			wantErr(t, err, nil)
			wantA := []store.Attempt{{
				RunID: id, Task: "t", Number: 1, Outcome: f.outcome, Owner: "e1", StartedAt: at(2), EndedAt: at(100),
				ExitCode: intp(3), Error: "exit 3", RowsIn: 10, RowsOut: 8, RowsQuarantined: 2, Output: "art-1",
			}}
			if d := cmp.Diff(wantA, as, eq()); d != "" {
				t.Errorf("ListAttempts (-want +got):\n%s", d)
			}
		})
	}
	t.Run("StaleNumber", func(t *testing.T) {
		t.Parallel()
		taskInState(t, s, "stale", store.TaskUpForRetry) // attempt 1 done
		_, err := s.StartAttempt(t.Context(), store.StartAttempt{RunID: "stale", Task: "t", From: store.TaskUpForRetry, At: at(10)})
		wantErr(t, err, nil)
		for _, n := range []int{1, 3} {
			_, err := s.FinishAttempt(t.Context(), store.FinishAttempt{RunID: "stale", Task: "t", Number: n, Outcome: store.OutcomeSuccess, State: store.TaskSuccess, At: at(11)})
			wantErr(t, err, store.ErrConflict)
		}
		tr, err := s.FinishAttempt(t.Context(), store.FinishAttempt{RunID: "stale", Task: "t", Number: 2, Outcome: store.OutcomeSuccess, State: store.TaskSuccess, At: at(12)})
		wantErr(t, err, nil)
		if tr.State != store.TaskSuccess || tr.Attempts != 2 {
			t.Errorf("task run %s after %d attempts, want success after 2", tr.State, tr.Attempts)
		}
		// Finishing the same attempt twice: the second finds it closed.
		_, err = s.FinishAttempt(t.Context(), store.FinishAttempt{RunID: "stale", Task: "t", Number: 2, Outcome: store.OutcomeFailed, State: store.TaskFailed, At: at(13)})
		wantErr(t, err, store.ErrConflict)
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "finish-nf", "t")
		for _, ids := range [][2]string{{"finish-nf", "nope"}, {"nope", "t"}} {
			_, err := s.FinishAttempt(t.Context(), store.FinishAttempt{RunID: ids[0], Task: ids[1], Number: 1, Outcome: store.OutcomeSuccess, State: store.TaskSuccess, At: at(1)})
			wantErr(t, err, store.ErrNotFound)
		}
	})
}

// testRetries walks two tasks through failures and retries and checks the
// attempt history.
func testRetries(t *testing.T, s store.Store) {
	ctx := t.Context()
	// "b" before "a" in the file: attempts are listed by file order, not name.
	createRun(t, s, "retry", "b", "a")
	queue := func(task string, from store.TaskState, sec int) {
		t.Helper()
		_, err := s.SetTaskState(ctx, store.SetTaskState{RunID: "retry", Task: task, From: []store.TaskState{from}, To: store.TaskQueued, At: at(sec)})
		wantErr(t, err, nil)
	}
	start := func(task string, from store.TaskState, sec, wantNumber int) {
		t.Helper()
		a, err := s.StartAttempt(ctx, store.StartAttempt{RunID: "retry", Task: task, From: from, Owner: "e1", At: at(sec)})
		wantErr(t, err, nil)
		if a.Number != wantNumber {
			t.Fatalf("task %s: attempt number %d, want %d", task, a.Number, wantNumber)
		}
	}
	finish := func(task string, n int, st store.TaskState, out store.Outcome, sec int) store.TaskRun {
		t.Helper()
		p := store.FinishAttempt{RunID: "retry", Task: task, Number: n, Outcome: out, State: st, At: at(sec)}
		if st == store.TaskUpForRetry {
			p.NextAttemptAt = at(sec + 5)
			p.ExitCode = intp(1)
			p.Error = fmt.Sprintf("attempt %d failed", n)
		} else {
			p.ExitCode = intp(0)
			p.RowsOut = int64(n)
		}
		tr, err := s.FinishAttempt(ctx, p)
		wantErr(t, err, nil)
		return tr
	}

	queue("a", store.TaskPending, 1)
	queue("b", store.TaskPending, 1)
	start("a", store.TaskQueued, 2, 1)
	start("b", store.TaskQueued, 2, 1)
	tr := finish("a", 1, store.TaskUpForRetry, store.OutcomeFailed, 3)
	if tr.Attempts != 1 || !tr.NextAttemptAt.Equal(at(8)) || tr.Error != "attempt 1 failed" || !tr.EndedAt.IsZero() {
		t.Errorf("after a failed attempt: %+v", tr)
	}
	finish("b", 1, store.TaskSuccess, store.OutcomeSuccess, 4)
	queue("a", store.TaskUpForRetry, 8)
	start("a", store.TaskQueued, 9, 2)
	finish("a", 2, store.TaskUpForRetry, store.OutcomeFailed, 10)
	queue("a", store.TaskUpForRetry, 15)
	start("a", store.TaskQueued, 16, 3)
	tr = finish("a", 3, store.TaskSuccess, store.OutcomeSuccess, 17)

	wantA := store.TaskRun{
		RunID: "retry", Task: "a", Seq: 1, State: store.TaskSuccess, Attempts: 3, StartedAt: at(2), EndedAt: at(17),
		ExitCode: intp(0), RowsOut: 3,
	}
	if d := cmp.Diff(wantA, tr, eq()); d != "" {
		t.Errorf("task a after retries (-want +got):\n%s", d)
	}

	type key struct {
		Task    string
		Number  int
		Outcome store.Outcome
	}
	keys := func(as []store.Attempt) []key {
		var ks []key
		for _, a := range as {
			ks = append(ks, key{a.Task, a.Number, a.Outcome})
		}
		return ks
	}
	all, err := s.ListAttempts(ctx, "retry", "")
	wantErr(t, err, nil)
	wantAll := []key{
		{"b", 1, store.OutcomeSuccess},
		{"a", 1, store.OutcomeFailed}, {"a", 2, store.OutcomeFailed}, {"a", 3, store.OutcomeSuccess},
	}
	if d := cmp.Diff(wantAll, keys(all)); d != "" {
		t.Errorf("ListAttempts(all) (-want +got):\n%s", d)
	}
	onlyA, err := s.ListAttempts(ctx, "retry", "a")
	wantErr(t, err, nil)
	if d := cmp.Diff(wantAll[1:], keys(onlyA)); d != "" {
		t.Errorf("ListAttempts(a) (-want +got):\n%s", d)
	}
	if len(onlyA) == 3 {
		second := store.Attempt{
			RunID: "retry", Task: "a", Number: 2, Outcome: store.OutcomeFailed, Owner: "e1",
			StartedAt: at(9), EndedAt: at(10), ExitCode: intp(1), Error: "attempt 2 failed",
		}
		if d := cmp.Diff(second, onlyA[1], eq()); d != "" {
			t.Errorf("attempt a#2 (-want +got):\n%s", d)
		}
	}
	none, err := s.ListAttempts(ctx, "nope", "")
	wantErr(t, err, nil)
	if len(none) != 0 {
		t.Errorf("ListAttempts of unknown run = %v, want none", none)
	}
}

func testArtifacts(t *testing.T, s store.Store) {
	ctx := t.Context()
	createRun(t, s, "art", "t")
	createRun(t, s, "art-other", "t")
	mk := func(id string, created int) store.Artifact {
		return store.Artifact{
			ID: id, RunID: "art", Task: "t", Attempt: 1, Kind: "output", Path: "artifacts/" + id,
			Format: "arrow-ipc-stream", Schema: `{"fields":[]}`, Rows: 42, Bytes: 4096,
			SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", PlainSHA256: "ab" + id, Created: at(created),
		}
	}
	// Put out of creation order: the listing orders by Created.
	second, first := mk("a2", 20), mk("a1", 10)
	wantErr(t, s.PutArtifact(ctx, second), nil)
	wantErr(t, s.PutArtifact(ctx, first), nil)

	t.Run("Get", func(t *testing.T) {
		t.Parallel()
		got, err := s.GetArtifact(t.Context(), "a1")
		wantErr(t, err, nil)
		if d := cmp.Diff(first, got, eq()); d != "" {
			t.Errorf("GetArtifact (-want +got):\n%s", d)
		}
	})
	t.Run("ListInCreationOrder", func(t *testing.T) {
		t.Parallel()
		got, err := s.ListArtifacts(t.Context(), "art")
		wantErr(t, err, nil)
		if d := cmp.Diff([]store.Artifact{first, second}, got, eq()); d != "" {
			t.Errorf("ListArtifacts (-want +got):\n%s", d)
		}
		other, err := s.ListArtifacts(t.Context(), "art-other")
		wantErr(t, err, nil)
		if len(other) != 0 {
			t.Errorf("other run's artifacts = %v, want none", other)
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		t.Parallel()
		dup := mk("a1", 30)
		dup.Path = "elsewhere"
		wantErr(t, s.PutArtifact(t.Context(), dup), store.ErrConflict)
		got, err := s.GetArtifact(t.Context(), "a1")
		wantErr(t, err, nil)
		if got.Path != first.Path {
			t.Errorf("duplicate overwrote the artifact: path %q", got.Path)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := s.GetArtifact(t.Context(), "nope")
		wantErr(t, err, store.ErrNotFound)
	})
}

var errAbort = errors.New("abort")

func testInTx(t *testing.T, s store.Store) {
	t.Run("Commit", func(t *testing.T) {
		t.Parallel()
		err := s.InTx(t.Context(), func(tx store.Store) error {
			createRun(t, tx, "tx-commit", "t")
			// The transaction sees its own writes.
			if _, err := tx.SetTaskState(t.Context(), store.SetTaskState{RunID: "tx-commit", Task: "t", From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: at(1)}); err != nil {
				return err
			}
			_, err := tx.StartAttempt(t.Context(), store.StartAttempt{RunID: "tx-commit", Task: "t", From: store.TaskQueued, At: at(2)})
			return err
		})
		wantErr(t, err, nil)
		tr, err := s.GetTaskRun(t.Context(), "tx-commit", "t")
		wantErr(t, err, nil)
		if tr.State != store.TaskRunning || tr.Attempts != 1 {
			t.Errorf("after commit: %s with %d attempts, want running with 1", tr.State, tr.Attempts)
		}
	})
	t.Run("RollbackOnError", func(t *testing.T) {
		t.Parallel()
		createRun(t, s, "tx-rb-existing", "t")
		err := s.InTx(t.Context(), func(tx store.Store) error {
			createRun(t, tx, "tx-rb", "t")
			if _, err := tx.SetRunState(t.Context(), store.SetRunState{RunID: "tx-rb-existing", From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: at(1)}); err != nil {
				return err
			}
			if err := tx.PutArtifact(t.Context(), store.Artifact{ID: "tx-rb-art", RunID: "tx-rb", Task: "t", Attempt: 1, Created: at(1)}); err != nil {
				return err
			}
			return errAbort
		})
		wantErr(t, err, errAbort)
		_, err = s.GetRun(t.Context(), "tx-rb")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetArtifact(t.Context(), "tx-rb-art")
		wantErr(t, err, store.ErrNotFound)
		r, err := s.GetRun(t.Context(), "tx-rb-existing")
		wantErr(t, err, nil)
		if r.State != store.RunQueued {
			t.Errorf("rolled-back state change persisted: run is %s", r.State)
		}
	})
	t.Run("NestedJoins", func(t *testing.T) {
		t.Parallel()
		err := s.InTx(t.Context(), func(tx store.Store) error {
			return tx.InTx(t.Context(), func(inner store.Store) error {
				createRun(t, inner, "tx-nested", "t")
				return nil
			})
		})
		wantErr(t, err, nil)
		_, err = s.GetRun(t.Context(), "tx-nested")
		wantErr(t, err, nil)
	})
	t.Run("NestedErrorRollsBackAll", func(t *testing.T) {
		t.Parallel()
		err := s.InTx(t.Context(), func(tx store.Store) error {
			createRun(t, tx, "tx-nested-outer")
			return tx.InTx(t.Context(), func(inner store.Store) error {
				createRun(t, inner, "tx-nested-inner")
				return errAbort
			})
		})
		wantErr(t, err, errAbort)
		for _, id := range []string{"tx-nested-outer", "tx-nested-inner"} {
			_, err = s.GetRun(t.Context(), id)
			wantErr(t, err, store.ErrNotFound)
		}
	})
	t.Run("SentinelsInside", func(t *testing.T) {
		t.Parallel()
		err := s.InTx(t.Context(), func(tx store.Store) error {
			_, err := tx.GetRun(t.Context(), "tx-missing")
			return err
		})
		wantErr(t, err, store.ErrNotFound)
	})
}

// testConcurrentStart races starters for one queued task: the
// compare-and-set lets exactly one open an attempt.
func testConcurrentStart(t *testing.T, s store.Store) {
	const n = 8
	createRun(t, s, "race", "t")
	_, err := s.SetTaskState(t.Context(), store.SetTaskState{RunID: "race", Task: "t", From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: at(1)})
	wantErr(t, err, nil)

	var (
		wg    sync.WaitGroup
		ready = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-ready
			_, errs[i] = s.StartAttempt(context.WithoutCancel(t.Context()), store.StartAttempt{
				RunID: "race", Task: "t", From: store.TaskQueued, Owner: fmt.Sprintf("e%d", i), At: at(2),
			})
		})
	}
	close(ready)
	wg.Wait()

	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("starter %d: %v, want success or ErrConflict", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d starters won, want exactly 1", wins)
	}
	tr, err := s.GetTaskRun(t.Context(), "race", "t")
	wantErr(t, err, nil)
	as, err := s.ListAttempts(t.Context(), "race", "t")
	wantErr(t, err, nil)
	if tr.Attempts != 1 || len(as) != 1 {
		t.Errorf("attempts counted %d, recorded %d; want 1 and 1", tr.Attempts, len(as))
	}
}
