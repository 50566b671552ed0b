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

// The SQL of the access store (migrations/0005_access.sql).
const (
	qAccessVersion     = `SELECT version FROM access_version WHERE id = 1`
	qBumpAccessVersion = `UPDATE access_version SET version = version + 1 WHERE id = 1`

	roleColumns  = `name, description, permissions, created_by, created_at`
	qInsertRole  = `INSERT INTO roles (` + roleColumns + `) VALUES (?, ?, ?, ?, ?)`
	qGetRole     = `SELECT ` + roleColumns + ` FROM roles WHERE name = ?`
	qListRoles   = `SELECT ` + roleColumns + ` FROM roles ORDER BY name`
	qDeleteRole  = `DELETE FROM roles WHERE name = ?`
	qRoleInUse   = `SELECT 1 FROM bindings WHERE role = ? LIMIT 1`
	qRoleExists  = `SELECT 1 FROM roles WHERE name = ?`
	bindingCols  = `id, subject_kind, subject, role, namespace, expires_at, granted_by, granted_at, request_id, last_used_at`
	qInsertBind  = `INSERT INTO bindings (` + bindingCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`
	qGetBinding  = `SELECT ` + bindingCols + ` FROM bindings WHERE id = ?`
	qListBinds   = `SELECT ` + bindingCols + ` FROM bindings ORDER BY granted_at, id`
	qDeleteBind  = `DELETE FROM bindings WHERE id = ?`
	qTouchBind   = `UPDATE bindings SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`
	requestCols  = `id, requester, subject_kind, subject, role, namespace, expires_at, reason, state, approver, note, created_at, decided_at, binding_id`
	qInsertReq   = `INSERT INTO access_requests (` + requestCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', '', '', ?, NULL, '')`
	qGetReq      = `SELECT ` + requestCols + ` FROM access_requests WHERE id = ?`
	qListReqs    = `SELECT ` + requestCols + ` FROM access_requests ORDER BY created_at, id`
	qListReqsBy  = `SELECT ` + requestCols + ` FROM access_requests WHERE state = ? ORDER BY created_at, id`
	qDecideReq   = `UPDATE access_requests SET state = ?, approver = ?, note = ?, decided_at = ?, binding_id = ? WHERE id = ? AND state = 'pending'`
	versionCols  = `namespace, pipeline, number, hash, content, author, created_at, diff, approved_by, approved_at`
	qLatestVerNo = `SELECT COALESCE(MAX(number), 0) FROM pipeline_versions WHERE namespace = ? AND pipeline = ?`
	qInsertVer   = `INSERT INTO pipeline_versions (` + versionCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', NULL)`
	qGetVer      = `SELECT ` + versionCols + ` FROM pipeline_versions WHERE namespace = ? AND pipeline = ? AND number = ?`
	qLatestVer   = `SELECT ` + versionCols + ` FROM pipeline_versions WHERE namespace = ? AND pipeline = ? ORDER BY number DESC LIMIT 1`
	qListVers    = `SELECT namespace, pipeline, number, hash, x'', author, created_at, '', approved_by, approved_at
	FROM pipeline_versions WHERE namespace = ? AND pipeline = ? ORDER BY number`
	qApproveVer  = `UPDATE pipeline_versions SET approved_by = ?, approved_at = ? WHERE namespace = ? AND pipeline = ? AND number = ? AND approved_by = ''`
	qProtect     = `INSERT INTO protected_namespaces (namespace, set_by, set_at) VALUES (?, ?, ?) ON CONFLICT (namespace) DO NOTHING`
	qUnprotect   = `DELETE FROM protected_namespaces WHERE namespace = ?`
	qIsProtected = `SELECT 1 FROM protected_namespaces WHERE namespace = ?`
	qListProtect = `SELECT namespace, set_by, set_at FROM protected_namespaces ORDER BY namespace`
	qInsertRev   = `INSERT INTO access_reviews (id, reviewer, at) VALUES (?, ?, ?)`
	qInsertRevD  = `INSERT INTO access_review_decisions (review_id, seq, binding_id, action, flags, note) VALUES (?, ?, ?, ?, ?, ?)`
	qListRevs    = `SELECT id, reviewer, at FROM access_reviews ORDER BY at, id`
	qListRevDs   = `SELECT review_id, binding_id, action, flags, note FROM access_review_decisions ORDER BY review_id, seq`
)

// AccessVersion returns the counter of role and binding changes.
func (o ops) AccessVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := o.q.QueryRowContext(ctx, qAccessVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading access version: %w", err)
	}
	return v, nil
}

func bumpAccessVersion(ctx context.Context, q querier) error {
	if _, err := q.ExecContext(ctx, qBumpAccessVersion); err != nil {
		return fmt.Errorf("bumping access version: %w", err)
	}
	return nil
}

// CreateRole stores a custom role. A zero CreatedAt means now.
func (o ops) CreateRole(ctx context.Context, r store.Role) error {
	if r.Name == "" {
		return errors.New("creating role: empty name")
	}
	perms, err := json.Marshal(accessStrings(r.Permissions))
	if err != nil {
		return fmt.Errorf("creating role %q: encoding permissions: %w", r.Name, err)
	}
	err = o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertRole, r.Name, r.Description, string(perms), r.CreatedBy, micros(orNow(r.CreatedAt)))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("name exists: %w", store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("inserting role: %w", err)
		}
		return bumpAccessVersion(ctx, q)
	})
	if err != nil {
		return fmt.Errorf("creating role %q: %w", r.Name, err)
	}
	return nil
}

func accessStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scanRole(s scanner) (store.Role, error) {
	var (
		r       store.Role
		perms   string
		created sql.NullInt64
	)
	if err := s.Scan(&r.Name, &r.Description, &perms, &r.CreatedBy, &created); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(perms), &r.Permissions); err != nil {
		return r, fmt.Errorf("role %q: decoding permissions: %w", r.Name, err)
	}
	r.CreatedAt = fromMicros(created)
	return r, nil
}

// GetRole returns a custom role, or ErrNotFound.
func (o ops) GetRole(ctx context.Context, name string) (store.Role, error) {
	r, err := scanRole(o.q.QueryRowContext(ctx, qGetRole, name))
	return found(r, err, "getting role %q", name)
}

// ListRoles returns the custom roles by name.
func (o ops) ListRoles(ctx context.Context) ([]store.Role, error) {
	rs, err := queryAccessRows(ctx, o.q, scanRole, qListRoles)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	return rs, nil
}

// DeleteRole deletes a custom role that no binding uses.
func (o ops) DeleteRole(ctx context.Context, name string) error {
	err := o.atomic(ctx, func(q querier) error {
		var one int
		err := q.QueryRowContext(ctx, qRoleExists, name).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("checking role: %w", err)
		}
		err = q.QueryRowContext(ctx, qRoleInUse, name).Scan(&one)
		if err == nil {
			return fmt.Errorf("role is bound: %w", store.ErrConflict)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("checking bindings: %w", err)
		}
		if _, err := q.ExecContext(ctx, qDeleteRole, name); err != nil {
			return fmt.Errorf("deleting: %w", err)
		}
		return bumpAccessVersion(ctx, q)
	})
	if err != nil {
		return fmt.Errorf("deleting role %q: %w", name, err)
	}
	return nil
}

// CreateBinding stores a binding. A zero GrantedAt means now; LastUsedAt
// is ignored (a new binding has not been used).
func (o ops) CreateBinding(ctx context.Context, b store.Binding) error {
	switch {
	case b.ID == "":
		return errors.New("creating binding: empty id")
	case b.SubjectKind != store.SubjectUser && b.SubjectKind != store.SubjectGroup:
		return fmt.Errorf("creating binding %q: subject kind %q: want %q or %q", b.ID, b.SubjectKind, store.SubjectUser, store.SubjectGroup)
	case b.Subject == "" || b.Role == "":
		return fmt.Errorf("creating binding %q: empty subject or role", b.ID)
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertBind, b.ID, b.SubjectKind, b.Subject, b.Role, b.Namespace,
			micros(b.ExpiresAt), b.GrantedBy, micros(orNow(b.GrantedAt)), b.RequestID)
		switch {
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY):
			return fmt.Errorf("id exists: %w", store.ErrConflict)
		case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
			return fmt.Errorf("%s %q already has role %q in namespace %q: %w", b.SubjectKind, b.Subject, b.Role, b.Namespace, store.ErrConflict)
		case err != nil:
			return fmt.Errorf("inserting binding: %w", err)
		}
		return bumpAccessVersion(ctx, q)
	})
	if err != nil {
		return fmt.Errorf("creating binding %q: %w", b.ID, err)
	}
	return nil
}

func scanBinding(s scanner) (store.Binding, error) {
	var (
		b                        store.Binding
		expires, granted, usedAt sql.NullInt64
	)
	err := s.Scan(&b.ID, &b.SubjectKind, &b.Subject, &b.Role, &b.Namespace, &expires, &b.GrantedBy, &granted,
		&b.RequestID, &usedAt)
	b.ExpiresAt, b.GrantedAt, b.LastUsedAt = fromMicros(expires), fromMicros(granted), fromMicros(usedAt)
	return b, err
}

// GetBinding returns a binding by id, or ErrNotFound.
func (o ops) GetBinding(ctx context.Context, id string) (store.Binding, error) {
	b, err := scanBinding(o.q.QueryRowContext(ctx, qGetBinding, id))
	return found(b, err, "getting binding %q", id)
}

// ListBindings returns every binding by grant time, then id.
func (o ops) ListBindings(ctx context.Context) ([]store.Binding, error) {
	bs, err := queryAccessRows(ctx, o.q, scanBinding, qListBinds)
	if err != nil {
		return nil, fmt.Errorf("listing bindings: %w", err)
	}
	return bs, nil
}

// DeleteBinding deletes a binding; ErrNotFound if it does not exist.
func (o ops) DeleteBinding(ctx context.Context, id string) error {
	err := o.atomic(ctx, func(q querier) error {
		if err := execAccessOne(ctx, q, qDeleteBind, id); err != nil {
			return err
		}
		return bumpAccessVersion(ctx, q)
	})
	if err != nil {
		return fmt.Errorf("deleting binding %q: %w", id, err)
	}
	return nil
}

// TouchBindings moves last-use times forward.
func (o ops) TouchBindings(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	err := o.atomic(ctx, func(q querier) error {
		for id, t := range used {
			m := micros(t)
			if _, err := q.ExecContext(ctx, qTouchBind, m, id, m); err != nil {
				return fmt.Errorf("binding %q: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording binding use: %w", err)
	}
	return nil
}

// CreateAccessRequest stores a pending request. A zero CreatedAt means now.
func (o ops) CreateAccessRequest(ctx context.Context, r store.AccessRequest) error {
	switch {
	case r.ID == "":
		return errors.New("creating access request: empty id")
	case r.SubjectKind != store.SubjectUser && r.SubjectKind != store.SubjectGroup:
		return fmt.Errorf("creating access request %q: subject kind %q: want %q or %q", r.ID, r.SubjectKind, store.SubjectUser, store.SubjectGroup)
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertReq, r.ID, r.Requester, r.SubjectKind, r.Subject, r.Role, r.Namespace,
			micros(r.ExpiresAt), r.Reason, micros(orNow(r.CreatedAt)))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("id exists: %w", store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("inserting request: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating access request %q: %w", r.ID, err)
	}
	return nil
}

func scanAccessRequest(s scanner) (store.AccessRequest, error) {
	var (
		r                         store.AccessRequest
		expires, created, decided sql.NullInt64
	)
	err := s.Scan(&r.ID, &r.Requester, &r.SubjectKind, &r.Subject, &r.Role, &r.Namespace, &expires, &r.Reason,
		&r.State, &r.Approver, &r.Note, &created, &decided, &r.BindingID)
	r.ExpiresAt, r.CreatedAt, r.DecidedAt = fromMicros(expires), fromMicros(created), fromMicros(decided)
	return r, err
}

// GetAccessRequest returns a request, or ErrNotFound.
func (o ops) GetAccessRequest(ctx context.Context, id string) (store.AccessRequest, error) {
	r, err := getAccessRequest(ctx, o.q, id)
	if err != nil {
		return store.AccessRequest{}, fmt.Errorf("getting access request %q: %w", id, err)
	}
	return r, nil
}

func getAccessRequest(ctx context.Context, q querier, id string) (store.AccessRequest, error) {
	r, err := scanAccessRequest(q.QueryRowContext(ctx, qGetReq, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.AccessRequest{}, store.ErrNotFound
	}
	return r, err
}

// ListAccessRequests returns requests in state (all if ""), oldest first.
func (o ops) ListAccessRequests(ctx context.Context, state string) ([]store.AccessRequest, error) {
	var (
		rs  []store.AccessRequest
		err error
	)
	if state == "" {
		rs, err = queryAccessRows(ctx, o.q, scanAccessRequest, qListReqs)
	} else {
		rs, err = queryAccessRows(ctx, o.q, scanAccessRequest, qListReqsBy, state)
	}
	if err != nil {
		return nil, fmt.Errorf("listing access requests: %w", err)
	}
	return rs, nil
}

// DecideAccessRequest moves a pending request to a final state.
func (o ops) DecideAccessRequest(ctx context.Context, p store.DecideAccessRequest) (store.AccessRequest, error) {
	switch p.State {
	case store.RequestApproved, store.RequestRejected, store.RequestExpired:
	default:
		return store.AccessRequest{}, fmt.Errorf("deciding access request %q: state %q is not final", p.ID, p.State)
	}
	var r store.AccessRequest
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qDecideReq, p.State, p.Approver, p.Note, micros(orNow(p.At)), p.BindingID, p.ID)
		if err != nil {
			return fmt.Errorf("updating request: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("updating request: %w", err)
		}
		r, err = getAccessRequest(ctx, q, p.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("request is %s, not pending: %w", r.State, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return store.AccessRequest{}, fmt.Errorf("deciding access request %q: %w", p.ID, err)
	}
	return r, nil
}

// PutPipelineVersion stores the next version of a pipeline. A zero
// CreatedAt means now.
func (o ops) PutPipelineVersion(ctx context.Context, v store.PipelineVersion) (store.PipelineVersion, error) {
	if v.Namespace == "" || v.Pipeline == "" {
		return store.PipelineVersion{}, fmt.Errorf("storing pipeline version %q/%q: empty namespace or name", v.Namespace, v.Pipeline)
	}
	v.CreatedAt = time.UnixMicro(orNow(v.CreatedAt).UnixMicro()).UTC()
	v.ApprovedBy, v.ApprovedAt = "", time.Time{}
	if v.Content == nil {
		v.Content = []byte{}
	}
	err := o.atomic(ctx, func(q querier) error {
		var latest int
		if err := q.QueryRowContext(ctx, qLatestVerNo, v.Namespace, v.Pipeline).Scan(&latest); err != nil {
			return fmt.Errorf("reading latest version: %w", err)
		}
		v.Number = latest + 1
		if _, err := q.ExecContext(ctx, qInsertVer, v.Namespace, v.Pipeline, v.Number, v.Hash, v.Content, v.Author,
			micros(v.CreatedAt), v.Diff); err != nil {
			return fmt.Errorf("inserting version %d: %w", v.Number, err)
		}
		return nil
	})
	if err != nil {
		return store.PipelineVersion{}, fmt.Errorf("storing pipeline version of %s/%s: %w", v.Namespace, v.Pipeline, err)
	}
	return v, nil
}

func scanPipelineVersion(s scanner) (store.PipelineVersion, error) {
	var (
		v                 store.PipelineVersion
		created, approved sql.NullInt64
	)
	err := s.Scan(&v.Namespace, &v.Pipeline, &v.Number, &v.Hash, &v.Content, &v.Author, &created, &v.Diff,
		&v.ApprovedBy, &approved)
	v.CreatedAt, v.ApprovedAt = fromMicros(created), fromMicros(approved)
	return v, err
}

// GetPipelineVersion returns one version, or ErrNotFound.
func (o ops) GetPipelineVersion(ctx context.Context, namespace, pipeline string, number int) (store.PipelineVersion, error) {
	v, err := scanPipelineVersion(o.q.QueryRowContext(ctx, qGetVer, namespace, pipeline, number))
	return found(v, err, "getting version %d of pipeline %s/%s", number, namespace, pipeline)
}

// LatestPipelineVersion returns the newest version, or ErrNotFound.
func (o ops) LatestPipelineVersion(ctx context.Context, namespace, pipeline string) (store.PipelineVersion, error) {
	v, err := scanPipelineVersion(o.q.QueryRowContext(ctx, qLatestVer, namespace, pipeline))
	return found(v, err, "getting latest version of pipeline %s/%s", namespace, pipeline)
}

// ListPipelineVersions returns the versions of a pipeline without content.
func (o ops) ListPipelineVersions(ctx context.Context, namespace, pipeline string) ([]store.PipelineVersion, error) {
	vs, err := queryAccessRows(ctx, o.q, scanPipelineVersion, qListVers, namespace, pipeline)
	if err != nil {
		return nil, fmt.Errorf("listing versions of pipeline %s/%s: %w", namespace, pipeline, err)
	}
	for i := range vs {
		vs[i].Content = nil
	}
	return vs, nil
}

// ApprovePipelineVersion records the approval of a version once.
func (o ops) ApprovePipelineVersion(ctx context.Context, namespace, pipeline string, number int, approver string, at time.Time) (store.PipelineVersion, error) {
	if approver == "" {
		return store.PipelineVersion{}, fmt.Errorf("approving version %d of pipeline %s/%s: empty approver", number, namespace, pipeline)
	}
	var v store.PipelineVersion
	err := o.atomic(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qApproveVer, approver, micros(orNow(at)), namespace, pipeline, number)
		if err != nil {
			return fmt.Errorf("updating version: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("updating version: %w", err)
		}
		v, err = scanPipelineVersion(q.QueryRowContext(ctx, qGetVer, namespace, pipeline, number))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("reading version: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("already approved by %s: %w", v.ApprovedBy, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return store.PipelineVersion{}, fmt.Errorf("approving version %d of pipeline %s/%s: %w", number, namespace, pipeline, err)
	}
	return v, nil
}

// SetNamespaceProtected marks or unmarks a namespace. A zero SetAt means now.
func (o ops) SetNamespaceProtected(ctx context.Context, p store.ProtectedNamespace, protected bool) error {
	if p.Namespace == "" {
		return errors.New("protecting namespace: empty name")
	}
	err := o.atomic(ctx, func(q querier) error {
		var err error
		if protected {
			_, err = q.ExecContext(ctx, qProtect, p.Namespace, p.SetBy, micros(orNow(p.SetAt)))
		} else {
			_, err = q.ExecContext(ctx, qUnprotect, p.Namespace)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("setting protection of namespace %q: %w", p.Namespace, err)
	}
	return nil
}

// IsNamespaceProtected reports whether a namespace is protected.
func (o ops) IsNamespaceProtected(ctx context.Context, namespace string) (bool, error) {
	var one int
	err := o.q.QueryRowContext(ctx, qIsProtected, namespace).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking protection of namespace %q: %w", namespace, err)
	}
	return true, nil
}

// ListProtectedNamespaces returns the protected namespaces by name.
func (o ops) ListProtectedNamespaces(ctx context.Context) ([]store.ProtectedNamespace, error) {
	ps, err := queryAccessRows(ctx, o.q, func(s scanner) (store.ProtectedNamespace, error) {
		var (
			p  store.ProtectedNamespace
			at sql.NullInt64
		)
		err := s.Scan(&p.Namespace, &p.SetBy, &at)
		p.SetAt = fromMicros(at)
		return p, err
	}, qListProtect)
	if err != nil {
		return nil, fmt.Errorf("listing protected namespaces: %w", err)
	}
	return ps, nil
}

// PutReviewRecord stores a completed review with its decisions. A zero At
// means now.
func (o ops) PutReviewRecord(ctx context.Context, r store.ReviewRecord) error {
	if r.ID == "" {
		return errors.New("recording access review: empty id")
	}
	err := o.atomic(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qInsertRev, r.ID, r.Reviewer, micros(orNow(r.At)))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("id exists: %w", store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("inserting review: %w", err)
		}
		for i, d := range r.Decisions {
			flags, err := json.Marshal(accessStrings(d.Flags))
			if err != nil {
				return fmt.Errorf("decision %d: encoding flags: %w", i, err)
			}
			if _, err := q.ExecContext(ctx, qInsertRevD, r.ID, i, d.BindingID, d.Action, string(flags), d.Note); err != nil {
				return fmt.Errorf("inserting decision %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording access review %q: %w", r.ID, err)
	}
	return nil
}

// ListReviewRecords returns the reviews with their decisions, oldest first.
func (o ops) ListReviewRecords(ctx context.Context) ([]store.ReviewRecord, error) {
	rs, err := queryAccessRows(ctx, o.q, func(s scanner) (store.ReviewRecord, error) {
		var (
			r  store.ReviewRecord
			at sql.NullInt64
		)
		err := s.Scan(&r.ID, &r.Reviewer, &at)
		r.At = fromMicros(at)
		return r, err
	}, qListRevs)
	if err != nil {
		return nil, fmt.Errorf("listing access reviews: %w", err)
	}
	type decision struct {
		review string
		store.ReviewDecision
	}
	ds, err := queryAccessRows(ctx, o.q, func(s scanner) (decision, error) {
		var (
			d     decision
			flags string
		)
		if err := s.Scan(&d.review, &d.BindingID, &d.Action, &flags, &d.Note); err != nil {
			return d, err
		}
		if err := json.Unmarshal([]byte(flags), &d.Flags); err != nil {
			return d, fmt.Errorf("review %q: decoding flags: %w", d.review, err)
		}
		return d, nil
	}, qListRevDs)
	if err != nil {
		return nil, fmt.Errorf("listing access review decisions: %w", err)
	}
	byID := make(map[string]int, len(rs))
	for i, r := range rs {
		byID[r.ID] = i
	}
	for _, d := range ds {
		if i, ok := byID[d.review]; ok {
			rs[i].Decisions = append(rs[i].Decisions, d.ReviewDecision)
		}
	}
	return rs, nil
}

// queryAccessRows runs a query and scans every row with scan.
func queryAccessRows[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// execAccessOne runs a statement that must affect exactly one row; ErrNotFound
// if it affects none.
func execAccessOne(ctx context.Context, q querier, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
