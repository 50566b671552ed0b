package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Source streams the rows of a query. It implements data.Source.
type Source struct {
	db      *sql.DB
	rows    *sql.Rows
	cancel  context.CancelFunc
	path    string
	schema  *data.Schema
	names   []string
	cells   []cell
	dest    []any
	q       data.Quarantine
	bd      *fileio.Builder
	size    int
	row     int64
	pending bool // the first row was read at open to infer types
	done    bool
}

var _ data.Source = (*Source)(nil)

// OpenSource opens the database file of cfg (a *Config) read-only, runs
// its query with its arguments bound as parameters, and derives the schema
// from the result columns' declared types (see typeOf); a column without
// one takes the type of its value in the first row. A missing file, or a
// query SQLite rejects (such as one naming a missing table), is an error.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	if c.Query == "" {
		return nil, fmt.Errorf("sqlite: query: required to read")
	}
	if c.Mode != "" && c.Mode != ModeAppend || len(c.Key) > 0 || c.Create {
		return nil, fmt.Errorf("sqlite: mode, key and create apply only to writing")
	}
	path, err := fileio.ResolvePath(env, c.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	args := make([]any, len(c.Args))
	for i, a := range c.Args {
		v, err := env.Expand(a)
		if err != nil {
			return nil, fmt.Errorf("sqlite: expanding args[%d]: %w", i, err)
		}
		args[i] = v
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: database %s does not exist", path)
		}
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db, err := openDB(path, true)
	if err != nil {
		return nil, err
	}
	s, err := newSource(ctx, db, path, c, args, env)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func newSource(ctx context.Context, db *sql.DB, path string, c *Config, args []any, env data.Env) (_ *Source, err error) {
	qctx, cancel := context.WithCancel(ctx)
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	rows, err := db.QueryContext(qctx, c.Query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: running query: %w", path, err)
	}
	defer func() {
		if err != nil {
			rows.Close()
		}
	}()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: reading result columns: %w", path, err)
	}
	s := &Source{db: db, rows: rows, cancel: cancel, path: path, q: env.Quarantine, size: fileio.BatchSize(c.BatchSize, env)}
	s.cells = make([]cell, len(cts))
	s.dest = make([]any, len(cts))
	for i := range s.cells {
		s.dest[i] = &s.cells[i]
	}
	override := map[string]data.Type{}
	for _, f := range c.Types {
		override[f.Name] = f.Type
	}
	fields := make([]data.Field, len(cts))
	infer := false
	for i, ct := range cts {
		name := ct.Name()
		if t, ok := override[name]; ok {
			delete(override, name)
			fields[i] = data.Field{Name: name, Type: t}
			continue
		}
		fields[i] = data.Field{Name: name, Type: typeOf(ct.DatabaseTypeName())}
		if fields[i].Type == data.Invalid {
			infer = true
		}
	}
	for name := range override {
		return nil, fmt.Errorf("sqlite: types: column %q is not in the query's result", name)
	}
	if infer {
		if s.rows.Next() {
			if err := s.rows.Scan(s.dest...); err != nil {
				return nil, fmt.Errorf("sqlite: %s: reading row 1: %w", path, err)
			}
			s.pending = true
		} else if err := s.rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: %s: reading row 1: %w", path, err)
		}
		for i := range fields {
			if fields[i].Type == data.Invalid {
				fields[i].Type = typeOfValue(s.cells[i].v)
			}
		}
	}
	schema, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query result: %w (alias the columns with AS)", err)
	}
	s.schema = schema
	s.names = schema.Names()
	s.bd = fileio.NewBuilder(schema, s.size)
	return s, nil
}

// typeOf maps a declared column type to a column type, following SQLite's
// affinity rules where they apply: a name containing INT is an integer,
// CHAR, CLOB or TEXT text, REAL, FLOA or DOUB (and NUMERIC or DECIMAL,
// which SQLite stores as integer or real) a float. Names containing BOOL
// are bool, DATE or TIMESTAMP timestamp. Any other declared name, BLOB
// included, is a string. No declared type (an expression, or a column
// declared without one) is Invalid: the caller infers it from a value.
func typeOf(decl string) data.Type {
	d := strings.ToUpper(decl)
	switch {
	case d == "":
		return data.Invalid
	case strings.Contains(d, "BOOL"):
		return data.Bool
	case strings.Contains(d, "DATE"), strings.Contains(d, "TIMESTAMP"):
		return data.Timestamp
	case strings.Contains(d, "INT"):
		return data.Int
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return data.String
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"),
		strings.Contains(d, "NUMERIC"), strings.Contains(d, "DECIMAL"):
		return data.Float
	}
	return data.String
}

// typeOfValue is the type of a column without a declared type, judged by
// its value in the first row; null tells nothing and reads as a string.
func typeOfValue(v any) data.Type {
	switch v.(type) {
	case int64:
		return data.Int
	case float64:
		return data.Float
	case time.Time:
		return data.Timestamp
	}
	return data.String
}

// Schema returns the schema of the batches.
func (s *Source) Schema() *data.Schema { return s.schema }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	if s.done {
		return nil, data.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.bd.Reset()
	for s.bd.B.Len < s.size {
		if s.pending {
			s.pending = false
		} else {
			if !s.rows.Next() {
				if err := s.rows.Err(); err != nil {
					return nil, fmt.Errorf("sqlite: %s: reading row %d: %w", s.path, s.row+1, err)
				}
				s.done = true
				break
			}
			if err := s.rows.Scan(s.dest...); err != nil {
				return nil, fmt.Errorf("sqlite: %s: reading row %d: %w", s.path, s.row+1, err)
			}
		}
		s.row++
		if reason := s.append(); reason != "" {
			s.bd.DropRow()
			pos := s.path + " row " + strconv.FormatInt(s.row, 10)
			if err := s.q.Reject(ctx, data.Reject{Pos: pos, Reason: reason, Raw: rawRow(s.names, s.cells)}); err != nil {
				return nil, fmt.Errorf("sqlite: quarantining %s: %w", pos, err)
			}
			continue
		}
		s.bd.EndRow(s.row)
	}
	if s.bd.B.Len == 0 && s.done {
		return nil, data.ErrEndOfInput
	}
	return s.bd.B, nil
}

func (s *Source) append() string {
	for i, f := range s.schema.Fields {
		if reason := appendValue(s.bd, i, f.Name, f.Type, s.cells[i].v); reason != "" {
			return reason
		}
	}
	return ""
}

// Close ends the query and closes the file.
func (s *Source) Close() error {
	s.cancel()
	err := errors.Join(s.rows.Close(), s.db.Close())
	if err != nil {
		return fmt.Errorf("sqlite: closing %s: %w", s.path, err)
	}
	return nil
}
