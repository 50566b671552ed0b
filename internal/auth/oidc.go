package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/store"
)

// OIDCConfig configures OIDC sign-in (authorization-code flow with state,
// nonce and PKCE S256).
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// at startup and the ID token's iss must equal it.
	Issuer string
	// ClientID and ClientSecret are sluice's registration at the provider;
	// ID tokens must name ClientID in their audience.
	ClientID     string
	ClientSecret string
	// RedirectURL is sluice's callback URL, as registered.
	RedirectURL string
	// Scopes requested besides openid; nil means profile, email and groups.
	Scopes []string
	// GroupsClaim is the ID-token claim holding the user's groups; ""
	// means "groups".
	GroupsClaim string
	// GroupMap maps provider group names to sluice groups. When it is
	// non-nil, only mapped groups are kept (the provider's other groups
	// are ignored); when nil, the provider's group names are used as they
	// are.
	GroupMap map[string][]string
	// UsernameClaim names the claim a new account's username comes from;
	// "" means "preferred_username", falling back to the local part of
	// "email".
	UsernameClaim string
	// StateTTL is how long a sign-in may take between BeginOIDC and
	// CompleteOIDC; 0 means 10 minutes.
	StateTTL time.Duration
	// HTTPClient reaches the provider; nil means a client with a 30s
	// timeout.
	HTTPClient *http.Client
}

// maxPendingLogins bounds the sign-ins begun and not completed, so that
// unauthenticated BeginOIDC calls cannot exhaust memory.
const maxPendingLogins = 10000

type pendingLogin struct {
	nonce    string
	verifier string
	expires  time.Time
}

type oidcClient struct {
	cfg      OIDCConfig
	issuer   string
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	client   *http.Client
	clock    clock.Clock

	mu      sync.Mutex
	pending map[string]pendingLogin // by state
}

func newOIDCClient(ctx context.Context, cfg OIDCConfig, clk clock.Clock) (*oidcClient, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("OIDC: issuer is required")
	case cfg.ClientID == "":
		return nil, errors.New("OIDC: client id is required")
	case cfg.RedirectURL == "":
		return nil, errors.New("OIDC: redirect URL is required")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 10 * time.Minute
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"profile", "email", "groups"}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, hc), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC: discovering provider %s: %w", cfg.Issuer, err)
	}
	scopes := append([]string{oidc.ScopeOpenID}, slices.DeleteFunc(slices.Clone(cfg.Scopes), func(s string) bool { return s == oidc.ScopeOpenID })...)
	return &oidcClient{
		cfg:    cfg,
		issuer: cfg.Issuer,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: provider.Endpoint(), Scopes: scopes},
		verifier: provider.VerifierContext(oidc.ClientContext(context.WithoutCancel(ctx), hc),
			&oidc.Config{ClientID: cfg.ClientID, Now: clk.Now}),
		client:  hc,
		clock:   clk,
		pending: make(map[string]pendingLogin),
	}, nil
}

// BeginOIDC starts an OIDC sign-in: it returns the provider URL to
// redirect the browser to, and the state, which the caller must also bind
// to the browser (an HttpOnly, SameSite=Lax cookie) and check against the
// callback's state before calling CompleteOIDC, so that a sign-in cannot be
// completed in another browser (login CSRF). The nonce and the PKCE
// verifier stay in the Service, in memory, until CompleteOIDC or StateTTL.
// Errors: ErrOIDCDisabled, ErrConflict (too many sign-ins pending).
func (s *Service) BeginOIDC() (authURL, state string, err error) {
	o := s.oidc
	if o == nil {
		return "", "", ErrOIDCDisabled
	}
	if state, err = newSecret(); err != nil {
		return "", "", fmt.Errorf("beginning OIDC sign-in: %w", err)
	}
	nonce, err := newSecret()
	if err != nil {
		return "", "", fmt.Errorf("beginning OIDC sign-in: %w", err)
	}
	verifier := oauth2.GenerateVerifier()
	now := o.clock.Now()
	o.mu.Lock()
	for k, p := range o.pending {
		if !now.Before(p.expires) {
			delete(o.pending, k)
		}
	}
	if len(o.pending) >= maxPendingLogins {
		o.mu.Unlock()
		return "", "", fmt.Errorf("beginning OIDC sign-in: %w: too many sign-ins in progress", ErrConflict)
	}
	o.pending[state] = pendingLogin{nonce: nonce, verifier: verifier, expires: now.Add(o.cfg.StateTTL)}
	o.mu.Unlock()
	return o.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), state, nil
}

// take removes and returns the pending sign-in of state: each state works
// once.
func (o *oidcClient) take(state string) (pendingLogin, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	if !ok || !o.clock.Now().Before(p.expires) {
		return pendingLogin{}, false
	}
	return p, true
}

// idClaims are the ID-token claims sign-in reads besides the verified
// standard ones.
type idClaims struct {
	Subject           string `json:"sub"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
}

// CompleteOIDC finishes a sign-in begun by BeginOIDC with the state and
// code from the provider's callback: it redeems the code (with the PKCE
// verifier), verifies the ID token (signature by the provider's published
// keys, issuer, audience, expiry, and the nonce), then creates or updates
// the user just in time, without a password: display name and groups
// (through GroupMap) follow the provider at every sign-in. A new account's
// username comes from UsernameClaim; if that names an existing local
// account, sign-in fails with ErrConflict rather than taking the account
// over. Errors: ErrOIDCDisabled, ErrOIDCState, ErrInvalidCredentials
// (provider refused the code, or a bad ID token), ErrConflict, ErrDisabled.
// Reports EventOIDCLogin, and EventUserProvisioned when the account was
// created or changed.
func (s *Service) CompleteOIDC(ctx context.Context, state, code string) (User, error) {
	o := s.oidc
	if o == nil {
		return User{}, ErrOIDCDisabled
	}
	fail := func(reason string, u store.User, sentinel error, cause error) (User, error) {
		if err := s.recordAlone(ctx, Event{Type: EventOIDCLogin, Outcome: Failure, Reason: reason, Actor: u.ID,
			UserID: u.ID, Username: u.Username, Detail: map[string]string{"issuer": o.issuer}}); err != nil {
			return User{}, fmt.Errorf("completing OIDC sign-in: %w", err)
		}
		if cause != nil {
			return User{}, fmt.Errorf("completing OIDC sign-in: %w: %w", sentinel, cause)
		}
		return User{}, fmt.Errorf("completing OIDC sign-in: %w", sentinel)
	}
	p, ok := o.take(state)
	if !ok {
		return fail(ReasonBadState, store.User{}, ErrOIDCState, nil)
	}
	hctx := oidc.ClientContext(ctx, o.client)
	hctx = context.WithValue(hctx, oauth2.HTTPClient, o.client)
	tok, err := o.oauth.Exchange(hctx, code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		return fail(ReasonProviderError, store.User{}, ErrInvalidCredentials, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return fail(ReasonBadIDToken, store.User{}, ErrInvalidCredentials, errors.New("no id_token in the token response"))
	}
	idt, err := o.verifier.Verify(hctx, raw)
	if err != nil {
		return fail(ReasonBadIDToken, store.User{}, ErrInvalidCredentials, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.nonce)) != 1 {
		return fail(ReasonBadIDToken, store.User{}, ErrInvalidCredentials, errors.New("nonce mismatch"))
	}
	var c idClaims
	var all map[string]any
	if err := idt.Claims(&c); err != nil {
		return fail(ReasonBadIDToken, store.User{}, ErrInvalidCredentials, err)
	}
	if err := idt.Claims(&all); err != nil {
		return fail(ReasonBadIDToken, store.User{}, ErrInvalidCredentials, err)
	}
	if idt.Subject == "" {
		return fail(ReasonBadIDToken, store.User{}, ErrInvalidCredentials, errors.New("empty subject"))
	}
	groups := o.mapGroups(all[o.cfg.GroupsClaim])
	display := strings.ToValidUTF8(c.Name, "")
	if display == "" {
		display = c.PreferredUsername
	}
	if len(display) > maxDisplayName || checkDisplayName(display) != nil {
		display = ""
	}
	now := s.now()
	var (
		u       store.User
		reason  string
		created bool
	)
	err = s.st.InTx(ctx, func(tx store.Store) error {
		var err error
		u, err = tx.GetUserByOIDC(ctx, o.issuer, idt.Subject)
		switch {
		case errors.Is(err, store.ErrNotFound):
			name := o.username(all, idt.Subject)
			if CheckUsername(name) != nil {
				reason = ReasonBadIDToken
				return fmt.Errorf("%w: no usable username claim %q", ErrInvalidCredentials, o.cfg.UsernameClaim)
			}
			if u.ID, err = newID("usr_"); err != nil {
				return err
			}
			u = store.User{ID: u.ID, Username: name, DisplayName: display, Groups: groups, OIDCIssuer: o.issuer,
				OIDCSubject: idt.Subject, CreatedAt: now, UpdatedAt: now, LastLoginAt: now}
			if err := tx.CreateUser(ctx, u); errors.Is(err, store.ErrConflict) {
				reason = ReasonUsernameTaken
				return fmt.Errorf("%w: username %q belongs to another account", ErrConflict, name)
			} else if err != nil {
				return err
			}
			created = true
		case err != nil:
			return err
		case u.Disabled:
			reason = ReasonDisabled
			return ErrDisabled
		case u.DisplayName != display || !slices.Equal(u.Groups, groups):
			u.DisplayName, u.Groups, u.UpdatedAt = display, groups, now
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
		default:
			if err := tx.RecordLoginSuccess(ctx, u.ID, now); err != nil {
				return err
			}
			return s.record(ctx, tx, Event{Type: EventOIDCLogin, Outcome: Success, Actor: u.ID, UserID: u.ID,
				Username: u.Username, At: now, Detail: map[string]string{"issuer": o.issuer, "subject": idt.Subject}})
		}
		if err := tx.RecordLoginSuccess(ctx, u.ID, now); err != nil {
			return err
		}
		if err := s.record(ctx, tx, Event{Type: EventUserProvisioned, Outcome: Success, Actor: u.ID, UserID: u.ID,
			Username: u.Username, At: now, Detail: map[string]string{"created": fmt.Sprint(created),
				"groups": strings.Join(groups, ","), "issuer": o.issuer}}); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventOIDCLogin, Outcome: Success, Actor: u.ID, UserID: u.ID,
			Username: u.Username, At: now, Detail: map[string]string{"issuer": o.issuer, "subject": idt.Subject}})
	})
	if err != nil {
		if reason != "" {
			ru := u
			if reason == ReasonUsernameTaken || reason == ReasonBadIDToken {
				ru = store.User{Username: u.Username}
			}
			if rerr := s.recordAlone(ctx, Event{Type: EventOIDCLogin, Outcome: Failure, Reason: reason, Actor: ru.ID,
				UserID: ru.ID, Username: ru.Username, At: now, Detail: map[string]string{"issuer": o.issuer,
					"subject": idt.Subject}}); rerr != nil {
				return User{}, fmt.Errorf("completing OIDC sign-in: %w", errors.Join(err, rerr))
			}
		}
		return User{}, fmt.Errorf("completing OIDC sign-in: %w", err)
	}
	u.LastLoginAt = now
	return userView(u), nil
}

// mapGroups turns the groups claim into sluice groups.
func (o *oidcClient) mapGroups(v any) []string {
	var in []string
	switch g := v.(type) {
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok {
				in = append(in, s)
			}
		}
	case string:
		in = strings.Fields(g)
	}
	var out []string
	for _, g := range in {
		if o.cfg.GroupMap != nil {
			out = append(out, o.cfg.GroupMap[g]...)
			continue
		}
		if groupRE.Match(g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var usernameUnsafe = regexp.MustCompile(`[^a-z0-9._-]+`)

// username derives a new account's username from the claims: the
// configured claim (or the local part of email), lower-cased with unsafe
// characters replaced; if nothing usable remains, "oidc-" and a digest of
// the subject.
func (o *oidcClient) username(claims map[string]any, subject string) string {
	v, _ := claims[o.cfg.UsernameClaim].(string)
	if v == "" {
		if e, _ := claims["email"].(string); e != "" {
			v, _, _ = strings.Cut(e, "@")
		}
	}
	v = usernameUnsafe.ReplaceAllString(strings.ToLower(v), "-")
	v = strings.Trim(v, "-._")
	if len(v) > 64 {
		v = v[:64]
	}
	if CheckUsername(v) == nil {
		return v
	}
	d := sha256.Sum256([]byte(o.issuer + "\x00" + subject))
	return "oidc-" + hex.EncodeToString(d[:6])
}
