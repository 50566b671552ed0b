package auth

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"
)

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	u := e.user(t, "ada")

	enrolled, err := e.svc.MFAEnrolled(ctx, u.ID)
	wantErr(t, err, nil)
	if enrolled {
		t.Fatal("enrolled before enrolment")
	}
	en, err := e.svc.EnrollTOTP(ctx, u.ID)
	wantErr(t, err, nil)
	uri, err := url.Parse(en.URI)
	wantErr(t, err, nil)
	if uri.Scheme != "otpauth" || uri.Host != "totp" || uri.Query().Get("secret") != en.Secret ||
		uri.Query().Get("issuer") != "sluice" || len(en.RecoveryCodes) != 10 {
		t.Fatalf("enrolment = %+v", en)
	}

	t.Run("SecretStoredSealed", func(t *testing.T) {
		row, err := e.st.GetTOTP(ctx, u.ID)
		wantErr(t, err, nil)
		if bytes.Contains(row.Sealed, []byte(en.Secret)) {
			t.Fatal("the stored TOTP secret contains the plaintext")
		}
		if _, err := e.kr.Open(ctx, row.DataKeyID, row.Sealed, totpAAD("usr_other")); err == nil {
			t.Fatal("the sealed secret opened for another user id")
		}
	})
	t.Run("UnconfirmedIsNotMFA", func(t *testing.T) {
		enrolled, _ := e.svc.MFAEnrolled(ctx, u.ID)
		if enrolled {
			t.Fatal("an unconfirmed enrolment counts as MFA")
		}
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, e.clock.Now())), ErrNotEnrolled)
	})
	t.Run("Confirm", func(t *testing.T) {
		wantErr(t, e.svc.ConfirmTOTP(ctx, u.ID, "000000"), ErrInvalidCredentials)
		wantErr(t, e.svc.ConfirmTOTP(ctx, u.ID, code(t, en.Secret, e.clock.Now())), nil)
		enrolled, _ := e.svc.MFAEnrolled(ctx, u.ID)
		if !enrolled {
			t.Fatal("not enrolled after confirmation")
		}
		_, err := e.svc.EnrollTOTP(ctx, u.ID)
		wantErr(t, err, ErrAlreadyEnrolled)
	})
	t.Run("ConfirmationCodeIsUsed", func(t *testing.T) {
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, e.clock.Now())), ErrReplay)
	})
	t.Run("Verify", func(t *testing.T) {
		e.clock.Set(e.clock.Now().Add(60 * time.Second))
		now := e.clock.Now()
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, now)), nil)
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, now)), ErrReplay)
		// The previous step is before the last used one: a replay too.
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, now.Add(-30*time.Second))), ErrReplay)
		// One step ahead (a fast phone clock) is accepted, once.
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, now.Add(30*time.Second))), nil)
		// Two steps ahead is outside the skew.
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, now.Add(90*time.Second))), ErrInvalidCredentials)
	})
	t.Run("WrongCodesLock", func(t *testing.T) {
		e.clock.Set(e.clock.Now().Add(10 * time.Minute))
		for range 4 {
			wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, "12345x"), ErrInvalidCredentials)
		}
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, e.clock.Now())), ErrLocked)
		e.clock.Set(e.clock.Now().Add(time.Minute))
		wantErr(t, e.svc.VerifyTOTP(ctx, u.ID, code(t, en.Secret, e.clock.Now())), nil)
	})
	t.Run("RecoveryCodes", func(t *testing.T) {
		c := en.RecoveryCodes[3]
		wantErr(t, e.svc.UseRecoveryCode(ctx, u.ID, strings.ToLower(strings.ReplaceAll(c, "-", " "))), nil)
		wantErr(t, e.svc.UseRecoveryCode(ctx, u.ID, c), ErrInvalidCredentials)
		wantErr(t, e.svc.UseRecoveryCode(ctx, u.ID, "AAAA-BBBB-CCCC-DDDD"), ErrInvalidCredentials)
		left, err := e.svc.RecoveryCodesLeft(ctx, u.ID)
		wantErr(t, err, nil)
		if left != 9 {
			t.Errorf("%d codes left, want 9", left)
		}
	})
	t.Run("Remove", func(t *testing.T) {
		wantErr(t, e.svc.RemoveTOTP(ctx, "usr_admin", u.ID), nil)
		enrolled, _ := e.svc.MFAEnrolled(ctx, u.ID)
		if enrolled {
			t.Fatal("enrolled after removal")
		}
		wantErr(t, e.svc.UseRecoveryCode(ctx, u.ID, en.RecoveryCodes[0]), ErrInvalidCredentials)
		wantErr(t, e.svc.RemoveTOTP(ctx, "usr_admin", u.ID), ErrNotEnrolled)
	})
}

func TestAPITokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	u := e.user(t, "ada")
	in := func(d time.Duration) time.Time { return e.clock.Now().Add(d) }

	for _, tc := range []struct {
		name string
		p    NewAPIToken
	}{
		{"no expiry", NewAPIToken{OwnerID: u.ID, Name: "ci", Scopes: []string{"runs.trigger"}}},
		{"past expiry", NewAPIToken{OwnerID: u.ID, Name: "ci", Scopes: []string{"runs.trigger"}, ExpiresAt: in(-time.Second)}},
		{"beyond a year", NewAPIToken{OwnerID: u.ID, Name: "ci", Scopes: []string{"runs.trigger"}, ExpiresAt: in(400 * 24 * time.Hour)}},
		{"no scope", NewAPIToken{OwnerID: u.ID, Name: "ci", ExpiresAt: in(time.Hour)}},
		{"no name", NewAPIToken{OwnerID: u.ID, Scopes: []string{"runs.trigger"}, ExpiresAt: in(time.Hour)}},
	} {
		t.Run("Invalid/"+tc.name, func(t *testing.T) {
			_, _, err := e.svc.CreateAPIToken(ctx, tc.p)
			wantErr(t, err, ErrInvalid)
		})
	}

	secret, tok, err := e.svc.CreateAPIToken(ctx, NewAPIToken{Actor: u.ID, OwnerID: u.ID, Name: "ci",
		Scopes: []string{"runs.trigger", "pipelines.read", "runs.trigger"}, ExpiresAt: in(30 * 24 * time.Hour)})
	wantErr(t, err, nil)
	if !strings.HasPrefix(secret, "slu_") || len(secret) != 4+43 {
		t.Fatalf("token %q: want slu_ and 43 base64url characters", secret)
	}
	row, err := e.st.GetAPIToken(ctx, tok.ID)
	wantErr(t, err, nil)
	if bytes.Contains(row.Hash, []byte(secret)) || len(row.Hash) != 32 {
		t.Fatal("the token is not stored as its SHA-256 digest")
	}

	t.Run("Authenticate", func(t *testing.T) {
		got, owner, err := e.svc.AuthenticateToken(ctx, secret)
		wantErr(t, err, nil)
		if owner.ID != u.ID || got.ID != tok.ID || strings.Join(got.Scopes, " ") != "pipelines.read runs.trigger" {
			t.Fatalf("AuthenticateToken = %+v, %+v", got, owner)
		}
	})
	t.Run("LastUsedWrittenOncePerMinute", func(t *testing.T) {
		// A success is recorded with the last-use time, at most once a
		// minute; a failure every time.
		first, _ := e.st.GetAPIToken(ctx, tok.ID)
		e.sink.reset()
		e.clock.Set(e.clock.Now().Add(30 * time.Second))
		for range 3 {
			_, _, err := e.svc.AuthenticateToken(ctx, secret)
			wantErr(t, err, nil)
		}
		row, _ := e.st.GetAPIToken(ctx, tok.ID)
		if !row.LastUsedAt.Equal(first.LastUsedAt) {
			t.Errorf("last use rewritten after 30s: %s -> %s", first.LastUsedAt, row.LastUsedAt)
		}
		if got := e.sink.summary(); len(got) != 0 {
			t.Errorf("uses within the minute recorded %v, want nothing", got)
		}
		e.clock.Set(e.clock.Now().Add(31 * time.Second))
		for range 2 {
			_, _, err := e.svc.AuthenticateToken(ctx, secret)
			wantErr(t, err, nil)
		}
		row, _ = e.st.GetAPIToken(ctx, tok.ID)
		if !row.LastUsedAt.Equal(e.clock.Now()) {
			t.Errorf("last use %s after 61s, want %s", row.LastUsedAt, e.clock.Now())
		}
		_, _, err := e.svc.AuthenticateToken(ctx, secret[:len(secret)-1])
		wantErr(t, err, ErrInvalidCredentials)
		_, _, err = e.svc.AuthenticateToken(ctx, secret[:len(secret)-1])
		wantErr(t, err, ErrInvalidCredentials)
		want := []string{"auth.token.used success", "auth.token.used failure malformed", "auth.token.used failure malformed"}
		if d := cmp.Diff(want, e.sink.summary()); d != "" {
			t.Errorf("events (-want +got):\n%s", d)
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, s := range []string{"", "slu_", secret[:len(secret)-1], "xyz_" + secret[4:], secret[:10] + "!" + secret[11:]} {
			_, _, err := e.svc.AuthenticateToken(ctx, s)
			wantErr(t, err, ErrInvalidCredentials)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		other := secret[:len(secret)-2] + "AA"
		if other == secret {
			other = secret[:len(secret)-2] + "BA"
		}
		_, _, err := e.svc.AuthenticateToken(ctx, other)
		wantErr(t, err, ErrInvalidCredentials)
	})
	t.Run("Expired", func(t *testing.T) {
		short, _, err := e.svc.CreateAPIToken(ctx, NewAPIToken{OwnerID: u.ID, Name: "short", Scopes: []string{"runs.read"}, ExpiresAt: in(time.Hour)})
		wantErr(t, err, nil)
		_, _, err = e.svc.AuthenticateToken(ctx, short)
		wantErr(t, err, nil)
		e.clock.Set(e.clock.Now().Add(time.Hour))
		_, _, err = e.svc.AuthenticateToken(ctx, short)
		wantErr(t, err, ErrExpired)
	})
	t.Run("Revoked", func(t *testing.T) {
		wantErr(t, e.svc.RevokeAPIToken(ctx, u.ID, tok.ID), nil)
		_, _, err := e.svc.AuthenticateToken(ctx, secret)
		wantErr(t, err, ErrRevoked)
		wantErr(t, e.svc.RevokeAPIToken(ctx, u.ID, "tok_nope"), ErrNotFound)
		ts, err := e.svc.ListAPITokens(ctx, u.ID)
		wantErr(t, err, nil)
		if len(ts) != 2 || ts[0].RevokedAt.IsZero() {
			t.Errorf("ListAPITokens = %+v", ts)
		}
	})
}

func TestSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	u := e.user(t, "ada")
	open := func() (string, Session) {
		t.Helper()
		s, x, err := e.svc.NewSession(ctx, u.ID, MethodPassword, true)
		wantErr(t, err, nil)
		return s, x
	}

	t.Run("Authenticate", func(t *testing.T) {
		secret, x := open()
		if len(secret) != 43 || !x.ExpiresAt.Equal(e.clock.Now().Add(12*time.Hour)) || !x.MFA {
			t.Fatalf("NewSession = %q, %+v", secret, x)
		}
		got, owner, err := e.svc.AuthenticateSession(ctx, secret)
		wantErr(t, err, nil)
		if got.ID != x.ID || owner.ID != u.ID {
			t.Fatalf("AuthenticateSession = %+v, %+v", got, owner)
		}
		row, _ := e.st.GetSession(ctx, x.ID)
		if bytes.Contains(row.Hash, []byte(secret)) || len(row.Hash) != 32 {
			t.Fatal("the session id is not stored as its SHA-256 digest")
		}
		_, _, err = e.svc.AuthenticateSession(ctx, secret[:42]+"A")
		if secret[42] == 'A' {
			_, _, err = e.svc.AuthenticateSession(ctx, secret[:42]+"B")
		}
		wantErr(t, err, ErrInvalidCredentials)
	})
	t.Run("IdleTimeout", func(t *testing.T) {
		secret, _ := open()
		// Activity every 20 minutes keeps it alive past 30 minutes.
		for range 3 {
			e.clock.Set(e.clock.Now().Add(20 * time.Minute))
			_, _, err := e.svc.AuthenticateSession(ctx, secret)
			wantErr(t, err, nil)
		}
		e.clock.Set(e.clock.Now().Add(30 * time.Minute))
		_, _, err := e.svc.AuthenticateSession(ctx, secret)
		wantErr(t, err, ErrExpired)
	})
	t.Run("AbsoluteTimeout", func(t *testing.T) {
		secret, _ := open()
		for range 12*3 - 1 {
			e.clock.Set(e.clock.Now().Add(20 * time.Minute))
			_, _, err := e.svc.AuthenticateSession(ctx, secret)
			wantErr(t, err, nil)
		}
		e.clock.Set(e.clock.Now().Add(20 * time.Minute))
		_, _, err := e.svc.AuthenticateSession(ctx, secret)
		wantErr(t, err, ErrExpired)
	})
	t.Run("RevokeAndList", func(t *testing.T) {
		a, xa := open()
		b, _ := open()
		live, err := e.svc.ListSessions(ctx, u.ID)
		wantErr(t, err, nil)
		if len(live) != 2 {
			t.Fatalf("%d live sessions, want 2 (expired ones are not listed)", len(live))
		}
		wantErr(t, e.svc.RevokeSession(ctx, u.ID, xa.ID), nil)
		_, _, err = e.svc.AuthenticateSession(ctx, a)
		wantErr(t, err, ErrRevoked)
		_, _, err = e.svc.AuthenticateSession(ctx, b)
		wantErr(t, err, nil)
		n, err := e.svc.RevokeAllSessions(ctx, "usr_admin", u.ID)
		wantErr(t, err, nil)
		// b and the three earlier sessions, which expired but were
		// never revoked.
		if n != 4 {
			t.Errorf("RevokeAllSessions revoked %d, want 4", n)
		}
		_, _, err = e.svc.AuthenticateSession(ctx, b)
		wantErr(t, err, ErrRevoked)
		wantErr(t, e.svc.RevokeSession(ctx, u.ID, "ses_nope"), ErrNotFound)
	})
}
