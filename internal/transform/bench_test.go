package transform

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// customerBatches builds n rows of a customer-like schema split into
// batches of data.DefaultBatchSize.
func customerBatches(tb testing.TB, n int) []*data.Batch {
	tb.Helper()
	s := mustSchema(tb,
		f("id", data.Int), f("first", data.String), f("last", data.String), f("email", data.String),
		f("country", data.String), f("city", data.String), f("age", data.Int), f("score", data.Float),
		f("active", data.Bool), f("signup", data.Timestamp))
	firsts := []string{"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald"}
	lasts := []string{"Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth"}
	countries := []string{"DE", "FR", "US", "GB", "NL"}
	cities := []string{"Berlin", "Paris", "Boston", "London", "Utrecht"}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []*data.Batch
	for start := 0; start < n; start += data.DefaultBatchSize {
		m := min(data.DefaultBatchSize, n-start)
		b := data.NewBatch(s, m)
		for k := range m {
			i := start + k
			b.Cols[0].Ints = append(b.Cols[0].Ints, int64(i))
			b.Cols[1].Strings = append(b.Cols[1].Strings, firsts[i%len(firsts)])
			b.Cols[2].Strings = append(b.Cols[2].Strings, lasts[i%len(lasts)])
			b.Cols[3].Strings = append(b.Cols[3].Strings, fmt.Sprintf("user%d@example%d.com", i, i%7))
			b.Cols[4].Strings = append(b.Cols[4].Strings, countries[i%len(countries)])
			b.Cols[5].Strings = append(b.Cols[5].Strings, cities[i%len(cities)])
			b.Cols[6].Ints = append(b.Cols[6].Ints, int64(10+i%70))
			b.Cols[7].Floats = append(b.Cols[7].Floats, float64(i%1000)/10)
			b.Cols[8].Bools = append(b.Cols[8].Bools, i%3 != 0)
			b.Cols[9].Times = append(b.Cols[9].Times, base.Add(time.Duration(i)*time.Minute))
		}
		b.Len = m
		out = append(out, b)
	}
	return out
}

func BenchmarkFilterDerive(b *testing.B) {
	const rows = 1_000_000
	batches := customerBatches(b, rows)
	steps := []pipeline.Step{
		{Kind: pipeline.StepFilter, Expr: "row.country in ['DE','FR','US'] && row.age >= 18"},
		{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{
			{Column: "full_name", Expr: "row.first + ' ' + row.last"},
			{Column: "email_domain", Expr: "row.email.split('@')[1]"},
		}},
	}
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
		if s := c.Stats(); s.In != rows || s.Quarantined != 0 {
			b.Fatalf("stats %+v", s)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
