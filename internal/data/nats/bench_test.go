package nats

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

const benchMsgs = 100_000

func benchBatch(from, n int) *data.Batch {
	schema := data.MustSchema(data.Field{Name: "id", Type: data.Int}, data.Field{Name: "email", Type: data.String},
		data.Field{Name: "score", Type: data.Float}, data.Field{Name: "active", Type: data.Bool})
	bd := fileio.NewBuilder(schema, n)
	for i := from; i < from+n; i++ {
		bd.AppendInt(0, int64(i))
		bd.AppendString(1, fmt.Sprintf("user%d@example.com", i))
		bd.AppendFloat(2, float64(i%1000)/7)
		bd.AppendBool(3, i%3 == 0)
		bd.EndRow(int64(i))
	}
	return bd.B
}

func publishBench(b *testing.B, subj, run string) {
	sink, err := OpenSink(context.Background(), &Config{URL: natsURL(), Subject: subj}, benchBatch(0, 1).Schema, testEnv(nil, run))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchMsgs; i += 4096 {
		if err := sink.Write(context.Background(), benchBatch(i, min(4096, benchMsgs-i))); err != nil {
			b.Fatal(err)
		}
	}
	if err := sink.Commit(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkNATSPublish publishes 100k rows, waiting for every PubAck.
func BenchmarkNATSPublish(b *testing.B) {
	_, subj, _ := testStream(b)
	i := 0
	for b.Loop() {
		i++
		publishBench(b, subj+".p", fmt.Sprint("run", i))
	}
	b.ReportMetric(float64(benchMsgs)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkNATSConsume reads 100k messages and acknowledges them.
func BenchmarkNATSConsume(b *testing.B) {
	stream, subj, _ := testStream(b)
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		publishBench(b, subj+".c", fmt.Sprint("run", i))
		b.StartTimer()
		c := &Config{URL: natsURL(), Stream: stream, Subject: subj + ".c", Durable: "bench", Schema: fileio.Columns(benchBatch(0, 1).Schema.Fields)}
		env := testEnv(&quarantine{}, "r")
		env.BatchSize = data.DefaultBatchSize
		src, err := OpenSource(context.Background(), c, env)
		if err != nil {
			b.Fatal(err)
		}
		got, err := drain(b, src)
		if err != nil {
			b.Fatal(err)
		}
		if err := src.(data.Acker).Ack(context.Background()); err != nil {
			b.Fatal(err)
		}
		src.Close()
		if len(got) != benchMsgs {
			b.Fatalf("read %d messages", len(got))
		}
	}
	b.ReportMetric(float64(benchMsgs)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
