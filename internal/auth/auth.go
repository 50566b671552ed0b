// Package auth is identity for sluice: who is calling. It keeps users with
// argon2id password hashes, account lockout, TOTP second factors with
// recovery codes, API tokens, browser sessions and OIDC sign-in, all
// persisted through store.UserStore.
//
// What a caller may do is decided elsewhere (the access package); auth only
// establishes identity. The API is made for an HTTP server to call directly:
// each method takes the request's context, returns a user-safe sentinel
// error (ErrInvalidCredentials, ErrLocked, ...) that maps to one response
// code, and reports every authentication event to an EventSink inside the
// store transaction of the change it describes, so that an audit log can
// refuse a change whose record cannot be written.
//
// Secrets are never stored in the clear: passwords as argon2id hashes,
// TOTP secrets sealed by the keyring, and API tokens, session ids and
// recovery codes (high-entropy random values) as SHA-256 digests.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// Sentinel errors. Their messages are safe to show to the caller; wrapped
// causes are not. Check with errors.Is.
var (
	// ErrInvalidCredentials: the username, password, token, session, code
	// or recovery code is wrong, unknown or malformed. It does not say
	// which, so that it cannot be used to find accounts.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrLocked: too many failed attempts; the account is locked for a
	// while (see LockoutPolicy).
	ErrLocked = errors.New("account temporarily locked")
	// ErrDisabled: the account is disabled.
	ErrDisabled = errors.New("account disabled")
	// ErrExpired: the token or session has expired.
	ErrExpired = errors.New("credential expired")
	// ErrRevoked: the token or session was revoked.
	ErrRevoked = errors.New("credential revoked")
	// ErrReplay: the TOTP code was already used.
	ErrReplay = errors.New("code already used")
	// ErrWeakPassword: the password fails the policy; the error's message
	// says why.
	ErrWeakPassword = errors.New("password does not meet the policy")
	// ErrInvalid: an argument is malformed (a bad username, an expiry out
	// of range); the message names it.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotEnrolled: the user has no confirmed TOTP enrolment.
	ErrNotEnrolled = errors.New("no TOTP enrolment")
	// ErrAlreadyEnrolled: the user already has a confirmed TOTP enrolment;
	// remove it before enrolling again.
	ErrAlreadyEnrolled = errors.New("TOTP already enrolled")
	// ErrOIDCState: the OIDC state is unknown, already used or expired.
	ErrOIDCState = errors.New("invalid or expired sign-in state")
	// ErrOIDCDisabled: OIDC sign-in is not configured.
	ErrOIDCDisabled = errors.New("OIDC sign-in is not configured")
	// ErrNotFound is store.ErrNotFound, re-exported for callers of
	// GetUser and the revocation methods.
	ErrNotFound = store.ErrNotFound
	// ErrConflict is store.ErrConflict: the username or OIDC identity is
	// taken.
	ErrConflict = store.ErrConflict
)

// Defaults of Options.
const (
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionAbsolute = 12 * time.Hour
	DefaultTOTPIssuer      = "sluice"
	// MaxTokenLifetime is the longest expiry an API token may have: a
	// token that never expires outlives the reason it was made.
	MaxTokenLifetime = 366 * 24 * time.Hour
	// touchInterval bounds how often a token's or session's last-use time
	// is written: at most once a minute, so that a busy client does not
	// turn every request into a write.
	touchInterval = time.Minute
)

// LockoutPolicy is when failed attempts lock an account (ASVS 2.2.1): after
// Threshold consecutive failures the account is locked for Base, and each
// further failure after a lockout ends doubles it, up to Max. A success
// resets the count. Attempts made while locked are refused without being
// counted, so an attacker cannot extend a lockout indefinitely.
type LockoutPolicy struct {
	// Threshold is the number of failures that locks; 0 means 5.
	Threshold int
	// Base is the first lockout; 0 means 1 minute.
	Base time.Duration
	// Max caps the lockout; 0 means 1 hour.
	Max time.Duration
}

func (p LockoutPolicy) withDefaults() LockoutPolicy {
	if p.Threshold <= 0 {
		p.Threshold = 5
	}
	if p.Base <= 0 {
		p.Base = time.Minute
	}
	if p.Max <= 0 {
		p.Max = time.Hour
	}
	return p
}

// Duration is the lockout after failures consecutive failures; 0 below
// the threshold.
func (p LockoutPolicy) Duration(failures int) time.Duration {
	p = p.withDefaults()
	if failures < p.Threshold {
		return 0
	}
	d := p.Base
	for i := p.Threshold; i < failures && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Options configure a Service. Every field but Events has a safe default.
type Options struct {
	// Events receives every authentication event; required, because an
	// identity service whose events go nowhere cannot be audited.
	Events EventSink
	// Clock drives lockouts, expiries and TOTP; nil means the wall clock.
	Clock clock.Clock
	// Hash are the argon2id parameters for new hashes; zero means
	// DefaultParams. Stored hashes keep their own and are upgraded on login.
	Hash Params
	// Lockout is the failed-attempt policy.
	Lockout LockoutPolicy
	// SessionIdle ends a session unused for this long; 0 means 30 minutes.
	SessionIdle time.Duration
	// SessionAbsolute ends a session this long after it began, whatever
	// its use; 0 means 12 hours.
	SessionAbsolute time.Duration
	// TOTPIssuer names sluice in authenticator apps; "" means "sluice".
	TOTPIssuer string
	// OIDC enables OIDC sign-in; nil leaves it off.
	OIDC *OIDCConfig
}

// Service is the identity service. It is safe for concurrent use.
type Service struct {
	st      store.Store
	kr      *keys.Keyring
	events  EventSink
	clock   clock.Clock
	params  Params
	lockout LockoutPolicy
	idle    time.Duration
	maxAge  time.Duration
	issuer  string
	// dummyHash is verified when a login names no account, so that the
	// answer takes as long as for a real one. It is made on first need:
	// hashing costs tens of milliseconds and megabytes, which every
	// command would otherwise pay at start-up.
	dummyOnce sync.Once
	dummyHash string
	// verify checks a password against a stored hash: verifyPassword,
	// which tests wrap to see that every login path does the work.
	verify func(encoded, password string, want Params) (ok, rehash bool, err error)
	oidc   *oidcClient
}

// New returns a Service over st, sealing TOTP secrets with kr. With
// opts.OIDC set it fetches the provider's discovery document, hence ctx.
func New(ctx context.Context, st store.Store, kr *keys.Keyring, opts Options) (*Service, error) {
	switch {
	case st == nil:
		return nil, errors.New("creating identity service: nil store")
	case kr == nil:
		return nil, errors.New("creating identity service: nil keyring")
	case opts.Events == nil:
		return nil, errors.New("creating identity service: Options.Events is required")
	case opts.SessionIdle < 0 || opts.SessionAbsolute < 0:
		return nil, errors.New("creating identity service: negative session timeout")
	}
	s := &Service{
		st: st, kr: kr, events: opts.Events, clock: opts.Clock, params: opts.Hash,
		lockout: opts.Lockout.withDefaults(), idle: opts.SessionIdle, maxAge: opts.SessionAbsolute,
		issuer: opts.TOTPIssuer,
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.params == (Params{}) {
		s.params = DefaultParams
	}
	if err := s.params.validate(); err != nil {
		return nil, fmt.Errorf("creating identity service: hash parameters: %w", err)
	}
	if s.idle == 0 {
		s.idle = DefaultSessionIdle
	}
	if s.maxAge == 0 {
		s.maxAge = DefaultSessionAbsolute
	}
	if s.issuer == "" {
		s.issuer = DefaultTOTPIssuer
	}
	s.verify = verifyPassword
	if opts.OIDC != nil {
		var err error
		if s.oidc, err = newOIDCClient(ctx, *opts.OIDC, s.clock); err != nil {
			return nil, fmt.Errorf("creating identity service: %w", err)
		}
	}
	return s, nil
}

// User is an account as callers see it: without credentials or counters.
type User struct {
	ID                 string
	Username           string
	DisplayName        string
	Groups             []string
	Disabled           bool
	MustChangePassword bool
	// HasPassword is false for accounts that sign in only through OIDC.
	HasPassword bool
	// OIDCIssuer and OIDCSubject identify an OIDC account; "" otherwise.
	OIDCIssuer  string
	OIDCSubject string
	LockedUntil time.Time
	LastLoginAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func userView(u store.User) User {
	return User{
		ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Groups: u.Groups, Disabled: u.Disabled,
		MustChangePassword: u.MustChangePassword, HasPassword: u.PasswordHash != "",
		OIDCIssuer: u.OIDCIssuer, OIDCSubject: u.OIDCSubject, LockedUntil: u.LockedUntil,
		LastLoginAt: u.LastLoginAt, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

// now is the service clock's time at the store's microsecond precision.
func (s *Service) now() time.Time {
	return s.clock.Now().UTC().Truncate(time.Microsecond)
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return b, nil
}

// newID returns prefix and 16 random bytes in hex: unguessable, so that an
// id seen in a listing or a log cannot be turned into another's record.
func newID(prefix string) (string, error) {
	b, err := randomBytes(16)
	if err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b), nil
}

// newSecret returns 32 random bytes (256 bits) base64url-encoded.
func newSecret() (string, error) {
	b, err := randomBytes(32)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// digest is the stored form of a high-entropy secret. SHA-256 is enough:
// a 256-bit (or 80-bit, for recovery codes) random value cannot be found
// by guessing whatever the speed of the hash, so a slow password hash
// would only add latency to every request.
func digest(secret string) []byte {
	d := sha256.Sum256([]byte(secret))
	return d[:]
}

// burnDummy spends the time of a password verification on no account: the
// first time by making the dummy hash (which costs the same), afterwards
// by verifying against it.
func (s *Service) burnDummy(password string) {
	made := false
	s.dummyOnce.Do(func() {
		made = true
		dummy, err := randomBytes(32)
		if err == nil {
			s.dummyHash, _ = hashPassword(hex.EncodeToString(dummy), s.params)
		}
	})
	if !made && s.dummyHash != "" {
		_, _, _ = s.verify(s.dummyHash, password, s.params)
	}
}
