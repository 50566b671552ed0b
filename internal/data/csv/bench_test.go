package csv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

const benchRows = 200_000

var benchSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int}, data.Field{Name: "first_name", Type: data.String},
	data.Field{Name: "last_name", Type: data.String}, data.Field{Name: "email", Type: data.String},
	data.Field{Name: "phone", Type: data.String}, data.Field{Name: "country", Type: data.String},
	data.Field{Name: "city", Type: data.String}, data.Field{Name: "signed_up", Type: data.Timestamp},
	data.Field{Name: "score", Type: data.Float}, data.Field{Name: "active", Type: data.Bool},
)

// customers returns a batch of n customer-like rows starting at id from.
func customers(from, n int) *data.Batch {
	b := data.NewBatch(benchSchema, n)
	first := []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald"}
	last := []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth"}
	cities := []string{"Berlin", "Paris", "New York", "São Paulo", "Zürich"}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for r := range n {
		id := from + r
		b.Cols[0].Ints = append(b.Cols[0].Ints, int64(id))
		b.Cols[1].Strings = append(b.Cols[1].Strings, first[id%len(first)])
		b.Cols[2].Strings = append(b.Cols[2].Strings, last[id%len(last)])
		b.Cols[3].Strings = append(b.Cols[3].Strings, fmt.Sprintf("user%d@example.com", id))
		b.Cols[4].Strings = append(b.Cols[4].Strings, fmt.Sprintf("+49 30 %07d", id%10_000_000))
		b.Cols[5].Strings = append(b.Cols[5].Strings, []string{"DE", "FR", "US", "BR", "CH"}[id%5])
		b.Cols[6].Strings = append(b.Cols[6].Strings, cities[id%len(cities)])
		b.Cols[7].Times = append(b.Cols[7].Times, base.Add(time.Duration(id)*time.Minute))
		b.Cols[8].Floats = append(b.Cols[8].Floats, float64(id%1000)/7)
		b.Cols[9].Bools = append(b.Cols[9].Bools, id%3 == 0)
	}
	b.Len = n
	return b
}

func writeBench(b *testing.B, dir string) {
	b.Helper()
	sink, err := OpenSink(context.Background(), &Config{Path: "bench.csv", Header: true}, benchSchema, testEnv(dir, nil))
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

func BenchmarkCSVRead(b *testing.B) {
	dir := b.TempDir()
	writeBench(b, dir)
	st, _ := os.Stat(filepath.Join(dir, "bench.csv"))
	cfg := &Config{Path: "bench.csv", Delimiter: ",", Header: true, Schema: fileio.Columns(benchSchema.Fields)}
	env := testEnv(dir, &quarantine{})
	env.BatchSize = data.DefaultBatchSize
	b.SetBytes(st.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		src, err := OpenSource(context.Background(), cfg, env)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			bt, err := src.Next(context.Background())
			if errors.Is(err, data.ErrEndOfInput) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += bt.Len
		}
		src.Close()
		if n != benchRows {
			b.Fatalf("read %d rows", n)
		}
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkCSVWrite(b *testing.B) {
	dir := b.TempDir()
	batch := customers(0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		sink, err := OpenSink(context.Background(), &Config{Path: "w.csv", Header: true}, benchSchema, testEnv(dir, nil))
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

// BenchmarkCSVToCSV is the file half of a CSV → filter → CSV pipeline:
// read and type every record, write every record.
func BenchmarkCSVToCSV(b *testing.B) {
	dir := b.TempDir()
	writeBench(b, dir)
	cfg := &Config{Path: "bench.csv", Delimiter: ",", Header: true, Schema: fileio.Columns(benchSchema.Fields)}
	env := testEnv(dir, &quarantine{})
	env.BatchSize = data.DefaultBatchSize
	b.ReportAllocs()
	for b.Loop() {
		src, err := OpenSource(context.Background(), cfg, env)
		if err != nil {
			b.Fatal(err)
		}
		sink, err := OpenSink(context.Background(), &Config{Path: "out.csv", Header: true}, src.Schema(), env)
		if err != nil {
			b.Fatal(err)
		}
		for {
			bt, err := src.Next(context.Background())
			if errors.Is(err, data.ErrEndOfInput) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := sink.Write(context.Background(), bt); err != nil {
				b.Fatal(err)
			}
		}
		if err := sink.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
		src.Close()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
