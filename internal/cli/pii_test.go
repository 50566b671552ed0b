package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/cli"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/parquet"
)

// piiRows are the rows of the test files. Every value that is personal
// data is also checked not to appear in the command's output.
var piiRows = [][4]string{
	// id, email, card, phone
	{"ORD-0001", "alice.smith@example.com", "4111 1111 1111 1111", "(202) 456-1111"},
	{"ORD-0002", "bob.jones@example.org", "5555555555554444", "+44 20 7946 0958"},
	{"ORD-0003", "carol@example.net", "378282246310005", "(212) 555-0147"},
	{"ORD-0004", "dave@example.co.uk", "6011111111111117", "+1 415-555-2671"},
}

func writePIIFile(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	var b strings.Builder
	switch filepath.Ext(name) {
	case ".csv":
		b.WriteString("id,email,card,phone\n")
		for _, r := range piiRows {
			b.WriteString(strings.Join(r[:], ",") + "\n")
		}
	case ".jsonl":
		// Written by hand to keep the key order (id, email, card, phone).
		for _, r := range piiRows {
			q := make([]any, len(r))
			for i, v := range r {
				enc, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				q[i] = string(enc)
			}
			fmt.Fprintf(&b, "{\"id\":%s,\"email\":%s,\"card\":%s,\"phone\":%s}\n", q...)
		}
	case ".parquet":
		writeParquet(t, path)
		return path
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeParquet writes piiRows with the parquet connector's own sink.
func writeParquet(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	schema := data.MustSchema(
		data.Field{Name: "id", Type: data.String}, data.Field{Name: "email", Type: data.String},
		data.Field{Name: "card", Type: data.String}, data.Field{Name: "phone", Type: data.String},
	)
	cfg := parquet.NewConfig()
	cfg.Path = path
	env := data.Env{Dir: filepath.Dir(path), Expand: func(s string) (string, error) { return s, nil }, BatchSize: 16}
	sink, err := parquet.OpenSink(ctx, cfg, schema, env)
	if err != nil {
		t.Fatalf("opening parquet sink: %v", err)
	}
	b := data.NewBatch(schema, len(piiRows))
	for _, r := range piiRows {
		for i := range r {
			b.Cols[i].Strings = append(b.Cols[i].Strings, r[i])
		}
	}
	b.Len = len(piiRows)
	if err := sink.Write(ctx, b); err != nil {
		t.Fatalf("writing parquet: %v", err)
	}
	if err := sink.Commit(ctx); err != nil {
		t.Fatalf("committing parquet: %v", err)
	}
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(string) string { return "" }
	code = cli.Main(context.Background(), args, strings.NewReader(""), &out, &errb, getenv)
	return out.String(), errb.String(), code
}

// assertNoRawValues fails if any personal value of the test rows leaks.
func assertNoRawValues(t *testing.T, outputs ...string) {
	t.Helper()
	for _, r := range piiRows {
		for _, v := range r[1:] {
			for _, o := range outputs {
				if strings.Contains(o, v) {
					t.Errorf("output contains the raw value %q:\n%s", v, o)
				}
			}
		}
	}
}

type piiReport struct {
	Rows     int64 `json:"rows"`
	Rejected int64 `json:"rejected"`
	Findings []struct {
		Column     string  `json:"column"`
		Type       string  `json:"type"`
		Matches    int64   `json:"matches"`
		Sampled    int64   `json:"sampled"`
		Ratio      float64 `json:"ratio"`
		Confidence float64 `json:"confidence"`
	} `json:"findings"`
}

func TestPIIScanFormats(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"people.csv", "people.jsonl", "people.parquet"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := writePIIFile(t, name)
			stdout, stderr, code := runCLI(t, "pii", "scan", path, "--output", "json")
			if code != cli.ExitOK {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			assertNoRawValues(t, stdout, stderr)
			var rep piiReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("decoding %s: %v", stdout, err)
			}
			type row struct {
				Column, Type     string
				Matches, Sampled int64
			}
			var got []row
			for _, f := range rep.Findings {
				got = append(got, row{f.Column, f.Type, f.Matches, f.Sampled})
				if f.Confidence <= 0.5 || f.Ratio != 1 {
					t.Errorf("%s: ratio %v confidence %v, want ratio 1 and confidence > 0.5", f.Column, f.Ratio, f.Confidence)
				}
			}
			want := []row{{"email", "email", 4, 4}, {"card", "credit_card", 4, 4}, {"phone", "phone", 4, 4}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s", diff)
			}
			if rep.Rows != 4 || rep.Rejected != 0 {
				t.Errorf("rows %d rejected %d, want 4 and 0", rep.Rows, rep.Rejected)
			}
		})
	}
}

func TestPIIScanTable(t *testing.T) {
	t.Parallel()
	path := writePIIFile(t, "people.csv")
	stdout, stderr, code := runCLI(t, "pii", "scan", "--sample", "2", path)
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	assertNoRawValues(t, stdout, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var got [][]string
	for _, l := range lines {
		f := strings.Fields(l)
		got = append(got, f[:5]) // confidence is checked in the JSON test
	}
	want := [][]string{
		{"COLUMN", "TYPE", "MATCHES", "SAMPLED", "RATIO"},
		{"email", "email", "2", "2", "1.000"},
		{"card", "credit_card", "2", "2", "1.000"},
		{"phone", "phone", "2", "2", "1.000"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table mismatch (-want +got):\n%s", diff)
	}
}

func TestPIIScanNothingFoundAndRejects(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "orders.csv")
	content := "id,total\nORD-1,19.99\nORD-2,5.00,extra\nORD-3,7.50\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "pii", "scan", path, "-o", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var rep piiReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("decoding %s: %v", stdout, err)
	}
	if len(rep.Findings) != 0 || rep.Rows != 2 || rep.Rejected != 1 {
		t.Errorf("got %+v, want no findings, 2 rows, 1 rejected", rep)
	}
	if strings.Contains(stdout+stderr, "extra") {
		t.Errorf("output shows the rejected record:\n%s%s", stdout, stderr)
	}
	stdout, _, code = runCLI(t, "pii", "scan", path)
	if code != cli.ExitOK || !strings.Contains(stdout, "no personal data found in 2 rows") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}

func TestPIIScanErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	csvPath := writePIIFile(t, "people.csv")
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"no file", []string{"pii", "scan"}, cli.ExitUsage, "accepts 1 arg"},
		{"unknown extension", []string{"pii", "scan", filepath.Join(dir, "x.txt")}, cli.ExitUsage, "cannot tell the format"},
		{"missing file", []string{"pii", "scan", filepath.Join(dir, "missing.csv")}, cli.ExitFailure, "missing.csv"},
		{"bad region", []string{"pii", "scan", "--region", "XX", csvPath}, cli.ExitUsage, "--region"},
		{"negative sample", []string{"pii", "scan", "--sample", "-1", csvPath}, cli.ExitUsage, "--sample"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.wantErr)
			}
		})
	}
}
