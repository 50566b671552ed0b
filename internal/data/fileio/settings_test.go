package fileio

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/strictyaml"
)

// connConfig embeds Files the way the file connectors do.
type connConfig struct {
	Path  string `yaml:"path"`
	Files `yaml:",inline"`
	Mode  string `yaml:"mode"`
}

func (c *connConfig) Validate() error { return c.Files.Validate() }

func decodeSettings(t *testing.T, text string) (*connConfig, error) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		t.Fatal(err)
	}
	c := &connConfig{}
	return c, strictyaml.Decode(&n, c)
}

func TestFilesInlineDecode(t *testing.T) {
	t.Parallel()
	c, err := decodeSettings(t, "path: a.csv\nencrypt: true\npartition_by: k\nmax_partitions: 7\nbatch_size: 9\nmode: x\n")
	if err != nil {
		t.Fatal(err)
	}
	want := connConfig{Path: "a.csv", Files: Files{Encrypt: true, PartitionBy: "k", MaxPartitions: 7, BatchSize: 9}, Mode: "x"}
	if *c != want {
		t.Fatalf("decoded %+v, want %+v", *c, want)
	}

	// An unknown key is still an error at its position, listing the
	// inlined names with the others.
	_, err = decodeSettings(t, "path: a.csv\nmax_partiton: 3\n")
	var es strictyaml.Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("got %v, want one strictyaml error", err)
	}
	if es[0].Line != 2 || es[0].Col != 1 {
		t.Errorf("error at %d:%d, want 2:1", es[0].Line, es[0].Col)
	}
	if want := `unknown field "max_partiton" (known: batch_size, encrypt, max_partitions, mode, partition_by, path)`; es[0].Msg != want {
		t.Errorf("got %q, want %q", es[0].Msg, want)
	}

	// The embedding struct's Validate sees the inlined values.
	_, err = decodeSettings(t, "path: a.csv\nbatch_size: -2\n")
	if err == nil || !strings.Contains(err.Error(), "batch_size: must not be negative, got -2") {
		t.Fatalf("got %v, want the batch_size error", err)
	}
}

func TestFilesValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		f    Files
		want string
	}{
		{Files{}, ""},
		{Files{MaxPartitions: -1}, "max_partitions: must not be negative, got -1"},
		{Files{BatchSize: -3}, "batch_size: must not be negative, got -3"},
		{Files{MaxPartitions: -1, BatchSize: -3}, "max_partitions: must not be negative, got -1"},
	} {
		err := tt.f.Validate()
		if got := errText(err); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.f, got, tt.want)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestFilesSourceChecks(t *testing.T) {
	t.Parallel()
	if err := (&Files{}).RefuseEncrypt("csv"); err != nil {
		t.Errorf("RefuseEncrypt without encrypt: %v", err)
	}
	if got, want := errText((&Files{Encrypt: true}).RefuseEncrypt("csv")), "csv: encrypt: applies only to writing (read an encrypted file back with 'sluice decrypt')"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := (&Files{BatchSize: 5}).RefusePartitions("jsonl"); err != nil {
		t.Errorf("RefusePartitions without partitions: %v", err)
	}
	for _, f := range []Files{{PartitionBy: "k"}, {MaxPartitions: 3}} {
		if got, want := errText(f.RefusePartitions("jsonl")), "jsonl: partition_by, max_partitions: apply only to writing"; got != want {
			t.Errorf("%+v: got %q, want %q", f, got, want)
		}
	}
	if got := (&Files{BatchSize: 5}).Rows(data.Env{BatchSize: 9}); got != 5 {
		t.Errorf("Rows = %d, want the setting, 5", got)
	}
	if got := (&Files{}).Rows(data.Env{BatchSize: 9}); got != 9 {
		t.Errorf("Rows = %d, want the task's, 9", got)
	}
}

func TestInputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{"b.csv", "a.csv", "c.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := data.Env{Dir: dir}
	got, err := Inputs(env, "csv", "*.csv")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := Inputs(env, "csv", "*.jsonl"); err == nil || !strings.HasPrefix(err.Error(), "csv: path ") || !strings.Contains(err.Error(), "matches no file") {
		t.Errorf("no match: got %v, want a csv: error saying the path matches no file", err)
	}
	bad := data.Env{Dir: dir, Expand: func(string) (string, error) { return "", errors.New("no such param") }}
	if _, err := Inputs(bad, "jsonl", "{{ .Params.x }}"); err == nil || !strings.HasPrefix(err.Error(), "jsonl: expanding path") {
		t.Errorf("bad template: got %v, want a jsonl: expanding path error", err)
	}
}

func TestFilesSinkOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := data.Env{Dir: dir}

	f := &Files{PartitionBy: "k", MaxPartitions: 4}
	opts, err := f.SinkOptions(env, "csv", "out/{partition}.csv", CompressionGzip)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Label != "csv" || opts.Path != filepath.Join(dir, "out", "{partition}.csv") || opts.Compression != CompressionGzip ||
		opts.PartitionBy != "k" || opts.MaxPartitions != 4 || opts.Encrypt != nil {
		t.Errorf("got %+v", opts)
	}

	if got, want := errText(errOnly((&Files{BatchSize: 10}).SinkOptions(env, "parquet", "x", CompressionNone))), "parquet: batch_size: applies only to reading"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Encryption asked for without a keyring is refused, never a
	// plaintext file.
	if got, want := errText(errOnly((&Files{Encrypt: true}).SinkOptions(env, "jsonl", "x", CompressionNone))), "jsonl: encrypt: no keyring is available to encrypt with"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	called := false
	env.Encrypt = func(w io.Writer, ref string) (io.WriteCloser, error) { called = true; return nil, nil }
	opts, err = (&Files{Encrypt: true}).SinkOptions(env, "jsonl", "x", CompressionNone)
	if err != nil || opts.Encrypt == nil {
		t.Fatalf("got %+v, %v; want the env's encryptor", opts, err)
	}
	_, _ = opts.Encrypt(io.Discard, "x")
	if !called {
		t.Error("SinkOptions.Encrypt is not the env's encryptor")
	}
}

func errOnly(_ SinkOptions, err error) error { return err }
