package parquet

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/csv"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

const benchRows = 1_000_000

var benchSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int}, data.Field{Name: "name", Type: data.String},
	data.Field{Name: "email", Type: data.String}, data.Field{Name: "country", Type: data.String},
	data.Field{Name: "signed_up", Type: data.Timestamp}, data.Field{Name: "score", Type: data.Float},
	data.Field{Name: "active", Type: data.Bool},
)

func customers(from, n int) *data.Batch {
	b := data.NewBatch(benchSchema, n)
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for r := range n {
		id := from + r
		b.Cols[0].Ints = append(b.Cols[0].Ints, int64(id))
		b.Cols[1].Strings = append(b.Cols[1].Strings, []string{"Ada", "Grace", "Alan", "Edsger"}[id%4])
		b.Cols[2].Strings = append(b.Cols[2].Strings, fmt.Sprintf("user%d@example.com", id))
		b.Cols[3].Strings = append(b.Cols[3].Strings, []string{"DE", "FR", "US", "BR", "CH"}[id%5])
		b.Cols[4].Times = append(b.Cols[4].Times, base.Add(time.Duration(id)*time.Minute))
		b.Cols[5].Floats = append(b.Cols[5].Floats, float64(id%1000)/7)
		b.Cols[6].Bools = append(b.Cols[6].Bools, id%3 == 0)
	}
	b.Len = n
	return b
}

func benchEnv(dir string) data.Env {
	return data.Env{Dir: dir, Expand: func(s string) (string, error) { return s, nil }, Quarantine: nil, BatchSize: data.DefaultBatchSize}
}

func drain(b *testing.B, src data.Source, sink data.Sink) int {
	n := 0
	for {
		bt, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n += bt.Len
		if sink != nil {
			if err := sink.Write(context.Background(), bt); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func writeInput(b *testing.B, dir string, open func(context.Context, any, *data.Schema, data.Env) (data.Sink, error), cfg any) {
	b.Helper()
	sink, err := open(context.Background(), cfg, benchSchema, benchEnv(dir))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchRows; i += 4096 {
		if err := sink.Write(context.Background(), customers(i, min(4096, benchRows-i))); err != nil {
			b.Fatal(err)
		}
	}
	if err := sink.Commit(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCSVToParquet converts a million-record CSV file to Parquet.
func BenchmarkCSVToParquet(b *testing.B) {
	dir := b.TempDir()
	writeInput(b, dir, csv.OpenSink, &csv.Config{Path: "in.csv", Header: true})
	in := &csv.Config{Path: "in.csv", Delimiter: ",", Header: true, Schema: fileio.Columns(benchSchema.Fields)}
	b.ReportAllocs()
	for b.Loop() {
		src, err := csv.OpenSource(context.Background(), in, benchEnv(dir))
		if err != nil {
			b.Fatal(err)
		}
		sink, err := OpenSink(context.Background(), &Config{Path: "out.parquet"}, src.Schema(), benchEnv(dir))
		if err != nil {
			b.Fatal(err)
		}
		if n := drain(b, src, sink); n != benchRows {
			b.Fatalf("%d rows", n)
		}
		if err := sink.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
		src.Close()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkParquetWrite(b *testing.B) {
	dir := b.TempDir()
	batch := customers(0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		sink, err := OpenSink(context.Background(), &Config{Path: "w.parquet"}, benchSchema, benchEnv(dir))
		if err != nil {
			b.Fatal(err)
		}
		for range benchRows / 4096 {
			if err := sink.Write(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := sink.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows/4096*4096)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkParquetRead(b *testing.B) {
	dir := b.TempDir()
	writeInput(b, dir, OpenSink, &Config{Path: "r.parquet"})
	b.ReportAllocs()
	for b.Loop() {
		src, err := OpenSource(context.Background(), &Config{Path: "r.parquet"}, benchEnv(dir))
		if err != nil {
			b.Fatal(err)
		}
		if n := drain(b, src, nil); n != benchRows {
			b.Fatalf("%d rows", n)
		}
		src.Close()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkParquetSinkMemory writes 2M records through the sink and
// reports what it allocates per record and what it keeps: the sink must
// stream, so neither may grow with the data. The batch is reused, so
// every byte counted is the sink's. A collection runs every 32 batches,
// as the other stages of a pipeline make it run: the sink's buffers must
// survive collections rather than be rebuilt after each (as the zstd
// encoders in the library's sync.Pool were, at 16 MiB apiece).
//
//	B/record     bytes allocated per record written (fixed per-file costs
//	             spread over 2M records)
//	retained-MB  the largest heap live after a collection while writing
func BenchmarkParquetSinkMemory(b *testing.B) {
	const rows, batch = 2_000_000, 4096
	dir := b.TempDir()
	in := customers(0, batch)
	var before, after runtime.MemStats
	var total, retained uint64
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		sink, err := OpenSink(context.Background(), &Config{Path: "m.parquet"}, benchSchema, benchEnv(dir))
		if err != nil {
			b.Fatal(err)
		}
		for i := range rows / batch {
			if err := sink.Write(context.Background(), in); err != nil {
				b.Fatal(err)
			}
			if i%32 == 31 {
				runtime.GC()
				runtime.ReadMemStats(&after)
				retained = max(retained, after.HeapAlloc-min(after.HeapAlloc, before.HeapAlloc))
			}
		}
		if err := sink.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		total += after.TotalAlloc - before.TotalAlloc
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(rows/batch*batch), "B/record")
	b.ReportMetric(float64(retained)/(1<<20), "retained-MB")
}
