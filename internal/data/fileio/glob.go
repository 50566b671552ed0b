package fileio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
)

// Glob expands a resolved path that may hold glob characters (*, ?, [...],
// as path/filepath.Match has them; "**" is not special) into the files it
// names, in lexical order, so that a run reads them in a reproducible
// order. A path without glob characters is returned as it is: whether it
// exists is for the opener to report. A pattern that matches no file is an
// error naming the pattern: an empty input is more often a wrong path than
// a quiet day. Directories that match are skipped.
func Glob(pattern string) ([]string, error) {
	if !strings.ContainsAny(pattern, `*?[`) {
		return []string{pattern}, nil
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", pattern, err)
	}
	files := matches[:0]
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			continue
		}
		files = append(files, m)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("path %q matches no file", pattern)
	}
	slices.Sort(files)
	return files, nil
}

// OpenFunc opens one file of a multi-file source. first is the schema of
// the first file, nil when opening the first: a format that infers its
// schema from the data reads the later files with it.
type OpenFunc func(ctx context.Context, path string, first *data.Schema) (data.Source, error)

// OpenFiles opens the files in order as one source. With a single path it
// is open itself. With several, every file is opened once up front to
// check that its schema equals the first file's (an error names the first
// file that differs) so that a mismatch stops the task before any record
// flows; then the files are read one after the other, one open at a time.
// Each file's source names its own path in the quarantine positions it
// gives.
func OpenFiles(ctx context.Context, paths []string, open OpenFunc) (data.Source, error) {
	if len(paths) == 0 {
		return nil, errors.New("opening files: no path")
	}
	first, err := open(ctx, paths[0], nil)
	if err != nil || len(paths) == 1 {
		return first, err
	}
	schema := first.Schema()
	for _, p := range paths[1:] {
		src, err := open(ctx, p, schema)
		if err != nil {
			_ = first.Close()
			return nil, err
		}
		other := src.Schema()
		_ = src.Close()
		if !SameFields(schema, other) {
			_ = first.Close()
			return nil, fmt.Errorf("%s: schema (%s) differs from that of %s (%s); all files of a glob must have the same columns", p, other, paths[0], schema)
		}
	}
	return &multiSource{paths: paths, open: open, schema: schema, cur: first}, nil
}

// SameFields reports whether two schemas have the same field names and
// types in the same order.
func SameFields(a, b *data.Schema) bool {
	return slices.Equal(a.Fields, b.Fields)
}

// multiSource reads several files in turn.
type multiSource struct {
	paths  []string
	next   int // index in paths of the file after cur
	open   OpenFunc
	schema *data.Schema
	cur    data.Source
}

func (m *multiSource) Schema() *data.Schema { return m.schema }

func (m *multiSource) Next(ctx context.Context) (*data.Batch, error) {
	for {
		if m.cur == nil {
			if m.next+1 >= len(m.paths) {
				return nil, data.ErrEndOfInput
			}
			m.next++
			src, err := m.open(ctx, m.paths[m.next], m.schema)
			if err != nil {
				return nil, err
			}
			if !SameFields(m.schema, src.Schema()) { // changed since it was checked
				_ = src.Close()
				return nil, fmt.Errorf("%s: schema (%s) differs from that of %s (%s)", m.paths[m.next], src.Schema(), m.paths[0], m.schema)
			}
			m.cur = src
		}
		b, err := m.cur.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			err := m.cur.Close()
			m.cur = nil
			if err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		b.Schema = m.schema // one schema pointer for the whole stream
		return b, nil
	}
}

func (m *multiSource) Close() error {
	if m.cur == nil {
		return nil
	}
	err := m.cur.Close()
	m.cur = nil
	return err
}
