package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the schema changes, applied in order of their number:
// migrations/NNNN_name.sql. A released file is never edited; a change is a
// new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads and orders the embedded migrations, checking that
// their numbers run 1, 2, 3, ... without gap or repeat.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings the database to the newest schema this binary knows, in
// one transaction: every pending migration and its schema_migrations row
// commit together or not at all. On a new state directory that is one
// durable commit (one fsync under synchronous=FULL) instead of one per
// migration, which was most of the cost of a first `sluice run`. Each
// migration is still a numbered, embedded file executed on its own, so an
// error names the file that failed. The transaction begins IMMEDIATE (the
// writer's DSN) and the version is read inside it, so two processes opening
// a new file at once apply each migration once: the second waits for the
// first's commit and then finds nothing pending. On an up-to-date database
// the transaction writes nothing and commits without syncing.
//
// A new database does not come here empty: Open writes the image of a
// database already migrated (see newImage), whose schema_migrations rows
// have applied_at 0, and the same transaction sets those to now, the time
// the file was first opened (a process that crashed between the two leaves
// 0, "not stamped yet", which the next Open replaces). Migrations added
// since the image was generated apply on top of it as on any older
// database. On other databases no row has applied_at 0 and the update
// changes nothing.
func migrate(ctx context.Context, db *sql.DB, now time.Time) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	return applyMigrations(ctx, db, ms, now)
}

// applyMigrations applies the migrations of ms not yet recorded in
// schema_migrations and stamps the rows of a new database's image, in one
// transaction (see migrate).
func applyMigrations(ctx context.Context, db *sql.DB, ms []migration, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning migration: %w", err)
	}
	defer tx.Rollback() // a no-op after Commit; on failure err already says why

	if _, err := tx.ExecContext(ctx, qCreateMigrations); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, qSchemaVersion).Scan(&current); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("schema version %d, this binary knows up to %d: %w", current, len(ms), ErrSchemaTooNew)
	}
	at := now.UTC().UnixMicro()
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("applying migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, qRecordMigration, m.version, at); err != nil {
			return fmt.Errorf("recording migration %s: %w", m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, qStampMigrations, at); err != nil {
		return fmt.Errorf("stamping migrations of a new database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		if current < len(ms) {
			return fmt.Errorf("committing migrations %s to %s: %w", ms[current].name, ms[len(ms)-1].name, err)
		}
		return fmt.Errorf("committing migration check: %w", err)
	}
	return nil
}
