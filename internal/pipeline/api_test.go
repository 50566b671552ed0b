package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	vars := Vars{LogicalDate: "2024-05-01", RunID: "r1", Pipeline: "p", Namespace: "ns", Task: "t",
		Params: map[string]string{"table": "customers", "max-rows": "10"}}
	tests := []struct {
		name, tmpl, want, wantErr string
	}{
		{name: "plain", tmpl: "no templates here", want: "no templates here"},
		{name: "vars", tmpl: "{{ .Namespace }}/{{ .Pipeline }}/{{ .Task }}/{{ .RunID }}/{{ .LogicalDate }}", want: "ns/p/t/r1/2024-05-01"},
		{name: "param", tmpl: "out/{{ .Params.table }}.csv", want: "out/customers.csv"},
		{name: "dashed param", tmpl: `{{ index .Params "max-rows" }}`, want: "10"},
		{name: "value not reinterpreted", tmpl: "{{ .Params.table }}", want: "customers"},
		{name: "missing param", tmpl: "{{ .Params.nope }}", wantErr: `map has no entry for key "nope"`},
		{name: "bad syntax", tmpl: "{{ .RunID", wantErr: "unclosed action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Expand(tt.tmpl, vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Expand(%q) error = %v, want one containing %q", tt.tmpl, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Expand(%q): %v", tt.tmpl, err)
			}
			if got != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.tmpl, got, tt.want)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	t.Parallel()
	got := Environ(Vars{LogicalDate: "2024-05-01", RunID: "r1", Pipeline: "p", Namespace: "ns", Task: "t",
		Params: map[string]string{"table": "x; rm -rf /", "max-rows": "10"}})
	want := []string{
		"SLUICE_LOGICAL_DATE=2024-05-01", "SLUICE_NAMESPACE=ns", "SLUICE_PARAM_MAX_ROWS=10",
		"SLUICE_PARAM_TABLE=x; rm -rf /", "SLUICE_PIPELINE=p", "SLUICE_RUN_ID=r1", "SLUICE_TASK=t",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Environ (-want +got):\n%s", diff)
	}
}

func TestResolveParams(t *testing.T) {
	t.Parallel()
	p := &Pipeline{Params: []Param{
		{Name: "day", Type: ParamDate, Required: true},
		{Name: "limit", Type: ParamInt, Default: "100"},
		{Name: "ratio", Type: ParamFloat},
		{Name: "dry", Type: ParamBool, Default: "false"},
		{Name: "table", Type: ParamString, Default: "customers"},
	}}
	tests := []struct {
		name    string
		given   map[string]string
		want    map[string]string
		wantErr []string
	}{
		{
			name:  "defaults",
			given: map[string]string{"day": "2024-05-01"},
			want:  map[string]string{"day": "2024-05-01", "limit": "100", "ratio": "0", "dry": "false", "table": "customers"},
		},
		{
			name:  "given and normalised",
			given: map[string]string{"day": "2024-02-29", "limit": "007", "ratio": "1.5", "dry": "TRUE", "table": ""},
			want:  map[string]string{"day": "2024-02-29", "limit": "7", "ratio": "1.5", "dry": "true", "table": ""},
		},
		{name: "required missing", given: map[string]string{}, wantErr: []string{`param "day" is required (set it with -p day=<date>)`}},
		{name: "unknown", given: map[string]string{"day": "2024-05-01", "tabel": "x"}, wantErr: []string{`unknown param "tabel" (declared: day, dry, limit, ratio, table)`}},
		{
			name:  "bad types all reported",
			given: map[string]string{"day": "2024-13-01", "limit": "1.5", "ratio": "NaN", "dry": "yes"},
			wantErr: []string{
				`param "day": "2024-13-01" is not a date (want YYYY-MM-DD)`,
				`param "limit": "1.5" is not an int`,
				`param "ratio": "NaN" is not a float`,
				`param "dry": "yes" is not a bool (want true or false)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.ResolveParams(tt.given)
			if len(tt.wantErr) > 0 {
				if !errors.Is(err, ErrParams) {
					t.Fatalf("error = %v, want ErrParams", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ResolveParams (-want +got):\n%s", diff)
			}
		})
	}
}

func tasks(specs ...string) *Pipeline {
	// Each spec is "name:need,need".
	p := &Pipeline{}
	for _, s := range specs {
		name, needs, _ := strings.Cut(s, ":")
		t := &Task{Name: name}
		if needs != "" {
			t.Needs = strings.Split(needs, ",")
		}
		p.Tasks = append(p.Tasks, t)
	}
	return p
}

func names(ts []*Task) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func TestOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    *Pipeline
		want []string
	}{
		{name: "empty", p: tasks(), want: []string{}},
		{name: "file order when independent", p: tasks("c", "a", "b"), want: []string{"c", "a", "b"}},
		{name: "needs first", p: tasks("load:clean", "clean:extract", "extract"), want: []string{"extract", "clean", "load"}},
		{name: "ready tasks in file order", p: tasks("a", "x:a", "b", "y:b"), want: []string{"a", "x", "b", "y"}},
		{name: "diamond", p: tasks("join:l,r", "r:src", "l:src", "src"), want: []string{"src", "r", "l", "join"}},
		{name: "hand-built cycle kept last", p: tasks("a:b", "b:a", "c"), want: []string{"c", "a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, names(tt.p.Order())); diff != "" {
				t.Errorf("Order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDownstreamAndTask(t *testing.T) {
	t.Parallel()
	p := tasks("src", "a:src", "b", "c:b,src")
	if diff := cmp.Diff([]string{"a", "c"}, p.Downstream("src")); diff != "" {
		t.Errorf("Downstream(src) (-want +got):\n%s", diff)
	}
	if got := p.Downstream("c"); got != nil {
		t.Errorf("Downstream(c) = %v, want none", got)
	}
	if got := p.Task("b"); got == nil || got.Name != "b" {
		t.Errorf("Task(b) = %v", got)
	}
	if got := p.Task("nope"); got != nil {
		t.Errorf("Task(nope) = %v, want nil", got)
	}
}

// TestParseTyped checks what the goldens cannot show: typed configs,
// positions, Hash, Dir.
func TestParseTyped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	src := []byte(`pipeline: p
defaults: {retries: 2, timeout: 1m}
tasks:
  in:
    extract: {csv: {path: in.csv}}
  out:
    needs: in
    retries: 5
    load: {jsonl: {path: out.jsonl}}
`)
	if err := os.WriteFile(file, src, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := ParseFile(file, Options{Connectors: testRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	if p.Hash != hex.EncodeToString(sum[:]) || p.File != file || p.Dir != dir {
		t.Errorf("Hash, File, Dir = %s, %s, %s", p.Hash, p.File, p.Dir)
	}
	in, out := p.Task("in"), p.Task("out")
	cfg, ok := in.Extract.Config.(*fileConfig)
	if !ok || cfg.Path != "in.csv" || cfg.Delimiter != "," || !cfg.Header {
		t.Errorf("extract config = %#v, want *fileConfig with defaults", in.Extract.Config)
	}
	if want := (Pos{File: file, Line: 5, Col: 15}); in.Extract.Pos != want {
		t.Errorf("extract Pos = %v, want %v", in.Extract.Pos, want)
	}
	if want := (Pos{File: file, Line: 6, Col: 3}); out.Pos != want {
		t.Errorf("task Pos = %v, want %v", out.Pos, want)
	}
	if out.Input != "in" {
		t.Errorf("Input = %q, want in", out.Input)
	}
	wantIn := Policy{Retries: 2, Backoff: BackoffExponential, RetryDelay: 10 * time.Second, MaxRetryDelay: 10 * time.Minute, Jitter: true, Timeout: time.Minute}
	wantOut := wantIn
	wantOut.Retries = 5
	if diff := cmp.Diff(wantIn, in.Policy); diff != "" {
		t.Errorf("in Policy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantOut, out.Policy); diff != "" {
		t.Errorf("out Policy (-want +got):\n%s", diff)
	}
}

func TestParseFileMissing(t *testing.T) {
	t.Parallel()
	_, err := ParseFile(filepath.Join(t.TempDir(), "nope.yaml"), Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v, want os.ErrNotExist", err)
	}
}

func TestAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("pipeline: bomb\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("x" + string(rune('0'+i)) + ": &x" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*x" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("tasks:\n  t:\n    extract: {csv: {path: p, header: *x8}}\n")
	_, err := Parse("bomb.yaml", []byte(b.String()), Options{Connectors: testRegistry()})
	if err == nil || !strings.Contains(err.Error(), "too many alias expansions") {
		t.Fatalf("error = %v, want a bounded failure", err)
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	reg := testRegistry()
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("fuzz.yaml", src, Options{Connectors: reg})
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is %T with %d entries: %v", err, len(es), err)
			}
			return
		}
		if _, err := Normalize(p); err != nil {
			t.Fatalf("Normalize of a parsed pipeline: %v", err)
		}
		if got := len(p.Order()); got != len(p.Tasks) {
			t.Fatalf("Order has %d tasks, want %d", got, len(p.Tasks))
		}
	})
}
