package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/internal/store"
)

// PutDataKey records a wrapped data key. A zero CreatedAt means now.
// ErrConflict if the id exists.
func (o ops) PutDataKey(ctx context.Context, k store.DataKey) error {
	switch {
	case k.ID == "":
		return errors.New("recording data key: empty id")
	case len(k.Wrapped) == 0:
		return fmt.Errorf("recording data key %q: empty wrapped key", k.ID)
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertDataKey, k.ID, k.Purpose, k.Ref, int64(k.KEKKeyID), k.Wrapped,
			micros(orNow(k.CreatedAt)))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("id exists: %w", store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("inserting data key: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording data key %q: %w", k.ID, err)
	}
	return nil
}

// GetDataKey returns a data key by id, or ErrNotFound.
func (o ops) GetDataKey(ctx context.Context, id string) (store.DataKey, error) {
	k, err := scanDataKey(o.q.QueryRowContext(ctx, qGetDataKey, id))
	return found(k, err, "getting data key %q", id)
}

// ListDataKeys returns up to limit data keys with id > afterID, by id.
func (o ops) ListDataKeys(ctx context.Context, afterID string, limit int) ([]store.DataKey, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("listing data keys: limit %d: must be positive", limit)
	}
	return queryAll(ctx, o.q, scanDataKey, "listing data keys", qListDataKeys, afterID, limit)
}

// RewrapDataKey replaces a data key's wrapped bytes if it is still wrapped
// by fromKEK. A zero at means now. ErrConflict if its KEK key changed,
// ErrNotFound if it does not exist.
func (o ops) RewrapDataKey(ctx context.Context, id string, fromKEK, toKEK uint32, wrapped []byte, at time.Time) error {
	if len(wrapped) == 0 {
		return fmt.Errorf("re-wrapping data key %q: empty wrapped key", id)
	}
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qRewrapDataKey, int64(toKEK), wrapped, micros(orNow(at)), id, int64(fromKEK))
		if err != nil {
			return fmt.Errorf("updating data key: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("updating data key: %w", err)
		}
		if n == 1 {
			return nil
		}
		var one int
		err = q.QueryRowContext(ctx, qDataKeyExists, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("checking data key: %w", err)
		}
		return fmt.Errorf("no longer wrapped by KEK key %d: %w", fromKEK, store.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("re-wrapping data key %q: %w", id, err)
	}
	return nil
}

// CountDataKeysByKEK counts data keys per wrapping KEK key id.
func (o ops) CountDataKeysByKEK(ctx context.Context) (map[uint32]int64, error) {
	rows, err := o.q.QueryContext(ctx, qCountDataKeysByKEK)
	if err != nil {
		return nil, fmt.Errorf("counting data keys: %w", err)
	}
	defer rows.Close()
	counts := make(map[uint32]int64)
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("counting data keys: %w", err)
		}
		counts[uint32(id)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting data keys: %w", err)
	}
	return counts, nil
}

// PutSecret stores the next version of s.Name. A zero SetAt means now.
func (o ops) PutSecret(ctx context.Context, s store.Secret) (store.Secret, error) {
	switch {
	case s.Name == "":
		return store.Secret{}, errors.New("storing secret: empty name")
	case len(s.Sealed) == 0:
		return store.Secret{}, fmt.Errorf("storing secret %q: empty sealed value", s.Name)
	}
	s.SetAt = time.UnixMicro(orNow(s.SetAt).UnixMicro()).UTC()
	err := o.atomic(ctx, func(q querier) error {
		var latest int
		if err := q.QueryRowContext(ctx, qLatestSecretVersion, s.Name).Scan(&latest); err != nil {
			return fmt.Errorf("reading latest version: %w", err)
		}
		s.Version = latest + 1
		if _, err := q.ExecContext(ctx, qInsertSecret, s.Name, s.Version, s.Sealed, s.DataKeyID, s.SetBy,
			micros(s.SetAt)); err != nil {
			return fmt.Errorf("inserting version %d: %w", s.Version, err)
		}
		return nil
	})
	if err != nil {
		return store.Secret{}, fmt.Errorf("storing secret %q: %w", s.Name, err)
	}
	return s, nil
}

// GetSecret returns the latest version of a secret, or ErrNotFound.
func (o ops) GetSecret(ctx context.Context, name string) (store.Secret, error) {
	s, err := scanSecret(o.q.QueryRowContext(ctx, qGetSecret, name))
	return found(s, err, "getting secret %q", name)
}

// ListSecrets returns the latest version of each secret by name, without
// the sealed values.
func (o ops) ListSecrets(ctx context.Context) ([]store.Secret, error) {
	return queryAll(ctx, o.q, scanSecret, "listing secrets", qListSecrets)
}

// DeleteSecret deletes every version of a secret; ErrNotFound if none.
func (o ops) DeleteSecret(ctx context.Context, name string) error {
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qDeleteSecret, name)
		if err != nil {
			return fmt.Errorf("deleting: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("deleting: %w", err)
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting secret %q: %w", name, err)
	}
	return nil
}
