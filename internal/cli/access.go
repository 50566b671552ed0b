package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rogpeppe/go-internal/diff"
	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/store"
)

// errNoUsers refuses the access commands in an installation without users:
// roles, bindings, requests and pipeline approvals are all about people,
// and the local operator of bootstrap mode is not one.
var errNoUsers = errors.New("this state directory has no users, so access control is off: " +
	"create the first security engineers with 'sluice init' and sign in with 'sluice login'")

// withPrincipal opens the app, resolves who is signed in (refusing the
// local operator of an installation without users unless allowLocal), runs
// fn, and then writes the binding last-use times the command's decisions
// noted, so that access reviews made from another process see them.
func withPrincipal(ctx context.Context, e *env, allowLocal bool, fn func(context.Context, *app.App, Principal) error) error {
	return withApp(ctx, e, func(ctx context.Context, a *app.App, _ *progress) error {
		p, err := e.principal(ctx, a)
		if err != nil {
			return err
		}
		if p.Local() && !allowLocal {
			return exitWith(ExitFailure, errNoUsers)
		}
		err = fn(ctx, a, p)
		if ferr := a.Access.FlushUsage(ctx); ferr != nil && err == nil {
			fmt.Fprintf(e.stderr, "sluice: %s\n", ferr)
		}
		return err
	})
}

// accessError gives an error from the access service its exit code: a
// segregation-of-duties refusal names its rule and fails with exit 1, bad
// arguments (unknown role or permission, malformed values) are usage
// errors, everything else a failure. An error that already carries an exit
// code keeps it.
func accessError(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var sod *access.SoDError
	switch {
	case errors.As(err, &sod):
		return exitWith(ExitFailure, fmt.Errorf("%w\n  refused under rule %s (see docs/access.md, Segregation of duties)", err, sod.Rule))
	case errors.Is(err, access.ErrInvalid), errors.Is(err, access.ErrUnknownRole), errors.Is(err, access.ErrUnknownPermission):
		return exitWith(ExitUsage, err)
	}
	return exitWith(ExitFailure, err)
}

// parseExpiry reads an --expires value: a duration from now ("90d", "36h"),
// an RFC 3339 time or a date (UTC midnight). "" means no expiry.
func parseGrantExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 {
			return now.Add(time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--expires: %q is not a duration (90d, 36h), an RFC 3339 time or a YYYY-MM-DD date", s)
}

// subjectOf reads the subject of a grant: a user argument, or --group.
func grantSubject(user, group string) (kind, name string, err error) {
	switch {
	case user != "" && group != "":
		return "", "", fmt.Errorf("give a user or --group, not both")
	case group != "":
		return store.SubjectGroup, group, nil
	case user != "":
		return store.SubjectUser, user, nil
	}
	return "", "", fmt.Errorf("give a user or --group")
}

// when renders a time for tables; the zero time as dash.
func accessTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func accessDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// optTime is a time for JSON that is omitted when zero.
func accessOptTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// ---- roles ----

func roleCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "List the built-in and custom roles; create and delete custom ones",
		Long: `A role is a named set of permissions. The built-in roles follow the personas
of docs/access.md; a custom role is any set of permissions under a new name,
refused if it would by itself break a segregation-of-duties rule. Creating
and deleting roles needs role.manage.`,
	}
	return group(cmd, roleListCommand(e), roleCreateCommand(e), roleDeleteCommand(e))
}

func roleListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List roles with their permissions",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPrincipal(cmd.Context(), e, true, func(ctx context.Context, a *app.App, _ Principal) error {
				roles, err := a.Access.Roles(ctx)
				if err != nil {
					return accessError(err)
				}
				views := make([]api.RoleView, len(roles))
				for i, r := range roles {
					views[i] = api.ViewRole(r)
				}
				if e.json() {
					return e.writeJSON(views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ROLE\tKIND\tPRIVILEGED\tPERMISSIONS")
				for _, v := range views {
					kind := "custom"
					if v.BuiltIn {
						kind = "built-in"
					}
					priv := "no"
					if v.Privileged {
						priv = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, kind, priv, strings.Join(v.Permissions, ","))
				}
				return tw.Flush()
			})
		},
	}
}

func roleCreateCommand(e *env) *cobra.Command {
	var perms []string
	var description string
	cmd := &cobra.Command{
		Use:   "create NAME --permission P...",
		Short: "Create a custom role (needs role.manage)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(perms) == 0 {
				return exitWith(ExitUsage, fmt.Errorf("give at least one --permission"))
			}
			ps, err := access.ParsePermissions(perms)
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				r, err := ap.Access.CreateRole(ctx, p.Subject, a[0], description, ps)
				if err != nil {
					return accessError(err)
				}
				if e.json() {
					return e.writeJSON(api.ViewRole(r))
				}
				fmt.Fprintf(e.stdout, "created role %s: %s\n", r.Name, strings.Join(api.ViewRole(r).Permissions, ","))
				if r.Privileged {
					fmt.Fprintf(e.stdout, "it is privileged: it is granted only through 'sluice access request'\n")
				}
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&perms, "permission", nil, "a permission of the role (repeat, or comma-separate); see 'sluice role list'")
	cmd.Flags().StringVar(&description, "description", "", "what the role is for")
	return cmd
}

func roleDeleteCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a custom role no binding uses (needs role.manage)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				if err := ap.Access.DeleteRole(ctx, p.Subject, a[0]); err != nil {
					if errors.Is(err, store.ErrConflict) {
						return exitWith(ExitFailure, fmt.Errorf("%w: revoke the bindings that use it first", err))
					}
					return accessError(err)
				}
				if e.json() {
					return e.writeJSON(map[string]string{"deleted": a[0]})
				}
				fmt.Fprintf(e.stdout, "deleted role %s\n", a[0])
				return nil
			})
		},
	}
}

// ---- bindings ----

func bindingScope(ns string) string {
	if ns == "" {
		return "global"
	}
	return ns
}

func bindingCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "binding",
		Short: "List, grant and revoke bindings of users and groups to roles",
		Long: `A binding gives a role to a user or a group, globally or in one namespace,
optionally until an expiry. A non-privileged role is granted directly by a
security engineer; a privileged one (platform, security, raw data) only
through 'sluice access request' and the approval of a second security
engineer. See docs/access.md.`,
	}
	return group(cmd, bindingListCommand(e), bindingGrantCommand(e), bindingRevokeCommand(e))
}

func bindingListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every binding (needs binding.revoke)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, a *app.App, p Principal) error {
				if err := e.authorize(ctx, a, p, access.BindingRevoke, access.Resource{Type: access.ResBinding}); err != nil {
					return accessError(err)
				}
				bs, err := a.Store.ListBindings(ctx)
				if err != nil {
					return exitWith(ExitFailure, fmt.Errorf("listing bindings: %w", err))
				}
				views := make([]api.BindingView, len(bs))
				for i, b := range bs {
					views[i] = api.ViewBinding(b)
				}
				if e.json() {
					return e.writeJSON(views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSUBJECT\tROLE\tNAMESPACE\tEXPIRES\tGRANTED BY\tGRANTED")
				for _, v := range bs {
					fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.SubjectKind, v.Subject, v.Role, bindingScope(v.Namespace),
						accessTime(v.ExpiresAt), v.GrantedBy, accessTime(v.GrantedAt))
				}
				return tw.Flush()
			})
		},
	}
}

func bindingGrantCommand(e *env) *cobra.Command {
	var group, namespace, expires, reason string
	cmd := &cobra.Command{
		Use:   "grant USER ROLE | grant --group GROUP ROLE",
		Short: "Grant a non-privileged role directly (needs binding.approve)",
		Long: `Grant a non-privileged role to a user or a group, globally or in --namespace.
Privileged roles are refused here: request them with 'sluice access request'
so that a second security engineer approves. Nobody grants to themselves,
and a grant that would give its subject both sides of a segregation-of-duties
rule is refused naming the rule.`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var user, role string
			switch {
			case group != "" && len(a) == 1:
				role = a[0]
			case group == "" && len(a) == 2:
				user, role = a[0], a[1]
			default:
				return exitWith(ExitUsage, fmt.Errorf("want USER ROLE, or --group GROUP ROLE"))
			}
			kind, subject, err := grantSubject(user, group)
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			exp, err := parseGrantExpiry(expires, time.Now())
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				g := access.GrantParams{SubjectKind: kind, Subject: subject, Role: role, Namespace: namespace,
					ExpiresAt: exp, Reason: reason}
				b, err := ap.Access.Grant(ctx, p.Subject, g)
				var sod *access.SoDError
				if errors.As(err, &sod) && sod.Rule == access.RuleTwoPerson {
					who := "--for " + subject
					if kind == store.SubjectGroup {
						who = "--group " + subject
					}
					return exitWith(ExitFailure, fmt.Errorf("%w\n  refused under rule %s: use 'sluice access request %s %s --reason TEXT'; "+
						"a different security engineer then approves it", err, sod.Rule, role, who))
				}
				if err != nil {
					return accessError(err)
				}
				if e.json() {
					return e.writeJSON(api.ViewBinding(b))
				}
				fmt.Fprintf(e.stdout, "granted %s: role %s to %s %s (%s)", b.ID, b.Role, b.SubjectKind, b.Subject, bindingScope(b.Namespace))
				if !b.ExpiresAt.IsZero() {
					fmt.Fprintf(e.stdout, ", expires %s", accessTime(b.ExpiresAt))
				}
				fmt.Fprintln(e.stdout)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&group, "group", "", "grant to this group instead of a user")
	fl.StringVar(&namespace, "namespace", "", "only in this namespace (default: global)")
	fl.StringVar(&expires, "expires", "", "expire after this long (90d, 36h) or at this time (RFC 3339, YYYY-MM-DD)")
	fl.StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func bindingRevokeCommand(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a binding (needs binding.revoke)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				if err := ap.Access.Revoke(ctx, p.Subject, a[0], reason); err != nil {
					return accessError(err)
				}
				if e.json() {
					return e.writeJSON(map[string]string{"revoked": a[0]})
				}
				fmt.Fprintf(e.stdout, "revoked binding %s\n", a[0])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

// ---- access requests and reviews ----

func accessCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Request and approve bindings under the two-person rule; review access",
		Long: `A privileged role is granted only on a request by one person approved by a
different security engineer: 'access request' files it, 'access approve'
creates the binding. 'access review' lists every binding with what a
reviewer needs (granter, last use, expiry, flags) and records the review.`,
	}
	return group(cmd, accessRequestCommand(e), accessApproveCommand(e), accessRejectCommand(e),
		accessRequestsCommand(e), accessReviewCommand(e))
}

func accessRequestCommand(e *env) *cobra.Command {
	var user, group, namespace, expires, reason string
	cmd := &cobra.Command{
		Use:   "request ROLE --for USER|--group GROUP --reason TEXT",
		Short: "Request a binding that a second security engineer approves (needs binding.request)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			kind, subject, err := grantSubject(user, group)
			if err != nil {
				return exitWith(ExitUsage, fmt.Errorf("%w (--for USER or --group GROUP)", err))
			}
			if strings.TrimSpace(reason) == "" {
				return exitWith(ExitUsage, fmt.Errorf("--reason: say why the access is needed"))
			}
			exp, err := parseGrantExpiry(expires, time.Now())
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				r, err := ap.Access.RequestAccess(ctx, p.Subject, access.GrantParams{SubjectKind: kind, Subject: subject,
					Role: a[0], Namespace: namespace, ExpiresAt: exp, Reason: reason})
				if err != nil {
					return accessError(err)
				}
				if e.json() {
					return e.writeJSON(api.ViewRequest(r))
				}
				fmt.Fprintf(e.stdout, "requested %s: role %s to %s %s (%s)\n", r.ID, r.Role, r.SubjectKind, r.Subject, bindingScope(r.Namespace))
				fmt.Fprintf(e.stdout, "a security engineer other than you approves it with: sluice access approve %s\n", r.ID)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&user, "for", "", "the user to grant the role to")
	fl.StringVar(&group, "group", "", "the group to grant the role to")
	fl.StringVar(&namespace, "namespace", "", "only in this namespace (default: global)")
	fl.StringVar(&expires, "expires", "", "the binding expires after this long (30d, 36h) or at this time")
	fl.StringVar(&reason, "reason", "", "why the access is needed (required)")
	return cmd
}

func accessApproveCommand(e *env) *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:   "approve REQUEST_ID",
		Short: "Approve a pending request and create its binding (needs binding.approve; not your own request)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				b, err := ap.Access.ApproveRequest(ctx, p.Subject, a[0], note)
				if err != nil {
					return accessError(err)
				}
				if e.json() {
					return e.writeJSON(api.ViewBinding(b))
				}
				fmt.Fprintf(e.stdout, "approved %s: binding %s gives role %s to %s %s (%s)\n", a[0], b.ID, b.Role,
					b.SubjectKind, b.Subject, bindingScope(b.Namespace))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "a comment for the audit log")
	return cmd
}

func accessRejectCommand(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "reject REQUEST_ID --reason TEXT",
		Short: "Reject a pending request (needs binding.approve, or be its requester)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if strings.TrimSpace(reason) == "" {
				return exitWith(ExitUsage, fmt.Errorf("--reason: say why the request is rejected"))
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				r, err := ap.Access.RejectRequest(ctx, p.Subject, a[0], reason)
				if err != nil {
					return accessError(err)
				}
				if e.json() {
					return e.writeJSON(api.ViewRequest(r))
				}
				fmt.Fprintf(e.stdout, "rejected %s\n", r.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	return cmd
}

func accessRequestsCommand(e *env) *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "List access requests, pending ones by default (needs binding.approve)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch state {
			case store.RequestPending, store.RequestApproved, store.RequestRejected, store.RequestExpired:
			default:
				return exitWith(ExitUsage, fmt.Errorf("--state %q: want pending, approved, rejected or expired", state))
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				if err := e.authorize(ctx, ap, p, access.BindingApprove, access.Resource{Type: access.ResBinding}); err != nil {
					return accessError(err)
				}
				rs, err := ap.Store.ListAccessRequests(ctx, state)
				if err != nil {
					return exitWith(ExitFailure, fmt.Errorf("listing access requests: %w", err))
				}
				views := make([]api.RequestView, len(rs))
				for i, r := range rs {
					views[i] = api.ViewRequest(r)
				}
				if e.json() {
					return e.writeJSON(views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATE\tREQUESTER\tSUBJECT\tROLE\tNAMESPACE\tEXPIRES\tCREATED\tREASON")
				for _, r := range rs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s:%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, r.Requester, r.SubjectKind, r.Subject,
						r.Role, bindingScope(r.Namespace), accessTime(r.ExpiresAt), accessTime(r.CreatedAt), r.Reason)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", store.RequestPending, "pending, approved, rejected or expired")
	return cmd
}

func accessReviewCommand(e *env) *cobra.Command {
	var confirm, revoke []string
	var note string
	cmd := &cobra.Command{
		Use:   "review [--confirm ID]... [--revoke ID]...",
		Short: "List every binding for review; with --confirm/--revoke, record the review (needs binding.revoke)",
		Long: `Without flags, list every binding with its granter, grant time, last use and
expiry, flagged stale (unused for 90 days), expiring (within 14 days),
expired, sod-conflict (its subject breaks a segregation-of-duties rule with
it) and privileged-without-mfa. With --confirm and --revoke, record the
verdicts as one review: revoked bindings are deleted in the same
transaction. Nobody confirms their own binding.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			seen := map[string]bool{}
			var decisions []access.ReviewDecision
			for _, list := range []struct {
				ids    []string
				revoke bool
			}{{confirm, false}, {revoke, true}} {
				for _, id := range list.ids {
					if seen[id] {
						return exitWith(ExitUsage, fmt.Errorf("binding %s given twice", id))
					}
					seen[id] = true
					decisions = append(decisions, access.ReviewDecision{BindingID: id, Revoke: list.revoke, Note: note})
				}
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				if len(decisions) > 0 {
					return recordAccessReview(ctx, e, ap, p, decisions)
				}
				if err := e.authorize(ctx, ap, p, access.BindingRevoke, access.Resource{Type: access.ResBinding}); err != nil {
					return accessError(err)
				}
				items, err := ap.Access.Review(ctx)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				views := make([]api.ReviewItemView, len(items))
				for i, it := range items {
					views[i] = api.ViewReviewItem(it)
				}
				if e.json() {
					return e.writeJSON(views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSUBJECT\tROLE\tNAMESPACE\tGRANTED BY\tGRANTED\tLAST USED\tEXPIRES\tFLAGS")
				for _, it := range items {
					b := it.Binding
					flags := strings.Join(it.Flags, ",")
					if len(it.Conflicts) > 0 {
						flags += " (" + strings.Join(it.Conflicts, ",") + ")"
					}
					fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.SubjectKind, b.Subject, b.Role,
						bindingScope(b.Namespace), b.GrantedBy, accessTime(b.GrantedAt), accessTime(b.LastUsedAt), accessTime(b.ExpiresAt), accessDash(flags))
				}
				return tw.Flush()
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&confirm, "confirm", nil, "confirm this binding (repeat)")
	fl.StringArrayVar(&revoke, "revoke", nil, "revoke this binding (repeat)")
	fl.StringVar(&note, "note", "", "a comment stored with each verdict")
	return cmd
}

func recordAccessReview(ctx context.Context, e *env, ap *app.App, p Principal, ds []access.ReviewDecision) error {
	rec, err := ap.Access.RecordReview(ctx, p.Subject, ds)
	if err != nil {
		return accessError(err)
	}
	if e.json() {
		type decision struct {
			BindingID string   `json:"binding_id"`
			Action    string   `json:"action"`
			Flags     []string `json:"flags,omitempty"`
		}
		out := struct {
			ID        string     `json:"id"`
			Reviewer  string     `json:"reviewer"`
			At        time.Time  `json:"at"`
			Decisions []decision `json:"decisions"`
		}{ID: rec.ID, Reviewer: rec.Reviewer, At: rec.At.UTC()}
		for _, d := range rec.Decisions {
			out.Decisions = append(out.Decisions, decision{BindingID: d.BindingID, Action: d.Action, Flags: d.Flags})
		}
		return e.writeJSON(out)
	}
	confirmed, revoked := 0, 0
	for _, d := range rec.Decisions {
		if d.Action == store.ReviewRevoke {
			revoked++
		} else {
			confirmed++
		}
	}
	fmt.Fprintf(e.stdout, "recorded review %s: %d confirmed, %d revoked\n", rec.ID, confirmed, revoked)
	return nil
}

// ---- pipeline versions and protected namespaces ----

// versionView is the JSON form of a pipeline version; the content itself
// is left out (it is the pushed file).
type versionView struct {
	Namespace  string     `json:"namespace"`
	Pipeline   string     `json:"pipeline"`
	Version    int        `json:"version"`
	Hash       string     `json:"sha256"`
	Author     string     `json:"author"`
	CreatedAt  time.Time  `json:"created_at"`
	Approved   bool       `json:"approved"`
	Approver   string     `json:"approver,omitempty"`
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
	Diff       string     `json:"diff,omitempty"`
}

func viewVersion(v access.Version, withDiff bool) versionView {
	out := versionView{Namespace: v.Namespace, Pipeline: v.Pipeline, Version: v.Number, Hash: v.Hash, Author: v.Author,
		CreatedAt: v.CreatedAt.UTC(), Approved: v.Approved, Approver: v.Approver, ApprovedAt: accessOptTime(v.ApprovedAt)}
	if withDiff {
		out.Diff = v.Diff
	}
	return out
}

// accessVersion is the access package's view of a stored version.
func accessVersion(p store.PipelineVersion) access.Version {
	return access.Version{Namespace: p.Namespace, Pipeline: p.Pipeline, Number: p.Number, Hash: p.Hash, Content: p.Content,
		Author: p.Author, CreatedAt: p.CreatedAt, Diff: p.Diff, Approved: p.ApprovedBy != "", Approver: p.ApprovedBy,
		ApprovedAt: p.ApprovedAt}
}

// splitPipelineRef reads NAMESPACE/NAME.
func splitPipelineRef(s string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q: want NAMESPACE/NAME", s)
	}
	return ns, name, nil
}

func parsePipelineVersion(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("version %q: want a number from 1", s)
	}
	return n, nil
}

func pipelineCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Push, list, compare and approve immutable pipeline versions",
		Long: `Each pushed pipeline file becomes an immutable, numbered version with its
SHA-256 and a diff against the previous one. Someone other than the author
approves it; in a protected namespace only approved versions run on
schedule. See docs/access.md.`,
	}
	return group(cmd, pipelinePushCommand(e), pipelineVersionsCommand(e), pipelineDiffCommand(e), pipelineApproveCommand(e))
}

func pipelinePushCommand(e *env) *cobra.Command {
	return withLocalFlag(&cobra.Command{
		Use:   "push FILE",
		Short: "Validate a pipeline file and store it as a new version (needs pipeline.write)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if r, err := e.remoteFor(cmd); err != nil {
				return err
			} else if r != nil {
				return remotePush(cmd.Context(), e, r, a[0])
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				pl, err := ap.ParsePipeline(a[0])
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				res := access.Resource{Type: access.ResPipeline, Namespace: pl.Namespace, Name: pl.Name}
				if err := e.authorize(ctx, ap, p, access.PipelineWrite, res); err != nil {
					return accessError(err)
				}
				content, err := os.ReadFile(a[0])
				if err != nil {
					return exitWith(ExitFailure, fmt.Errorf("reading pipeline: %w", err))
				}
				prev, err := ap.Store.LatestPipelineVersion(ctx, pl.Namespace, pl.Name)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return exitWith(ExitFailure, fmt.Errorf("reading the latest version of %s/%s: %w", pl.Namespace, pl.Name, err))
				}
				v, err := ap.Access.PushVersion(ctx, p.Subject, pl.Namespace, pl.Name, content)
				if err != nil {
					return accessError(err)
				}
				unchanged := prev.Number == v.Number && prev.Hash == v.Hash
				if e.json() {
					out := struct {
						versionView
						Unchanged bool `json:"unchanged"`
					}{viewVersion(v, true), unchanged}
					return e.writeJSON(out)
				}
				if unchanged {
					fmt.Fprintf(e.stdout, "%s unchanged: same content as version %d (sha256 %s)\n", v, v.Number, v.Hash)
					return nil
				}
				fmt.Fprintf(e.stdout, "pushed %s: version %d, sha256 %s\n", v, v.Number, v.Hash)
				fmt.Fprint(e.stdout, v.Diff)
				fmt.Fprintf(e.stdout, "someone other than %s approves it with: sluice pipeline approve %s/%s %d\n",
					v.Author, v.Namespace, v.Pipeline, v.Number)
				return nil
			})
		},
	})
}

func pipelineVersionsCommand(e *env) *cobra.Command {
	return withLocalFlag(&cobra.Command{
		Use:   "versions NAMESPACE/NAME",
		Short: "List the versions of a pipeline (needs pipeline.read)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ns, name, err := splitPipelineRef(a[0])
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			if r, err := e.remoteFor(cmd); err != nil {
				return err
			} else if r != nil {
				return remoteVersions(cmd.Context(), e, r, ns, name)
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				vs, err := pipelineVersions(ctx, e, ap, p, ns, name)
				if err != nil {
					return err
				}
				return writeVersions(e, vs)
			})
		},
	})
}

// pipelineVersions authorizes pipeline.read (recording a denial) and lists
// the versions; none is an error.
func pipelineVersions(ctx context.Context, e *env, ap *app.App, p Principal, ns, name string) ([]access.Version, error) {
	res := access.Resource{Type: access.ResPipeline, Namespace: ns, Name: name}
	if err := e.authorize(ctx, ap, p, access.PipelineRead, res); err != nil {
		return nil, accessError(err)
	}
	vs, err := ap.Access.Versions(ctx, p.Subject, ns, name)
	if err != nil {
		return nil, accessError(err)
	}
	if len(vs) == 0 {
		return nil, exitWith(ExitFailure, fmt.Errorf("pipeline %s/%s: no versions pushed: %w", ns, name, store.ErrNotFound))
	}
	return vs, nil
}

func pipelineDiffCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "diff NAMESPACE/NAME V1 V2",
		Short: "Show the unified diff between two versions of a pipeline (needs pipeline.read)",
		Args:  args(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ns, name, err := splitPipelineRef(a[0])
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			n1, err := parsePipelineVersion(a[1])
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			n2, err := parsePipelineVersion(a[2])
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				res := access.Resource{Type: access.ResPipeline, Namespace: ns, Name: name}
				if err := e.authorize(ctx, ap, p, access.PipelineRead, res); err != nil {
					return accessError(err)
				}
				var pair [2]access.Version
				for i, n := range []int{n1, n2} {
					v, err := ap.Store.GetPipelineVersion(ctx, ns, name, n)
					if errors.Is(err, store.ErrNotFound) {
						return exitWith(ExitFailure, fmt.Errorf("pipeline %s/%s has no version %d: %w", ns, name, n, err))
					}
					if err != nil {
						return exitWith(ExitFailure, fmt.Errorf("reading %s/%s@%d: %w", ns, name, n, err))
					}
					pair[i] = accessVersion(v)
				}
				v1, v2 := pair[0], pair[1]
				// The stored diff of consecutive versions is the one push
				// printed; other pairs are compared here.
				d := v2.Diff
				if n2 != n1+1 {
					d = string(diff.Diff(v1.String(), v1.Content, v2.String(), v2.Content))
				}
				if e.json() {
					return e.writeJSON(map[string]any{"from": viewVersion(v1, false), "to": viewVersion(v2, false), "diff": d})
				}
				if d == "" {
					fmt.Fprintf(e.stdout, "%s and %s have the same content\n", v1, v2)
					return nil
				}
				fmt.Fprint(e.stdout, d)
				return nil
			})
		},
	}
}

func pipelineApproveCommand(e *env) *cobra.Command {
	return withLocalFlag(&cobra.Command{
		Use:   "approve NAMESPACE/NAME VERSION",
		Short: "Approve another person's pipeline version (needs pipeline.approve)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ns, name, err := splitPipelineRef(a[0])
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			n, err := parsePipelineVersion(a[1])
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			if r, err := e.remoteFor(cmd); err != nil {
				return err
			} else if r != nil {
				return remoteApprove(cmd.Context(), e, r, ns, name, n)
			}
			return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
				res := access.Resource{Type: access.ResPipeline, Namespace: ns, Name: name}
				if err := e.authorize(ctx, ap, p, access.PipelineApprove, res); err != nil {
					return accessError(err)
				}
				v, err := ap.Access.Approve(ctx, p.Subject, ns, name, n)
				if err != nil {
					return accessError(err)
				}
				if e.json() {
					return e.writeJSON(viewVersion(v, false))
				}
				fmt.Fprintf(e.stdout, "approved %s (sha256 %s, author %s)\n", v, v.Hash, v.Author)
				return nil
			})
		},
	})
}

func namespaceCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "namespace",
		Short: "Protect namespaces: only approved pipeline versions run there on schedule",
	}
	for _, protect := range []bool{true, false} {
		use, short := "protect NAMESPACE", "Mark a namespace protected (needs namespace.protect)"
		if !protect {
			use, short = "unprotect NAMESPACE", "Lift a namespace's protection (needs namespace.protect)"
		}
		cmd.AddCommand(&cobra.Command{
			Use:   use,
			Short: short,
			Args:  args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return withPrincipal(cmd.Context(), e, false, func(ctx context.Context, ap *app.App, p Principal) error {
					if err := ap.Access.SetProtected(ctx, p.Subject, a[0], protect); err != nil {
						return accessError(err)
					}
					if e.json() {
						return e.writeJSON(map[string]any{"namespace": a[0], "protected": protect})
					}
					if protect {
						fmt.Fprintf(e.stdout, "namespace %s is protected: only approved versions run on schedule\n", a[0])
					} else {
						fmt.Fprintf(e.stdout, "namespace %s is no longer protected\n", a[0])
					}
					return nil
				})
			},
		})
	}
	return group(cmd)
}
