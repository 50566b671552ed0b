package access

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

func TestUnifiedDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{"Equal", "a\nb\n", "a\nb\n", ""},
		{"FromNothing", "", "a\nb\n", "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"ToNothing", "a\n", "", "--- old\n+++ new\n@@ -1,1 +0,0 @@\n-a\n"},
		{"ChangeInMiddle",
			"1\n2\n3\n4\n5\n6\n7\n8\n9\n",
			"1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
			"--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"TwoHunks",
			"a\n1\n2\n3\n4\n5\n6\n7\n8\nz\n",
			"A\n1\n2\n3\n4\n5\n6\n7\n8\nZ\n",
			"--- old\n+++ new\n@@ -1,4 +1,4 @@\n-a\n+A\n 1\n 2\n 3\n@@ -7,4 +7,4 @@\n 6\n 7\n 8\n-z\n+Z\n"},
		{"CloseChangesShareAHunk",
			"a\n1\n2\n3\nb\n",
			"A\n1\n2\n3\nB\n",
			"--- old\n+++ new\n@@ -1,5 +1,5 @@\n-a\n+A\n 1\n 2\n 3\n-b\n+B\n"},
		{"Insertion",
			"x\ny\n",
			"x\nnew\ny\n",
			"--- old\n+++ new\n@@ -1,2 +1,3 @@\n x\n+new\n y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := unifiedDiff("old", "new", []byte(tt.a), []byte(tt.b))
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("diff (-want +got):\n%s", d)
			}
		})
	}
}

func TestPushVersion(t *testing.T) {
	t.Parallel()
	e := securityEnv(t, nil)
	ctx := t.Context()
	v1, err := e.svc.PushVersion(ctx, user("ada"), "crm", "customers", []byte("pipeline: customers\nschedule: daily\n"))
	if err != nil {
		t.Fatalf("PushVersion: %v", err)
	}
	content2 := []byte("pipeline: customers\nschedule: hourly\n")
	e.clock.add(time.Minute)
	v2, err := e.svc.PushVersion(ctx, user("ada"), "crm", "customers", content2)
	if err != nil {
		t.Fatalf("PushVersion: %v", err)
	}
	sum := sha256.Sum256(content2)
	want := Version{Namespace: "crm", Pipeline: "customers", Number: 2, Hash: hex.EncodeToString(sum[:]), Content: content2,
		Author: "ada", CreatedAt: t0.Add(time.Minute),
		Diff: "--- crm/customers@1\n+++ crm/customers@2\n@@ -1,2 +1,2 @@\n pipeline: customers\n-schedule: daily\n+schedule: hourly\n"}
	if d := cmp.Diff(want, v2); d != "" {
		t.Errorf("second version (-want +got):\n%s", d)
	}
	if v1.Number != 1 || v1.Diff == "" {
		t.Errorf("first version: number %d diff %q", v1.Number, v1.Diff)
	}
	// Same bytes again: no new version.
	again, err := e.svc.PushVersion(ctx, user("ada"), "crm", "customers", content2)
	if err != nil {
		t.Fatal(err)
	}
	if again.Number != 2 {
		t.Errorf("identical push made version %d, want 2 returned", again.Number)
	}
	// Outside ada's namespace, and for someone without pipeline.write.
	if _, err := e.svc.PushVersion(ctx, user("ada"), "hr", "payroll", []byte("x")); !errors.Is(err, ErrDenied) {
		t.Errorf("push to another namespace: %v, want ErrDenied", err)
	}
	if _, err := e.svc.PushVersion(ctx, user("sam"), "crm", "customers", []byte("x")); !errors.Is(err, ErrDenied) {
		t.Errorf("push by a security engineer: %v, want ErrDenied", err)
	}
	vs, err := e.svc.Versions(ctx, user("ada"), "crm", "customers")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Number != 1 || vs[1].Number != 2 {
		t.Errorf("Versions = %+v", vs)
	}
}

func TestReview(t *testing.T) {
	t.Parallel()
	// sam and tess: security engineers; only tess has MFA enrolled. dan is
	// in group eng, which holds data-engineer, and is given security
	// administration directly (set up bypassing the checks, as an old or
	// imported binding would be).
	e := newEnv(t, groups{"dan": {"eng"}}, "tess", "dan")
	ctx := t.Context()
	e.bind(t, "b-sam", store.SubjectUser, "sam", RoleSecurityEngineer, "", time.Time{})
	e.bind(t, "b-tess", store.SubjectUser, "tess", RoleSecurityEngineer, "", time.Time{})
	e.bind(t, "b-eng", store.SubjectGroup, "eng", RoleDataEngineer, "crm", time.Time{})
	e.bind(t, "b-dan", store.SubjectUser, "dan", RoleSecurityEngineer, "", time.Time{})
	e.bind(t, "b-soon", store.SubjectUser, "vic", RoleViewer, "", t0.Add(100*24*time.Hour))
	e.bind(t, "b-gone", store.SubjectUser, "old", RoleViewer, "", t0.Add(time.Hour))

	e.clock.add(91 * 24 * time.Hour)
	// tess and vic act now; nobody else has in 91 days.
	for _, u := range []string{"tess", "vic"} {
		if d := e.svc.Decide(ctx, user(u), RunRead, res(RunRead, "crm")); u == "vic" && !d.Allowed {
			t.Fatalf("vic denied: %s", d.Reason)
		}
	}
	if d := e.svc.Decide(ctx, user("tess"), AuditRead, res(AuditRead, "")); !d.Allowed {
		t.Fatalf("tess denied: %s", d.Reason)
	}
	items, err := e.svc.Review(ctx)
	if err != nil {
		t.Fatalf("Review: %v", err)
	}
	type row struct {
		ID        string
		Flags     []string
		Conflicts []string
		Used      bool
	}
	var got []row
	for _, it := range items {
		got = append(got, row{it.Binding.ID, it.Flags, it.Conflicts, !it.Binding.LastUsedAt.IsZero()})
	}
	// Granted in the same instant, so listed by id.
	want := []row{
		{"b-dan", []string{FlagStale, FlagSoD}, []string{RuleSecurityPipelineWrite, RuleSecurityDataRead}, false},
		{"b-eng", []string{FlagStale}, nil, false},
		{"b-gone", []string{FlagStale, FlagExpired}, nil, false},
		{"b-sam", []string{FlagStale, FlagNoMFA}, nil, false},
		{"b-soon", []string{FlagExpiring}, nil, true},
		{"b-tess", nil, nil, true},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("review (-want +got):\n%s", d)
	}

	rec, err := e.svc.RecordReview(ctx, user("tess"), []ReviewDecision{
		{BindingID: "b-dan", Revoke: true, Note: "conflict"},
		{BindingID: "b-gone", Revoke: true},
		{BindingID: "b-sam", Note: "enrol MFA"},
	})
	if err != nil {
		t.Fatalf("RecordReview: %v", err)
	}
	stored, err := e.db.ListReviewRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]store.ReviewRecord{rec}, stored); d != "" {
		t.Errorf("stored review (-want +got):\n%s", d)
	}
	if rec.Decisions[0].Action != store.ReviewRevoke || !slices.Contains(rec.Decisions[0].Flags, FlagSoD) {
		t.Errorf("first decision = %+v", rec.Decisions[0])
	}
	bs, err := e.db.ListBindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, b := range bs {
		left = append(left, b.ID)
	}
	if d := cmp.Diff([]string{"b-eng", "b-sam", "b-soon", "b-tess"}, left); d != "" {
		t.Errorf("bindings after review (-want +got):\n%s", d)
	}
	if d := e.svc.Decide(ctx, user("dan"), UserManage, res(UserManage, "")); d.Allowed {
		t.Error("revoked binding still in effect")
	}
	if !slices.Contains(e.rec.actions(), ActReviewRecord) {
		t.Error("review not recorded in the audit log")
	}
}
