package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// readBufSize is the read buffer; lines longer than it are still read
// whole, in a separate buffer.
const readBufSize = 256 << 10

// Source reads a JSON Lines file. It implements data.Source.
type Source struct {
	path string
	f    io.ReadCloser
	br   *bufio.Reader
	q    data.Quarantine
	size int
	line int64
	long []byte // a line longer than the read buffer
	done bool

	// dec holds the schema and the batch being built.
	dec Decoder

	// pending is the first record, read to infer the schema.
	pending     []byte
	pendingLine int64
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
	if err := c.RefuseEncrypt(Name); err != nil {
		return nil, err
	}
	if err := c.RefusePartitions(Name); err != nil {
		return nil, err
	}
	paths, err := fileio.Inputs(env, Name, c.Path)
	if err != nil {
		return nil, err
	}
	declared, err := c.Schema.Schema()
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	comp, _ := fileio.ParseCompression(c.Compression)
	return fileio.OpenFiles(ctx, paths, func(ctx context.Context, path string, first *data.Schema) (data.Source, error) {
		schema := declared
		if schema == nil {
			schema = first // nil for the first file: infer
		}
		return openFile(ctx, path, comp, schema, c, env)
	})
}

// openFile opens one file; without schema it infers one.
func openFile(ctx context.Context, path string, comp fileio.Compression, schema *data.Schema, c *Config, env data.Env) (*Source, error) {
	f, err := fileio.OpenInput(path, comp)
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	s := &Source{path: path, f: f, br: bufio.NewReaderSize(f, readBufSize), q: env.Quarantine, size: c.Rows(env)}
	if bom, err := s.br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		_, _ = s.br.Discard(3)
	}
	if schema == nil {
		schema, err = s.infer(ctx)
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	s.dec.init(schema, s.size)
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
		fields, reason := s.dec.inferLine(line)
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
func (s *Source) Schema() *data.Schema { return s.dec.schema }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	if s.done {
		return nil, data.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.dec.bd.Reset()
	if s.pending != nil {
		if err := s.record(ctx, s.pendingLine, s.pending); err != nil {
			return nil, err
		}
		s.pending = nil
	}
	for s.dec.bd.B.Len < s.size {
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
	if s.dec.bd.B.Len == 0 && s.done {
		return nil, data.ErrEndOfInput
	}
	return s.dec.bd.B, nil
}

// record decodes one line into the batch, or quarantines it.
func (s *Source) record(ctx context.Context, lineNo int64, line []byte) error {
	if reason := s.dec.Append(line, lineNo); reason != "" {
		return s.reject(ctx, lineNo, reason, line)
	}
	return nil
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
		return fmt.Errorf("jsonl: %w", err)
	}
	return nil
}
