package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// Roles, bindings, access requests and access reviews, as 'sluice role',
// 'sluice binding' and 'sluice access' do them.
//
// The access service authorizes every change itself (on the namespace of
// the binding or request concerned) and records it in the audit log
// before it is made. The routes decide the same permission first where
// the resource is known from the path, so a caller without it is refused
// before anything is read; where the namespace is only in the body (a
// grant, a request) or where the requester may act on their own request
// (withdrawing it), the route only needs a signed-in caller and the
// service decides.

// accessRoutes are the role, binding, request and review endpoints.
func (a *API) accessRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/roles", Summary: "the built-in and custom roles with their permissions",
			Rule: SignedIn(), Handle: a.listRoles},
		{Method: http.MethodPost, Pattern: Prefix + "/roles", Summary: "create a custom role",
			Rule: Need(access.RoleManage, Global(access.ResRole)), Handle: a.createRole},
		{Method: http.MethodDelete, Pattern: Prefix + "/roles/{name}", Summary: "delete a custom role no binding uses",
			Rule: Need(access.RoleManage, Global(access.ResRole)), Handle: a.deleteRole},
		{Method: http.MethodGet, Pattern: Prefix + "/bindings", Summary: "every binding",
			Rule: Need(access.BindingRevoke, Global(access.ResBinding)), Handle: a.listBindings},
		{Method: http.MethodPost, Pattern: Prefix + "/bindings", Summary: "grant a non-privileged role directly",
			Rule: SignedIn(), Handle: a.grantBinding},
		{Method: http.MethodDelete, Pattern: Prefix + "/bindings/{id}", Summary: "revoke a binding",
			Rule: Need(access.BindingRevoke, ofBinding), Handle: a.revokeBinding},
		{Method: http.MethodGet, Pattern: Prefix + "/access-requests", Summary: "access requests, pending ones by default",
			Rule: Need(access.BindingApprove, Global(access.ResBinding)), Handle: a.listRequests},
		{Method: http.MethodPost, Pattern: Prefix + "/access-requests", Summary: "request a binding for a second person to approve",
			Rule: SignedIn(), Handle: a.requestAccess},
		{Method: http.MethodPost, Pattern: Prefix + "/access-requests/{id}/approve", Summary: "approve another person's request, creating its binding",
			Rule: Need(access.BindingApprove, ofRequest), Handle: a.approveRequest},
		{Method: http.MethodPost, Pattern: Prefix + "/access-requests/{id}/reject", Summary: "reject a request, or withdraw one's own",
			Rule: SignedIn(), Handle: a.rejectRequest},
		{Method: http.MethodGet, Pattern: Prefix + "/access-review", Summary: "every binding with what a reviewer needs",
			Rule: Need(access.BindingRevoke, Global(access.ResBinding)), Handle: a.listReview},
		{Method: http.MethodPost, Pattern: Prefix + "/access-review", Summary: "record an access review: confirm or revoke bindings",
			Rule: Need(access.BindingRevoke, Global(access.ResBinding)), Handle: a.recordReview},
	}
}

// ofBinding names the binding of the path's {id} in its namespace; an
// unknown binding is decided globally, so only a global binding.revoke
// learns that it does not exist.
func ofBinding(r *http.Request, a *API) (access.Resource, error) {
	id := r.PathValue("id")
	res := access.Resource{Type: access.ResBinding, Name: id}
	b, err := a.d.Store.GetBinding(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return res, fmt.Errorf("reading binding %s: %w", id, err)
	default:
		res.Namespace = b.Namespace
	}
	return res, nil
}

// ofRequest names the access request of the path's {id} in the namespace
// of the binding it asks for, like ofBinding.
func ofRequest(r *http.Request, a *API) (access.Resource, error) {
	id := r.PathValue("id")
	res := access.Resource{Type: access.ResBinding, Name: id}
	q, err := a.d.Store.GetAccessRequest(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return res, fmt.Errorf("reading access request %s: %w", id, err)
	default:
		res.Namespace = q.Namespace
	}
	return res, nil
}

// accessError turns the access service's refusals into the API's codes:
// a denial or a segregation-of-duties refusal is forbidden (the message
// names the rule), bad arguments invalid, a request no longer pending or
// a role in use a conflict. The service's messages name what they are
// about and carry nothing internal.
func (a *API) accessError(err error, perm access.Permission) error {
	var sod *access.SoDError
	code := server.Code("")
	switch {
	case errors.Is(err, access.ErrDenied):
		a.d.Metrics.Denied(string(perm))
		code = server.CodeForbidden
	case errors.As(err, &sod):
		code = server.CodeForbidden
	case errors.Is(err, access.ErrInvalid), errors.Is(err, access.ErrUnknownRole), errors.Is(err, access.ErrUnknownPermission):
		code = server.CodeInvalid
	case errors.Is(err, store.ErrNotFound):
		code = server.CodeNotFound
	case errors.Is(err, access.ErrRequestExpired), errors.Is(err, store.ErrConflict):
		code = server.CodeConflict
	default:
		return err
	}
	return &server.Error{Code: code, Message: err.Error(), Err: err}
}

// RoleView is a role: its one JSON form, in the API and the CLI.
type RoleView struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	BuiltIn     bool     `json:"built_in"`
	Privileged  bool     `json:"privileged"`
	Permissions []string `json:"permissions"`
}

// ViewRole is the JSON form of r.
func ViewRole(r access.Role) RoleView {
	ps := make([]string, len(r.Permissions))
	for i, p := range r.Permissions {
		ps[i] = string(p)
	}
	return RoleView{Name: r.Name, Description: r.Description, BuiltIn: r.BuiltIn, Privileged: r.Privileged, Permissions: ps}
}

// NewRole creates a custom role (POST /api/v1/roles).
type NewRole struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Permissions []string `json:"permissions"`
}

// listRoles is open to every signed-in caller, as 'sluice role list' is:
// the roles are the vocabulary of requests and say nothing about who
// holds them.
func (a *API) listRoles(w http.ResponseWriter, r *http.Request, _ *Call) error {
	roles, err := a.d.Access.Roles(r.Context())
	if err != nil {
		return err
	}
	views := make([]RoleView, len(roles))
	for i, ro := range roles {
		views[i] = ViewRole(ro)
	}
	page, err := listPage(r, views, func(v RoleView) string { return v.Name })
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, page)
}

func (a *API) createRole(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req NewRole
	if err := Decode(r, &req); err != nil {
		return err
	}
	perms, err := access.ParsePermissions(req.Permissions)
	if err != nil {
		return &server.Error{Code: server.CodeInvalid, Message: "permissions: " + err.Error(), Err: err}
	}
	if len(perms) == 0 {
		return server.Errorf(server.CodeInvalid, "permissions: at least one is required")
	}
	ro, err := a.d.Access.CreateRole(r.Context(), c.Principal.Subject, req.Name, req.Description, perms)
	if err != nil {
		return a.accessError(err, access.RoleManage)
	}
	w.Header().Set("Location", Prefix+"/roles/"+ro.Name)
	return WriteJSON(w, http.StatusCreated, ViewRole(ro))
}

func (a *API) deleteRole(w http.ResponseWriter, r *http.Request, c *Call) error {
	name := r.PathValue("name")
	if err := a.d.Access.DeleteRole(r.Context(), c.Principal.Subject, name); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &server.Error{Code: server.CodeConflict, Message: "role " + name + " is used by a binding: revoke it first", Err: err}
		}
		if errors.Is(err, store.ErrNotFound) {
			return server.Errorf(server.CodeNotFound, "no custom role %q", name)
		}
		return a.accessError(err, access.RoleManage)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// BindingView is a binding of a user or group to a role.
type BindingView struct {
	ID          string    `json:"id"`
	SubjectKind string    `json:"subject_kind"`
	Subject     string    `json:"subject"`
	Role        string    `json:"role"`
	Namespace   string    `json:"namespace,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	GrantedBy   string    `json:"granted_by"`
	GrantedAt   time.Time `json:"granted_at"`
	RequestID   string    `json:"request_id,omitempty"`
	LastUsedAt  time.Time `json:"last_used_at,omitzero"`
}

// ViewBinding is the view of a binding, in the API and the CLI.
func ViewBinding(b store.Binding) BindingView {
	return BindingView{ID: b.ID, SubjectKind: b.SubjectKind, Subject: b.Subject, Role: b.Role, Namespace: b.Namespace,
		ExpiresAt: b.ExpiresAt.UTC(), GrantedBy: b.GrantedBy, GrantedAt: b.GrantedAt.UTC(), RequestID: b.RequestID,
		LastUsedAt: b.LastUsedAt.UTC()}
}

// Grant asks for a binding: directly (POST /api/v1/bindings) or by
// request (POST /api/v1/access-requests, where Reason is required).
type Grant struct {
	SubjectKind string    `json:"subject_kind"`
	Subject     string    `json:"subject"`
	Role        string    `json:"role"`
	Namespace   string    `json:"namespace,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	Reason      string    `json:"reason,omitempty"`
}

func (g Grant) params() access.GrantParams {
	return access.GrantParams{SubjectKind: g.SubjectKind, Subject: g.Subject, Role: g.Role, Namespace: g.Namespace,
		ExpiresAt: g.ExpiresAt, Reason: g.Reason}
}

func (a *API) listBindings(w http.ResponseWriter, r *http.Request, _ *Call) error {
	bs, err := a.d.Store.ListBindings(r.Context())
	if err != nil {
		return err
	}
	views := make([]BindingView, len(bs))
	for i, b := range bs {
		views[i] = ViewBinding(b)
	}
	page, err := listPage(r, views, func(v BindingView) string { return v.ID })
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, page)
}

func (a *API) grantBinding(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req Grant
	if err := Decode(r, &req); err != nil {
		return err
	}
	b, err := a.d.Access.Grant(r.Context(), c.Principal.Subject, req.params())
	var sod *access.SoDError
	if errors.As(err, &sod) && sod.Rule == access.RuleTwoPerson {
		return &server.Error{Code: server.CodeForbidden, Err: err, Message: err.Error() +
			"; request it with POST " + Prefix + "/access-requests and a different security engineer approves it"}
	}
	if err != nil {
		return a.accessError(err, access.BindingApprove)
	}
	w.Header().Set("Location", Prefix+"/bindings/"+b.ID)
	return WriteJSON(w, http.StatusCreated, ViewBinding(b))
}

func (a *API) revokeBinding(w http.ResponseWriter, r *http.Request, c *Call) error {
	if err := a.d.Access.Revoke(r.Context(), c.Principal.Subject, r.PathValue("id"), r.URL.Query().Get("reason")); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return server.Errorf(server.CodeNotFound, "no binding %q", r.PathValue("id"))
		}
		return a.accessError(err, access.BindingRevoke)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// RequestView is an access request.
type RequestView struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`
	Requester   string    `json:"requester"`
	SubjectKind string    `json:"subject_kind"`
	Subject     string    `json:"subject"`
	Role        string    `json:"role"`
	Namespace   string    `json:"namespace,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	Reason      string    `json:"reason"`
	CreatedAt   time.Time `json:"created_at"`
	Approver    string    `json:"approver,omitempty"`
	Note        string    `json:"note,omitempty"`
	DecidedAt   time.Time `json:"decided_at,omitzero"`
	BindingID   string    `json:"binding_id,omitempty"`
}

// ViewRequest is the view of an access request, in the API and the CLI.
func ViewRequest(q store.AccessRequest) RequestView {
	return RequestView{ID: q.ID, State: q.State, Requester: q.Requester, SubjectKind: q.SubjectKind, Subject: q.Subject,
		Role: q.Role, Namespace: q.Namespace, ExpiresAt: q.ExpiresAt.UTC(), Reason: q.Reason, CreatedAt: q.CreatedAt.UTC(),
		Approver: q.Approver, Note: q.Note, DecidedAt: q.DecidedAt.UTC(), BindingID: q.BindingID}
}

// Decision is the body of approving or rejecting a request: a note for
// the audit log (required to reject).
type Decision struct {
	Note string `json:"note,omitempty"`
}

func (a *API) listRequests(w http.ResponseWriter, r *http.Request, _ *Call) error {
	state := r.URL.Query().Get("state")
	switch state {
	case "":
		state = store.RequestPending
	case store.RequestPending, store.RequestApproved, store.RequestRejected, store.RequestExpired:
	default:
		return server.Errorf(server.CodeInvalid, "query parameter state: %q: want pending, approved, rejected or expired", state)
	}
	qs, err := a.d.Store.ListAccessRequests(r.Context(), state)
	if err != nil {
		return err
	}
	views := make([]RequestView, len(qs))
	for i, q := range qs {
		views[i] = ViewRequest(q)
	}
	page, err := listPage(r, views, func(v RequestView) string { return timeKey(v.CreatedAt) + v.ID })
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, page)
}

func (a *API) requestAccess(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req Grant
	if err := Decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return server.Errorf(server.CodeInvalid, "reason: say why the access is needed")
	}
	q, err := a.d.Access.RequestAccess(r.Context(), c.Principal.Subject, req.params())
	if err != nil {
		return a.accessError(err, access.BindingRequest)
	}
	w.Header().Set("Location", Prefix+"/access-requests/"+q.ID)
	return WriteJSON(w, http.StatusCreated, ViewRequest(q))
}

func (a *API) approveRequest(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req Decision
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	b, err := a.d.Access.ApproveRequest(r.Context(), c.Principal.Subject, r.PathValue("id"), req.Note)
	if err != nil {
		return a.accessError(err, access.BindingApprove)
	}
	return WriteJSON(w, http.StatusOK, ViewBinding(b))
}

func (a *API) rejectRequest(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req Decision
	if err := Decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Note) == "" {
		return server.Errorf(server.CodeInvalid, "note: say why the request is rejected")
	}
	q, err := a.d.Access.RejectRequest(r.Context(), c.Principal.Subject, r.PathValue("id"), req.Note)
	if err != nil {
		return a.accessError(err, access.BindingApprove)
	}
	return WriteJSON(w, http.StatusOK, ViewRequest(q))
}

// decodeOptional is Decode for a body that may be left out: an empty
// body, whether its length is declared 0 or unknown (chunked), leaves v
// as it is.
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	if err := Decode(r, v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// ReviewItemView is one binding under review.
type ReviewItemView struct {
	BindingView
	Permissions []string `json:"permissions"`
	Privileged  bool     `json:"privileged"`
	Flags       []string `json:"flags"`
	SoDRules    []string `json:"sod_rules,omitempty"`
}

// ReviewSubmission records an access review (POST /api/v1/access-review).
type ReviewSubmission struct {
	Decisions []ReviewVerdict `json:"decisions"`
}

// ReviewVerdict is the verdict on one binding: confirm or revoke.
type ReviewVerdict struct {
	BindingID string `json:"binding_id"`
	Action    string `json:"action"`
	Note      string `json:"note,omitempty"`
}

// ReviewRecordView is a recorded review.
type ReviewRecordView struct {
	ID        string          `json:"id"`
	Reviewer  string          `json:"reviewer"`
	At        time.Time       `json:"at"`
	Decisions []ReviewVerdict `json:"decisions"`
}

// ViewReviewItem is the view of one binding under review, in the API and
// the CLI.
func ViewReviewItem(it access.ReviewItem) ReviewItemView {
	ps := make([]string, len(it.Permissions))
	for j, p := range it.Permissions {
		ps[j] = string(p)
	}
	return ReviewItemView{BindingView: ViewBinding(it.Binding), Permissions: ps, Privileged: it.Privileged,
		Flags: nonNil(it.Flags), SoDRules: it.Conflicts}
}

func (a *API) listReview(w http.ResponseWriter, r *http.Request, _ *Call) error {
	items, err := a.d.Access.Review(r.Context())
	if err != nil {
		return err
	}
	views := make([]ReviewItemView, len(items))
	for i, it := range items {
		views[i] = ViewReviewItem(it)
	}
	page, err := listPage(r, views, func(v ReviewItemView) string { return v.ID })
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, page)
}

func (a *API) recordReview(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req ReviewSubmission
	if err := Decode(r, &req); err != nil {
		return err
	}
	if len(req.Decisions) == 0 {
		return server.Errorf(server.CodeInvalid, "decisions: at least one verdict is required")
	}
	seen := map[string]bool{}
	ds := make([]access.ReviewDecision, 0, len(req.Decisions))
	for i, d := range req.Decisions {
		if d.Action != store.ReviewConfirm && d.Action != store.ReviewRevoke {
			return server.Errorf(server.CodeInvalid, "decisions[%d].action: %q: want %q or %q", i, d.Action, store.ReviewConfirm, store.ReviewRevoke)
		}
		if seen[d.BindingID] {
			return server.Errorf(server.CodeInvalid, "decisions[%d]: binding %s given twice", i, d.BindingID)
		}
		seen[d.BindingID] = true
		ds = append(ds, access.ReviewDecision{BindingID: d.BindingID, Revoke: d.Action == store.ReviewRevoke, Note: d.Note})
	}
	rec, err := a.d.Access.RecordReview(r.Context(), c.Principal.Subject, ds)
	if err != nil {
		return a.accessError(err, access.BindingRevoke)
	}
	out := ReviewRecordView{ID: rec.ID, Reviewer: rec.Reviewer, At: rec.At.UTC(), Decisions: []ReviewVerdict{}}
	for _, d := range rec.Decisions {
		out.Decisions = append(out.Decisions, ReviewVerdict{BindingID: d.BindingID, Action: d.Action, Note: d.Note})
	}
	return WriteJSON(w, http.StatusCreated, out)
}
