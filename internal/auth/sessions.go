package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// Session describes a session without its secret.
type Session struct {
	ID     string
	UserID string
	// Method is how the user signed in: MethodPassword or MethodOIDC.
	Method string
	// MFA reports whether a second factor was verified for it.
	MFA        bool
	CreatedAt  time.Time
	LastSeenAt time.Time
	// IdleExpiresAt is when the session ends unless used again.
	IdleExpiresAt time.Time
	// ExpiresAt is the absolute end of the session.
	ExpiresAt time.Time
}

// Sign-in methods, in Session.Method.
const (
	MethodPassword = "password"
	MethodOIDC     = "oidc"
)

func (s *Service) sessionView(x store.Session) Session {
	return Session{ID: x.ID, UserID: x.UserID, Method: x.Method, MFA: x.MFA, CreatedAt: x.CreatedAt,
		LastSeenAt: x.LastSeenAt, IdleExpiresAt: x.LastSeenAt.Add(s.idle), ExpiresAt: x.ExpiresAt}
}

var sessionSecretLen = base64.RawURLEncoding.EncodedLen(32)

// NewSession opens a session for a user who has just authenticated (Login
// and, if required, VerifyTOTP; or CompleteOIDC) and returns its secret,
// for a cookie; only its SHA-256 digest is stored. method is MethodPassword
// or MethodOIDC; mfa records whether a second factor was verified. Errors:
// ErrNotFound, ErrDisabled, ErrInvalid (method). Reports
// EventSessionCreated.
func (s *Service) NewSession(ctx context.Context, userID, method string, mfa bool) (string, Session, error) {
	if method != MethodPassword && method != MethodOIDC {
		return "", Session{}, fmt.Errorf("opening session: %w: method %q", ErrInvalid, method)
	}
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return "", Session{}, fmt.Errorf("opening session: %w", err)
	}
	if u.Disabled {
		return "", Session{}, fmt.Errorf("opening session for %q: %w", u.Username, ErrDisabled)
	}
	secret, err := newSecret()
	if err != nil {
		return "", Session{}, fmt.Errorf("opening session: %w", err)
	}
	now := s.now()
	x := store.Session{Hash: digest(secret), UserID: u.ID, Method: method, MFA: mfa, CreatedAt: now,
		LastSeenAt: now, ExpiresAt: now.Add(s.maxAge)}
	if x.ID, err = newID("ses_"); err != nil {
		return "", Session{}, fmt.Errorf("opening session: %w", err)
	}
	err = s.st.InTx(ctx, func(tx store.Store) error {
		if err := tx.CreateSession(ctx, x); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventSessionCreated, Outcome: Success, Actor: u.ID, UserID: u.ID,
			Username: u.Username, Ref: x.ID, At: now, Detail: map[string]string{"method": method, "mfa": fmt.Sprint(mfa)}})
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("opening session for %q: %w", u.Username, err)
	}
	return secret, s.sessionView(x), nil
}

// AuthenticateSession resolves a session secret (from a cookie) to the
// session and its user, and records activity (at most once a minute, so
// the idle timeout is exact to a minute). Errors: ErrInvalidCredentials
// (malformed or unknown), ErrExpired (idle or absolute timeout), ErrRevoked,
// ErrDisabled. Failures are reported as EventSessionUsed; successes are
// not reported (every browser request would be one).
func (s *Service) AuthenticateSession(ctx context.Context, secret string) (Session, User, error) {
	now := s.now()
	fail := func(reason string, x store.Session, u store.User, sentinel error) (Session, User, error) {
		if err := s.record(ctx, s.st, Event{Type: EventSessionUsed, Outcome: Failure, Reason: reason, Actor: u.ID,
			UserID: u.ID, Username: u.Username, Ref: x.ID, At: now}); err != nil {
			return Session{}, User{}, fmt.Errorf("authenticating session: %w", err)
		}
		return Session{}, User{}, fmt.Errorf("authenticating session: %w", sentinel)
	}
	if len(secret) != sessionSecretLen {
		return fail(ReasonMalformed, store.Session{}, store.User{}, ErrInvalidCredentials)
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return fail(ReasonMalformed, store.Session{}, store.User{}, ErrInvalidCredentials)
	}
	h := digest(secret)
	x, err := s.st.GetSessionByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return fail(ReasonUnknownToken, store.Session{}, store.User{}, ErrInvalidCredentials)
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("authenticating session: %w", err)
	}
	if subtle.ConstantTimeCompare(x.Hash, h) != 1 {
		return fail(ReasonUnknownToken, store.Session{}, store.User{}, ErrInvalidCredentials)
	}
	u, err := s.st.GetUser(ctx, x.UserID)
	if err != nil {
		return Session{}, User{}, fmt.Errorf("authenticating session %q: user: %w", x.ID, err)
	}
	switch {
	case !x.RevokedAt.IsZero():
		return fail(ReasonRevoked, x, u, ErrRevoked)
	case !now.Before(x.ExpiresAt), !now.Before(x.LastSeenAt.Add(s.idle)):
		return fail(ReasonExpired, x, u, ErrExpired)
	case u.Disabled:
		return fail(ReasonDisabled, x, u, ErrDisabled)
	}
	if now.Sub(x.LastSeenAt) >= touchInterval {
		if _, err := s.st.TouchSession(ctx, x.ID, now, now.Add(-touchInterval)); err != nil {
			return Session{}, User{}, fmt.Errorf("authenticating session %q: %w", x.ID, err)
		}
		x.LastSeenAt = now
	}
	return s.sessionView(x), userView(u), nil
}

// ListSessions returns a user's live sessions (neither revoked nor
// expired), oldest first.
func (s *Service) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	xs, err := s.st.ListSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []Session
	for _, x := range xs {
		if now.Before(x.ExpiresAt) && now.Before(x.LastSeenAt.Add(s.idle)) {
			out = append(out, s.sessionView(x))
		}
	}
	return out, nil
}

// RevokeSession ends a session (sign-out, or an administrator's
// revocation). Errors: ErrNotFound. Reports EventSessionRevoked.
func (s *Service) RevokeSession(ctx context.Context, actor, sessionID string) error {
	now := s.now()
	err := s.st.InTx(ctx, func(tx store.Store) error {
		x, err := tx.GetSession(ctx, sessionID)
		if err != nil {
			return err
		}
		if err := tx.RevokeSession(ctx, sessionID, now); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventSessionRevoked, Outcome: Success, Actor: actor, UserID: x.UserID,
			Ref: x.ID, At: now})
	})
	if err != nil {
		return fmt.Errorf("revoking session %q: %w", sessionID, err)
	}
	return nil
}

// RevokeAllSessions ends every session of a user and returns how many.
// Reports EventSessionRevoked with Detail["count"].
func (s *Service) RevokeAllSessions(ctx context.Context, actor, userID string) (int, error) {
	now := s.now()
	var n int
	err := s.st.InTx(ctx, func(tx store.Store) error {
		var err error
		if n, err = tx.RevokeUserSessions(ctx, userID, now); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventSessionRevoked, Outcome: Success, Actor: actor, UserID: userID,
			At: now, Detail: map[string]string{"count": fmt.Sprint(n)}})
	})
	if err != nil {
		return 0, fmt.Errorf("revoking sessions of user %q: %w", userID, err)
	}
	return n, nil
}

// PruneSessions deletes sessions that ended (revoked, or past their
// absolute expiry) more than a day ago, and returns how many; run it
// periodically to keep the table small.
func (s *Service) PruneSessions(ctx context.Context) (int, error) {
	return s.st.PruneSessions(ctx, s.now().Add(-24*time.Hour))
}
