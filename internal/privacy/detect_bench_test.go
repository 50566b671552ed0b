package privacy_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/privacy"
)

// BenchmarkDetectorObserve measures Observe over one million rows of three
// string columns (an email, a formatted phone number, an order reference),
// fed as the 4096-row batches a source yields.
func BenchmarkDetectorObserve(b *testing.B) {
	const rows = 1_000_000
	schema := data.MustSchema(
		data.Field{Name: "email", Type: data.String},
		data.Field{Name: "phone", Type: data.String},
		data.Field{Name: "order_ref", Type: data.String},
	)
	// A few distinct batches, reused, keep memory small.
	batches := make([]*data.Batch, 8)
	k := 0
	for i := range batches {
		bt := data.NewBatch(schema, data.DefaultBatchSize)
		for range data.DefaultBatchSize {
			bt.Cols[0].Strings = append(bt.Cols[0].Strings, fmt.Sprintf("user%d@example.com", k))
			bt.Cols[1].Strings = append(bt.Cols[1].Strings, fmt.Sprintf("(202) 555-%04d", k%10000))
			bt.Cols[2].Strings = append(bt.Cols[2].Strings, fmt.Sprintf("ORD-%08d", k))
			k++
		}
		bt.Len = data.DefaultBatchSize
		batches[i] = bt
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := privacy.NewDetector(privacy.DetectOptions{})
		for n, i := 0, 0; n < rows; i++ {
			bt := batches[i%len(batches)]
			d.Observe(bt)
			n += bt.Len
		}
		if len(d.Findings()) != 2 {
			b.Fatalf("findings: %+v", d.Findings())
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
