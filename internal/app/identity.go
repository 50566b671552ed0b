package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// Identity in the audit log and in access bindings.
//
// Access bindings, decisions and access events name users by USERNAME
// (access.Subject.User is the username, not the auth user id): usernames
// are what operators type in 'sluice access grant' and read in reviews,
// and they never change. The identity service, whose events carry user
// ids, is translated here: every audit record names a person as
// "user:<username>".

// auditActor renders who acted for the audit log: a value that already has
// a kind ("local:root", "system:scheduler") as given, "" as "anonymous",
// the access package's "bootstrap" as "system:bootstrap", and a username
// as "user:<name>".
func auditActor(name string) string {
	switch {
	case name == "":
		return "anonymous"
	case strings.Contains(name, ":"):
		return name
	case name == "bootstrap":
		return "system:bootstrap"
	default:
		return "user:" + name
	}
}

// authSink writes the identity service's events to the audit log, through
// the transaction of the change they describe.
type authSink struct {
	source audit.Source
}

// Record implements auth.EventSink.
func (s authSink) Record(ctx context.Context, tx store.Store, e auth.Event) error {
	actor, err := authActor(ctx, tx, e)
	if err != nil {
		return err
	}
	ev := audit.Event{
		Time:    e.At,
		Actor:   actor,
		Action:  string(e.Type),
		Outcome: audit.OutcomeSuccess,
		Reason:  e.Reason,
		Source:  s.source,
	}
	if e.Outcome == auth.Failure {
		ev.Outcome = audit.OutcomeFailure
	}
	if e.Username != "" {
		ev.Resource = "user:" + e.Username
	} else if e.UserID != "" {
		ev.Resource = "user-id:" + e.UserID
	}
	if len(e.Detail) > 0 || e.Ref != "" || e.UserID != "" {
		ev.Details = make(map[string]string, len(e.Detail)+2)
		for k, v := range e.Detail {
			ev.Details[k] = v
		}
		if e.Ref != "" {
			ev.Details["ref"] = e.Ref
		}
		if e.UserID != "" {
			ev.Details["user_id"] = e.UserID
		}
	}
	return audit.Record(ctx, tx, ev)
}

// authActor turns an identity event's actor (a user id, "" when nobody
// could be identified, or an already qualified "kind:name" such as the
// local operator creating the first account) into an audit actor.
func authActor(ctx context.Context, tx store.Store, e auth.Event) (string, error) {
	switch {
	case e.Actor == "":
		return "anonymous", nil
	case strings.Contains(e.Actor, ":"):
		return e.Actor, nil
	case e.Actor == e.UserID && e.Username != "":
		return "user:" + e.Username, nil
	}
	u, err := tx.GetUser(ctx, e.Actor)
	if errors.Is(err, store.ErrNotFound) {
		return "user-id:" + e.Actor, nil
	}
	if err != nil {
		return "", fmt.Errorf("looking up the actor of %s: %w", e.Type, err)
	}
	return "user:" + u.Username, nil
}

// accessRecorder writes the access service's events to the audit log.
func accessRecorder(st store.Store, source audit.Source) func(ctx context.Context, e access.Event) error {
	return func(ctx context.Context, e access.Event) error {
		ev := audit.Event{
			Time:     e.At,
			Actor:    auditActor(e.Actor),
			Action:   e.Action,
			Resource: e.Target,
			Outcome:  audit.OutcomeSuccess,
			Reason:   e.Reason,
			Source:   source,
		}
		if !e.Allowed {
			ev.Outcome = audit.OutcomeDenied
		}
		if len(e.Details) > 0 || e.Namespace != "" {
			ev.Details = make(map[string]string, len(e.Details)+1)
			for k, v := range e.Details {
				ev.Details[k] = v
			}
			if e.Namespace != "" {
				ev.Details["namespace"] = e.Namespace
			}
		}
		return audit.Record(ctx, st, ev)
	}
}

// identity answers the access service's questions about users from the
// identity store, by username.
type identity struct {
	st   store.Store
	auth *auth.Service
}

// MFAStatus implements access.MFAStatus: whether the user named username
// has a confirmed TOTP enrolment. The interface has no context (reviews
// call it per binding); a lookup error counts as "not enrolled", which
// only makes a review flag the user.
func (i identity) MFAStatus(username string) bool {
	ctx := context.Background()
	u, err := i.st.GetUserByUsername(ctx, username)
	if err != nil {
		return false
	}
	ok, err := i.auth.MFAEnrolled(ctx, u.ID)
	return err == nil && ok
}

// GroupsOf implements access.Membership: the groups of the user named
// username; none for an unknown user.
func (i identity) GroupsOf(ctx context.Context, username string) ([]string, error) {
	u, err := i.st.GetUserByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up the groups of %q: %w", username, err)
	}
	return u.Groups, nil
}

// openIdentity builds the identity and access services over st, both
// writing their events to the audit log with source.
func openIdentity(ctx context.Context, st store.Store, kr *keys.Keyring, source audit.Source) (*auth.Service, *access.Service, error) {
	au, err := auth.New(ctx, st, kr, auth.Options{Events: authSink{source: source}})
	if err != nil {
		return nil, nil, fmt.Errorf("opening identity service: %w", err)
	}
	id := identity{st: st, auth: au}
	ac, err := access.New(ctx, access.Config{Store: st, Record: accessRecorder(st, source), MFA: id, Membership: id})
	if err != nil {
		return nil, nil, fmt.Errorf("opening access service: %w", err)
	}
	return au, ac, nil
}
