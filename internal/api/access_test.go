package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/api"
)

func TestRolesAndBindings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sec := e.user("sec", "security-engineer", "")
	de := e.user("dee", "data-engineer", "")
	e.user("kim", "", "")

	var roles api.Page[api.RoleView]
	de.do(http.MethodGet, api.Prefix+"/roles", nil).decode(t, &roles)
	if !slices.ContainsFunc(roles.Items, func(r api.RoleView) bool { return r.Name == "security-engineer" && r.BuiltIn && r.Privileged }) {
		t.Errorf("roles = %+v, want the built-in ones", roles.Items)
	}
	if r := de.do(http.MethodPost, api.Prefix+"/roles", api.NewRole{Name: "reader", Permissions: []string{"pipeline.read"}}); r.Status != http.StatusForbidden {
		t.Errorf("data engineer creates a role: %d, want 403", r.Status)
	}
	if r := sec.do(http.MethodPost, api.Prefix+"/roles", api.NewRole{Name: "both", Permissions: []string{"user.manage", "pipeline.write"}}); r.Status != http.StatusForbidden ||
		!strings.Contains(string(r.Body), "sod.security-pipeline-write") {
		t.Errorf("a role breaking a segregation rule: %d %s, want 403 naming the rule", r.Status, r.Body)
	}
	if r := sec.do(http.MethodPost, api.Prefix+"/roles", api.NewRole{Name: "reader", Permissions: []string{"pipeline.read", "run.read"}}); r.Status != http.StatusCreated {
		t.Fatalf("create role: %d %s", r.Status, r.Body)
	}

	// A direct grant of a non-privileged role; of a privileged one it is
	// refused under the two-person rule.
	r := sec.do(http.MethodPost, api.Prefix+"/bindings", api.Grant{SubjectKind: "user", Subject: "kim", Role: "reader", Namespace: "sales"})
	if r.Status != http.StatusCreated {
		t.Fatalf("grant: %d %s", r.Status, r.Body)
	}
	var b api.BindingView
	r.decode(t, &b)
	if r := sec.do(http.MethodPost, api.Prefix+"/bindings", api.Grant{SubjectKind: "user", Subject: "kim", Role: "platform-engineer"}); r.Status != http.StatusForbidden ||
		!strings.Contains(string(r.Body), "access-requests") {
		t.Errorf("direct grant of a privileged role: %d %s, want 403 pointing to access requests", r.Status, r.Body)
	}
	if r := de.do(http.MethodPost, api.Prefix+"/bindings", api.Grant{SubjectKind: "user", Subject: "kim", Role: "viewer"}); r.Status != http.StatusForbidden {
		t.Errorf("data engineer grants: %d %s, want 403", r.Status, r.Body)
	}
	if r := sec.do(http.MethodDelete, api.Prefix+"/roles/reader", nil); r.Status != http.StatusConflict {
		t.Errorf("deleting a role in use: %d %s, want 409", r.Status, r.Body)
	}
	if r := de.do(http.MethodGet, api.Prefix+"/bindings", nil); r.Status != http.StatusForbidden {
		t.Errorf("data engineer lists bindings: %d, want 403", r.Status)
	}
	var bp api.Page[api.BindingView]
	sec.do(http.MethodGet, api.Prefix+"/bindings", nil).decode(t, &bp)
	if !slices.ContainsFunc(bp.Items, func(x api.BindingView) bool { return x.ID == b.ID && x.Namespace == "sales" && x.GrantedBy == "sec" }) {
		t.Errorf("bindings = %+v, want %s", bp.Items, b.ID)
	}
	if r := de.do(http.MethodDelete, api.Prefix+"/bindings/"+b.ID, nil); r.Status != http.StatusForbidden {
		t.Errorf("data engineer revokes: %d, want 403", r.Status)
	}
	if r := sec.do(http.MethodDelete, api.Prefix+"/bindings/"+b.ID+"?reason=moved+team", nil); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := sec.do(http.MethodDelete, api.Prefix+"/bindings/"+b.ID, nil); r.Status != http.StatusNotFound {
		t.Errorf("revoke twice: %d, want 404", r.Status)
	}
	if r := sec.do(http.MethodDelete, api.Prefix+"/roles/reader", nil); r.Status != http.StatusNoContent {
		t.Errorf("delete role: %d %s", r.Status, r.Body)
	}
	for _, action := range []string{"role.create", "binding.create", "binding.revoke", "role.delete"} {
		if !auditHas(t, sec, action, "user:sec", "success") {
			t.Errorf("no %s by user:sec in the audit log", action)
		}
	}
}

func TestAccessRequestsTwoPersonRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sec1 := e.user("sec1", "security-engineer", "")
	sec2 := e.user("sec2", "security-engineer", "")
	de := e.user("dee", "data-engineer", "")
	e.user("pat", "", "")

	reqs := api.Prefix + "/access-requests"
	if r := sec1.do(http.MethodPost, reqs, api.Grant{SubjectKind: "user", Subject: "pat", Role: "platform-engineer"}); r.Status != http.StatusBadRequest {
		t.Errorf("request without a reason: %d, want 400", r.Status)
	}
	if r := de.do(http.MethodPost, reqs, api.Grant{SubjectKind: "user", Subject: "pat", Role: "platform-engineer", Reason: "on call"}); r.Status != http.StatusForbidden {
		t.Errorf("data engineer requests: %d %s, want 403", r.Status, r.Body)
	}
	r := sec1.do(http.MethodPost, reqs, api.Grant{SubjectKind: "user", Subject: "pat", Role: "platform-engineer", Reason: "on call"})
	if r.Status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.Status, r.Body)
	}
	var q api.RequestView
	r.decode(t, &q)
	var qp api.Page[api.RequestView]
	sec2.do(http.MethodGet, reqs, nil).decode(t, &qp)
	if len(qp.Items) != 1 || qp.Items[0].ID != q.ID || qp.Items[0].State != "pending" {
		t.Errorf("pending requests = %+v", qp.Items)
	}
	if r := de.do(http.MethodGet, reqs, nil); r.Status != http.StatusForbidden {
		t.Errorf("data engineer lists requests: %d, want 403", r.Status)
	}
	if r := sec1.do(http.MethodPost, reqs+"/"+q.ID+"/approve", nil); r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "sod.two-person") {
		t.Errorf("requester approves: %d %s, want 403 under sod.two-person", r.Status, r.Body)
	}
	r = sec2.do(http.MethodPost, reqs+"/"+q.ID+"/approve", api.Decision{Note: "ok"})
	if r.Status != http.StatusOK {
		t.Fatalf("second person approves: %d %s", r.Status, r.Body)
	}
	var b api.BindingView
	r.decode(t, &b)
	if b.Subject != "pat" || b.Role != "platform-engineer" || b.RequestID != q.ID || b.GrantedBy != "sec2" {
		t.Errorf("binding = %+v", b)
	}
	if r := sec2.do(http.MethodPost, reqs+"/"+q.ID+"/approve", nil); r.Status != http.StatusConflict {
		t.Errorf("approve twice: %d %s, want 409", r.Status, r.Body)
	}

	// A requester may withdraw their own request; others need
	// binding.approve.
	r = sec1.do(http.MethodPost, reqs, api.Grant{SubjectKind: "group", Subject: "ops", Role: "operations-engineer", Reason: "rota"})
	r.decode(t, &q)
	if r := de.do(http.MethodPost, reqs+"/"+q.ID+"/reject", api.Decision{Note: "no"}); r.Status != http.StatusForbidden {
		t.Errorf("data engineer rejects: %d %s, want 403", r.Status, r.Body)
	}
	if r := sec1.do(http.MethodPost, reqs+"/"+q.ID+"/reject", api.Decision{}); r.Status != http.StatusBadRequest {
		t.Errorf("reject without a note: %d, want 400", r.Status)
	}
	if r := sec1.do(http.MethodPost, reqs+"/"+q.ID+"/reject", api.Decision{Note: "not needed"}); r.Status != http.StatusOK {
		t.Errorf("withdraw: %d %s", r.Status, r.Body)
	}
	sec2.do(http.MethodGet, reqs+"?state=rejected", nil).decode(t, &qp)
	if len(qp.Items) != 1 || qp.Items[0].ID != q.ID {
		t.Errorf("rejected requests = %+v", qp.Items)
	}
	if !auditHas(t, sec1, "request.approve", "user:sec2", "success") || !auditHas(t, sec1, "request.create", "user:sec1", "success") {
		t.Errorf("the request and its approval are not in the audit log")
	}
}

func TestAccessReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sec := e.user("sec", "security-engineer", "")
	e.user("lee", "viewer", "")
	op := e.user("ops", "operations-engineer", "")
	review := api.Prefix + "/access-review"

	if r := op.do(http.MethodGet, review, nil); r.Status != http.StatusForbidden {
		t.Errorf("operations engineer reviews: %d, want 403", r.Status)
	}
	var items api.Page[api.ReviewItemView]
	sec.do(http.MethodGet, review, nil).decode(t, &items)
	if len(items.Items) != 3 {
		t.Fatalf("review items = %+v, want 3", items.Items)
	}
	lee := "b_lee_viewer"
	if r := sec.do(http.MethodPost, review, api.ReviewSubmission{Decisions: []api.ReviewVerdict{{BindingID: "b_sec_security-engineer", Action: "confirm"}}}); r.Status != http.StatusForbidden ||
		!strings.Contains(string(r.Body), "sod.self-review") {
		t.Errorf("confirming one's own binding: %d %s, want 403 under sod.self-review", r.Status, r.Body)
	}
	r := sec.do(http.MethodPost, review, api.ReviewSubmission{Decisions: []api.ReviewVerdict{
		{BindingID: lee, Action: "revoke", Note: "left"}, {BindingID: "b_ops_operations-engineer", Action: "confirm"}}})
	if r.Status != http.StatusCreated {
		t.Fatalf("record review: %d %s", r.Status, r.Body)
	}
	var rec api.ReviewRecordView
	r.decode(t, &rec)
	if rec.Reviewer != "sec" || len(rec.Decisions) != 2 {
		t.Errorf("review = %+v", rec)
	}
	sec.do(http.MethodGet, review, nil).decode(t, &items)
	if slices.ContainsFunc(items.Items, func(it api.ReviewItemView) bool { return it.ID == lee }) {
		t.Errorf("the revoked binding is still under review")
	}
	if !auditHas(t, sec, "review.record", "user:sec", "success") {
		t.Errorf("the review is not in the audit log")
	}
}
