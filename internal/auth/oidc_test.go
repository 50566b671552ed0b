package auth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/sluicehq/sluice/internal/clock"
)

// tamperedUser is a provider account whose ID token the provider (still
// signing it with its real key) alters: a wrong audience or nonce.
type tamperedUser struct {
	*mockoidc.MockUser
	tamper func(*mockoidc.IDTokenClaims)
}

func (u tamperedUser) Claims(scope []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	u.tamper(c)
	return u.MockUser.Claims(scope, c)
}

// oidcEnv starts a real OIDC provider on loopback and a Service using it.
func oidcEnv(t *testing.T) (*env, *mockoidc.MockOIDC) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatalf("starting OIDC provider: %v", err)
	}
	t.Cleanup(func() { m.Shutdown() })
	e := newEnv(t, Options{
		Clock: clock.NewFake(time.Now()),
		OIDC: &OIDCConfig{
			Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret,
			RedirectURL: "http://127.0.0.1:1/auth/callback",
			GroupMap:    map[string][]string{"engineering": {"data-engineer"}, "security": {"security-engineer", "viewer"}},
		},
	})
	return e, m
}

// authorize plays the browser: it follows authURL to the provider and
// returns the code and state the provider redirects back with.
func authorize(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("authorizing: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), "http://127.0.0.1:1/auth/callback?") {
		t.Fatalf("redirected to %s", loc)
	}
	return loc.Query().Get("code"), loc.Query().Get("state")
}

func TestOIDC(t *testing.T) {
	t.Parallel()
	e, m := oidcEnv(t)
	ctx := t.Context()

	t.Run("BeginUsesPKCEAndNonce", func(t *testing.T) {
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		q := must(url.Parse(authURL)).Query()
		if q.Get("state") != state || q.Get("nonce") == "" || q.Get("code_challenge") == "" ||
			q.Get("code_challenge_method") != "S256" || !strings.Contains(q.Get("scope"), "openid") {
			t.Fatalf("auth URL %s", authURL)
		}
	})

	var first User
	t.Run("GoodLoginCreatesUser", func(t *testing.T) {
		m.QueueUser(&mockoidc.MockUser{Subject: "sub-1", PreferredUsername: "Jane.Doe", Email: "jane@example.com",
			Groups: []string{"engineering", "design"}})
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, gotState := authorize(t, authURL)
		if gotState != state {
			t.Fatalf("state came back as %q", gotState)
		}
		first, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, nil)
		if first.Username != "jane.doe" || first.HasPassword || first.OIDCSubject != "sub-1" ||
			first.OIDCIssuer != m.Issuer() || !cmp.Equal(first.Groups, []string{"data-engineer"}) {
			t.Fatalf("CompleteOIDC = %+v", first)
		}
		// No password: password login is refused.
		_, err = e.svc.Login(ctx, "jane.doe", goodPassword)
		wantErr(t, err, ErrInvalidCredentials)
	})
	t.Run("ReplayedStateAndCode", func(t *testing.T) {
		m.QueueUser(&mockoidc.MockUser{Subject: "sub-1", PreferredUsername: "jane.doe", Groups: []string{"engineering"}})
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, _ := authorize(t, authURL)
		_, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, nil)
		// The same callback again: the state is spent.
		_, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, ErrOIDCState)
		// A fresh state with the spent code: the provider refuses it (and
		// the PKCE verifier does not match either).
		_, state2, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		_, err = e.svc.CompleteOIDC(ctx, state2, code)
		wantErr(t, err, ErrInvalidCredentials)
	})
	t.Run("WrongState", func(t *testing.T) {
		authURL, _, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, _ := authorize(t, authURL)
		_, err = e.svc.CompleteOIDC(ctx, "forged-state", code)
		wantErr(t, err, ErrOIDCState)
	})
	t.Run("WrongNonce", func(t *testing.T) {
		m.QueueUser(tamperedUser{&mockoidc.MockUser{Subject: "sub-1", PreferredUsername: "jane.doe"},
			func(c *mockoidc.IDTokenClaims) { c.Nonce = "another-nonce" }})
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, _ := authorize(t, authURL)
		_, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, ErrInvalidCredentials)
	})
	t.Run("WrongAudience", func(t *testing.T) {
		m.QueueUser(tamperedUser{&mockoidc.MockUser{Subject: "sub-1", PreferredUsername: "jane.doe"},
			func(c *mockoidc.IDTokenClaims) { c.Audience = jwt.ClaimStrings{"another-client"} }})
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, _ := authorize(t, authURL)
		_, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, ErrInvalidCredentials)
	})
	t.Run("WrongIssuer", func(t *testing.T) {
		m.QueueUser(tamperedUser{&mockoidc.MockUser{Subject: "sub-1", PreferredUsername: "jane.doe"},
			func(c *mockoidc.IDTokenClaims) { c.Issuer = "https://evil.example" }})
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, _ := authorize(t, authURL)
		_, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, ErrInvalidCredentials)
	})
	t.Run("GroupsFollowProvider", func(t *testing.T) {
		m.QueueUser(&mockoidc.MockUser{Subject: "sub-1", PreferredUsername: "renamed", Groups: []string{"security"}})
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, _ := authorize(t, authURL)
		u, err := e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, nil)
		if u.ID != first.ID || u.Username != "jane.doe" || !cmp.Equal(u.Groups, []string{"security-engineer", "viewer"}) {
			t.Fatalf("second sign-in = %+v", u)
		}
	})
	t.Run("LocalUsernameNotTakenOver", func(t *testing.T) {
		local := e.user(t, "root.admin")
		m.QueueUser(&mockoidc.MockUser{Subject: "sub-2", PreferredUsername: "root.admin"})
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, _ := authorize(t, authURL)
		_, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, ErrConflict)
		got, _ := e.svc.GetUser(ctx, local.ID)
		if got.OIDCSubject != "" {
			t.Fatal("a local account was linked to an OIDC identity")
		}
	})
	t.Run("DisabledRefused", func(t *testing.T) {
		yes := true
		_, err := e.svc.UpdateUser(ctx, first.ID, UserUpdate{Disabled: &yes})
		wantErr(t, err, nil)
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		m.QueueUser(&mockoidc.MockUser{Subject: "sub-1", PreferredUsername: "jane.doe"})
		code, _ := authorize(t, authURL)
		_, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, ErrDisabled)
	})

	// Last: it moves the clock past the lifetime of the provider's tokens.
	t.Run("ExpiredState", func(t *testing.T) {
		authURL, state, err := e.svc.BeginOIDC()
		wantErr(t, err, nil)
		code, _ := authorize(t, authURL)
		fc := e.svc.clock.(*clock.Fake)
		fc.Set(fc.Now().Add(11 * time.Minute))
		_, err = e.svc.CompleteOIDC(ctx, state, code)
		wantErr(t, err, ErrOIDCState)
	})

	var failures []string
	for _, s := range e.sink.summary() {
		if strings.HasPrefix(s, string(EventOIDCLogin)+" failure") {
			failures = append(failures, strings.TrimPrefix(s, string(EventOIDCLogin)+" failure "))
		}
	}
	want := []string{ReasonBadState, ReasonProviderError, ReasonBadState, ReasonBadIDToken, ReasonBadIDToken,
		ReasonBadIDToken, ReasonUsernameTaken, ReasonDisabled, ReasonBadState}
	if d := cmp.Diff(want, failures); d != "" {
		t.Errorf("failure events (-want +got):\n%s", d)
	}
}

func TestOIDCDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	_, _, err := e.svc.BeginOIDC()
	wantErr(t, err, ErrOIDCDisabled)
	_, err = e.svc.CompleteOIDC(context.Background(), "s", "c")
	wantErr(t, err, ErrOIDCDisabled)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
