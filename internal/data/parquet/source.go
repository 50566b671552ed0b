package parquet

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Source reads a Parquet file. It implements data.Source.
type Source struct {
	path   string
	f      *os.File
	file   *pq.File
	schema *data.Schema
	cols   []column // by schema field
	size   int
	rg     int   // index of the row group being read; -1 before the first
	left   int64 // rows of the row group not yet read
	row    int64 // rows read so far, for Pos
	batch  *data.Batch
	strs   []byte
	offs   []int
}

// column is one selected leaf column and its reader in the current row
// group.
type column struct {
	name  string
	leaf  int // leaf column index in the file
	conv  conv
	pages pq.Pages
	vals  pq.ValueReader // of the current page; nil between pages
	page  pq.Page
	buf   []pq.Value
}

// conv says how a parquet leaf becomes a data column.
type conv uint8

const (
	convString conv = iota
	convUUID
	convInt32
	convInt64
	convFloat32
	convFloat64
	convBool
	convDate
	convMillis
	convMicros
	convNanos
	convInt96
)

var _ data.Source = (*Source)(nil)

// OpenSource opens the file(s) named by cfg (a *Config) and reads their
// footers. A file that is not Parquet, or has a selected column sluice
// cannot represent, is an error naming the path.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.files().RefuseEncrypt(Name); err != nil {
		return nil, err
	}
	if err := c.writingOnly(); err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	paths, err := fileio.Inputs(env, Name, c.Path)
	if err != nil {
		return nil, err
	}
	return fileio.OpenFiles(ctx, paths, func(ctx context.Context, path string, _ *data.Schema) (data.Source, error) {
		return openFile(path, c.Columns, c.files().Rows(env))
	})
}

func openFile(path string, columns []string, size int) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("parquet: opening %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	file, err := pq.OpenFile(f, st.Size(), pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("parquet: %s: not a readable Parquet file (truncated or corrupt?): %w", path, err)
	}
	s := &Source{path: path, f: f, file: file, size: size, rg: -1}
	if err := s.resolveSchema(columns); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("parquet: %s: %w", path, err)
	}
	s.batch = data.NewBatch(s.schema, size)
	s.batch.Pos = make([]int64, 0, size)
	return s, nil
}

// resolveSchema maps the file's top-level columns to data fields.
func (s *Source) resolveSchema(want []string) error {
	type found struct {
		leaf int
		node pq.Node
	}
	byName := map[string]found{}
	var order []string
	leaf := 0
	for _, f := range s.file.Schema().Fields() {
		byName[f.Name()] = found{leaf: leaf, node: f}
		order = append(order, f.Name())
		leaf += countLeaves(f)
	}
	if len(want) == 0 {
		want = order
	}
	fields := make([]data.Field, 0, len(want))
	for _, name := range want {
		fd, ok := byName[name]
		if !ok {
			return fmt.Errorf("column %q: not in the file (it has %v)", name, order)
		}
		t, cv, err := typeOf(fd.node)
		if err != nil {
			return fmt.Errorf("column %q: %w", name, err)
		}
		fields = append(fields, data.Field{Name: name, Type: t})
		s.cols = append(s.cols, column{name: name, leaf: fd.leaf, conv: cv})
	}
	schema, err := data.NewSchema(fields...)
	if err != nil {
		return err
	}
	s.schema = schema
	return nil
}

func countLeaves(n pq.Node) int {
	if n.Leaf() {
		return 1
	}
	c := 0
	for _, f := range n.Fields() {
		c += countLeaves(f)
	}
	return c
}

// typeOf maps a parquet leaf to a data type and its conversion.
func typeOf(n pq.Node) (data.Type, conv, error) {
	if !n.Leaf() {
		return data.Invalid, 0, errors.New("nested (group) columns are not supported; select flat columns with columns:")
	}
	if n.Repeated() {
		return data.Invalid, 0, errors.New("repeated (list) columns are not supported; select flat columns with columns:")
	}
	t := n.Type()
	lt := t.LogicalType()
	var ct deprecated.ConvertedType = -1
	if p := t.ConvertedType(); p != nil {
		ct = *p
	}
	if lt != nil {
		if _, ok := lt.Value.(*format.DecimalType); ok {
			return data.Invalid, 0, errors.New("decimal columns are not supported")
		}
	}
	if ct == deprecated.Decimal {
		return data.Invalid, 0, errors.New("decimal columns are not supported")
	}
	switch t.Kind() {
	case pq.Boolean:
		return data.Bool, convBool, nil
	case pq.Int32:
		if isDate(lt, ct) {
			return data.Timestamp, convDate, nil
		}
		return data.Int, convInt32, nil
	case pq.Int64:
		if lt != nil {
			if ts, ok := lt.Value.(*format.TimestampType); ok {
				switch ts.Unit.Value.(type) {
				case *format.MilliSeconds:
					return data.Timestamp, convMillis, nil
				case *format.NanoSeconds:
					return data.Timestamp, convNanos, nil
				}
				return data.Timestamp, convMicros, nil
			}
			if it, ok := lt.Value.(*format.IntType); ok && !it.IsSigned && it.BitWidth == 64 {
				return data.Invalid, 0, errors.New("unsigned 64-bit columns are not supported (values above 2^63 would not fit an int)")
			}
		}
		switch ct {
		case deprecated.TimestampMillis:
			return data.Timestamp, convMillis, nil
		case deprecated.TimestampMicros:
			return data.Timestamp, convMicros, nil
		case deprecated.Uint64:
			return data.Invalid, 0, errors.New("unsigned 64-bit columns are not supported (values above 2^63 would not fit an int)")
		}
		return data.Int, convInt64, nil
	case pq.Int96:
		return data.Timestamp, convInt96, nil // the legacy Impala/Spark timestamp
	case pq.Float:
		return data.Float, convFloat32, nil
	case pq.Double:
		return data.Float, convFloat64, nil
	case pq.ByteArray:
		return data.String, convString, nil
	case pq.FixedLenByteArray:
		if lt != nil {
			if _, ok := lt.Value.(*format.UUIDType); ok {
				return data.String, convUUID, nil
			}
		}
		return data.String, convString, nil
	}
	return data.Invalid, 0, fmt.Errorf("type %s is not supported", t)
}

func isDate(lt *format.LogicalType, ct deprecated.ConvertedType) bool {
	if lt != nil {
		if _, ok := lt.Value.(*format.DateType); ok {
			return true
		}
	}
	return ct == deprecated.Date
}

// Schema returns the schema of the batches.
func (s *Source) Schema() *data.Schema { return s.schema }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for s.left == 0 {
		if err := s.nextRowGroup(); err != nil {
			return nil, err
		}
	}
	n := int(min(int64(s.size), s.left))
	b := s.batch
	b.Len = n
	b.Pos = b.Pos[:0]
	for i := range n {
		b.Pos = append(b.Pos, s.row+int64(i)+1)
	}
	for i := range s.cols {
		if err := s.fill(&s.cols[i], &b.Cols[i], n); err != nil {
			return nil, fmt.Errorf("parquet: reading %s: row group %d, column %q: %w", s.path, s.rg+1, s.cols[i].name, err)
		}
	}
	s.left -= int64(n)
	s.row += int64(n)
	return b, nil
}

// nextRowGroup opens the column readers of the next row group.
func (s *Source) nextRowGroup() error {
	s.closePages()
	groups := s.file.RowGroups()
	if s.rg+1 >= len(groups) {
		return data.ErrEndOfInput
	}
	s.rg++
	rg := groups[s.rg]
	chunks := rg.ColumnChunks()
	for i := range s.cols {
		c := &s.cols[i]
		c.pages = chunks[c.leaf].Pages()
	}
	s.left = rg.NumRows()
	return nil
}

func (s *Source) closePages() {
	for i := range s.cols {
		c := &s.cols[i]
		c.releasePage()
		if c.pages != nil {
			_ = c.pages.Close()
			c.pages = nil
		}
	}
}

// releasePage forgets the current page. It is not handed back to the
// library's buffer pool (parquet.Release): values read from it may still
// be in buf, referring to its memory, until the batch is filled.
func (c *column) releasePage() { c.page, c.vals = nil, nil }

// read returns the next n values of the column, crossing pages.
func (c *column) read(n int) ([]pq.Value, error) {
	if cap(c.buf) < n {
		c.buf = make([]pq.Value, n)
	}
	buf := c.buf[:n]
	got := 0
	for got < n {
		if c.vals == nil {
			p, err := c.pages.ReadPage()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil, fmt.Errorf("column chunk ends after %d of its rows: %w", got, io.ErrUnexpectedEOF)
				}
				return nil, err
			}
			c.page, c.vals = p, p.Values()
		}
		k, err := c.vals.ReadValues(buf[got:])
		got += k
		if errors.Is(err, io.EOF) {
			c.releasePage()
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// fill reads n values of c into dst, replacing its contents.
func (s *Source) fill(c *column, dst *data.Column, n int) error {
	vals, err := c.read(n)
	if err != nil {
		return err
	}
	dst.Nulls = dst.Nulls[:0]
	hasNull := false
	for i := range vals {
		if vals[i].IsNull() {
			hasNull = true
			break
		}
	}
	if hasNull {
		if cap(dst.Nulls) < n {
			dst.Nulls = make([]bool, n)
		}
		dst.Nulls = dst.Nulls[:n]
		for i := range vals {
			dst.Nulls[i] = vals[i].IsNull()
		}
	} else {
		dst.Nulls = nil
	}
	switch c.conv {
	case convString, convUUID:
		s.strs, s.offs = s.strs[:0], s.offs[:0]
		for i := range vals {
			s.offs = append(s.offs, len(s.strs))
			if vals[i].IsNull() {
				continue
			}
			if c.conv == convUUID {
				s.strs = appendUUID(s.strs, vals[i].ByteArray())
			} else {
				s.strs = append(s.strs, vals[i].ByteArray()...)
			}
		}
		s.offs = append(s.offs, len(s.strs))
		all := string(s.strs) // one allocation for the column of the batch
		clear(dst.Strings)
		dst.Strings = dst.Strings[:0]
		for i := range vals {
			dst.Strings = append(dst.Strings, all[s.offs[i]:s.offs[i+1]])
		}
	case convInt32:
		dst.Ints = dst.Ints[:0]
		for i := range vals {
			dst.Ints = append(dst.Ints, int64(vals[i].Int32()))
		}
	case convInt64:
		dst.Ints = dst.Ints[:0]
		for i := range vals {
			dst.Ints = append(dst.Ints, vals[i].Int64())
		}
	case convFloat32:
		dst.Floats = dst.Floats[:0]
		for i := range vals {
			dst.Floats = append(dst.Floats, float64(vals[i].Float()))
		}
	case convFloat64:
		dst.Floats = dst.Floats[:0]
		for i := range vals {
			dst.Floats = append(dst.Floats, vals[i].Double())
		}
	case convBool:
		dst.Bools = dst.Bools[:0]
		for i := range vals {
			dst.Bools = append(dst.Bools, vals[i].Boolean())
		}
	default:
		dst.Times = dst.Times[:0]
		for i := range vals {
			var t time.Time
			if !vals[i].IsNull() {
				t = toTime(c.conv, vals[i])
			}
			dst.Times = append(dst.Times, t)
		}
	}
	return nil
}

// julianUnixEpoch is the Julian day number of 1970-01-01, the base of the
// day count in an INT96 timestamp.
const julianUnixEpoch = 2440588

func toTime(cv conv, v pq.Value) time.Time {
	switch cv {
	case convDate:
		return time.Unix(int64(v.Int32())*86400, 0).UTC()
	case convMillis:
		return time.UnixMilli(v.Int64()).UTC()
	case convNanos:
		return time.Unix(0, v.Int64()).UTC().Truncate(time.Microsecond)
	case convInt96:
		x := v.Int96()
		nanos := int64(uint64(x[1])<<32 | uint64(x[0]))
		days := int64(x[2]) - julianUnixEpoch
		return time.Unix(days*86400, nanos).UTC().Truncate(time.Microsecond)
	}
	return time.UnixMicro(v.Int64()).UTC()
}

// appendUUID renders 16 bytes in the canonical 8-4-4-4-12 form.
func appendUUID(dst, b []byte) []byte {
	if len(b) != 16 {
		return hex.AppendEncode(dst, b)
	}
	dst = hex.AppendEncode(dst, b[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[10:16])
}

// Close releases the file.
func (s *Source) Close() error {
	s.closePages()
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("parquet: closing %s: %w", s.path, err)
	}
	return nil
}
