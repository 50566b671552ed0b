package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// readBufSize is the read buffer; lines longer than it are still read
// whole, in a separate buffer.
const readBufSize = 256 << 10

// Source reads a JSON Lines file. It implements data.Source.
type Source struct {
	path   string
	f      *os.File
	br     *bufio.Reader
	q      data.Quarantine
	schema *data.Schema
	index  map[string]int
	size   int
	bd     *fileio.Builder
	sc     scanner
	line   int64
	long   []byte // a line longer than the read buffer
	done   bool

	// The record being decoded: which columns it set (seen[i] == gen),
	// and their values. Strings are gathered in strs and turned into one
	// string per record.
	gen    uint32
	seen   []uint32
	slots  []slot
	strs   []byte
	keyBuf []byte
	tmp    []byte

	// pending is the first record, read to infer the schema.
	pending     []byte
	pendingLine int64
}

type slot struct {
	null   bool
	s0, s1 int
	i      int64
	f      float64
	b      bool
	t      time.Time
}

var _ data.Source = (*Source)(nil)

// OpenSource opens the file named by cfg (a *Config). Without a declared
// schema it reads up to the first valid record to infer one; a file with
// no valid record is then an error.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	path, err := fileio.ResolvePath(env, c.Path)
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jsonl: opening %s: %w", path, err)
	}
	s := &Source{path: path, f: f, br: bufio.NewReaderSize(f, readBufSize), q: env.Quarantine, size: fileio.BatchSize(c.BatchSize, env)}
	if bom, err := s.br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		_, _ = s.br.Discard(3)
	}
	schema, err := c.Schema.Schema()
	if err == nil && schema == nil {
		schema, err = s.infer(ctx)
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	s.schema = schema
	s.index = make(map[string]int, len(schema.Fields))
	for i, f := range schema.Fields {
		s.index[f.Name] = i
	}
	s.seen = make([]uint32, len(schema.Fields))
	s.slots = make([]slot, len(schema.Fields))
	s.bd = fileio.NewBuilder(schema, s.size)
	return s, nil
}

// infer reads lines until the first valid JSON object and derives the
// schema from it; lines before it are quarantined.
func (s *Source) infer(ctx context.Context) (*data.Schema, error) {
	for {
		line, err := s.readLine()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("jsonl: %s: no record to infer the schema from; declare schema", s.path)
		}
		if err != nil {
			return nil, err
		}
		if isBlank(line) {
			continue
		}
		fields, reason := s.inferLine(line)
		if reason == "" && len(fields) == 0 {
			reason = "no fields to infer the schema from"
		}
		if reason != "" {
			if err := s.reject(ctx, s.line, reason, line); err != nil {
				return nil, err
			}
			continue
		}
		schema, err := data.NewSchema(fields...)
		if err != nil {
			return nil, fmt.Errorf("jsonl: %s:%d: inferring schema: %w", s.path, s.line, err)
		}
		s.pending = append([]byte(nil), line...)
		s.pendingLine = s.line
		return schema, nil
	}
}

func (s *Source) inferLine(line []byte) ([]data.Field, string) {
	var fields []data.Field
	seen := map[string]bool{}
	if !s.sc.begin(line) {
		return nil, s.sc.err
	}
	for {
		k, v, ok := s.sc.next()
		if !ok {
			if s.sc.err != "" {
				return nil, s.sc.err
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

// readLine returns the next line without its line break, counting lines.
// Its result is valid until the next call.
func (s *Source) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.long = append(s.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = s.br.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("jsonl: reading %s: %w", s.path, err)
	}
	if len(line) == 0 {
		return nil, io.EOF
	}
	s.line++
	if line[len(line)-1] == '\n' {
		line = line[:len(line)-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// isBlank reports whether line holds only white space: such lines are
// not records and are skipped, as most JSON Lines tools do.
func isBlank(line []byte) bool { return len(bytes.TrimLeft(line, " \t\r")) == 0 }

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
	if s.pending != nil {
		if err := s.record(ctx, s.pendingLine, s.pending); err != nil {
			return nil, err
		}
		s.pending = nil
	}
	for s.bd.B.Len < s.size {
		line, err := s.readLine()
		if errors.Is(err, io.EOF) {
			s.done = true
			break
		}
		if err != nil {
			return nil, err
		}
		if isBlank(line) {
			continue
		}
		if err := s.record(ctx, s.line, line); err != nil {
			return nil, err
		}
	}
	if s.bd.B.Len == 0 && s.done {
		return nil, data.ErrEndOfInput
	}
	return s.bd.B, nil
}

// record decodes one line into the batch, or quarantines it.
func (s *Source) record(ctx context.Context, lineNo int64, line []byte) error {
	if reason := s.decode(line); reason != "" {
		return s.reject(ctx, lineNo, reason, line)
	}
	var str string
	if len(s.strs) > 0 {
		str = string(s.strs)
	}
	for i, f := range s.schema.Fields {
		sl := &s.slots[i]
		if s.seen[i] != s.gen || sl.null {
			s.bd.AppendNull(i)
			continue
		}
		switch f.Type {
		case data.String:
			s.bd.AppendString(i, str[sl.s0:sl.s1])
		case data.Int:
			s.bd.AppendInt(i, sl.i)
		case data.Float:
			s.bd.AppendFloat(i, sl.f)
		case data.Bool:
			s.bd.AppendBool(i, sl.b)
		case data.Timestamp:
			s.bd.AppendTime(i, sl.t)
		}
	}
	s.bd.EndRow(lineNo)
	return nil
}

// decode scans line into the slots, or returns why it cannot.
func (s *Source) decode(line []byte) string {
	s.gen++
	if s.gen == 0 { // wrapped: forget every stale mark
		clear(s.seen)
		s.gen = 1
	}
	s.strs = s.strs[:0]
	if !s.sc.begin(line) {
		return s.sc.err
	}
	for {
		k, v, ok := s.sc.next()
		if !ok {
			return s.sc.err
		}
		key := k.raw[1 : len(k.raw)-1]
		if k.esc {
			s.keyBuf = appendUnescaped(s.keyBuf[:0], k.raw, true)
			key = s.keyBuf
		}
		col, known := s.index[string(key)]
		if !known {
			continue
		}
		if s.seen[col] == s.gen {
			return fmt.Sprintf("field %q appears twice", s.schema.Fields[col].Name)
		}
		s.seen[col] = s.gen
		if reason := s.set(col, &v); reason != "" {
			return reason
		}
	}
}

// set stores v as the value of column col.
func (s *Source) set(col int, v *value) string {
	sl := &s.slots[col]
	sl.null = v.kind == kNull
	if sl.null {
		return ""
	}
	f := s.schema.Fields[col]
	switch f.Type {
	case data.String:
		switch v.kind {
		case kString:
			sl.s0 = len(s.strs)
			s.strs = appendUnescaped(s.strs, v.raw, v.esc)
			sl.s1 = len(s.strs)
			return ""
		case kObject, kArray:
			sl.s0 = len(s.strs)
			s.strs = append(s.strs, v.raw...)
			sl.s1 = len(s.strs)
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
			s.tmp = appendUnescaped(s.tmp[:0], v.raw, v.esc)
			t, ok := fileio.ParseTime(string(s.tmp))
			if !ok {
				return fmt.Sprintf("field %q: %s is not a timestamp (want RFC 3339)", f.Name, fileio.Quote(string(s.tmp)))
			}
			sl.t = t
			return ""
		}
	}
	return fmt.Sprintf("field %q: want %s, got JSON %s", f.Name, f.Type, v.kind)
}

func (s *Source) reject(ctx context.Context, line int64, reason string, raw []byte) error {
	err := s.q.Reject(ctx, data.Reject{Pos: s.path + ":" + strconv.FormatInt(line, 10), Reason: reason, Raw: string(raw)})
	if err != nil {
		return fmt.Errorf("jsonl: quarantining %s:%d: %w", s.path, line, err)
	}
	return nil
}

// Close releases the file.
func (s *Source) Close() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("jsonl: closing %s: %w", s.path, err)
	}
	return nil
}
