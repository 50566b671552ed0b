package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/datatest"
)

var allTypes = data.MustSchema(
	data.Field{Name: "s", Type: data.String}, data.Field{Name: "i", Type: data.Int},
	data.Field{Name: "f", Type: data.Float}, data.Field{Name: "b", Type: data.Bool},
	data.Field{Name: "t", Type: data.Timestamp},
)

// row and readAll are the shared data test helpers.
type row = datatest.Row

func readAll(t testing.TB, src data.Source) []row {
	t.Helper()
	rows, _ := datatest.ReadAll(t, src)
	return rows
}

func batchOf(s *data.Schema, rows []row) *data.Batch { return datatest.BatchOf(s, rows) }

// write creates an artifact from the batches and returns its Info.
func write(t testing.TB, path string, schema *data.Schema, opts Options, batches ...[]row) Info {
	t.Helper()
	w, err := Create(path, schema, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range batches {
		if err := w.Write(context.Background(), batchOf(schema, rows)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w.Info()
}

var sample = [][]row{
	{
		{"plain", int64(math.MaxInt64), 3.25, true, time.Date(2023, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{nil, int64(math.MinInt64), math.Inf(-1), false, nil},
	},
	{},
	{
		{"ü 😀 \x00", nil, nil, nil, time.Unix(0, 0).UTC()},
		{"", int64(0), -0.5, true, time.Date(1900, 1, 1, 0, 0, 0, 1000, time.UTC)},
		{nil, nil, nil, nil, nil},
	},
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	xor := func(b []byte) {
		for i := range b {
			b[i] ^= 0x5a
		}
	}
	wrapped := Options{
		Wrap:   func(w io.Writer) (io.WriteCloser, error) { return &xorWriter{w: w, f: xor}, nil },
		Unwrap: func(r io.Reader) (io.Reader, error) { return &xorReader{r: r, f: xor}, nil },
	}
	for name, opts := range map[string]Options{"plain": {}, "wrapped": wrapped} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "runs", "r1", "out.arrow")
			info := write(t, path, allTypes, opts, sample...)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(raw)
			plainBytes := bytes.Clone(raw)
			if name == "wrapped" {
				xor(plainBytes)
			}
			plainSum := sha256.Sum256(plainBytes)
			wantInfo := Info{
				Rows: 5, Bytes: int64(len(raw)), SHA256: hex.EncodeToString(sum[:]),
				PlainSHA256: hex.EncodeToString(plainSum[:]), Schema: EncodeSchema(allTypes),
			}
			if diff := cmp.Diff(wantInfo, info); diff != "" {
				t.Errorf("info (-want +got):\n%s", diff)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
				t.Errorf("file mode %v", st.Mode())
			}
			if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
				t.Errorf("dir mode %v", st.Mode())
			}
			if name == "wrapped" && bytes.Contains(raw, []byte("plain")) {
				t.Errorf("wrapper bypassed: plaintext on disk")
			}
			opts.PlainSHA256 = info.PlainSHA256
			r, err := Open(path, info.SHA256, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Schema().String() != allTypes.String() {
				t.Errorf("schema %s", r.Schema())
			}
			var want []row
			for _, b := range sample {
				want = append(want, b...)
			}
			if diff := cmp.Diff(want, readAll(t, r)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

type xorWriter struct {
	w   io.Writer
	f   func([]byte)
	buf []byte
}

func (x *xorWriter) Write(p []byte) (int, error) {
	x.buf = append(x.buf[:0], p...)
	x.f(x.buf)
	return x.w.Write(x.buf)
}
func (x *xorWriter) Close() error { return nil }

type xorReader struct {
	r io.Reader
	f func([]byte)
}

func (x *xorReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	x.f(p[:n])
	return n, err
}

func TestSchemaRoundTrip(t *testing.T) {
	t.Parallel()
	enc := EncodeSchema(allTypes)
	if want := `[{"name":"s","type":"string"},{"name":"i","type":"int"},{"name":"f","type":"float"},{"name":"b","type":"bool"},{"name":"t","type":"timestamp"}]`; enc != want {
		t.Errorf("EncodeSchema = %s", enc)
	}
	got, err := DecodeSchema(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != allTypes.String() {
		t.Errorf("DecodeSchema = %s", got)
	}
	for _, bad := range []struct{ in, want string }{
		{`{`, "decoding schema: unexpected end of JSON input"},
		{`[{"name":"a","type":"blob"}]`, `decoding schema: field "a": unknown type "blob"`},
		{`[{"name":"a","type":"int"},{"name":"a","type":"int"}]`, `decoding schema: field "a": duplicate name`},
	} {
		if _, err := DecodeSchema(bad.in); err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("DecodeSchema(%s) = %v, want %q", bad.in, err, bad.want)
		}
	}
}

func TestIntegrity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.arrow")
	infoA := write(t, a, allTypes, Options{}, sample...)
	infoB := write(t, filepath.Join(dir, "b.arrow"), allTypes, Options{}, sample[0])
	raw, _ := os.ReadFile(a)
	tests := []struct {
		name  string
		bytes func() []byte
	}{
		{"flipped byte", func() []byte { b := bytes.Clone(raw); b[len(b)/2] ^= 1; return b }},
		{"truncated", func() []byte { return raw[:len(raw)-9] }},
		{"empty", func() []byte { return nil }},
		{"swapped with another artifact", func() []byte { b, _ := os.ReadFile(filepath.Join(dir, "b.arrow")); return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "x.arrow")
			if err := os.WriteFile(p, tt.bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Open(p, infoA.SHA256, Options{})
			if !errors.Is(err, ErrIntegrity) {
				if r != nil {
					r.Close()
				}
				t.Fatalf("Open = %v, want ErrIntegrity", err)
			}
			for _, part := range []string{p, infoA.SHA256} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %q", err, part)
				}
			}
		})
	}
	if infoA.SHA256 == infoB.SHA256 {
		t.Fatal("two different artifacts with one digest")
	}
	t.Run("bad expected digest", func(t *testing.T) {
		t.Parallel()
		if _, err := Open(a, "", Options{}); err == nil || !strings.Contains(err.Error(), "is not a hex SHA-256") {
			t.Errorf("Open = %v", err)
		}
	})
}

func TestBadContentWithGoodDigest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.arrow")
	info := write(t, good, allTypes, Options{}, sample...)
	raw, _ := os.ReadFile(good)
	tests := map[string][]byte{
		"garbage":            []byte("this is not an arrow stream at all"),
		"truncated stream":   raw[:len(raw)*2/3],
		"corrupted body":     corrupt(raw),
		"schema only prefix": raw[:200],
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "x.arrow")
			if err := os.WriteFile(p, content, 0o600); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(content)
			r, err := Open(p, hex.EncodeToString(sum[:]), Options{})
			if err == nil {
				defer r.Close()
				for err == nil {
					_, err = r.Next(context.Background())
				}
				if errors.Is(err, data.ErrEndOfInput) && name != "corrupted body" {
					t.Fatalf("read %s to the end without error", name)
				}
			}
			if errors.Is(err, ErrIntegrity) {
				t.Errorf("digest matched, yet ErrIntegrity: %v", err)
			}
			if err != nil && !errors.Is(err, data.ErrEndOfInput) && !strings.Contains(err.Error(), "artifact "+p) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	_ = info
}

// corrupt overwrites the middle of the record data, keeping the framing.
func corrupt(raw []byte) []byte {
	b := bytes.Clone(raw)
	for i := len(b) / 2; i < len(b)/2+64 && i < len(b); i++ {
		b[i] = 0xff
	}
	return b
}

func TestAbort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "out.arrow"), allTypes, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), batchOf(allTypes, sample[0])); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	if err := w.Commit(context.Background()); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if (w.Info() != Info{}) {
		t.Errorf("Info after Abort = %+v", w.Info())
	}
}

func TestWriteSchemaMismatch(t *testing.T) {
	t.Parallel()
	w, err := Create(filepath.Join(t.TempDir(), "out.arrow"), allTypes, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	other := data.MustSchema(data.Field{Name: "x", Type: data.Int})
	if err := w.Write(context.Background(), batchOf(other, []row{{int64(1)}})); err == nil || !strings.Contains(err.Error(), "batch has 1 columns, sink was opened for 5") {
		t.Errorf("Write = %v", err)
	}
}

// TestPlainDigestChecked: a stream whose plaintext does not match the
// recorded digest fails at its end with ErrIntegrity, even when the file's
// own digest matches (a wrapper that decrypts to something else).
func TestPlainDigestChecked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.arrow")
	info := write(t, path, allTypes, Options{}, sample...)
	r, err := Open(path, info.SHA256, Options{PlainSHA256: strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		_, err := r.Next(context.Background())
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("end of stream: %v, want ErrIntegrity", err)
		}
		break
	}
	if _, err := Open(path, info.SHA256, Options{PlainSHA256: "nothex"}); err == nil {
		t.Error("a malformed expected digest was accepted")
	}
}
