package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/internal/store"
)

// Audit log SQL. The tables refuse UPDATE and DELETE (migration 0006), and
// no statement here attempts either.
const (
	auditColumns = `seq, time, actor, action, resource, outcome, event, prev_hash, hash`

	// qAppendAudit inserts only when seq is the next number, so two
	// writers that read the same tail cannot both append: the second
	// inserts nothing and gets ErrConflict.
	qAppendAudit = `INSERT INTO audit_events (` + auditColumns + `)
	SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
	WHERE ? = (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events)`

	qLastAudit = `SELECT ` + auditColumns + ` FROM audit_events ORDER BY seq DESC LIMIT 1`

	// qListAudit is completed by ListAudit with the fragments of the
	// filters in use and qListAuditOrder; values are bound.
	qListAudit           = `SELECT ` + auditColumns + ` FROM audit_events WHERE seq > ?`
	qListAuditByActor    = ` AND actor = ?`
	qListAuditByAction   = ` AND action = ?`
	qListAuditByResource = ` AND resource = ?`
	qListAuditSince      = ` AND time >= ?`
	qListAuditUntil      = ` AND time < ?`
	qListAuditOrder      = ` ORDER BY seq LIMIT ?`

	checkpointColumns = `seq, hash, time, key_id, signature`

	qPutCheckpoint   = `INSERT INTO audit_checkpoints (` + checkpointColumns + `) VALUES (?, ?, ?, ?, ?)`
	qLastCheckpoint  = `SELECT ` + checkpointColumns + ` FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`
	qListCheckpoints = `SELECT ` + checkpointColumns + ` FROM audit_checkpoints ORDER BY seq`

	signingKeyColumns = `id, public_keyset, sealed, data_key_id, created_at`

	qPutSigningKey  = `INSERT INTO audit_signing_keys (` + signingKeyColumns + `) VALUES (?, ?, ?, ?, ?)`
	qGetSigningKey  = `SELECT ` + signingKeyColumns + ` FROM audit_signing_keys WHERE id = ?`
	qLastSigningKey = `SELECT ` + signingKeyColumns + ` FROM audit_signing_keys ORDER BY created_at DESC, rowid DESC LIMIT 1`
)

// defaultAuditLimit is ListAudit's page size when the filter sets none.
const defaultAuditLimit = 1000

// AppendAudit adds r at the end of the log; ErrConflict unless r.Seq is the
// last Seq + 1.
func (o ops) AppendAudit(ctx context.Context, r store.AuditRecord) error {
	switch {
	case r.Seq < 1:
		return fmt.Errorf("appending audit event %d: seq must be positive", r.Seq)
	case len(r.Event) == 0 || len(r.Hash) == 0 || len(r.PrevHash) == 0:
		return fmt.Errorf("appending audit event %d: event, hash and previous hash are required", r.Seq)
	case r.Time.IsZero():
		return fmt.Errorf("appending audit event %d: zero time", r.Seq)
	}
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qAppendAudit, r.Seq, r.Time.UnixMicro(), r.Actor, r.Action, r.Resource,
			r.Outcome, r.Event, r.PrevHash, r.Hash, r.Seq)
		if err != nil {
			return fmt.Errorf("inserting: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("inserting: %w", err)
		}
		if n != 1 {
			return fmt.Errorf("not the next sequence number: %w", store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("appending audit event %d: %w", r.Seq, err)
	}
	return nil
}

// LastAudit returns the last record, or ErrNotFound when the log is empty.
func (o ops) LastAudit(ctx context.Context) (store.AuditRecord, error) {
	r, err := scanAudit(o.q.QueryRowContext(ctx, qLastAudit))
	return found(r, err, "reading the last audit event")
}

// ListAudit returns records matching f in Seq order.
func (o ops) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("listing audit events: limit %d: must not be negative", f.Limit)
	}
	if f.Limit == 0 {
		f.Limit = defaultAuditLimit
	}
	var b strings.Builder
	b.WriteString(qListAudit)
	args := []any{f.AfterSeq}
	for _, c := range []struct {
		on   bool
		frag string
		arg  any
	}{
		{f.Actor != "", qListAuditByActor, f.Actor},
		{f.Action != "", qListAuditByAction, f.Action},
		{f.Resource != "", qListAuditByResource, f.Resource},
		{!f.Since.IsZero(), qListAuditSince, micros(f.Since)},
		{!f.Until.IsZero(), qListAuditUntil, micros(f.Until)},
	} {
		if c.on {
			b.WriteString(c.frag)
			args = append(args, c.arg)
		}
	}
	b.WriteString(qListAuditOrder)
	args = append(args, f.Limit)

	return queryAll(ctx, o.q, scanAudit, "listing audit events", b.String(), args...)
}

func scanAudit(s scanner) (store.AuditRecord, error) {
	var r store.AuditRecord
	var t int64
	err := s.Scan(&r.Seq, &t, &r.Actor, &r.Action, &r.Resource, &r.Outcome, &r.Event, &r.PrevHash, &r.Hash)
	r.Time = fromMicros(sql.NullInt64{Int64: t, Valid: true})
	return r, err
}

// PutAuditCheckpoint records a checkpoint; ErrConflict if one exists for
// its Seq.
func (o ops) PutAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	switch {
	case c.Seq < 1:
		return fmt.Errorf("recording audit checkpoint %d: seq must be positive", c.Seq)
	case len(c.Hash) == 0 || len(c.Signature) == 0 || c.KeyID == "":
		return fmt.Errorf("recording audit checkpoint %d: hash, key id and signature are required", c.Seq)
	case c.Time.IsZero():
		return fmt.Errorf("recording audit checkpoint %d: zero time", c.Seq)
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qPutCheckpoint, c.Seq, c.Hash, c.Time.UnixMicro(), c.KeyID, c.Signature)
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("seq exists: %w", store.ErrConflict)
		}
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
			return fmt.Errorf("no signing key %q: %w", c.KeyID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("inserting: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording audit checkpoint %d: %w", c.Seq, err)
	}
	return nil
}

// LastAuditCheckpoint returns the newest checkpoint, or ErrNotFound.
func (o ops) LastAuditCheckpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	c, err := scanCheckpoint(o.q.QueryRowContext(ctx, qLastCheckpoint))
	return found(c, err, "reading the last audit checkpoint")
}

// ListAuditCheckpoints returns every checkpoint in Seq order.
func (o ops) ListAuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error) {
	return queryAll(ctx, o.q, scanCheckpoint, "listing audit checkpoints", qListCheckpoints)
}

func scanCheckpoint(s scanner) (store.AuditCheckpoint, error) {
	var c store.AuditCheckpoint
	var t int64
	err := s.Scan(&c.Seq, &c.Hash, &t, &c.KeyID, &c.Signature)
	c.Time = fromMicros(sql.NullInt64{Int64: t, Valid: true})
	return c, err
}

// PutAuditSigningKey records a signing key. A zero CreatedAt means now.
// ErrConflict if the id exists.
func (o ops) PutAuditSigningKey(ctx context.Context, k store.AuditSigningKey) error {
	switch {
	case k.ID == "":
		return errors.New("recording audit signing key: empty id")
	case len(k.PublicKeyset) == 0 || len(k.Sealed) == 0 || k.DataKeyID == "":
		return fmt.Errorf("recording audit signing key %q: public keyset, sealed keyset and data key id are required", k.ID)
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qPutSigningKey, k.ID, k.PublicKeyset, k.Sealed, k.DataKeyID, micros(orNow(k.CreatedAt)))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("id exists: %w", store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("inserting: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording audit signing key %q: %w", k.ID, err)
	}
	return nil
}

// GetAuditSigningKey returns a signing key by id, or ErrNotFound.
func (o ops) GetAuditSigningKey(ctx context.Context, id string) (store.AuditSigningKey, error) {
	k, err := scanSigningKey(o.q.QueryRowContext(ctx, qGetSigningKey, id))
	return found(k, err, "getting audit signing key %q", id)
}

// LastAuditSigningKey returns the newest signing key, or ErrNotFound.
func (o ops) LastAuditSigningKey(ctx context.Context) (store.AuditSigningKey, error) {
	k, err := scanSigningKey(o.q.QueryRowContext(ctx, qLastSigningKey))
	return found(k, err, "getting the newest audit signing key")
}

func scanSigningKey(s scanner) (store.AuditSigningKey, error) {
	var k store.AuditSigningKey
	var t int64
	err := s.Scan(&k.ID, &k.PublicKeyset, &k.Sealed, &k.DataKeyID, &t)
	k.CreatedAt = fromMicros(sql.NullInt64{Int64: t, Valid: true})
	return k, err
}
