package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/data"
)

const benchRows = 1_000_000

// customerSchema is a customer-like record of ten columns.
var customerSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int},
	data.Field{Name: "first_name", Type: data.String},
	data.Field{Name: "last_name", Type: data.String},
	data.Field{Name: "email", Type: data.String},
	data.Field{Name: "phone", Type: data.String},
	data.Field{Name: "country", Type: data.String},
	data.Field{Name: "age", Type: data.Int},
	data.Field{Name: "balance", Type: data.Float},
	data.Field{Name: "active", Type: data.Bool},
	data.Field{Name: "signed_up", Type: data.Timestamp},
)

func customerBatch(from int64, n int) *data.Batch {
	b := data.NewBatch(customerSchema, n)
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	countries := []string{"DE", "FR", "US", "GB", "NL"}
	for i := range n {
		id := from + int64(i)
		b.Cols[0].Ints = append(b.Cols[0].Ints, id)
		b.Cols[1].Strings = append(b.Cols[1].Strings, fmt.Sprintf("First%d", id%1000))
		b.Cols[2].Strings = append(b.Cols[2].Strings, fmt.Sprintf("Last%d", id%5000))
		b.Cols[3].Strings = append(b.Cols[3].Strings, fmt.Sprintf("customer%d@example.com", id))
		b.Cols[4].Strings = append(b.Cols[4].Strings, fmt.Sprintf("+49 30 %08d", id))
		b.Cols[5].Strings = append(b.Cols[5].Strings, countries[id%5])
		b.Cols[6].Ints = append(b.Cols[6].Ints, 18+id%70)
		b.Cols[7].Floats = append(b.Cols[7].Floats, float64(id%100000)/100)
		b.Cols[8].Bools = append(b.Cols[8].Bools, id%3 != 0)
		b.Cols[9].Times = append(b.Cols[9].Times, t0.Add(time.Duration(id)*time.Minute))
	}
	b.Len = n
	return b
}

func BenchmarkCopyLoad(b *testing.B) {
	conn := admin(b)
	table := tableName(b, conn)
	batch := customerBatch(1, data.DefaultBatchSize)
	cfg := &Config{DSN: testDSN(), Table: table, Create: true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.StopTimer()
			exec(b, conn, "TRUNCATE "+table)
			b.StartTimer()
		}
		sink, err := OpenSink(context.Background(), cfg, customerSchema, testEnv(nil, nil))
		if err != nil {
			b.Fatalf("OpenSink: %v", err)
		}
		for done := 0; done < benchRows; done += batch.Len {
			if err := sink.Write(context.Background(), batch); err != nil {
				b.Fatalf("Write: %v", err)
			}
		}
		if err := sink.Commit(context.Background()); err != nil {
			b.Fatalf("Commit: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(benchRows)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkCursorRead(b *testing.B) {
	conn := admin(b)
	table := tableName(b, conn)
	exec(b, conn, `CREATE TABLE `+table+` AS SELECT g::bigint AS id, 'First' || g % 1000 AS first_name,
		'Last' || g % 5000 AS last_name, 'customer' || g || '@example.com' AS email, '+49 30 ' || lpad(g::text, 8, '0') AS phone,
		(ARRAY['DE','FR','US','GB','NL'])[g % 5 + 1] AS country, (18 + g % 70)::bigint AS age, (g % 100000) / 100.0::float8 AS balance,
		g % 3 <> 0 AS active, '2020-01-01'::timestamptz + g * interval '1 minute' AS signed_up
		FROM generate_series(1, `+fmt.Sprint(benchRows)+`) g`)
	cfg := &Config{DSN: testDSN(), Query: "SELECT * FROM " + table}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src, err := OpenSource(context.Background(), cfg, testEnv(nil, nil))
		if err != nil {
			b.Fatalf("OpenSource: %v", err)
		}
		n := 0
		for {
			batch, err := src.Next(context.Background())
			if errors.Is(err, data.ErrEndOfInput) {
				break
			}
			if err != nil {
				b.Fatalf("Next: %v", err)
			}
			n += batch.Len
		}
		if n != benchRows {
			b.Fatalf("read %d rows, want %d", n, benchRows)
		}
		if err := src.Close(); err != nil {
			b.Fatalf("Close: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(benchRows)/b.Elapsed().Seconds(), "rows/s")
}
