// Package transform compiles the transform steps of a pipeline (select,
// drop, rename, cast, filter, derive) against an input schema and applies
// them batch by batch.
//
// Every input row ends up in exactly one place: the output, filtered out by
// a filter step, or quarantined because a value did not cast or an
// expression failed on it. Stats counts all three, so
// In == Out + Filtered + Quarantined always holds between batches.
package transform

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// ErrNoQuarantine is returned by Apply when a row must be quarantined but
// the caller passed no Quarantine: a row is never dropped silently.
var ErrNoQuarantine = errors.New("a row must be quarantined but there is no quarantine")

// Stats counts rows through a Chain.
type Stats struct {
	In          int64 // rows received
	Out         int64 // rows passed on
	Filtered    int64 // rows a filter step removed
	Quarantined int64 // rows sent to quarantine
}

// Chain is a compiled sequence of steps. Compile it once per stream; Apply
// it to each batch in order. A Chain is not safe for concurrent use: Apply
// reuses buffers between calls, and the batch it returns is valid only until
// the next call. Run one Chain per goroutine.
type Chain struct {
	in    *data.Schema
	out   *data.Schema
	ops   []op
	stats Stats

	// Per-Apply state, reused between calls.
	cur   rows
	outB  data.Batch
	pos   []int64
	label string // "line" or "row": how reject positions are named
}

// op is one compiled operation. A derive step with several columns
// compiles to one op per column, so each sees the columns derived before it.
type op interface {
	// apply transforms the rows in place of c.cur, rejecting rows through
	// c.reject and reporting the rows it filtered.
	apply(ctx context.Context, c *Chain, q data.Quarantine) (filtered int64, rejected int64, err error)
	schema() *data.Schema
}

// rows is the batch an op works on, with each row's index in the batch
// given to Apply (nil orig means row i is input row i).
type rows struct {
	in   *data.Batch
	b    *data.Batch
	orig []int32
	base int64 // rows received before this batch, for "row N" positions
}

// origRow returns the input row index of current row r.
func (r *rows) origRow(i int) int {
	if r.orig == nil {
		return i
	}
	return int(r.orig[i])
}

// Compile compiles steps against the input schema in, computing each
// step's output schema. Errors name the step by its 1-based number and kind,
// e.g. `step 3 (cast): column "age": no such column (have: id, name)`.
func Compile(steps []pipeline.Step, in *data.Schema) (*Chain, error) {
	if in == nil {
		return nil, errors.New("compiling transform: nil input schema")
	}
	c := &Chain{in: in}
	cur := in
	for i, s := range steps {
		ops, err := compileStep(s, cur)
		if err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i+1, s.Kind, err)
		}
		for _, o := range ops {
			c.ops = append(c.ops, o)
			cur = o.schema()
		}
	}
	c.out = cur
	return c, nil
}

func compileStep(s pipeline.Step, in *data.Schema) ([]op, error) {
	switch s.Kind {
	case pipeline.StepSelect:
		o, err := newSelect(s.Columns, in)
		return []op{o}, err
	case pipeline.StepDrop:
		o, err := newDrop(s.Columns, in)
		return []op{o}, err
	case pipeline.StepRename:
		o, err := newRename(s.Renames, in)
		return []op{o}, err
	case pipeline.StepCast:
		o, err := newCast(s.Casts, in)
		return []op{o}, err
	case pipeline.StepFilter:
		o, err := newFilter(s.Expr, in)
		return []op{o}, err
	case pipeline.StepDerive:
		if len(s.Derives) == 0 {
			return nil, errors.New("no columns to derive")
		}
		ops := make([]op, 0, len(s.Derives))
		cur := in
		for _, d := range s.Derives {
			o, err := newDerive(d, cur)
			if err != nil {
				return nil, err
			}
			ops = append(ops, o)
			cur = o.schema()
		}
		return ops, nil
	}
	return nil, fmt.Errorf("unknown step kind %q", s.Kind)
}

// Schema returns the schema of the batches Apply returns.
func (c *Chain) Schema() *data.Schema { return c.out }

// InputSchema returns the schema Compile was given; Apply expects batches
// with these fields.
func (c *Chain) InputSchema() *data.Schema { return c.in }

// Stats returns the counts of all batches applied successfully so far.
func (c *Chain) Stats() Stats { return c.stats }

// Apply runs the steps over one batch and returns the rows that pass. The
// returned batch may share memory with in and with the chain's buffers: it
// is valid until the next call to Apply. Rows that fail a cast or an
// expression go to q. An error from q, a cancelled ctx, or a batch of the
// wrong schema stops the batch; Stats then does not count it.
func (c *Chain) Apply(ctx context.Context, in *data.Batch, q data.Quarantine) (*data.Batch, error) {
	if in == nil {
		return nil, errors.New("applying transform: nil batch")
	}
	if in.Schema != c.in && !sameFields(in.Schema, c.in) {
		return nil, fmt.Errorf("applying transform: batch schema (%s) differs from the input schema (%s)", in.Schema, c.in)
	}
	c.cur = rows{in: in, b: in, base: c.stats.In}
	c.label = "row"
	if in.Pos != nil {
		c.label = "line"
	}
	var filtered, rejected int64
	for _, o := range c.ops {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("applying transform: %w", err)
		}
		if c.cur.b.Len == 0 {
			break
		}
		f, r, err := o.apply(ctx, c, q)
		if err != nil {
			return nil, err
		}
		filtered += f
		rejected += r
	}
	out := c.finish(c.cur.b)
	c.stats.In += int64(in.Len)
	c.stats.Out += int64(out.Len)
	c.stats.Filtered += filtered
	c.stats.Quarantined += rejected
	return out, nil
}

// finish sets the output batch's schema and positions.
func (c *Chain) finish(b *data.Batch) *data.Batch {
	c.outB = data.Batch{Schema: c.out, Cols: b.Cols, Len: b.Len}
	if b.Len == 0 {
		// Later steps may not have run: present no rows in the output
		// schema.
		c.outB.Cols = emptyCols(c.out)
	}
	if c.cur.in.Pos != nil {
		if c.cur.orig == nil {
			c.outB.Pos = c.cur.in.Pos[:b.Len]
		} else {
			c.pos = c.pos[:0]
			for _, o := range c.cur.orig[:b.Len] {
				c.pos = append(c.pos, c.cur.in.Pos[o])
			}
			c.outB.Pos = c.pos
		}
	}
	return &c.outB
}

// emptyCols returns zero-length columns of the schema's types.
func emptyCols(s *data.Schema) []data.Column {
	cols := make([]data.Column, len(s.Fields))
	for i, f := range s.Fields {
		cols[i] = data.Column{Type: f.Type}
	}
	return cols
}

// reject sends current row r to q with reason and counts nothing: the
// caller counts.
func (c *Chain) reject(ctx context.Context, q data.Quarantine, r int, reason string) error {
	if q == nil {
		return fmt.Errorf("%s: %w", reason, ErrNoQuarantine)
	}
	o := c.cur.origRow(r)
	var pos string
	if c.cur.in.Pos != nil {
		pos = fmt.Sprintf("%s %d", c.label, c.cur.in.Pos[o])
	} else {
		pos = fmt.Sprintf("%s %d", c.label, c.cur.base+int64(o)+1)
	}
	if err := q.Reject(ctx, data.Reject{Pos: pos, Reason: reason, Raw: rowJSON(c.cur.in, o)}); err != nil {
		return fmt.Errorf("quarantining %s: %w", pos, err)
	}
	return nil
}

// keepRows narrows the current rows to those whose index is in keep, by
// copying them into dst (an op-owned buffer). When keep holds every row,
// the current batch is used as it is.
func (c *Chain) keepRows(keep []int32, dst *compactBuf) {
	if len(keep) == c.cur.b.Len {
		return
	}
	b := c.cur.b
	dst.batch.Schema = b.Schema
	if len(dst.batch.Cols) != len(b.Cols) {
		dst.batch.Cols = make([]data.Column, len(b.Cols))
	}
	for i := range b.Cols {
		gather(&dst.batch.Cols[i], &b.Cols[i], keep)
	}
	dst.batch.Len = len(keep)
	dst.orig = dst.orig[:0]
	for _, k := range keep {
		dst.orig = append(dst.orig, int32(c.cur.origRow(int(k))))
	}
	c.cur.b = &dst.batch
	c.cur.orig = dst.orig
}

// compactBuf is an op's buffer for the rows it keeps.
type compactBuf struct {
	batch data.Batch
	orig  []int32
}

// gather copies the rows keep of src into dst, reusing dst's memory.
func gather(dst, src *data.Column, keep []int32) {
	dst.Type = src.Type
	switch src.Type {
	case data.String:
		dst.Strings = dst.Strings[:0]
		for _, k := range keep {
			dst.Strings = append(dst.Strings, src.Strings[k])
		}
	case data.Int:
		dst.Ints = dst.Ints[:0]
		for _, k := range keep {
			dst.Ints = append(dst.Ints, src.Ints[k])
		}
	case data.Float:
		dst.Floats = dst.Floats[:0]
		for _, k := range keep {
			dst.Floats = append(dst.Floats, src.Floats[k])
		}
	case data.Bool:
		dst.Bools = dst.Bools[:0]
		for _, k := range keep {
			dst.Bools = append(dst.Bools, src.Bools[k])
		}
	case data.Timestamp:
		dst.Times = dst.Times[:0]
		for _, k := range keep {
			dst.Times = append(dst.Times, src.Times[k])
		}
	}
	if src.Nulls == nil {
		dst.Nulls = nil
		return
	}
	nulls := dst.Nulls[:0]
	for _, k := range keep {
		nulls = append(nulls, src.Nulls[k])
	}
	dst.Nulls = nulls
}

func sameFields(a, b *data.Schema) bool {
	if a == nil || b == nil || len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i] != b.Fields[i] {
			return false
		}
	}
	return true
}
