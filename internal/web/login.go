package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/server"
)

// loginView is the model of the sign-in page.
type loginView struct {
	Next     string
	Username string
	Error    string
}

// errSignIn is the one message every failed sign-in gets, whatever failed
// (unknown user, wrong password, wrong or replayed code, locked or
// disabled account), so the page tells an attacker nothing.
const errSignIn = "Sign-in failed. Check your username, password and authenticator code, then try again."

// safeNext keeps a post-login redirect on this site: a local absolute path,
// never "//host" or a scheme.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/pipelines"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/pipelines"
	}
	return next
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	_, err := u.d.API.Authenticate(r)
	if err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	// A stale session cookie is cleared, so showing the form again does
	// not record another failed session check.
	dropStaleSession(w, r, err)
	u.render(w, r, http.StatusOK, "login", nil, "Sign in", loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks the password, then the second factor when the user has
// an authenticator (a TOTP code, or a recovery code written with dashes),
// opens a session and sets it as a strict cookie. Accounts whose password
// was set by an administrator must change it with `sluice login` first.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx := r.Context()
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	code := strings.TrimSpace(r.PostFormValue("code"))
	view := loginView{Next: safeNext(r.PostFormValue("next")), Username: username, Error: errSignIn}
	codeStep := false
	refuse := func(err error) {
		if err != nil && !isAuthFailure(err) {
			server.Logger(ctx).Error("sign-in failed", slog.String(keyError, err.Error()))
		}
		if err != nil {
			_ = u.d.API.LoginFailure(err, codeStep) // counts it by reason
		}
		u.render(w, r, http.StatusUnauthorized, "login", nil, "Sign in", view)
	}
	if username == "" || password == "" {
		refuse(nil)
		return
	}
	// The form is rate limited like the API's sign-in: per client address
	// by the server's middleware, per account here.
	if err := server.CheckAccount(r, strings.ToLower(username)); err != nil {
		var se *server.Error
		if errors.As(err, &se) && se.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(se.RetryAfter.Seconds())+1))
		}
		view.Error = "Too many sign-in attempts for this account; wait a few minutes and try again."
		u.render(w, r, http.StatusTooManyRequests, "login", nil, "Sign in", view)
		return
	}
	usr, err := u.d.Auth.Login(ctx, username, password)
	if err != nil {
		refuse(err)
		return
	}
	enrolled, err := u.d.Auth.MFAEnrolled(ctx, usr.ID)
	if err != nil {
		refuse(err)
		return
	}
	mfa := false
	codeStep = true
	if enrolled {
		switch {
		case code == "":
			refuse(nil)
			return
		case strings.Contains(code, "-"):
			err = u.d.Auth.UseRecoveryCode(ctx, usr.ID, code)
		default:
			err = u.d.Auth.VerifyTOTP(ctx, usr.ID, code)
		}
		if err != nil {
			refuse(err)
			return
		}
		mfa = true
	}
	// Only once the second factor is proven: before, saying that the
	// password must be changed would tell whoever has only the password
	// that it is right.
	if usr.MustChangePassword {
		view.Error = "This account must choose a new password before it can sign in: run 'sluice login'."
		u.render(w, r, http.StatusUnauthorized, "login", nil, "Sign in", view)
		return
	}
	secret, _, err := u.d.Auth.NewSession(ctx, usr.ID, auth.MethodPassword, mfa)
	if err != nil {
		refuse(err)
		return
	}
	// Strict: the browser never sends the session on a request another
	// site started, not even a top-level link. A session cookie (no
	// Max-Age), as the API sets: the server ends the session at its idle
	// or absolute timeout whatever the browser keeps.
	server.SetCookie(w, server.SessionCookie, secret, 0, true)
	http.Redirect(w, r, view.Next, http.StatusSeeOther)
}

// isAuthFailure reports errors that are the caller's, not the server's.
func isAuthFailure(err error) bool {
	for _, e := range []error{auth.ErrInvalidCredentials, auth.ErrLocked, auth.ErrDisabled, auth.ErrReplay,
		auth.ErrNotEnrolled, auth.ErrExpired, auth.ErrRevoked} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// logout ends the session (the CSRF guard has checked the form's token)
// and clears the cookie.
func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if p, err := u.d.API.Authenticate(r); err == nil {
		if err := u.d.Auth.RevokeSession(r.Context(), p.User.ID, p.ID); err != nil {
			server.Logger(r.Context()).Error("ending session", slog.String(keyError, err.Error()))
		}
	}
	server.ClearCookie(w, server.SessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
