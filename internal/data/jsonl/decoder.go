package jsonl

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Decoder turns JSON objects into the rows of a batch by the rules of the
// jsonl source (see the package documentation): strict JSON, a missing
// field is null, a field not in the schema is ignored, a value of the
// wrong JSON type makes the whole record bad. The jsonl source uses it for
// its lines; connectors whose records arrive as JSON objects from
// elsewhere (an HTTP API, a message stream) use it too, so that every
// JSON record in sluice is decoded, and rejected, the same way.
//
// A Decoder fills one reused batch: call Reset before a new batch, Append
// per record, and Batch to hand the rows on.
type Decoder struct {
	schema *data.Schema
	index  map[string]int
	bd     *fileio.Builder
	sc     scanner

	// The record being decoded: which columns it set (seen[i] == gen),
	// and their values. Strings are gathered in strs and turned into one
	// string per record.
	gen    uint32
	seen   []uint32
	slots  []slot
	strs   []byte
	keyBuf []byte
	tmp    []byte
}

// NewDecoder returns a decoder of records of schema into batches with room
// for capacity rows.
func NewDecoder(schema *data.Schema, capacity int) *Decoder {
	d := &Decoder{}
	d.init(schema, capacity)
	return d
}

func (d *Decoder) init(schema *data.Schema, capacity int) {
	d.schema = schema
	d.index = make(map[string]int, len(schema.Fields))
	for i, f := range schema.Fields {
		d.index[f.Name] = i
	}
	d.seen = make([]uint32, len(schema.Fields))
	d.slots = make([]slot, len(schema.Fields))
	d.bd = fileio.NewBuilder(schema, capacity)
}

// Batch returns the batch the appended rows went to. It is reused after
// Reset.
func (d *Decoder) Batch() *data.Batch { return d.bd.B }

// Reset empties the batch for the next rows.
func (d *Decoder) Reset() { d.bd.Reset() }

// InferSchema derives a schema from one JSON object as the jsonl source
// does without a declared schema: a string is a string column, an
// integral number an int, any other number a float, true/false a bool, and
// null, an object or an array a string column. It returns why not when obj
// is not a JSON object with at least one field.
func InferSchema(obj []byte) (*data.Schema, string) {
	var d Decoder
	fields, reason := d.inferLine(obj)
	if reason != "" {
		return nil, reason
	}
	if len(fields) == 0 {
		return nil, "no fields to infer the schema from"
	}
	schema, err := data.NewSchema(fields...)
	if err != nil {
		return nil, "inferring schema: " + err.Error()
	}
	return schema, ""
}

type slot struct {
	null   bool
	s0, s1 int
	i      int64
	f      float64
	b      bool
	t      time.Time
}

func (d *Decoder) inferLine(line []byte) ([]data.Field, string) {
	var fields []data.Field
	seen := map[string]bool{}
	if !d.sc.begin(line) {
		return nil, d.sc.err
	}
	for {
		k, v, ok := d.sc.next()
		if !ok {
			if d.sc.err != "" {
				return nil, d.sc.err
			}
			return fields, ""
		}
		name := string(appendUnescaped(nil, k.raw, k.esc))
		if seen[name] {
			return nil, fmt.Sprintf("field %q appears twice", name)
		}
		seen[name] = true
		t := data.String
		switch v.kind {
		case kBool:
			t = data.Bool
		case kNumber:
			t = data.Float
			if v.isInt {
				if _, err := strconv.ParseInt(string(v.raw), 10, 64); err == nil {
					t = data.Int
				}
			}
		}
		fields = append(fields, data.Field{Name: name, Type: t})
	}
}

// Append decodes obj, the text of one JSON object, as a new row of the
// batch at position pos. When obj is not a valid record for the schema it
// appends nothing and returns why, for the caller to quarantine with its
// own notion of where the record came from; otherwise it returns "".
func (d *Decoder) Append(obj []byte, pos int64) string {
	if reason := d.decode(obj); reason != "" {
		return reason
	}
	var str string
	if len(d.strs) > 0 {
		str = string(d.strs)
	}
	for i, f := range d.schema.Fields {
		sl := &d.slots[i]
		if d.seen[i] != d.gen || sl.null {
			d.bd.AppendNull(i)
			continue
		}
		switch f.Type {
		case data.String:
			d.bd.AppendString(i, str[sl.s0:sl.s1])
		case data.Int:
			d.bd.AppendInt(i, sl.i)
		case data.Float:
			d.bd.AppendFloat(i, sl.f)
		case data.Bool:
			d.bd.AppendBool(i, sl.b)
		case data.Timestamp:
			d.bd.AppendTime(i, sl.t)
		}
	}
	d.bd.EndRow(pos)
	return ""
}

// decode scans line into the slots, or returns why it cannot.
func (d *Decoder) decode(line []byte) string {
	d.gen++
	if d.gen == 0 { // wrapped: forget every stale mark
		clear(d.seen)
		d.gen = 1
	}
	d.strs = d.strs[:0]
	if !d.sc.begin(line) {
		return d.sc.err
	}
	for {
		k, v, ok := d.sc.next()
		if !ok {
			return d.sc.err
		}
		key := k.raw[1 : len(k.raw)-1]
		if k.esc {
			d.keyBuf = appendUnescaped(d.keyBuf[:0], k.raw, true)
			key = d.keyBuf
		}
		col, known := d.index[string(key)]
		if !known {
			continue
		}
		if d.seen[col] == d.gen {
			return fmt.Sprintf("field %q appears twice", d.schema.Fields[col].Name)
		}
		d.seen[col] = d.gen
		if reason := d.set(col, &v); reason != "" {
			return reason
		}
	}
}

// set stores v as the value of column col.
func (d *Decoder) set(col int, v *value) string {
	sl := &d.slots[col]
	sl.null = v.kind == kNull
	if sl.null {
		return ""
	}
	f := d.schema.Fields[col]
	switch f.Type {
	case data.String:
		switch v.kind {
		case kString:
			sl.s0 = len(d.strs)
			d.strs = appendUnescaped(d.strs, v.raw, v.esc)
			sl.s1 = len(d.strs)
			return ""
		case kObject, kArray:
			sl.s0 = len(d.strs)
			d.strs = append(d.strs, v.raw...)
			sl.s1 = len(d.strs)
			return ""
		}
	case data.Int:
		if v.kind == kNumber {
			if n, err := strconv.ParseInt(string(v.raw), 10, 64); err == nil {
				sl.i = n
				return ""
			}
			if x, err := strconv.ParseFloat(string(v.raw), 64); err == nil && x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
				sl.i = int64(x)
				return ""
			}
			return fmt.Sprintf("field %q: %s is not an int", f.Name, fileio.Quote(string(v.raw)))
		}
	case data.Float:
		if v.kind == kNumber {
			x, err := strconv.ParseFloat(string(v.raw), 64)
			if err != nil {
				return fmt.Sprintf("field %q: %s is out of range for a float", f.Name, fileio.Quote(string(v.raw)))
			}
			sl.f = x
			return ""
		}
	case data.Bool:
		if v.kind == kBool {
			sl.b = v.b
			return ""
		}
	case data.Timestamp:
		if v.kind == kString {
			d.tmp = appendUnescaped(d.tmp[:0], v.raw, v.esc)
			t, ok := fileio.ParseTime(string(d.tmp))
			if !ok {
				return fmt.Sprintf("field %q: %s is not a timestamp (want RFC 3339)", f.Name, fileio.Quote(string(d.tmp)))
			}
			sl.t = t
			return ""
		}
	}
	return fmt.Sprintf("field %q: want %s, got JSON %s", f.Name, f.Type, v.kind)
}
