package transform

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// cast converts columns to other types. A value that does not convert
// sends its row to quarantine. Nulls stay null, and so does an empty (or
// all-space) string cast to a non-string type, since that is how text
// formats write a missing value.
type cast struct {
	out   *data.Schema
	convs []conv
	cols  []data.Column
	batch data.Batch
	dead  []bool
	keep  []int32
	buf   compactBuf
}

// conv is the conversion of one column.
type conv struct {
	idx      int
	name     string
	from, to data.Type
	col      data.Column
}

func newCast(casts []pipeline.Cast, in *data.Schema) (op, error) {
	if len(casts) == 0 {
		return nil, errors.New("no columns to cast")
	}
	c := &cast{}
	fields := append([]data.Field(nil), in.Fields...)
	seen := make(map[string]bool, len(casts))
	for _, k := range casts {
		i := in.Index(k.Column)
		if i < 0 {
			return nil, noColumn(k.Column, in)
		}
		if seen[k.Column] {
			return nil, fmt.Errorf("column %q: cast twice", k.Column)
		}
		seen[k.Column] = true
		from := in.Fields[i].Type
		if !castable(from, k.Type) {
			return nil, fmt.Errorf("column %q: cannot cast %s to %s", k.Column, from, k.Type)
		}
		fields[i].Type = k.Type
		if from == k.Type {
			continue // nothing to do, and nothing to copy
		}
		c.convs = append(c.convs, conv{idx: i, name: k.Column, from: from, to: k.Type, col: data.Column{Type: k.Type}})
	}
	out, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("casting columns: %w", err)
	}
	c.out = out
	return c, nil
}

// castable reports whether cast supports converting from to to.
func castable(from, to data.Type) bool {
	if from == to || to == data.String {
		return true
	}
	switch from {
	case data.String:
		return to == data.Int || to == data.Float || to == data.Bool || to == data.Timestamp
	case data.Int:
		return to == data.Float
	case data.Float:
		return to == data.Int
	}
	return false
}

func (c *cast) schema() *data.Schema { return c.out }

func (c *cast) apply(ctx context.Context, ch *Chain, q data.Quarantine) (filtered, rejected int64, err error) {
	b := ch.cur.b
	c.dead = c.dead[:0]
	for range b.Len {
		c.dead = append(c.dead, false)
	}
	for k := range c.convs {
		cv := &c.convs[k]
		src := &b.Cols[cv.idx]
		resetColumn(&cv.col, b.Len)
		for r := 0; r < b.Len; r++ {
			if c.dead[r] || src.IsNull(r) {
				cv.col.AppendNull()
				continue
			}
			if reason := convert(&cv.col, src, r); reason != "" {
				cv.col.AppendNull()
				c.dead[r] = true
				if err := ch.reject(ctx, q, r, fmt.Sprintf("cast: column %q: %s", cv.name, reason)); err != nil {
					return 0, 0, err
				}
				rejected++
			}
		}
	}
	c.cols = append(c.cols[:0], b.Cols...)
	for k := range c.convs {
		c.cols[c.convs[k].idx] = c.convs[k].col
	}
	c.batch = data.Batch{Schema: c.out, Cols: c.cols, Len: b.Len}
	ch.cur.b = &c.batch
	if rejected > 0 {
		c.keep = c.keep[:0]
		for r, d := range c.dead {
			if !d {
				c.keep = append(c.keep, int32(r))
			}
		}
		ch.keepRows(c.keep, &c.buf)
	}
	return 0, rejected, nil
}

// convert appends row r of src converted to dst's type, or returns why it
// cannot, e.g. `"abc" is not an int`.
func convert(dst, src *data.Column, r int) string {
	switch src.Type {
	case data.String:
		s := src.Strings[r]
		if dst.Type == data.String {
			dst.Strings = append(dst.Strings, s)
			break
		}
		if strings.TrimSpace(s) == "" {
			dst.AppendNull()
			return ""
		}
		if reason := parseInto(dst, s); reason != "" {
			return reason
		}
	case data.Int:
		i := src.Ints[r]
		switch dst.Type {
		case data.Float:
			dst.Floats = append(dst.Floats, float64(i))
		case data.String:
			dst.Strings = append(dst.Strings, strconv.FormatInt(i, 10))
		}
	case data.Float:
		f := src.Floats[r]
		switch dst.Type {
		case data.Int:
			// 2^63 is the first float64 above MaxInt64.
			if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
				return fmt.Sprintf("%s is not an int", strconv.FormatFloat(f, 'g', -1, 64))
			}
			dst.Ints = append(dst.Ints, int64(f))
		case data.String:
			dst.Strings = append(dst.Strings, strconv.FormatFloat(f, 'g', -1, 64))
		}
	case data.Bool:
		dst.Strings = append(dst.Strings, strconv.FormatBool(src.Bools[r]))
	case data.Timestamp:
		dst.Strings = append(dst.Strings, src.Times[r].UTC().Format(time.RFC3339Nano))
	}
	dst.MarkAppended()
	return ""
}

// dateLayout is a calendar date, cast to midnight UTC.
const dateLayout = "2006-01-02"

// parseInto parses s as dst's type and appends it (without the null mask
// entry, which convert adds).
func parseInto(dst *data.Column, s string) string {
	t := strings.TrimSpace(s)
	switch dst.Type {
	case data.Int:
		i, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return fmt.Sprintf("%s is not an int", strconv.Quote(s))
		}
		dst.Ints = append(dst.Ints, i)
	case data.Float:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return fmt.Sprintf("%s is not a float", strconv.Quote(s))
		}
		dst.Floats = append(dst.Floats, f)
	case data.Bool:
		v, err := strconv.ParseBool(t)
		if err != nil {
			return fmt.Sprintf("%s is not a bool", strconv.Quote(s))
		}
		dst.Bools = append(dst.Bools, v)
	case data.Timestamp:
		ts, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			var derr error
			ts, derr = time.Parse(dateLayout, t)
			if derr != nil {
				return fmt.Sprintf("%s is not a timestamp (want RFC 3339, e.g. 2024-05-01T12:00:00Z, or a date YYYY-MM-DD)", strconv.Quote(s))
			}
		}
		dst.Times = append(dst.Times, ts.UTC().Truncate(time.Microsecond))
	}
	return ""
}
