package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// TokenPrefix starts every API token, so that secret scanners (and people)
// recognise a leaked one.
const TokenPrefix = "slu_"

// tokenLen is the length of a token: the prefix and 32 bytes in unpadded
// base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// APIToken describes a token without its secret.
type APIToken struct {
	ID      string
	Name    string
	OwnerID string
	// Scopes are the permissions the token carries; the access package
	// checks that they are a subset of the owner's at every use.
	Scopes     []string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
}

func tokenView(t store.APIToken) APIToken {
	return APIToken{ID: t.ID, Name: t.Name, OwnerID: t.OwnerID, Scopes: t.Scopes, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

// NewAPIToken describes a token to create.
type NewAPIToken struct {
	Actor   string
	OwnerID string
	// Name says what the token is for; 1 to 100 printable characters.
	Name string
	// Scopes are permission strings; at least one.
	Scopes []string
	// ExpiresAt is required, after now and at most MaxTokenLifetime ahead.
	ExpiresAt time.Time
}

// CreateAPIToken creates an API token and returns its secret, which is
// shown once and stored only as its SHA-256 digest. Errors: ErrInvalid
// (name, scopes, expiry), ErrNotFound (owner), ErrDisabled (owner).
// Reports EventTokenCreated.
func (s *Service) CreateAPIToken(ctx context.Context, p NewAPIToken) (string, APIToken, error) {
	now := s.now()
	switch {
	case p.Name == "" || len(p.Name) > 100 || strings.ContainsFunc(p.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", APIToken{}, fmt.Errorf("creating API token: %w: name %q: want 1 to 100 printable characters", ErrInvalid, truncate(p.Name))
	case len(p.Scopes) == 0:
		return "", APIToken{}, fmt.Errorf("creating API token %q: %w: at least one scope is required", p.Name, ErrInvalid)
	case p.ExpiresAt.IsZero():
		return "", APIToken{}, fmt.Errorf("creating API token %q: %w: an expiry is required", p.Name, ErrInvalid)
	case !p.ExpiresAt.After(now):
		return "", APIToken{}, fmt.Errorf("creating API token %q: %w: expiry %s is in the past", p.Name, ErrInvalid, p.ExpiresAt.Format(time.RFC3339))
	case p.ExpiresAt.Sub(now) > MaxTokenLifetime:
		return "", APIToken{}, fmt.Errorf("creating API token %q: %w: expiry %s is more than a year ahead", p.Name, ErrInvalid, p.ExpiresAt.Format(time.RFC3339))
	}
	scopes := slices.Clone(p.Scopes)
	for _, sc := range scopes {
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
			return "", APIToken{}, fmt.Errorf("creating API token %q: %w: scope %q: want a permission name", p.Name, ErrInvalid, truncate(sc))
		}
	}
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	owner, err := s.st.GetUser(ctx, p.OwnerID)
	if err != nil {
		return "", APIToken{}, fmt.Errorf("creating API token %q: owner: %w", p.Name, err)
	}
	if owner.Disabled {
		return "", APIToken{}, fmt.Errorf("creating API token %q for %q: %w", p.Name, owner.Username, ErrDisabled)
	}
	raw, err := newSecret()
	if err != nil {
		return "", APIToken{}, fmt.Errorf("creating API token %q: %w", p.Name, err)
	}
	secret := TokenPrefix + raw
	t := store.APIToken{Hash: digest(secret), Name: p.Name, OwnerID: owner.ID, Scopes: scopes, CreatedAt: now,
		ExpiresAt: p.ExpiresAt.UTC().Truncate(time.Microsecond)}
	if t.ID, err = newID("tok_"); err != nil {
		return "", APIToken{}, fmt.Errorf("creating API token %q: %w", p.Name, err)
	}
	err = s.st.InTx(ctx, func(tx store.Store) error {
		if err := tx.CreateAPIToken(ctx, t); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventTokenCreated, Outcome: Success, Actor: p.Actor, UserID: owner.ID,
			Username: owner.Username, Ref: t.ID, At: now, Detail: map[string]string{
				"name": t.Name, "scopes": strings.Join(scopes, ","), "expires_at": t.ExpiresAt.Format(time.RFC3339)}})
	})
	if err != nil {
		return "", APIToken{}, fmt.Errorf("creating API token %q: %w", p.Name, err)
	}
	return secret, tokenView(t), nil
}

// AuthenticateToken resolves an API token presented by a client to the
// token and its owner. The token is found by its SHA-256 digest (an index
// lookup whose timing depends on the digest, not on how much of the
// secret matched) and compared again in constant time. Its last-use time
// is written at most once a minute. Errors: ErrInvalidCredentials
// (malformed or unknown), ErrExpired, ErrRevoked, ErrDisabled (owner).
// Reports EventTokenUsed through the store itself (no transaction: a
// successful use changes nothing worth rolling back): every failure, and a
// success when it writes the last-use time.
func (s *Service) AuthenticateToken(ctx context.Context, secret string) (APIToken, User, error) {
	now := s.now()
	fail := func(reason string, t store.APIToken, u store.User, sentinel error) (APIToken, User, error) {
		if err := s.record(ctx, s.st, Event{Type: EventTokenUsed, Outcome: Failure, Reason: reason, Actor: u.ID,
			UserID: u.ID, Username: u.Username, Ref: t.ID, At: now}); err != nil {
			return APIToken{}, User{}, fmt.Errorf("authenticating API token: %w", err)
		}
		return APIToken{}, User{}, fmt.Errorf("authenticating API token: %w", sentinel)
	}
	if len(secret) != tokenLen || !strings.HasPrefix(secret, TokenPrefix) {
		return fail(ReasonMalformed, store.APIToken{}, store.User{}, ErrInvalidCredentials)
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret[len(TokenPrefix):]); err != nil {
		return fail(ReasonMalformed, store.APIToken{}, store.User{}, ErrInvalidCredentials)
	}
	h := digest(secret)
	t, err := s.st.GetAPITokenByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return fail(ReasonUnknownToken, store.APIToken{}, store.User{}, ErrInvalidCredentials)
	}
	if err != nil {
		return APIToken{}, User{}, fmt.Errorf("authenticating API token: %w", err)
	}
	if subtle.ConstantTimeCompare(t.Hash, h) != 1 {
		return fail(ReasonUnknownToken, store.APIToken{}, store.User{}, ErrInvalidCredentials)
	}
	u, err := s.st.GetUser(ctx, t.OwnerID)
	if err != nil {
		return APIToken{}, User{}, fmt.Errorf("authenticating API token %q: owner: %w", t.ID, err)
	}
	switch {
	case !t.RevokedAt.IsZero():
		return fail(ReasonRevoked, t, u, ErrRevoked)
	case !now.Before(t.ExpiresAt):
		return fail(ReasonExpired, t, u, ErrExpired)
	case u.Disabled:
		return fail(ReasonDisabled, t, u, ErrDisabled)
	}
	// A successful use is recorded with the last-use time, at most once a
	// minute per token: a script polling the API would otherwise write an
	// audit record (a durable commit) per request, which caps the API's
	// throughput and buries the log. What the token is used for is
	// audited by the actions themselves; failures are recorded every time.
	if t.LastUsedAt.IsZero() || now.Sub(t.LastUsedAt) >= touchInterval {
		touched, err := s.st.TouchAPIToken(ctx, t.ID, now, now.Add(-touchInterval))
		if err != nil {
			return APIToken{}, User{}, fmt.Errorf("authenticating API token %q: %w", t.ID, err)
		}
		t.LastUsedAt = now
		if touched {
			if err := s.record(ctx, s.st, Event{Type: EventTokenUsed, Outcome: Success, Actor: u.ID, UserID: u.ID,
				Username: u.Username, Ref: t.ID, At: now}); err != nil {
				return APIToken{}, User{}, fmt.Errorf("authenticating API token: %w", err)
			}
		}
	}
	return tokenView(t), userView(u), nil
}

// ListAPITokens returns a user's tokens, revoked and expired included,
// oldest first.
func (s *Service) ListAPITokens(ctx context.Context, ownerID string) ([]APIToken, error) {
	ts, err := s.st.ListAPITokens(ctx, ownerID)
	if err != nil {
		return nil, err
	}
	out := make([]APIToken, len(ts))
	for i, t := range ts {
		out[i] = tokenView(t)
	}
	return out, nil
}

// RevokeAPIToken revokes a token at once. Errors: ErrNotFound. Reports
// EventTokenRevoked.
func (s *Service) RevokeAPIToken(ctx context.Context, actor, tokenID string) error {
	now := s.now()
	err := s.st.InTx(ctx, func(tx store.Store) error {
		t, err := tx.GetAPIToken(ctx, tokenID)
		if err != nil {
			return err
		}
		if err := tx.RevokeAPIToken(ctx, tokenID, now); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventTokenRevoked, Outcome: Success, Actor: actor, UserID: t.OwnerID,
			Ref: t.ID, At: now, Detail: map[string]string{"name": t.Name}})
	})
	if err != nil {
		return fmt.Errorf("revoking API token %q: %w", tokenID, err)
	}
	return nil
}
