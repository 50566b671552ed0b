package api_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/internal/api"
)

// auditHas reports whether the audit log, read through the API by
// reader, has an event of action by actor with outcome.
func auditHas(t *testing.T, reader *client, action, actor, outcome string) bool {
	t.Helper()
	r := reader.do(http.MethodGet, api.Prefix+"/audit?action="+action+"&actor="+actor+"&limit=500", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("reading the audit log: %d %s", r.Status, r.Body)
	}
	var p api.Page[api.AuditEntry]
	r.decode(t, &p)
	return slices.ContainsFunc(p.Items, func(en api.AuditEntry) bool { return en.Outcome == outcome })
}

func TestUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sec := e.user("sec", "security-engineer", "")
	viewer := e.user("vic", "viewer", "")
	users := api.Prefix + "/users"

	if r := viewer.do(http.MethodGet, users, nil); r.Status != http.StatusForbidden {
		t.Errorf("viewer lists users: %d %s, want 403", r.Status, r.Body)
	}
	if r := viewer.do(http.MethodPost, users, api.NewUserRequest{Username: "mallory"}); r.Status != http.StatusForbidden {
		t.Errorf("viewer creates a user: %d %s, want 403", r.Status, r.Body)
	}
	if r := sec.do(http.MethodPost, users, api.NewUserRequest{Username: "Bad Name"}); r.Status != http.StatusBadRequest {
		t.Errorf("bad username: %d %s, want 400", r.Status, r.Body)
	}
	r := sec.do(http.MethodPost, users, api.NewUserRequest{Username: "ivy", DisplayName: "Ivy", Groups: []string{"analysts"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if r := sec.do(http.MethodPost, users, api.NewUserRequest{Username: "ivy"}); r.Status != http.StatusConflict {
		t.Errorf("create twice: %d %s, want 409", r.Status, r.Body)
	}

	// Paging: one user a page, every user once, in name order.
	var names []string
	next := ""
	for range 10 {
		var p api.Page[api.UserView]
		sec.do(http.MethodGet, users+"?limit=1&cursor="+next, nil).decode(t, &p)
		for _, u := range p.Items {
			names = append(names, u.Username)
		}
		if next = p.NextCursor; next == "" {
			break
		}
	}
	if !slices.Equal(names, []string{"ivy", "sec", "vic"}) {
		t.Errorf("paged users = %v", names)
	}

	r = sec.do(http.MethodGet, users+"/ivy", nil)
	etag := r.Header.Get("ETag")
	var u api.UserView
	r.decode(t, &u)
	if r.Status != http.StatusOK || etag == "" || u.DisplayName != "Ivy" || !slices.Equal(u.Groups, []string{"analysts"}) {
		t.Fatalf("get: %d %s (ETag %q)", r.Status, r.Body, etag)
	}
	if r := sec.do(http.MethodGet, users+"/nobody", nil); r.Status != http.StatusNotFound {
		t.Errorf("get unknown: %d, want 404", r.Status)
	}

	name := "Ivy Quinn"
	patch := &client{e: e, bearer: sec.bearer, header: http.Header{"If-Match": {etag}}}
	if r := patch.do(http.MethodPatch, users+"/ivy", api.UserPatch{DisplayName: &name}); r.Status != http.StatusOK {
		t.Fatalf("patch with the current ETag: %d %s", r.Status, r.Body)
	}
	// The same ETag is now stale.
	disabled := true
	if r := patch.do(http.MethodPatch, users+"/ivy", api.UserPatch{Disabled: &disabled}); r.Status != http.StatusPreconditionFailed {
		t.Errorf("patch with a stale ETag: %d %s, want 412", r.Status, r.Body)
	}
	r = sec.do(http.MethodPatch, users+"/ivy", api.UserPatch{Disabled: &disabled})
	r.decode(t, &u)
	if r.Status != http.StatusOK || !u.Disabled || u.DisplayName != name {
		t.Errorf("disable: %d %s", r.Status, r.Body)
	}
	if r := sec.do(http.MethodPatch, users+"/sec", api.UserPatch{Disabled: &disabled}); r.Status != http.StatusForbidden {
		t.Errorf("disabling oneself: %d %s, want 403", r.Status, r.Body)
	}

	// MFA reset needs mfa.manage and an enrolment.
	e.enrolledUser("jon")
	if r := viewer.do(http.MethodDelete, users+"/jon/mfa", nil); r.Status != http.StatusForbidden {
		t.Errorf("viewer resets MFA: %d, want 403", r.Status)
	}
	if r := sec.do(http.MethodDelete, users+"/jon/mfa", nil); r.Status != http.StatusNoContent {
		t.Errorf("reset MFA: %d %s", r.Status, r.Body)
	}
	if r := sec.do(http.MethodDelete, users+"/jon/mfa", nil); r.Status != http.StatusConflict {
		t.Errorf("reset MFA twice: %d %s, want 409", r.Status, r.Body)
	}

	// Every change is in the audit log under the administrator's name,
	// and so is the viewer's refusal.
	for _, action := range []string{"auth.user.created", "auth.user.updated", "auth.totp.removed"} {
		if !auditHas(t, sec, action, "user:sec", "success") {
			t.Errorf("no %s by user:sec in the audit log", action)
		}
	}
	if !auditHas(t, sec, "access.decide", "user:vic", "denied") {
		t.Errorf("the viewer's denial is not in the audit log")
	}
}
