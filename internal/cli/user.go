package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/store"
)

// Identity commands: init, login, logout, whoami, user, token.

// defaultAdmin is the first user 'sluice init' creates without --admin.
const defaultAdmin = "admin"

// newPassword returns a random initial password: 26 characters of base32
// from crypto/rand (130 bits), which the user must change at first login.
func newPassword() string { return rand.Text() }

// prompter reads the answers a command asks for, one per line: from the
// terminal without echo, or from stdin for scripts (each answer on its own
// line, in the order the command asks).
type prompter struct {
	e  *env
	tt *os.File // the terminal, or nil
	r  *bufio.Reader
}

func newPrompter(e *env) *prompter {
	p := &prompter{e: e}
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tt = f
	} else {
		p.r = bufio.NewReader(e.stdin)
	}
	return p
}

// secret asks for a value not echoed; io.EOF when stdin has no more lines.
func (p *prompter) secret(prompt string) (string, error) {
	if p.tt != nil {
		fmt.Fprintf(p.e.stderr, "%s: ", prompt)
		v, err := term.ReadPassword(int(p.tt.Fd()))
		fmt.Fprintln(p.e.stderr)
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", prompt, err)
		}
		return string(v), nil
	}
	line, err := p.r.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", io.EOF
		}
		return "", fmt.Errorf("reading %s from stdin: %w", prompt, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// authError turns the identity service's sentinel errors into failures
// (exit 1) and bad arguments into usage errors (exit 2).
func authError(err error) error {
	switch {
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrWeakPassword), errors.Is(err, access.ErrUnknownPermission):
		return exitWith(ExitUsage, err)
	default:
		return exitWith(ExitFailure, err)
	}
}

// privilegedRoles returns the privileged roles u holds, directly or
// through a group: these require MFA.
func privilegedRoles(ctx context.Context, a *app.App, u auth.User) ([]string, error) {
	roles, err := a.Access.Roles(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	priv := map[string]bool{}
	for _, r := range roles {
		priv[r.Name] = r.Privileged
	}
	bs, err := a.Store.ListBindings(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing bindings: %w", err)
	}
	var out []string
	for _, b := range userBindings(bs, u) {
		if priv[b.Role] && !slices.Contains(out, b.Role) {
			out = append(out, b.Role)
		}
	}
	return out, nil
}

// userBindings are the bindings naming u or one of its groups.
func userBindings(bs []store.Binding, u auth.User) []store.Binding {
	var out []store.Binding
	for _, b := range bs {
		if (b.SubjectKind == store.SubjectUser && b.Subject == u.Username) ||
			(b.SubjectKind == store.SubjectGroup && slices.Contains(u.Groups, b.Subject)) {
			out = append(out, b)
		}
	}
	return out
}

func initCommand(e *env) *cobra.Command {
	var admins []string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the first users and turn access control on (once, for good)",
		Long: `Init ends bootstrap mode. A state directory without users is a
single-operator installation: whoever runs sluice on the host may do
everything. Init creates the first users (--admin, repeatable; default
"admin"), each with a random password printed once that must be changed at
first login, and gives them the security-engineer role. From then on every
command needs a signed-in user ('sluice login') or an API token
(SLUICE_TOKEN). There is no way back: users can be disabled, not deleted.

Give two administrators, so that privileged roles can be granted under the
two-person rule (one requests, another approves) from the start.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(admins) == 0 {
				admins = []string{defaultAdmin}
			}
			for _, n := range admins {
				if err := auth.CheckUsername(n); err != nil {
					return exitWith(ExitUsage, fmt.Errorf("--admin: %w", err))
				}
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, a *app.App, _ *progress) error {
				users, err := a.Store.ListUsers(ctx)
				if err != nil {
					return fmt.Errorf("checking for users: %w", err)
				}
				if len(users) > 0 {
					return exitWith(ExitFailure, errors.New("this state directory already has users: sign in with 'sluice login USER' and add users with 'sluice user add'"))
				}
				type created struct {
					Username string `json:"username"`
					Password string `json:"password"`
				}
				var out []created
				for _, n := range admins {
					pw := newPassword()
					if _, err := a.Auth.CreateUser(ctx, auth.NewUser{Actor: actor(e), Username: n, Password: pw, MustChangePassword: true}); err != nil {
						return authError(err)
					}
					out = append(out, created{n, pw})
				}
				if _, err := a.Access.Bootstrap(ctx, access.RoleSecurityEngineer, admins...); err != nil {
					return exitWith(ExitFailure, err)
				}
				if e.json() {
					return e.writeJSON(map[string]any{"users": out, "role": access.RoleSecurityEngineer})
				}
				fmt.Fprintln(e.stdout, "Access control is on. Initial passwords, shown only this once:")
				for _, c := range out {
					fmt.Fprintf(e.stdout, "  %s  %s\n", c.Username, c.Password)
				}
				fmt.Fprintf(e.stdout, "Each holds the %s role. Next steps:\n"+
					"  1. sluice login %s          (choose a new password, enrol an authenticator app)\n"+
					"  2. sluice user add NAME      (one account per person)\n"+
					"  3. sluice binding grant NAME ROLE  (give them roles; privileged roles: sluice access request;\n"+
					"                                     see docs/identity.md)\n",
					access.RoleSecurityEngineer, out[0].Username)
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&admins, "admin", nil, `username of a first administrator (repeatable; default "admin")`)
	return cmd
}

func loginCommand(e *env) *cobra.Command {
	var (
		code, serverURL, caFile string
		recovery                bool
	)
	cmd := &cobra.Command{
		Use:   "login USER",
		Short: "Sign in and save a session for this state directory",
		Long: `Login asks for the password (without echo on a terminal; from stdin
otherwise, one answer per line in the order asked: password, then the new
password when it must be changed, then the TOTP code when --code is not
given). A user with an authenticator enrolled gives its code (--code, or
--recovery with a recovery code). A user holding a privileged role without
MFA enrols now: the otpauth URI and the recovery codes are printed once,
and a first code confirms the enrolment (or run 'sluice login USER --code
CODE' again to confirm it). The session is saved, mode 0600, under the
user configuration directory (SLUICE_CONFIG_DIR overrides it).

With --server URL, login signs in to a running 'sluice server' instead: the
password, then the TOTP code when the server asks for one, go to the
server, and the session is saved for it. From then on runs, show, logs,
trigger, pipeline push / approve / versions, whoami and logout act on that
server as this user (--local acts on the state directory; 'sluice logout'
ends the login). The server's certificate is always verified, against the
system's roots or, with --ca-cert FILE (e.g. the server's <state
dir>/tls/server.crt), against the certificates in FILE, which are saved
with the login. http:// URLs are refused except for a loopback host.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			name := a[0]
			if serverURL != "" {
				return remoteLogin(cmd.Context(), e, serverURL, caFile, name, code, recovery)
			}
			if caFile != "" {
				return exitWith(ExitUsage, errors.New("--ca-cert goes with --server"))
			}
			pr := newPrompter(e)
			pw, err := pr.secret("password for " + name)
			if err != nil {
				return exitWith(ExitUsage, fmt.Errorf("no password given: %w", err))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				u, err := ap.Auth.Login(ctx, name, pw)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if u.MustChangePassword {
					np, err := pr.secret("new password (the current one was set for you and must be changed)")
					if err != nil {
						return exitWith(ExitFailure, fmt.Errorf("%s must choose a new password: give it on a terminal, or as the next line of stdin: %w", name, err))
					}
					if err := ap.Auth.ChangePassword(ctx, u.ID, pw, np); err != nil {
						return authError(err)
					}
					fmt.Fprintln(e.stderr, "password changed")
				}
				mfa, err := secondFactor(ctx, e, ap, pr, u, code, recovery)
				if err != nil {
					return err
				}
				secret, s, err := ap.Auth.NewSession(ctx, u.ID, auth.MethodPassword, mfa)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				path, err := e.sessionPath(ap.Config.Home)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if old, err := readSession(path); err == nil && old != "" {
					// Signing in again replaces the saved session: end it.
					if olds, ou, err := ap.Auth.AuthenticateSession(ctx, old); err == nil {
						_ = ap.Auth.RevokeSession(ctx, ou.ID, olds.ID)
					}
				}
				if err := writeSession(path, savedSession{Home: ap.Config.Home, User: u.Username, Session: secret}); err != nil {
					return exitWith(ExitFailure, err)
				}
				if e.json() {
					return e.writeJSON(map[string]any{"user": u.Username, "mfa": mfa, "session": s.ID, "expires_at": s.ExpiresAt})
				}
				fmt.Fprintf(e.stdout, "signed in as %s (MFA: %t) until %s at the latest\n", u.Username, mfa, s.ExpiresAt.Local().Format(time.DateTime))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&code, "code", "", "TOTP code from the authenticator app")
	cmd.Flags().BoolVar(&recovery, "recovery", false, "--code is a recovery code")
	cmd.Flags().StringVar(&serverURL, "server", "", "sign in to this server (https://HOST:PORT) instead of the state directory")
	cmd.Flags().StringVar(&caFile, "ca-cert", "", "with --server: trust only the PEM certificates in this file for the server")
	return cmd
}

// secondFactor verifies the user's TOTP code, or enrols one when the
// user's roles are privileged and none is enrolled; it returns whether
// the session has MFA.
func secondFactor(ctx context.Context, e *env, ap *app.App, pr *prompter, u auth.User, code string, recovery bool) (bool, error) {
	t, err := ap.Store.GetTOTP(ctx, u.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("reading the TOTP enrolment: %w", err)
	case !t.ConfirmedAt.IsZero():
		if code == "" {
			if code, err = pr.secret("authenticator code"); err != nil {
				return false, exitWith(ExitFailure, fmt.Errorf("%s has an authenticator: give its code with --code: %w", u.Username, err))
			}
		}
		if recovery {
			err = ap.Auth.UseRecoveryCode(ctx, u.ID, code)
		} else {
			err = ap.Auth.VerifyTOTP(ctx, u.ID, code)
		}
		if err != nil {
			return false, exitWith(ExitFailure, err)
		}
		return true, nil
	case code != "":
		// An enrolment printed by an earlier login, confirmed now.
		if err := ap.Auth.ConfirmTOTP(ctx, u.ID, code); err != nil {
			return false, exitWith(ExitFailure, err)
		}
		fmt.Fprintln(e.stderr, "authenticator enrolled")
		return true, nil
	}
	priv, err := privilegedRoles(ctx, ap, u)
	if err != nil {
		return false, err
	}
	if len(priv) == 0 {
		return false, nil
	}
	en, err := ap.Auth.EnrollTOTP(ctx, u.ID)
	if err != nil {
		return false, exitWith(ExitFailure, err)
	}
	fmt.Fprintf(e.stdout, "%s holds %s, which requires MFA. Add this to an authenticator app:\n  %s\n"+
		"Recovery codes, each usable once, shown only now (keep them offline):\n", u.Username, strings.Join(priv, ", "), en.URI)
	for _, c := range en.RecoveryCodes {
		fmt.Fprintf(e.stdout, "  %s\n", c)
	}
	first, err := pr.secret("first code from the authenticator app")
	if err != nil {
		return false, exitWith(ExitFailure, fmt.Errorf("confirm the enrolment with 'sluice login %s --code CODE': %w", u.Username, err))
	}
	if err := ap.Auth.ConfirmTOTP(ctx, u.ID, first); err != nil {
		return false, exitWith(ExitFailure, err)
	}
	fmt.Fprintln(e.stderr, "authenticator enrolled")
	return true, nil
}

func logoutCommand(e *env) *cobra.Command {
	return withLocalFlag(&cobra.Command{
		Use:   "logout",
		Short: "End the server login, or the session saved for this state directory",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			onServer := func(ctx context.Context, r *remote) error { return remoteLogout(ctx, e, r) }
			return e.remoteOrApp(cmd, onServer, func(ctx context.Context, ap *app.App, _ *progress) error {
				path, err := e.sessionPath(ap.Config.Home)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				secret, err := readSession(path)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if secret == "" {
					return exitWith(ExitFailure, errors.New("not signed in"))
				}
				if s, u, err := ap.Auth.AuthenticateSession(ctx, secret); err == nil {
					if err := ap.Auth.RevokeSession(ctx, u.ID, s.ID); err != nil {
						return exitWith(ExitFailure, err)
					}
				}
				if err := os.Remove(path); err != nil {
					return exitWith(ExitFailure, fmt.Errorf("removing the saved session: %w", err))
				}
				if !e.json() {
					fmt.Fprintln(e.stdout, "signed out")
				}
				return nil
			})
		},
	})
}

func whoamiCommand(e *env) *cobra.Command {
	return withLocalFlag(&cobra.Command{
		Use:   "whoami",
		Short: "Show who sluice takes you for, and your roles (or, signed in to a server, which server)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			onServer := func(ctx context.Context, r *remote) error { return remoteWhoami(ctx, e, r) }
			return e.remoteOrApp(cmd, onServer, func(ctx context.Context, ap *app.App, _ *progress) error {
				p, err := e.principal(ctx, ap)
				if err != nil {
					return err
				}
				type bindingView struct {
					Role      string `json:"role"`
					Namespace string `json:"namespace,omitempty"`
					Via       string `json:"via"`
				}
				v := struct {
					Actor     string        `json:"actor"`
					Bootstrap bool          `json:"bootstrap"`
					Groups    []string      `json:"groups,omitempty"`
					MFA       bool          `json:"mfa"`
					Scope     []string      `json:"token_scope,omitempty"`
					Bindings  []bindingView `json:"bindings"`
				}{Actor: p.Actor, Bootstrap: p.Local(), Groups: p.Subject.Groups, MFA: p.Subject.MFA, Bindings: []bindingView{}}
				for _, s := range p.Subject.TokenScope {
					v.Scope = append(v.Scope, string(s))
				}
				if p.User != nil {
					bs, err := ap.Store.ListBindings(ctx)
					if err != nil {
						return fmt.Errorf("listing bindings: %w", err)
					}
					for _, b := range userBindings(bs, *p.User) {
						v.Bindings = append(v.Bindings, bindingView{Role: b.Role, Namespace: b.Namespace, Via: b.SubjectKind + ":" + b.Subject})
					}
				}
				if e.json() {
					return e.writeJSON(v)
				}
				if p.Local() {
					fmt.Fprintf(e.stdout, "%s (bootstrap mode: this state directory has no users; 'sluice init' turns access control on)\n", p.Actor)
					return nil
				}
				fmt.Fprintf(e.stdout, "%s (MFA: %t)\n", p.Actor, v.MFA)
				if len(v.Groups) > 0 {
					fmt.Fprintf(e.stdout, "groups: %s\n", strings.Join(v.Groups, ", "))
				}
				if v.Scope != nil {
					fmt.Fprintf(e.stdout, "token scope: %s\n", strings.Join(v.Scope, ", "))
				}
				for _, b := range v.Bindings {
					ns := b.Namespace
					if ns == "" {
						ns = "(global)"
					}
					fmt.Fprintf(e.stdout, "role %s in %s via %s\n", b.Role, ns, b.Via)
				}
				return nil
			})
		},
	})
}

func userCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage user accounts (security engineers) and your own password",
	}
	return group(cmd, userAddCommand(e), userListCommand(e), userEnableCommand(e, "disable", true),
		userEnableCommand(e, "enable", false), userPasswdCommand(e))
}

// signedInUser is signedIn for commands that need a signed-in account:
// the local operator is told to run 'sluice init' first.
func (e *env) signedInUser(ctx context.Context, a *app.App, perm access.Permission, res access.Resource) (Principal, error) {
	p, err := e.principal(ctx, a)
	if err != nil {
		return Principal{}, err
	}
	if p.Local() {
		return Principal{}, exitWith(ExitFailure, errors.New("this state directory has no users yet: create the first ones with 'sluice init'"))
	}
	if perm != "" {
		if err := e.authorize(ctx, a, p, perm, res); err != nil {
			return Principal{}, err
		}
	}
	return p, nil
}

type userView struct {
	Username           string    `json:"username"`
	Groups             []string  `json:"groups"`
	Disabled           bool      `json:"disabled"`
	MustChangePassword bool      `json:"must_change_password"`
	MFA                bool      `json:"mfa"`
	LastLoginAt        time.Time `json:"last_login_at,omitzero"`
	CreatedAt          time.Time `json:"created_at"`
}

func userAddCommand(e *env) *cobra.Command {
	var (
		groups  []string
		display string
	)
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a user with a random initial password, printed once, to be changed at first login",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				p, err := e.signedInUser(ctx, ap, access.UserManage, access.Resource{Type: access.ResUser, Name: a[0]})
				if err != nil {
					return err
				}
				pw := newPassword()
				u, err := ap.Auth.CreateUser(ctx, auth.NewUser{Actor: p.User.ID, Username: a[0], DisplayName: display,
					Groups: groups, Password: pw, MustChangePassword: true})
				if err != nil {
					return authError(err)
				}
				if e.json() {
					return e.writeJSON(map[string]any{"username": u.Username, "groups": u.Groups, "password": pw})
				}
				fmt.Fprintf(e.stdout, "user %s created. Initial password, shown only now: %s\n"+
					"They choose their own at first 'sluice login %s'.\n", u.Username, pw, u.Username)
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&groups, "group", nil, "group the user belongs to (repeatable)")
	cmd.Flags().StringVar(&display, "display-name", "", "the person's name, for listings")
	return cmd
}

func userListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedInUser(ctx, ap, access.UserManage, access.Resource{Type: access.ResUser}); err != nil {
					return err
				}
				us, err := ap.Auth.ListUsers(ctx)
				if err != nil {
					return err
				}
				views := make([]userView, 0, len(us))
				for _, u := range us {
					mfa, err := ap.Auth.MFAEnrolled(ctx, u.ID)
					if err != nil {
						return err
					}
					views = append(views, userView{Username: u.Username, Groups: u.Groups, Disabled: u.Disabled,
						MustChangePassword: u.MustChangePassword, MFA: mfa, LastLoginAt: u.LastLoginAt, CreatedAt: u.CreatedAt})
				}
				if e.json() {
					return e.writeJSON(views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USER\tGROUPS\tSTATUS\tMFA\tLAST LOGIN")
				for _, v := range views {
					status := "active"
					switch {
					case v.Disabled:
						status = "disabled"
					case v.MustChangePassword:
						status = "must change password"
					}
					last := "never"
					if !v.LastLoginAt.IsZero() {
						last = v.LastLoginAt.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", v.Username, strings.Join(v.Groups, ","), status, v.MFA, last)
				}
				return tw.Flush()
			})
		},
	}
}

func userEnableCommand(e *env, verb string, disable bool) *cobra.Command {
	short := "Enable a disabled user"
	if disable {
		short = "Disable a user: their sessions end now and they cannot sign in"
	}
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				p, err := e.signedInUser(ctx, ap, access.UserManage, access.Resource{Type: access.ResUser, Name: a[0]})
				if err != nil {
					return err
				}
				u, err := ap.Auth.UserByName(ctx, a[0])
				if errors.Is(err, auth.ErrNotFound) {
					return exitWith(ExitFailure, fmt.Errorf("no user %q (list them with 'sluice user list')", a[0]))
				}
				if err != nil {
					return err
				}
				if disable && u.ID == p.User.ID {
					return exitWith(ExitFailure, errors.New("you may not disable your own account"))
				}
				if _, err := ap.Auth.UpdateUser(ctx, u.ID, auth.UserUpdate{Actor: p.User.ID, Disabled: &disable}); err != nil {
					return authError(err)
				}
				if e.json() {
					return e.writeJSON(map[string]any{"username": u.Username, "disabled": disable})
				}
				fmt.Fprintf(e.stdout, "user %s %sd\n", u.Username, verb)
				return nil
			})
		},
	}
}

func userPasswdCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd",
		Short: "Change your own password (asks the current one, then the new one)",
		Long: `Passwd changes the signed-in user's password. It asks for the current
password and the new one, without echo on a terminal, or as two lines of
stdin. Every session of the user ends: sign in again afterwards.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				p, err := e.signedInUser(ctx, ap, "", access.Resource{})
				if err != nil {
					return err
				}
				pr := newPrompter(e)
				cur, err := pr.secret("current password")
				if err != nil {
					return exitWith(ExitUsage, fmt.Errorf("no current password given: %w", err))
				}
				np, err := pr.secret("new password")
				if err != nil {
					return exitWith(ExitUsage, fmt.Errorf("no new password given: %w", err))
				}
				if err := ap.Auth.ChangePassword(ctx, p.User.ID, cur, np); err != nil {
					return authError(err)
				}
				if path, err := e.sessionPath(ap.Config.Home); err == nil {
					_ = os.Remove(path) // revoked with every other session
				}
				if !e.json() {
					fmt.Fprintf(e.stdout, "password changed; sign in again with 'sluice login %s'\n", p.User.Username)
				}
				return nil
			})
		},
	}
}

func tokenCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage your API tokens (for scripts: SLUICE_TOKEN)",
	}
	return group(cmd, tokenCreateCommand(e), tokenListCommand(e), tokenRevokeCommand(e))
}

// parseExpiry reads "30d" or a Go duration ("12h").
func parseExpiry(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("--expires %q: want a number of days like 30d, or a duration like 12h", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: want a number of days like 30d, or a duration like 12h", s)
	}
	return d, nil
}

// tokenUser is the signed-in user for token commands; a token cannot
// manage tokens, so that a leaked one cannot mint others.
func (e *env) tokenUser(ctx context.Context, ap *app.App) (Principal, error) {
	p, err := e.signedInUser(ctx, ap, "", access.Resource{})
	if err != nil {
		return Principal{}, err
	}
	if p.Subject.TokenScope != nil {
		return Principal{}, exitWith(ExitFailure, errors.New("API tokens are managed from a signed-in session, not with a token"))
	}
	return p, nil
}

// ownTokens is the signed-in user for token commands and their API
// tokens: what listing and revoking them both start from.
func (e *env) ownTokens(ctx context.Context, ap *app.App) (Principal, []auth.APIToken, error) {
	p, err := e.tokenUser(ctx, ap)
	if err != nil {
		return Principal{}, nil, err
	}
	ts, err := ap.Auth.ListAPITokens(ctx, p.User.ID)
	if err != nil {
		return Principal{}, nil, err
	}
	return p, ts, nil
}

func tokenCreateCommand(e *env) *cobra.Command {
	var (
		name    string
		expires string
		scopes  []string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --expires 30d --scope PERMISSION...",
		Short: "Create an API token carrying some of your permissions; printed once",
		Long: `Create makes an API token for scripts (set it in SLUICE_TOKEN). It carries
only the permissions given with --scope, and only as far as your roles grant
them. A token is not a second factor: privileged permissions, which need an
MFA session, are refused to it.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return exitWith(ExitUsage, errors.New("--name is required: say what the token is for"))
			}
			if len(scopes) == 0 {
				return exitWith(ExitUsage, errors.New("at least one --scope PERMISSION is required"))
			}
			d, err := parseExpiry(expires)
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			if _, err := access.ParsePermissions(scopes); err != nil {
				return exitWith(ExitUsage, fmt.Errorf("--scope: %w", err))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				p, err := e.tokenUser(ctx, ap)
				if err != nil {
					return err
				}
				secret, t, err := ap.Auth.CreateAPIToken(ctx, auth.NewAPIToken{Actor: p.User.ID, OwnerID: p.User.ID,
					Name: name, Scopes: scopes, ExpiresAt: time.Now().Add(d)})
				if err != nil {
					return authError(err)
				}
				if e.json() {
					return e.writeJSON(map[string]any{"token": secret, "id": t.ID, "name": t.Name, "scopes": t.Scopes, "expires_at": t.ExpiresAt})
				}
				fmt.Fprintf(e.stdout, "token %s (%s), expires %s. Shown only now:\n%s\n", t.ID, t.Name,
					t.ExpiresAt.Local().Format(time.DateTime), secret)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "what the token is for")
	f.StringVar(&expires, "expires", "30d", "lifetime: days (30d) or a duration (12h); at most a year")
	f.StringArrayVar(&scopes, "scope", nil, "a permission the token carries (repeatable)")
	return cmd
}

func tokenListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your API tokens (never their values)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				_, ts, err := e.ownTokens(ctx, ap)
				if err != nil {
					return err
				}
				views := make([]api.TokenView, 0, len(ts))
				for _, t := range ts {
					views = append(views, api.ViewToken(t))
				}
				if e.json() {
					return e.writeJSON(views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tEXPIRES\tSTATUS")
				for _, v := range views {
					status := "active"
					if !v.RevokedAt.IsZero() {
						status = "revoked"
					} else if time.Now().After(v.ExpiresAt) {
						status = "expired"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, strings.Join(v.Scopes, ","),
						v.ExpiresAt.Local().Format(time.DateTime), status)
				}
				return tw.Flush()
			})
		},
	}
}

func tokenRevokeCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke one of your API tokens",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				p, ts, err := e.ownTokens(ctx, ap)
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(ts, func(t auth.APIToken) bool { return t.ID == a[0] }) {
					return exitWith(ExitFailure, fmt.Errorf("you have no token %q (list them with 'sluice token list')", a[0]))
				}
				if err := ap.Auth.RevokeAPIToken(ctx, p.User.ID, a[0]); err != nil {
					return authError(err)
				}
				if e.json() {
					return e.writeJSON(map[string]string{"revoked": a[0]})
				}
				fmt.Fprintf(e.stdout, "token %s revoked\n", a[0])
				return nil
			})
		},
	}
}
