package store

import (
	"context"
	"time"
)

// User is an account as the store keeps it, credentials included. The auth
// package hands callers a view without PasswordHash; nothing else should
// read it.
type User struct {
	ID          string
	Username    string
	DisplayName string
	Groups      []string
	Disabled    bool
	// MustChangePassword forces a password change at the next login (set
	// when an administrator chose the password).
	MustChangePassword bool
	// PasswordHash is a PHC-format argon2id hash; "" for accounts that sign
	// in only through OIDC.
	PasswordHash string
	// OIDCIssuer and OIDCSubject identify an account created by OIDC
	// sign-in; both "" otherwise. The pair is unique.
	OIDCIssuer  string
	OIDCSubject string
	// FailedLogins counts consecutive failed password logins; a success
	// resets it.
	FailedLogins int
	// LockedUntil is when a lockout ends; zero when not locked.
	LockedUntil       time.Time
	LastLoginAt       time.Time
	PasswordChangedAt time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// SetPasswordHash replaces a user's password hash.
type SetPasswordHash struct {
	UserID     string
	Hash       string
	MustChange bool
	At         time.Time
	// Rehash marks a transparent upgrade of the hash parameters at login:
	// PasswordChangedAt and MustChangePassword are left as they are, and
	// the write is a compare-and-set on From, so that a password changed
	// meanwhile is never overwritten by a rehash of the old one.
	Rehash bool
	// From is the hash a Rehash replaces.
	From string
}

// TOTP is a user's TOTP enrolment. The secret is stored only sealed by the
// keyring (Sealed, under data key DataKeyID).
type TOTP struct {
	UserID    string
	Sealed    []byte
	DataKeyID string
	// ConfirmedAt is when the user proved possession with a first code;
	// an unconfirmed enrolment does not count as MFA.
	ConfirmedAt time.Time
	// LastStep is the last TOTP time step accepted (unix time / period):
	// a code for this step or an earlier one is a replay.
	LastStep  int64
	CreatedAt time.Time
}

// APIToken is a bearer token for the API, stored only as the SHA-256 of
// the token.
type APIToken struct {
	ID      string
	Hash    []byte
	Name    string
	OwnerID string
	// Scopes are the permissions the token carries, a subset of its
	// owner's (checked by the access package).
	Scopes     []string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time // zero until first use
	RevokedAt  time.Time // zero unless revoked
}

// Session is a signed-in browser session, stored only as the SHA-256 of
// its secret id. ID is a separate, non-secret handle for listing and
// revocation.
type Session struct {
	ID     string
	Hash   []byte
	UserID string
	// Method is how the user signed in: "password" or "oidc".
	Method string
	// MFA reports whether a second factor was verified for the session.
	MFA        bool
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the session, whatever its activity.
	ExpiresAt time.Time
	RevokedAt time.Time // zero unless revoked
}

// UserStore persists users, password hashes, TOTP enrolments, recovery codes, API tokens and sessions.
// Store embeds it, so transaction-bound stores have these methods too.
//
// Secrets never reach it in the clear: passwords as argon2id hashes, API
// tokens, session ids and recovery codes as SHA-256 digests, TOTP secrets
// sealed by the keyring.
type UserStore interface {
	// CreateUser inserts a user. ErrConflict if the id, the username or
	// the OIDC identity exists.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns a user by id, or ErrNotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByUsername returns a user by username, or ErrNotFound.
	GetUserByUsername(ctx context.Context, username string) (User, error)
	// GetUserByOIDC returns the user with an OIDC identity, or ErrNotFound.
	GetUserByOIDC(ctx context.Context, issuer, subject string) (User, error)
	// ListUsers returns every user ordered by username.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser writes the profile of u.ID: DisplayName, Groups,
	// Disabled, MustChangePassword, OIDCIssuer, OIDCSubject and UpdatedAt.
	// Username, credentials and login counters are left alone.
	// ErrNotFound if the user does not exist, ErrConflict if the OIDC
	// identity belongs to another user.
	UpdateUser(ctx context.Context, u User) error
	// SetPasswordHash replaces a password hash; ErrNotFound if the user
	// does not exist, ErrConflict for a Rehash whose From is no longer the
	// stored hash.
	SetPasswordHash(ctx context.Context, p SetPasswordHash) error
	// RecordLoginFailure adds one to a user's consecutive failed logins
	// and returns the new count; ErrNotFound if the user does not exist.
	RecordLoginFailure(ctx context.Context, userID string) (int, error)
	// LockUser sets when a user's lockout ends; ErrNotFound if the user
	// does not exist.
	LockUser(ctx context.Context, userID string, until time.Time) error
	// RecordLoginSuccess clears the failed-login count and the lockout and
	// sets LastLoginAt; ErrNotFound if the user does not exist.
	RecordLoginSuccess(ctx context.Context, userID string, at time.Time) error

	// PutTOTP records a TOTP enrolment, replacing the user's previous one.
	// ErrNotFound if the user does not exist.
	PutTOTP(ctx context.Context, t TOTP) error
	// GetTOTP returns a user's enrolment, or ErrNotFound.
	GetTOTP(ctx context.Context, userID string) (TOTP, error)
	// ConfirmTOTP marks an enrolment confirmed at at and records step as
	// used; ErrNotFound if there is none.
	ConfirmTOTP(ctx context.Context, userID string, step int64, at time.Time) error
	// UseTOTPStep records step as the last accepted, a compare-and-set:
	// ErrConflict if a step at or after it was already accepted (a replayed
	// code), ErrNotFound if there is no enrolment.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// DeleteTOTP removes a user's enrolment and recovery codes;
	// ErrNotFound if there is no enrolment.
	DeleteTOTP(ctx context.Context, userID string) error
	// ReplaceRecoveryCodes replaces a user's recovery codes with the given
	// SHA-256 digests. ErrNotFound if the user does not exist.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error
	// UseRecoveryCode marks the unused code with digest hash used at at;
	// ErrNotFound if the user has no such unused code.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error
	// CountRecoveryCodes returns how many unused recovery codes a user has.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)

	// CreateAPIToken records a token. ErrConflict if the id or hash exists,
	// ErrNotFound if the owner does not exist.
	CreateAPIToken(ctx context.Context, t APIToken) error
	// GetAPIToken returns a token by id, or ErrNotFound.
	GetAPIToken(ctx context.Context, id string) (APIToken, error)
	// GetAPITokenByHash returns the token with digest hash, or ErrNotFound.
	GetAPITokenByHash(ctx context.Context, hash []byte) (APIToken, error)
	// ListAPITokens returns a user's tokens (revoked and expired included)
	// in creation order.
	ListAPITokens(ctx context.Context, ownerID string) ([]APIToken, error)
	// TouchAPIToken sets LastUsedAt to at if it is zero or before before,
	// reporting whether it wrote: callers pass before = at - interval so
	// that a busy token is written at most once per interval.
	TouchAPIToken(ctx context.Context, id string, at, before time.Time) (bool, error)
	// RevokeAPIToken sets RevokedAt; a token already revoked keeps its
	// first revocation time. ErrNotFound if the token does not exist.
	RevokeAPIToken(ctx context.Context, id string, at time.Time) error

	// CreateSession records a session. ErrConflict if the id or hash
	// exists, ErrNotFound if the user does not exist.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns a session by id, or ErrNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// GetSessionByHash returns the session with digest hash, or ErrNotFound.
	GetSessionByHash(ctx context.Context, hash []byte) (Session, error)
	// ListSessions returns a user's sessions that are not revoked, in
	// creation order (expired ones included until pruned).
	ListSessions(ctx context.Context, userID string) ([]Session, error)
	// TouchSession sets LastSeenAt to at if it is before before, reporting
	// whether it wrote (see TouchAPIToken).
	TouchSession(ctx context.Context, id string, at, before time.Time) (bool, error)
	// RevokeSession sets RevokedAt; a session already revoked keeps its
	// first revocation time. ErrNotFound if it does not exist.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RevokeUserSessions revokes every session of a user not yet revoked
	// and returns how many it revoked.
	RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int, error)
	// PruneSessions deletes sessions revoked or absolutely expired before
	// before and returns how many it deleted.
	PruneSessions(ctx context.Context, before time.Time) (int, error)
}
