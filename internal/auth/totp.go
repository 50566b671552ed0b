package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// TOTP settings: RFC 6238 defaults, the only ones every authenticator app
// supports.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // steps accepted either side of now
	// RecoveryCodes is how many recovery codes an enrolment issues.
	RecoveryCodes = 10
	// recoveryCodeBytes is the entropy of a recovery code: 80 bits, far
	// beyond guessing even with a fast hash (see digest).
	recoveryCodeBytes = 10
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: 0, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}

// Enrollment is what EnrollTOTP returns, shown to the user once: the
// otpauth:// URI (for a QR code), the base32 secret (for typing in) and the
// recovery codes. None of them can be retrieved again.
type Enrollment struct {
	URI           string
	Secret        string
	RecoveryCodes []string
}

// totpAAD binds a sealed TOTP secret to its user: a sealed secret copied to
// another user's row does not open.
func totpAAD(userID string) []byte { return []byte("sluice totp v1\x00" + userID) }

// EnrollTOTP starts a TOTP enrolment for a user: it generates a secret
// (stored sealed by the keyring, never in the clear) and RecoveryCodes
// single-use recovery codes (stored as digests), replacing any unconfirmed
// enrolment. The enrolment counts as MFA once ConfirmTOTP has seen a code
// from it. Errors: ErrNotFound, ErrAlreadyEnrolled (remove the confirmed
// enrolment first with RemoveTOTP). Reports EventTOTPEnrolled.
func (s *Service) EnrollTOTP(ctx context.Context, userID string) (Enrollment, error) {
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrolling TOTP: %w", err)
	}
	if t, err := s.st.GetTOTP(ctx, userID); err == nil && !t.ConfirmedAt.IsZero() {
		return Enrollment{}, fmt.Errorf("enrolling TOTP for %q: %w", u.Username, ErrAlreadyEnrolled)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Enrollment{}, fmt.Errorf("enrolling TOTP for %q: %w", u.Username, err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.issuer, AccountName: u.Username, Period: totpPeriod, Digits: totpDigits,
		Algorithm: otp.AlgorithmSHA1, SecretSize: 20,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrolling TOTP for %q: generating secret: %w", u.Username, err)
	}
	sealed, dataKeyID, err := s.kr.Seal(ctx, keys.PurposeSecret, "totp:"+u.ID, []byte(key.Secret()), totpAAD(u.ID))
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrolling TOTP for %q: %w", u.Username, err)
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrolling TOTP for %q: %w", u.Username, err)
	}
	now := s.now()
	err = s.st.InTx(ctx, func(tx store.Store) error {
		if err := tx.PutTOTP(ctx, store.TOTP{UserID: u.ID, Sealed: sealed, DataKeyID: dataKeyID, CreatedAt: now}); err != nil {
			return err
		}
		if err := tx.ReplaceRecoveryCodes(ctx, u.ID, hashes, now); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventTOTPEnrolled, Outcome: Success, Actor: u.ID, UserID: u.ID,
			Username: u.Username, At: now})
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrolling TOTP for %q: %w", u.Username, err)
	}
	return Enrollment{URI: key.URL(), Secret: key.Secret(), RecoveryCodes: codes}, nil
}

// newRecoveryCodes returns RecoveryCodes codes formatted for reading
// (XXXX-XXXX-XXXX-XXXX, base32) and their digests.
func newRecoveryCodes() ([]string, [][]byte, error) {
	codes := make([]string, RecoveryCodes)
	hashes := make([][]byte, RecoveryCodes)
	for i := range codes {
		b, err := randomBytes(recoveryCodeBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("generating recovery codes: %w", err)
		}
		raw := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b) // 16 characters
		codes[i] = raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
		hashes[i] = digest(raw)
	}
	return codes, hashes, nil
}

// normRecoveryCode undoes the formatting a user may have changed: case,
// dashes, spaces.
func normRecoveryCode(code string) string {
	code = strings.ToUpper(code)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, code)
}

// ConfirmTOTP completes an enrolment with a first code from the user's
// authenticator, proving it was set up. Errors: ErrNotEnrolled (no
// enrolment), ErrInvalidCredentials (wrong code; counts towards the
// lockout), ErrLocked. Reports EventTOTPConfirmed.
func (s *Service) ConfirmTOTP(ctx context.Context, userID, code string) error {
	return s.checkTOTP(ctx, userID, code, true)
}

// VerifyTOTP checks a code from the user's authenticator as a second
// factor: the code of the current 30-second step or one either side
// (clock drift), and only once (a code of a step already used is refused
// as a replay, as is any earlier one). Wrong codes count towards the
// account lockout like wrong passwords. Errors: ErrNotEnrolled,
// ErrInvalidCredentials, ErrReplay, ErrLocked, ErrDisabled. Reports
// EventTOTPVerified.
func (s *Service) VerifyTOTP(ctx context.Context, userID, code string) error {
	return s.checkTOTP(ctx, userID, code, false)
}

func (s *Service) checkTOTP(ctx context.Context, userID, code string, confirm bool) error {
	what, typ := "verifying TOTP code", EventTOTPVerified
	if confirm {
		what, typ = "confirming TOTP enrolment", EventTOTPConfirmed
	}
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	now := s.now()
	if err := s.checkUsable(ctx, u, now, Event{Type: typ}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	t, err := s.st.GetTOTP(ctx, userID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.ConfirmedAt.IsZero() != confirm) {
		if rerr := s.recordAlone(ctx, Event{Type: typ, Outcome: Failure, Reason: ReasonNotEnrolled, Actor: u.ID,
			UserID: u.ID, Username: u.Username, At: now}); rerr != nil {
			return fmt.Errorf("%s: %w", what, rerr)
		}
		if confirm && err == nil {
			return fmt.Errorf("%s: %w", what, ErrAlreadyEnrolled)
		}
		return fmt.Errorf("%s: %w", what, ErrNotEnrolled)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	secret, err := s.kr.Open(ctx, t.DataKeyID, t.Sealed, totpAAD(u.ID))
	if err != nil {
		return fmt.Errorf("%s for %q: %w", what, u.Username, err)
	}
	step, ok, err := matchStep(string(secret), code, now)
	if err != nil {
		return fmt.Errorf("%s for %q: %w", what, u.Username, err)
	}
	if !ok {
		if err := s.recordFailure(ctx, u, now, Event{Type: typ, Reason: ReasonBadCode}); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s: %w", what, ErrInvalidCredentials)
	}
	if step <= t.LastStep {
		if err := s.recordAlone(ctx, Event{Type: typ, Outcome: Failure, Reason: ReasonReplay, Actor: u.ID,
			UserID: u.ID, Username: u.Username, At: now}); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s: %w", what, ErrReplay)
	}
	replay := false
	err = s.st.InTx(ctx, func(tx store.Store) error {
		var err error
		if confirm {
			err = tx.ConfirmTOTP(ctx, u.ID, step, now)
		} else {
			err = tx.UseTOTPStep(ctx, u.ID, step)
		}
		if errors.Is(err, store.ErrConflict) {
			// Another request used this step first.
			replay = true
			return s.record(ctx, tx, Event{Type: typ, Outcome: Failure, Reason: ReasonReplay, Actor: u.ID,
				UserID: u.ID, Username: u.Username, At: now})
		}
		if err != nil {
			return err
		}
		if err := tx.RecordLoginSuccess(ctx, u.ID, now); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: typ, Outcome: Success, Actor: u.ID, UserID: u.ID,
			Username: u.Username, At: now})
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if replay {
		return fmt.Errorf("%s: %w", what, ErrReplay)
	}
	return nil
}

// matchStep finds the time step, within the skew around now, whose code is
// code. Every candidate is computed and compared in constant time.
func matchStep(secret, code string, now time.Time) (int64, bool, error) {
	var (
		found int64
		ok    bool
	)
	code = strings.TrimSpace(code)
	for k := -totpSkew; k <= totpSkew; k++ {
		t := now.Add(time.Duration(k*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts)
		if err != nil {
			return 0, false, fmt.Errorf("computing code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !ok {
			found, ok = t.Unix()/totpPeriod, true
		}
	}
	return found, ok, nil
}

// UseRecoveryCode accepts one of the user's recovery codes as a second
// factor, in place of a TOTP code; each code works once. Wrong codes count
// towards the lockout. Errors: ErrInvalidCredentials, ErrLocked,
// ErrDisabled. Reports EventRecoveryCodeUsed, with the number of codes
// left in Detail["remaining"].
func (s *Service) UseRecoveryCode(ctx context.Context, userID, code string) error {
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("using recovery code: %w", err)
	}
	now := s.now()
	if err := s.checkUsable(ctx, u, now, Event{Type: EventRecoveryCodeUsed}); err != nil {
		return fmt.Errorf("using recovery code: %w", err)
	}
	h := digest(normRecoveryCode(code))
	used := false
	err = s.st.InTx(ctx, func(tx store.Store) error {
		err := tx.UseRecoveryCode(ctx, u.ID, h, now)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		used = true
		left, err := tx.CountRecoveryCodes(ctx, u.ID)
		if err != nil {
			return err
		}
		if err := tx.RecordLoginSuccess(ctx, u.ID, now); err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventRecoveryCodeUsed, Outcome: Success, Actor: u.ID, UserID: u.ID,
			Username: u.Username, At: now, Detail: map[string]string{"remaining": fmt.Sprint(left)}})
	})
	if err != nil {
		return fmt.Errorf("using recovery code: %w", err)
	}
	if !used {
		if err := s.recordFailure(ctx, u, now, Event{Type: EventRecoveryCodeUsed, Reason: ReasonBadCode}); err != nil {
			return fmt.Errorf("using recovery code: %w", err)
		}
		return fmt.Errorf("using recovery code: %w", ErrInvalidCredentials)
	}
	return nil
}

// RecoveryCodesLeft returns how many unused recovery codes a user has.
func (s *Service) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	return s.st.CountRecoveryCodes(ctx, userID)
}

// MFAEnrolled reports whether a user has a confirmed TOTP enrolment. The
// access package decides which roles require one.
func (s *Service) MFAEnrolled(ctx context.Context, userID string) (bool, error) {
	t, err := s.st.GetTOTP(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking TOTP enrolment: %w", err)
	}
	return !t.ConfirmedAt.IsZero(), nil
}

// RemoveTOTP deletes a user's TOTP enrolment and recovery codes (a lost
// device, done by the user or an administrator, actor). Errors:
// ErrNotEnrolled. Reports EventTOTPRemoved.
func (s *Service) RemoveTOTP(ctx context.Context, actor, userID string) error {
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("removing TOTP enrolment: %w", err)
	}
	now := s.now()
	err = s.st.InTx(ctx, func(tx store.Store) error {
		if err := tx.DeleteTOTP(ctx, u.ID); errors.Is(err, store.ErrNotFound) {
			return ErrNotEnrolled
		} else if err != nil {
			return err
		}
		return s.record(ctx, tx, Event{Type: EventTOTPRemoved, Outcome: Success, Actor: actor, UserID: u.ID,
			Username: u.Username, At: now})
	})
	if err != nil {
		return fmt.Errorf("removing TOTP enrolment of %q: %w", u.Username, err)
	}
	return nil
}
