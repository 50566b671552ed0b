package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// auditPageSize is how many events the audit page shows: the newest
// that match the filters.
const auditPageSize = 200

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// auditRes is the audit log as a resource: "audit:log", as the API and
// the CLI name it.
var auditRes = access.Resource{Type: access.ResAudit, Name: "log"}

type auditView struct {
	Actor, Action string
	Events        []audit.Entry
	Truncated     bool
	Verified      *audit.Report
	VerifyError   string
}

// auditPage lists audit events, newest first, filtered by actor and
// action.
func (u *UI) auditPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	if err := u.authorize(r.Context(), v, access.AuditRead, auditRes); err != nil {
		return err
	}
	return u.renderAudit(w, r, v, nil, "")
}

// renderAudit renders the audit page with the verification report, if
// any. The caller has authorized audit.read, once per request, so one
// page view is one decision in the log.
func (u *UI) renderAudit(w http.ResponseWriter, r *http.Request, v *viewer, rep *audit.Report, verr string) error {
	ctx := r.Context()
	q := r.URL.Query()
	view := auditView{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Verified: rep, VerifyError: verr}
	es, err := audit.List(ctx, u.d.Store, store.AuditFilter{Actor: view.Actor, Action: view.Action})
	if err != nil {
		return err
	}
	if len(es) > auditPageSize {
		es, view.Truncated = es[len(es)-auditPageSize:], true
	}
	slices.Reverse(es)
	view.Events = es
	u.render(w, r, http.StatusOK, "audit", v, "Audit log", view)
	return nil
}

// auditVerify checks the whole hash chain and the signed checkpoints
// against the keyring, as `sluice audit verify` does, and shows the
// report above the log.
func (u *UI) auditVerify(w http.ResponseWriter, r *http.Request, v *viewer) error {
	if err := u.authorize(r.Context(), v, access.AuditRead, auditRes); err != nil {
		return err
	}
	rep, err := audit.NewCheckpointer(u.d.Store, u.d.Keys, audit.CheckpointOptions{}).Verify(r.Context())
	verr := ""
	if err != nil {
		verr = err.Error()
	}
	return u.renderAudit(w, r, v, &rep, verr)
}

type userRow struct {
	auth.User
	MFA bool
}

// usersPage lists the accounts (user.manage).
func (u *UI) usersPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	if err := u.authorize(ctx, v, access.UserManage, access.Resource{Type: access.ResUser}); err != nil {
		return err
	}
	us, err := u.d.Auth.ListUsers(ctx)
	if err != nil {
		return err
	}
	rows := make([]userRow, 0, len(us))
	for _, x := range us {
		mfa, err := u.d.Auth.MFAEnrolled(ctx, x.ID)
		if err != nil {
			return err
		}
		rows = append(rows, userRow{User: x, MFA: mfa})
	}
	u.render(w, r, http.StatusOK, "users", v, "Users", rows)
	return nil
}

// mayAccessPage: the access page is for whoever may approve requests or
// review bindings.
func (u *UI) mayAccessPage(ctx context.Context, p api.Principal) bool {
	res := access.Resource{Type: access.ResBinding}
	return u.d.API.May(ctx, p, access.BindingApprove, res) || u.d.API.May(ctx, p, access.BindingRevoke, res)
}

type accessView struct {
	Roles      []access.Role
	Requests   []store.AccessRequest
	Review     []access.ReviewItem
	CanApprove bool
	CanReview  bool
	Me         string
	// Reviewed is the id of the review just recorded, shown as a notice.
	Reviewed string
}

// accessPage shows roles, pending access requests (with approve and
// reject for binding.approve) and the access review of every binding
// (binding.revoke), with a form to record verdicts on it.
func (u *UI) accessPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	res := access.Resource{Type: access.ResBinding}
	view := accessView{CanApprove: u.may(ctx, v, access.BindingApprove, res), CanReview: u.may(ctx, v, access.BindingRevoke, res),
		Me: v.P.User.Username}
	if view.CanReview {
		view.Reviewed = r.URL.Query().Get("reviewed")
	}
	if !view.CanApprove && !view.CanReview {
		return u.authorize(ctx, v, access.BindingApprove, res)
	}
	var err error
	if view.Roles, err = u.d.Access.Roles(ctx); err != nil {
		return err
	}
	if view.CanApprove {
		if view.Requests, err = u.d.Store.ListAccessRequests(ctx, store.RequestPending); err != nil {
			return err
		}
	}
	if view.CanReview {
		if view.Review, err = u.d.Access.Review(ctx); err != nil {
			return err
		}
	}
	u.render(w, r, http.StatusOK, "access", v, "Access", view)
	return nil
}

// decideRequest approves or rejects an access request. The access
// service checks binding.approve and the two-person and self-grant rules,
// and records the decision.
func (u *UI) decideRequest(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	id, note := r.PathValue("id"), strings.TrimSpace(r.PostFormValue("note"))
	var err error
	switch r.PathValue("verdict") {
	case "approve":
		_, err = u.d.Access.ApproveRequest(ctx, v.P.Subject, id, note)
	case "reject":
		if note == "" {
			note = "rejected in the web UI"
		}
		_, err = u.d.Access.RejectRequest(ctx, v.P.Subject, id, note)
	default:
		return errNotFound
	}
	if err != nil {
		return accessError(err)
	}
	http.Redirect(w, r, "/access", http.StatusSeeOther)
	return nil
}

// Verdicts of the access review form, one per binding: keep confirms it,
// revoke deletes it; a binding left without a verdict is not part of the
// review.
const (
	verdictKeep   = "keep"
	verdictRevoke = "revoke"
)

// recordReview records the verdicts of the access review form as one
// review, like POST /api/v1/access-review and `sluice access review`: it
// needs binding.revoke globally (checked here, so a refusal renders the
// 403 page and is recorded, and again by the access service), the access
// service records the review in the audit log before it deletes the
// revoked bindings, and nobody confirms their own binding
// (sod.self-review). The form lists each binding once in "binding", with
// its verdict in "verdict-<id>" and an optional note in "note-<id>".
func (u *UI) recordReview(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	if err := u.authorize(ctx, v, access.BindingRevoke, access.Resource{Type: access.ResBinding}); err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return &server.Error{Code: server.CodeInvalid, Message: "The form could not be read.", Err: err}
	}
	seen := map[string]bool{}
	var ds []access.ReviewDecision
	for _, id := range r.PostForm["binding"] {
		if seen[id] {
			return &server.Error{Code: server.CodeInvalid, Message: "Binding " + id + " is in the form twice."}
		}
		seen[id] = true
		d := access.ReviewDecision{BindingID: id, Note: strings.TrimSpace(r.PostForm.Get("note-" + id))}
		switch verdict := r.PostForm.Get("verdict-" + id); verdict {
		case "":
			continue
		case verdictKeep:
		case verdictRevoke:
			d.Revoke = true
		default:
			return &server.Error{Code: server.CodeInvalid, Message: fmt.Sprintf("Binding %s: verdict %q: want %q or %q.", id, verdict, verdictKeep, verdictRevoke)}
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return &server.Error{Code: server.CodeInvalid, Message: "Choose keep or revoke for at least one binding."}
	}
	rec, err := u.d.Access.RecordReview(ctx, v.P.Subject, ds)
	if err != nil {
		return accessError(err)
	}
	http.Redirect(w, r, "/access?reviewed="+url.QueryEscape(rec.ID), http.StatusSeeOther)
	return nil
}
