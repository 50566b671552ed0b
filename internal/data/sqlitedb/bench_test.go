package sqlitedb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

const benchRows = 1_000_000

// benchBatch is a 4096-row batch of (id, name, score, ok, at).
func benchBatch(start int) *data.Batch {
	bd := fileio.NewBuilder(sinkSchema, data.DefaultBatchSize)
	for i := range data.DefaultBatchSize {
		bd.AppendInt(0, int64(start+i))
		bd.AppendString(1, "customer name")
		bd.AppendFloat(2, float64(i)/3)
		bd.AppendBool(3, i%2 == 0)
		bd.AppendTime(4, t0)
		bd.EndRow(int64(start + i))
	}
	return bd.B
}

func load(b *testing.B, path string) int {
	ctx := context.Background()
	s, err := OpenSink(ctx, &Config{Path: path, Table: "t", Mode: ModeReplace}, sinkSchema, testEnv("", nil))
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch(0)
	n := 0
	for ; n < benchRows; n += batch.Len {
		for i := range batch.Len {
			batch.Cols[0].Ints[i] = int64(n + i)
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	return n
}

func BenchmarkLoad1M(b *testing.B) {
	_, path := newDB(b, sinkDDL)
	start := time.Now()
	rows := 0
	for b.Loop() {
		rows += load(b, path)
	}
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
}

func BenchmarkRead1M(b *testing.B) {
	_, path := newDB(b, sinkDDL)
	load(b, path)
	env := testEnv("", nil)
	env.BatchSize = data.DefaultBatchSize
	b.ResetTimer()
	start := time.Now()
	var rows int
	for b.Loop() {
		src, err := OpenSource(context.Background(), &Config{Path: path, Query: "SELECT id, name, score, ok, at FROM t"}, env)
		if err != nil {
			b.Fatal(err)
		}
		for {
			batch, err := src.Next(context.Background())
			if errors.Is(err, data.ErrEndOfInput) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows += batch.Len
		}
		src.Close()
	}
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
}
