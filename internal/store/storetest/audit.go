package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

func auditRecord(seq int64, actor, action, resource string, sec int) store.AuditRecord {
	return store.AuditRecord{
		Seq: seq, Time: at(sec), Actor: actor, Action: action, Resource: resource, Outcome: "success",
		Event: []byte(fmt.Sprintf(`{"n":%d}`, seq)), PrevHash: bytes.Repeat([]byte{byte(seq - 1)}, 32),
		Hash: bytes.Repeat([]byte{byte(seq)}, 32),
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.LastAudit(ctx)
	wantErr(t, err, store.ErrNotFound)

	recs := []store.AuditRecord{
		auditRecord(1, "user:a", "secret.set", "secret:x", 1),
		auditRecord(2, "user:b", "key.rotate", "", 2),
		auditRecord(3, "user:a", "secret.rm", "secret:x", 3),
		auditRecord(4, "user:b", "secret.set", "secret:y", 4),
	}
	for _, r := range recs {
		wantErr(t, s.AppendAudit(ctx, r), nil)
	}
	t.Run("SeqMustBeNext", func(t *testing.T) {
		wantErr(t, s.AppendAudit(ctx, auditRecord(4, "user:c", "x", "", 5)), store.ErrConflict)
		wantErr(t, s.AppendAudit(ctx, auditRecord(6, "user:c", "x", "", 5)), store.ErrConflict)
	})
	t.Run("Last", func(t *testing.T) {
		got, err := s.LastAudit(ctx)
		wantErr(t, err, nil)
		if diff := cmp.Diff(recs[3], got, eq()); diff != "" {
			t.Errorf("LastAudit (-want +got):\n%s", diff)
		}
	})
	tests := []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4}},
		{"actor", store.AuditFilter{Actor: "user:a"}, []int64{1, 3}},
		{"action", store.AuditFilter{Action: "secret.set"}, []int64{1, 4}},
		{"resource", store.AuditFilter{Resource: "secret:x"}, []int64{1, 3}},
		{"since until", store.AuditFilter{Since: at(2), Until: at(4)}, []int64{2, 3}},
		{"page", store.AuditFilter{AfterSeq: 1, Limit: 2}, []int64{2, 3}},
		{"combined", store.AuditFilter{Actor: "user:b", Action: "secret.set"}, []int64{4}},
	}
	for _, tt := range tests {
		t.Run("List/"+tt.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tt.f)
			wantErr(t, err, nil)
			var seqs []int64
			for _, r := range got {
				seqs = append(seqs, r.Seq)
				if diff := cmp.Diff(recs[r.Seq-1], r, eq()); diff != "" {
					t.Errorf("record %d (-want +got):\n%s", r.Seq, diff)
				}
			}
			if diff := cmp.Diff(tt.want, seqs, eq()); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("InTxRollback", func(t *testing.T) {
		err := s.InTx(ctx, func(tx store.Store) error {
			if err := tx.AppendAudit(ctx, auditRecord(5, "user:c", "x", "", 5)); err != nil {
				return err
			}
			return store.ErrConflict
		})
		wantErr(t, err, store.ErrConflict)
		got, err := s.LastAudit(ctx)
		wantErr(t, err, nil)
		if got.Seq != 4 {
			t.Errorf("last seq %d after a rolled back append, want 4", got.Seq)
		}
	})
}

func testAuditCheckpoints(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.LastAuditCheckpoint(ctx)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.LastAuditSigningKey(ctx)
	wantErr(t, err, store.ErrNotFound)

	k1 := store.AuditSigningKey{ID: "k1", PublicKeyset: []byte("pub1"), Sealed: []byte("sealed1"), DataKeyID: "dk1", CreatedAt: at(1)}
	k2 := store.AuditSigningKey{ID: "k2", PublicKeyset: []byte("pub2"), Sealed: []byte("sealed2"), DataKeyID: "dk2", CreatedAt: at(2)}
	wantErr(t, s.PutAuditSigningKey(ctx, k1), nil)
	wantErr(t, s.PutAuditSigningKey(ctx, k2), nil)
	wantErr(t, s.PutAuditSigningKey(ctx, k1), store.ErrConflict)
	got, err := s.GetAuditSigningKey(ctx, "k1")
	wantErr(t, err, nil)
	if diff := cmp.Diff(k1, got); diff != "" {
		t.Errorf("GetAuditSigningKey (-want +got):\n%s", diff)
	}
	_, err = s.GetAuditSigningKey(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	last, err := s.LastAuditSigningKey(ctx)
	wantErr(t, err, nil)
	if last.ID != "k2" {
		t.Errorf("LastAuditSigningKey = %q, want k2", last.ID)
	}

	c3 := store.AuditCheckpoint{Seq: 3, Hash: []byte("h3"), Time: at(3), KeyID: "k1", Signature: []byte("s3")}
	c7 := store.AuditCheckpoint{Seq: 7, Hash: []byte("h7"), Time: at(7), KeyID: "k2", Signature: []byte("s7")}
	wantErr(t, s.PutAuditCheckpoint(ctx, c7), nil)
	wantErr(t, s.PutAuditCheckpoint(ctx, c3), nil)
	wantErr(t, s.PutAuditCheckpoint(ctx, c3), store.ErrConflict)
	wantErr(t, s.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 9, Hash: []byte("h"), Time: at(9), KeyID: "nope", Signature: []byte("s")}), store.ErrNotFound)
	lc, err := s.LastAuditCheckpoint(ctx)
	wantErr(t, err, nil)
	if diff := cmp.Diff(c7, lc); diff != "" {
		t.Errorf("LastAuditCheckpoint (-want +got):\n%s", diff)
	}
	all, err := s.ListAuditCheckpoints(ctx)
	wantErr(t, err, nil)
	if diff := cmp.Diff([]store.AuditCheckpoint{c3, c7}, all); diff != "" {
		t.Errorf("ListAuditCheckpoints (-want +got):\n%s", diff)
	}
}
