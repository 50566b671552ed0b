package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

func testSchedule(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, v := range []store.PipelineVersion{
		{Namespace: "crm", Pipeline: "daily", Hash: "h1", Content: []byte("a"), Author: "ann", CreatedAt: at(0)},
		{Namespace: "crm", Pipeline: "daily", Hash: "h2", Content: []byte("b"), Author: "ann", CreatedAt: at(1)},
		{Namespace: "bi", Pipeline: "hourly", Hash: "h3", Content: []byte("c"), Author: "bob", CreatedAt: at(2)},
	} {
		if _, err := s.PutPipelineVersion(ctx, v); err != nil {
			t.Fatalf("PutPipelineVersion: %v", err)
		}
	}

	t.Run("ListVersionedPipelines", func(t *testing.T) {
		t.Parallel()
		got, err := s.ListVersionedPipelines(t.Context())
		wantErr(t, err, nil)
		want := []store.PipelineRef{{Namespace: "bi", Pipeline: "hourly"}, {Namespace: "crm", Pipeline: "daily"}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ListVersionedPipelines (-want +got):\n%s", d)
		}
	})

	t.Run("Tick", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		_, err := s.GetScheduleTick(ctx, "crm", "daily")
		wantErr(t, err, store.ErrNotFound)
		adv := func(from, to time.Time) error {
			return s.AdvanceScheduleTick(ctx, store.AdvanceScheduleTick{Namespace: "crm", Pipeline: "daily", From: from, To: to, At: to})
		}
		wantErr(t, adv(time.Time{}, at(60)), nil)
		wantErr(t, adv(time.Time{}, at(120)), store.ErrConflict) // already recorded
		wantErr(t, adv(at(30), at(120)), store.ErrConflict)      // stale from
		wantErr(t, adv(at(60), at(120)), nil)
		wantErr(t, adv(at(60), at(180)), store.ErrConflict) // moved by the previous call
		got, err := s.GetScheduleTick(ctx, "crm", "daily")
		wantErr(t, err, nil)
		want := store.ScheduleTick{Namespace: "crm", Pipeline: "daily", Tick: at(120), UpdatedAt: at(120)}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("GetScheduleTick (-want +got):\n%s", d)
		}
		all, err := s.ListScheduleTicks(ctx)
		wantErr(t, err, nil)
		if d := cmp.Diff([]store.ScheduleTick{want}, all); d != "" {
			t.Errorf("ListScheduleTicks (-want +got):\n%s", d)
		}
	})

	t.Run("Pauses", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		set := func(p store.SchedulePause, paused bool) {
			t.Helper()
			wantErr(t, s.SetSchedulePaused(ctx, p, paused), nil)
		}
		set(store.SchedulePause{Namespace: "ops", Pipeline: "a", By: "ann", At: at(1)}, true)
		set(store.SchedulePause{Namespace: "ops", Pipeline: "a", By: "bob", At: at(2)}, true) // keeps the first
		set(store.SchedulePause{Namespace: "ops", By: "cat", At: at(3)}, true)
		set(store.SchedulePause{Namespace: "ops", Pipeline: "b", By: "cat", At: at(4)}, true)
		set(store.SchedulePause{Namespace: "ops", Pipeline: "b"}, false)
		set(store.SchedulePause{Namespace: "ops", Pipeline: "never"}, false) // not an error
		got, err := s.ListSchedulePauses(ctx)
		wantErr(t, err, nil)
		want := []store.SchedulePause{
			{Namespace: "ops", By: "cat", At: at(3)},
			{Namespace: "ops", Pipeline: "a", By: "ann", At: at(1)},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ListSchedulePauses (-want +got):\n%s", d)
		}
	})

	t.Run("LateRuns", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		l1 := store.LateRun{Namespace: "crm", Pipeline: "daily", Tick: at(3600), RunID: "r1", DetectedAt: at(7200)}
		l2 := store.LateRun{Namespace: "crm", Pipeline: "daily", Tick: at(7200), DetectedAt: at(9000)}
		l3 := store.LateRun{Namespace: "bi", Pipeline: "hourly", Tick: at(60), RunID: "r3", DetectedAt: at(100)}
		for _, l := range []store.LateRun{l1, l2, l3} {
			wantErr(t, s.PutLateRun(ctx, l), nil)
		}
		wantErr(t, s.PutLateRun(ctx, l1), store.ErrConflict)
		for _, tc := range []struct {
			name string
			f    store.LateRunFilter
			want []store.LateRun
		}{
			{"All", store.LateRunFilter{}, []store.LateRun{l2, l1, l3}},
			{"Namespace", store.LateRunFilter{Namespace: "crm"}, []store.LateRun{l2, l1}},
			{"Pipeline", store.LateRunFilter{Namespace: "bi", Pipeline: "hourly"}, []store.LateRun{l3}},
			{"Limit", store.LateRunFilter{Limit: 1}, []store.LateRun{l2}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ListLateRuns(ctx, tc.f)
				wantErr(t, err, nil)
				if d := cmp.Diff(tc.want, got, eq()); d != "" {
					t.Errorf("ListLateRuns (-want +got):\n%s", d)
				}
			})
		}
	})

	t.Run("InTx", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		err := s.InTx(ctx, func(tx store.Store) error {
			if err := tx.AdvanceScheduleTick(ctx, store.AdvanceScheduleTick{Namespace: "tx", Pipeline: "p", To: at(5)}); err != nil {
				return err
			}
			return store.ErrConflict // roll back
		})
		wantErr(t, err, store.ErrConflict)
		_, err = s.GetScheduleTick(ctx, "tx", "p")
		wantErr(t, err, store.ErrNotFound)
	})
}
