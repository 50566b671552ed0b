package storetest

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

// testUsers covers the UserStore: users, lockout counters, TOTP
// enrolments, recovery codes, API tokens and sessions.
func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	ada := store.User{ID: "u1", Username: "ada", DisplayName: "Ada", Groups: []string{"eng", "ops"},
		MustChangePassword: true, PasswordHash: "$argon2id$h1", PasswordChangedAt: at(1), CreatedAt: at(1), UpdatedAt: at(1)}
	bob := store.User{ID: "u2", Username: "bob", OIDCIssuer: "https://idp", OIDCSubject: "s-2", CreatedAt: at(2), UpdatedAt: at(2)}
	wantErr(t, s.CreateUser(ctx, ada), nil)
	wantErr(t, s.CreateUser(ctx, bob), nil)

	t.Run("Users", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			u    store.User
		}{
			{"same id", store.User{ID: "u1", Username: "other", CreatedAt: at(3)}},
			{"same username", store.User{ID: "u9", Username: "ada", CreatedAt: at(3)}},
			{"same OIDC identity", store.User{ID: "u9", Username: "other", OIDCIssuer: "https://idp", OIDCSubject: "s-2", CreatedAt: at(3)}},
		} {
			wantErr(t, s.CreateUser(ctx, tc.u), store.ErrConflict)
		}
		got, err := s.GetUser(ctx, "u1")
		wantErr(t, err, nil)
		if d := cmp.Diff(ada, got, eq()); d != "" {
			t.Errorf("GetUser (-want +got):\n%s", d)
		}
		got, err = s.GetUserByUsername(ctx, "bob")
		wantErr(t, err, nil)
		if d := cmp.Diff(bob, got, eq()); d != "" {
			t.Errorf("GetUserByUsername (-want +got):\n%s", d)
		}
		got, err = s.GetUserByOIDC(ctx, "https://idp", "s-2")
		wantErr(t, err, nil)
		if got.ID != "u2" {
			t.Errorf("GetUserByOIDC = %q", got.ID)
		}
		_, err = s.GetUserByOIDC(ctx, "", "")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetUser(ctx, "nope")
		wantErr(t, err, store.ErrNotFound)
		all, err := s.ListUsers(ctx)
		wantErr(t, err, nil)
		if len(all) != 2 || all[0].Username != "ada" || all[1].Username != "bob" {
			t.Errorf("ListUsers = %+v", all)
		}

		upd := bob
		upd.DisplayName, upd.Groups, upd.Disabled, upd.UpdatedAt = "Bob", []string{"viewer"}, true, at(5)
		upd.Username, upd.PasswordHash = "ignored", "ignored" // not profile fields
		wantErr(t, s.UpdateUser(ctx, upd), nil)
		got, _ = s.GetUser(ctx, "u2")
		want := bob
		want.DisplayName, want.Groups, want.Disabled, want.UpdatedAt = "Bob", []string{"viewer"}, true, at(5)
		if d := cmp.Diff(want, got, eq()); d != "" {
			t.Errorf("after UpdateUser (-want +got):\n%s", d)
		}
		wantErr(t, s.UpdateUser(ctx, store.User{ID: "nope", UpdatedAt: at(5)}), store.ErrNotFound)
	})

	t.Run("Passwords", func(t *testing.T) {
		wantErr(t, s.SetPasswordHash(ctx, store.SetPasswordHash{UserID: "u1", Hash: "$argon2id$h2", At: at(10)}), nil)
		got, _ := s.GetUser(ctx, "u1")
		if got.PasswordHash != "$argon2id$h2" || got.MustChangePassword || !got.PasswordChangedAt.Equal(at(10)) {
			t.Errorf("after SetPasswordHash: %+v", got)
		}
		// A rehash is a compare-and-set on the old hash.
		err := s.SetPasswordHash(ctx, store.SetPasswordHash{UserID: "u1", Hash: "$argon2id$h3", At: at(11), Rehash: true, From: "$argon2id$h1"})
		wantErr(t, err, store.ErrConflict)
		wantErr(t, s.SetPasswordHash(ctx, store.SetPasswordHash{UserID: "u1", Hash: "$argon2id$h3", At: at(11), Rehash: true, From: "$argon2id$h2"}), nil)
		got, _ = s.GetUser(ctx, "u1")
		if got.PasswordHash != "$argon2id$h3" || !got.PasswordChangedAt.Equal(at(10)) {
			t.Errorf("after rehash: %+v", got)
		}
		wantErr(t, s.SetPasswordHash(ctx, store.SetPasswordHash{UserID: "nope", Hash: "x"}), store.ErrNotFound)
	})

	t.Run("LoginCounters", func(t *testing.T) {
		// Concurrent failures are each counted.
		var wg sync.WaitGroup
		var errs atomic.Int32
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.RecordLoginFailure(ctx, "u1"); err != nil {
					errs.Add(1)
				}
			}()
		}
		wg.Wait()
		if errs.Load() != 0 {
			t.Fatal("RecordLoginFailure failed")
		}
		n, err := s.RecordLoginFailure(ctx, "u1")
		wantErr(t, err, nil)
		if n != 9 {
			t.Errorf("failures = %d, want 9", n)
		}
		wantErr(t, s.LockUser(ctx, "u1", at(100)), nil)
		got, _ := s.GetUser(ctx, "u1")
		if got.FailedLogins != 9 || !got.LockedUntil.Equal(at(100)) {
			t.Errorf("after failures: %d, locked until %s", got.FailedLogins, got.LockedUntil)
		}
		wantErr(t, s.RecordLoginSuccess(ctx, "u1", at(101)), nil)
		got, _ = s.GetUser(ctx, "u1")
		if got.FailedLogins != 0 || !got.LockedUntil.IsZero() || !got.LastLoginAt.Equal(at(101)) {
			t.Errorf("after success: %+v", got)
		}
		_, err = s.RecordLoginFailure(ctx, "nope")
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.LockUser(ctx, "nope", at(1)), store.ErrNotFound)
		wantErr(t, s.RecordLoginSuccess(ctx, "nope", at(1)), store.ErrNotFound)
	})

	t.Run("TOTP", func(t *testing.T) {
		_, err := s.GetTOTP(ctx, "u2")
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.PutTOTP(ctx, store.TOTP{UserID: "nope", Sealed: []byte("x"), DataKeyID: "k"}), store.ErrNotFound)
		in := store.TOTP{UserID: "u2", Sealed: []byte("sealed"), DataKeyID: "dk1", CreatedAt: at(20)}
		wantErr(t, s.PutTOTP(ctx, in), nil)
		got, err := s.GetTOTP(ctx, "u2")
		wantErr(t, err, nil)
		if d := cmp.Diff(in, got, eq()); d != "" {
			t.Errorf("GetTOTP (-want +got):\n%s", d)
		}
		wantErr(t, s.ConfirmTOTP(ctx, "u2", 100, at(21)), nil)
		wantErr(t, s.UseTOTPStep(ctx, "u2", 100), store.ErrConflict)
		wantErr(t, s.UseTOTPStep(ctx, "u2", 99), store.ErrConflict)
		wantErr(t, s.UseTOTPStep(ctx, "u2", 101), nil)
		wantErr(t, s.UseTOTPStep(ctx, "nope", 101), store.ErrNotFound)
		got, _ = s.GetTOTP(ctx, "u2")
		if got.LastStep != 101 || !got.ConfirmedAt.Equal(at(21)) {
			t.Errorf("after use: %+v", got)
		}

		// Exactly one of several concurrent uses of one step wins.
		var wg sync.WaitGroup
		var wins atomic.Int32
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.UseTOTPStep(ctx, "u2", 200) == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d concurrent uses of one step succeeded, want 1", wins.Load())
		}

		hashes := [][]byte{[]byte("h1"), []byte("h2"), []byte("h3")}
		wantErr(t, s.ReplaceRecoveryCodes(ctx, "u2", hashes, at(22)), nil)
		wantErr(t, s.ReplaceRecoveryCodes(ctx, "nope", hashes, at(22)), store.ErrNotFound)
		wantErr(t, s.UseRecoveryCode(ctx, "u2", []byte("h2"), at(23)), nil)
		wantErr(t, s.UseRecoveryCode(ctx, "u2", []byte("h2"), at(24)), store.ErrNotFound)
		wantErr(t, s.UseRecoveryCode(ctx, "u1", []byte("h1"), at(24)), store.ErrNotFound)
		n, err := s.CountRecoveryCodes(ctx, "u2")
		wantErr(t, err, nil)
		if n != 2 {
			t.Errorf("%d codes left, want 2", n)
		}
		wantErr(t, s.DeleteTOTP(ctx, "u2"), nil)
		wantErr(t, s.DeleteTOTP(ctx, "u2"), store.ErrNotFound)
		if n, _ := s.CountRecoveryCodes(ctx, "u2"); n != 0 {
			t.Errorf("%d recovery codes survive DeleteTOTP", n)
		}
	})

	t.Run("APITokens", func(t *testing.T) {
		tok := store.APIToken{ID: "t1", Hash: []byte("digest-1"), Name: "ci", OwnerID: "u1",
			Scopes: []string{"runs.read", "runs.trigger"}, CreatedAt: at(30), ExpiresAt: at(3600)}
		wantErr(t, s.CreateAPIToken(ctx, tok), nil)
		dup := tok
		dup.ID = "t2"
		wantErr(t, s.CreateAPIToken(ctx, dup), store.ErrConflict)
		orphan := tok
		orphan.ID, orphan.Hash, orphan.OwnerID = "t3", []byte("digest-3"), "nope"
		wantErr(t, s.CreateAPIToken(ctx, orphan), store.ErrNotFound)
		got, err := s.GetAPITokenByHash(ctx, []byte("digest-1"))
		wantErr(t, err, nil)
		if d := cmp.Diff(tok, got, eq()); d != "" {
			t.Errorf("GetAPITokenByHash (-want +got):\n%s", d)
		}
		_, err = s.GetAPITokenByHash(ctx, []byte("digest-x"))
		wantErr(t, err, store.ErrNotFound)

		wrote, err := s.TouchAPIToken(ctx, "t1", at(40), at(40-60))
		wantErr(t, err, nil)
		if !wrote {
			t.Error("first touch did not write")
		}
		wrote, _ = s.TouchAPIToken(ctx, "t1", at(50), at(50-60))
		if wrote {
			t.Error("touch within the interval wrote")
		}
		wrote, _ = s.TouchAPIToken(ctx, "t1", at(101), at(101-60))
		if !wrote {
			t.Error("touch after the interval did not write")
		}
		_, err = s.TouchAPIToken(ctx, "nope", at(1), at(0))
		wantErr(t, err, store.ErrNotFound)

		wantErr(t, s.RevokeAPIToken(ctx, "t1", at(200)), nil)
		wantErr(t, s.RevokeAPIToken(ctx, "t1", at(300)), nil)
		wantErr(t, s.RevokeAPIToken(ctx, "nope", at(300)), store.ErrNotFound)
		got, _ = s.GetAPIToken(ctx, "t1")
		if !got.RevokedAt.Equal(at(200)) || !got.LastUsedAt.Equal(at(101)) {
			t.Errorf("after revocation: %+v", got)
		}
		list, err := s.ListAPITokens(ctx, "u1")
		wantErr(t, err, nil)
		if len(list) != 1 || list[0].ID != "t1" {
			t.Errorf("ListAPITokens = %+v", list)
		}
	})

	t.Run("Sessions", func(t *testing.T) {
		mk := func(id string, created int) store.Session {
			return store.Session{ID: id, Hash: []byte("h-" + id), UserID: "u1", Method: "password", MFA: true,
				CreatedAt: at(created), LastSeenAt: at(created), ExpiresAt: at(created + 3600)}
		}
		for i, id := range []string{"s1", "s2", "s3"} {
			wantErr(t, s.CreateSession(ctx, mk(id, 10+i)), nil)
		}
		wantErr(t, s.CreateSession(ctx, mk("s1", 1)), store.ErrConflict)
		bad := mk("s9", 1)
		bad.UserID = "nope"
		wantErr(t, s.CreateSession(ctx, bad), store.ErrNotFound)
		got, err := s.GetSessionByHash(ctx, []byte("h-s2"))
		wantErr(t, err, nil)
		if d := cmp.Diff(mk("s2", 11), got, eq()); d != "" {
			t.Errorf("GetSessionByHash (-want +got):\n%s", d)
		}
		wrote, err := s.TouchSession(ctx, "s2", at(100), at(100-60))
		wantErr(t, err, nil)
		if !wrote {
			t.Error("touch did not write")
		}
		wantErr(t, s.RevokeSession(ctx, "s1", at(200)), nil)
		wantErr(t, s.RevokeSession(ctx, "nope", at(200)), store.ErrNotFound)
		live, err := s.ListSessions(ctx, "u1")
		wantErr(t, err, nil)
		if len(live) != 2 || live[0].ID != "s2" || !live[0].LastSeenAt.Equal(at(100)) || live[1].ID != "s3" {
			t.Errorf("ListSessions = %+v", live)
		}
		n, err := s.RevokeUserSessions(ctx, "u1", at(300))
		wantErr(t, err, nil)
		if n != 2 {
			t.Errorf("RevokeUserSessions = %d, want 2", n)
		}
		// Revoked before at(250): s1 only; everything by a later instant.
		n, err = s.PruneSessions(ctx, at(250))
		wantErr(t, err, nil)
		if n != 1 {
			t.Errorf("PruneSessions(250) = %d, want 1", n)
		}
		n, _ = s.PruneSessions(ctx, at(10000))
		if n != 2 {
			t.Errorf("PruneSessions(10000) = %d, want 2", n)
		}
		_, err = s.GetSession(ctx, "s2")
		wantErr(t, err, store.ErrNotFound)
	})
}
