package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/internal/store"
)

// The SQL of the UserStore (see migrations/0004_auth.sql).
const (
	userColumns = `id, username, display_name, groups, disabled, must_change_password, password_hash,
	oidc_issuer, oidc_subject, failed_logins, locked_until, last_login_at, password_changed_at,
	created_at, updated_at`

	qInsertUser = `INSERT INTO users (` + userColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, ?, ?, ?)`
	qGetUser           = `SELECT ` + userColumns + ` FROM users WHERE id = ?`
	qGetUserByUsername = `SELECT ` + userColumns + ` FROM users WHERE username = ?`
	qGetUserByOIDC     = `SELECT ` + userColumns + ` FROM users
	WHERE oidc_issuer = ? AND oidc_subject = ? AND oidc_subject <> ''`
	qListUsers = `SELECT ` + userColumns + ` FROM users ORDER BY username`
	// Arguments: display name, groups, disabled, must change, issuer,
	// subject, updated at, id.
	qUpdateUser = `UPDATE users SET display_name = ?, groups = ?, disabled = ?, must_change_password = ?,
	oidc_issuer = ?, oidc_subject = ?, updated_at = ? WHERE id = ?`
	// Arguments: hash, must change, changed at, updated at, id.
	qSetPasswordHash = `UPDATE users SET password_hash = ?, must_change_password = ?,
	password_changed_at = ?, updated_at = ? WHERE id = ?`
	// Arguments: hash, updated at, id, from.
	qRehashPassword      = `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?`
	qRecordLoginFailure  = `UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins`
	qLockUser            = `UPDATE users SET locked_until = ? WHERE id = ?`
	qRecordLoginSuccess  = `UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?`
	qUserExists          = `SELECT 1 FROM users WHERE id = ?`
	totpColumns          = `user_id, sealed, data_key_id, confirmed_at, last_step, created_at`
	qPutTOTP             = `INSERT OR REPLACE INTO totp (` + totpColumns + `) VALUES (?, ?, ?, ?, ?, ?)`
	qGetTOTP             = `SELECT ` + totpColumns + ` FROM totp WHERE user_id = ?`
	qConfirmTOTP         = `UPDATE totp SET confirmed_at = ?, last_step = max(last_step, ?) WHERE user_id = ?`
	qUseTOTPStep         = `UPDATE totp SET last_step = ? WHERE user_id = ? AND last_step < ?`
	qTOTPExists          = `SELECT 1 FROM totp WHERE user_id = ?`
	qDeleteTOTP          = `DELETE FROM totp WHERE user_id = ?`
	qDeleteRecoveryCodes = `DELETE FROM recovery_codes WHERE user_id = ?`
	qInsertRecoveryCode  = `INSERT INTO recovery_codes (user_id, hash, created_at, used_at) VALUES (?, ?, ?, NULL)`
	qUseRecoveryCode     = `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL`
	qCountRecoveryCodes  = `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`
	apiTokenColumns      = `id, hash, name, owner_id, scopes, created_at, expires_at, last_used_at, revoked_at`
	qInsertAPIToken      = `INSERT INTO api_tokens (` + apiTokenColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)`
	qGetAPIToken         = `SELECT ` + apiTokenColumns + ` FROM api_tokens WHERE id = ?`
	qGetAPITokenByHash   = `SELECT ` + apiTokenColumns + ` FROM api_tokens WHERE hash = ?`
	qListAPITokens       = `SELECT ` + apiTokenColumns + ` FROM api_tokens WHERE owner_id = ? ORDER BY created_at, rowid`
	qTouchAPIToken       = `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`
	qAPITokenExists      = `SELECT 1 FROM api_tokens WHERE id = ?`
	qRevokeAPIToken      = `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`
	sessionColumns       = `id, hash, user_id, method, mfa, created_at, last_seen_at, expires_at, revoked_at`
	qInsertSession       = `INSERT INTO sessions (` + sessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`
	qGetSession          = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = ?`
	qGetSessionByHash    = `SELECT ` + sessionColumns + ` FROM sessions WHERE hash = ?`
	qListSessions        = `SELECT ` + sessionColumns + ` FROM sessions WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at, rowid`
	qTouchSession        = `UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`
	qSessionExists       = `SELECT 1 FROM sessions WHERE id = ?`
	qRevokeSession       = `UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`
	qRevokeUserSessions  = `UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`
	qPruneSessions       = `DELETE FROM sessions WHERE revoked_at < ? OR expires_at < ?`
)

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func encodeStrings(ss []string) (string, error) {
	if ss == nil {
		ss = []string{}
	}
	b, err := json.Marshal(ss)
	if err != nil {
		return "", fmt.Errorf("encoding list: %w", err)
	}
	return string(b), nil
}

func decodeStrings(s string) ([]string, error) {
	var ss []string
	if err := json.Unmarshal([]byte(s), &ss); err != nil {
		return nil, fmt.Errorf("decoding list: %w", err)
	}
	if len(ss) == 0 {
		return nil, nil
	}
	return ss, nil
}

func scanUser(s scanner) (store.User, error) {
	var (
		u                            store.User
		groups                       string
		disabled, mustChange, failed int64
		locked, lastLogin, pwChanged sql.NullInt64
		created, updated             int64
	)
	err := s.Scan(&u.ID, &u.Username, &u.DisplayName, &groups, &disabled, &mustChange, &u.PasswordHash,
		&u.OIDCIssuer, &u.OIDCSubject, &failed, &locked, &lastLogin, &pwChanged, &created, &updated)
	if err != nil {
		return store.User{}, err
	}
	if u.Groups, err = decodeStrings(groups); err != nil {
		return store.User{}, fmt.Errorf("user %q: groups: %w", u.ID, err)
	}
	u.Disabled = disabled != 0
	u.MustChangePassword = mustChange != 0
	u.FailedLogins = int(failed)
	u.LockedUntil = fromMicros(locked)
	u.LastLoginAt = fromMicros(lastLogin)
	u.PasswordChangedAt = fromMicros(pwChanged)
	u.CreatedAt = time.UnixMicro(created).UTC()
	u.UpdatedAt = time.UnixMicro(updated).UTC()
	return u, nil
}

func scanTOTP(s scanner) (store.TOTP, error) {
	var (
		t         store.TOTP
		confirmed sql.NullInt64
		created   int64
	)
	if err := s.Scan(&t.UserID, &t.Sealed, &t.DataKeyID, &confirmed, &t.LastStep, &created); err != nil {
		return store.TOTP{}, err
	}
	t.ConfirmedAt = fromMicros(confirmed)
	t.CreatedAt = time.UnixMicro(created).UTC()
	return t, nil
}

func scanAPIToken(s scanner) (store.APIToken, error) {
	var (
		t                store.APIToken
		scopes           string
		created, expires int64
		used, revoked    sql.NullInt64
	)
	if err := s.Scan(&t.ID, &t.Hash, &t.Name, &t.OwnerID, &scopes, &created, &expires, &used, &revoked); err != nil {
		return store.APIToken{}, err
	}
	var err error
	if t.Scopes, err = decodeStrings(scopes); err != nil {
		return store.APIToken{}, fmt.Errorf("api token %q: scopes: %w", t.ID, err)
	}
	t.CreatedAt = time.UnixMicro(created).UTC()
	t.ExpiresAt = time.UnixMicro(expires).UTC()
	t.LastUsedAt = fromMicros(used)
	t.RevokedAt = fromMicros(revoked)
	return t, nil
}

func scanSession(s scanner) (store.Session, error) {
	var (
		x                      store.Session
		mfa                    int64
		created, seen, expires int64
		revoked                sql.NullInt64
	)
	if err := s.Scan(&x.ID, &x.Hash, &x.UserID, &x.Method, &mfa, &created, &seen, &expires, &revoked); err != nil {
		return store.Session{}, err
	}
	x.MFA = mfa != 0
	x.CreatedAt = time.UnixMicro(created).UTC()
	x.LastSeenAt = time.UnixMicro(seen).UTC()
	x.ExpiresAt = time.UnixMicro(expires).UTC()
	x.RevokedAt = fromMicros(revoked)
	return x, nil
}

// execAffected runs a statement and returns the number of rows it changed.
func execAffected(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// updateOne runs an UPDATE of one row by key, ErrNotFound if it matched
// none.
func updateOne(ctx context.Context, q querier, query string, args ...any) error {
	n, err := execAffected(ctx, q, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// CreateUser inserts a user. Zero CreatedAt and UpdatedAt mean now.
func (o ops) CreateUser(ctx context.Context, u store.User) error {
	switch {
	case u.ID == "":
		return errors.New("creating user: empty id")
	case u.Username == "":
		return fmt.Errorf("creating user %q: empty username", u.ID)
	}
	groups, err := encodeStrings(u.Groups)
	if err != nil {
		return fmt.Errorf("creating user %q: groups: %w", u.Username, err)
	}
	created := orNow(u.CreatedAt)
	updated := u.UpdatedAt
	if updated.IsZero() {
		updated = created
	}
	err = o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertUser, u.ID, u.Username, u.DisplayName, groups,
			boolInt(u.Disabled), boolInt(u.MustChangePassword), u.PasswordHash, u.OIDCIssuer, u.OIDCSubject,
			micros(u.PasswordChangedAt), micros(created), micros(updated))
		switch {
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY), isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
			return fmt.Errorf("id, username or OIDC identity exists: %w", store.ErrConflict)
		case err != nil:
			return fmt.Errorf("inserting: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating user %q: %w", u.Username, err)
	}
	return nil
}

func (o ops) getUser(ctx context.Context, what, query string, args ...any) (store.User, error) {
	u, err := scanUser(o.q.QueryRowContext(ctx, query, args...))
	return found(u, err, "getting user %s", what)
}

// GetUser returns a user by id, or ErrNotFound.
func (o ops) GetUser(ctx context.Context, id string) (store.User, error) {
	return o.getUser(ctx, fmt.Sprintf("%q", id), qGetUser, id)
}

// GetUserByUsername returns a user by username, or ErrNotFound.
func (o ops) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	return o.getUser(ctx, fmt.Sprintf("named %q", username), qGetUserByUsername, username)
}

// GetUserByOIDC returns the user with an OIDC identity, or ErrNotFound.
func (o ops) GetUserByOIDC(ctx context.Context, issuer, subject string) (store.User, error) {
	return o.getUser(ctx, fmt.Sprintf("with OIDC subject %q of %q", subject, issuer), qGetUserByOIDC, issuer, subject)
}

// ListUsers returns every user ordered by username.
func (o ops) ListUsers(ctx context.Context) ([]store.User, error) {
	return queryAll(ctx, o.q, scanUser, "listing users", qListUsers)
}

// UpdateUser writes the profile fields of u.ID. A zero UpdatedAt means now.
func (o ops) UpdateUser(ctx context.Context, u store.User) error {
	groups, err := encodeStrings(u.Groups)
	if err != nil {
		return fmt.Errorf("updating user %q: groups: %w", u.ID, err)
	}
	err = o.atomic(ctx, func(q querier) error {
		err := updateOne(ctx, q, qUpdateUser, u.DisplayName, groups, boolInt(u.Disabled),
			boolInt(u.MustChangePassword), u.OIDCIssuer, u.OIDCSubject, micros(orNow(u.UpdatedAt)), u.ID)
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
			return fmt.Errorf("OIDC identity belongs to another user: %w", store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("updating user %q: %w", u.ID, err)
	}
	return nil
}

// SetPasswordHash replaces a password hash. A zero At means now.
func (o ops) SetPasswordHash(ctx context.Context, p store.SetPasswordHash) error {
	at := micros(orNow(p.At))
	err := o.atomic(ctx, func(q querier) error {
		if p.Rehash {
			n, err := execAffected(ctx, q, qRehashPassword, p.Hash, at, p.UserID, p.From)
			if err != nil || n == 1 {
				return err
			}
			var one int
			err = q.QueryRowContext(ctx, qUserExists, p.UserID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("checking user: %w", err)
			}
			return fmt.Errorf("password changed meanwhile: %w", store.ErrConflict)
		}
		return updateOne(ctx, q, qSetPasswordHash, p.Hash, boolInt(p.MustChange), at, at, p.UserID)
	})
	if err != nil {
		return fmt.Errorf("setting password of user %q: %w", p.UserID, err)
	}
	return nil
}

// RecordLoginFailure increments the failed-login count and returns it.
func (o ops) RecordLoginFailure(ctx context.Context, userID string) (int, error) {
	var n int
	err := o.atomic(ctx, func(q querier) error {
		err := q.QueryRowContext(ctx, qRecordLoginFailure, userID).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("recording failed login of user %q: %w", userID, err)
	}
	return n, nil
}

// LockUser sets when a user's lockout ends.
func (o ops) LockUser(ctx context.Context, userID string, until time.Time) error {
	err := o.atomic(ctx, func(q querier) error {
		return updateOne(ctx, q, qLockUser, micros(until), userID)
	})
	if err != nil {
		return fmt.Errorf("locking user %q: %w", userID, err)
	}
	return nil
}

// RecordLoginSuccess resets the failure count and lockout. A zero at means
// now.
func (o ops) RecordLoginSuccess(ctx context.Context, userID string, at time.Time) error {
	err := o.atomic(ctx, func(q querier) error {
		return updateOne(ctx, q, qRecordLoginSuccess, micros(orNow(at)), userID)
	})
	if err != nil {
		return fmt.Errorf("recording login of user %q: %w", userID, err)
	}
	return nil
}

// PutTOTP records a TOTP enrolment, replacing any previous one. A zero
// CreatedAt means now.
func (o ops) PutTOTP(ctx context.Context, t store.TOTP) error {
	if len(t.Sealed) == 0 || t.DataKeyID == "" {
		return fmt.Errorf("recording TOTP enrolment of user %q: empty sealed secret or data key", t.UserID)
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qPutTOTP, t.UserID, t.Sealed, t.DataKeyID, micros(t.ConfirmedAt), t.LastStep,
			micros(orNow(t.CreatedAt)))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
			return fmt.Errorf("no such user: %w", store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("recording TOTP enrolment of user %q: %w", t.UserID, err)
	}
	return nil
}

// GetTOTP returns a user's enrolment, or ErrNotFound.
func (o ops) GetTOTP(ctx context.Context, userID string) (store.TOTP, error) {
	t, err := scanTOTP(o.q.QueryRowContext(ctx, qGetTOTP, userID))
	return found(t, err, "getting TOTP enrolment of user %q", userID)
}

// ConfirmTOTP marks an enrolment confirmed. A zero at means now.
func (o ops) ConfirmTOTP(ctx context.Context, userID string, step int64, at time.Time) error {
	err := o.atomic(ctx, func(q querier) error {
		return updateOne(ctx, q, qConfirmTOTP, micros(orNow(at)), step, userID)
	})
	if err != nil {
		return fmt.Errorf("confirming TOTP enrolment of user %q: %w", userID, err)
	}
	return nil
}

// UseTOTPStep records step as accepted unless it is a replay.
func (o ops) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	err := o.atomic(ctx, func(q querier) error {
		n, err := execAffected(ctx, q, qUseTOTPStep, step, userID, step)
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		var one int
		err = q.QueryRowContext(ctx, qTOTPExists, userID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("checking enrolment: %w", err)
		}
		return fmt.Errorf("step %d already used: %w", step, store.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("recording TOTP step of user %q: %w", userID, err)
	}
	return nil
}

// DeleteTOTP removes an enrolment and the user's recovery codes.
func (o ops) DeleteTOTP(ctx context.Context, userID string) error {
	err := o.atomic(ctx, func(q querier) error {
		n, err := execAffected(ctx, q, qDeleteTOTP, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if _, err := q.ExecContext(ctx, qDeleteRecoveryCodes, userID); err != nil {
			return fmt.Errorf("deleting recovery codes: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting TOTP enrolment of user %q: %w", userID, err)
	}
	return nil
}

// ReplaceRecoveryCodes replaces a user's recovery codes. A zero at means
// now.
func (o ops) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error {
	err := o.atomic(ctx, func(q querier) error {
		var one int
		err := q.QueryRowContext(ctx, qUserExists, userID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("checking user: %w", err)
		}
		if _, err := q.ExecContext(ctx, qDeleteRecoveryCodes, userID); err != nil {
			return fmt.Errorf("deleting old codes: %w", err)
		}
		t := micros(orNow(at))
		for i, h := range hashes {
			if len(h) == 0 {
				return fmt.Errorf("code %d: empty digest", i)
			}
			_, err := q.ExecContext(ctx, qInsertRecoveryCode, userID, h, t)
			if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
				return fmt.Errorf("code %d: duplicate digest: %w", i, store.ErrConflict)
			}
			if err != nil {
				return fmt.Errorf("inserting code %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replacing recovery codes of user %q: %w", userID, err)
	}
	return nil
}

// UseRecoveryCode marks an unused code used. A zero at means now.
func (o ops) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	err := o.atomic(ctx, func(q querier) error {
		return updateOne(ctx, q, qUseRecoveryCode, micros(orNow(at)), userID, hash)
	})
	if err != nil {
		return fmt.Errorf("using recovery code of user %q: %w", userID, err)
	}
	return nil
}

// CountRecoveryCodes returns the number of unused recovery codes.
func (o ops) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	if err := o.q.QueryRowContext(ctx, qCountRecoveryCodes, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting recovery codes of user %q: %w", userID, err)
	}
	return n, nil
}

// CreateAPIToken records a token. A zero CreatedAt means now.
func (o ops) CreateAPIToken(ctx context.Context, t store.APIToken) error {
	switch {
	case t.ID == "":
		return errors.New("creating API token: empty id")
	case len(t.Hash) == 0:
		return fmt.Errorf("creating API token %q: empty digest", t.ID)
	case t.ExpiresAt.IsZero():
		return fmt.Errorf("creating API token %q: no expiry", t.ID)
	}
	scopes, err := encodeStrings(t.Scopes)
	if err != nil {
		return fmt.Errorf("creating API token %q: scopes: %w", t.ID, err)
	}
	err = o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertAPIToken, t.ID, t.Hash, t.Name, t.OwnerID, scopes,
			micros(orNow(t.CreatedAt)), micros(t.ExpiresAt))
		switch {
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY), isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
			return fmt.Errorf("id or digest exists: %w", store.ErrConflict)
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
			return fmt.Errorf("no such owner %q: %w", t.OwnerID, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("inserting: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating API token %q: %w", t.ID, err)
	}
	return nil
}

func (o ops) getAPIToken(ctx context.Context, what, query string, arg any) (store.APIToken, error) {
	t, err := scanAPIToken(o.q.QueryRowContext(ctx, query, arg))
	return found(t, err, "getting API token %s", what)
}

// GetAPIToken returns a token by id, or ErrNotFound.
func (o ops) GetAPIToken(ctx context.Context, id string) (store.APIToken, error) {
	return o.getAPIToken(ctx, fmt.Sprintf("%q", id), qGetAPIToken, id)
}

// GetAPITokenByHash returns the token with a digest, or ErrNotFound. The
// digest is not echoed in errors.
func (o ops) GetAPITokenByHash(ctx context.Context, hash []byte) (store.APIToken, error) {
	return o.getAPIToken(ctx, "by digest", qGetAPITokenByHash, hash)
}

// ListAPITokens returns a user's tokens in creation order.
func (o ops) ListAPITokens(ctx context.Context, ownerID string) ([]store.APIToken, error) {
	return queryAll(ctx, o.q, scanAPIToken, fmt.Sprintf("listing API tokens of user %q", ownerID), qListAPITokens, ownerID)
}

// touch runs a conditional last-used update; ErrNotFound if the row is
// missing altogether.
func (o ops) touch(ctx context.Context, update, exists, id string, at, before time.Time) (bool, error) {
	var wrote bool
	err := o.atomic(ctx, func(q querier) error {
		n, err := execAffected(ctx, q, update, micros(at), id, micros(before))
		if err != nil {
			return err
		}
		if n == 1 {
			wrote = true
			return nil
		}
		var one int
		err = q.QueryRowContext(ctx, exists, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return wrote, err
}

// TouchAPIToken sets LastUsedAt if it is unset or older than before.
func (o ops) TouchAPIToken(ctx context.Context, id string, at, before time.Time) (bool, error) {
	wrote, err := o.touch(ctx, qTouchAPIToken, qAPITokenExists, id, at, before)
	if err != nil {
		return false, fmt.Errorf("recording use of API token %q: %w", id, err)
	}
	return wrote, nil
}

// RevokeAPIToken revokes a token. A zero at means now.
func (o ops) RevokeAPIToken(ctx context.Context, id string, at time.Time) error {
	err := o.atomic(ctx, func(q querier) error {
		return updateOne(ctx, q, qRevokeAPIToken, micros(orNow(at)), id)
	})
	if err != nil {
		return fmt.Errorf("revoking API token %q: %w", id, err)
	}
	return nil
}

// CreateSession records a session. Zero CreatedAt and LastSeenAt mean now.
func (o ops) CreateSession(ctx context.Context, s store.Session) error {
	switch {
	case s.ID == "":
		return errors.New("creating session: empty id")
	case len(s.Hash) == 0:
		return fmt.Errorf("creating session %q: empty digest", s.ID)
	case s.ExpiresAt.IsZero():
		return fmt.Errorf("creating session %q: no expiry", s.ID)
	}
	created := orNow(s.CreatedAt)
	seen := s.LastSeenAt
	if seen.IsZero() {
		seen = created
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertSession, s.ID, s.Hash, s.UserID, s.Method, boolInt(s.MFA),
			micros(created), micros(seen), micros(s.ExpiresAt))
		switch {
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY), isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
			return fmt.Errorf("id or digest exists: %w", store.ErrConflict)
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
			return fmt.Errorf("no such user %q: %w", s.UserID, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("inserting: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating session %q: %w", s.ID, err)
	}
	return nil
}

func (o ops) getSession(ctx context.Context, what, query string, arg any) (store.Session, error) {
	s, err := scanSession(o.q.QueryRowContext(ctx, query, arg))
	return found(s, err, "getting session %s", what)
}

// GetSession returns a session by id, or ErrNotFound.
func (o ops) GetSession(ctx context.Context, id string) (store.Session, error) {
	return o.getSession(ctx, fmt.Sprintf("%q", id), qGetSession, id)
}

// GetSessionByHash returns the session with a digest, or ErrNotFound.
func (o ops) GetSessionByHash(ctx context.Context, hash []byte) (store.Session, error) {
	return o.getSession(ctx, "by digest", qGetSessionByHash, hash)
}

// ListSessions returns a user's unrevoked sessions in creation order.
func (o ops) ListSessions(ctx context.Context, userID string) ([]store.Session, error) {
	return queryAll(ctx, o.q, scanSession, fmt.Sprintf("listing sessions of user %q", userID), qListSessions, userID)
}

// TouchSession sets LastSeenAt if it is older than before.
func (o ops) TouchSession(ctx context.Context, id string, at, before time.Time) (bool, error) {
	wrote, err := o.touch(ctx, qTouchSession, qSessionExists, id, at, before)
	if err != nil {
		return false, fmt.Errorf("recording activity of session %q: %w", id, err)
	}
	return wrote, nil
}

// RevokeSession revokes a session. A zero at means now.
func (o ops) RevokeSession(ctx context.Context, id string, at time.Time) error {
	err := o.atomic(ctx, func(q querier) error {
		return updateOne(ctx, q, qRevokeSession, micros(orNow(at)), id)
	})
	if err != nil {
		return fmt.Errorf("revoking session %q: %w", id, err)
	}
	return nil
}

// RevokeUserSessions revokes all of a user's live sessions. A zero at means
// now.
func (o ops) RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int, error) {
	var n int64
	err := o.atomic(ctx, func(q querier) error {
		var err error
		n, err = execAffected(ctx, q, qRevokeUserSessions, micros(orNow(at)), userID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("revoking sessions of user %q: %w", userID, err)
	}
	return int(n), nil
}

// PruneSessions deletes sessions revoked or expired before before.
func (o ops) PruneSessions(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := o.atomic(ctx, func(q querier) error {
		var err error
		b := micros(before)
		n, err = execAffected(ctx, q, qPruneSessions, b, b)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pruning sessions: %w", err)
	}
	return int(n), nil
}
