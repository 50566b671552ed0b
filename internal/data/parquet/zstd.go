package parquet

import (
	"github.com/klauspost/compress/zstd"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// zstdWindow is the match window of the sink's zstd encoder. Every page is
// compressed on its own as one zstd frame, and a page is pageBufferSize
// (256 KiB) plus at most writeChunk values before compression,
// so a window beyond that finds no more matches: the files come out the
// same size to the byte as with the encoder's default 8 MiB window,
// which costs a 16 MiB history buffer per encoder against 1 MiB here.
const zstdWindow = 512 << 10

// zstdCodec is the sink's zstd page codec: one encoder for the life of the
// sink, with a window sized to a page.
//
// The library's own zstd codec keeps its encoders in a sync.Pool, which
// the garbage collector empties: under a busy pipeline every other
// collection dropped a pooled encoder and the next page built a new one
// with a fresh 16 MiB history buffer, so the heap filled with discarded
// encoders at a rate set by the data volume. Holding the encoder for the
// sink's lifetime makes that cost fixed.
type zstdCodec struct {
	enc *zstd.Encoder
}

func newZstdCodec() (*zstdCodec, error) {
	enc, err := zstd.NewWriter(nil,
		// EncodeAll with concurrency 1 is safe for concurrent use (calls
		// take turns on the one encoder), as compress.Codec requires.
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, err
	}
	return &zstdCodec{enc: enc}, nil
}

func (c *zstdCodec) String() string                            { return "ZSTD" }
func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode compresses src into dst's memory (grown if too small).
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst[:0]), nil
}

// Decode is never called on the sink's codec; it decodes with the
// library's codec so the type is a complete compress.Codec.
func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	return pq.Zstd.Decode(dst, src)
}
