// Package parquet is the parquet connector: it reads and writes Apache
// Parquet files with github.com/parquet-go/parquet-go.
//
// Reading walks the file row group by row group and, inside a row group,
// reads every selected column page by page in step, so memory holds a page
// per column and one batch, never the file. Values are copied straight from
// the library's page values into the batch's typed columns; the strings of
// one column of one batch share a single allocation.
//
// Writing sends each column of a batch to the library's column writer as a
// run of parquet values (plain structs, no interface boxing), cutting a row
// group every row_group_size rows. The file is written to a temporary file
// and renamed into place on commit, like every file sink. The sink's memory
// does not grow with the data: each column buffers one page (256 KiB)
// before it is compressed, and zstd compresses with one encoder per sink,
// kept for its lifetime, whose window is a page (see zstdCodec).
//
// Parquet files are typed, so the source has nothing to quarantine: a value
// is what the file says it is. A file that is not Parquet, is truncated, or
// has a column sluice cannot represent (nested, repeated, decimal) is an
// error naming the path and the column.
package parquet

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Name is the connector's name under extract: and load:.
const Name = "parquet"

// DefaultRowGroupSize is the rows per row group the sink writes unless
// configured otherwise. Readers skip and read in parallel by row group, and
// each row group repeats the column metadata and statistics, so fewer,
// larger groups scan faster and cost less footer. The sink compresses each
// page as it fills, so what a row group holds in memory until it is flushed
// is its compressed pages: measured with 7 columns, the sink's live heap is
// about 9 MB whether row groups are 32 Ki or 256 Ki rows.
const DefaultRowGroupSize = 128 << 10

func init() {
	data.Builtin.Register(&data.Connector{
		Name:       Name,
		Config:     func() any { return NewConfig() },
		OpenSource: OpenSource,
		OpenSink:   OpenSink,
	})
}

// Config is the parquet connector's settings.
//
// Encrypt, PartitionBy, MaxPartitions and BatchSize are the settings every
// file connector shares (fileio.Files), refused on a source and applied
// on a sink by the same code as theirs (see files). They are declared here rather than embedded so that
// a Config can be written as a composite literal naming them, which Go
// does not allow for the fields of an embedded struct.
type Config struct {
	// Path is the file, a template; relative paths are relative to the
	// pipeline file's directory. Reading, it may be a glob
	// ("lake/*.parquet"): the files are read in lexical order and must
	// have the same schema. Writing with PartitionBy, it holds
	// "{partition}". Required.
	Path string `yaml:"path"`
	// Columns picks the columns to read, in the order given; default all.
	// Only the chosen columns are read from disk. Reading only.
	Columns []string `yaml:"columns"`
	// BatchSize is the rows per batch; 0 uses the task's batch size.
	// Reading only.
	BatchSize int `yaml:"batch_size"`
	// Compression is the codec of the pages written: zstd (default),
	// snappy, gzip or none. Writing only.
	Compression string `yaml:"compression"`
	// Encrypt, on a sink, encrypts the file(s) at rest under a data key
	// of sluice's keyring; `sluice decrypt FILE` reads them back.
	Encrypt bool `yaml:"encrypt"`
	// RowGroupSize is the rows per row group written; default
	// DefaultRowGroupSize. Writing only.
	RowGroupSize int `yaml:"row_group_size"`
	// PartitionBy names a column: the sink writes one file per distinct
	// value, substituted for "{partition}" in the path. Writing only.
	PartitionBy string `yaml:"partition_by"`
	// MaxPartitions caps the partition files; default 100. Writing only.
	MaxPartitions int `yaml:"max_partitions"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config { return &Config{} }

// Validate checks the settings, naming the bad one.
func (c *Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("path: required")
	}
	// batch_size and max_partitions are checked here, not with
	// fileio.Files.Validate, to keep the order parquet has always reported
	// them in when several settings are wrong.
	if c.BatchSize < 0 {
		return fmt.Errorf("batch_size: must not be negative, got %d", c.BatchSize)
	}
	if c.RowGroupSize < 0 {
		return fmt.Errorf("row_group_size: must not be negative, got %d", c.RowGroupSize)
	}
	if c.MaxPartitions < 0 {
		return fmt.Errorf("max_partitions: must not be negative, got %d", c.MaxPartitions)
	}
	if _, err := codecOf(c.Compression); err != nil {
		return err
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
	return nil
}

// writingOnly lists the settings a source must not have.
func (c *Config) writingOnly() error {
	var set []string
	if c.Compression != "" {
		set = append(set, "compression")
	}
	if c.RowGroupSize != 0 {
		set = append(set, "row_group_size")
	}
	if c.PartitionBy != "" {
		set = append(set, "partition_by")
	}
	if c.MaxPartitions != 0 {
		set = append(set, "max_partitions")
	}
	if len(set) > 0 {
		return fmt.Errorf("%s: apply only to writing", strings.Join(set, ", "))
	}
	return nil
}

func asConfig(cfg any) (*Config, error) { return data.ConfigAs[Config](Name, cfg) }

// files returns the settings parquet shares with the other file
// connectors.
func (c *Config) files() *fileio.Files {
	return &fileio.Files{Encrypt: c.Encrypt, PartitionBy: c.PartitionBy, MaxPartitions: c.MaxPartitions, BatchSize: c.BatchSize}
}
