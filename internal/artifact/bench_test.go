package artifact

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/data"
)

var benchSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int}, data.Field{Name: "name", Type: data.String},
	data.Field{Name: "email", Type: data.String}, data.Field{Name: "country", Type: data.String},
	data.Field{Name: "signed_up", Type: data.Timestamp}, data.Field{Name: "score", Type: data.Float},
	data.Field{Name: "active", Type: data.Bool}, data.Field{Name: "orders", Type: data.Int},
)

func benchBatch(n int) *data.Batch {
	b := data.NewBatch(benchSchema, n)
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for id := range n {
		b.Cols[0].Ints = append(b.Cols[0].Ints, int64(id))
		b.Cols[1].Strings = append(b.Cols[1].Strings, []string{"Ada Lovelace", "Grace Hopper", "Alan Turing"}[id%3])
		b.Cols[2].Strings = append(b.Cols[2].Strings, fmt.Sprintf("user%d@example.com", id))
		b.Cols[3].Strings = append(b.Cols[3].Strings, []string{"DE", "FR", "US"}[id%3])
		b.Cols[4].Times = append(b.Cols[4].Times, base.Add(time.Duration(id)*time.Second))
		b.Cols[5].Floats = append(b.Cols[5].Floats, float64(id)/3)
		b.Cols[6].Bools = append(b.Cols[6].Bools, id%2 == 0)
		b.Cols[7].Ints = append(b.Cols[7].Ints, int64(id%17))
	}
	b.Len = n
	return b
}

// BenchmarkArtifactWriteRead writes and reads back 1M rows of 8 columns.
func BenchmarkArtifactWriteRead(b *testing.B) {
	const rows, per = 1 << 20, data.DefaultBatchSize
	batch := benchBatch(per)
	dir := b.TempDir()
	var bytes int64
	b.ReportAllocs()
	for b.Loop() {
		path := filepath.Join(dir, "bench.arrow")
		w, err := Create(path, benchSchema, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for range rows / per {
			if err := w.Write(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
		info := w.Info()
		bytes = info.Bytes
		r, err := Open(path, info.SHA256, Options{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			bt, err := r.Next(context.Background())
			if errors.Is(err, data.ErrEndOfInput) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += bt.Len
		}
		r.Close()
		if n != rows {
			b.Fatalf("read %d rows", n)
		}
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(rows)*float64(b.N)/secs, "records/s")
	b.ReportMetric(float64(bytes)*float64(b.N)/secs/1e6, "MB/s")
}
