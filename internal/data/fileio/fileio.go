// Package fileio holds what the file connectors (csv, jsonl, parquet) and
// the artifact package share: the settings every file connector has and
// their checks (Files), resolving a configured path, globs over several
// input files, transparent compression, writing one file or a set of
// partition files atomically, the ordered schema setting, and the text
// form of timestamps.
//
// It exists so that those rules are written once: a sink that forgot the
// directory fsync, or a reader that parsed timestamps differently from its
// writer, would be a bug that only shows on a crash or a round trip.
package fileio

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/durable"
)

// File modes for everything the connectors create: datasets may hold
// personal data, so only the owner may read them.
const (
	FileMode os.FileMode = 0o600
	DirMode  os.FileMode = 0o700
)

// ResolvePath expands the templated path p with env.Expand and makes a
// relative result relative to env.Dir, the directory of the pipeline file,
// so that a pipeline reads the same files whatever directory it is run from.
func ResolvePath(env data.Env, p string) (string, error) {
	if env.Expand != nil {
		e, err := env.Expand(p)
		if err != nil {
			return "", fmt.Errorf("expanding path %q: %w", p, err)
		}
		p = e
	}
	if p == "" {
		return "", fmt.Errorf("path is empty")
	}
	if !filepath.IsAbs(p) && env.Dir != "" {
		p = filepath.Join(env.Dir, p)
	}
	return filepath.Clean(p), nil
}

// BatchSize picks the rows per batch: the connector's own setting, else the
// task's, else data.DefaultBatchSize.
func BatchSize(configured int, env data.Env) int {
	switch {
	case configured > 0:
		return configured
	case env.BatchSize > 0:
		return env.BatchSize
	}
	return data.DefaultBatchSize
}

// AtomicFile is a file that becomes visible at its final path only when
// committed. Writes go to a temporary file in the destination directory
// (same file system, so the final rename is atomic); Commit flushes,
// fsyncs, renames, and fsyncs the directory so the rename itself survives a
// crash. A reader of the final path sees either nothing or the whole file.
type AtomicFile struct {
	final string
	f     *os.File
	w     *bufio.Writer
	sum   hash.Hash // SHA-256 of everything written
	n     int64
	done  bool
	// prepared is set between prepare and rename: the temporary file is
	// complete and closed but not yet in place.
	prepared bool
}

// bufSize is the write buffer of an AtomicFile: large enough that writes
// reach the kernel in big chunks.
const bufSize = 256 << 10

// CreateAtomic starts an atomic write of path, creating missing parent
// directories with DirMode. The temporary file has FileMode.
func CreateAtomic(path string) (*AtomicFile, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("creating directory for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	if err := f.Chmod(FileMode); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("setting mode of temporary file for %s: %w", path, err)
	}
	sum := sha256.New()
	return &AtomicFile{final: path, f: f, w: bufio.NewWriterSize(io.MultiWriter(f, sum), bufSize), sum: sum}, nil
}

// Path returns the final path.
func (a *AtomicFile) Path() string { return a.final }

// TempPath returns the path of the temporary file being written.
func (a *AtomicFile) TempPath() string { return a.f.Name() }

// Write buffers p for the temporary file.
func (a *AtomicFile) Write(p []byte) (int, error) {
	if a.done {
		return 0, fmt.Errorf("writing %s: already committed or aborted", a.final)
	}
	n, err := a.w.Write(p)
	a.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", a.f.Name(), err)
	}
	return n, nil
}

// Commit makes the file visible at its final path. On error the temporary
// file is removed and nothing appears at the final path.
func (a *AtomicFile) Commit() error {
	if err := a.prepare(); err != nil {
		return err
	}
	if err := a.rename(); err != nil {
		return err
	}
	if err := durable.SyncDir(filepath.Dir(a.final)); err != nil {
		return fmt.Errorf("syncing directory of %s: %w", a.final, err)
	}
	return nil
}

// prepare flushes, fsyncs and closes the temporary file: everything of a
// commit but the rename. On error the temporary file is removed.
func (a *AtomicFile) prepare() error {
	if a.done {
		return fmt.Errorf("committing %s: already committed or aborted", a.final)
	}
	a.done = true
	tmp := a.f.Name()
	fail := func(what string, err error) error {
		_ = a.f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("%s %s: %w", what, a.final, err)
	}
	if err := a.w.Flush(); err != nil {
		return fail("flushing", err)
	}
	if err := a.f.Sync(); err != nil {
		return fail("syncing", err)
	}
	if err := a.f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("closing %s: %w", a.final, err)
	}
	a.prepared = true
	return nil
}

// rename moves the prepared temporary file to the final path.
func (a *AtomicFile) rename() error {
	tmp := a.f.Name()
	a.prepared = false
	if err := os.Rename(tmp, a.final); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("renaming into %s: %w", a.final, err)
	}
	return nil
}

// CommitAll makes several files visible together, as far as a file system
// allows: every file is first flushed, synced and closed, and only when all
// of them are complete are they renamed into place, one after the other,
// and their directories synced. If preparing any file fails, none appears.
// The window that remains is the renames themselves: a reader listing the
// directories during them may see some files and not yet others, and a
// rename that fails half-way (a full disk cannot cause it; a vanished
// directory can) leaves the files renamed before it in place.
func CommitAll(files []*AtomicFile) error {
	for _, a := range files {
		if err := a.prepare(); err != nil {
			for _, b := range files {
				if b != a {
					_ = b.Abort()
				}
			}
			return err
		}
	}
	dirs := make(map[string]bool, 1)
	for i, a := range files {
		if err := a.rename(); err != nil {
			for _, b := range files[i+1:] {
				_ = b.Abort()
			}
			return err
		}
		dirs[filepath.Dir(a.final)] = true
	}
	for d := range dirs {
		if err := durable.SyncDir(d); err != nil {
			return fmt.Errorf("syncing directory %s: %w", d, err)
		}
	}
	return nil
}

// Output describes the committed file: where it is, its size and the hex
// SHA-256 of its bytes. Meaningful after a successful Commit.
func (a *AtomicFile) Output() data.Output {
	return data.Output{Location: a.final, Bytes: a.n, SHA256: hex.EncodeToString(a.sum.Sum(nil))}
}

// Abort discards the temporary file. It is a no-op after Commit or a
// previous Abort, so callers may defer it unconditionally.
func (a *AtomicFile) Abort() error {
	if a.prepared { // complete but not renamed: CommitAll stopped early
		a.prepared = false
		if err := os.Remove(a.f.Name()); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing temporary file of %s: %w", a.final, err)
		}
		return nil
	}
	if a.done {
		return nil
	}
	a.done = true
	_ = a.f.Close()
	if err := os.Remove(a.f.Name()); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing temporary file of %s: %w", a.final, err)
	}
	return nil
}

// timeLayouts are the timestamp forms the readers accept, most common
// first. Forms without a zone are taken as UTC.
var timeLayouts = [...]string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02"}

// ParseTime parses a timestamp as the file connectors read it: RFC 3339
// (with or without fractional seconds), the same with a space instead of
// "T", or without a zone (UTC), or a bare date (midnight UTC). The result
// is in UTC, truncated to microseconds like every data.Timestamp.
func ParseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if len(s) < len("2006-01-02") {
			break
		}
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Truncate(time.Microsecond), true
		}
	}
	return time.Time{}, false
}

// AppendTime appends t in the form the file sinks write: RFC 3339 in UTC
// with trailing zeros of the fraction trimmed (time.RFC3339Nano).
//
// Years 0 to 9999 are formatted by hand, several times faster than
// AppendFormat, which matters to a sink writing a million rows a second;
// the result is byte for byte what AppendFormat gives.
func AppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// CheckBatch returns an error when a batch written to a sink opened for
// schema want does not have the same column types in the same order: a sink
// writes columns by position, so a mismatch would write values under the
// wrong heading.
func CheckBatch(want *data.Schema, b *data.Batch) error {
	if len(b.Cols) != len(want.Fields) {
		return fmt.Errorf("batch has %d columns, sink was opened for %d (%s)", len(b.Cols), len(want.Fields), want)
	}
	for i, f := range want.Fields {
		if b.Cols[i].Type != f.Type {
			return fmt.Errorf("column %d (%q): batch has type %s, sink was opened for %s", i+1, f.Name, b.Cols[i].Type, f.Type)
		}
	}
	return nil
}
