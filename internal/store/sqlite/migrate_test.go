package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// openRaw opens a writer pool on a new, empty file (not the image) as Open
// would, without migrating it.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := createEmpty(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, o, false))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// Pending migrations commit together: when one fails, the ones before it
// in the same batch are not left applied, and the error names the file.
func TestMigrationsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openRaw(t, filepath.Join(t.TempDir(), "m.db"))
	ms := []migration{
		{version: 1, name: "0001_a.sql", sql: "CREATE TABLE a (x INTEGER) STRICT;"},
		{version: 2, name: "0002_b.sql", sql: "CREATE TABLE b (x INTEGER) STRICT; INSERT INTO missing VALUES (1);"},
	}
	err := applyMigrations(ctx, db, ms, time.Now())
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql") {
		t.Fatalf("applyMigrations = %v, want an error naming 0002_b.sql", err)
	}
	if tableExists(t, db, "a") || tableExists(t, db, "b") {
		t.Error("a failed batch left tables behind")
	}

	// Fixed, the batch applies whole; applying again changes nothing.
	ms[1].sql = "CREATE TABLE b (x INTEGER) STRICT;"
	for range 2 {
		if err := applyMigrations(ctx, db, ms, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var versions string
	if err := db.QueryRow(`SELECT group_concat(version) FROM (SELECT version FROM schema_migrations ORDER BY version)`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != "1,2" || !tableExists(t, db, "a") || !tableExists(t, db, "b") {
		t.Errorf("schema_migrations = %q (tables a: %v, b: %v), want 1,2 and both tables", versions, tableExists(t, db, "a"), tableExists(t, db, "b"))
	}

	// A later binary's migration applies on its own.
	ms = append(ms, migration{version: 3, name: "0003_c.sql", sql: "CREATE TABLE c (x INTEGER) STRICT;"})
	if err := applyMigrations(ctx, db, ms, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !tableExists(t, db, "c") {
		t.Error("migration 3 not applied")
	}
}

// Two stores opening one new file at once apply each migration once.
func TestMigrateConcurrentOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sluice.db")
	var wg sync.WaitGroup
	dbs := make([]*DB, 4)
	errs := make([]error, len(dbs))
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), path, Options{}) })
	}
	wg.Wait()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	for i, db := range dbs {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer db.Close()
	}
	if got := schemaVersions(t, dbs[0]); len(got) != len(ms) {
		t.Errorf("schema_migrations = %v, want 1..%d once each", got, len(ms))
	}
}
