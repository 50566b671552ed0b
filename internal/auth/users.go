package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/namerule"
	"github.com/sluicehq/sluice/internal/store"
)

// usernameRE is the rule for usernames: lower case, starting with a
// letter, 2 to 64 characters, so that a username is safe in a URL path, a
// log line and a YAML binding without quoting.
var usernameRE = namerule.MustCompile(`^[a-z][a-z0-9._-]+$`, 64)

// groupRE is the rule for group names, as loose as OIDC claims need but
// free of control characters and spaces.
var groupRE = namerule.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@-]*$`, 128)

// CheckUsername reports whether name is a valid username; the error wraps
// ErrInvalid.
func CheckUsername(name string) error {
	if !usernameRE.Match(name) {
		return fmt.Errorf("%w: username %q: want 2 to 64 characters: a lower-case letter, then lower-case letters, digits, '.', '_' or '-'", ErrInvalid, name)
	}
	return nil
}

func normGroups(groups []string) ([]string, error) {
	var out []string
	for _, g := range groups {
		if !groupRE.Match(g) {
			return nil, fmt.Errorf("%w: group %q: want letters, digits and . _ : / @ -", ErrInvalid, g)
		}
		out = append(out, g)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

const maxDisplayName = 200

func checkDisplayName(s string) error {
	if len(s) > maxDisplayName || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: display name: at most %d bytes, no control characters", ErrInvalid, maxDisplayName)
	}
	return nil
}

// NewUser describes an account to create.
type NewUser struct {
	// Actor is the id of the administrator creating it ("" for the
	// bootstrap account, created by the installer).
	Actor       string
	Username    string
	DisplayName string
	Groups      []string
	// Password is checked against the policy and stored hashed; "" creates
	// an account that cannot sign in with a password.
	Password string
	// MustChangePassword forces a change at first login: set it when the
	// administrator chose the password.
	MustChangePassword bool
}

// CreateUser creates an account. Errors: ErrInvalid (username, groups,
// display name), ErrWeakPassword, ErrConflict (username taken). Reports
// EventUserCreated.
func (s *Service) CreateUser(ctx context.Context, p NewUser) (User, error) {
	if err := CheckUsername(p.Username); err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	if err := checkDisplayName(p.DisplayName); err != nil {
		return User{}, fmt.Errorf("creating user %q: %w", p.Username, err)
	}
	groups, err := normGroups(p.Groups)
	if err != nil {
		return User{}, fmt.Errorf("creating user %q: %w", p.Username, err)
	}
	now := s.now()
	u := store.User{
		Username: p.Username, DisplayName: p.DisplayName, Groups: groups,
		MustChangePassword: p.MustChangePassword, CreatedAt: now, UpdatedAt: now,
	}
	if p.Password != "" {
		if err := CheckPassword(p.Password, p.Username); err != nil {
			return User{}, fmt.Errorf("creating user %q: %w", p.Username, err)
		}
		if u.PasswordHash, err = hashPassword(p.Password, s.params); err != nil {
			return User{}, fmt.Errorf("creating user %q: %w", p.Username, err)
		}
		u.PasswordChangedAt = now
	}
	if u.ID, err = newID("usr_"); err != nil {
		return User{}, fmt.Errorf("creating user %q: %w", p.Username, err)
	}
	err = s.st.InTx(ctx, func(tx store.Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventUserCreated, Outcome: Success, Actor: p.Actor, UserID: u.ID,
			Username: u.Username, At: now, Detail: map[string]string{"groups": strings.Join(groups, ",")}})
	})
	if err != nil {
		return User{}, fmt.Errorf("creating user %q: %w", p.Username, err)
	}
	return userView(u), nil
}

// GetUser returns a user by id; ErrNotFound if there is none.
func (s *Service) GetUser(ctx context.Context, id string) (User, error) {
	u, err := s.st.GetUser(ctx, id)
	if err != nil {
		return User{}, err
	}
	return userView(u), nil
}

// UserByName returns a user by username; ErrNotFound if there is none.
func (s *Service) UserByName(ctx context.Context, username string) (User, error) {
	u, err := s.st.GetUserByUsername(ctx, username)
	if err != nil {
		return User{}, err
	}
	return userView(u), nil
}

// ListUsers returns every user ordered by username.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	us, err := s.st.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]User, len(us))
	for i, u := range us {
		out[i] = userView(u)
	}
	return out, nil
}

// UserUpdate changes an account's profile; nil fields are left alone.
type UserUpdate struct {
	Actor       string
	DisplayName *string
	Groups      *[]string
	// Disabled set to true also revokes the user's sessions: a disabled
	// account must lose access now, not at its sessions' expiry.
	Disabled *bool
}

// UpdateUser changes an account's profile. Errors: ErrNotFound, ErrInvalid.
// Reports EventUserUpdated (and EventSessionRevoked when disabling ends
// sessions).
func (s *Service) UpdateUser(ctx context.Context, id string, p UserUpdate) (User, error) {
	var groups []string
	if p.Groups != nil {
		var err error
		if groups, err = normGroups(*p.Groups); err != nil {
			return User{}, fmt.Errorf("updating user %q: %w", id, err)
		}
	}
	if p.DisplayName != nil {
		if err := checkDisplayName(*p.DisplayName); err != nil {
			return User{}, fmt.Errorf("updating user %q: %w", id, err)
		}
	}
	now := s.now()
	var u store.User
	err := s.st.InTx(ctx, func(tx store.Store) error {
		var err error
		if u, err = tx.GetUser(ctx, id); err != nil {
			return err
		}
		detail := map[string]string{}
		if p.DisplayName != nil {
			u.DisplayName = *p.DisplayName
			detail["display_name"] = u.DisplayName
		}
		if p.Groups != nil {
			u.Groups = groups
			detail["groups"] = strings.Join(groups, ",")
		}
		if p.Disabled != nil {
			u.Disabled = *p.Disabled
			detail["disabled"] = fmt.Sprint(u.Disabled)
		}
		u.UpdatedAt = now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if u.Disabled {
			n, err := tx.RevokeUserSessions(ctx, id, now)
			if err != nil {
				return err
			}
			detail["sessions_revoked"] = fmt.Sprint(n)
		}
		return s.record(ctx, tx, Event{Type: EventUserUpdated, Outcome: Success, Actor: p.Actor, UserID: u.ID,
			Username: u.Username, At: now, Detail: detail})
	})
	if err != nil {
		return User{}, fmt.Errorf("updating user %q: %w", id, err)
	}
	return userView(u), nil
}

// SetPassword sets a user's password as an administrator (a reset) and
// revokes all the user's sessions. mustChange forces the user to choose a
// new one at next login. Errors: ErrNotFound, ErrWeakPassword. Reports
// EventPasswordSet.
func (s *Service) SetPassword(ctx context.Context, actor, userID, password string, mustChange bool) error {
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("setting password of user %q: %w", userID, err)
	}
	if err := s.replacePassword(ctx, u, password, mustChange, Event{Type: EventPasswordSet, Actor: actor}); err != nil {
		return fmt.Errorf("setting password of user %q: %w", u.Username, err)
	}
	return nil
}

// ChangePassword changes the user's own password, proving knowledge of the
// current one, and revokes all the user's sessions (the caller signs the
// user in again). A wrong current password counts towards the lockout.
// Errors: ErrInvalidCredentials, ErrLocked, ErrDisabled, ErrWeakPassword.
// Reports EventPasswordChanged (or a failed EventLogin for a wrong current
// password).
func (s *Service) ChangePassword(ctx context.Context, userID, current, password string) error {
	u, err := s.st.GetUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("changing password: %w", ErrInvalidCredentials)
	}
	if err != nil {
		return fmt.Errorf("changing password: %w", err)
	}
	if _, err := s.checkPassword(ctx, u, current); err != nil {
		return fmt.Errorf("changing password: %w", err)
	}
	if current == password {
		return fmt.Errorf("changing password: %w: the new password must differ from the current one", ErrWeakPassword)
	}
	if err := s.replacePassword(ctx, u, password, false, Event{Type: EventPasswordChanged, Actor: u.ID}); err != nil {
		return fmt.Errorf("changing password: %w", err)
	}
	return nil
}

func (s *Service) replacePassword(ctx context.Context, u store.User, password string, mustChange bool, e Event) error {
	if err := CheckPassword(password, u.Username); err != nil {
		return err
	}
	hash, err := hashPassword(password, s.params)
	if err != nil {
		return err
	}
	now := s.now()
	return s.st.InTx(ctx, func(tx store.Store) error {
		if err := tx.SetPasswordHash(ctx, store.SetPasswordHash{UserID: u.ID, Hash: hash, MustChange: mustChange, At: now}); err != nil {
			return err
		}
		n, err := tx.RevokeUserSessions(ctx, u.ID, now)
		if err != nil {
			return err
		}
		e.Outcome, e.UserID, e.Username, e.At = Success, u.ID, u.Username, now
		e.Detail = map[string]string{"sessions_revoked": fmt.Sprint(n), "must_change": fmt.Sprint(mustChange)}
		return s.record(ctx, tx, e)
	})
}

// Login checks a username and password. It returns the user on success;
// the caller then asks for a second factor if the user's roles require one
// (MFAEnrolled, VerifyTOTP) and opens a session (NewSession). A user whose
// MustChangePassword is set must be sent to change it before anything
// else.
//
// Errors, all checked with errors.Is: ErrInvalidCredentials (unknown user
// or wrong password: indistinguishable, and taking the same time), ErrLocked
// (see LockoutPolicy; the attempt is not counted), ErrDisabled (only once
// the password is proven right). Reports EventLogin, and
// EventAccountLocked when a failure locks the account.
func (s *Service) Login(ctx context.Context, username, password string) (User, error) {
	u, err := s.st.GetUserByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		// Same work as for a real account, so that timing does not tell.
		s.burnDummy(password)
		if rerr := s.recordAlone(ctx, Event{Type: EventLogin, Outcome: Failure, Reason: ReasonUnknownUser,
			Username: truncate(username), Detail: map[string]string{"method": "password"}}); rerr != nil {
			return User{}, fmt.Errorf("logging in: %w", rerr)
		}
		return User{}, fmt.Errorf("logging in: %w", ErrInvalidCredentials)
	}
	if err != nil {
		return User{}, fmt.Errorf("logging in: %w", err)
	}
	rehash, err := s.checkPassword(ctx, u, password)
	if err != nil {
		return User{}, fmt.Errorf("logging in: %w", err)
	}
	if u.Disabled {
		if rerr := s.recordAlone(ctx, Event{Type: EventLogin, Outcome: Failure, Reason: ReasonDisabled, Actor: u.ID,
			UserID: u.ID, Username: u.Username, Detail: map[string]string{"method": "password"}}); rerr != nil {
			return User{}, fmt.Errorf("logging in: %w", rerr)
		}
		return User{}, fmt.Errorf("logging in: %w", ErrDisabled)
	}
	now := s.now()
	err = s.st.InTx(ctx, func(tx store.Store) error {
		if err := tx.RecordLoginSuccess(ctx, u.ID, now); err != nil {
			return err
		}
		if rehash {
			// An upgrade of the hash parameters; losing the race to a
			// password change is fine, the new hash is current anyway.
			if h, err := hashPassword(password, s.params); err == nil {
				err := tx.SetPasswordHash(ctx, store.SetPasswordHash{UserID: u.ID, Hash: h, At: now, Rehash: true, From: u.PasswordHash})
				if err != nil && !errors.Is(err, store.ErrConflict) {
					return err
				}
			}
		}
		return s.record(ctx, tx, Event{Type: EventLogin, Outcome: Success, Actor: u.ID, UserID: u.ID,
			Username: u.Username, At: now, Detail: map[string]string{"method": "password", "rehashed": fmt.Sprint(rehash)}})
	})
	if err != nil {
		return User{}, fmt.Errorf("logging in: %w", err)
	}
	u.FailedLogins, u.LockedUntil, u.LastLoginAt = 0, time.Time{}, now
	return userView(u), nil
}

// checkPassword verifies password for u, enforcing and updating the
// lockout. It returns whether the hash should be upgraded.
func (s *Service) checkPassword(ctx context.Context, u store.User, password string) (bool, error) {
	now := s.now()
	locked := now.Before(u.LockedUntil)
	if locked || u.PasswordHash == "" {
		s.burnDummy(password)
		reason, sentinel := ReasonLocked, ErrLocked
		if !locked {
			reason, sentinel = ReasonNoPassword, ErrInvalidCredentials
		}
		if err := s.recordAlone(ctx, Event{Type: EventLogin, Outcome: Failure, Reason: reason, Actor: u.ID,
			UserID: u.ID, Username: u.Username, At: now, Detail: map[string]string{"method": "password"}}); err != nil {
			return false, err
		}
		return false, sentinel
	}
	ok, rehash, err := s.verify(u.PasswordHash, password, s.params)
	if err != nil {
		return false, fmt.Errorf("user %q: %w", u.Username, err)
	}
	if ok {
		return rehash, nil
	}
	if err := s.recordFailure(ctx, u, now, Event{Type: EventLogin, Reason: ReasonBadPassword,
		Detail: map[string]string{"method": "password"}}); err != nil {
		return false, err
	}
	return false, ErrInvalidCredentials
}

// recordFailure counts a failed attempt against u, locks the account when
// the count reaches the policy's threshold, and reports e as a failure,
// all in one transaction.
func (s *Service) recordFailure(ctx context.Context, u store.User, now time.Time, e Event) error {
	return s.st.InTx(ctx, func(tx store.Store) error {
		n, err := tx.RecordLoginFailure(ctx, u.ID)
		if err != nil {
			return err
		}
		e.Outcome, e.Actor, e.UserID, e.Username, e.At = Failure, u.ID, u.ID, u.Username, now
		if e.Detail == nil {
			e.Detail = map[string]string{}
		}
		e.Detail["failures"] = fmt.Sprint(n)
		if err := s.record(ctx, tx, e); err != nil {
			return err
		}
		d := s.lockout.Duration(n)
		if d == 0 {
			return nil
		}
		until := now.Add(d)
		if err := tx.LockUser(ctx, u.ID, until); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventAccountLocked, Outcome: Success, Actor: u.ID, UserID: u.ID,
			Username: u.Username, At: now, Detail: map[string]string{
				"failures": fmt.Sprint(n), "locked_until": until.Format(time.RFC3339), "duration": d.String()}})
	})
}

// checkUsable refuses a locked or disabled account for a second-factor
// step, reporting the refusal as e.
func (s *Service) checkUsable(ctx context.Context, u store.User, now time.Time, e Event) error {
	reason, sentinel := "", error(nil)
	switch {
	case u.Disabled:
		reason, sentinel = ReasonDisabled, ErrDisabled
	case now.Before(u.LockedUntil):
		reason, sentinel = ReasonLocked, ErrLocked
	default:
		return nil
	}
	e.Outcome, e.Reason, e.Actor, e.UserID, e.Username, e.At = Failure, reason, u.ID, u.ID, u.Username, now
	if err := s.recordAlone(ctx, e); err != nil {
		return err
	}
	return sentinel
}

// truncate bounds attacker-chosen text copied into an event.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max]
	}
	return strings.ToValidUTF8(s, "?")
}
