package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

// testAccess covers the AccessStore: roles, bindings and the version
// counter, access requests, pipeline versions, protected namespaces and
// reviews.
func testAccess(t *testing.T, s store.Store) {
	ctx := t.Context()
	version := func(t *testing.T) int64 {
		t.Helper()
		v, err := s.AccessVersion(ctx)
		wantErr(t, err, nil)
		return v
	}

	// Sequential part: the version counter must move on every role and
	// binding change and on nothing else.
	v0 := version(t)
	role := store.Role{Name: "raw-reader", Description: "reads raw data", Permissions: []string{"dataset.read_raw"}, CreatedBy: "sam", CreatedAt: at(1)}
	wantErr(t, s.CreateRole(ctx, role), nil)
	wantErr(t, s.CreateRole(ctx, role), store.ErrConflict)
	if v := version(t); v != v0+1 {
		t.Fatalf("version after CreateRole = %d, want %d", v, v0+1)
	}
	gotRole, err := s.GetRole(ctx, "raw-reader")
	wantErr(t, err, nil)
	if d := cmp.Diff(role, gotRole, eq()); d != "" {
		t.Errorf("GetRole (-want +got):\n%s", d)
	}
	_, err = s.GetRole(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	b1 := store.Binding{ID: "b1", SubjectKind: store.SubjectUser, Subject: "alice", Role: "raw-reader", Namespace: "crm",
		ExpiresAt: at(1000), GrantedBy: "sam", GrantedAt: at(2), RequestID: "r1"}
	b2 := store.Binding{ID: "b2", SubjectKind: store.SubjectGroup, Subject: "analysts", Role: "viewer", GrantedBy: "sam", GrantedAt: at(3)}
	wantErr(t, s.CreateBinding(ctx, b2), nil)
	wantErr(t, s.CreateBinding(ctx, b1), nil)
	if v := version(t); v != v0+3 {
		t.Fatalf("version after two CreateBinding = %d, want %d", v, v0+3)
	}
	dupID := b2
	dupID.Subject = "other"
	wantErr(t, s.CreateBinding(ctx, dupID), store.ErrConflict)
	sameGrant := b1
	sameGrant.ID = "b1-again"
	wantErr(t, s.CreateBinding(ctx, sameGrant), store.ErrConflict)
	bad := b1
	bad.ID, bad.SubjectKind = "bad", "robot"
	if err := s.CreateBinding(ctx, bad); err == nil {
		t.Error("CreateBinding with subject kind robot: no error")
	}

	wantErr(t, s.DeleteRole(ctx, "raw-reader"), store.ErrConflict) // bound by b1
	wantErr(t, s.DeleteRole(ctx, "nope"), store.ErrNotFound)

	// Touching records use but is not an authorization change.
	vt := version(t)
	wantErr(t, s.TouchBindings(ctx, map[string]time.Time{"b1": at(50), "gone": at(50)}), nil)
	wantErr(t, s.TouchBindings(ctx, map[string]time.Time{"b1": at(40)}), nil) // older: ignored
	if v := version(t); v != vt {
		t.Errorf("TouchBindings moved the version: %d, want %d", v, vt)
	}
	b1.LastUsedAt = at(50)
	gotB, err := s.GetBinding(ctx, "b1")
	wantErr(t, err, nil)
	if d := cmp.Diff(b1, gotB, eq()); d != "" {
		t.Errorf("GetBinding (-want +got):\n%s", d)
	}
	all, err := s.ListBindings(ctx)
	wantErr(t, err, nil)
	if d := cmp.Diff([]store.Binding{b1, b2}, all, eq()); d != "" {
		t.Errorf("ListBindings (-want +got):\n%s", d)
	}

	wantErr(t, s.DeleteBinding(ctx, "b1"), nil)
	wantErr(t, s.DeleteBinding(ctx, "b1"), store.ErrNotFound)
	_, err = s.GetBinding(ctx, "b1")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteRole(ctx, "raw-reader"), nil)
	if v := version(t); v != vt+2 {
		t.Errorf("version after DeleteBinding and DeleteRole = %d, want %d", v, vt+2)
	}
	roles, err := s.ListRoles(ctx)
	wantErr(t, err, nil)
	if len(roles) != 0 {
		t.Errorf("ListRoles after delete = %v, want none", roles)
	}

	t.Run("RollbackKeepsVersion", func(t *testing.T) {
		before := version(t)
		err := s.InTx(t.Context(), func(tx store.Store) error {
			if err := tx.CreateBinding(t.Context(), store.Binding{ID: "tx-b", SubjectKind: store.SubjectUser, Subject: "u", Role: "viewer", GrantedBy: "g", GrantedAt: at(1)}); err != nil {
				return err
			}
			return errAbort
		})
		wantErr(t, err, errAbort)
		_, err = s.GetBinding(t.Context(), "tx-b")
		wantErr(t, err, store.ErrNotFound)
		if v := version(t); v != before {
			t.Errorf("rolled-back binding moved the version: %d, want %d", v, before)
		}
	})
	t.Run("Requests", func(t *testing.T) { testAccessRequests(t, s) })
	t.Run("PipelineVersions", func(t *testing.T) { testPipelineVersions(t, s) })
	t.Run("ProtectedNamespaces", func(t *testing.T) { testProtectedNamespaces(t, s) })
	t.Run("Reviews", func(t *testing.T) { testReviewRecords(t, s) })
}

func testAccessRequests(t *testing.T, s store.Store) {
	t.Parallel()
	ctx := t.Context()
	mk := func(id string, created int) store.AccessRequest {
		return store.AccessRequest{ID: id, Requester: "sam", SubjectKind: store.SubjectUser, Subject: "alice",
			Role: "platform-engineer", Namespace: "", ExpiresAt: at(5000), Reason: "on call", State: store.RequestPending,
			CreatedAt: at(created)}
	}
	r2, r1 := mk("req2", 20), mk("req1", 10)
	wantErr(t, s.CreateAccessRequest(ctx, r2), nil)
	wantErr(t, s.CreateAccessRequest(ctx, r1), nil)
	wantErr(t, s.CreateAccessRequest(ctx, r1), store.ErrConflict)

	got, err := s.DecideAccessRequest(ctx, store.DecideAccessRequest{ID: "req1", State: store.RequestApproved,
		Approver: "tess", Note: "ok", At: at(30), BindingID: "b-9"})
	wantErr(t, err, nil)
	want1 := r1
	want1.State, want1.Approver, want1.Note, want1.DecidedAt, want1.BindingID = store.RequestApproved, "tess", "ok", at(30), "b-9"
	if d := cmp.Diff(want1, got, eq()); d != "" {
		t.Errorf("DecideAccessRequest (-want +got):\n%s", d)
	}
	// Decided once: a second decision conflicts and changes nothing.
	_, err = s.DecideAccessRequest(ctx, store.DecideAccessRequest{ID: "req1", State: store.RequestRejected, Approver: "x", At: at(31)})
	wantErr(t, err, store.ErrConflict)
	_, err = s.DecideAccessRequest(ctx, store.DecideAccessRequest{ID: "nope", State: store.RequestRejected, At: at(31)})
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.DecideAccessRequest(ctx, store.DecideAccessRequest{ID: "req2", State: store.RequestPending, At: at(31)}); err == nil {
		t.Error("deciding to pending: no error")
	}

	gotOne, err := s.GetAccessRequest(ctx, "req1")
	wantErr(t, err, nil)
	if d := cmp.Diff(want1, gotOne, eq()); d != "" {
		t.Errorf("GetAccessRequest (-want +got):\n%s", d)
	}
	_, err = s.GetAccessRequest(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	all, err := s.ListAccessRequests(ctx, "")
	wantErr(t, err, nil)
	if d := cmp.Diff([]store.AccessRequest{want1, r2}, all, eq()); d != "" {
		t.Errorf("ListAccessRequests(all) (-want +got):\n%s", d)
	}
	pending, err := s.ListAccessRequests(ctx, store.RequestPending)
	wantErr(t, err, nil)
	if d := cmp.Diff([]store.AccessRequest{r2}, pending, eq()); d != "" {
		t.Errorf("ListAccessRequests(pending) (-want +got):\n%s", d)
	}
}

func testPipelineVersions(t *testing.T, s store.Store) {
	t.Parallel()
	ctx := t.Context()
	_, err := s.LatestPipelineVersion(ctx, "crm", "customers")
	wantErr(t, err, store.ErrNotFound)
	put := func(content, author string, sec int) store.PipelineVersion {
		t.Helper()
		v, err := s.PutPipelineVersion(ctx, store.PipelineVersion{Namespace: "crm", Pipeline: "customers", Number: 99,
			Hash: "h-" + content, Content: []byte(content), Author: author, CreatedAt: at(sec), Diff: "diff-" + content})
		wantErr(t, err, nil)
		return v
	}
	v1 := put("one", "ada", 1)
	v2 := put("two", "bob", 2)
	// Another pipeline numbers on its own.
	o, err := s.PutPipelineVersion(ctx, store.PipelineVersion{Namespace: "crm", Pipeline: "orders", Hash: "h", Content: []byte("x"), Author: "ada", CreatedAt: at(3)})
	wantErr(t, err, nil)
	if v1.Number != 1 || v2.Number != 2 || o.Number != 1 {
		t.Fatalf("numbers %d, %d, %d; want 1, 2, 1", v1.Number, v2.Number, o.Number)
	}
	want2 := store.PipelineVersion{Namespace: "crm", Pipeline: "customers", Number: 2, Hash: "h-two", Content: []byte("two"),
		Author: "bob", CreatedAt: at(2), Diff: "diff-two"}
	latest, err := s.LatestPipelineVersion(ctx, "crm", "customers")
	wantErr(t, err, nil)
	if d := cmp.Diff(want2, latest, eq()); d != "" {
		t.Errorf("LatestPipelineVersion (-want +got):\n%s", d)
	}
	got1, err := s.GetPipelineVersion(ctx, "crm", "customers", 1)
	wantErr(t, err, nil)
	if string(got1.Content) != "one" || got1.Author != "ada" {
		t.Errorf("GetPipelineVersion 1 = %+v", got1)
	}
	_, err = s.GetPipelineVersion(ctx, "crm", "customers", 3)
	wantErr(t, err, store.ErrNotFound)

	approved, err := s.ApprovePipelineVersion(ctx, "crm", "customers", 1, "bob", at(10))
	wantErr(t, err, nil)
	if approved.ApprovedBy != "bob" || !approved.ApprovedAt.Equal(at(10)) {
		t.Errorf("approved version: by %q at %v", approved.ApprovedBy, approved.ApprovedAt)
	}
	_, err = s.ApprovePipelineVersion(ctx, "crm", "customers", 1, "cy", at(11))
	wantErr(t, err, store.ErrConflict)
	_, err = s.ApprovePipelineVersion(ctx, "crm", "customers", 7, "cy", at(11))
	wantErr(t, err, store.ErrNotFound)

	list, err := s.ListPipelineVersions(ctx, "crm", "customers")
	wantErr(t, err, nil)
	wantList := []store.PipelineVersion{
		{Namespace: "crm", Pipeline: "customers", Number: 1, Hash: "h-one", Author: "ada", CreatedAt: at(1), ApprovedBy: "bob", ApprovedAt: at(10)},
		{Namespace: "crm", Pipeline: "customers", Number: 2, Hash: "h-two", Author: "bob", CreatedAt: at(2)},
	}
	if d := cmp.Diff(wantList, list, eq()); d != "" {
		t.Errorf("ListPipelineVersions (-want +got):\n%s", d)
	}
}

func testProtectedNamespaces(t *testing.T, s store.Store) {
	t.Parallel()
	ctx := t.Context()
	is := func(ns string) bool {
		t.Helper()
		p, err := s.IsNamespaceProtected(ctx, ns)
		wantErr(t, err, nil)
		return p
	}
	if is("finance") {
		t.Fatal("finance protected before marking")
	}
	wantErr(t, s.SetNamespaceProtected(ctx, store.ProtectedNamespace{Namespace: "finance", SetBy: "sam", SetAt: at(1)}, true), nil)
	wantErr(t, s.SetNamespaceProtected(ctx, store.ProtectedNamespace{Namespace: "finance", SetBy: "other", SetAt: at(2)}, true), nil)
	wantErr(t, s.SetNamespaceProtected(ctx, store.ProtectedNamespace{Namespace: "hr", SetBy: "sam", SetAt: at(3)}, true), nil)
	if !is("finance") || !is("hr") || is("crm") {
		t.Errorf("protected: finance %v hr %v crm %v; want true true false", is("finance"), is("hr"), is("crm"))
	}
	list, err := s.ListProtectedNamespaces(ctx)
	wantErr(t, err, nil)
	want := []store.ProtectedNamespace{{Namespace: "finance", SetBy: "sam", SetAt: at(1)}, {Namespace: "hr", SetBy: "sam", SetAt: at(3)}}
	if d := cmp.Diff(want, list, eq()); d != "" {
		t.Errorf("ListProtectedNamespaces (-want +got):\n%s", d)
	}
	wantErr(t, s.SetNamespaceProtected(ctx, store.ProtectedNamespace{Namespace: "hr"}, false), nil)
	wantErr(t, s.SetNamespaceProtected(ctx, store.ProtectedNamespace{Namespace: "hr"}, false), nil)
	if is("hr") {
		t.Error("hr still protected after unmarking")
	}
}

func testReviewRecords(t *testing.T, s store.Store) {
	t.Parallel()
	ctx := t.Context()
	r2 := store.ReviewRecord{ID: "rev2", Reviewer: "tess", At: at(20)}
	r1 := store.ReviewRecord{ID: "rev1", Reviewer: "sam", At: at(10), Decisions: []store.ReviewDecision{
		{BindingID: "bz", Action: store.ReviewRevoke, Flags: []string{"stale", "sod-conflict"}, Note: "left"},
		{BindingID: "ba", Action: store.ReviewConfirm},
	}}
	wantErr(t, s.PutReviewRecord(ctx, r2), nil)
	wantErr(t, s.PutReviewRecord(ctx, r1), nil)
	wantErr(t, s.PutReviewRecord(ctx, r1), store.ErrConflict)
	got, err := s.ListReviewRecords(ctx)
	wantErr(t, err, nil)
	if d := cmp.Diff([]store.ReviewRecord{r1, r2}, got, eq()); d != "" {
		t.Errorf("ListReviewRecords (-want +got):\n%s", d)
	}
}
