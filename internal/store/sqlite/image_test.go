package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

// headerSettings are the byte ranges of the database header that hold
// persistent settings: page size, file format versions (2 and 2 for WAL),
// reserved bytes and payload fractions; schema format and default cache
// size; text encoding, user version, incremental vacuum and application id.
// The rest are counters and sizes that differ between equal databases.
var headerSettings = [][2]int{{16, 24}, {44, 52}, {56, 72}}

// buildReference creates at p a database the way Open did before it had an
// image: an empty file, the writer's DSN, every migration executed, with
// applied_at 0 as in the image. It is closed, so the file holds everything.
func buildReference(t *testing.T, p string) {
	t.Helper()
	db := openRaw(t, p)
	if err := migrate(t.Context(), db, time.UnixMicro(0)); err != nil {
		t.Fatalf("migrating reference database: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// unpackImage writes the decompressed img to a new file in dir.
func unpackImage(t *testing.T, dir string, img []byte) string {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "image.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeImage(f, img); err != nil {
		t.Fatalf("unpacking image: %v", err)
	}
	return f.Name()
}

// describe lists what makes two databases equal: the persistent settings
// of the header, every sqlite_master entry, the rows of every table and
// schema_migrations' versions and applied_at (0 in both the image and the
// reference).
func describe(t *testing.T, p string) []string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 100)
	_, err = io.ReadFull(f, hdr)
	f.Close()
	if err != nil {
		t.Fatalf("reading header of %s: %v", p, err)
	}
	var out []string
	for _, r := range headerSettings {
		out = append(out, fmt.Sprintf("header[%d:%d] % x", r[0], r[1], hdr[r[0]:r[1]]))
	}

	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(p, o, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pragmas string
	if err := db.QueryRowContext(t.Context(), `SELECT journal_mode || ' ' || page_size || ' ' || auto_vacuum || ' ' || encoding
		FROM pragma_journal_mode, pragma_page_size, pragma_auto_vacuum, pragma_encoding`).Scan(&pragmas); err != nil {
		t.Fatalf("reading pragmas of %s: %v", p, err)
	}
	out = append(out, "pragmas "+pragmas)
	out = append(out, queryLines(t, db, `SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name`)...)
	tables := queryLines(t, db, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	for _, table := range tables {
		rows := queryLines(t, db, `SELECT * FROM "`+table+`"`)
		slices.Sort(rows)
		for _, r := range rows {
			out = append(out, table+": "+r)
		}
	}
	return out
}

// queryLines runs q and returns each row as its values joined by " | ".
func queryLines(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImageMatchesMigrations fails when the embedded image is not what
// executing every migration on a new file gives: a migration was added or
// the DSN's persistent settings changed without regenerating it.
func TestImageMatchesMigrations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := unpackImage(t, dir, newImage)
	ref := filepath.Join(dir, "reference.db")
	buildReference(t, ref)
	if diff := cmp.Diff(describe(t, ref), describe(t, img)); diff != "" {
		t.Fatalf("image.db.gz differs from a database built by the migrations; run\n"+
			"\tgo generate ./internal/store/sqlite\n(-migrations +image):\n%s", diff)
	}
}

// TestImageIsWAL: the image is in WAL mode in its header, so that opening
// it needs no rollback-journal step.
func TestImageIsWAL(t *testing.T) {
	t.Parallel()
	p := unpackImage(t, t.TempDir(), newImage)
	hdr := make([]byte, 20)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[18] != 2 || hdr[19] != 2 {
		t.Errorf("header bytes 18, 19 = %d, %d; want 2, 2 (WAL)", hdr[18], hdr[19])
	}
}

// appliedAt returns schema_migrations' applied_at values, by version.
func appliedAt(t *testing.T, db *DB) []int64 {
	t.Helper()
	return column[int64](t, db, `SELECT applied_at FROM schema_migrations ORDER BY version`)
}

// A new database's migrations are stamped with the time it was created,
// not the image's 0.
func TestNewDatabaseStamped(t *testing.T) {
	t.Parallel()
	before := time.Now().UnixMicro()
	db, _ := openTemp(t, Options{})
	after := time.Now().UnixMicro()
	ats := appliedAt(t, db)
	if len(ats) == 0 {
		t.Fatal("no schema_migrations rows")
	}
	for i, at := range ats {
		if at < before || at > after || at != ats[0] {
			t.Errorf("migration %d applied_at %d, want one time in [%d, %d]", i+1, at, before, after)
		}
	}
}

// An image older than the migrations (one added without regenerating) is
// still published, and Open applies the rest on top of it: the result is
// the database the migrations build.
func TestOpenStaleImage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	built := filepath.Join(dir, "stale-build.db")
	if err := buildImage(ctx, built, ms[:len(ms)-1]); err != nil {
		t.Fatal(err)
	}
	var stale bytes.Buffer
	if err := compressFile(built, &stale); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "sluice.db")
	if err := createFile(path, stale.Bytes()); err != nil {
		t.Fatalf("createFile: %v", err)
	}
	raw := openRaw(t, path)
	var version int
	if err := raw.QueryRowContext(ctx, qSchemaVersion).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	if version != len(ms)-1 {
		t.Fatalf("published file at version %d, want the stale image's %d", version, len(ms)-1)
	}

	before := time.Now().UnixMicro()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open over a stale image: %v", err)
	}
	if got := schemaVersions(t, db); len(got) != len(ms) {
		t.Errorf("schema_migrations = %v, want 1..%d", got, len(ms))
	}
	for i, at := range appliedAt(t, db) {
		if at < before {
			t.Errorf("migration %d applied_at %d, want stamped at open (>= %d)", i+1, at, before)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ref := filepath.Join(dir, "reference.db")
	buildReference(t, ref)
	stamps := func(lines []string) []string {
		return slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, "schema_migrations: ") })
	}
	if diff := cmp.Diff(stamps(describe(t, ref)), stamps(describe(t, path))); diff != "" {
		t.Errorf("stale image + remaining migrations differs from the migrations (-migrations +opened):\n%s", diff)
	}
}

// Stores opening one new path at once share one database, and the
// publication leaves no temporary file behind.
func TestImageConcurrentCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.db")
	dbs := make([]*DB, 8)
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), path, Options{}) })
	}
	wg.Wait()
	for i, db := range dbs {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer db.Close()
	}
	if _, err := dbs[0].CreateRun(t.Context(), store.NewRun{ID: "shared"}); err != nil {
		t.Fatal(err)
	}
	for i, db := range dbs {
		if _, err := db.GetRun(t.Context(), "shared"); err != nil {
			t.Errorf("store %d does not see the run written through store 0: %v", i, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains([]string{"sluice.db", "sluice.db-wal", "sluice.db-shm"}, e.Name()) {
			t.Errorf("unexpected file %s left in the database directory", e.Name())
		}
	}
}

// childOpenEnv, when set in the environment of the test binary, makes
// TestImageTwoProcesses act as one of the processes: "path run-id".
const childOpenEnv = "SLUICE_TEST_IMAGE_CHILD"

// Two processes creating one new database at once both end up on it: each
// writes a run, and both runs are there afterwards.
func TestImageTwoProcesses(t *testing.T) {
	if arg := os.Getenv(childOpenEnv); arg != "" {
		path, id, _ := strings.Cut(arg, " ")
		db, err := Open(context.Background(), path, Options{})
		if err != nil {
			t.Fatalf("child Open: %v", err)
		}
		defer db.Close()
		if _, err := db.CreateRun(context.Background(), store.NewRun{ID: id}); err != nil {
			t.Fatalf("child CreateRun: %v", err)
		}
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sluice.db")
	ids := []string{"from-a", "from-b"}
	var cmds []*exec.Cmd
	for _, id := range ids {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestImageTwoProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), childOpenEnv+"="+path+" "+id)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("process %s:\n%s", id, out.String())
			}
		})
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %s: %v", ids[i], err)
		}
	}
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range ids {
		if _, err := db.GetRun(t.Context(), id); err != nil {
			t.Errorf("run %s written by its process: %v", id, err)
		}
	}
}

// A -wal left by a deleted database is not replayed into the new one: the
// image is not used beside it, and SQLite discards it as it does beside an
// empty file.
func TestStaleWALNotReplayed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old, oldPath := openTemp(t, Options{})
	if _, err := old.CreateRun(t.Context(), store.NewRun{ID: "ghost"}); err != nil {
		t.Fatal(err)
	}
	// Copied while old is open, the WAL still holds the run's commit.
	wal, err := os.ReadFile(oldPath + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sluice.db")
	if err := os.WriteFile(path+"-wal", wal, FileMode); err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("Open beside a stale WAL: %v", err)
	}
	defer db.Close()
	if _, err := db.GetRun(t.Context(), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRun(ghost) = %v, want ErrNotFound: a stale WAL was replayed", err)
	}
}

// An empty file, as an older sluice's Open may leave, is migrated by
// executing the migrations.
func TestOpenEmptyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sluice.db")
	if err := os.WriteFile(path, nil, FileMode); err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	}
	defer db.Close()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if got := schemaVersions(t, db); len(got) != len(ms) {
		t.Errorf("schema_migrations = %v, want 1..%d", got, len(ms))
	}
	if _, err := db.CreateRun(t.Context(), store.NewRun{ID: "r"}); err != nil {
		t.Errorf("writing: %v", err)
	}
}

// A temporary image left by a process killed while publishing is removed by
// a later open once it is older than staleImageAge; a recent one, which
// another process may still be writing, and other files are kept.
func TestOpenRemovesStaleImages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.db")
	old := time.Now().Add(-staleImageAge - time.Minute)
	files := map[string]time.Time{
		".sluice.db.new-111": old,        // a crash's leftover
		".sluice.db.new-222": time.Now(), // being written
		".other.db.new-333":  old,        // another database's
		"notes.new-444":      old,
	}
	for name, mtime := range files {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // a new database, then an existing one
		db, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		for name := range files {
			_, err := os.Stat(filepath.Join(dir, name))
			if gone := errors.Is(err, os.ErrNotExist); gone != (name == ".sluice.db.new-111") {
				t.Errorf("%s: removed = %v (stat: %v)", name, gone, err)
			}
		}
		// The next round's leftover comes from a crash after the image
		// was published, beside an existing database.
		f := filepath.Join(dir, ".sluice.db.new-111")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
}
