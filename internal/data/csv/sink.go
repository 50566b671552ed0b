package csv

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// flushAt is how much encoded text the sink gathers before handing it to
// the file.
const flushAt = 64 << 10

// encoder writes CSV text to one file of a fileio.Sink.
type encoder struct {
	w      io.Writer
	schema *data.Schema
	delim  rune
	buf    []byte
}

// OpenSink starts writing the file named by cfg (a *Config) for records of
// schema: one file, or one per partition with partition_by, compressed as
// the path or compression setting says. Nothing appears until Commit.
func OpenSink(ctx context.Context, cfg any, schema *data.Schema, env data.Env) (data.Sink, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case len(c.Columns) > 0:
		return nil, fmt.Errorf("csv: columns: applies only to reading")
	case len(c.Schema) > 0:
		return nil, fmt.Errorf("csv: schema: applies only to reading; the sink writes the columns it receives")
	}
	comp, _ := fileio.ParseCompression(c.Compression)
	opts, err := c.Files.SinkOptions(env, Name, c.Path, comp)
	if err != nil {
		return nil, err
	}
	delim, _ := c.delim()
	header := c.Header
	return fileio.OpenSink(opts, schema, func(w io.Writer, schema *data.Schema) (fileio.Encoder, error) {
		return newEncoder(w, schema, delim, header), nil
	})
}

func newEncoder(w io.Writer, schema *data.Schema, delim rune, header bool) *encoder {
	s := &encoder{w: w, schema: schema, delim: delim, buf: make([]byte, 0, flushAt+4096)}
	if header {
		for i, f := range schema.Fields {
			if i > 0 {
				s.buf = utf8.AppendRune(s.buf, delim)
			}
			s.buf = s.appendString(s.buf, f.Name)
		}
		s.buf = append(s.buf, '\n')
	}
	return s
}

// Write encodes the batch.
func (s *encoder) Write(ctx context.Context, b *data.Batch) error {
	single := len(b.Cols) == 1
	for row := 0; row < b.Len; row++ {
		for i := range b.Cols {
			if i > 0 {
				s.buf = utf8.AppendRune(s.buf, s.delim)
			}
			c := &b.Cols[i]
			if c.IsNull(row) {
				if single {
					s.buf = append(s.buf, '"', '"') // a blank line would be skipped on reading
				}
				continue
			}
			switch c.Type {
			case data.String:
				v := c.Strings[row]
				if single && v == "" {
					s.buf = append(s.buf, '"', '"')
				} else {
					s.buf = s.appendString(s.buf, v)
				}
			case data.Int:
				s.buf = strconv.AppendInt(s.buf, c.Ints[row], 10)
			case data.Float:
				s.buf = appendFloat(s.buf, c.Floats[row])
			case data.Bool:
				s.buf = strconv.AppendBool(s.buf, c.Bools[row])
			case data.Timestamp:
				s.buf = fileio.AppendTime(s.buf, c.Times[row])
			}
		}
		s.buf = append(s.buf, '\n')
		if len(s.buf) >= flushAt {
			if err := s.flush(); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendString appends v, quoted when it holds the delimiter, a quote, a
// line break or leading white space (which some readers trim).
func (s *encoder) appendString(b []byte, v string) []byte {
	if !s.needsQuotes(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for {
		i := strings.IndexByte(v, '"')
		if i < 0 {
			break
		}
		b = append(b, v[:i+1]...)
		b = append(b, '"')
		v = v[i+1:]
	}
	b = append(b, v...)
	return append(b, '"')
}

func (s *encoder) needsQuotes(v string) bool {
	if v == "" {
		return false
	}
	if v == `\.` || v[0] == ' ' || v[0] == '\t' {
		return true
	}
	if s.delim < utf8.RuneSelf {
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '"', '\r', '\n', byte(s.delim):
				return true
			}
		}
		return false
	}
	return strings.ContainsAny(v, "\"\r\n") || strings.ContainsRune(v, s.delim)
}

func (s *encoder) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}

// Close writes the text still buffered.
func (s *encoder) Close() error { return s.flush() }
