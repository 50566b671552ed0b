package fileio

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/sluicehq/sluice/internal/data"
)

func TestGlob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{"b.csv", "a.csv", "c.txt", "sub.csv/x"} {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Glob(filepath.Join(dir, "*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	plain := filepath.Join(dir, "missing.csv")
	if got, err := Glob(plain); err != nil || len(got) != 1 || got[0] != plain {
		t.Errorf("plain path: %v %v", got, err)
	}
	pat := filepath.Join(dir, "*.json")
	if _, err := Glob(pat); err == nil || err.Error() != `path "`+pat+`" matches no file` {
		t.Errorf("error = %v", err)
	}
	if _, err := Glob(filepath.Join(dir, "[")); err == nil || !strings.Contains(err.Error(), "syntax error in pattern") {
		t.Errorf("bad pattern error = %v", err)
	}
}

func compressed(t *testing.T, c Compression, text string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := compressor(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, text); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOpenInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	text := strings.Repeat("id,name\n1,Ada\n", 5000)
	gz, zs := compressed(t, CompressionGzip, text), compressed(t, CompressionZstd, text)
	tests := []struct {
		name    string
		file    string
		content []byte
		setting Compression
		want    string // text read, or the error it must contain
		fails   bool
	}{
		{"plain", "a.csv", []byte(text), CompressionAuto, text, false},
		{"gzip by extension", "a.csv.gz", gz, CompressionAuto, text, false},
		{"zstd by extension", "a.csv.zst", zs, CompressionAuto, text, false},
		{"setting overrides extension", "a.data", gz, CompressionGzip, text, false},
		{"none reads raw bytes", "raw.gz", []byte("x"), CompressionNone, "x", false},
		{"gzip truncated", "t.csv.gz", gz[:len(gz)/2], CompressionAuto, "t.csv.gz (gzip): the file is truncated or corrupt: unexpected EOF", true},
		{"zstd truncated", "t.csv.zst", zs[:len(zs)/2], CompressionAuto, "t.csv.zst (zstd): the file is truncated or corrupt", true},
		{"not gzip", "n.csv.gz", []byte("id,name\n"), CompressionAuto, "n.csv.gz: not a valid gzip file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, tt.file)
			if err := os.WriteFile(p, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := OpenInput(p, tt.setting)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(r)
				_ = r.Close()
			}
			if tt.fails {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
					t.Errorf("error = %v, want it to name %s and contain %q", err, p, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("read %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

// lines is an Encoder writing one line per row of a single string column.
type lines struct{ w io.Writer }

func (l lines) Write(_ context.Context, b *data.Batch) error {
	for r := range b.Len {
		v := "null"
		if !b.Cols[0].IsNull(r) {
			v = b.Cols[0].Strings[r]
		}
		if _, err := io.WriteString(l.w, v+"\n"); err != nil {
			return err
		}
	}
	return nil
}
func (l lines) Close() error { return nil }

func newLines(w io.Writer, _ *data.Schema) (Encoder, error) { return lines{w}, nil }

func strBatch(vals ...string) *data.Batch {
	s := data.MustSchema(data.Field{Name: "k", Type: data.String})
	b := data.NewBatch(s, len(vals))
	for i, v := range vals {
		if v == "<null>" {
			b.Cols[0].SetNull(i, len(vals))
			v = ""
		}
		b.Cols[0].Strings = append(b.Cols[0].Strings, v)
	}
	b.Len = len(vals)
	return b
}

func listFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestPartitionedSink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := strBatch("DE", "FR", "DE", "../etc", "<null>", "", "_x", ".hidden", "a/b")
	schema := b.Schema
	s, err := OpenSink(SinkOptions{Label: "test", Path: filepath.Join(dir, "out", "k={partition}.txt"), PartitionBy: "k"}, schema, newLines)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), strBatch("FR", "FR")); err != nil { // one partition: passed whole
		t.Fatal(err)
	}
	for name := range listFiles(t, dir) {
		if !strings.Contains(name, ".tmp-") {
			t.Errorf("%s visible before commit", name)
		}
	}
	if err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"out/k=DE.txt":         "DE\nDE\n",
		"out/k=FR.txt":         "FR\nFR\nFR\n",
		"out/k=%2E.%2Fetc.txt": "../etc\n",
		"out/k=__null__.txt":   "null\n",
		"out/k=__empty__.txt":  "\n",
		"out/k=%5Fx.txt":       "_x\n",
		"out/k=%2Ehidden.txt":  ".hidden\n",
		"out/k=a%2Fb.txt":      "a/b\n",
	}
	if diff := cmp.Diff(want, listFiles(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if outs := s.Outputs(); len(outs) != len(want) {
		t.Errorf("outputs = %d", len(outs))
	}
	if o := s.Output(); o.Location != filepath.Join(dir, "out", "k={partition}.txt") || o.Bytes != 43 || len(o.SHA256) != 64 {
		t.Errorf("output = %+v", o)
	}
}

func TestPartitionCapAndAbort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := strBatch("a", "b", "c")
	s, err := OpenSink(SinkOptions{Label: "test", Path: filepath.Join(dir, "{partition}.txt"), PartitionBy: "k", MaxPartitions: 2}, b.Schema, newLines)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(context.Background(), b)
	if err == nil || err.Error() != `test: partition_by "k": more than 2 distinct values (raise max_partitions, or partition by a coarser column)` {
		t.Errorf("error = %v", err)
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := listFiles(t, dir); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
	for _, tt := range []struct {
		opts SinkOptions
		want string
	}{
		{SinkOptions{Label: "x", Path: "/o/{partition}.txt"}, "holds {partition} but partition_by is not set"},
		{SinkOptions{Label: "x", Path: "/o/a.txt", PartitionBy: "k"}, "must hold {partition}"},
		{SinkOptions{Label: "x", Path: "/o/{partition}.txt", PartitionBy: "nope"}, `no column "nope"`},
	} {
		if _, err := OpenSink(tt.opts, b.Schema, newLines); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error = %v, want %q", tt.opts, err, tt.want)
		}
	}
}

func TestCompressedSink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"o.txt.gz", "o.txt.zst"} {
		p := filepath.Join(dir, name)
		s, err := OpenSink(SinkOptions{Label: "test", Path: p}, strBatch().Schema, newLines)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), strBatch("x", "y")); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader
		if strings.HasSuffix(name, ".gz") {
			r, err = gzip.NewReader(bytes.NewReader(raw))
		} else {
			var d *zstd.Decoder
			d, err = zstd.NewReader(bytes.NewReader(raw))
			r = d
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != "x\ny\n" {
			t.Errorf("%s: content %q, %v", name, got, err)
		}
		if o := s.Output(); o.Bytes != int64(len(raw)) {
			t.Errorf("%s: output bytes %d, file %d", name, o.Bytes, len(raw))
		}
	}
}
