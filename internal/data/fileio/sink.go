package fileio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/data"
)

// PartitionPlaceholder is where a partitioned sink puts the partition value
// in its path. It is substituted by the sink, after the path's template is
// expanded, rather than being a template variable: the pipeline's templates
// are rendered once per task, while the value changes per record.
const PartitionPlaceholder = "{partition}"

// DefaultMaxPartitions caps the partition files a sink holds open. Every
// partition keeps an encoder and a temporary file (and, for parquet, a row
// group of buffered rows) until commit, so an unexpectedly high-cardinality
// column must fail clearly instead of exhausting memory or file handles.
const DefaultMaxPartitions = 100

// Encoder turns batches into the bytes of one file. The sink owns the file;
// the encoder only writes to the io.Writer it was created with.
type Encoder interface {
	// Write encodes a batch.
	Write(ctx context.Context, b *data.Batch) error
	// Close writes whatever the encoder still holds (buffered rows, a
	// footer). It does not commit the file.
	Close() error
}

// NewEncoder starts an encoder writing to w for records of schema.
type NewEncoder func(w io.Writer, schema *data.Schema) (Encoder, error)

// SinkOptions are the settings every file sink shares.
type SinkOptions struct {
	// Label prefixes errors: the connector's name.
	Label string
	// Path is the resolved output path. With PartitionBy it must hold
	// PartitionPlaceholder.
	Path string
	// Compression wraps the encoded bytes; CompressionAuto decides by the
	// file extension.
	Compression Compression
	// PartitionBy names the column whose values split the output into one
	// file per distinct value. Empty: one file.
	PartitionBy string
	// MaxPartitions caps the number of partition files; 0 means
	// DefaultMaxPartitions.
	MaxPartitions int
	// Encrypt, when set, encrypts each file (after compression: ciphertext
	// does not compress); see data.Env.Encrypt.
	Encrypt func(w io.Writer, ref string) (io.WriteCloser, error)
}

// Sink writes one file, or one file per partition, atomically: nothing
// appears until Commit, and Commit makes every partition file visible
// together (see CommitAll for the one window that remains). It implements
// data.Sink and data.Outputer.
type Sink struct {
	opts   SinkOptions
	schema *data.Schema
	newEnc NewEncoder
	col    int // partition column, -1 without
	parts  map[string]*part
	order  []*part // in order of creation
	key    []byte
	// batchParts are the partitions of the batch being split.
	batchParts []*part
	scratch    *data.Batch
	out        data.Output
}

type part struct {
	af  *AtomicFile
	ew  io.WriteCloser // the encryptor, nil without
	zw  io.WriteCloser // the compressor, nil without
	enc Encoder
	// rows are the rows of the batch being split that go here.
	rows []int32
}

var (
	_ data.Sink     = (*Sink)(nil)
	_ data.Outputer = (*Sink)(nil)
)

// OpenSink starts a file sink. Without partitions the file is created (and
// the encoder started) at once, so a bad path fails before any record is
// read, and a run with no records still commits a valid empty file.
func OpenSink(opts SinkOptions, schema *data.Schema, newEnc NewEncoder) (*Sink, error) {
	if opts.MaxPartitions <= 0 {
		opts.MaxPartitions = DefaultMaxPartitions
	}
	s := &Sink{opts: opts, schema: schema, newEnc: newEnc, col: -1, parts: map[string]*part{}}
	has := strings.Contains(opts.Path, PartitionPlaceholder)
	switch {
	case opts.PartitionBy == "" && has:
		return nil, fmt.Errorf("%s: path %s holds %s but partition_by is not set", opts.Label, opts.Path, PartitionPlaceholder)
	case opts.PartitionBy == "":
		if _, err := s.part(opts.Path); err != nil {
			return nil, err
		}
		return s, nil
	case !has:
		return nil, fmt.Errorf("%s: partition_by: the path %s must hold %s where the partition value goes", opts.Label, opts.Path, PartitionPlaceholder)
	}
	s.col = schema.Index(opts.PartitionBy)
	if s.col < 0 {
		return nil, fmt.Errorf("%s: partition_by: no column %q in the records (%s)", opts.Label, opts.PartitionBy, schema)
	}
	return s, nil
}

// part returns the partition file for key, creating it.
func (s *Sink) part(key string) (*part, error) {
	if p, ok := s.parts[key]; ok {
		return p, nil
	}
	if len(s.parts) >= s.opts.MaxPartitions {
		return nil, fmt.Errorf("%s: partition_by %q: more than %d distinct values (raise max_partitions, or partition by a coarser column)", s.opts.Label, s.opts.PartitionBy, s.opts.MaxPartitions)
	}
	path := s.opts.Path
	if s.col >= 0 {
		path = strings.ReplaceAll(path, PartitionPlaceholder, key)
	}
	af, err := CreateAtomic(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.opts.Label, err)
	}
	p := &part{af: af}
	var w io.Writer = af
	if s.opts.Encrypt != nil {
		if p.ew, err = s.opts.Encrypt(af, path); err != nil {
			_ = af.Abort()
			return nil, fmt.Errorf("%s: %s: encrypting: %w", s.opts.Label, path, err)
		}
		w = p.ew
	}
	zw, err := compressor(w, s.opts.Compression.For(path))
	if err != nil {
		_ = af.Abort()
		return nil, fmt.Errorf("%s: %s: %w", s.opts.Label, path, err)
	}
	if zw != nil {
		p.zw, w = zw, zw
	}
	p.enc, err = s.newEnc(w, s.schema)
	if err != nil {
		_ = af.Abort()
		return nil, fmt.Errorf("%s: %s: %w", s.opts.Label, path, err)
	}
	s.parts[key] = p
	s.order = append(s.order, p)
	return p, nil
}

// Write encodes the batch into its file, or splits it over the partition
// files by the partition column's value.
func (s *Sink) Write(ctx context.Context, b *data.Batch) error {
	if err := CheckBatch(s.schema, b); err != nil {
		return fmt.Errorf("%s: writing %s: %w", s.opts.Label, s.opts.Path, err)
	}
	if s.col < 0 {
		return s.order[0].enc.Write(ctx, b)
	}
	if b.Len == 0 {
		return nil
	}
	// Most partitioned data arrives sorted or clustered: a batch that is
	// all one partition goes through whole, without copying.
	c := &b.Cols[s.col]
	s.key = PartitionKey(s.key[:0], c, 0)
	firstKey := string(s.key)
	same := true
	for r := 1; r < b.Len && same; r++ {
		s.key = PartitionKey(s.key[:0], c, r)
		same = string(s.key) == firstKey
	}
	if same {
		p, err := s.part(firstKey)
		if err != nil {
			return err
		}
		return p.enc.Write(ctx, b)
	}
	order := s.batchParts[:0]
	for r := range b.Len {
		s.key = PartitionKey(s.key[:0], c, r)
		p, ok := s.parts[string(s.key)]
		if !ok {
			var err error
			if p, err = s.part(string(s.key)); err != nil {
				return err
			}
		}
		if len(p.rows) == 0 {
			order = append(order, p)
		}
		p.rows = append(p.rows, int32(r))
	}
	s.batchParts = order
	for _, p := range order {
		s.scratch = Take(s.scratch, b, p.rows)
		p.rows = p.rows[:0]
		if err := p.enc.Write(ctx, s.scratch); err != nil {
			return err
		}
	}
	return nil
}

// Commit finishes every file and makes them all visible.
func (s *Sink) Commit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	files := make([]*AtomicFile, 0, len(s.order))
	for _, p := range s.order {
		if err := p.close(); err != nil {
			_ = s.Abort()
			return fmt.Errorf("%s: finishing %s: %w", s.opts.Label, p.af.Path(), err)
		}
		files = append(files, p.af)
	}
	if err := CommitAll(files); err != nil {
		return fmt.Errorf("%s: %w", s.opts.Label, err)
	}
	s.out = s.summary()
	return nil
}

func (p *part) close() error {
	if err := p.enc.Close(); err != nil {
		return err
	}
	if p.zw != nil {
		if err := p.zw.Close(); err != nil {
			return fmt.Errorf("closing compressor: %w", err)
		}
	}
	if p.ew != nil {
		if err := p.ew.Close(); err != nil {
			return fmt.Errorf("completing encryption: %w", err)
		}
	}
	return nil
}

// summary describes what was committed. One file is described as itself.
// Several partition files are described by the path pattern, their total
// size, and the SHA-256 of their manifest: one line per file, sorted by
// path, "<hex sha256>  <path>\n" as sha256sum prints it, so the digest can
// be checked with standard tools.
func (s *Sink) summary() data.Output {
	outs := s.Outputs()
	if s.col < 0 && len(outs) == 1 {
		return outs[0]
	}
	slices.SortFunc(outs, func(a, b data.Output) int { return strings.Compare(a.Location, b.Location) })
	h := sha256.New()
	var n int64
	for _, o := range outs {
		n += o.Bytes
		fmt.Fprintf(h, "%s  %s\n", o.SHA256, o.Location)
	}
	return data.Output{Location: s.opts.Path, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}
}

// Outputs describes each committed file, in the order they were created.
func (s *Sink) Outputs() []data.Output {
	outs := make([]data.Output, len(s.order))
	for i, p := range s.order {
		outs[i] = p.af.Output()
	}
	return outs
}

// Output describes what was committed; see summary for partitions.
func (s *Sink) Output() data.Output { return s.out }

// Abort discards every file.
func (s *Sink) Abort() error {
	var first error
	for _, p := range s.order {
		if err := p.af.Abort(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", s.opts.Label, err)
		}
	}
	return first
}

// PartitionKey appends the path form of row r of c: the value as text,
// with every byte outside [A-Za-z0-9_.=+,@-] and a leading '.' or '_'
// percent-encoded, so that no value can name another directory ("..", "/")
// or a hidden file, and two different values never share a file. Null is
// "__null__" and the empty string "__empty__" (a value starting with '_'
// is always encoded, so neither can collide with a real value).
func PartitionKey(dst []byte, c *data.Column, r int) []byte {
	if c.IsNull(r) {
		return append(dst, "__null__"...)
	}
	var tmp [64]byte
	var v []byte
	switch c.Type {
	case data.String:
		s := c.Strings[r]
		if s == "" {
			return append(dst, "__empty__"...)
		}
		return escapeKey(dst, s)
	case data.Int:
		return strconv.AppendInt(dst, c.Ints[r], 10)
	case data.Float:
		v = strconv.AppendFloat(tmp[:0], c.Floats[r], 'g', -1, 64) // NaN, +Inf, -Inf as such
	case data.Bool:
		return strconv.AppendBool(dst, c.Bools[r])
	case data.Timestamp:
		t := c.Times[r].UTC()
		if t.Equal(t.Truncate(24 * time.Hour)) {
			v = t.AppendFormat(tmp[:0], time.DateOnly) // midnight: the date alone
		} else {
			v = t.AppendFormat(tmp[:0], time.RFC3339Nano)
		}
	}
	return escapeKey(dst, string(v))
}

const upperHex = "0123456789ABCDEF"

func escapeKey(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		safe := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("_.=+,@-", c) >= 0
		if i == 0 && (c == '.' || c == '_') {
			safe = false
		}
		if safe {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// Take copies rows idx of src into dst (reused when not nil) and returns
// it. Positions are kept when src has them.
func Take(dst, src *data.Batch, idx []int32) *data.Batch {
	if dst == nil || dst.Schema != src.Schema || len(dst.Cols) != len(src.Cols) {
		dst = data.NewBatch(src.Schema, len(idx))
	}
	dst.Len = len(idx)
	dst.Pos = dst.Pos[:0]
	if src.Pos != nil {
		for _, r := range idx {
			dst.Pos = append(dst.Pos, src.Pos[r])
		}
	} else {
		dst.Pos = nil
	}
	for i := range src.Cols {
		dst.Cols[i].Gather(&src.Cols[i], idx)
	}
	return dst
}

// Encryption returns the SinkOptions.Encrypt of a file sink whose settings
// say encrypt: on, from the task's env; nil when off. Encryption asked for
// but not available is an error, never a silent plaintext file.
func Encryption(on bool, env data.Env, label string) (func(io.Writer, string) (io.WriteCloser, error), error) {
	if !on {
		return nil, nil
	}
	if env.Encrypt == nil {
		return nil, fmt.Errorf("%s: encrypt: no keyring is available to encrypt with", label)
	}
	return env.Encrypt, nil
}
