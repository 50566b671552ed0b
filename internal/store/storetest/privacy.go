package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

func testPrivacy(t *testing.T, s store.Store) {
	ctx := t.Context()
	createRun(t, s, "pr1", "t")
	art := func(id string) store.Artifact {
		return store.Artifact{ID: id, RunID: "pr1", Task: "t", Attempt: 1, Kind: "output", Path: id + ".arrow",
			Format: "arrow-ipc-stream", Schema: "[]", Rows: 3, Bytes: 10, SHA256: "aa", PlainSHA256: "bb", Created: at(1)}
	}
	for _, id := range []string{"a3", "a1", "a2"} {
		wantErr(t, s.PutArtifact(ctx, art(id)), nil)
	}

	t.Run("Erasures", func(t *testing.T) {
		e1 := store.Erasure{ID: "e1", SubjectHash: "h1", At: at(5), Actor: "alice", KeysDestroyed: 1,
			Artifacts: []string{"a1", "a2"}, Rows: 4}
		e0 := store.Erasure{ID: "e0", SubjectHash: "h0", At: at(2), Actor: "bob"}
		wantErr(t, s.RecordErasure(ctx, e1), nil)
		wantErr(t, s.RecordErasure(ctx, e0), nil)
		wantErr(t, s.RecordErasure(ctx, e1), store.ErrConflict)
		got, err := s.ListErasures(ctx)
		wantErr(t, err, nil)
		if d := cmp.Diff([]store.Erasure{e0, e1}, got, eq()); d != "" {
			t.Errorf("ListErasures (-want +got):\n%s", d)
		}
	})
	t.Run("ListAllArtifactsPages", func(t *testing.T) {
		var ids []string
		after := ""
		for {
			page, err := s.ListAllArtifacts(ctx, after, 2)
			wantErr(t, err, nil)
			if len(page) == 0 {
				break
			}
			for _, a := range page {
				ids = append(ids, a.ID)
			}
			after = page[len(page)-1].ID
		}
		if d := cmp.Diff([]string{"a1", "a2", "a3"}, ids); d != "" {
			t.Errorf("ids (-want +got):\n%s", d)
		}
	})
	t.Run("ReplaceArtifact", func(t *testing.T) {
		a := art("a2")
		a.Path, a.Rows, a.Bytes, a.SHA256, a.PlainSHA256 = "a2.v2.arrow", 2, 8, "cc", "dd"
		a.Task = "ignored" // identity is kept
		wantErr(t, s.ReplaceArtifact(ctx, a), nil)
		got, err := s.GetArtifact(ctx, "a2")
		wantErr(t, err, nil)
		a.Task = "t"
		if d := cmp.Diff(a, got, eq()); d != "" {
			t.Errorf("after ReplaceArtifact (-want +got):\n%s", d)
		}
		missing := art("nope")
		wantErr(t, s.ReplaceArtifact(ctx, missing), store.ErrNotFound)
	})
	t.Run("Retention", func(t *testing.T) {
		wantErr(t, s.SetArtifactExpiry(ctx, "a1", at(100)), nil)
		wantErr(t, s.SetArtifactExpiry(ctx, "a3", at(50)), nil)
		wantErr(t, s.SetArtifactExpiry(ctx, "a3", at(60)), nil) // moved
		wantErr(t, s.SetArtifactExpiry(ctx, "nope", at(60)), store.ErrNotFound)
		exp, err := s.ArtifactExpiry(ctx, "a3")
		wantErr(t, err, nil)
		if !exp.Equal(at(60)) {
			t.Errorf("ArtifactExpiry(a3) = %v, want %v", exp, at(60))
		}
		exp, err = s.ArtifactExpiry(ctx, "a2")
		wantErr(t, err, nil)
		if !exp.IsZero() {
			t.Errorf("ArtifactExpiry(a2) = %v, want zero", exp)
		}
		ids := func(now int) []string {
			as, err := s.ListExpiredArtifacts(ctx, at(now), 10)
			wantErr(t, err, nil)
			var out []string
			for _, a := range as {
				out = append(out, a.ID)
			}
			return out
		}
		for _, tt := range []struct {
			now  int
			want []string
		}{{59, nil}, {60, []string{"a3"}}, {100, []string{"a3", "a1"}}} {
			if d := cmp.Diff(tt.want, ids(tt.now), eq()); d != "" {
				t.Errorf("expired at %d (-want +got):\n%s", tt.now, d)
			}
		}
		d := store.ArtifactDeletion{ArtifactID: "a3", RunID: "pr1", Task: "t", Path: "a3.arrow", Reason: "retention", At: at(70)}
		wantErr(t, s.DeleteArtifact(ctx, d), nil)
		wantErr(t, s.DeleteArtifact(ctx, d), store.ErrNotFound)
		_, err = s.GetArtifact(ctx, "a3")
		wantErr(t, err, store.ErrNotFound)
		if d := cmp.Diff([]string{"a1"}, ids(100)); d != "" {
			t.Errorf("expired after delete (-want +got):\n%s", d)
		}
		got, err := s.ListArtifactDeletions(ctx)
		wantErr(t, err, nil)
		if diff := cmp.Diff([]store.ArtifactDeletion{d}, got, eq()); diff != "" {
			t.Errorf("ListArtifactDeletions (-want +got):\n%s", diff)
		}
	})
	t.Run("DeleteDataKey", func(t *testing.T) {
		k := store.DataKey{ID: "dk-del", Purpose: store.PurposeDAEAD, Ref: "subject:x", KEKKeyID: 1, Wrapped: []byte("w"), CreatedAt: at(1)}
		wantErr(t, s.PutDataKey(ctx, k), nil)
		wantErr(t, s.DeleteDataKey(ctx, "dk-del"), nil)
		_, err := s.GetDataKey(ctx, "dk-del")
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.DeleteDataKey(ctx, "dk-del"), store.ErrNotFound)
	})
}
