package pipeline

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fileConfig is the settings of the test file connectors.
type fileConfig struct {
	Path      string `yaml:"path"`
	Delimiter string `yaml:"delimiter"`
	Header    bool   `yaml:"header"`
}

func (c *fileConfig) Validate() error {
	if c.Path == "" {
		return errors.New("path is required")
	}
	return nil
}

type jsonlConfig struct {
	Path string `yaml:"path"`
}

func (c *jsonlConfig) Validate() error {
	if c.Path == "" {
		return errors.New("path is required")
	}
	return nil
}

func openSource(context.Context, any, data.Env) (data.Source, error) {
	return nil, errors.New("test connector")
}

func openSink(context.Context, any, *data.Schema, data.Env) (data.Sink, error) {
	return nil, errors.New("test connector")
}

// testRegistry holds small connectors shaped like the real ones: csv and
// jsonl are sources and sinks, stdin only a source, discard only a sink.
func testRegistry() *data.Registry {
	r := data.NewRegistry()
	r.Register(&data.Connector{Name: "csv", Config: func() any { return &fileConfig{Delimiter: ",", Header: true} }, OpenSource: openSource, OpenSink: openSink})
	r.Register(&data.Connector{Name: "jsonl", Config: func() any { return &jsonlConfig{} }, OpenSource: openSource, OpenSink: openSink})
	r.Register(&data.Connector{Name: "stdin", Config: func() any { return &struct{}{} }, OpenSource: openSource})
	r.Register(&data.Connector{Name: "discard", Config: func() any { return &struct{}{} }, OpenSink: openSink})
	return r
}

// TestGolden parses every testdata/NAME.yaml and compares the result with
// NAME.golden (the normalised pipeline) or NAME.err (the exact error text).
// Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, perr := Parse(filepath.ToSlash(file), src, Options{Connectors: testRegistry()})
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			errFile := strings.TrimSuffix(file, ".yaml") + ".err"
			var got []byte
			want := golden
			if perr != nil {
				var es Errors
				if !errors.As(perr, &es) {
					t.Fatalf("Parse error is %T, want Errors: %v", perr, perr)
				}
				got = []byte(perr.Error() + "\n")
				want = errFile
			} else {
				if got, err = Normalize(p); err != nil {
					t.Fatal(err)
				}
			}
			if *update {
				os.Remove(golden)
				os.Remove(errFile)
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (parse error: %v)", err, perr)
			}
			if diff := cmp.Diff(string(exp), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", want, diff)
			}
		})
	}
}
