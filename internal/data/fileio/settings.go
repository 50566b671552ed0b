package fileio

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/data"
)

// Files is the settings every file connector (csv, jsonl, parquet) shares,
// with the same YAML names, meaning and checks. A connector embeds it in
// its Config with `yaml:",inline"`, so the keys stay at the top level of
// the connector's settings, and keeps its format's own settings next to it.
//
// Path and Compression are not here although every file connector has
// them: each connector documents its own path (what a glob must agree on
// differs by format), parquet's compression is the codec of the pages
// inside the file rather than of the file, and keeping both as fields of
// the connector's Config lets callers set them in a composite literal.
// The methods take them as arguments instead.
//
// Every error a method returns starts with the label it is given, the
// connector's name, so that a message names the connector it is about.
type Files struct {
	// Encrypt, on a sink, encrypts the file(s) at rest under a data key
	// of sluice's keyring; `sluice decrypt FILE` reads them back.
	Encrypt bool `yaml:"encrypt"`
	// PartitionBy names a column (a field, in JSON Lines): the sink
	// writes one file per distinct value, substituted for "{partition}" in the path. Writing only.
	PartitionBy string `yaml:"partition_by"`
	// MaxPartitions caps the partition files; default 100. Writing only.
	MaxPartitions int `yaml:"max_partitions"`
	// BatchSize is the rows per batch; 0 uses the task's batch size.
	// Reading only.
	BatchSize int `yaml:"batch_size"`
}

// Validate checks the shared settings that can be checked without knowing
// whether the connector reads or writes. Its errors name the setting, not
// the connector: the connector's own Validate returns them alongside its
// other settings' errors, and its caller adds the connector's name.
func (f *Files) Validate() error {
	if f.MaxPartitions < 0 {
		return fmt.Errorf("max_partitions: must not be negative, got %d", f.MaxPartitions)
	}
	if f.BatchSize < 0 {
		return fmt.Errorf("batch_size: must not be negative, got %d", f.BatchSize)
	}
	return nil
}

// Rows is the rows per batch a source reads: the BatchSize setting, else
// the task's, else data.DefaultBatchSize (see BatchSize).
func (f *Files) Rows(env data.Env) int { return BatchSize(f.BatchSize, env) }

// RefuseEncrypt is the error of a source whose settings say encrypt: a
// source cannot decrypt in place, and ignoring the setting would hide a
// misunderstanding about which files are protected.
func (f *Files) RefuseEncrypt(label string) error {
	if f.Encrypt {
		return fmt.Errorf("%s: encrypt: applies only to writing (read an encrypted file back with 'sluice decrypt')", label)
	}
	return nil
}

// RefusePartitions is the error of a source whose settings partition its
// output, which only a sink has.
func (f *Files) RefusePartitions(label string) error {
	if f.Partitioned() {
		return fmt.Errorf("%s: partition_by, max_partitions: apply only to writing", label)
	}
	return nil
}

// Partitioned reports whether partition_by or max_partitions is set.
func (f *Files) Partitioned() bool { return f.PartitionBy != "" || f.MaxPartitions != 0 }

// Inputs returns the files a source reads: path (the connector's path
// setting) expanded, resolved against the pipeline's directory (see
// ResolvePath) and, when it holds glob characters, matched (see Glob).
func Inputs(env data.Env, label, path string) ([]string, error) {
	pattern, err := ResolvePath(env, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	paths, err := Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	return paths, nil
}

// SinkOptions returns what OpenSink takes for a sink with these settings,
// writing path (the connector's path setting, resolved as ResolvePath
// says) compressed with comp. It refuses batch_size, a reading setting,
// and encrypt without a keyring to encrypt with (see Encryption). A
// connector refuses its own reading-only settings before calling it.
func (f *Files) SinkOptions(env data.Env, label, path string, comp Compression) (SinkOptions, error) {
	if f.BatchSize != 0 {
		return SinkOptions{}, fmt.Errorf("%s: batch_size: applies only to reading", label)
	}
	resolved, err := ResolvePath(env, path)
	if err != nil {
		return SinkOptions{}, fmt.Errorf("%s: %w", label, err)
	}
	encrypt, err := Encryption(f.Encrypt, env, label)
	if err != nil {
		return SinkOptions{}, err
	}
	return SinkOptions{
		Label:         label,
		Path:          resolved,
		Compression:   comp,
		PartitionBy:   f.PartitionBy,
		MaxPartitions: f.MaxPartitions,
		Encrypt:       encrypt,
	}, nil
}
