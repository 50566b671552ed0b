package jsonl

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// flushAt is how much encoded text the sink gathers before handing it to
// the file.
const flushAt = 64 << 10

// encoder writes JSON Lines to one file of a fileio.Sink.
type encoder struct {
	w      io.Writer
	schema *data.Schema
	keys   [][]byte // `{"name":` and `,"name":`, encoded once
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
	if len(c.Schema) > 0 {
		return nil, fmt.Errorf("jsonl: schema: applies only to reading; the sink writes the fields it receives")
	}
	comp, _ := fileio.ParseCompression(c.Compression)
	opts, err := c.Files.SinkOptions(env, Name, c.Path, comp)
	if err != nil {
		return nil, err
	}
	return fileio.OpenSink(opts, schema, func(w io.Writer, schema *data.Schema) (fileio.Encoder, error) {
		return newEncoder(w, schema), nil
	})
}

func newEncoder(w io.Writer, schema *data.Schema) *encoder {
	return &encoder{w: w, schema: schema, keys: encodeKeys(schema), buf: make([]byte, 0, flushAt+4096)}
}

// Write encodes the batch.
func (s *encoder) Write(ctx context.Context, b *data.Batch) error {
	for row := 0; row < b.Len; row++ {
		s.buf = appendRow(s.buf, s.keys, b, row)
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

// appendRow appends row of b as one JSON object and a newline.
func appendRow(buf []byte, keys [][]byte, b *data.Batch, row int) []byte {
	if len(keys) == 0 {
		return append(buf, "{}\n"...)
	}
	for i := range b.Cols {
		buf = append(buf, keys[i]...)
		c := &b.Cols[i]
		if c.IsNull(row) {
			buf = append(buf, "null"...)
			continue
		}
		switch c.Type {
		case data.String:
			buf = appendString(buf, c.Strings[row])
		case data.Int:
			buf = strconv.AppendInt(buf, c.Ints[row], 10)
		case data.Float:
			f := c.Floats[row]
			if math.IsNaN(f) || math.IsInf(f, 0) {
				buf = append(buf, "null"...)
			} else {
				buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
			}
		case data.Bool:
			buf = strconv.AppendBool(buf, c.Bools[row])
		case data.Timestamp:
			buf = append(buf, '"')
			buf = fileio.AppendTime(buf, c.Times[row])
			buf = append(buf, '"')
		}
	}
	return append(buf, '}', '\n')
}

const hexDigits = "0123456789abcdef"

// appendString appends v as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD, and U+2028/U+2029
// escaped so the output is also safe inside JavaScript.
func appendString(b []byte, v string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, v[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, v[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, v[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, v[start:]...)
	return append(b, '"')
}

func (s *encoder) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		return fmt.Errorf("jsonl: %w", err)
	}
	return nil
}

// Close writes the text still buffered.
func (s *encoder) Close() error { return s.flush() }
