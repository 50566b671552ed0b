package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/store"
)

// Sign-in, sessions and API tokens.
//
// Signing in and changing a password live under /api/v1/auth/, where the
// server limits attempts per client address and (through
// server.CheckAccount) per account name, so guessing is hopeless from one
// machine or many. Every failure answers with one message whatever the
// cause (unknown user, wrong password, locked account), so the API cannot
// be used to find accounts; the audit log, written by the identity
// service, keeps the real reason.

// sessionRoutes are the sign-in, session and token endpoints.
func (a *API) sessionRoutes() []Route {
	return []Route{
		{Method: http.MethodPost, Pattern: Prefix + "/auth/login", Summary: "sign in with a password and, with MFA, a TOTP or recovery code",
			Rule: Public(), Handle: a.login},
		{Method: http.MethodPost, Pattern: Prefix + "/auth/password", Summary: "change one's password, proving the current one",
			Rule: Public(), Handle: a.changePassword},
		{Method: http.MethodPost, Pattern: Prefix + "/auth/logout", Summary: "end the caller's session",
			Rule: SignedIn(), Handle: a.logout},
		{Method: http.MethodGet, Pattern: Prefix + "/sessions", Summary: "the caller's live sessions",
			Rule: SignedIn(), Handle: a.listSessions},
		{Method: http.MethodDelete, Pattern: Prefix + "/sessions/{id}", Summary: "end a session (one's own, or anyone's with user.manage)",
			Rule: SignedIn(), Handle: a.revokeSession},
		{Method: http.MethodGet, Pattern: Prefix + "/tokens", Summary: "the caller's API tokens, never their values",
			Rule: SignedIn(), Handle: a.listTokens},
		{Method: http.MethodPost, Pattern: Prefix + "/tokens", Summary: "create an API token carrying some of the caller's permissions",
			Rule: SignedIn(), Handle: a.createToken},
		{Method: http.MethodDelete, Pattern: Prefix + "/tokens/{id}", Summary: "revoke an API token (one's own, or anyone's with user.manage)",
			Rule: SignedIn(), Handle: a.revokeToken},
	}
}

// Messages of failed sign-ins. badCredentials covers an unknown user, a
// wrong password and a locked account alike: only an account that exists
// can be locked, so telling "locked" apart would reveal it.
const (
	msgBadCredentials = "sign-in failed: wrong username or password, or too many failed attempts (wait a few minutes)"
	msgCodeRequired   = "a TOTP code is required: send totp_code (or a recovery_code)"
	msgBadCode        = "sign-in failed: the TOTP or recovery code is not valid"
	msgDisabled       = "this account is disabled"
)

// LoginFailure turns an error of the identity service's Login or
// second-factor check (codeStep) into the answer and counts it in
// sluice_auth_failures_total by reason. Store failures stay internal. The
// web UI's sign-in form counts its failures through it too.
func (a *API) LoginFailure(err error, codeStep bool) error {
	reason, msg := "", ""
	switch {
	case errors.Is(err, auth.ErrLocked):
		reason, msg = "locked", msgBadCredentials
	case errors.Is(err, auth.ErrDisabled):
		reason, msg = "disabled", msgDisabled
	case codeStep && (errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrReplay) || errors.Is(err, auth.ErrNotEnrolled)):
		reason, msg = "bad_totp", msgBadCode
	case errors.Is(err, auth.ErrInvalidCredentials):
		reason, msg = "bad_password", msgBadCredentials
	default:
		return err
	}
	a.d.Metrics.AuthFailure(reason)
	return &server.Error{Code: server.CodeUnauthenticated, Message: msg, Err: err}
}

// checkSecondFactor verifies the TOTP or recovery code of a user with MFA
// enrolled. It reports whether the user has MFA: the session is then an
// MFA session. A user without an enrolment signs in without one, and is
// refused every privileged permission (enrolment is done with 'sluice
// login', which shows the secret on the user's own terminal).
func (a *API) checkSecondFactor(ctx context.Context, u auth.User, totp, recovery string) (bool, error) {
	enrolled, err := a.d.Auth.MFAEnrolled(ctx, u.ID)
	if err != nil || !enrolled {
		return false, err
	}
	switch {
	case totp != "":
		err = a.d.Auth.VerifyTOTP(ctx, u.ID, totp)
	case recovery != "":
		err = a.d.Auth.UseRecoveryCode(ctx, u.ID, recovery)
	default:
		return false, &server.Error{Code: server.CodeUnauthenticated, Message: msgCodeRequired}
	}
	if err != nil {
		return false, a.LoginFailure(err, true)
	}
	return true, nil
}

// accountKey is the key of the per-account rate limit: the name as
// typed, folded, so that "Alice" and "alice" share one allowance.
func accountKey(username string) string { return strings.ToLower(strings.TrimSpace(username)) }

func (a *API) login(w http.ResponseWriter, r *http.Request, _ *Call) error {
	var req LoginRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return server.Errorf(server.CodeInvalid, "request body: username and password are required")
	}
	if err := server.CheckAccount(r, accountKey(req.Username)); err != nil {
		return err
	}
	ctx := r.Context()
	u, err := a.d.Auth.Login(ctx, req.Username, req.Password)
	if err != nil {
		return a.LoginFailure(err, false)
	}
	mfa, err := a.checkSecondFactor(ctx, u, req.TOTPCode, req.RecoveryCode)
	if err != nil {
		return err
	}
	if u.MustChangePassword {
		// The password was set by an administrator: it opens nothing
		// but its own replacement.
		return &server.Error{Code: server.CodeForbidden, Message: "the password of " + u.Username +
			" was set by an administrator and must be changed first: POST " + Prefix + "/auth/password"}
	}
	secret, s, err := a.d.Auth.NewSession(ctx, u.ID, auth.MethodPassword, mfa)
	if err != nil {
		return a.LoginFailure(err, false)
	}
	resp := LoginResponse{SessionID: s.ID, ExpiresAt: s.ExpiresAt.UTC(),
		User: Me{Username: u.Username, DisplayName: u.DisplayName, Groups: nonNil(u.Groups), Method: MethodSession,
			MFA: mfa, LastLoginAt: u.LastLoginAt.UTC()}}
	if req.Bearer {
		resp.Secret = secret
	} else {
		// A session cookie (no Max-Age): the server ends the session at
		// its idle or absolute timeout whatever the browser keeps.
		server.SetCookie(w, server.SessionCookie, secret, 0, true)
		if a.d.CSRF != nil {
			resp.CSRFToken = a.d.CSRF.Token(secret)
		}
		resp.User.CSRFToken = resp.CSRFToken
	}
	return WriteJSON(w, http.StatusOK, resp)
}

// PasswordChange changes one's own password (POST /api/v1/auth/password).
// It needs no session, so that a user whose password must be changed can
// do it before signing in; it proves the current password and, when the
// account has MFA, a code as well.
type PasswordChange struct {
	Username        string `json:"username"`
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
	TOTPCode        string `json:"totp_code,omitempty"`
	RecoveryCode    string `json:"recovery_code,omitempty"`
}

func (a *API) changePassword(w http.ResponseWriter, r *http.Request, _ *Call) error {
	var req PasswordChange
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.CurrentPassword == "" || req.NewPassword == "" {
		return server.Errorf(server.CodeInvalid, "request body: username, current_password and new_password are required")
	}
	if err := server.CheckAccount(r, accountKey(req.Username)); err != nil {
		return err
	}
	ctx := r.Context()
	// Login proves the current password with the same cost and the same
	// answer for an unknown account, and applies the lockout.
	u, err := a.d.Auth.Login(ctx, req.Username, req.CurrentPassword)
	if err != nil {
		return a.LoginFailure(err, false)
	}
	if _, err := a.checkSecondFactor(ctx, u, req.TOTPCode, req.RecoveryCode); err != nil {
		return err
	}
	if err := a.d.Auth.ChangePassword(ctx, u.ID, req.CurrentPassword, req.NewPassword); err != nil {
		if errors.Is(err, auth.ErrWeakPassword) {
			return &server.Error{Code: server.CodeInvalid, Message: "new_password: " + err.Error(), Err: err}
		}
		return a.LoginFailure(err, false)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, c *Call) error {
	p := c.Principal
	if p.Method != MethodSession {
		return server.Errorf(server.CodeInvalid, "signing out ends a session; an API token is revoked with DELETE %s/tokens/{id}", Prefix)
	}
	if err := a.d.Auth.RevokeSession(r.Context(), p.User.ID, p.ID); err != nil {
		return err
	}
	if p.Cookie {
		server.ClearCookie(w, server.SessionCookie)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// SessionView is a session without its secret.
type SessionView struct {
	ID            string    `json:"id"`
	Method        string    `json:"method"`
	MFA           bool      `json:"mfa"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	// Current marks the session the request was made with.
	Current bool `json:"current"`
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request, c *Call) error {
	ss, err := a.d.Auth.ListSessions(r.Context(), c.Principal.User.ID)
	if err != nil {
		return err
	}
	views := make([]SessionView, 0, len(ss))
	for _, s := range ss {
		views = append(views, SessionView{ID: s.ID, Method: s.Method, MFA: s.MFA, CreatedAt: s.CreatedAt.UTC(),
			LastSeenAt: s.LastSeenAt.UTC(), IdleExpiresAt: s.IdleExpiresAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
			Current: c.Principal.Method == MethodSession && s.ID == c.Principal.ID})
	}
	page, err := listPage(r, views, func(v SessionView) string { return timeKey(v.CreatedAt) + v.ID })
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, page)
}

// revokeSession ends one of the caller's sessions, or, with user.manage,
// anyone's. A caller without user.manage is refused alike for a session
// of another user and for one that does not exist, so the endpoint tells
// nothing about other people's sessions.
func (a *API) revokeSession(w http.ResponseWriter, r *http.Request, c *Call) error {
	id := r.PathValue("id")
	owner := func(ctx context.Context) (string, error) {
		s, err := a.d.Store.GetSession(ctx, id)
		return s.UserID, err
	}
	if err := revokeOwned(r.Context(), c, "session", id, owner, a.d.Auth.RevokeSession); err != nil {
		return err
	}
	if c.Principal.Cookie && c.Principal.Method == MethodSession && id == c.Principal.ID {
		server.ClearCookie(w, server.SessionCookie)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// TokenView is an API token without its secret: its one JSON form, in the
// API and the CLI.
type TokenView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Scopes     []string  `json:"scopes"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// ViewToken is the JSON form of t.
func ViewToken(t auth.APIToken) TokenView {
	return TokenView{ID: t.ID, Name: t.Name, Scopes: nonNil(t.Scopes), CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC(),
		LastUsedAt: t.LastUsedAt.UTC(), RevokedAt: t.RevokedAt.UTC()}
}

// NewToken asks for an API token (POST /api/v1/tokens).
type NewToken struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// ExpiresAt defaults to DefaultTokenLifetime from now; at most a year.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// CreatedToken is a new token and its secret, shown only in this
// response.
type CreatedToken struct {
	Token  TokenView `json:"token"`
	Secret string    `json:"secret"`
}

// DefaultTokenLifetime is the expiry of a token created without one, as
// for 'sluice token create'.
const DefaultTokenLifetime = 30 * 24 * time.Hour

// errTokenManagesTokens refuses token management with a token: a leaked
// token must not be able to mint others or hide itself.
var errTokenManagesTokens = server.Errorf(server.CodeForbidden, "API tokens are managed from a signed-in session, not with a token")

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, c *Call) error {
	if c.Principal.Method == MethodToken {
		return errTokenManagesTokens
	}
	ts, err := a.d.Auth.ListAPITokens(r.Context(), c.Principal.User.ID)
	if err != nil {
		return err
	}
	views := make([]TokenView, 0, len(ts))
	for _, t := range ts {
		views = append(views, ViewToken(t))
	}
	page, err := listPage(r, views, func(v TokenView) string { return timeKey(v.CreatedAt) + v.ID })
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, page)
}

// createToken makes an API token. Its scopes must be permissions the
// caller holds through a current binding, and none may be privileged:
// privileged permissions need an MFA session, which a token never is, so
// such a scope could only mislead. The access service narrows the token
// to its scope and to the owner's bindings again at every use.
func (a *API) createToken(w http.ResponseWriter, r *http.Request, c *Call) error {
	if c.Principal.Method == MethodToken {
		return errTokenManagesTokens
	}
	var req NewToken
	if err := Decode(r, &req); err != nil {
		return err
	}
	if len(req.Scopes) == 0 {
		return server.Errorf(server.CodeInvalid, "scopes: at least one permission is required")
	}
	perms, err := access.ParsePermissions(req.Scopes)
	if err != nil {
		return &server.Error{Code: server.CodeInvalid, Message: "scopes: " + err.Error(), Err: err}
	}
	ctx := r.Context()
	held, err := a.heldPermissions(ctx, c.Principal.User)
	if err != nil {
		return err
	}
	for _, p := range perms {
		if info, _ := access.Lookup(p); info.Privileged {
			return server.Errorf(server.CodeInvalid, "scopes: %s is privileged and needs an MFA session; a token cannot carry it", p)
		}
		if !held[p] {
			return server.Errorf(server.CodeForbidden, "scopes: no binding of yours grants %s; a token carries only permissions you hold", p)
		}
	}
	if req.ExpiresAt.IsZero() {
		req.ExpiresAt = a.d.Clock.Now().Add(DefaultTokenLifetime)
	}
	secret, t, err := a.d.Auth.CreateAPIToken(ctx, auth.NewAPIToken{Actor: c.Principal.User.ID, OwnerID: c.Principal.User.ID,
		Name: req.Name, Scopes: req.Scopes, ExpiresAt: req.ExpiresAt})
	if errors.Is(err, auth.ErrInvalid) {
		return &server.Error{Code: server.CodeInvalid, Message: err.Error(), Err: err}
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/tokens/"+t.ID)
	return WriteJSON(w, http.StatusCreated, CreatedToken{Token: ViewToken(t), Secret: secret})
}

// heldPermissions returns the permissions u holds through an unexpired
// binding of theirs or of one of their groups, in any namespace.
func (a *API) heldPermissions(ctx context.Context, u auth.User) (map[access.Permission]bool, error) {
	roles, err := a.d.Access.Roles(ctx)
	if err != nil {
		return nil, err
	}
	byRole := map[string][]access.Permission{}
	for _, r := range roles {
		byRole[r.Name] = r.Permissions
	}
	bs, err := a.d.Store.ListBindings(ctx)
	if err != nil {
		return nil, err
	}
	now := a.d.Clock.Now()
	held := map[access.Permission]bool{}
	for _, b := range bs {
		mine := (b.SubjectKind == store.SubjectUser && b.Subject == u.Username) ||
			(b.SubjectKind == store.SubjectGroup && slices.Contains(u.Groups, b.Subject))
		if !mine || (!b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now)) {
			continue
		}
		for _, p := range byRole[b.Role] {
			held[p] = true
		}
	}
	return held, nil
}

// revokeToken revokes one of the caller's tokens or, with user.manage,
// anyone's; as for sessions, others' tokens and unknown ids are refused
// alike to a caller without it.
func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, c *Call) error {
	if c.Principal.Method == MethodToken {
		return errTokenManagesTokens
	}
	id := r.PathValue("id")
	owner := func(ctx context.Context) (string, error) {
		t, err := a.d.Store.GetAPIToken(ctx, id)
		return t.OwnerID, err
	}
	if err := revokeOwned(r.Context(), c, "token", id, owner, a.d.Auth.RevokeAPIToken); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeOwned revokes the session or token id (what names which, for
// messages): the caller may if it is theirs (owner reads its owner's user
// id), or with user.manage. A caller without user.manage is refused alike
// for another user's id and for one that does not exist, so the answer
// tells nothing about other people's sessions and tokens; only a caller
// with it learns that an id does not exist.
func revokeOwned(ctx context.Context, c *Call, what, id string, owner func(context.Context) (string, error),
	revoke func(ctx context.Context, actor, id string) error) error {
	ownerID, err := owner(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	found := err == nil
	if !found || ownerID != c.Principal.User.ID {
		if err := c.Authorize(ctx, access.UserManage, access.Resource{Type: access.ResUser, Name: id}); err != nil {
			return err
		}
		if !found {
			return server.Errorf(server.CodeNotFound, "no %s %q", what, id)
		}
	}
	if err := revoke(ctx, c.Principal.User.ID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return server.Errorf(server.CodeNotFound, "no %s %q", what, id)
		}
		return err
	}
	return nil
}
