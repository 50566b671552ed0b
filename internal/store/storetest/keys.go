package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

func testDataKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(id string, kek uint32) store.DataKey {
		return store.DataKey{ID: id, Purpose: store.PurposeArtifact, Ref: "ref-" + id, KEKKeyID: kek,
			Wrapped: []byte("wrapped-" + id), CreatedAt: at(1)}
	}
	// Ids inserted out of order, to check ListDataKeys orders by id.
	// 4294967295 checks the whole uint32 range survives storage.
	keys := []store.DataKey{mk("k3", 7), mk("k1", 7), mk("k5", 4294967295), mk("k2", 9), mk("k4", 7)}
	for _, k := range keys {
		wantErr(t, s.PutDataKey(ctx, k), nil)
	}

	t.Run("Get", func(t *testing.T) {
		t.Parallel()
		got, err := s.GetDataKey(t.Context(), "k5")
		wantErr(t, err, nil)
		if d := cmp.Diff(mk("k5", 4294967295), got, eq()); d != "" {
			t.Errorf("GetDataKey (-want +got):\n%s", d)
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		t.Parallel()
		dup := mk("k1", 9)
		dup.Wrapped = []byte("other")
		wantErr(t, s.PutDataKey(t.Context(), dup), store.ErrConflict)
		got, err := s.GetDataKey(t.Context(), "k1")
		wantErr(t, err, nil)
		if string(got.Wrapped) != "wrapped-k1" || got.KEKKeyID != 7 {
			t.Errorf("duplicate overwrote the data key: %+v", got)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := s.GetDataKey(t.Context(), "nope")
		wantErr(t, err, store.ErrNotFound)
	})
	t.Run("ListPages", func(t *testing.T) {
		t.Parallel()
		var ids []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			page, err := s.ListDataKeys(t.Context(), after, 2)
			wantErr(t, err, nil)
			if len(page) > 2 {
				t.Fatalf("page of %d keys, limit 2", len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, k := range page {
				ids = append(ids, k.ID)
			}
			after = page[len(page)-1].ID
		}
		if d := cmp.Diff([]string{"k1", "k2", "k3", "k4", "k5"}, ids); d != "" {
			t.Errorf("paged ids (-want +got):\n%s", d)
		}
	})
}

// testConcurrentRewrap covers the compare-and-set of RewrapDataKey and
// the counts by KEK key, on a store of its own so that the counts are
// exact.
func testConcurrentRewrap(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 4 {
		k := store.DataKey{ID: fmt.Sprintf("d%d", i), Purpose: store.PurposeLog, Ref: "r", KEKKeyID: 1,
			Wrapped: []byte("w1"), CreatedAt: at(1)}
		wantErr(t, s.PutDataKey(ctx, k), nil)
	}
	wantErr(t, s.PutDataKey(ctx, store.DataKey{ID: "other", KEKKeyID: 2, Wrapped: []byte("w2"), CreatedAt: at(1)}), nil)

	counts, err := s.CountDataKeysByKEK(ctx)
	wantErr(t, err, nil)
	if d := cmp.Diff(map[uint32]int64{1: 4, 2: 1}, counts); d != "" {
		t.Errorf("counts before (-want +got):\n%s", d)
	}

	wantErr(t, s.RewrapDataKey(ctx, "d0", 1, 3, []byte("w3"), at(5)), nil)
	got, err := s.GetDataKey(ctx, "d0")
	wantErr(t, err, nil)
	want := store.DataKey{ID: "d0", Purpose: store.PurposeLog, Ref: "r", KEKKeyID: 3, Wrapped: []byte("w3"),
		CreatedAt: at(1), RewrappedAt: at(5)}
	if d := cmp.Diff(want, got, eq()); d != "" {
		t.Errorf("after rewrap (-want +got):\n%s", d)
	}
	// A stale re-wrapper (still believing KEK 1) loses.
	wantErr(t, s.RewrapDataKey(ctx, "d0", 1, 4, []byte("stale"), at(6)), store.ErrConflict)
	wantErr(t, s.RewrapDataKey(ctx, "missing", 1, 3, []byte("x"), at(6)), store.ErrNotFound)
	got, err = s.GetDataKey(ctx, "d0")
	wantErr(t, err, nil)
	if got.KEKKeyID != 3 || string(got.Wrapped) != "w3" {
		t.Errorf("stale rewrap changed the key: %+v", got)
	}

	// Racing re-wrappers of one key: exactly one wins.
	const n = 6
	var (
		wg    sync.WaitGroup
		ready = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-ready
			errs[i] = s.RewrapDataKey(context.WithoutCancel(ctx), "d1", 1, uint32(10+i), []byte("race"), at(7))
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
			t.Errorf("re-wrapper %d: %v, want success or ErrConflict", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d re-wrappers won, want exactly 1", wins)
	}

	counts, err = s.CountDataKeysByKEK(ctx)
	wantErr(t, err, nil)
	if counts[1] != 2 || counts[2] != 1 || counts[3] != 1 {
		t.Errorf("counts after = %v, want 2 under KEK 1, 1 under 2, 1 under 3", counts)
	}
}

func testSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	put := func(name, sealed string, sec int) store.Secret {
		t.Helper()
		got, err := s.PutSecret(ctx, store.Secret{Name: name, Version: 99, Sealed: []byte(sealed),
			DataKeyID: "dk-" + sealed, SetBy: "alice", SetAt: at(sec)})
		wantErr(t, err, nil)
		return got
	}
	first := put("db_dsn", "v1", 1)
	second := put("db_dsn", "v2", 2)
	api := put("api_token", "t1", 3)
	put("gone", "g1", 4)
	put("gone", "g2", 5)

	t.Run("VersionsAssigned", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			got  store.Secret
			want int
		}{{first, 1}, {second, 2}, {api, 1}} {
			if tt.got.Version != tt.want {
				t.Errorf("%s sealed %q: version %d, want %d", tt.got.Name, tt.got.Sealed, tt.got.Version, tt.want)
			}
		}
	})
	t.Run("GetLatest", func(t *testing.T) {
		t.Parallel()
		got, err := s.GetSecret(t.Context(), "db_dsn")
		wantErr(t, err, nil)
		want := store.Secret{Name: "db_dsn", Version: 2, Sealed: []byte("v2"), DataKeyID: "dk-v2", SetBy: "alice", SetAt: at(2)}
		if d := cmp.Diff(want, got, eq()); d != "" {
			t.Errorf("GetSecret (-want +got):\n%s", d)
		}
		if d := cmp.Diff(want, second, eq()); d != "" {
			t.Errorf("PutSecret result (-want +got):\n%s", d)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := s.GetSecret(t.Context(), "nope")
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.DeleteSecret(t.Context(), "nope"), store.ErrNotFound)
	})
	t.Run("DeleteAllVersions", func(t *testing.T) {
		t.Parallel()
		wantErr(t, s.DeleteSecret(t.Context(), "gone"), nil)
		_, err := s.GetSecret(t.Context(), "gone")
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.DeleteSecret(t.Context(), "gone"), store.ErrNotFound)
		// A new version after deletion starts again from 1.
		again, err := s.PutSecret(t.Context(), store.Secret{Name: "gone", Sealed: []byte("g3"), SetAt: at(6)})
		wantErr(t, err, nil)
		if again.Version != 1 {
			t.Errorf("version after delete = %d, want 1", again.Version)
		}
	})
	t.Run("ListLatestByNameWithoutValues", func(t *testing.T) {
		t.Parallel()
		got, err := s.ListSecrets(t.Context())
		wantErr(t, err, nil)
		// Parallel subtests add and delete other names; check these two.
		var kept []store.Secret
		for _, sec := range got {
			if sec.Name == "api_token" || sec.Name == "db_dsn" {
				kept = append(kept, sec)
			}
		}
		want := []store.Secret{
			{Name: "api_token", Version: 1, DataKeyID: "dk-t1", SetBy: "alice", SetAt: at(3)},
			{Name: "db_dsn", Version: 2, DataKeyID: "dk-v2", SetBy: "alice", SetAt: at(2)},
		}
		if d := cmp.Diff(want, kept, eq()); d != "" {
			t.Errorf("ListSecrets (-want +got):\n%s", d)
		}
	})
	t.Run("ConcurrentPutsGetDistinctVersions", func(t *testing.T) {
		t.Parallel()
		const n = 6
		var (
			wg       sync.WaitGroup
			ready    = make(chan struct{})
			versions = make([]int, n)
			errs     = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-ready
				got, err := s.PutSecret(context.WithoutCancel(ctx), store.Secret{Name: "raced", Sealed: []byte{byte(i + 1)}, SetAt: at(8)})
				versions[i], errs[i] = got.Version, err
			})
		}
		close(ready)
		wg.Wait()
		seen := make(map[int]bool)
		for i, err := range errs {
			wantErr(t, err, nil)
			if seen[versions[i]] {
				t.Errorf("version %d assigned twice", versions[i])
			}
			seen[versions[i]] = true
		}
		for v := 1; v <= n; v++ {
			if !seen[v] {
				t.Errorf("version %d never assigned; got %v", v, versions)
			}
		}
	})
	t.Run("InTxRollback", func(t *testing.T) {
		t.Parallel()
		err := s.InTx(t.Context(), func(tx store.Store) error {
			if _, err := tx.PutSecret(t.Context(), store.Secret{Name: "tx-secret", Sealed: []byte("x"), SetAt: at(9)}); err != nil {
				return err
			}
			if err := tx.PutDataKey(t.Context(), store.DataKey{ID: "tx-key", KEKKeyID: 1, Wrapped: []byte("w"), CreatedAt: at(9)}); err != nil {
				return err
			}
			return errAbort
		})
		wantErr(t, err, errAbort)
		_, err = s.GetSecret(t.Context(), "tx-secret")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetDataKey(t.Context(), "tx-key")
		wantErr(t, err, store.ErrNotFound)
	})
}
