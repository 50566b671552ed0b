// Package jsonl is the jsonl connector: it reads and writes JSON Lines
// files, one JSON object per line.
//
// Reading uses a purpose-built scanner for flat objects rather than
// decoding each line into a map: field names are looked up in the schema
// without allocating, values are parsed straight into the batch's typed
// columns, and the strings of one record share a single allocation. Every
// line is still checked as strict JSON (RFC 8259, UTF-8).
//
// A line that is not a JSON object, or whose field has the wrong JSON type
// for its column, goes to the task's quarantine with its line number and
// raw text; reading continues. A field missing from a line is null; a
// field not in the schema is ignored.
//
// Without a declared schema the source infers one from the first valid
// record: a string is a string column, an integral number an int, any
// other number a float, true/false a bool, and null, an object or an array
// a string column that holds the raw JSON text. Declaring the schema is
// recommended: a first record with a null or a whole-number price would
// otherwise fix the wrong type for the whole file.
//
// Writing encodes straight into a byte buffer, keys in schema order, and
// renames the finished file into place on commit.
package jsonl

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Name is the connector's name under extract: and load:.
const Name = "jsonl"

func init() {
	data.Builtin.Register(&data.Connector{
		Name:       Name,
		Config:     func() any { return NewConfig() },
		OpenSource: OpenSource,
		OpenSink:   OpenSink,
	})
}

// Config is the jsonl connector's settings.
type Config struct {
	// Path is the file, a template; relative paths are relative to the
	// pipeline file's directory. Reading, it may be a glob
	// ("in/*.jsonl"): the files are read in lexical order, all with the
	// first file's schema. Writing with PartitionBy, it holds
	// "{partition}". Required.
	Path string `yaml:"path"`
	// Compression is gzip, zstd or none; by default a path ending in
	// ".gz" or ".zst" says.
	Compression string `yaml:"compression"`
	// Files holds the settings every file connector shares: encrypt,
	// partition_by, max_partitions and batch_size.
	fileio.Files `yaml:",inline"`
	// Schema types the fields: a mapping of field name to type, in order.
	// Without it the schema is inferred from the first record. Reading
	// only.
	Schema fileio.Columns `yaml:"schema"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config { return &Config{} }

// Validate checks the settings, naming the bad one.
func (c *Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("path: required")
	}
	if _, err := fileio.ParseCompression(c.Compression); err != nil {
		return err
	}
	if err := c.Files.Validate(); err != nil {
		return err
	}
	if _, err := c.Schema.Schema(); err != nil {
		return err
	}
	return nil
}

func asConfig(cfg any) (*Config, error) { return data.ConfigAs[Config](Name, cfg) }
