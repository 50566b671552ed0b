package strictyaml

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

type inner struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

func (i *inner) Validate() error {
	if i.Host == "" {
		return errors.New("host is required")
	}
	return nil
}

type Base struct {
	Name string `yaml:"name"`
}

type config struct {
	Base     `yaml:",inline"`
	Path     string            `yaml:"path"`
	Limit    int8              `yaml:"limit"`
	Ratio    float64           `yaml:"ratio"`
	On       bool              `yaml:"on"`
	Timeout  time.Duration     `yaml:"timeout"`
	Server   *inner            `yaml:"server"`
	Replicas []inner           `yaml:"replicas"`
	Labels   map[string]string `yaml:"labels"`
	Addr     netip.Addr        `yaml:"addr"`
	Extra    any               `yaml:"extra"`
	Count    uint              `yaml:"count"`
	Ignored  string            `yaml:"-"`
}

func decode(t *testing.T, src string, v any) error {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	return Decode(&n, v)
}

func TestDecode(t *testing.T) {
	t.Parallel()
	src := `
name: n
path: data.csv
limit: 0x10
ratio: 2
on: true
timeout: 1m30s
server: {host: db, port: 5432}
replicas: [{host: a}, {host: b, port: 1}]
labels: {team: crm}
addr: 10.0.0.1
extra: [1, two]
count: 3
`
	got := config{Limit: 1}
	if err := decode(t, src, &got); err != nil {
		t.Fatal(err)
	}
	want := config{
		Base: Base{Name: "n"}, Path: "data.csv", Limit: 16, Ratio: 2, On: true, Timeout: 90 * time.Second,
		Server: &inner{Host: "db", Port: 5432}, Replicas: []inner{{Host: "a"}, {Host: "b", Port: 1}},
		Labels: map[string]string{"team": "crm"}, Addr: netip.MustParseAddr("10.0.0.1"),
		Extra: []any{1, "two"}, Count: 3,
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		want      []string
	}{
		{name: "unknown field", src: "path: x\npaht: y", want: []string{`2:1: unknown field "paht" (known: addr, count, extra, labels, limit, name, on, path, ratio, replicas, server, timeout)`}},
		{name: "nested unknown", src: "server: {host: a, prot: 1}", want: []string{`1:19: unknown field "prot" (known: host, port)`}},
		{name: "int overflow", src: "limit: 300", want: []string{`1:8: cannot use "300" as an integer`}},
		{name: "float into int", src: "limit: 1.5", want: []string{`1:8: cannot use "1.5" as an integer`}},
		{name: "negative uint", src: "count: -1", want: []string{`1:8: cannot use "-1" as an integer`}},
		{name: "string into bool", src: "on: yes", want: []string{`1:5: cannot use "yes" as a bool (true or false)`}},
		{name: "duration without unit", src: "timeout: 10", want: []string{`1:10: invalid duration "10": want a number with a unit, such as 30s, 5m or 1h30m`}},
		{name: "list for scalar", src: "path: [a]", want: []string{`1:7: want a string, got a list`}},
		{name: "scalar for struct", src: "server: db", want: []string{`1:9: want a mapping, got "db"`}},
		{name: "validate nested", src: "server: {port: 1}", want: []string{`1:9: host is required`}},
		{name: "validate in slice", src: "replicas: [{host: a}, {port: 2}]", want: []string{`1:23: host is required`}},
		{name: "text unmarshaler", src: "addr: nope", want: []string{`1:7: invalid value "nope": ParseAddr("nope"): unable to parse IP`}},
		{name: "duplicate", src: "path: a\npath: b", want: []string{`2:1: duplicate field "path" (first at line 1)`}},
		{
			name: "all reported in order",
			src:  "zzz: 1\nlimit: x\nserver: {host: a, port: b}",
			want: []string{`1:1: unknown field "zzz"`, `2:8: cannot use "x" as an integer`, `3:25: cannot use "b" as an integer`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c config
			err := decode(t, tt.src, &c)
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error = %v (%T), want Errors", err, err)
			}
			if len(es) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(es), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(es[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, es[i].Error(), w)
				}
				if es[i].Line == 0 || es[i].Col == 0 {
					t.Errorf("error %d has no position: %+v", i, es[i])
				}
			}
		})
	}
}

type validated struct {
	Path string `yaml:"path"`
}

func (v *validated) Validate() error {
	if v.Path == "" {
		return errors.New("path is required")
	}
	return nil
}

func TestDecodeNullValidates(t *testing.T) {
	t.Parallel()
	var v validated
	err := decode(t, "~", &v)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Msg != "path is required" || es[0].Line != 1 {
		t.Fatalf("error = %v, want a positioned \"path is required\"", err)
	}
	if err := Decode(nil, &validated{Path: "x"}); err != nil {
		t.Errorf("nil node with valid defaults: %v", err)
	}
}

func TestDecodeMergeKeys(t *testing.T) {
	t.Parallel()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("base: &b {host: a, port: 1}\nserver: {<<: *b, port: 2}"), &n); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Server inner `yaml:"server"`
	}
	if err := Decode(n.Content[0].Content[3], &got.Server); err != nil {
		t.Fatal(err)
	}
	if want := (inner{Host: "a", Port: 2}); got.Server != want {
		t.Errorf("got %+v, want %+v", got.Server, want)
	}
}

func TestDecodeNeedsPointer(t *testing.T) {
	t.Parallel()
	if err := Decode(&yaml.Node{}, validated{}); err == nil {
		t.Error("Decode into a non-pointer succeeded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("path: x\nserver: {host: a, port: 1}\nreplicas: [{host: b}]\ntimeout: 5s")
	f.Add("a: &a [1, 2]\nextra: [*a, *a]")
	f.Fuzz(func(t *testing.T, src string) {
		var n yaml.Node
		if yaml.Unmarshal([]byte(src), &n) != nil {
			return
		}
		var c config
		if err := Decode(&n, &c); err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
		}
	})
}
