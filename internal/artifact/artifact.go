// Package artifact writes and reads the datasets that tasks pass to each
// other: typed, self-describing, checksummed files.
//
// The format is the Arrow IPC stream format. It carries its own schema
// and typed, columnar buffers (so a downstream task needs no side
// information to read it, and a batch converts to and from Arrow with a
// few bulk copies), and it is written and read strictly sequentially: a
// schema message, record batches, an end marker. Parquet was the other
// candidate, but its footer must be written last and read first, which
// needs seeking; an encryption layer such as Tink's streaming AEAD offers
// only an io.Writer on the way in and an io.Reader on the way out. With a
// stream format that layer slots in as a wrapper (Options.Wrap and
// Options.Unwrap) without the format knowing about it.
//
// Integrity comes before any data: Open hashes the whole file and compares
// the SHA-256 the writer recorded before it returns a single record, so a
// truncated, corrupted or swapped file fails with ErrIntegrity instead of
// feeding a downstream task bad rows. The digest covers the bytes on disk
// (after any wrapping), so it can be checked without a key.
//
// Files are written like the file sinks write theirs: to a temporary file
// in the destination directory (mode 0600, directories 0700), renamed into
// place only on Commit.
package artifact

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/internal/data"
)

// Format names the file format, as recorded in store.Artifact.Format.
const Format = "arrow-ipc-stream"

// ErrIntegrity means an artifact's bytes are not the bytes that were
// written: the file's SHA-256 differs from the expected digest. Open
// returns it, wrapped with the path and both digests.
var ErrIntegrity = errors.New("artifact integrity check failed")

// Options customise how an artifact's bytes are stored.
type Options struct {
	// Wrap, when not nil, wraps the file on writing (for encryption); the
	// returned WriteCloser is closed on Commit, before the file is synced.
	Wrap func(io.Writer) (io.WriteCloser, error)
	// Unwrap, when not nil, undoes Wrap on reading.
	Unwrap func(io.Reader) (io.Reader, error)
	// PlainSHA256, when set on reading, is the expected digest of the
	// unwrapped stream (Info.PlainSHA256). The reader hashes what it reads
	// and, at the end of the stream, fails with ErrIntegrity on a mismatch;
	// a consumer that commits its own output only after the end of its
	// input (as every sluice task does) therefore never commits data from
	// an artifact that did not verify.
	PlainSHA256 string
}

// Info describes a committed artifact: what the store records and what
// Open needs to check it.
type Info struct {
	Rows   int64
	Bytes  int64  // size of the file on disk
	SHA256 string // hex digest of the file on disk (the ciphertext, when wrapped)
	// PlainSHA256 is the hex digest of the Arrow stream itself, before any
	// wrapper: what the data is, whatever protects it on disk.
	PlainSHA256 string
	Schema      string // the schema, as EncodeSchema renders it
}

// AAD is the associated data an encrypted artifact is bound to: its id. A
// file moved into another artifact's place fails to decrypt, even with a
// matching digest.
func AAD(id string) []byte { return []byte("sluice/artifact/" + id) }

type schemaField struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// EncodeSchema renders a schema as compact JSON,
// [{"name":"id","type":"int"},...], the form kept in the store.
func EncodeSchema(s *data.Schema) string {
	fs := make([]schemaField, len(s.Fields))
	for i, f := range s.Fields {
		fs[i] = schemaField{Name: f.Name, Type: f.Type.String()}
	}
	b, err := json.Marshal(fs)
	if err != nil { // strings and a slice of structs always marshal
		panic(fmt.Sprintf("artifact: encoding schema: %v", err))
	}
	return string(b)
}

// DecodeSchema parses what EncodeSchema rendered.
func DecodeSchema(s string) (*data.Schema, error) {
	var fs []schemaField
	if err := json.Unmarshal([]byte(s), &fs); err != nil {
		return nil, fmt.Errorf("decoding schema: %w", err)
	}
	fields := make([]data.Field, len(fs))
	for i, f := range fs {
		t, err := data.ParseType(f.Type)
		if err != nil {
			return nil, fmt.Errorf("decoding schema: field %q: %w", f.Name, err)
		}
		fields[i] = data.Field{Name: f.Name, Type: t}
	}
	schema, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("decoding schema: %w", err)
	}
	return schema, nil
}
