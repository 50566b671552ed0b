package transform

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/expr"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// project is select, drop and rename: it rearranges or renames columns
// without copying any values.
type project struct {
	out   *data.Schema
	idx   []int // output column i is input column idx[i]
	batch data.Batch
}

func (p *project) schema() *data.Schema { return p.out }

func (p *project) apply(_ context.Context, c *Chain, _ data.Quarantine) (int64, int64, error) {
	b := c.cur.b
	if cap(p.batch.Cols) < len(p.idx) {
		p.batch.Cols = make([]data.Column, len(p.idx))
	}
	p.batch.Cols = p.batch.Cols[:len(p.idx)]
	for i, j := range p.idx {
		p.batch.Cols[i] = b.Cols[j]
	}
	p.batch.Schema, p.batch.Len = p.out, b.Len
	c.cur.b = &p.batch
	return 0, 0, nil
}

// noColumn is the error for a column the schema lacks.
func noColumn(name string, s *data.Schema) error {
	return fmt.Errorf("column %q: no such column (have: %s)", name, strings.Join(s.Names(), ", "))
}

func newSelect(cols []string, in *data.Schema) (op, error) {
	if len(cols) == 0 {
		return nil, errors.New("no columns to select")
	}
	p := &project{}
	fields := make([]data.Field, 0, len(cols))
	for _, name := range cols {
		i := in.Index(name)
		if i < 0 {
			return nil, noColumn(name, in)
		}
		p.idx = append(p.idx, i)
		fields = append(fields, in.Fields[i])
	}
	out, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("selecting columns: %w", err)
	}
	p.out = out
	return p, nil
}

func newDrop(cols []string, in *data.Schema) (op, error) {
	if len(cols) == 0 {
		return nil, errors.New("no columns to drop")
	}
	dropped := make(map[string]bool, len(cols))
	for _, name := range cols {
		if in.Index(name) < 0 {
			return nil, noColumn(name, in)
		}
		if dropped[name] {
			return nil, fmt.Errorf("column %q: listed twice", name)
		}
		dropped[name] = true
	}
	if len(dropped) == len(in.Fields) {
		return nil, errors.New("dropping every column leaves nothing to pass on")
	}
	p := &project{}
	var fields []data.Field
	for i, f := range in.Fields {
		if !dropped[f.Name] {
			p.idx = append(p.idx, i)
			fields = append(fields, f)
		}
	}
	out, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("dropping columns: %w", err)
	}
	p.out = out
	return p, nil
}

func newRename(renames []pipeline.Rename, in *data.Schema) (op, error) {
	if len(renames) == 0 {
		return nil, errors.New("no columns to rename")
	}
	fields := append([]data.Field(nil), in.Fields...)
	seen := make(map[string]bool, len(renames))
	for _, r := range renames {
		i := in.Index(r.From)
		if i < 0 {
			return nil, noColumn(r.From, in)
		}
		if r.To == "" {
			return nil, fmt.Errorf("column %q: empty new name", r.From)
		}
		if seen[r.From] {
			return nil, fmt.Errorf("column %q: renamed twice", r.From)
		}
		seen[r.From] = true
		fields[i].Name = r.To
	}
	out, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("renaming columns: %w", err)
	}
	p := &project{out: out, idx: make([]int, len(fields))}
	for i := range p.idx {
		p.idx[i] = i
	}
	return p, nil
}

// filter keeps the rows for which a bool expression is true.
type filter struct {
	prg  *expr.Program
	ev   *expr.Evaluator
	out  *data.Schema
	keep []int32
	buf  compactBuf
}

func newFilter(src string, in *data.Schema) (op, error) {
	prg, err := expr.Compile(src, in)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	if !prg.IsBool() {
		return nil, fmt.Errorf("expression %q yields %s, want bool", src, prg.OutputTypeName())
	}
	return &filter{prg: prg, ev: prg.NewEvaluator(), out: in}, nil
}

func (f *filter) schema() *data.Schema { return f.out }

func (f *filter) apply(ctx context.Context, c *Chain, q data.Quarantine) (filtered, rejected int64, err error) {
	b := c.cur.b
	f.keep = f.keep[:0]
	for r := 0; r < b.Len; r++ {
		ok, err := f.ev.EvalBool(b, r)
		if err != nil {
			if err := c.reject(ctx, q, r, fmt.Sprintf("filter: %s", err.Error())); err != nil {
				return 0, 0, err
			}
			rejected++
			continue
		}
		if !ok {
			filtered++
			continue
		}
		f.keep = append(f.keep, int32(r))
	}
	c.keepRows(f.keep, &f.buf)
	return filtered, rejected, nil
}

// derive sets one column to the value of an expression.
type derive struct {
	column string
	prg    *expr.Program
	ev     *expr.Evaluator
	out    *data.Schema
	pos    int // index of the column in out; len(in) when appended
	col    data.Column
	cols   []data.Column
	batch  data.Batch
	keep   []int32
	buf    compactBuf
}

func newDerive(d pipeline.Derive, in *data.Schema) (op, error) {
	if d.Column == "" {
		return nil, errors.New("derived column has no name")
	}
	prg, err := expr.Compile(d.Expr, in)
	if err != nil {
		return nil, fmt.Errorf("column %q: expression %q: %w", d.Column, d.Expr, err)
	}
	t, ok := prg.OutputType()
	if !ok {
		return nil, fmt.Errorf("column %q: expression %q yields %s, want string, int, float, bool or timestamp",
			d.Column, d.Expr, prg.OutputTypeName())
	}
	fields := append([]data.Field(nil), in.Fields...)
	pos := in.Index(d.Column)
	if pos >= 0 {
		fields[pos].Type = t
	} else {
		pos = len(fields)
		fields = append(fields, data.Field{Name: d.Column, Type: t})
	}
	out, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("column %q: %w", d.Column, err)
	}
	return &derive{column: d.Column, prg: prg, ev: prg.NewEvaluator(), out: out, pos: pos, col: data.Column{Type: t}}, nil
}

func (d *derive) schema() *data.Schema { return d.out }

func (d *derive) apply(ctx context.Context, c *Chain, q data.Quarantine) (filtered, rejected int64, err error) {
	b := c.cur.b
	resetColumn(&d.col, b.Len)
	d.keep = d.keep[:0]
	for r := 0; r < b.Len; r++ {
		if err := d.ev.EvalAppend(b, r, &d.col); err != nil {
			d.col.AppendNull()
			reason := fmt.Sprintf("derive: column %q: %s", d.column, err.Error())
			if err := c.reject(ctx, q, r, reason); err != nil {
				return 0, 0, err
			}
			rejected++
			continue
		}
		d.keep = append(d.keep, int32(r))
	}
	d.cols = append(d.cols[:0], b.Cols...)
	if d.pos < len(d.cols) {
		d.cols[d.pos] = d.col
	} else {
		d.cols = append(d.cols, d.col)
	}
	d.batch = data.Batch{Schema: d.out, Cols: d.cols, Len: b.Len}
	c.cur.b = &d.batch
	c.keepRows(d.keep, &d.buf)
	return 0, rejected, nil
}

// resetColumn empties c for reuse, keeping its memory, with room for n rows.
func resetColumn(c *data.Column, n int) {
	switch c.Type {
	case data.String:
		c.Strings = grow(c.Strings[:0], n)
	case data.Int:
		c.Ints = grow(c.Ints[:0], n)
	case data.Float:
		c.Floats = grow(c.Floats[:0], n)
	case data.Bool:
		c.Bools = grow(c.Bools[:0], n)
	case data.Timestamp:
		c.Times = grow(c.Times[:0], n)
	}
	c.Nulls = nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n)
	}
	return s
}
