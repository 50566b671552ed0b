package jsonl

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/datatest"
	"github.com/sluicehq/sluice/internal/data/fileio"
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
	return data.Env{Dir: dir, Expand: func(s string) (string, error) { return s, nil }, Quarantine: q, BatchSize: 2}
}

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

func TestRead(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name, config, content, schema string
		want                          []row
		pos                           []int64
	}{
		{
			name:    "declared schema, missing and unknown fields, escapes",
			config:  "path: in.jsonl\nschema: {id: int, name: string, score: float, ok: bool, at: timestamp}",
			content: `{"id": 1, "name": "A\"d\u00e9\n\ud83d\ude00", "score": 2, "ok": true, "at": "2024-05-01T12:30:00+02:00", "x": [1, {"y": null}]}` + "\n\n" + `{"id":-2,"score":1.5e3,"ok":false,"at":null}` + "\r\n" + `{"id": 3.0}`,
			schema:  "id:int, name:string, score:float, ok:bool, at:timestamp",
			want:    []row{{int64(1), "A\"dé\n😀", 2.0, true, ts}, {int64(-2), nil, 1500.0, false, nil}, {int64(3), nil, nil, nil, nil}},
			pos:     []int64{1, 3, 4},
		},
		{
			name:    "inferred schema",
			config:  "path: in.jsonl",
			content: `{"s":"x","i":7,"f":7.5,"e":1e2,"b":true,"n":null,"o":{"a": [1, 2]},"a":[]}` + "\n" + `{"s":"y","o":"plain"}` + "\n",
			schema:  "s:string, i:int, f:float, e:float, b:bool, n:string, o:string, a:string",
			want:    []row{{"x", int64(7), 7.5, 100.0, true, nil, `{"a": [1, 2]}`, "[]"}, {"y", nil, nil, nil, nil, nil, "plain", nil}},
			pos:     []int64{1, 2},
		},
		{
			name:    "byte order mark and leading blank lines",
			config:  "path: in.jsonl",
			content: "\xef\xbb\xbf\n  \n{\"a\":1}\n",
			schema:  "a:int",
			want:    []row{{int64(1)}},
			pos:     []int64{3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			q := &quarantine{}
			src, err := OpenSource(context.Background(), decodeConfig(t, tt.config), testEnv(dir, q))
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
			if len(q.rejs) > 0 {
				t.Errorf("unexpected rejects %+v", q.rejs)
			}
		})
	}
}

func TestQuarantine(t *testing.T) {
	t.Parallel()
	lines := []struct{ line, reason string }{
		{`[1, 2]`, "not a JSON object"},
		{`"text"`, "not a JSON object"},
		{`{"id": 1,}`, "invalid JSON: want a field name at byte 10"},
		{`{"id": 1} x`, "invalid JSON: unexpected data after the object at byte 11"},
		{`{"id": 01}`, "invalid JSON: want ',' or '}' at byte 9, got '1'"},
		{`{"id": "1"}`, `field "id": want int, got JSON string`},
		{`{"id": 1.5}`, `field "id": "1.5" is not an int`},
		{`{"id": 99999999999999999999}`, `field "id": "99999999999999999999" is not an int`},
		{`{"name": 5}`, `field "name": want string, got JSON number`},
		{`{"ok": "yes"}`, `field "ok": want bool, got JSON string`},
		{`{"at": "soon"}`, `field "at": "soon" is not a timestamp (want RFC 3339)`},
		{`{"at": 5}`, `field "at": want timestamp, got JSON number`},
		{`{"score": 1e999}`, `field "score": "1e999" is out of range for a float`},
		{`{"id": 1, "id": 2}`, `field "id" appears twice`},
		{"{\"name\": \"a\x01\"}", "invalid JSON: control character in string at byte 12"},
		{"{\"name\": \"\xff\"}", "invalid UTF-8 at byte 11"},
		{`{"name": "\x"}`, "invalid JSON: bad escape at byte 11"},
		{`{"name": "open`, "invalid JSON: unterminated string"},
		{`{"name": tru}`, "invalid JSON: bad literal at byte 10"},
		{`{"x": ` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, "invalid JSON: nested deeper than 512 levels"},
	}
	var content strings.Builder
	content.WriteString(`{"id": 0}` + "\n")
	for _, l := range lines {
		content.WriteString(l.line + "\n")
	}
	content.WriteString(`{"id": 100}` + "\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(path, []byte(content.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	q := &quarantine{}
	src, err := OpenSource(context.Background(), decodeConfig(t, "path: in.jsonl\nschema: {id: int, name: string, score: float, ok: bool, at: timestamp}"), testEnv(dir, q))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, pos := readAll(t, src)
	if diff := cmp.Diff([]int64{1, int64(len(lines) + 2)}, pos); diff != "" {
		t.Errorf("good rows at (-want +got):\n%s (rows %v)", diff, rows)
	}
	var want []data.Reject
	for i, l := range lines {
		want = append(want, data.Reject{Pos: path + ":" + strconv.Itoa(i+2), Reason: l.reason, Raw: l.line})
	}
	if diff := cmp.Diff(want, q.rejs); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
}

func TestInferSkipsBadFirstLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte("oops\n{}\n{\"a\":true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := &quarantine{}
	src, err := OpenSource(context.Background(), &Config{Path: "in.jsonl"}, testEnv(dir, q))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, pos := readAll(t, src)
	if diff := cmp.Diff([]row{{true}}, rows); diff != "" || pos[0] != 3 {
		t.Errorf("rows (-want +got):\n%s at %v", diff, pos)
	}
	reasons := []string{q.rejs[0].Reason, q.rejs[1].Reason}
	if diff := cmp.Diff([]string{"not a JSON object", "no fields to infer the schema from"}, reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty.jsonl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, want string }{
		{"missing file", "nope.jsonl", "jsonl: opening " + filepath.Join(dir, "nope.jsonl") + ": open "},
		{"nothing to infer from", "empty.jsonl", "jsonl: " + filepath.Join(dir, "empty.jsonl") + ": no record to infer the schema from; declare schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := OpenSource(context.Background(), &Config{Path: tt.path}, testEnv(dir, &quarantine{}))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, config, want string }{
		{"no path", "batch_size: 3", "path: required"},
		{"negative batch", "path: a\nbatch_size: -2", "batch_size: must not be negative, got -2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewConfig()
			if err := yaml.Unmarshal([]byte(tt.config), c); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err == nil || err.Error() != tt.want {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

var allTypes = data.MustSchema(
	data.Field{Name: "s", Type: data.String}, data.Field{Name: "i", Type: data.Int},
	data.Field{Name: "f", Type: data.Float}, data.Field{Name: "b", Type: data.Bool},
	data.Field{Name: "t", Type: data.Timestamp},
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ts := time.Date(2023, 12, 31, 23, 59, 59, 999999000, time.UTC)
	rows := []row{
		{"plain", int64(math.MaxInt64), 3.25, true, ts},
		{"quote \" backslash \\ nl \n tab \t ctl \x01 \u2028 ü 😀", int64(math.MinInt64), -1e300, false, ts.In(time.FixedZone("x", 3600))},
		{"", int64(0), 1e21, true, time.Unix(0, 0).UTC()},
		{nil, nil, nil, nil, nil},
	}
	dir := t.TempDir()
	sink, err := OpenSink(context.Background(), &Config{Path: "out/d.jsonl"}, allTypes, testEnv(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range [][]row{rows[:1], rows[1:]} {
		if err := sink.Write(context.Background(), batchOf(allTypes, part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "out/d.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("line %d is not valid JSON: %s", i+1, l)
		}
	}
	if first := strings.SplitN(string(raw), "\n", 2)[0]; first != `{"s":"plain","i":9223372036854775807,"f":3.25,"b":true,"t":"2023-12-31T23:59:59.999999Z"}` {
		t.Errorf("first line = %s", first)
	}
	cfg := &Config{Path: "out/d.jsonl", Schema: fileio.Columns(allTypes.Fields)}
	src, err := OpenSource(context.Background(), cfg, testEnv(dir, &quarantine{}))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, _ := readAll(t, src)
	want := append([]row(nil), rows...)
	want[1] = append(row(nil), rows[1]...)
	want[1][4] = ts.UTC()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestEncodeEdgeCases(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(data.Field{Name: "k\"ey", Type: data.String}, data.Field{Name: "f", Type: data.Float})
	tests := []struct {
		name string
		rows []row
		want string
	}{
		{"invalid UTF-8", []row{{"a\xffb", 1.0}}, `{"k\"ey":"a\ufffdb","f":1}`},
		{"NaN and Inf are null", []row{{"x", math.NaN()}, {"y", math.Inf(-1)}}, `{"k\"ey":"x","f":null}` + "\n" + `{"k\"ey":"y","f":null}`},
		{"control characters", []row{{"\x00\x1f\r", 0.5}}, `{"k\"ey":"\u0000\u001f\r","f":0.5}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := batchOf(schema, tt.rows)
			var out []byte
			s := newEncoder(nil, schema)
			for r := 0; r < b.Len; r++ {
				out = appendRow(out, s.keys, b, r)
			}
			if got := strings.TrimSuffix(string(out), "\n"); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSinkAtomic(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(data.Field{Name: "v", Type: data.Int})
	for _, commit := range []bool{true, false} {
		t.Run(map[bool]string{true: "commit", false: "abort"}[commit], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sink, err := OpenSink(context.Background(), &Config{Path: "sub/out.jsonl"}, schema, testEnv(dir, nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.Write(context.Background(), batchOf(schema, []row{{int64(1)}})); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "sub/out.jsonl")); !os.IsNotExist(err) {
				t.Fatalf("visible before commit: %v", err)
			}
			if commit {
				err = sink.Commit(context.Background())
			} else {
				err = sink.Abort()
			}
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			var want []string
			if commit {
				want = []string{"out.jsonl"}
				if b, _ := os.ReadFile(filepath.Join(dir, "sub/out.jsonl")); string(b) != "{\"v\":1}\n" {
					t.Errorf("content %q", b)
				}
			}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	c, ok := data.Builtin.Lookup("jsonl")
	if !ok || c.OpenSource == nil || c.OpenSink == nil {
		t.Fatal("jsonl not registered as source and sink")
	}
	if _, ok := c.Config().(*Config); !ok {
		t.Errorf("Config() = %T", c.Config())
	}
}
