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

// Privacy: erasure evidence, retention and artifact deletions.
const (
	erasureColumns = `id, subject_hash, at, actor, keys_destroyed, artifacts, row_count`

	qInsertErasure = `INSERT INTO erasures (` + erasureColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`

	qListErasures = `SELECT ` + erasureColumns + ` FROM erasures ORDER BY at, id`

	// Arguments: after id, limit.
	qListAllArtifacts = `SELECT ` + artifactColumns + ` FROM artifacts WHERE id > ? ORDER BY id LIMIT ?`

	// Arguments: path, format, schema, rows, bytes, sha256, plain sha256, id.
	qReplaceArtifact = `UPDATE artifacts SET path = ?, format = ?, schema = ?, row_count = ?,
	byte_count = ?, sha256 = ?, plain_sha256 = ? WHERE id = ?`

	qSetArtifactExpiry = `INSERT INTO artifact_expiry (artifact_id, expires_at) VALUES (?, ?)
	ON CONFLICT (artifact_id) DO UPDATE SET expires_at = excluded.expires_at`

	qGetArtifactExpiry = `SELECT expires_at FROM artifact_expiry WHERE artifact_id = ?`

	// Arguments: now, limit.
	qListExpiredArtifacts = `SELECT a.id, a.run_id, a.task, a.attempt, a.kind, a.path, a.format, a.schema,
	a.row_count, a.byte_count, a.sha256, a.created_at, a.plain_sha256
	FROM artifact_expiry e JOIN artifacts a ON a.id = e.artifact_id
	WHERE e.expires_at <= ? ORDER BY e.expires_at, a.id LIMIT ?`

	qDeleteArtifact = `DELETE FROM artifacts WHERE id = ?`

	qInsertArtifactDeletion = `INSERT INTO artifact_deletions (artifact_id, run_id, task, path, reason, at)
	VALUES (?, ?, ?, ?, ?, ?)`

	qListArtifactDeletions = `SELECT artifact_id, run_id, task, path, reason, at FROM artifact_deletions ORDER BY seq`
)

// RecordErasure records erasure evidence. A zero At means now.
// ErrConflict if the id exists.
func (o ops) RecordErasure(ctx context.Context, e store.Erasure) error {
	switch {
	case e.ID == "":
		return errors.New("recording erasure: empty id")
	case e.SubjectHash == "":
		return fmt.Errorf("recording erasure %q: empty subject hash", e.ID)
	case e.KeysDestroyed < 0 || e.Rows < 0:
		return fmt.Errorf("recording erasure %q: negative count", e.ID)
	}
	arts := e.Artifacts
	if arts == nil {
		arts = []string{}
	}
	js, err := json.Marshal(arts)
	if err != nil {
		return fmt.Errorf("recording erasure %q: encoding artifacts: %w", e.ID, err)
	}
	err = o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertErasure, e.ID, e.SubjectHash, micros(orNow(e.At)), e.Actor,
			int64(e.KeysDestroyed), string(js), e.Rows)
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("id exists: %w", store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("inserting erasure: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording erasure %q: %w", e.ID, err)
	}
	return nil
}

// ListErasures returns every erasure, oldest first.
func (o ops) ListErasures(ctx context.Context) ([]store.Erasure, error) {
	rows, err := o.q.QueryContext(ctx, qListErasures)
	if err != nil {
		return nil, fmt.Errorf("listing erasures: %w", err)
	}
	defer rows.Close()
	var es []store.Erasure
	for rows.Next() {
		var (
			e    store.Erasure
			at   int64
			kd   int64
			arts string
		)
		if err := rows.Scan(&e.ID, &e.SubjectHash, &at, &e.Actor, &kd, &arts, &e.Rows); err != nil {
			return nil, fmt.Errorf("listing erasures: %w", err)
		}
		if err := json.Unmarshal([]byte(arts), &e.Artifacts); err != nil {
			return nil, fmt.Errorf("listing erasures: erasure %q: decoding artifacts: %w", e.ID, err)
		}
		e.At = time.UnixMicro(at).UTC()
		e.KeysDestroyed = int(kd)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing erasures: %w", err)
	}
	return es, nil
}

// ListAllArtifacts returns up to limit artifacts with id > afterID, by id.
func (o ops) ListAllArtifacts(ctx context.Context, afterID string, limit int) ([]store.Artifact, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("listing artifacts: limit %d: must be positive", limit)
	}
	return o.artifactList(ctx, "listing artifacts", qListAllArtifacts, afterID, limit)
}

func (o ops) artifactList(ctx context.Context, what, query string, args ...any) ([]store.Artifact, error) {
	return queryAll(ctx, o.q, scanArtifact, fmt.Sprintf("%s", what), query, args...)
}

// ReplaceArtifact updates the content fields of an artifact; ErrNotFound if
// it does not exist.
func (o ops) ReplaceArtifact(ctx context.Context, a store.Artifact) error {
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qReplaceArtifact, a.Path, a.Format, a.Schema, a.Rows, a.Bytes, a.SHA256,
			a.PlainSHA256, a.ID)
		if err != nil {
			return fmt.Errorf("updating artifact: %w", err)
		}
		return oneRow(res)
	})
	if err != nil {
		return fmt.Errorf("replacing artifact %q: %w", a.ID, err)
	}
	return nil
}

// oneRow turns "no row affected" into ErrNotFound.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("counting affected rows: %w", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SetArtifactExpiry records when an artifact's retention ends; ErrNotFound
// if the artifact does not exist.
func (o ops) SetArtifactExpiry(ctx context.Context, artifactID string, expiresAt time.Time) error {
	if expiresAt.IsZero() {
		return fmt.Errorf("setting expiry of artifact %q: zero time", artifactID)
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qSetArtifactExpiry, artifactID, micros(expiresAt))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("upserting expiry: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("setting expiry of artifact %q: %w", artifactID, err)
	}
	return nil
}

// ArtifactExpiry returns when an artifact expires, or the zero time.
func (o ops) ArtifactExpiry(ctx context.Context, artifactID string) (time.Time, error) {
	var at sql.NullInt64
	err := o.q.QueryRowContext(ctx, qGetArtifactExpiry, artifactID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("getting expiry of artifact %q: %w", artifactID, err)
	}
	return fromMicros(at), nil
}

// ListExpiredArtifacts returns up to limit artifacts expired at now.
func (o ops) ListExpiredArtifacts(ctx context.Context, now time.Time, limit int) ([]store.Artifact, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("listing expired artifacts: limit %d: must be positive", limit)
	}
	return o.artifactList(ctx, "listing expired artifacts", qListExpiredArtifacts, now.UnixMicro(), limit)
}

// DeleteArtifact deletes an artifact's record and records the deletion. A
// zero d.At means now. ErrNotFound if the artifact does not exist.
func (o ops) DeleteArtifact(ctx context.Context, d store.ArtifactDeletion) error {
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qDeleteArtifact, d.ArtifactID)
		if err != nil {
			return fmt.Errorf("deleting: %w", err)
		}
		if err := oneRow(res); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, qInsertArtifactDeletion, d.ArtifactID, d.RunID, d.Task, d.Path, d.Reason,
			micros(orNow(d.At))); err != nil {
			return fmt.Errorf("recording deletion: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting artifact %q: %w", d.ArtifactID, err)
	}
	return nil
}

// ListArtifactDeletions returns every recorded deletion, oldest first.
func (o ops) ListArtifactDeletions(ctx context.Context) ([]store.ArtifactDeletion, error) {
	rows, err := o.q.QueryContext(ctx, qListArtifactDeletions)
	if err != nil {
		return nil, fmt.Errorf("listing artifact deletions: %w", err)
	}
	defer rows.Close()
	var ds []store.ArtifactDeletion
	for rows.Next() {
		var (
			d  store.ArtifactDeletion
			at int64
		)
		if err := rows.Scan(&d.ArtifactID, &d.RunID, &d.Task, &d.Path, &d.Reason, &at); err != nil {
			return nil, fmt.Errorf("listing artifact deletions: %w", err)
		}
		d.At = time.UnixMicro(at).UTC()
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing artifact deletions: %w", err)
	}
	return ds, nil
}

// DeleteDataKey deletes a wrapped data key; ErrNotFound if it does not exist.
func (o ops) DeleteDataKey(ctx context.Context, id string) error {
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qDeleteDataKey, id)
		if err != nil {
			return fmt.Errorf("deleting: %w", err)
		}
		return oneRow(res)
	})
	if err != nil {
		return fmt.Errorf("deleting data key %q: %w", id, err)
	}
	return nil
}

const qDeleteDataKey = `DELETE FROM data_keys WHERE id = ?`
