package parquet

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/datatest"
)

type noQuarantine struct{ t testing.TB }

func (q noQuarantine) Reject(_ context.Context, r data.Reject) error {
	q.t.Errorf("unexpected reject: %+v", r)
	return nil
}

func testEnv(t testing.TB, dir string) data.Env {
	return data.Env{Dir: dir, Expand: func(s string) (string, error) { return s, nil }, Quarantine: noQuarantine{t}, BatchSize: 7}
}

// row and readAll are the shared data test helpers.
type row = datatest.Row

func readAll(t testing.TB, src data.Source) []row {
	t.Helper()
	rows, _ := datatest.ReadAll(t, src)
	return rows
}

func batchOf(s *data.Schema, rows []row) *data.Batch { return datatest.BatchOf(s, rows) }

var allTypes = data.MustSchema(
	data.Field{Name: "s", Type: data.String}, data.Field{Name: "i", Type: data.Int},
	data.Field{Name: "f", Type: data.Float}, data.Field{Name: "b", Type: data.Bool},
	data.Field{Name: "t", Type: data.Timestamp},
)

// sample returns n rows covering every type, edge values and nulls.
func sample(n int) []row {
	base := time.Date(2024, 5, 1, 10, 30, 0, 123456000, time.UTC)
	var rows []row
	for k := range n {
		r := row{"v" + strings.Repeat("é", k%4), int64(k) * -7, float64(k) / 3, k%2 == 0, base.Add(time.Duration(k) * time.Hour)}
		if k%5 == 1 {
			r[k%len(r)] = nil
		}
		rows = append(rows, r)
	}
	rows = append(rows, row{"", int64(math.MinInt64), math.Inf(-1), false, time.Date(1901, 1, 1, 0, 0, 0, 1000, time.UTC)})
	rows = append(rows, row{nil, nil, nil, nil, nil})
	return rows
}

func writeFile(t testing.TB, dir string, cfg *Config, schema *data.Schema, batches ...*data.Batch) {
	t.Helper()
	sink, err := OpenSink(context.Background(), cfg, schema, testEnv(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := sink.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, comp := range []string{"", "snappy", "gzip", "none"} {
		t.Run("compression="+comp, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			rows := sample(40)
			// Batches of 13 and 29 rows against row groups of 10: row
			// groups cut inside batches, batches cut across row groups.
			writeFile(t, dir, &Config{Path: "out.parquet", Compression: comp, RowGroupSize: 10}, allTypes,
				batchOf(allTypes, rows[:13]), batchOf(allTypes, rows[13:]))

			f, err := os.Open(filepath.Join(dir, "out.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			pf, err := pq.OpenFile(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			if got := len(pf.RowGroups()); got != 5 {
				t.Errorf("row groups = %d, want 5", got)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v", st.Mode())
			}

			src, err := OpenSource(context.Background(), &Config{Path: "out.parquet"}, testEnv(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if diff := cmp.Diff(allTypes.Fields, src.Schema().Fields); diff != "" {
				t.Errorf("schema (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(rows, readAll(t, src)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFileSchema checks the file sluice writes as any Parquet reader sees
// it: column order kept, all optional, timestamps TIMESTAMP(MICROS, UTC),
// the codec asked for.
func TestFileSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, &Config{Path: "x.parquet"}, allTypes, batchOf(allTypes, sample(3)))
	b, err := os.ReadFile(filepath.Join(dir, "x.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	pf, err := pq.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range pf.Schema().Fields() {
		names = append(names, f.Name())
		if !f.Optional() {
			t.Errorf("column %s is not optional", f.Name())
		}
	}
	if diff := cmp.Diff([]string{"s", "i", "f", "b", "t"}, names); diff != "" {
		t.Errorf("column order (-want +got):\n%s", diff)
	}
	ts, ok := pf.Schema().Fields()[4].Type().LogicalType().Value.(*format.TimestampType)
	if !ok || !ts.IsAdjustedToUTC {
		t.Fatalf("t logical type = %v", pf.Schema().Fields()[4].Type().LogicalType())
	}
	if _, ok := ts.Unit.Value.(*format.MicroSeconds); !ok {
		t.Errorf("timestamp unit = %v", ts.Unit)
	}
	if got := pf.Metadata().RowGroups[0].Columns[0].MetaData.Codec; got != format.Zstd {
		t.Errorf("codec = %v, want zstd", got)
	}
	if pf.NumRows() != 5 {
		t.Errorf("rows = %d", pf.NumRows())
	}
}

// foreign is written by parquet-go's own struct writer, with the types
// other tools produce: int32, float32, DATE, TIMESTAMP(MILLIS), required
// and optional columns.
type foreign struct {
	ID    int32     `parquet:"id"`
	Score float32   `parquet:"score"`
	Day   int32     `parquet:"day,date"`
	At    time.Time `parquet:"at,timestamp(millisecond)"`
	Name  *string   `parquet:"name,optional"`
	Big   int64     `parquet:"big"`
}

func TestReadForeignFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := "Ada"
	at := time.Date(2024, 5, 1, 10, 30, 0, 5_000_000, time.UTC)
	var buf bytes.Buffer
	w := pq.NewGenericWriter[foreign](&buf)
	if _, err := w.Write([]foreign{{ID: 1, Score: 0.5, Day: 19844, At: at, Name: &name, Big: 1 << 40}, {ID: -2, Score: 2, Day: 0, At: at, Big: -1}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.parquet"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(context.Background(), &Config{Path: "f.parquet", Columns: []string{"name", "id", "day", "at", "score", "big"}}, testEnv(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	wantSchema := []data.Field{{Name: "name", Type: data.String}, {Name: "id", Type: data.Int}, {Name: "day", Type: data.Timestamp},
		{Name: "at", Type: data.Timestamp}, {Name: "score", Type: data.Float}, {Name: "big", Type: data.Int}}
	if diff := cmp.Diff(wantSchema, src.Schema().Fields); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}
	want := []row{
		{"Ada", int64(1), time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), at, 0.5, int64(1 << 40)},
		{nil, int64(-2), time.Unix(0, 0).UTC(), at, 2.0, int64(-1)},
	}
	if diff := cmp.Diff(want, readAll(t, src)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, &Config{Path: "good.parquet"}, allTypes, batchOf(allTypes, sample(50)))
	good, err := os.ReadFile(filepath.Join(dir, "good.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"truncated.parquet": good[:len(good)/2],
		"csv.parquet":       []byte("a,b\n1,2\n"),
		"empty.parquet":     nil,
		"tail.parquet":      good[:len(good)-3],
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := OpenSource(context.Background(), &Config{Path: name}, testEnv(t, dir))
			if err == nil {
				src.Close()
				t.Fatal("no error")
			}
			if want := filepath.Join(dir, name) + ": not a readable Parquet file"; !strings.Contains(err.Error(), want) {
				t.Errorf("error = %v, want it to contain %q", err, want)
			}
		})
	}
	t.Run("unknown column", func(t *testing.T) {
		t.Parallel()
		_, err := OpenSource(context.Background(), &Config{Path: "good.parquet", Columns: []string{"nope"}}, testEnv(t, dir))
		if err == nil || !strings.Contains(err.Error(), `good.parquet: column "nope": not in the file`) {
			t.Errorf("error = %v", err)
		}
	})
}

// TestCorruptPage damages the data of a column chunk while keeping the
// footer intact: the error comes from Next and names file, row group and
// column.
func TestCorruptPage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	schema := data.MustSchema(data.Field{Name: "s", Type: data.String})
	var rows []row
	for k := range 200 {
		rows = append(rows, row{strings.Repeat("x", k)})
	}
	writeFile(t, dir, &Config{Path: "c.parquet"}, schema, batchOf(schema, rows))
	path := filepath.Join(dir, "c.parquet")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := pq.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	md := pf.Metadata().RowGroups[0].Columns[0].MetaData
	for i := md.DataPageOffset + 4; i < md.DataPageOffset+md.TotalCompressedSize; i++ {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(context.Background(), &Config{Path: "c.parquet"}, testEnv(t, dir))
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error = %v", err)
		}
		return
	}
	defer src.Close()
	for {
		_, err = src.Next(context.Background())
		if err != nil {
			break
		}
	}
	if errors.Is(err, data.ErrEndOfInput) || !strings.Contains(err.Error(), path+`: row group 1, column "s"`) {
		t.Errorf("error = %v", err)
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  *Config
		sink bool
		want string
	}{
		{"no path", &Config{}, false, "parquet: path: required"},
		{"bad codec", &Config{Path: "x", Compression: "lzma"}, true, `compression: unknown "lzma"`},
		{"codec on source", &Config{Path: "x", Compression: "zstd"}, false, "compression: apply only to writing"},
		{"columns on sink", &Config{Path: "x", Columns: []string{"a"}}, true, "columns: applies only to reading"},
		{"glob matches nothing", &Config{Path: "none-*.parquet"}, false, `matches no file`},
		{"negative row groups", &Config{Path: "x", RowGroupSize: -1}, true, "row_group_size: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.sink {
				_, err = OpenSink(context.Background(), tt.cfg, allTypes, testEnv(t, dir))
			} else {
				_, err = OpenSource(context.Background(), tt.cfg, testEnv(t, dir))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestGlobAndPartitions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rows := []row{
		{"DE", int64(1), 1.0, true, time.Unix(0, 0).UTC()},
		{"FR", int64(2), 2.0, false, time.Unix(0, 0).UTC()},
		{"DE", int64(3), 3.0, true, time.Unix(0, 0).UTC()},
	}
	writeFile(t, dir, &Config{Path: "lake/country={partition}/part.parquet", PartitionBy: "s"}, allTypes, batchOf(allTypes, rows))
	src, err := OpenSource(context.Background(), &Config{Path: "lake/*/part.parquet"}, testEnv(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want := []row{rows[0], rows[2], rows[1]} // DE before FR, lexical
	if diff := cmp.Diff(want, readAll(t, src)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	other := data.MustSchema(data.Field{Name: "s", Type: data.String})
	writeFile(t, dir, &Config{Path: "lake/country=XX/part.parquet"}, other, batchOf(other, []row{{"XX"}}))
	_, err = OpenSource(context.Background(), &Config{Path: "lake/*/part.parquet"}, testEnv(t, dir))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "lake/country=XX/part.parquet")+": schema (s:string) differs") {
		t.Errorf("error = %v", err)
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	c, ok := data.Builtin.Lookup(Name)
	if !ok || c.OpenSource == nil || c.OpenSink == nil {
		t.Fatal("parquet not registered as source and sink")
	}
	if _, ok := c.Config().(*Config); !ok {
		t.Errorf("config = %T", c.Config())
	}
}
