package access

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

// securityEnv has two security engineers (sam, tess) and a data engineer
// (ada) in crm.
func securityEnv(t *testing.T, membership Membership) *env {
	t.Helper()
	e := newEnv(t, membership)
	e.bind(t, "b-sam", store.SubjectUser, "sam", RoleSecurityEngineer, "", time.Time{})
	e.bind(t, "b-tess", store.SubjectUser, "tess", RoleSecurityEngineer, "", time.Time{})
	e.bind(t, "b-ada", store.SubjectUser, "ada", RoleDataEngineer, "crm", time.Time{})
	return e
}

func TestSoDSelfApproveVersion(t *testing.T) {
	t.Parallel()
	e := securityEnv(t, nil)
	e.bind(t, "b-bob", store.SubjectUser, "bob", RoleDataEngineer, "crm", time.Time{})
	ctx := t.Context()
	if err := e.svc.SetProtected(ctx, user("sam"), "crm", true); err != nil {
		t.Fatalf("SetProtected: %v", err)
	}
	v, err := e.svc.PushVersion(ctx, user("ada"), "crm", "customers", []byte("pipeline: customers\n"))
	if err != nil {
		t.Fatalf("PushVersion: %v", err)
	}
	runnable := func() bool {
		t.Helper()
		ok, _, err := e.svc.RunnableOnSchedule(ctx, v)
		if err != nil {
			t.Fatalf("RunnableOnSchedule: %v", err)
		}
		return ok
	}
	if runnable() {
		t.Error("unapproved version runnable in a protected namespace")
	}
	_, err = e.svc.Approve(ctx, user("ada"), "crm", "customers", v.Number)
	wantRule(t, err, RuleSelfApproveVersion)
	if runnable() {
		t.Error("runnable after a refused self-approval")
	}
	// A security engineer has no pipeline.approve.
	if _, err := e.svc.Approve(ctx, user("sam"), "crm", "customers", v.Number); !errors.Is(err, ErrDenied) {
		t.Errorf("approval by a security engineer: %v, want ErrDenied", err)
	}
	got, err := e.svc.Approve(ctx, user("bob"), "crm", "customers", v.Number)
	if err != nil {
		t.Fatalf("approval by a colleague: %v", err)
	}
	if !got.Approved || got.Approver != "bob" {
		t.Errorf("approved version = %+v", got)
	}
	if !runnable() {
		t.Error("approved version not runnable")
	}
	// A version whose content does not match the record is not runnable.
	forged := v
	forged.Hash = strings.Repeat("0", 64)
	if ok, reason, _ := e.svc.RunnableOnSchedule(ctx, forged); ok {
		t.Errorf("forged version runnable: %s", reason)
	}
	// Unprotected namespaces run any version.
	other, err := e.svc.PushVersion(ctx, user("ada"), "crm", "orders", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetProtected(ctx, user("sam"), "crm", false); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := e.svc.RunnableOnSchedule(ctx, other); !ok {
		t.Error("unapproved version not runnable in an unprotected namespace")
	}
}

func TestSoDSelfGrant(t *testing.T) {
	t.Parallel()
	e := securityEnv(t, nil)
	ctx := t.Context()
	self := GrantParams{SubjectKind: store.SubjectUser, Subject: "sam", Role: RoleViewer}
	_, err := e.svc.Grant(ctx, user("sam"), self)
	wantRule(t, err, RuleSelfGrant)
	// Through a group the granter belongs to.
	sam := Subject{User: "sam", Groups: []string{"secops"}, MFA: true}
	_, err = e.svc.Grant(ctx, sam, GrantParams{SubjectKind: store.SubjectGroup, Subject: "secops", Role: RoleViewer})
	wantRule(t, err, RuleSelfGrant)
	// Approving a request for oneself that somebody else made.
	r, err := e.svc.RequestAccess(ctx, user("tess"), GrantParams{SubjectKind: store.SubjectUser, Subject: "sam", Role: RoleViewer})
	if err != nil {
		t.Fatalf("RequestAccess: %v", err)
	}
	_, err = e.svc.ApproveRequest(ctx, user("sam"), r.ID, "")
	wantRule(t, err, RuleSelfGrant)
	// The same grant to somebody else goes through.
	b, err := e.svc.Grant(ctx, user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "vic", Role: RoleViewer, Namespace: "crm"})
	if err != nil {
		t.Fatalf("Grant to another: %v", err)
	}
	if b.GrantedBy != "sam" || b.Role != RoleViewer || b.Namespace != "crm" {
		t.Errorf("binding = %+v", b)
	}
	if d := e.svc.Decide(ctx, user("vic"), RunRead, res(RunRead, "crm")); !d.Allowed {
		t.Errorf("granted binding not in effect: %s", d.Reason)
	}
}

func TestSoDTwoPerson(t *testing.T) {
	t.Parallel()
	e := securityEnv(t, nil)
	ctx := t.Context()
	grant := GrantParams{SubjectKind: store.SubjectUser, Subject: "pat", Role: RolePlatformEngineer, Reason: "on call"}
	_, err := e.svc.Grant(ctx, user("sam"), grant)
	wantRule(t, err, RuleTwoPerson)

	// Raw data access, through a custom role, is privileged too.
	if _, err := e.svc.CreateRole(ctx, user("sam"), "raw-reader", "raw data for debugging", []Permission{DatasetReadRaw}); err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	_, err = e.svc.Grant(ctx, user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "ada", Role: "raw-reader", Namespace: "crm"})
	wantRule(t, err, RuleTwoPerson)

	r, err := e.svc.RequestAccess(ctx, user("sam"), grant)
	if err != nil {
		t.Fatalf("RequestAccess: %v", err)
	}
	_, err = e.svc.ApproveRequest(ctx, user("sam"), r.ID, "")
	wantRule(t, err, RuleTwoPerson)
	// Someone who is not a security engineer cannot approve.
	if _, err := e.svc.ApproveRequest(ctx, user("ada"), r.ID, ""); !errors.Is(err, ErrDenied) {
		t.Errorf("approval by a data engineer: %v, want ErrDenied", err)
	}
	// Nor can a security engineer without MFA in this session.
	if _, err := e.svc.ApproveRequest(ctx, Subject{User: "tess"}, r.ID, ""); !errors.Is(err, ErrDenied) {
		t.Errorf("approval without MFA: %v, want ErrDenied", err)
	}
	b, err := e.svc.ApproveRequest(ctx, user("tess"), r.ID, "ok")
	if err != nil {
		t.Fatalf("approval by a second security engineer: %v", err)
	}
	if b.GrantedBy != "tess" || b.RequestID != r.ID || b.Subject != "pat" {
		t.Errorf("binding = %+v", b)
	}
	got, err := e.db.GetAccessRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.RequestApproved || got.Approver != "tess" || got.BindingID != b.ID {
		t.Errorf("request after approval = %+v", got)
	}
	if d := e.svc.Decide(ctx, user("pat"), KeyManage, res(KeyManage, "")); !d.Allowed {
		t.Errorf("approved grant not in effect: %s", d.Reason)
	}
	if _, err := e.svc.ApproveRequest(ctx, user("tess"), r.ID, ""); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second approval: %v, want ErrConflict", err)
	}
	want := []string{ActRoleCreate, ActRequestCreate, ActRequestApprove}
	var changes []string
	for _, a := range e.rec.actions() {
		if a != ActDecide {
			changes = append(changes, a)
		}
	}
	if d := cmp.Diff(want, changes); d != "" {
		t.Errorf("recorded changes (-want +got):\n%s", d)
	}
}

func TestRequestExpiry(t *testing.T) {
	t.Parallel()
	e := securityEnv(t, nil)
	ctx := t.Context()
	r, err := e.svc.RequestAccess(ctx, user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "pat", Role: RolePlatformEngineer})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.add(7*24*time.Hour + time.Second)
	if _, err := e.svc.ApproveRequest(ctx, user("tess"), r.ID, ""); !errors.Is(err, ErrRequestExpired) {
		t.Fatalf("approving a stale request: %v, want ErrRequestExpired", err)
	}
	got, err := e.db.GetAccessRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.RequestExpired {
		t.Errorf("request state = %s, want expired", got.State)
	}
	if d := e.svc.Decide(ctx, user("pat"), KeyManage, res(KeyManage, "")); d.Allowed {
		t.Error("expired request granted access")
	}
}

func TestSoDSecurityPipelineWrite(t *testing.T) {
	t.Parallel()
	e := securityEnv(t, nil)
	ctx := t.Context()
	if _, err := e.svc.CreateRole(ctx, user("sam"), "writer", "", []Permission{PipelineRead, PipelineWrite}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Grant(ctx, user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "tess", Role: "writer", Namespace: "crm"})
	wantRule(t, err, RuleSecurityPipelineWrite)
	// The other way round: security administration for a pipeline writer.
	_, err = e.svc.RequestAccess(ctx, user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "ada", Role: RoleSecurityEngineer})
	wantRule(t, err, RuleSecurityPipelineWrite)
	// A role holding both is refused outright.
	_, err = e.svc.CreateRole(ctx, user("sam"), "everything", "", []Permission{UserManage, PipelineWrite})
	wantRule(t, err, RuleSecurityPipelineWrite)
	// Held anyway through a group the store cannot see: Decide denies the
	// pipeline side, naming the rule.
	e.bind(t, "b-eng", store.SubjectGroup, "eng", RoleDataEngineer, "crm", time.Time{})
	tess := Subject{User: "tess", Groups: []string{"eng"}, MFA: true}
	d := e.svc.Decide(ctx, tess, PipelineWrite, res(PipelineWrite, "crm"))
	if d.Allowed || !strings.Contains(d.Reason, RuleSecurityPipelineWrite) {
		t.Errorf("security engineer writing a pipeline through a group: %v %q", d.Allowed, d.Reason)
	}
	if d := e.svc.Decide(ctx, tess, UserManage, res(UserManage, "")); !d.Allowed {
		t.Errorf("security side denied too: %s", d.Reason)
	}
}

func TestSoDSecurityDataRead(t *testing.T) {
	t.Parallel()
	// tess belongs to group analysts; membership lets the grant check see it.
	e := securityEnv(t, groups{"tess": {"analysts"}})
	ctx := t.Context()
	_, err := e.svc.Grant(ctx, user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "tess", Role: RoleDataAnalyst})
	wantRule(t, err, RuleSecurityDataRead)
	e.bind(t, "b-analysts", store.SubjectGroup, "analysts", RoleDataAnalyst, "", time.Time{})
	_, err = e.svc.RequestAccess(ctx, user("tess"), GrantParams{SubjectKind: store.SubjectUser, Subject: "tess", Role: RoleViewer})
	if err != nil {
		t.Fatalf("a grant without conflict: %v", err)
	}
	// A binding that would give security administration to a member of a
	// data-reading group is refused.
	_, err = e.svc.RequestAccess(ctx, user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "ann", Role: RoleSecurityEngineer})
	if err != nil {
		t.Fatalf("ann is in no group: %v", err)
	}
	withGroups := securityEnv(t, groups{"ann": {"analysts"}})
	withGroups.bind(t, "b-analysts", store.SubjectGroup, "analysts", RoleDataAnalyst, "", time.Time{})
	_, err = withGroups.svc.RequestAccess(ctx, user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "ann", Role: RoleSecurityEngineer})
	wantRule(t, err, RuleSecurityDataRead)
	d := e.svc.Decide(ctx, Subject{User: "tess", Groups: []string{"analysts"}, MFA: true}, DatasetReadMasked, res(DatasetReadMasked, "crm"))
	if d.Allowed || !strings.Contains(d.Reason, RuleSecurityDataRead) {
		t.Errorf("security engineer reading data through a group: %v %q", d.Allowed, d.Reason)
	}
}

func TestSoDSelfReview(t *testing.T) {
	t.Parallel()
	e := securityEnv(t, nil)
	_, err := e.svc.RecordReview(t.Context(), user("sam"), []ReviewDecision{{BindingID: "b-sam"}})
	wantRule(t, err, RuleSelfReview)
	recs, err := e.db.ListReviewRecords(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Errorf("a refused review was recorded: %+v", recs)
	}
	if _, err := e.svc.RecordReview(t.Context(), user("tess"), []ReviewDecision{{BindingID: "b-sam"}}); err != nil {
		t.Errorf("review by another: %v", err)
	}
}

func TestAuditFailureStopsChange(t *testing.T) {
	t.Parallel()
	e := securityEnv(t, nil)
	e.rec.mu.Lock()
	e.rec.fail = errors.New("audit log unavailable")
	e.rec.mu.Unlock()
	_, err := e.svc.Grant(t.Context(), user("sam"), GrantParams{SubjectKind: store.SubjectUser, Subject: "vic", Role: RoleViewer})
	if err == nil {
		t.Fatal("Grant succeeded with the audit log down")
	}
	bs, err := e.db.ListBindings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Subject == "vic" {
			t.Errorf("binding created although its audit record failed: %+v", b)
		}
	}
}
