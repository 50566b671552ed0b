package privacy_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/privacy"
)

// BenchmarkHMACOperator measures the hmac operator over distinct e-mail
// addresses (the memo switches itself off), in the 4096-row batches a
// source yields: the largest cost of the privacy gate in bench/data.sh.
func BenchmarkHMACOperator(b *testing.B) {
	env := newEnv(b)
	tok, err := privacy.NewTokenizer(b.Context(), env.kr)
	if err != nil {
		b.Fatal(err)
	}
	in := &data.Column{Type: data.String}
	for i := range data.DefaultBatchSize {
		in.Strings = append(in.Strings, fmt.Sprintf("First.Last%d@example.com", i))
	}
	o, err := privacy.NewOperator(privacy.Rule{Column: "email", Op: privacy.OpHMAC}, data.String, tok)
	if err != nil {
		b.Fatal(err)
	}
	var dst data.Column
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst.Strings = dst.Strings[:0]
		if err := o.Apply(b.Context(), &dst, in, in, data.DefaultBatchSize, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(data.DefaultBatchSize)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}
