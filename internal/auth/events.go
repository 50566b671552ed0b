package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// EventType names an authentication event.
type EventType string

// Event types. Each method's doc names the events it reports.
const (
	EventUserCreated      EventType = "auth.user.created"
	EventUserUpdated      EventType = "auth.user.updated"
	EventUserProvisioned  EventType = "auth.user.provisioned" // created or updated by OIDC sign-in
	EventPasswordSet      EventType = "auth.password.set"     // by an administrator
	EventPasswordChanged  EventType = "auth.password.changed" // by the user
	EventLogin            EventType = "auth.login"
	EventAccountLocked    EventType = "auth.account.locked"
	EventTOTPEnrolled     EventType = "auth.totp.enrolled"
	EventTOTPConfirmed    EventType = "auth.totp.confirmed"
	EventTOTPVerified     EventType = "auth.totp.verified"
	EventTOTPRemoved      EventType = "auth.totp.removed"
	EventRecoveryCodeUsed EventType = "auth.recovery_code.used"
	EventTokenCreated     EventType = "auth.token.created"
	EventTokenUsed        EventType = "auth.token.used"
	EventTokenRevoked     EventType = "auth.token.revoked"
	EventSessionCreated   EventType = "auth.session.created"
	EventSessionUsed      EventType = "auth.session.used"
	EventSessionRevoked   EventType = "auth.session.revoked"
	EventOIDCLogin        EventType = "auth.oidc.login"
)

// Outcome is whether the event's action succeeded.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Failure reasons, in Event.Reason. They are for the audit log, not for the
// caller: callers get the sentinel errors, which say less.
const (
	ReasonUnknownUser   = "unknown_user"
	ReasonBadPassword   = "bad_password"
	ReasonNoPassword    = "no_password"
	ReasonLocked        = "locked"
	ReasonDisabled      = "disabled"
	ReasonBadCode       = "bad_code"
	ReasonReplay        = "replay"
	ReasonNotEnrolled   = "not_enrolled"
	ReasonUnknownToken  = "unknown_credential"
	ReasonMalformed     = "malformed"
	ReasonExpired       = "expired"
	ReasonRevoked       = "revoked"
	ReasonBadState      = "bad_state"
	ReasonProviderError = "provider_error"
	ReasonBadIDToken    = "bad_id_token"
	ReasonUsernameTaken = "username_taken"
)

// Event is one authentication event: enough to write an audit record
// without the auth package knowing the audit format. It never holds a
// secret: Ref is the public id of a token or session, never its value.
type Event struct {
	Type    EventType
	Outcome Outcome
	// Reason says why a failure failed (a Reason constant); "" on success.
	Reason string
	// Actor is the user id of who acted: the user themselves for logins,
	// an administrator for user management; "" when nobody could be
	// identified (a login naming an unknown account).
	Actor string
	// UserID and Username are the account concerned, when known.
	UserID   string
	Username string
	// Ref is the id of the token or session concerned, if any.
	Ref string
	At  time.Time
	// Detail holds event-specific facts (lockout end, scopes, groups,
	// sign-in method), already formatted.
	Detail map[string]string
}

// EventSink receives the events of a Service.
type EventSink interface {
	// Record is called for every event. For events that accompany a
	// change, tx is the store transaction making it: a record written
	// through tx commits with the change or not at all, and an error
	// aborts the change (the method returns it). For events with no change
	// (a successful token check), tx is the Service's store itself.
	Record(ctx context.Context, tx store.Store, e Event) error
}

// EventFunc adapts a function to EventSink.
type EventFunc func(ctx context.Context, tx store.Store, e Event) error

// Record calls f.
func (f EventFunc) Record(ctx context.Context, tx store.Store, e Event) error { return f(ctx, tx, e) }

// record reports an event through tx.
func (s *Service) record(ctx context.Context, tx store.Store, e Event) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if err := s.events.Record(ctx, tx, e); err != nil {
		return fmt.Errorf("recording event %s: %w", e.Type, err)
	}
	return nil
}

// recordAlone reports an event that has no change of its own, in a
// transaction of its own.
func (s *Service) recordAlone(ctx context.Context, e Event) error {
	return s.st.InTx(ctx, func(tx store.Store) error { return s.record(ctx, tx, e) })
}
