package mysql

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Source streams the rows of a query. It implements data.Source.
type Source struct {
	db     *sql.DB
	rows   *sql.Rows
	cancel context.CancelFunc // ends the query early on Close
	shown  string             // the connection target, without password
	schema *data.Schema
	names  []string
	bits   []bool // columns of MySQL type BIT, delivered as big-endian bytes
	cells  []cell
	dest   []any
	q      data.Quarantine
	bd     *fileio.Builder
	size   int
	row    int64
	done   bool
}

var _ data.Source = (*Source)(nil)

// OpenSource connects with cfg (a *Config), runs its query with its
// arguments bound as parameters, and derives the schema from the result's
// column types. Bad credentials, an unreachable server or a query the
// server rejects (such as a missing table) are errors.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	if c.Query == "" {
		return nil, fmt.Errorf("mysql: query: required to read")
	}
	if c.Mode != "" && c.Mode != ModeAppend || len(c.Key) > 0 || c.Create || c.RowsPerStatement != 0 {
		return nil, fmt.Errorf("mysql: mode, key, create and rows_per_statement apply only to writing")
	}
	args := make([]any, len(c.Args))
	for i, a := range c.Args {
		v, err := expand(env, fmt.Sprintf("args[%d]", i), a)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	db, _, shown, err := open(ctx, c, env)
	if err != nil {
		return nil, err
	}
	s, err := newSource(ctx, db, shown, c, args, env)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func newSource(ctx context.Context, db *sql.DB, shown string, c *Config, args []any, env data.Env) (_ *Source, err error) {
	// The query lives as long as the task's context, and Close can end it
	// early without reading the rest of the result.
	qctx, cancel := context.WithCancel(ctx)
	rows, err := db.QueryContext(qctx, c.Query, args...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("mysql: %s: running query: %w", shown, err)
	}
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	cts, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return nil, fmt.Errorf("mysql: %s: reading result columns: %w", shown, err)
	}
	override := map[string]data.Type{}
	for _, f := range c.Types {
		override[f.Name] = f.Type
	}
	s := &Source{db: db, rows: rows, cancel: cancel, shown: shown, q: env.Quarantine, size: fileio.BatchSize(c.BatchSize, env)}
	fields := make([]data.Field, len(cts))
	s.bits = make([]bool, len(cts))
	for i, ct := range cts {
		name := ct.Name()
		dbType := ct.DatabaseTypeName()
		t, ok := override[name]
		if ok {
			delete(override, name)
		} else {
			t = typeOf(dbType)
		}
		fields[i] = data.Field{Name: name, Type: t}
		s.bits[i] = dbType == "BIT"
	}
	for name := range override {
		rows.Close()
		return nil, fmt.Errorf("mysql: types: column %q is not in the query's result", name)
	}
	schema, err := data.NewSchema(fields...)
	if err != nil {
		rows.Close()
		return nil, fmt.Errorf("mysql: query result: %w (alias the columns with AS)", err)
	}
	s.schema = schema
	s.names = schema.Names()
	s.cells = make([]cell, len(fields))
	s.dest = make([]any, len(fields))
	for i := range s.cells {
		s.dest[i] = &s.cells[i]
	}
	s.bd = fileio.NewBuilder(schema, s.size)
	return s, nil
}

// typeOf maps a MySQL column type, as the driver names it, to a column type.
// DECIMAL is kept as a string so that no digit is lost; cast it in a
// transform where a float will do.
func typeOf(dbType string) data.Type {
	t := strings.TrimPrefix(dbType, "UNSIGNED ")
	switch t {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR", "BIT":
		return data.Int
	case "FLOAT", "DOUBLE":
		return data.Float
	case "DATE", "DATETIME", "TIMESTAMP":
		return data.Timestamp
	}
	return data.String
}

// Schema returns the schema of the batches.
func (s *Source) Schema() *data.Schema { return s.schema }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call. A connection lost mid-result is an error, never a
// silent end of input.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	if s.done {
		return nil, data.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.bd.Reset()
	for s.bd.B.Len < s.size {
		if !s.rows.Next() {
			if err := s.rows.Err(); err != nil {
				return nil, fmt.Errorf("mysql: %s: reading row %d: %w", s.shown, s.row+1, err)
			}
			s.done = true
			break
		}
		s.row++
		if err := s.rows.Scan(s.dest...); err != nil {
			return nil, fmt.Errorf("mysql: %s: reading row %d: %w", s.shown, s.row, err)
		}
		if reason := s.append(); reason != "" {
			s.bd.DropRow()
			r := data.Reject{Pos: "query row " + strconv.FormatInt(s.row, 10), Reason: reason, Raw: rawRow(s.names, s.cells)}
			if err := s.q.Reject(ctx, r); err != nil {
				return nil, fmt.Errorf("mysql: quarantining query row %d: %w", s.row, err)
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
		v := s.cells[i].v
		if b, ok := v.([]byte); ok && s.bits[i] {
			if len(b) > 8 {
				return fmt.Sprintf("column %q: BIT value wider than 64 bits", f.Name)
			}
			var buf [8]byte
			copy(buf[8-len(b):], b)
			v = binary.BigEndian.Uint64(buf[:])
		}
		if reason := appendValue(s.bd, i, f.Name, f.Type, v); reason != "" {
			return reason
		}
	}
	return ""
}

// Close ends the query and the connection.
func (s *Source) Close() error {
	if !s.done {
		// Abandoning a result: dropping the connection is immediate,
		// where draining the rest of the rows could take minutes.
		s.cancel()
		_ = s.rows.Close()
		s.cancel = func() {}
		return s.closeDB()
	}
	s.cancel()
	return errors.Join(s.closeRows(), s.closeDB())
}

func (s *Source) closeRows() error {
	if err := s.rows.Close(); err != nil {
		return fmt.Errorf("mysql: closing %s: %w", s.shown, err)
	}
	return nil
}

func (s *Source) closeDB() error {
	err := s.db.Close()
	if err != nil {
		return fmt.Errorf("mysql: closing %s: %w", s.shown, err)
	}
	return nil
}
