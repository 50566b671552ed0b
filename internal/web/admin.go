package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/store"
)

// auditPageSize is how many events the audit page shows: the newest
// that match the filters.
const auditPageSize = 200

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

type auditView struct {
	Actor, Action string
	Events        []audit.Entry
	Truncated     bool
	CanVerify     bool
	Verified      *audit.Report
	VerifyError   string
}

// auditPage lists audit events, newest first, filtered by actor and
// action.
func (u *UI) auditPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	return u.renderAudit(w, r, v, nil, "")
}

func (u *UI) renderAudit(w http.ResponseWriter, r *http.Request, v *viewer, rep *audit.Report, verr string) error {
	ctx := r.Context()
	if err := u.authorize(ctx, v, access.AuditRead, access.Resource{Type: access.ResAudit}); err != nil {
		return err
	}
	q := r.URL.Query()
	view := auditView{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		CanVerify: true, Verified: rep, VerifyError: verr}
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
	if err := u.authorize(r.Context(), v, access.AuditRead, access.Resource{Type: access.ResAudit}); err != nil {
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
}

// accessPage shows roles, pending access requests (with approve and
// reject for binding.approve) and the access review of every binding
// (binding.revoke).
func (u *UI) accessPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	res := access.Resource{Type: access.ResBinding}
	view := accessView{CanApprove: u.may(ctx, v, access.BindingApprove, res), CanReview: u.may(ctx, v, access.BindingRevoke, res),
		Me: v.P.User.Username}
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
