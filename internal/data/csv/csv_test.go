package csv

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/datatest"
	"go.yaml.in/yaml/v3"
)

type quarantine struct {
	mu   sync.Mutex
	rejs []data.Reject
}

func (q *quarantine) Reject(_ context.Context, r data.Reject) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rejs = append(q.rejs, r)
	return nil
}

func testEnv(dir string, q data.Quarantine) data.Env {
	return data.Env{Dir: dir, Expand: func(s string) (string, error) { return strings.ReplaceAll(s, "{{ .LogicalDate }}", "2024-05-01"), nil }, Quarantine: q, BatchSize: 3}
}

// row is one record rendered for comparison: nil for null.
// row, readAll and batchOf are the shared data test helpers.
type row = datatest.Row

func readAll(t testing.TB, src data.Source) ([]row, []int64) {
	t.Helper()
	return datatest.ReadAll(t, src)
}

func batchOf(s *data.Schema, rows []row) *data.Batch { return datatest.BatchOf(s, rows) }

func decodeConfig(t *testing.T, src string) *Config {
	t.Helper()
	c := NewConfig()
	if err := yaml.Unmarshal([]byte(src), c); err != nil {
		t.Fatalf("decoding config: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return c
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 5, 1, 12, 30, 0, 123456000, time.UTC)
	tests := []struct {
		name    string
		config  string
		content string
		schema  string
		want    []row
		pos     []int64
	}{
		{
			name:    "header strings",
			config:  "path: in.csv",
			content: "id,name\n1,Ada\n2,\"Lovelace, A.\"\n",
			schema:  "id:string, name:string",
			want:    []row{{"1", "Ada"}, {"2", "Lovelace, A."}},
			pos:     []int64{2, 3},
		},
		{
			name:    "typed schema in declared order with nulls",
			config:  "path: in.csv\nschema:\n  age: int\n  id: int\n  score: float\n  ok: bool\n  at: timestamp",
			content: "id,age,score,ok,at,extra\n1,30,1.5,true,2024-05-01T12:30:00.123456Z,x\n2,,,,,y\n",
			schema:  "age:int, id:int, score:float, ok:bool, at:timestamp",
			want:    []row{{int64(30), int64(1), 1.5, true, ts}, {nil, int64(2), nil, nil, nil}},
			pos:     []int64{2, 3},
		},
		{
			name:    "semicolon delimiter, quotes and embedded newline",
			config:  "path: in.csv\ndelimiter: \";\"",
			content: "a;b\n\"x;y\";\"he said \"\"hi\"\"\"\n\"multi\nline\";z\n",
			schema:  "a:string, b:string",
			want:    []row{{"x;y", `he said "hi"`}, {"multi\nline", "z"}},
			pos:     []int64{2, 3},
		},
		{
			name:    "tab delimiter",
			config:  "path: in.csv\ndelimiter: \"\\t\"",
			content: "a\tb\n1\t2\n",
			schema:  "a:string, b:string",
			want:    []row{{"1", "2"}},
			pos:     []int64{2},
		},
		{
			name:    "header-less with columns",
			config:  "path: in.csv\nheader: false\ncolumns: [id, name]",
			content: "1,Ada\n2,Grace\n",
			schema:  "id:string, name:string",
			want:    []row{{"1", "Ada"}, {"2", "Grace"}},
			pos:     []int64{1, 2},
		},
		{
			name:    "header-less with schema only",
			config:  "path: in.csv\nheader: false\nschema: {id: int, name: string}",
			content: "1,Ada\n\n2,Grace\r\n",
			schema:  "id:int, name:string",
			want:    []row{{int64(1), "Ada"}, {int64(2), "Grace"}},
			pos:     []int64{1, 3},
		},
		{
			name:    "byte order mark and templated path",
			config:  "path: \"{{ .LogicalDate }}.csv\"",
			content: "\xef\xbb\xbfid\n7\n",
			schema:  "id:string",
			want:    []row{{"7"}},
			pos:     []int64{2},
		},
		{
			name:    "many rows across batches",
			config:  "path: in.csv\nschema: {n: int}",
			content: "n\n1\n2\n3\n4\n5\n6\n7\n",
			schema:  "n:int",
			want:    []row{{int64(1)}, {int64(2)}, {int64(3)}, {int64(4)}, {int64(5)}, {int64(6)}, {int64(7)}},
			pos:     []int64{2, 3, 4, 5, 6, 7, 8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := decodeConfig(t, tt.config)
			name := "in.csv"
			if strings.Contains(tt.config, "LogicalDate") {
				name = "2024-05-01.csv"
			}
			writeFile(t, dir, name, tt.content)
			q := &quarantine{}
			src, err := OpenSource(context.Background(), c, testEnv(dir, q))
			if err != nil {
				t.Fatalf("OpenSource: %v", err)
			}
			defer src.Close()
			if got := src.Schema().String(); got != tt.schema {
				t.Errorf("schema = %q, want %q", got, tt.schema)
			}
			rows, pos := readAll(t, src)
			if diff := cmp.Diff(tt.want, rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.pos, pos); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
			if len(q.rejs) != 0 {
				t.Errorf("unexpected rejects: %+v", q.rejs)
			}
		})
	}
}

func TestQuarantine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		config  string
		content string
		want    []data.Reject // Pos relative to the file name
		rows    int
	}{
		{
			name:    "wrong number of fields",
			config:  "path: in.csv",
			content: "a,b\n1,2\n1,2,3\n4\n5,6\n",
			want: []data.Reject{
				{Pos: "in.csv:3", Reason: "wrong number of fields: got 3, want 2", Raw: "1,2,3"},
				{Pos: "in.csv:4", Reason: "wrong number of fields: got 1, want 2", Raw: "4"},
			},
			rows: 2,
		},
		{
			name:    "bare quote",
			config:  "path: in.csv",
			content: "a,b\nx,y\"z\nok,ok\n",
			want:    []data.Reject{{Pos: "in.csv:2", Reason: `bare " in non-quoted-field`, Raw: `x,y"z`}},
			rows:    1,
		},
		{
			name:    "extraneous quote",
			config:  "path: in.csv",
			content: "a,b\n\"x\"y,z\nok,ok\n",
			want:    []data.Reject{{Pos: "in.csv:2", Reason: `extraneous or missing " in quoted-field`, Raw: `"x"y,z`}},
			rows:    1,
		},
		{
			name:    "invalid UTF-8",
			config:  "path: in.csv",
			content: "a,b\nok,\xff\xfe\nok,ok\n",
			want:    []data.Reject{{Pos: "in.csv:2", Reason: `column "b": invalid UTF-8`, Raw: "ok,\xff\xfe"}},
			rows:    1,
		},
		{
			name:    "not an int",
			config:  "path: in.csv\nschema: {a: int, b: string}",
			content: "a,b\nabc,x\r\n2,y\n",
			want:    []data.Reject{{Pos: "in.csv:2", Reason: `column "a": "abc" is not an int`, Raw: "abc,x"}},
			rows:    1,
		},
		{
			name:    "not a float, bool or timestamp",
			config:  "path: in.csv\nheader: false\nschema: {f: float, b: bool, t: timestamp}",
			content: "x,true,2024-01-01\n1,maybe,2024-01-01\n1,true,yesterday\n1,1,2024-01-01T00:00:00+02:00\n",
			want: []data.Reject{
				{Pos: "in.csv:1", Reason: `column "f": "x" is not a float`, Raw: "x,true,2024-01-01"},
				{Pos: "in.csv:2", Reason: `column "b": "maybe" is not a bool`, Raw: "1,maybe,2024-01-01"},
				{Pos: "in.csv:3", Reason: `column "t": "yesterday" is not a timestamp (want RFC 3339)`, Raw: "1,true,yesterday"},
			},
			rows: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "in.csv", tt.content)
			q := &quarantine{}
			src, err := OpenSource(context.Background(), decodeConfig(t, tt.config), testEnv(dir, q))
			if err != nil {
				t.Fatalf("OpenSource: %v", err)
			}
			defer src.Close()
			rows, _ := readAll(t, src)
			if len(rows) != tt.rows {
				t.Errorf("got %d rows, want %d: %v", len(rows), tt.rows, rows)
			}
			for i := range q.rejs {
				q.rejs[i].Pos = strings.TrimPrefix(q.rejs[i].Pos, dir+string(filepath.Separator))
			}
			if diff := cmp.Diff(tt.want, q.rejs); diff != "" {
				t.Errorf("rejects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "empty.csv", "")
	writeFile(t, dir, "dup.csv", "a,a\n1,2\n")
	writeFile(t, dir, "ok.csv", "a,b\n")
	tests := []struct {
		name, config, want string
	}{
		{"missing file", "path: nope.csv", "csv: opening " + filepath.Join(dir, "nope.csv") + ": open " + filepath.Join(dir, "nope.csv") + ": no such file or directory"},
		{"missing header", "path: empty.csv", "csv: " + filepath.Join(dir, "empty.csv") + ": missing header"},
		{"duplicate header", "path: dup.csv", "csv: " + filepath.Join(dir, "dup.csv") + `: header: field "a": duplicate name`},
		{"header-less without columns", "path: ok.csv\nheader: false", "csv: columns: required to read a file without a header"},
		{"schema column not in header", "path: ok.csv\nschema: {c: int}", "csv: " + filepath.Join(dir, "ok.csv") + `: column "c" of the schema is not in the header`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := OpenSource(context.Background(), decodeConfig(t, tt.config), testEnv(dir, &quarantine{}))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, config, want string }{
		{"no path", "delimiter: ','", "path: required"},
		{"long delimiter", "path: a\ndelimiter: ';;'", `delimiter: want one character, got ";;"`},
		{"quote delimiter", "path: a\ndelimiter: '\"'", `delimiter: "\"" cannot be a delimiter`},
		{"columns with header", "path: a\ncolumns: [x]", "columns: only for files without a header"},
		{"duplicate column", "path: a\nheader: false\ncolumns: [x, x]", `columns: "x" listed twice`},
		{"schema outside columns", "path: a\nheader: false\ncolumns: [x]\nschema: {y: int}", `schema: column "y" is not in columns`},
		{"negative batch", "path: a\nbatch_size: -1", "batch_size: must not be negative, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewConfig()
			if err := yaml.Unmarshal([]byte(tt.config), c); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want prefix %q", err, tt.want)
			}
		})
	}
	t.Run("bad schema type", func(t *testing.T) {
		t.Parallel()
		err := yaml.Unmarshal([]byte("path: a\nschema: {x: integr}"), NewConfig())
		if err == nil || !strings.Contains(err.Error(), `column "x": unknown type "integr"`) {
			t.Errorf("error = %v", err)
		}
	})
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(
		data.Field{Name: "s", Type: data.String}, data.Field{Name: "i", Type: data.Int},
		data.Field{Name: "f", Type: data.Float}, data.Field{Name: "b", Type: data.Bool},
		data.Field{Name: "t", Type: data.Timestamp},
	)
	ts := time.Date(2023, 12, 31, 23, 59, 59, 999999000, time.UTC)
	rows := []row{
		{"plain", int64(math.MaxInt64), 3.25, true, ts},
		{"comma, \"quote\"\nnewline", int64(math.MinInt64), -1e300, false, ts.Add(-time.Hour)},
		{" leading space", int64(0), math.Inf(1), true, time.Unix(0, 0).UTC()},
		{nil, nil, nil, nil, nil},
		{"ünïcödé ;|\t", int64(-5), 0.1, false, ts},
	}
	for _, delim := range []string{",", ";", "\t", "|", "§"} {
		for _, header := range []bool{true, false} {
			t.Run(strings.Trim(strconvQuote(delim), `"`)+map[bool]string{true: "/header", false: "/no-header"}[header], func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				cfg := &Config{Path: "out/data.csv", Delimiter: delim, Header: header}
				sink, err := OpenSink(context.Background(), cfg, schema, testEnv(dir, &quarantine{}))
				if err != nil {
					t.Fatal(err)
				}
				if err := sink.Write(context.Background(), batchOf(schema, rows[:2])); err != nil {
					t.Fatal(err)
				}
				if err := sink.Write(context.Background(), batchOf(schema, rows[2:])); err != nil {
					t.Fatal(err)
				}
				if err := sink.Commit(context.Background()); err != nil {
					t.Fatal(err)
				}
				rc := &Config{Path: "out/data.csv", Delimiter: delim, Header: header, Schema: schemaCols(schema)}
				if !header {
					rc.Columns = schema.Names()
				}
				q := &quarantine{}
				src, err := OpenSource(context.Background(), rc, testEnv(dir, q))
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				got, _ := readAll(t, src)
				if diff := cmp.Diff(rows, got); diff != "" {
					t.Errorf("round trip (-want +got):\n%s", diff)
				}
				if len(q.rejs) > 0 {
					t.Errorf("rejects: %+v", q.rejs)
				}
			})
		}
	}
}

func TestSingleColumnNulls(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	schema := data.MustSchema(data.Field{Name: "v", Type: data.String})
	rows := []row{{"a"}, {nil}, {"b"}}
	sink, err := OpenSink(context.Background(), &Config{Path: "one.csv", Header: true}, schema, testEnv(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(context.Background(), batchOf(schema, rows)); err != nil {
		t.Fatal(err)
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(context.Background(), &Config{Path: "one.csv", Header: true}, testEnv(dir, &quarantine{}))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, _ := readAll(t, src)
	if diff := cmp.Diff(rows, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSinkAtomic(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(data.Field{Name: "v", Type: data.Int})
	for _, commit := range []bool{true, false} {
		t.Run(map[bool]string{true: "commit", false: "abort"}[commit], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sink, err := OpenSink(context.Background(), &Config{Path: "a/b/out.csv", Header: true}, schema, testEnv(dir, nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.Write(context.Background(), batchOf(schema, []row{{int64(1)}})); err != nil {
				t.Fatal(err)
			}
			final := filepath.Join(dir, "a/b/out.csv")
			if _, err := os.Stat(final); !os.IsNotExist(err) {
				t.Fatalf("file visible before commit: %v", err)
			}
			if st, err := os.Stat(filepath.Join(dir, "a/b")); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("directory mode: %v %v", st.Mode(), err)
			}
			if commit {
				err = sink.Commit(context.Background())
			} else {
				err = sink.Abort()
			}
			if err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "a/b"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			var want []string
			if commit {
				want = []string{"out.csv"}
				st, err := os.Stat(final)
				if err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("file mode: %v %v", st.Mode(), err)
				}
				b, _ := os.ReadFile(final)
				if string(b) != "v\n1\n" {
					t.Errorf("content = %q", b)
				}
			}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("directory entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSinkSchemaMismatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	schema := data.MustSchema(data.Field{Name: "v", Type: data.Int})
	other := data.MustSchema(data.Field{Name: "v", Type: data.String})
	sink, err := OpenSink(context.Background(), &Config{Path: "x.csv", Header: true}, schema, testEnv(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Abort()
	err = sink.Write(context.Background(), batchOf(other, []row{{"x"}}))
	if err == nil || !strings.Contains(err.Error(), `column 1 ("v"): batch has type string, sink was opened for int`) {
		t.Errorf("error = %v", err)
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	c, ok := data.Builtin.Lookup("csv")
	if !ok || c.OpenSource == nil || c.OpenSink == nil {
		t.Fatalf("csv not registered as source and sink")
	}
	cfg, ok := c.Config().(*Config)
	if !ok || cfg.Delimiter != "," || !cfg.Header {
		t.Errorf("defaults = %+v", c.Config())
	}
}

func strconvQuote(s string) string { return "\"" + strings.ReplaceAll(s, "\t", `\t`) + "\"" }

func schemaCols(s *data.Schema) []data.Field { return append([]data.Field(nil), s.Fields...) }
