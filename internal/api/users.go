package api

import (
	"crypto/rand"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/server"
)

// User accounts, managed by holders of user.manage (security engineers),
// as 'sluice user' does: every route here decides user.manage globally
// before it runs, and the identity service writes the audit record of
// each change in the change's own transaction.

// userRoutes are the user endpoints.
func (a *API) userRoutes() []Route {
	manage := Need(access.UserManage, Global(access.ResUser))
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/users", Summary: "list users",
			Rule: manage, Handle: a.listUsers},
		{Method: http.MethodPost, Pattern: Prefix + "/users", Summary: "create a user with a random initial password, shown once",
			Rule: manage, Handle: a.createUser},
		{Method: http.MethodGet, Pattern: Prefix + "/users/{name}", Summary: "one user",
			Rule: manage, Handle: a.getUser},
		{Method: http.MethodPatch, Pattern: Prefix + "/users/{name}", Summary: "change a user's display name, groups or disabled state",
			Rule: manage, Handle: a.patchUser},
		{Method: http.MethodDelete, Pattern: Prefix + "/users/{name}/mfa", Summary: "remove a user's TOTP enrolment (a lost device)",
			Rule: Need(access.MFAManage, Global(access.ResUser)), Handle: a.resetMFA},
	}
}

// UserView is an account as administrators see it: never a credential.
type UserView struct {
	Username           string    `json:"username"`
	DisplayName        string    `json:"display_name,omitempty"`
	Groups             []string  `json:"groups"`
	Disabled           bool      `json:"disabled"`
	MustChangePassword bool      `json:"must_change_password"`
	MFA                bool      `json:"mfa"`
	LockedUntil        time.Time `json:"locked_until,omitzero"`
	LastLoginAt        time.Time `json:"last_login_at,omitzero"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// NewUserRequest creates an account (POST /api/v1/users). The initial
// password is chosen by the server, like 'sluice user add' does.
type NewUserRequest struct {
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name,omitempty"`
	Groups      []string `json:"groups,omitempty"`
}

// CreatedUser is a new account and its initial password, shown only in
// this response; the user must change it before signing in.
type CreatedUser struct {
	User     UserView `json:"user"`
	Password string   `json:"password"`
}

// UserPatch changes an account (PATCH /api/v1/users/{name}); absent
// fields are left alone. Disabling ends the user's sessions at once.
type UserPatch struct {
	DisplayName *string   `json:"display_name,omitempty"`
	Groups      *[]string `json:"groups,omitempty"`
	Disabled    *bool     `json:"disabled,omitempty"`
}

// userVersion is the version of an account for ETag and If-Match: its
// last update time, which every change moves.
func userVersion(u auth.User) string { return strconv.FormatInt(u.UpdatedAt.UnixMicro(), 10) }

func (a *API) viewUser(r *http.Request, u auth.User) (UserView, error) {
	mfa, err := a.d.Auth.MFAEnrolled(r.Context(), u.ID)
	if err != nil {
		return UserView{}, err
	}
	v := UserView{Username: u.Username, DisplayName: u.DisplayName, Groups: nonNil(u.Groups), Disabled: u.Disabled,
		MustChangePassword: u.MustChangePassword, MFA: mfa, LastLoginAt: u.LastLoginAt.UTC(),
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
	if u.LockedUntil.After(a.d.Clock.Now()) {
		v.LockedUntil = u.LockedUntil.UTC()
	}
	return v, nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, _ *Call) error {
	us, err := a.d.Auth.ListUsers(r.Context())
	if err != nil {
		return err
	}
	page, err := listPage(r, us, func(u auth.User) string { return u.Username })
	if err != nil {
		return err
	}
	// Views (which read each user's MFA enrolment) only for the page.
	views := make([]UserView, 0, len(page.Items))
	for _, u := range page.Items {
		v, err := a.viewUser(r, u)
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	return WriteJSON(w, http.StatusOK, NewPage(views, page.NextCursor))
}

// userByName reads the account the path names, or answers not_found.
func (a *API) userByName(r *http.Request) (auth.User, error) {
	name := r.PathValue("name")
	u, err := a.d.Auth.UserByName(r.Context(), name)
	if errors.Is(err, auth.ErrNotFound) {
		return auth.User{}, server.Errorf(server.CodeNotFound, "no user %q", name)
	}
	return u, err
}

// authError turns the identity service's argument errors into invalid
// and conflict answers (their messages name the field); anything else
// stays internal.
func authError(err error) error {
	switch {
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrWeakPassword):
		return &server.Error{Code: server.CodeInvalid, Message: err.Error(), Err: err}
	case errors.Is(err, auth.ErrConflict):
		return &server.Error{Code: server.CodeConflict, Message: err.Error(), Err: err}
	case errors.Is(err, auth.ErrNotFound):
		return &server.Error{Code: server.CodeNotFound, Message: err.Error(), Err: err}
	}
	return err
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req NewUserRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	if err := auth.CheckUsername(req.Username); err != nil {
		return &server.Error{Code: server.CodeInvalid, Message: "username: " + err.Error(), Err: err}
	}
	pw := newInitialPassword()
	u, err := a.d.Auth.CreateUser(r.Context(), auth.NewUser{Actor: c.Principal.User.ID, Username: req.Username,
		DisplayName: req.DisplayName, Groups: req.Groups, Password: pw, MustChangePassword: true})
	if err != nil {
		return authError(err)
	}
	v, err := a.viewUser(r, u)
	if err != nil {
		return err
	}
	SetETag(w, userVersion(u))
	w.Header().Set("Location", Prefix+"/users/"+u.Username)
	return WriteJSON(w, http.StatusCreated, CreatedUser{User: v, Password: pw})
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, _ *Call) error {
	u, err := a.userByName(r)
	if err != nil {
		return err
	}
	return a.writeUser(w, r, u)
}

func (a *API) patchUser(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req UserPatch
	if err := Decode(r, &req); err != nil {
		return err
	}
	u, err := a.userByName(r)
	if err != nil {
		return err
	}
	if err := IfMatch(r, userVersion(u)); err != nil {
		return err
	}
	if req.Disabled != nil && *req.Disabled && u.ID == c.Principal.User.ID {
		return server.Errorf(server.CodeForbidden, "you may not disable your own account")
	}
	u, err = a.d.Auth.UpdateUser(r.Context(), u.ID, auth.UserUpdate{Actor: c.Principal.User.ID,
		DisplayName: req.DisplayName, Groups: req.Groups, Disabled: req.Disabled})
	if err != nil {
		return authError(err)
	}
	return a.writeUser(w, r, u)
}

// writeUser answers with a user's view and its version as the ETag, for
// reading it and after changing it alike.
func (a *API) writeUser(w http.ResponseWriter, r *http.Request, u auth.User) error {
	v, err := a.viewUser(r, u)
	if err != nil {
		return err
	}
	SetETag(w, userVersion(u))
	return WriteJSON(w, http.StatusOK, v)
}

func (a *API) resetMFA(w http.ResponseWriter, r *http.Request, c *Call) error {
	u, err := a.userByName(r)
	if err != nil {
		return err
	}
	if err := a.d.Auth.RemoveTOTP(r.Context(), c.Principal.User.ID, u.ID); err != nil {
		if errors.Is(err, auth.ErrNotEnrolled) {
			return server.Errorf(server.CodeConflict, "%s has no MFA enrolment", u.Username)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// newInitialPassword returns a random initial password, as 'sluice user
// add' prints: 26 characters of base32 from crypto/rand (130 bits).
func newInitialPassword() string { return rand.Text() }

// listPage sorts items by key and returns the page after the cursor's
// key: keyset paging over a listing read whole (users, sessions, tokens,
// bindings: small sets), so pages neither skip nor repeat items when
// others are added or removed between requests.
func listPage[T any](r *http.Request, items []T, key func(T) string) (Page[T], error) {
	var after string
	limit, err := Paging(r, &after)
	if err != nil {
		return Page[T]{}, err
	}
	sort.SliceStable(items, func(i, j int) bool { return key(items[i]) < key(items[j]) })
	start := sort.Search(len(items), func(i int) bool { return key(items[i]) > after })
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) {
		next = Cursor(key(items[end-1]))
	}
	return NewPage(items[start:end], next), nil
}

// timeKey renders t in a fixed-width form that sorts as the time does.
func timeKey(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// nonNil returns s, or an empty list for nil, so lists are never null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
