package fileio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a text file (csv, jsonl) is compressed on disk: the
// `compression:` setting of those connectors.
type Compression string

// The compressions. CompressionAuto, the default, decides by the file name:
// ".gz" is gzip, ".zst" is zstd, anything else is not compressed.
const (
	CompressionAuto Compression = ""
	CompressionNone Compression = "none"
	CompressionGzip Compression = "gzip"
	CompressionZstd Compression = "zstd"
)

// ParseCompression checks a `compression:` setting. "gz" and "zst" are
// accepted as the names of their extensions.
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return CompressionAuto, nil
	case "none":
		return CompressionNone, nil
	case "gzip", "gz":
		return CompressionGzip, nil
	case "zstd", "zst":
		return CompressionZstd, nil
	}
	return "", fmt.Errorf("compression: unknown %q (want gzip, zstd or none; by default the file extension decides)", s)
}

// For returns the compression that applies to path: c itself unless it is
// CompressionAuto, in which case the extension decides.
func (c Compression) For(path string) Compression {
	if c != CompressionAuto {
		return c
	}
	switch {
	case strings.HasSuffix(path, ".gz"):
		return CompressionGzip
	case strings.HasSuffix(path, ".zst"):
		return CompressionZstd
	}
	return CompressionNone
}

// input is an opened input file behind its decompressor. Errors from the
// decompressor name the file: a truncated or corrupt stream is otherwise
// just "unexpected EOF".
type input struct {
	path  string
	kind  Compression
	f     *os.File
	r     io.Reader
	close func()
}

// OpenInput opens path for reading and decompresses it as c says
// (CompressionAuto: by extension). Errors name the path.
func OpenInput(path string, c Compression) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	in := &input{path: path, kind: c.For(path), f: f, r: f}
	switch in.kind {
	case CompressionGzip:
		zr, err := gzip.NewReader(f)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("reading %s: not a valid gzip file: %w", path, err)
		}
		in.r, in.close = zr, func() { _ = zr.Close() }
	case CompressionZstd:
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("reading %s: starting zstd decoder: %w", path, err)
		}
		in.r, in.close = zr, zr.Close
	}
	return in, nil
}

func (in *input) Read(p []byte) (int, error) {
	n, err := in.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && in.kind != CompressionNone {
		return n, fmt.Errorf("decompressing %s (%s): the file is truncated or corrupt: %w", in.path, in.kind, err)
	}
	return n, err
}

func (in *input) Close() error {
	if in.close != nil {
		in.close()
	}
	if err := in.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", in.path, err)
	}
	return nil
}

// compressor wraps w in the encoder of c, or returns nil for none.
func compressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case CompressionGzip:
		return gzip.NewWriter(w), nil
	case CompressionZstd:
		// One encoder goroutine: a partitioned sink may hold many
		// encoders at once, and the pipeline already keeps the cores
		// busy.
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("starting zstd encoder: %w", err)
		}
		return zw, nil
	}
	return nil, nil
}
