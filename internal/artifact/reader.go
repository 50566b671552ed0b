package artifact

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/sluicehq/sluice/internal/data"
)

// Reader reads a verified artifact. It implements data.Source.
type Reader struct {
	path    string
	f       *os.File
	in      io.Reader // the unwrapped stream
	plain   hash.Hash // of the unwrapped stream, when a digest is expected
	want    []byte    // expected plaintext digest
	rd      *ipc.Reader
	schema  *data.Schema
	batch   *data.Batch
	nullBuf [][]bool
	done    bool
}

var _ data.Source = (*Reader)(nil)

// Open verifies the artifact at path against wantSHA256 (the hex digest
// from Info) and opens it for reading. A digest mismatch is an error
// wrapping ErrIntegrity, returned before any record is read. A file whose
// digest matches but which is not a valid artifact is a plain error.
func Open(path, wantSHA256 string, opts Options) (*Reader, error) {
	want, err := hex.DecodeString(strings.TrimSpace(wantSHA256))
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("opening artifact %s: expected digest %q is not a hex SHA-256", path, wantSHA256)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening artifact: %w", err)
	}
	r, err := open(f, path, want, opts)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return r, nil
}

func open(f *os.File, path string, want []byte, opts Options) (r *Reader, err error) {
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("opening artifact %s: hashing: %w", path, err)
	}
	if got := h.Sum(nil); subtle.ConstantTimeCompare(got, want) != 1 {
		return nil, fmt.Errorf("opening artifact %s: %w: want sha256 %x, file has %x", path, ErrIntegrity, want, got)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("opening artifact %s: %w", path, err)
	}
	var in io.Reader = bufio.NewReaderSize(f, 256<<10)
	if opts.Unwrap != nil {
		if in, err = opts.Unwrap(in); err != nil {
			return nil, fmt.Errorf("opening artifact %s: unwrapping: %w", path, err)
		}
	}
	var plain hash.Hash
	var wantPlain []byte
	if opts.PlainSHA256 != "" {
		if wantPlain, err = hex.DecodeString(opts.PlainSHA256); err != nil || len(wantPlain) != sha256.Size {
			return nil, fmt.Errorf("opening artifact %s: expected plaintext digest %q is not a hex SHA-256", path, opts.PlainSHA256)
		}
		plain = sha256.New()
		in = io.TeeReader(in, plain)
	}
	defer func() {
		// The file passed its digest check, so only a bug in the writer
		// or a collision could get here; a decoder panic still must not
		// take the process down.
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("opening artifact %s: malformed stream: %v", path, p)
		}
	}()
	rd, err := ipc.NewReader(in, ipc.WithAllocator(memory.DefaultAllocator), ipc.WithEnsureNativeEndian(true))
	if err != nil {
		return nil, fmt.Errorf("opening artifact %s: reading stream: %w", path, err)
	}
	schema, err := fromArrowSchema(rd.Schema())
	if err != nil {
		rd.Release()
		return nil, fmt.Errorf("opening artifact %s: %w", path, err)
	}
	return &Reader{path: path, f: f, in: in, plain: plain, want: wantPlain, rd: rd, schema: schema, batch: data.NewBatch(schema, 0), nullBuf: make([][]bool, len(schema.Fields))}, nil
}

// Schema returns the artifact's schema.
func (r *Reader) Schema() *data.Schema { return r.schema }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call.
func (r *Reader) Next(ctx context.Context) (b *data.Batch, err error) {
	if r.done {
		return nil, data.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			r.done = true
			b, err = nil, fmt.Errorf("reading artifact %s: malformed record: %v", r.path, p)
		}
	}()
	for {
		if !r.rd.Next() {
			r.done = true
			if err := r.rd.Err(); err != nil {
				return nil, fmt.Errorf("reading artifact %s: %w", r.path, err)
			}
			if err := r.verifyPlain(); err != nil {
				return nil, err
			}
			return nil, data.ErrEndOfInput
		}
		rec := r.rd.RecordBatch()
		if err := array.ValidateRecordFull(rec); err != nil {
			r.done = true
			return nil, fmt.Errorf("reading artifact %s: invalid record: %w", r.path, err)
		}
		if rec.NumRows() == 0 {
			continue
		}
		if err := decode(r.batch, r.nullBuf, rec); err != nil {
			r.done = true
			return nil, fmt.Errorf("reading artifact %s: %w", r.path, err)
		}
		return r.batch, nil
	}
}

// verifyPlain reads what is left of the stream after its last record and
// compares the digest of the whole plaintext with the expected one.
func (r *Reader) verifyPlain() error {
	if r.plain == nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, r.in); err != nil {
		return fmt.Errorf("reading artifact %s: %w", r.path, err)
	}
	if got := r.plain.Sum(nil); subtle.ConstantTimeCompare(got, r.want) != 1 {
		return fmt.Errorf("reading artifact %s: %w: plaintext sha256 %x, recorded %x", r.path, ErrIntegrity, got, r.want)
	}
	return nil
}

// Close releases the file.
func (r *Reader) Close() error {
	r.rd.Release()
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("closing artifact %s: %w", r.path, err)
	}
	return nil
}
