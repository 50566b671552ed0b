package access

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// newID returns a random identifier with a kind prefix ("b_", "r_", ...).
func newID(prefix string) string { return prefix + strings.ToLower(rand.Text()) }

// Roles returns the built-in roles followed by the custom ones.
func (s *Service) Roles(ctx context.Context) ([]Role, error) {
	out := BuiltinRoles()
	custom, err := s.cfg.Store.ListRoles(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	for _, r := range custom {
		ps := setOf(permsOf(r.Permissions)...)
		out = append(out, Role{Name: r.Name, Description: r.Description, Permissions: ps.list(), Privileged: ps.privileged()})
	}
	return out, nil
}

// rolePerms returns the permissions of a built-in or custom role.
func (s *Service) rolePerms(ctx context.Context, st store.AccessStore, name string) (permSet, error) {
	if ps, ok := builtinPerms(name); ok {
		return ps, nil
	}
	r, err := st.GetRole(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("role %q: %w", name, ErrUnknownRole)
	}
	if err != nil {
		return 0, err
	}
	return setOf(permsOf(r.Permissions)...), nil
}

// CreateRole stores a custom role. It needs role.manage (global); a role
// that would by itself break a segregation-of-duties rule is refused.
func (s *Service) CreateRole(ctx context.Context, actor Subject, name, description string, perms []Permission) (Role, error) {
	if _, err := s.Authorize(ctx, actor, RoleManage, Resource{Type: ResRole, Name: name}); err != nil {
		return Role{}, fmt.Errorf("creating role %q: %w", name, err)
	}
	if name == "" || strings.ContainsAny(name, " \t\n") {
		return Role{}, fmt.Errorf("creating role %q: name must be non-empty without spaces: %w", name, ErrInvalid)
	}
	if _, builtin := builtinPerms(name); builtin {
		return Role{}, fmt.Errorf("creating role %q: the name of a built-in role: %w", name, ErrInvalid)
	}
	names := make([]string, len(perms))
	for i, p := range perms {
		names[i] = string(p)
	}
	if _, err := ParsePermissions(names); err != nil {
		return Role{}, fmt.Errorf("creating role %q: %w", name, err)
	}
	ps := setOf(perms...)
	if r, bad := conflicts(ps, ps); bad {
		return Role{}, fmt.Errorf("creating role %q: %w", name,
			&SoDError{Rule: r.id, Detail: r.description + ": the role would hold both"})
	}
	role := Role{Name: name, Description: description, Permissions: ps.list(), Privileged: ps.privileged()}
	stored := make([]string, 0, len(role.Permissions))
	for _, p := range role.Permissions {
		stored = append(stored, string(p))
	}
	now := s.now()
	err := s.cfg.Record(ctx, Event{At: now, Actor: actor.User, Action: ActRoleCreate, Target: name, Allowed: true,
		Details: map[string]string{"permissions": strings.Join(stored, ",")}})
	if err != nil {
		return Role{}, fmt.Errorf("creating role %q: recording: %w", name, err)
	}
	if err := s.cfg.Store.CreateRole(ctx, store.Role{Name: name, Description: description, Permissions: stored,
		CreatedBy: actor.User, CreatedAt: now}); err != nil {
		return Role{}, err
	}
	s.invalidate()
	return role, nil
}

// DeleteRole deletes a custom role no binding uses (store.ErrConflict
// otherwise). It needs role.manage.
func (s *Service) DeleteRole(ctx context.Context, actor Subject, name string) error {
	if _, err := s.Authorize(ctx, actor, RoleManage, Resource{Type: ResRole, Name: name}); err != nil {
		return fmt.Errorf("deleting role %q: %w", name, err)
	}
	if _, builtin := builtinPerms(name); builtin {
		return fmt.Errorf("deleting role %q: built-in roles cannot be deleted: %w", name, ErrInvalid)
	}
	if err := s.cfg.Record(ctx, Event{At: s.now(), Actor: actor.User, Action: ActRoleDelete, Target: name, Allowed: true}); err != nil {
		return fmt.Errorf("deleting role %q: recording: %w", name, err)
	}
	if err := s.cfg.Store.DeleteRole(ctx, name); err != nil {
		return err
	}
	s.invalidate()
	return nil
}

// GrantParams describes a binding to create, directly or by request.
type GrantParams struct {
	SubjectKind string // store.SubjectUser or store.SubjectGroup
	Subject     string
	Role        string
	Namespace   string    // "" is global
	ExpiresAt   time.Time // zero: no expiry
	Reason      string
}

func (g GrantParams) validate(now time.Time) error {
	switch {
	case g.SubjectKind != store.SubjectUser && g.SubjectKind != store.SubjectGroup:
		return fmt.Errorf("subject kind %q: want %q or %q: %w", g.SubjectKind, store.SubjectUser, store.SubjectGroup, ErrInvalid)
	case g.Subject == "":
		return fmt.Errorf("empty subject: %w", ErrInvalid)
	case g.Role == "":
		return fmt.Errorf("empty role: %w", ErrInvalid)
	case !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now):
		return fmt.Errorf("expiry %s is not in the future: %w", g.ExpiresAt.UTC().Format(time.RFC3339), ErrInvalid)
	}
	return nil
}

func (g GrantParams) String() string {
	where := "globally"
	if g.Namespace != "" {
		where = "in namespace " + g.Namespace
	}
	return fmt.Sprintf("role %s to %s %s %s", g.Role, g.SubjectKind, g.Subject, where)
}

// isSelf reports whether a grant would reach actor: the actor is the
// subject or belongs to the subject group.
func isSelf(actor Subject, kind, subject string) bool {
	if kind == store.SubjectGroup {
		return slices.Contains(actor.Groups, subject)
	}
	return subject == actor.User
}

// checkConflicts refuses a grant of perms to a subject that would then hold
// both sides of a conflict rule, counting the subject's unexpired bindings
// (and, for a user, those of their groups when Membership is configured).
func (s *Service) checkConflicts(ctx context.Context, st store.AccessStore, kind, subject string, perms permSet) error {
	held := perms
	subjects := map[[2]string]bool{{kind, subject}: true}
	if kind == store.SubjectUser && s.cfg.Membership != nil {
		groups, err := s.cfg.Membership.GroupsOf(ctx, subject)
		if err != nil {
			return fmt.Errorf("resolving groups of %s: %w", subject, err)
		}
		for _, g := range groups {
			subjects[[2]string{store.SubjectGroup, g}] = true
		}
	}
	bs, err := st.ListBindings(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	for _, b := range bs {
		if !subjects[[2]string{b.SubjectKind, b.Subject}] || (!b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now)) {
			continue
		}
		ps, err := s.rolePerms(ctx, st, b.Role)
		if errors.Is(err, ErrUnknownRole) {
			continue
		}
		if err != nil {
			return err
		}
		held |= ps
	}
	if r, bad := conflicts(held, perms); bad {
		return &SoDError{Rule: r.id, Detail: fmt.Sprintf("%s; %s %s would hold both", r.description, kind, subject)}
	}
	return nil
}

// Grant creates a binding directly. The actor needs binding.approve in the
// binding's namespace (with MFA: it is privileged), may not grant to
// themselves (RuleSelfGrant), and may not grant a privileged role this way
// (RuleTwoPerson: use RequestAccess). A binding that would give its subject
// both sides of a conflict rule is refused naming the rule.
func (s *Service) Grant(ctx context.Context, actor Subject, g GrantParams) (store.Binding, error) {
	b, err := s.grant(ctx, actor, g)
	if err != nil {
		return store.Binding{}, fmt.Errorf("granting %s: %w", g, err)
	}
	return b, nil
}

func (s *Service) grant(ctx context.Context, actor Subject, g GrantParams) (store.Binding, error) {
	now := s.now()
	if err := g.validate(now); err != nil {
		return store.Binding{}, err
	}
	if _, err := s.Authorize(ctx, actor, BindingApprove, Resource{Type: ResBinding, Namespace: g.Namespace}); err != nil {
		return store.Binding{}, err
	}
	if isSelf(actor, g.SubjectKind, g.Subject) {
		return store.Binding{}, &SoDError{Rule: RuleSelfGrant, Detail: actor.User + " may not grant to themselves"}
	}
	perms, err := s.rolePerms(ctx, s.cfg.Store, g.Role)
	if err != nil {
		return store.Binding{}, err
	}
	if perms.privileged() {
		return store.Binding{}, &SoDError{Rule: RuleTwoPerson, Detail: "role " + g.Role +
			" is privileged: it is granted only on a request approved by a second security engineer"}
	}
	if err := s.checkConflicts(ctx, s.cfg.Store, g.SubjectKind, g.Subject, perms); err != nil {
		return store.Binding{}, err
	}
	b := store.Binding{ID: newID("b_"), SubjectKind: g.SubjectKind, Subject: g.Subject, Role: g.Role,
		Namespace: g.Namespace, ExpiresAt: g.ExpiresAt, GrantedBy: actor.User, GrantedAt: now}
	if err := s.cfg.Record(ctx, bindingEvent(ActBindingCreate, actor.User, now, b, g.Reason)); err != nil {
		return store.Binding{}, fmt.Errorf("recording: %w", err)
	}
	if err := s.cfg.Store.CreateBinding(ctx, b); err != nil {
		return store.Binding{}, err
	}
	s.invalidate()
	return b, nil
}

func bindingEvent(action, actor string, at time.Time, b store.Binding, reason string) Event {
	e := Event{At: at, Actor: actor, Action: action, Target: b.ID, Namespace: b.Namespace, Allowed: true, Reason: reason,
		Details: map[string]string{"subject": b.SubjectKind + ":" + b.Subject, "role": b.Role}}
	if !b.ExpiresAt.IsZero() {
		e.Details["expires"] = b.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if b.RequestID != "" {
		e.Details["request"] = b.RequestID
	}
	return e
}

// RequestAccess asks for a binding to be approved by a second person. The
// requester needs binding.request in the namespace; a request for a grant
// that would break a conflict rule is refused at once.
func (s *Service) RequestAccess(ctx context.Context, actor Subject, g GrantParams) (store.AccessRequest, error) {
	r, err := s.requestAccess(ctx, actor, g)
	if err != nil {
		return store.AccessRequest{}, fmt.Errorf("requesting %s: %w", g, err)
	}
	return r, nil
}

func (s *Service) requestAccess(ctx context.Context, actor Subject, g GrantParams) (store.AccessRequest, error) {
	now := s.now()
	if err := g.validate(now); err != nil {
		return store.AccessRequest{}, err
	}
	if _, err := s.Authorize(ctx, actor, BindingRequest, Resource{Type: ResBinding, Namespace: g.Namespace}); err != nil {
		return store.AccessRequest{}, err
	}
	perms, err := s.rolePerms(ctx, s.cfg.Store, g.Role)
	if err != nil {
		return store.AccessRequest{}, err
	}
	if err := s.checkConflicts(ctx, s.cfg.Store, g.SubjectKind, g.Subject, perms); err != nil {
		return store.AccessRequest{}, err
	}
	r := store.AccessRequest{ID: newID("r_"), Requester: actor.User, SubjectKind: g.SubjectKind, Subject: g.Subject,
		Role: g.Role, Namespace: g.Namespace, ExpiresAt: g.ExpiresAt, Reason: g.Reason, State: store.RequestPending,
		CreatedAt: now}
	e := Event{At: now, Actor: actor.User, Action: ActRequestCreate, Target: r.ID, Namespace: r.Namespace, Allowed: true,
		Reason: g.Reason, Details: map[string]string{"subject": g.SubjectKind + ":" + g.Subject, "role": g.Role}}
	if err := s.cfg.Record(ctx, e); err != nil {
		return store.AccessRequest{}, fmt.Errorf("recording: %w", err)
	}
	if err := s.cfg.Store.CreateAccessRequest(ctx, r); err != nil {
		return store.AccessRequest{}, err
	}
	return r, nil
}

// ApproveRequest approves a pending request and creates its binding, in one
// transaction. The approver needs binding.approve in the namespace (with
// MFA), must not be the requester (RuleTwoPerson) nor the subject
// (RuleSelfGrant). A request older than Config.RequestTTL, or whose binding
// would already have expired, is marked expired and refused with
// ErrRequestExpired; one no longer pending gives store.ErrConflict.
func (s *Service) ApproveRequest(ctx context.Context, approver Subject, id, note string) (store.Binding, error) {
	b, err := s.approveRequest(ctx, approver, id, note)
	if err != nil {
		return store.Binding{}, fmt.Errorf("approving access request %s: %w", id, err)
	}
	return b, nil
}

func (s *Service) approveRequest(ctx context.Context, approver Subject, id, note string) (store.Binding, error) {
	now := s.now()
	r, err := s.cfg.Store.GetAccessRequest(ctx, id)
	if err != nil {
		return store.Binding{}, err
	}
	if r.State != store.RequestPending {
		return store.Binding{}, fmt.Errorf("request is %s: %w", r.State, store.ErrConflict)
	}
	if _, err := s.Authorize(ctx, approver, BindingApprove, Resource{Type: ResBinding, Namespace: r.Namespace}); err != nil {
		return store.Binding{}, err
	}
	if now.Sub(r.CreatedAt) > s.cfg.RequestTTL || (!r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now)) {
		if err := s.expireRequest(ctx, approver.User, r, now); err != nil {
			return store.Binding{}, err
		}
		return store.Binding{}, ErrRequestExpired
	}
	if approver.User == r.Requester {
		return store.Binding{}, &SoDError{Rule: RuleTwoPerson, Detail: approver.User +
			" requested this grant; a different security engineer must approve it"}
	}
	if isSelf(approver, r.SubjectKind, r.Subject) {
		return store.Binding{}, &SoDError{Rule: RuleSelfGrant, Detail: approver.User + " may not approve a grant to themselves"}
	}
	perms, err := s.rolePerms(ctx, s.cfg.Store, r.Role)
	if err != nil {
		return store.Binding{}, err
	}
	if err := s.checkConflicts(ctx, s.cfg.Store, r.SubjectKind, r.Subject, perms); err != nil {
		return store.Binding{}, err
	}
	b := store.Binding{ID: newID("b_"), SubjectKind: r.SubjectKind, Subject: r.Subject, Role: r.Role,
		Namespace: r.Namespace, ExpiresAt: r.ExpiresAt, GrantedBy: approver.User, GrantedAt: now, RequestID: r.ID}
	e := bindingEvent(ActRequestApprove, approver.User, now, b, note)
	e.Details["requester"] = r.Requester
	e.Details["binding"] = b.ID
	e.Target = r.ID
	if err := s.cfg.Record(ctx, e); err != nil {
		return store.Binding{}, fmt.Errorf("recording: %w", err)
	}
	err = s.cfg.Store.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.DecideAccessRequest(ctx, store.DecideAccessRequest{ID: r.ID, State: store.RequestApproved,
			Approver: approver.User, Note: note, At: now, BindingID: b.ID}); err != nil {
			return err
		}
		return tx.CreateBinding(ctx, b)
	})
	if err != nil {
		return store.Binding{}, err
	}
	s.invalidate()
	return b, nil
}

func (s *Service) expireRequest(ctx context.Context, actor string, r store.AccessRequest, now time.Time) error {
	e := Event{At: now, Actor: actor, Action: ActRequestExpire, Target: r.ID, Namespace: r.Namespace, Allowed: true,
		Reason: "request expired before approval"}
	if err := s.cfg.Record(ctx, e); err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	_, err := s.cfg.Store.DecideAccessRequest(ctx, store.DecideAccessRequest{ID: r.ID, State: store.RequestExpired, At: now,
		Note: "expired before approval"})
	return err
}

// RejectRequest rejects a pending request. The actor needs binding.approve
// in its namespace; a requester may also withdraw their own request.
func (s *Service) RejectRequest(ctx context.Context, actor Subject, id, note string) (store.AccessRequest, error) {
	r, err := s.cfg.Store.GetAccessRequest(ctx, id)
	if err != nil {
		return store.AccessRequest{}, fmt.Errorf("rejecting access request %s: %w", id, err)
	}
	if actor.User != r.Requester {
		if _, err := s.Authorize(ctx, actor, BindingApprove, Resource{Type: ResBinding, Namespace: r.Namespace}); err != nil {
			return store.AccessRequest{}, fmt.Errorf("rejecting access request %s: %w", id, err)
		}
	}
	now := s.now()
	e := Event{At: now, Actor: actor.User, Action: ActRequestReject, Target: id, Namespace: r.Namespace, Allowed: true, Reason: note}
	if err := s.cfg.Record(ctx, e); err != nil {
		return store.AccessRequest{}, fmt.Errorf("rejecting access request %s: recording: %w", id, err)
	}
	return s.cfg.Store.DecideAccessRequest(ctx, store.DecideAccessRequest{ID: id, State: store.RequestRejected,
		Approver: actor.User, Note: note, At: now})
}

// Revoke deletes a binding. The actor needs binding.revoke in the
// binding's namespace. Revoking one's own binding is allowed: it only
// takes away.
func (s *Service) Revoke(ctx context.Context, actor Subject, bindingID, reason string) error {
	b, err := s.cfg.Store.GetBinding(ctx, bindingID)
	if err != nil {
		return fmt.Errorf("revoking binding %s: %w", bindingID, err)
	}
	if _, err := s.Authorize(ctx, actor, BindingRevoke, Resource{Type: ResBinding, Namespace: b.Namespace}); err != nil {
		return fmt.Errorf("revoking binding %s: %w", bindingID, err)
	}
	if err := s.cfg.Record(ctx, bindingEvent(ActBindingRevoke, actor.User, s.now(), b, reason)); err != nil {
		return fmt.Errorf("revoking binding %s: recording: %w", bindingID, err)
	}
	if err := s.cfg.Store.DeleteBinding(ctx, bindingID); err != nil {
		return err
	}
	s.invalidate()
	return nil
}

// Bootstrap creates the first bindings of an empty installation, giving
// role globally to each of users, without an approver: there is nobody yet
// to approve them. Bootstrap two security engineers, so that the
// two-person rule can work from then on. It refuses with store.ErrConflict
// once any binding exists, so it cannot bypass the rule later.
func (s *Service) Bootstrap(ctx context.Context, role string, users ...string) ([]store.Binding, error) {
	bs, err := s.bootstrap(ctx, role, users)
	if err != nil {
		return nil, fmt.Errorf("bootstrapping access: %w", err)
	}
	return bs, nil
}

func (s *Service) bootstrap(ctx context.Context, role string, users []string) ([]store.Binding, error) {
	if len(users) == 0 || slices.Contains(users, "") {
		return nil, fmt.Errorf("no user, or an empty one: %w", ErrInvalid)
	}
	if _, err := s.rolePerms(ctx, s.cfg.Store, role); err != nil {
		return nil, err
	}
	existing, err := s.cfg.Store.ListBindings(ctx)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("bindings exist: %w", store.ErrConflict)
	}
	now := s.now()
	var bs []store.Binding
	for _, u := range users {
		b := store.Binding{ID: newID("b_"), SubjectKind: store.SubjectUser, Subject: u, Role: role, GrantedBy: "bootstrap", GrantedAt: now}
		if err := s.cfg.Record(ctx, bindingEvent(ActBindingCreate, "bootstrap", now, b, "bootstrap")); err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		bs = append(bs, b)
	}
	err = s.cfg.Store.InTx(ctx, func(tx store.Store) error {
		// Checked again in the transaction: another process may have
		// bootstrapped since.
		existing, err := tx.ListBindings(ctx)
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return fmt.Errorf("bindings exist: %w", store.ErrConflict)
		}
		for _, b := range bs {
			if err := tx.CreateBinding(ctx, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.invalidate()
	return bs, nil
}
