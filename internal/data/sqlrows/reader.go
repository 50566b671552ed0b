package sqlrows

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Query is one query for a Reader to stream.
type Query struct {
	// SQL is the query text; Args are bound as its parameters, never
	// spliced into it.
	SQL  string
	Args []any
	// Where names the database in error messages: a DSN without its
	// password, a file path.
	Where string
	// Pos starts the position of a quarantined row, before its 1-based
	// number: "query row" gives "query row 7".
	Pos string
	// Types overrides the type of the named result columns.
	Types []data.Field
	// BatchSize is the most rows per batch; at least 1.
	BatchSize int
	// Quarantine receives the rows whose values do not fit their columns.
	Quarantine data.Quarantine
}

// Reader streams the result of a query as batches. It owns the result set
// but not the database: the caller closes that after Close.
type Reader struct {
	d       *Dialect
	rows    *sql.Rows
	cancel  context.CancelFunc // ends the query early on Close
	where   string
	pos     string
	schema  *data.Schema
	names   []string
	decode  []Decoder // per column, nil where none is needed
	cells   []cell
	dest    []any
	q       data.Quarantine
	bd      *fileio.Builder
	size    int
	row     int64
	pending bool // the first row was read at open to infer types
	done    bool
}

// Open runs q on db and derives the schema of its result: the types q
// names, else the dialect's mapping of each column's database type, else
// the type of the column's value in the first row. The query lives as long
// as ctx, and Close can end it early.
func Open(ctx context.Context, db *sql.DB, d *Dialect, q Query) (_ *Reader, err error) {
	qctx, cancel := context.WithCancel(ctx)
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	rows, err := db.QueryContext(qctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: running query: %w", d.Name, q.Where, err)
	}
	defer func() {
		if err != nil {
			rows.Close()
		}
	}()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("%s: %s: reading result columns: %w", d.Name, q.Where, err)
	}
	r := &Reader{d: d, rows: rows, cancel: cancel, where: q.Where, pos: q.Pos, q: q.Quarantine, size: q.BatchSize}
	r.cells = make([]cell, len(cts))
	r.dest = make([]any, len(cts))
	for i := range r.cells {
		r.dest[i] = &r.cells[i]
	}
	override := make(map[string]data.Type, len(q.Types))
	for _, f := range q.Types {
		override[f.Name] = f.Type
	}
	fields := make([]data.Field, len(cts))
	r.decode = make([]Decoder, len(cts))
	infer := false
	for i, ct := range cts {
		name := ct.Name()
		dbType := ct.DatabaseTypeName()
		if d.Decoder != nil {
			r.decode[i] = d.Decoder(dbType)
		}
		fields[i].Name = name
		if t, ok := override[name]; ok {
			delete(override, name)
			fields[i].Type = t
			continue
		}
		if d.TypeOf != nil {
			fields[i].Type = d.TypeOf(dbType)
		}
		if fields[i].Type == data.Invalid {
			infer = true
		}
	}
	for name := range override {
		return nil, fmt.Errorf("%s: types: column %q is not in the query's result", d.Name, name)
	}
	if infer {
		if rows.Next() {
			if err := rows.Scan(r.dest...); err != nil {
				return nil, fmt.Errorf("%s: %s: reading row 1: %w", d.Name, q.Where, err)
			}
			r.pending = true
		} else if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("%s: %s: reading row 1: %w", d.Name, q.Where, err)
		}
		for i := range fields {
			if fields[i].Type == data.Invalid {
				fields[i].Type = TypeOfValue(r.cells[i].v)
			}
		}
	}
	schema, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("%s: query result: %w (alias the columns with AS)", d.Name, err)
	}
	r.schema = schema
	r.names = schema.Names()
	r.bd = fileio.NewBuilder(schema, r.size)
	return r, nil
}

// Schema returns the schema of the batches.
func (r *Reader) Schema() *data.Schema { return r.schema }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call. A result that ends in an error (a connection lost
// mid-result) is an error, never a silent end of input. A row whose values
// do not fit goes to the quarantine, not into the batch.
func (r *Reader) Next(ctx context.Context) (*data.Batch, error) {
	if r.done {
		return nil, data.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.bd.Reset()
	for r.bd.B.Len < r.size {
		if r.pending {
			r.pending = false
		} else {
			if !r.rows.Next() {
				if err := r.rows.Err(); err != nil {
					return nil, fmt.Errorf("%s: %s: reading row %d: %w", r.d.Name, r.where, r.row+1, err)
				}
				r.done = true
				break
			}
			if err := r.rows.Scan(r.dest...); err != nil {
				return nil, fmt.Errorf("%s: %s: reading row %d: %w", r.d.Name, r.where, r.row+1, err)
			}
		}
		r.row++
		if reason := r.append(); reason != "" {
			r.bd.DropRow()
			pos := r.pos + " " + strconv.FormatInt(r.row, 10)
			if err := r.q.Reject(ctx, data.Reject{Pos: pos, Reason: reason, Raw: rawRow(r.names, r.cells)}); err != nil {
				return nil, fmt.Errorf("%s: quarantining %s: %w", r.d.Name, pos, err)
			}
			continue
		}
		r.bd.EndRow(r.row)
	}
	if r.bd.B.Len == 0 && r.done {
		return nil, data.ErrEndOfInput
	}
	return r.bd.B, nil
}

func (r *Reader) append() string {
	for i, f := range r.schema.Fields {
		v := r.cells[i].v
		if dec := r.decode[i]; dec != nil && v != nil {
			var reason string
			if v, reason = dec(v); reason != "" {
				return fmt.Sprintf("column %q: %s", f.Name, reason)
			}
		}
		if reason := r.d.appendValue(r.bd, i, f.Name, f.Type, v); reason != "" {
			return reason
		}
	}
	return ""
}

// Done reports whether the whole result has been read.
func (r *Reader) Done() bool { return r.done }

// Close ends the query, cancelling it first so that a result abandoned
// half-way is not drained, and closes the result set, returning the
// driver's error unwrapped for the caller to place.
func (r *Reader) Close() error {
	r.cancel()
	return r.rows.Close()
}
