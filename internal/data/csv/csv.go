// Package csv is the csv connector: it reads and writes delimited text
// files (RFC 4180 quoting, any one-character delimiter).
//
// Reading streams the file record by record into reused batches, so memory
// does not grow with the file. A record that cannot be read (wrong number
// of fields, a stray quote, invalid UTF-8, a value that is not of its
// column's declared type) goes to the task's quarantine with its line
// number and raw text; reading continues. Writing goes to a temporary file
// that is renamed into place on commit.
//
// CSV cannot tell an empty string from a missing value: an empty field
// reads as null, whatever the column's type, and null is written as an
// empty field.
package csv

import (
	"fmt"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Name is the connector's name under extract: and load:.
const Name = "csv"

func init() {
	data.Builtin.Register(&data.Connector{
		Name:       Name,
		Config:     func() any { return NewConfig() },
		OpenSource: OpenSource,
		OpenSink:   OpenSink,
	})
}

// Config is the csv connector's settings.
type Config struct {
	// Path is the file, a template (e.g. "in/{{ .LogicalDate }}.csv");
	// relative paths are relative to the pipeline file's directory.
	// Reading, it may be a glob ("in/*.csv"): the files are read in
	// lexical order and must have the same header. Writing with
	// PartitionBy, it holds "{partition}". Required.
	Path string `yaml:"path"`
	// Compression is gzip, zstd or none; by default a path ending in
	// ".gz" or ".zst" says.
	Compression string `yaml:"compression"`
	// Files holds the settings every file connector shares: encrypt,
	// partition_by, max_partitions and batch_size.
	fileio.Files `yaml:",inline"`
	// Delimiter separates fields: one character, default ",". Written
	// "\t" in YAML double quotes for tab-separated files.
	Delimiter string `yaml:"delimiter"`
	// Header says the first record names the columns (reading) or should
	// name them (writing). Default true.
	Header bool `yaml:"header"`
	// Columns names the columns, in order, of a file without a header;
	// reading such a file needs Columns or Schema. Reading only.
	Columns []string `yaml:"columns"`
	// Schema types the columns: a mapping of column name to type, in
	// order. Only the columns it names are read, in its order. Without
	// it every column is a string. Reading only.
	Schema fileio.Columns `yaml:"schema"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config { return &Config{Delimiter: ",", Header: true} }

// Validate checks the settings, naming the bad one.
func (c *Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("path: required")
	}
	if _, err := c.delim(); err != nil {
		return err
	}
	if _, err := fileio.ParseCompression(c.Compression); err != nil {
		return err
	}
	if err := c.Files.Validate(); err != nil {
		return err
	}
	if c.Header && len(c.Columns) > 0 {
		return fmt.Errorf("columns: only for files without a header (set header: false), the header names the columns otherwise")
	}
	seen := make(map[string]bool, len(c.Columns))
	for i, n := range c.Columns {
		if n == "" {
			return fmt.Errorf("columns: entry %d is empty", i+1)
		}
		if seen[n] {
			return fmt.Errorf("columns: %q listed twice", n)
		}
		seen[n] = true
	}
	if len(c.Columns) > 0 {
		for _, f := range c.Schema {
			if !seen[f.Name] {
				return fmt.Errorf("schema: column %q is not in columns", f.Name)
			}
		}
	}
	if _, err := c.Schema.Schema(); err != nil {
		return err
	}
	return nil
}

// delim returns the delimiter as a rune, with the rules of encoding/csv.
func (c *Config) delim() (rune, error) {
	d := c.Delimiter
	if d == "" {
		return ',', nil
	}
	r, size := utf8.DecodeRuneInString(d)
	if size != len(d) {
		return 0, fmt.Errorf("delimiter: want one character, got %q", d)
	}
	if r == '"' || r == '\r' || r == '\n' || r == utf8.RuneError || r == 0 {
		return 0, fmt.Errorf("delimiter: %q cannot be a delimiter", d)
	}
	return r, nil
}

func asConfig(cfg any) (*Config, error) { return data.ConfigAs[Config](Name, cfg) }
