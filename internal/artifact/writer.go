package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Writer writes one artifact. It implements data.Sink; after a successful
// Commit, Info describes the file.
type Writer struct {
	af     *fileio.AtomicFile
	plain  *hashWriter // the Arrow stream, before any wrapper
	wc     io.WriteCloser
	ipc    *ipc.Writer
	enc    *encoder
	schema *data.Schema
	rows   int64
	info   Info
	state  int // writing, committed, aborted
}

const (
	writing = iota
	committed
	aborted
)

var _ data.Sink = (*Writer)(nil)

// hashWriter counts and hashes the bytes on their way to the wrapper.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Create starts writing an artifact of schema at path. Nothing is visible
// at path until Commit.
func Create(path string, schema *data.Schema, opts Options) (*Writer, error) {
	af, err := fileio.CreateAtomic(path)
	if err != nil {
		return nil, fmt.Errorf("creating artifact: %w", err)
	}
	w := &Writer{af: af, enc: newEncoder(schema), schema: schema}
	w.wc = nopCloser{af}
	if opts.Wrap != nil {
		wc, err := opts.Wrap(af)
		if err != nil {
			_ = af.Abort()
			return nil, fmt.Errorf("creating artifact %s: wrapping: %w", path, err)
		}
		w.wc = wc
	}
	w.plain = &hashWriter{w: w.wc, h: sha256.New()}
	w.ipc = ipc.NewWriter(w.plain, ipc.WithSchema(w.enc.schema), ipc.WithAllocator(memory.DefaultAllocator))
	return w, nil
}

// Write appends the batch's rows.
func (w *Writer) Write(ctx context.Context, b *data.Batch) error {
	if w.state != writing {
		return fmt.Errorf("writing artifact %s: already committed or aborted", w.af.Path())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fileio.CheckBatch(w.schema, b); err != nil {
		return fmt.Errorf("writing artifact %s: %w", w.af.Path(), err)
	}
	if b.Len == 0 {
		return nil
	}
	rec, err := w.enc.record(b)
	if err != nil {
		return fmt.Errorf("writing artifact %s: %w", w.af.Path(), err)
	}
	err = w.ipc.Write(rec)
	rec.Release()
	if err != nil {
		return fmt.Errorf("writing artifact %s: %w", w.af.Path(), err)
	}
	w.rows += int64(b.Len)
	return nil
}

// Commit ends the stream, syncs the file and renames it into place. On
// error nothing is left at the path; Abort may still be called.
func (w *Writer) Commit(ctx context.Context) error {
	if w.state != writing {
		return fmt.Errorf("committing artifact %s: already committed or aborted", w.af.Path())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fail := func(what string, err error) error {
		_ = w.af.Abort()
		w.state = aborted
		return fmt.Errorf("committing artifact %s: %s: %w", w.af.Path(), what, err)
	}
	if err := w.ipc.Close(); err != nil {
		return fail("ending stream", err)
	}
	if err := w.wc.Close(); err != nil {
		return fail("closing wrapper", err)
	}
	if err := w.af.Commit(); err != nil {
		w.state = aborted
		return fmt.Errorf("committing artifact: %w", err)
	}
	w.state = committed
	disk := w.af.Output()
	w.info = Info{
		Rows: w.rows, Bytes: disk.Bytes, SHA256: disk.SHA256,
		PlainSHA256: hex.EncodeToString(w.plain.h.Sum(nil)), Schema: EncodeSchema(w.schema),
	}
	return nil
}

// Info describes the artifact once Commit has succeeded; before that it
// is the zero Info.
func (w *Writer) Info() Info { return w.info }

// Abort discards the artifact. It is a no-op after Commit.
func (w *Writer) Abort() error {
	if w.state != writing {
		return nil
	}
	w.state = aborted
	_ = w.ipc.Close()
	_ = w.wc.Close()
	if err := w.af.Abort(); err != nil {
		return fmt.Errorf("aborting artifact: %w", err)
	}
	return nil
}
