package fileio

import (
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/data"
)

// Builder fills one reused data.Batch row by row. A reader appends exactly
// one value to every column and then calls EndRow, or calls DropRow to
// take back a row it found bad half-way through.
//
// Nulls follows the data.Column contract: nil while the batch holds no
// null in that column. The masks are kept between batches so that a column
// with nulls does not allocate a new mask for every batch.
type Builder struct {
	B       *data.Batch
	nullBuf [][]bool
}

// NewBuilder returns a builder of batches of schema with room for capacity
// rows.
func NewBuilder(schema *data.Schema, capacity int) *Builder {
	b := data.NewBatch(schema, capacity)
	b.Pos = make([]int64, 0, capacity)
	return &Builder{B: b, nullBuf: make([][]bool, len(schema.Fields))}
}

// Reset empties the batch for reuse.
func (bd *Builder) Reset() {
	b := bd.B
	b.Len = 0
	b.Pos = b.Pos[:0]
	for i := range b.Cols {
		c := &b.Cols[i]
		if c.Nulls != nil {
			bd.nullBuf[i] = c.Nulls[:0]
			c.Nulls = nil
		}
		truncate(c, 0)
	}
}

// DropRow removes whatever the current, unfinished row appended.
func (bd *Builder) DropRow() {
	b := bd.B
	for i := range b.Cols {
		c := &b.Cols[i]
		truncate(c, b.Len)
		if c.Nulls != nil && len(c.Nulls) > b.Len {
			c.Nulls = c.Nulls[:b.Len]
		}
	}
}

// EndRow completes the current row, recording its position in the source.
func (bd *Builder) EndRow(pos int64) {
	bd.B.Len++
	bd.B.Pos = append(bd.B.Pos, pos)
}

func truncate(c *data.Column, n int) {
	switch c.Type {
	case data.String:
		if len(c.Strings) > n {
			clear(c.Strings[n:]) // drop references so old strings can be freed
			c.Strings = c.Strings[:n]
		}
	case data.Int:
		c.Ints = c.Ints[:min(n, len(c.Ints))]
	case data.Float:
		c.Floats = c.Floats[:min(n, len(c.Floats))]
	case data.Bool:
		c.Bools = c.Bools[:min(n, len(c.Bools))]
	case data.Timestamp:
		c.Times = c.Times[:min(n, len(c.Times))]
	}
}

// AppendNull appends a null to column i. The zero value and the mask come
// from data.Column.AppendNull; the builder only lends the column the mask
// memory of an earlier batch, so that a column with nulls in every batch
// allocates its mask once rather than once per batch.
func (bd *Builder) AppendNull(i int) {
	c := &bd.B.Cols[i]
	if buf := bd.nullBuf[i]; c.Nulls == nil && cap(buf) > bd.B.Len {
		m := buf[:bd.B.Len]
		clear(m) // every earlier row of this batch is not null
		c.Nulls = m
	}
	c.AppendNull()
}

// AppendString appends a string to column i.
func (bd *Builder) AppendString(i int, v string) {
	c := &bd.B.Cols[i]
	c.Strings = append(c.Strings, v)
	c.MarkAppended()
}

// AppendInt appends an int to column i.
func (bd *Builder) AppendInt(i int, v int64) {
	c := &bd.B.Cols[i]
	c.Ints = append(c.Ints, v)
	c.MarkAppended()
}

// AppendFloat appends a float to column i.
func (bd *Builder) AppendFloat(i int, v float64) {
	c := &bd.B.Cols[i]
	c.Floats = append(c.Floats, v)
	c.MarkAppended()
}

// AppendBool appends a bool to column i.
func (bd *Builder) AppendBool(i int, v bool) {
	c := &bd.B.Cols[i]
	c.Bools = append(c.Bools, v)
	c.MarkAppended()
}

// AppendTime appends a timestamp to column i.
func (bd *Builder) AppendTime(i int, v time.Time) {
	c := &bd.B.Cols[i]
	c.Times = append(c.Times, v)
	c.MarkAppended()
}

// Quote renders a value for an error message: quoted, and cut short when
// long, so that one bad multi-megabyte field does not flood a reason.
func Quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
