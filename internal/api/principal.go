package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/server"
)

// Credential kinds, in Principal.Method.
const (
	// MethodSession: a session secret, from the session cookie (browser)
	// or an Authorization: Bearer header (the CLI after 'sluice login
	// --server').
	MethodSession = "session"
	// MethodToken: an API token (slu_...) in Authorization: Bearer.
	MethodToken = "token"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	// Actor names them in the audit log: "user:alice".
	Actor   string
	Subject access.Subject
	User    auth.User
	// Method is MethodSession or MethodToken; ID is the session's or the
	// token's id.
	Method, ID string
	// Cookie is true when the credential came in the session cookie, so
	// the response may refresh browser state (the CSRF token).
	Cookie bool
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal that Authenticate put on ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

var errNoCredential = &server.Error{Code: server.CodeUnauthenticated, Message: "sign in, or send an API token as Authorization: Bearer"}

// Authenticate resolves the caller of r: a bearer credential in the
// Authorization header (an API token, or a session secret saved by the
// CLI) takes precedence over the session cookie. A request with neither,
// or with one that does not authenticate, gets an unauthenticated error;
// failures are counted in sluice_auth_failures_total (the auth service has
// already written them to the audit log).
func (a *API) Authenticate(r *http.Request) (Principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
			a.d.Metrics.AuthFailure("malformed_header")
			return Principal{}, &server.Error{Code: server.CodeUnauthenticated, Message: "the Authorization header must be 'Bearer <token>'"}
		}
		if strings.HasPrefix(secret, auth.TokenPrefix) {
			t, u, err := a.d.Auth.AuthenticateToken(ctx, secret)
			if err != nil {
				return Principal{}, a.authFailed("bad_token", err)
			}
			scope, err := access.ParsePermissions(t.Scopes)
			if err != nil || scope == nil {
				// A scope that no longer parses (a permission removed
				// since) must narrow to nothing, never widen to all.
				scope = []access.Permission{}
			}
			return principalOf(u, MethodToken, t.ID, false, scope, false), nil
		}
		s, u, err := a.d.Auth.AuthenticateSession(ctx, secret)
		if err != nil {
			return Principal{}, a.authFailed("bad_session", err)
		}
		return principalOf(u, MethodSession, s.ID, s.MFA, nil, false), nil
	}
	if ck, err := r.Cookie(server.SessionCookie); err == nil && ck.Value != "" {
		s, u, err := a.d.Auth.AuthenticateSession(ctx, ck.Value)
		if err != nil {
			return Principal{}, a.authFailed("bad_session", err)
		}
		return principalOf(u, MethodSession, s.ID, s.MFA, nil, true), nil
	}
	return Principal{}, errNoCredential
}

func principalOf(u auth.User, method, id string, mfa bool, scope []access.Permission, cookie bool) Principal {
	return Principal{
		Actor:   "user:" + u.Username,
		Subject: access.Subject{User: u.Username, Groups: u.Groups, MFA: mfa, TokenScope: scope},
		User:    u, Method: method, ID: id, Cookie: cookie,
	}
}

// authFailed counts a failed authentication and turns err into the error
// the caller sees: one message whatever the reason, so a caller cannot
// tell a revoked credential from one that never existed; store failures
// stay internal.
func (a *API) authFailed(reason string, err error) error {
	for _, known := range []error{auth.ErrInvalidCredentials, auth.ErrExpired, auth.ErrRevoked, auth.ErrDisabled} {
		if errors.Is(err, known) {
			a.d.Metrics.AuthFailure(reason)
			return &server.Error{Code: server.CodeUnauthenticated, Message: "the credential is not valid; sign in again", Err: err}
		}
	}
	return err
}

// Authorize decides whether p may use perm on res. The access service
// records privileged decisions itself; a denial of any other permission
// is recorded here, so that every refusal is in the audit log. Denials
// are counted in sluice_access_denied_total and answered 403 with the
// reason, which names the missing permission but no binding.
func (a *API) Authorize(ctx context.Context, p Principal, perm access.Permission, res access.Resource) error {
	d, err := a.d.Access.Authorize(ctx, p.Subject, perm, res)
	if err == nil {
		return nil
	}
	if !errors.Is(err, access.ErrDenied) {
		return err
	}
	a.d.Metrics.Denied(string(perm))
	if info, known := access.Lookup(perm); !known || !info.Privileged {
		ev := audit.Event{
			Actor: p.Actor, Action: access.ActDecide, Resource: string(res.Type) + ":" + res.Name,
			Outcome: audit.OutcomeDenied, Reason: d.Reason, Source: audit.SourceAPI,
			Details: map[string]string{"permission": string(perm), "mfa": strconv.FormatBool(p.Subject.MFA)},
		}
		if res.Namespace != "" {
			ev.Details["namespace"] = res.Namespace
		}
		if rerr := audit.Record(ctx, a.d.Store, ev); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return &server.Error{Code: server.CodeForbidden, Message: "not allowed: " + d.Reason, Err: err}
}

// May reports whether p may use perm on res, for filtering listings and
// for deciding which actions a page offers: nothing is recorded, since
// nothing is acted on.
func (a *API) May(ctx context.Context, p Principal, perm access.Permission, res access.Resource) bool {
	return a.d.Access.Decide(ctx, p.Subject, perm, res).Allowed
}

// May is API.May for the call's principal.
func (c *Call) May(ctx context.Context, perm access.Permission, res access.Resource) bool {
	return c.API.May(ctx, c.Principal, perm, res)
}

// Authorize is API.Authorize for the call's principal, for handlers that
// decide on a resource only known after reading the request body.
func (c *Call) Authorize(ctx context.Context, perm access.Permission, res access.Resource) error {
	return c.API.Authorize(ctx, c.Principal, perm, res)
}
