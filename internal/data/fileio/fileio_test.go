package fileio

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"go.yaml.in/yaml/v3"
)

func TestParseTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2024, 5, 1, 10, 30, 0, 123456000, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2024-05-01T10:30:00.123456789Z", want, true},
		{"2024-05-01T12:30:00.123456+02:00", want, true},
		{"2024-05-01 10:30:00.123456", want, true},
		{"2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), true},
		{"2024-13-01", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseTime(tt.in)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("ParseTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
	if got := string(AppendTime(nil, want.In(time.FixedZone("x", 7200)))); got != "2024-05-01T10:30:00.123456Z" {
		t.Errorf("AppendTime = %s", got)
	}
}

func TestColumnsKeepOrder(t *testing.T) {
	t.Parallel()
	var c struct {
		Schema Columns `yaml:"schema"`
	}
	if err := yaml.Unmarshal([]byte("schema:\n  z: int\n  a: string\n  m: timestamp\n"), &c); err != nil {
		t.Fatal(err)
	}
	want := Columns{{Name: "z", Type: data.Int}, {Name: "a", Type: data.String}, {Name: "m", Type: data.Timestamp}}
	if diff := cmp.Diff(want, c.Schema, cmp.AllowUnexported(data.Schema{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []struct{ in, want string }{
		{"schema: [a, b]", "schema: want a mapping of column name to type, at line 1"},
		{"schema: {a: int, a: string}", `schema: line 1: column "a" declared twice`},
	} {
		err := yaml.Unmarshal([]byte(bad.in), &c)
		if err == nil || err.Error() != bad.want {
			t.Errorf("%s: error = %v, want %q", bad.in, err, bad.want)
		}
	}
}

func TestResolvePath(t *testing.T) {
	t.Parallel()
	env := data.Env{Dir: "/pipelines/crm", Expand: func(s string) (string, error) {
		if s == "bad" {
			return "", errors.New("no such param")
		}
		return s, nil
	}}
	for in, want := range map[string]string{"in/a.csv": "/pipelines/crm/in/a.csv", "/abs/a.csv": "/abs/a.csv", "../x.csv": "/pipelines/x.csv"} {
		if got, err := ResolvePath(env, in); err != nil || got != filepath.FromSlash(want) {
			t.Errorf("ResolvePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ResolvePath(env, "bad"); err == nil || err.Error() != `expanding path "bad": no such param` {
		t.Errorf("error = %v", err)
	}
}

func TestAtomicFileOutputDigest(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "out.txt")
	af, err := CreateAtomic(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []string{"hello ", "atomic ", "world\n"} {
		if _, err := af.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := af.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	want := data.Output{Location: path, Bytes: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
	if got := af.Output(); got != want {
		t.Errorf("Output() = %+v, want %+v", got, want)
	}
}

func TestAppendTimeMatchesFormat(t *testing.T) {
	t.Parallel()
	times := []time.Time{
		time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", -3600)),
		time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 500000000, time.UTC),
		time.Unix(0, 0),
	}
	for i := range 2000 {
		times = append(times, time.Unix(int64(i)*7919*86399, int64(i)*123457%1e9))
	}
	for _, tm := range times {
		want := tm.UTC().Format(time.RFC3339Nano)
		if got := string(AppendTime(nil, tm)); got != want {
			t.Errorf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}
