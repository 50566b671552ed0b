package csv

import (
	"bufio"
	"context"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// readBufSize is the read buffer; large reads keep system calls rare.
const readBufSize = 256 << 10

// Source reads a CSV file. It implements data.Source.
type Source struct {
	path   string
	f      io.ReadCloser
	win    *window
	r      *stdcsv.Reader
	q      data.Quarantine
	schema *data.Schema
	names  []string // the file's column names, by field position
	idx    []int    // for each schema field, its field position in a record
	size   int
	bd     *fileio.Builder
	last   int64 // input offset after the previous record
	done   bool
}

var _ data.Source = (*Source)(nil)

// OpenSource opens the file named by cfg (a *Config) for reading and reads
// its header. A missing or unreadable file, or a missing or bad header, is
// an error naming the path.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.RefuseEncrypt(Name); err != nil {
		return nil, err
	}
	if !c.Header && len(c.Columns) == 0 && len(c.Schema) == 0 {
		// Checked here, not in Validate: a sink needs no column names.
		return nil, fmt.Errorf("csv: columns: required to read a file without a header (or declare schema)")
	}
	if err := c.RefusePartitions(Name); err != nil {
		return nil, err
	}
	paths, err := fileio.Inputs(env, Name, c.Path)
	if err != nil {
		return nil, err
	}
	comp, _ := fileio.ParseCompression(c.Compression)
	return fileio.OpenFiles(ctx, paths, func(ctx context.Context, path string, _ *data.Schema) (data.Source, error) {
		f, err := fileio.OpenInput(path, comp)
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		s, err := newSource(ctx, f, path, c, env)
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		return s, nil
	})
}

// newSource reads from f, which it owns from then on.
func newSource(ctx context.Context, f io.ReadCloser, path string, c *Config, env data.Env) (*Source, error) {
	delim, _ := c.delim()
	br := bufio.NewReaderSize(f, readBufSize)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	win := &window{r: br, buf: make([]byte, 0, 64<<10)}
	r := stdcsv.NewReader(win)
	r.Comma = delim
	r.FieldsPerRecord = -1 // checked here, so that a bad record is quarantined, not fatal
	r.ReuseRecord = true
	s := &Source{path: path, f: f, win: win, r: r, q: env.Quarantine, size: c.Rows(env)}

	if c.Header {
		rec, err := r.Read()
		switch {
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("csv: %s: missing header (the file is empty; set header: false for files without one)", path)
		case err != nil:
			return nil, fmt.Errorf("csv: %s: reading header: %w", path, err)
		}
		s.names = append([]string(nil), rec...)
		for i, n := range s.names {
			if !utf8.ValidString(n) {
				return nil, fmt.Errorf("csv: %s: header column %d is not valid UTF-8", path, i+1)
			}
		}
		s.last = r.InputOffset()
		s.win.keep = s.last
	} else {
		s.names = c.Columns
		if len(s.names) == 0 {
			s.names = make([]string, len(c.Schema))
			for i, f := range c.Schema {
				s.names[i] = f.Name
			}
		}
	}

	var fields []data.Field
	if len(c.Schema) > 0 {
		pos := make(map[string]int, len(s.names))
		for i, n := range s.names {
			pos[n] = i
		}
		for _, f := range c.Schema {
			i, ok := pos[f.Name]
			if !ok {
				return nil, fmt.Errorf("csv: %s: column %q of the schema is not in the header", path, f.Name)
			}
			fields = append(fields, f)
			s.idx = append(s.idx, i)
		}
	} else {
		for i, n := range s.names {
			fields = append(fields, data.Field{Name: n, Type: data.String})
			s.idx = append(s.idx, i)
		}
	}
	schema, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("csv: %s: header: %w", path, err)
	}
	s.schema = schema
	s.bd = fileio.NewBuilder(schema, s.size)
	return s, nil
}

// Schema returns the schema of the batches.
func (s *Source) Schema() *data.Schema { return s.schema }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	if s.done {
		return nil, data.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.bd.Reset()
	for s.bd.B.Len < s.size {
		rec, err := s.r.Read()
		off := s.r.InputOffset()
		raw := s.win.span(s.last, off)
		s.last, s.win.keep = off, off
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.done = true
				break
			}
			var pe *stdcsv.ParseError
			if errors.As(err, &pe) {
				if err := s.reject(ctx, pe.StartLine, pe.Err.Error(), raw); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("csv: reading %s: %w", s.path, err)
		}
		line, _ := s.r.FieldPos(0)
		if reason := s.row(rec); reason != "" {
			s.bd.DropRow()
			if err := s.reject(ctx, line, reason, raw); err != nil {
				return nil, err
			}
			continue
		}
		s.bd.EndRow(int64(line))
	}
	if s.bd.B.Len == 0 && s.done {
		return nil, data.ErrEndOfInput
	}
	return s.bd.B, nil
}

// row appends rec to the batch, or returns why it cannot.
func (s *Source) row(rec []string) string {
	if len(rec) != len(s.names) {
		return fmt.Sprintf("wrong number of fields: got %d, want %d", len(rec), len(s.names))
	}
	for i, v := range rec {
		if !utf8.ValidString(v) {
			return fmt.Sprintf("column %q: invalid UTF-8", s.names[i])
		}
	}
	for col, f := range s.schema.Fields {
		v := rec[s.idx[col]]
		if v == "" {
			s.bd.AppendNull(col)
			continue
		}
		switch f.Type {
		case data.String:
			s.bd.AppendString(col, v)
		case data.Int:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Sprintf("column %q: %s is not an int", f.Name, fileio.Quote(v))
			}
			s.bd.AppendInt(col, n)
		case data.Float:
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Sprintf("column %q: %s is not a float", f.Name, fileio.Quote(v))
			}
			s.bd.AppendFloat(col, x)
		case data.Bool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Sprintf("column %q: %s is not a bool", f.Name, fileio.Quote(v))
			}
			s.bd.AppendBool(col, b)
		case data.Timestamp:
			t, ok := fileio.ParseTime(v)
			if !ok {
				return fmt.Sprintf("column %q: %s is not a timestamp (want RFC 3339)", f.Name, fileio.Quote(v))
			}
			s.bd.AppendTime(col, t)
		}
	}
	return ""
}

func (s *Source) reject(ctx context.Context, line int, reason string, raw []byte) error {
	raw = trimNewline(raw)
	err := s.q.Reject(ctx, data.Reject{Pos: s.path + ":" + strconv.Itoa(line), Reason: reason, Raw: string(raw)})
	if err != nil {
		return fmt.Errorf("csv: quarantining %s:%d: %w", s.path, line, err)
	}
	return nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// Close releases the file.
func (s *Source) Close() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}

// window passes reads through and keeps the bytes read since offset keep,
// so that the raw text of a bad record is still at hand when the CSV
// parser reports it. Bytes before keep are dropped only when the buffer
// would otherwise grow, so the copying stays amortised.
type window struct {
	r    io.Reader
	buf  []byte // the input from offset base on
	base int64
	keep int64
}

func (w *window) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		if len(w.buf)+n > cap(w.buf) {
			if drop := w.keep - w.base; drop > 0 {
				w.buf = w.buf[:copy(w.buf, w.buf[drop:])]
				w.base = w.keep
			}
		}
		w.buf = append(w.buf, p[:n]...)
	}
	return n, err
}

// span returns the input between two offsets at or after keep.
func (w *window) span(from, to int64) []byte {
	lo, hi := from-w.base, to-w.base
	if lo < 0 || hi > int64(len(w.buf)) || lo > hi {
		return nil
	}
	return w.buf[lo:hi]
}
