package quality_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/quality"
)

// BenchmarkSixChecks runs six column checks (not_null, unique, regex,
// accepted_values, range, length) over 1M rows in batches of
// data.DefaultBatchSize, and reports rows per second.
func BenchmarkSixChecks(b *testing.B) {
	const rows = 1_000_000
	n := data.DefaultBatchSize
	var batches []*data.Batch
	countries := []string{"DE", "FR", "US", "GB"}
	for start := 0; start < rows; start += n {
		m := min(n, rows-start)
		bt := data.NewBatch(testSchema, m)
		for r := 0; r < m; r++ {
			k := int64(start + r)
			bt.Cols[0].Ints = append(bt.Cols[0].Ints, k)
			bt.Cols[1].Strings = append(bt.Cols[1].Strings, fmt.Sprintf("user%d@example.com", k))
			bt.Cols[2].Strings = append(bt.Cols[2].Strings, countries[k%4])
			bt.Cols[3].Ints = append(bt.Cols[3].Ints, k%120)
			bt.Cols[4].Strings = append(bt.Cols[4].Strings, "12.5")
			bt.Cols[5].Floats = append(bt.Cols[5].Floats, float64(k))
			bt.Cols[6].Times = append(bt.Cols[6].Times, runTime)
			bt.Cols[7].Ints = append(bt.Cols[7].Ints, k%1000)
		}
		bt.Len = m
		batches = append(batches, bt)
	}
	spec := &pipeline.Check{Rules: []pipeline.CheckRule{
		{Name: "id.not_null", Kind: pipeline.CheckNotNull, Column: "id", Severity: pipeline.SeverityWarn},
		{Name: "id.unique", Kind: pipeline.CheckUnique, Column: "id", Severity: pipeline.SeverityWarn},
		{Name: "email.regex", Kind: pipeline.CheckRegex, Column: "email", Pattern: "^[^@]+@[^@]+$", Severity: pipeline.SeverityQuarantine},
		{Name: "country.accepted_values", Kind: pipeline.CheckAcceptedValues, Column: "country", Values: []string{"DE", "FR", "US"}, Severity: pipeline.SeverityWarn},
		{Name: "age.range", Kind: pipeline.CheckRange, Column: "age", Min: f(0), Max: f(130), Severity: pipeline.SeverityFail},
		{Name: "amount.length", Kind: pipeline.CheckLength, Column: "amount", Min: f(1), Max: f(20), Severity: pipeline.SeverityWarn},
	}}
	pos := func(r int) string { return fmt.Sprintf("row %d", r+1) }
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		suite, err := quality.Compile(b.Context(), spec, testSchema, quality.Options{Now: runTime})
		if err != nil {
			b.Fatal(err)
		}
		for _, bt := range batches {
			suite.Eval(bt, pos)
		}
		if res := suite.Results(); res[3].Failing != rows/4 {
			b.Fatalf("accepted_values failing = %d, want %d", res[3].Failing, rows/4)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkRegexCheck runs the regex check `^[^@]+@[^@]+$` alone over
// 1M generated e-mail addresses (one in a thousand without an @), in
// batches of data.DefaultBatchSize, and reports nanoseconds per value.
func BenchmarkRegexCheck(b *testing.B) {
	const rows = 1_000_000
	schema := data.MustSchema(data.Field{Name: "email", Type: data.String})
	n := data.DefaultBatchSize
	var batches []*data.Batch
	bad := 0
	for start := 0; start < rows; start += n {
		m := min(n, rows-start)
		bt := data.NewBatch(schema, m)
		for r := 0; r < m; r++ {
			k := start + r
			v := fmt.Sprintf("first%d.last%d%d@example.com", k%97, k%89, k)
			if k%1000 == 0 {
				v = fmt.Sprintf("first%d.last%d%d.example.com", k%97, k%89, k)
				bad++
			}
			bt.Cols[0].Strings = append(bt.Cols[0].Strings, v)
		}
		bt.Len = m
		batches = append(batches, bt)
	}
	spec := &pipeline.Check{Rules: []pipeline.CheckRule{
		{Name: "email.regex", Kind: pipeline.CheckRegex, Column: "email", Pattern: "^[^@]+@[^@]+$", Severity: pipeline.SeverityQuarantine},
	}}
	pos := func(r int) string { return fmt.Sprintf("row %d", r+1) }
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		suite, err := quality.Compile(b.Context(), spec, schema, quality.Options{Now: runTime})
		if err != nil {
			b.Fatal(err)
		}
		for _, bt := range batches {
			suite.Eval(bt, pos)
		}
		if res := suite.Results(); res[0].Failing != int64(bad) {
			b.Fatalf("failing = %d, want %d", res[0].Failing, bad)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows*b.N), "ns/value")
}
