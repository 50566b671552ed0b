package artifact

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/sluicehq/sluice/internal/data"
)

var timestampType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// arrowType maps a column type to its Arrow type.
func arrowType(t data.Type) arrow.DataType {
	switch t {
	case data.String:
		return arrow.BinaryTypes.String
	case data.Int:
		return arrow.PrimitiveTypes.Int64
	case data.Float:
		return arrow.PrimitiveTypes.Float64
	case data.Bool:
		return arrow.FixedWidthTypes.Boolean
	case data.Timestamp:
		return timestampType
	}
	panic(fmt.Sprintf("artifact: no Arrow type for %s", t))
}

func toArrowSchema(s *data.Schema) *arrow.Schema {
	fs := make([]arrow.Field, len(s.Fields))
	for i, f := range s.Fields {
		fs[i] = arrow.Field{Name: f.Name, Type: arrowType(f.Type), Nullable: true}
	}
	return arrow.NewSchema(fs, nil)
}

// fromArrowSchema maps an Arrow schema read from a file back, rejecting
// any type this package does not write.
func fromArrowSchema(s *arrow.Schema) (*data.Schema, error) {
	fs := make([]data.Field, s.NumFields())
	for i, f := range s.Fields() {
		var t data.Type
		switch dt := f.Type.(type) {
		case *arrow.StringType:
			t = data.String
		case *arrow.Int64Type:
			t = data.Int
		case *arrow.Float64Type:
			t = data.Float
		case *arrow.BooleanType:
			t = data.Bool
		case *arrow.TimestampType:
			if dt.Unit != arrow.Microsecond || dt.TimeZone != "UTC" {
				return nil, fmt.Errorf("field %q: unsupported type %s", f.Name, dt)
			}
			t = data.Timestamp
		default:
			return nil, fmt.Errorf("field %q: unsupported type %s", f.Name, f.Type)
		}
		fs[i] = data.Field{Name: f.Name, Type: t}
	}
	schema, err := data.NewSchema(fs...)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return schema, nil
}

// encoder turns batches into Arrow records, reusing its scratch buffers.
// Int and float values are not copied: the record borrows the batch's
// slices for the duration of one write.
type encoder struct {
	schema  *arrow.Schema
	valid   [][]byte // validity bitmap per column
	bools   [][]byte
	ints    [][]int64 // timestamps as microseconds
	offsets [][]int32
	strs    [][]byte
	cols    []arrow.Array
}

func newEncoder(s *data.Schema) *encoder {
	n := len(s.Fields)
	return &encoder{
		schema: toArrowSchema(s), valid: make([][]byte, n), bools: make([][]byte, n),
		ints: make([][]int64, n), offsets: make([][]int32, n), strs: make([][]byte, n),
		cols: make([]arrow.Array, n),
	}
}

// bitmap returns buf resized to hold n bits, all clear.
func bitmap(buf []byte, n int) []byte {
	size := int(bitutil.BytesForBits(int64(n)))
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	clear(buf)
	return buf
}

// record builds the Arrow record for b. The caller releases it.
func (e *encoder) record(b *data.Batch) (arrow.RecordBatch, error) {
	n := b.Len
	for i := range b.Cols {
		c := &b.Cols[i]
		var validity *memory.Buffer
		nulls := 0
		if c.Nulls != nil {
			e.valid[i] = bitmap(e.valid[i], n)
			for r := 0; r < n; r++ {
				if c.Nulls[r] {
					nulls++
				} else {
					bitutil.SetBit(e.valid[i], r)
				}
			}
			if nulls > 0 {
				validity = memory.NewBufferBytes(e.valid[i])
			}
		}
		var buffers []*memory.Buffer
		switch c.Type {
		case data.String:
			offs := append(e.offsets[i][:0], 0)
			bs := e.strs[i][:0]
			for _, s := range c.Strings[:n] {
				bs = append(bs, s...)
				if len(bs) > 1<<31-1 {
					return nil, fmt.Errorf("column %q: more than 2 GiB of text in one batch", b.Schema.Fields[i].Name)
				}
				offs = append(offs, int32(len(bs)))
			}
			e.offsets[i], e.strs[i] = offs, bs
			buffers = []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offs)), memory.NewBufferBytes(bs)}
		case data.Int:
			buffers = []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(c.Ints[:n]))}
		case data.Float:
			buffers = []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(c.Floats[:n]))}
		case data.Bool:
			e.bools[i] = bitmap(e.bools[i], n)
			for r, v := range c.Bools[:n] {
				if v {
					bitutil.SetBit(e.bools[i], r)
				}
			}
			buffers = []*memory.Buffer{validity, memory.NewBufferBytes(e.bools[i])}
		case data.Timestamp:
			us := e.ints[i][:0]
			for r, t := range c.Times[:n] {
				if c.IsNull(r) {
					us = append(us, 0)
				} else {
					us = append(us, t.UnixMicro())
				}
			}
			e.ints[i] = us
			buffers = []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(us))}
		}
		d := array.NewData(e.schema.Field(i).Type, n, buffers, nil, nulls, 0)
		e.cols[i] = array.MakeFromData(d)
		d.Release()
	}
	rec := array.NewRecordBatch(e.schema, e.cols, int64(n))
	for i, c := range e.cols {
		c.Release()
		e.cols[i] = nil
	}
	return rec, nil
}

// decode fills the reused batch b from rec, copying the values so that
// the batch does not depend on the record's buffers.
func decode(b *data.Batch, nullBuf [][]bool, rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	b.Len = n
	b.Pos = nil
	for i := range b.Cols {
		c := &b.Cols[i]
		col := rec.Column(i)
		if col.Len() != n {
			return fmt.Errorf("column %q: %d values in a batch of %d rows", b.Schema.Fields[i].Name, col.Len(), n)
		}
		c.Nulls = nil
		if col.NullN() > 0 {
			nb := nullBuf[i][:0]
			for r := 0; r < n; r++ {
				nb = append(nb, col.IsNull(r))
			}
			nullBuf[i] = nb
			c.Nulls = nb
		}
		switch a := col.(type) {
		case *array.String:
			clear(c.Strings)
			c.Strings = c.Strings[:0]
			offs := a.ValueOffsets()
			all := string(a.ValueBytes()) // one allocation per column per batch
			base := offs[0]
			for r := 0; r < n; r++ {
				c.Strings = append(c.Strings, all[offs[r]-base:offs[r+1]-base])
			}
		case *array.Int64:
			c.Ints = append(c.Ints[:0], a.Int64Values()...)
		case *array.Float64:
			c.Floats = append(c.Floats[:0], a.Float64Values()...)
		case *array.Boolean:
			c.Bools = c.Bools[:0]
			for r := 0; r < n; r++ {
				c.Bools = append(c.Bools, a.Value(r))
			}
		case *array.Timestamp:
			c.Times = c.Times[:0]
			for r, v := range a.Values() {
				if c.IsNull(r) {
					c.Times = append(c.Times, time.Time{})
				} else {
					c.Times = append(c.Times, time.UnixMicro(int64(v)).UTC())
				}
			}
		default:
			return fmt.Errorf("column %q: unexpected array %T", b.Schema.Fields[i].Name, col)
		}
	}
	return nil
}
