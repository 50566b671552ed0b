package transform

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// benchSteps runs steps over 1M customer rows per iteration, flushing at
// the end, and reports rows/s.
func benchSteps(b *testing.B, steps []pipeline.Step, check func(Stats) bool) {
	const rows = 1_000_000
	batches := customerBatches(b, rows)
	ctx := context.Background()
	q := &recorder{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := Compile(steps, batches[0].Schema)
		if err != nil {
			b.Fatal(err)
		}
		for _, in := range batches {
			if _, err := c.Apply(ctx, in, q); err != nil {
				b.Fatal(err)
			}
		}
		for {
			_, err := c.Flush(ctx, q)
			if errors.Is(err, data.ErrEndOfInput) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if s := c.Stats(); s.In != rows || !check(s) {
			b.Fatalf("stats %+v", s)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkDedupeFirst(b *testing.B) {
	// 1M rows, 70 distinct (country, age, city) keys.
	benchSteps(b, []pipeline.Step{{Kind: pipeline.StepDedupe, Dedupe: &pipeline.Dedupe{Key: []string{"country", "age", "city"}}}},
		func(s Stats) bool { return s.Out == 70 && s.Filtered == 1_000_000-70 })
}

func BenchmarkDedupeFirstDistinct(b *testing.B) {
	// Every key distinct: the worst case for memory.
	benchSteps(b, []pipeline.Step{{Kind: pipeline.StepDedupe, Dedupe: &pipeline.Dedupe{Key: []string{"email"}}}},
		func(s Stats) bool { return s.Out == 1_000_000 })
}

func BenchmarkDedupeLast(b *testing.B) {
	benchSteps(b, []pipeline.Step{{Kind: pipeline.StepDedupe, Dedupe: &pipeline.Dedupe{Key: []string{"id"}, Keep: pipeline.KeepLast}}},
		func(s Stats) bool { return s.Out == 1_000_000 && s.Held == 0 })
}

func BenchmarkAggregate(b *testing.B) {
	benchSteps(b, []pipeline.Step{{Kind: pipeline.StepAggregate, Aggregate: &pipeline.Aggregate{
		GroupBy: []string{"country", "city"},
		Measures: []pipeline.Measure{
			{Name: "n", Func: pipeline.AggCount},
			{Name: "total", Func: pipeline.AggSum, Column: "score"},
			{Name: "ages", Func: pipeline.AggSum, Column: "age"},
			{Name: "mean", Func: pipeline.AggAvg, Column: "age"},
			{Name: "first", Func: pipeline.AggMin, Column: "signup"},
			{Name: "top", Func: pipeline.AggMax, Column: "last"},
			{Name: "ages_seen", Func: pipeline.AggCountDistinct, Column: "age"},
		}}}},
		func(s Stats) bool { return s.Out == 5 && s.Aggregated == 1_000_000-5 })
}
