package sqlite

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/durable"
)

//go:generate go run ./internal/genimage -o image.db.gz

// newImage is a gzip-compressed database file already migrated to the
// newest schema and already in WAL mode: what Open writes in place of a
// file that does not exist. Executing the DDL of every migration and
// switching a new file to WAL through a rollback journal took several
// milliseconds and seven fsyncs; copying this image takes one fsync of the
// file and one of its directory. The file holds the schema and the rows
// migrations insert, nothing else; its schema_migrations rows have
// applied_at 0, which migrate replaces by the time of the first Open.
//
// It is produced by BuildImage (`go generate ./internal/store/sqlite`);
// TestImageMatchesMigrations fails when it no longer matches a database
// built by executing the migrations, so it cannot drift silently.
//
//go:embed image.db.gz
var newImage []byte

// createFile makes sure a database file exists at p. A missing file is
// created from the compressed image img (see newImage and publishImage),
// so that it needs neither the rollback-journal switch to WAL nor the
// migrations' DDL. An existing file, even an empty one, is left to SQLite
// and the migrations: another process may have it open (an older sluice
// creates the file empty, then lets SQLite initialise it), and as no call
// replaces a file only while it is still empty, replacing it could leave
// two processes on two different files.
func createFile(p string, img []byte) error {
	dir := filepath.Dir(p)
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("database directory: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("database directory %s: not a directory", dir)
	}
	removeStaleImages(p, time.Now())
	if _, err := os.Lstat(p); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking database file: %w", err)
	}
	// A -wal or -journal left by a deleted database would be replayed into
	// the image on open. SQLite discards them beside an empty database
	// file, so that is what such a file gets. Only a process that has the
	// database open creates them, so none can appear between this check
	// and the publication of the image: that needs the file to exist, and
	// publishing does not replace an existing file. (A stale -shm is
	// harmless: the first connection rebuilds it.)
	for _, companion := range []string{p + "-wal", p + "-journal"} {
		if _, err := os.Lstat(companion); !errors.Is(err, fs.ErrNotExist) {
			return createEmpty(p)
		}
	}
	published, err := publishImage(p, img)
	if err != nil {
		return err
	}
	if !published {
		return createEmpty(p)
	}
	return nil
}

// publishImage writes the decompressed img to p, crash- and race-safely:
// the image goes to a temporary file of the same directory, is synced, and
// is then hard-linked to p, which fails rather than replaces a file another
// process created meanwhile (that file is then used, as if it had been
// there all along); the directory is synced last, so the new name is
// durable. A crash leaves either no file at p or the whole image, and at
// worst a stray temporary file (".NAME.new-*"), which a later open removes
// (removeStaleImages). It reports false, with no
// error, when no temporary file can be created or the filesystem cannot
// make hard links: the caller then creates the database the slow way.
func publishImage(p string, img []byte) (published bool, err error) {
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".new-*")
	if err != nil {
		// Left to the slow way, which reports the error if it has it too
		// (an unwritable directory) and not if it was the temporary name
		// (too long).
		return false, nil
	}
	tmp := f.Name()
	if err := writeImage(f, img); err != nil {
		f.Close()
		os.Remove(tmp)
		return false, fmt.Errorf("writing database image %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("writing database image %s: %w", tmp, err)
	}
	lerr := os.Link(tmp, p)
	// A temporary file that cannot be removed now is a later open's to
	// remove (removeStaleImages); the database is published either way.
	_ = os.Remove(tmp)
	if errors.Is(lerr, fs.ErrExist) {
		return true, nil
	}
	if lerr != nil {
		return false, nil
	}
	if err := durable.SyncDir(dir); err != nil {
		return false, fmt.Errorf("publishing database image %s: %w", p, err)
	}
	return true, nil
}

// staleImageAge is how old a temporary image file must be before
// removeStaleImages takes it for a crash's leftover. Writing one takes
// milliseconds; the margin keeps a slow disk or a stopped process that is
// still publishing from losing its file.
const staleImageAge = 10 * time.Minute

// removeStaleImages removes the temporary image files of p (see
// publishImage) last modified before now - staleImageAge: what a process
// killed while publishing left behind. It is best effort: a file it cannot
// remove stays, and the next open tries again.
func removeStaleImages(p string, now time.Time) {
	dir, prefix := filepath.Dir(p), "."+filepath.Base(p)+".new-"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleImageAge {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// writeImage gives f FileMode and fills it with the decompressed img,
// synced to stable storage.
func writeImage(f *os.File, img []byte) error {
	if err := f.Chmod(FileMode); err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(img))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, zr); err != nil {
		return err
	}
	if err := zr.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// createEmpty creates an empty database file with FileMode if none exists,
// so that SQLite never creates it with the process umask. SQLite gives the
// -wal and -shm files the mode of the database file.
func createEmpty(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("creating database file: %w", err)
	}
	return nil
}

// BuildImage writes to w the gzip-compressed image Open copies in place of
// a new database file (newImage): every migration executed on a new file
// exactly as Open would without the image, with applied_at 0, then
// vacuumed and checkpointed. It is the body of `go generate`
// (internal/genimage); the store itself never calls it.
func BuildImage(ctx context.Context, w io.Writer) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-image-")
	if err != nil {
		return fmt.Errorf("building database image: %w", err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "image.db")
	if err := buildImage(ctx, p, ms); err != nil {
		return err
	}
	return compressFile(p, w)
}

// buildImage creates at p a database migrated by ms, with applied_at 0 in
// schema_migrations, vacuumed (migrations that rebuild tables or drop
// indexes leave free pages) and checkpointed, so that the file alone is the
// whole database, in WAL mode.
func buildImage(ctx context.Context, p string, ms []migration) error {
	o, err := Options{}.withDefaults()
	if err != nil {
		return err
	}
	if err := createEmpty(p); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", dsn(p, o, false))
	if err != nil {
		return fmt.Errorf("building database image: %w", err)
	}
	db.SetMaxOpenConns(1)
	err = applyMigrations(ctx, db, ms, time.UnixMicro(0))
	if err == nil {
		_, err = db.ExecContext(ctx, `VACUUM`)
	}
	if err == nil {
		_, err = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	// Closing the last connection checkpoints again and removes the WAL.
	if err := errors.Join(err, db.Close()); err != nil {
		return fmt.Errorf("building database image: %w", err)
	}
	hdr := make([]byte, 100)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("building database image: %w", err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("building database image: reading header: %w", err)
	}
	if hdr[18] != 2 || hdr[19] != 2 {
		return fmt.Errorf("building database image: header versions %d, %d, want 2, 2 (WAL)", hdr[18], hdr[19])
	}
	if _, err := os.Lstat(p + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("building database image: %s-wal left after close", p)
	}
	return nil
}

// compressFile writes the contents of p to w, gzip-compressed. The image is
// mostly empty pages, which compress to almost nothing.
func compressFile(p string, w io.Writer) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("compressing database image: %w", err)
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("compressing database image: %w", err)
	}
	if _, err := io.Copy(zw, f); err != nil {
		return fmt.Errorf("compressing database image: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing database image: %w", err)
	}
	return nil
}
