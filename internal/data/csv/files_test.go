package csv

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/sluicehq/sluice/internal/data"
)

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGlobSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string][]byte{
		"in/b.csv":    []byte("id,name\n3,Cy\nx,Bad\n"),
		"in/a.csv.gz": gzipped(t, "id,name\n1,Ada\n2,Bo\n"),
		"in/c.txt":    []byte("not matched"),
	}
	for n, b := range files {
		if err := os.MkdirAll(filepath.Join(dir, "in"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	q := &quarantine{}
	cfg := NewConfig()
	cfg.Path = "in/*.csv*"
	cfg.Schema = []data.Field{{Name: "id", Type: data.Int}, {Name: "name", Type: data.String}}
	src, err := OpenSource(context.Background(), cfg, testEnv(dir, q))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, pos := readAll(t, src)
	want := []row{{int64(1), "Ada"}, {int64(2), "Bo"}, {int64(3), "Cy"}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{2, 3, 2}, pos); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	wantRej := []data.Reject{{Pos: filepath.Join(dir, "in/b.csv") + ":3", Reason: `column "id": "x" is not an int`, Raw: "x,Bad"}}
	if diff := cmp.Diff(wantRej, q.rejs); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
}

func TestGlobErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for n, s := range map[string]string{"a.csv": "id,name\n1,x\n", "b.csv": "id,nom\n2,y\n"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "t.csv.gz"), gzipped(t, "id\n"+strings.Repeat("12345\n", 20000))[:200], 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{"*.csv", filepath.Join(dir, "b.csv") + ": schema (id:string, nom:string) differs from that of " + filepath.Join(dir, "a.csv")},
		{"*.tsv", `csv: path "` + filepath.Join(dir, "*.tsv") + `" matches no file`},
	}
	for _, tt := range tests {
		cfg := NewConfig()
		cfg.Path = tt.path
		_, err := OpenSource(context.Background(), cfg, testEnv(dir, &quarantine{}))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.path, err, tt.want)
		}
	}
	cfg := NewConfig()
	cfg.Path = "t.csv.gz"
	src, err := OpenSource(context.Background(), cfg, testEnv(dir, &quarantine{}))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for err == nil {
		_, err = src.Next(context.Background())
	}
	if want := filepath.Join(dir, "t.csv.gz") + " (gzip): the file is truncated or corrupt: unexpected EOF"; !strings.Contains(err.Error(), want) {
		t.Errorf("truncated gzip: error = %v, want %q", err, want)
	}
}

func TestPartitionedCompressedSink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	schema := data.MustSchema(data.Field{Name: "country", Type: data.String}, data.Field{Name: "n", Type: data.Int})
	cfg := NewConfig()
	cfg.Path = "out/{partition}.csv.gz"
	cfg.PartitionBy = "country"
	sink, err := OpenSink(context.Background(), cfg, schema, testEnv(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(context.Background(), batchOf(schema, []row{{"DE", int64(1)}, {"FR", int64(2)}, {"DE", int64(3)}})); err != nil {
		t.Fatal(err)
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for country, want := range map[string][]row{"DE": {{"DE", int64(1)}, {"DE", int64(3)}}, "FR": {{"FR", int64(2)}}} {
		rc := NewConfig()
		rc.Path = "out/" + country + ".csv.gz"
		rc.Schema = schemaCols(schema)
		src, err := OpenSource(context.Background(), rc, testEnv(dir, &quarantine{}))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := readAll(t, src)
		src.Close()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", country, diff)
		}
	}
}
