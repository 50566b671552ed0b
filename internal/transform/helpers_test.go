package transform

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/datatest"
)

// mkBatch builds a batch from rows of Go values (string, int, float64,
// bool, time.Time; nil for null), through datatest.BatchOf.
func mkBatch(t testing.TB, s *data.Schema, rows [][]any) *data.Batch {
	t.Helper()
	out := make([]datatest.Row, len(rows))
	for r, row := range rows {
		if len(row) != len(s.Fields) {
			t.Fatalf("row %d has %d values, schema has %d fields", r, len(row), len(s.Fields))
		}
		vals := make(datatest.Row, len(row))
		for i, v := range row {
			if n, ok := v.(int); ok {
				v = int64(n)
			}
			vals[i] = v
		}
		out[r] = vals
	}
	return datatest.BatchOf(s, out)
}

// rowsOf reads a batch back into Go values, nil for null.
func rowsOf(t testing.TB, b *data.Batch) [][]any {
	t.Helper()
	if len(b.Cols) != len(b.Schema.Fields) {
		t.Fatalf("batch has %d columns, schema %d fields", len(b.Cols), len(b.Schema.Fields))
	}
	out := [][]any{}
	for r := 0; r < b.Len; r++ {
		row := make([]any, len(b.Cols))
		for i := range b.Cols {
			c := &b.Cols[i]
			if c.Type != b.Schema.Fields[i].Type {
				t.Fatalf("column %d is %s, schema says %s", i, c.Type, b.Schema.Fields[i].Type)
			}
			if c.IsNull(r) {
				continue
			}
			switch c.Type {
			case data.String:
				row[i] = c.Strings[r]
			case data.Int:
				row[i] = int(c.Ints[r])
			case data.Float:
				row[i] = c.Floats[r]
			case data.Bool:
				row[i] = c.Bools[r]
			case data.Timestamp:
				row[i] = c.Times[r]
			}
		}
		out = append(out, row)
	}
	return out
}

// recorder is a Quarantine that keeps what it receives.
type recorder struct {
	mu      sync.Mutex
	rejects []data.Reject
	fail    error
}

func (q *recorder) Reject(_ context.Context, r data.Reject) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return q.fail
	}
	q.rejects = append(q.rejects, r)
	return nil
}

func checkInvariant(t testing.TB, s Stats) {
	t.Helper()
	if s.In != s.Out+s.Filtered+s.Quarantined+s.Aggregated+s.Held {
		t.Errorf("stats %+v: In != Out + Filtered + Quarantined + Aggregated + Held", s)
	}
}

var errQuarantineFull = errors.New("quarantine full")

func f(name string, t data.Type) data.Field { return data.Field{Name: name, Type: t} }

func mustSchema(t testing.TB, fields ...data.Field) *data.Schema {
	t.Helper()
	s, err := data.NewSchema(fields...)
	if err != nil {
		t.Fatal(fmt.Errorf("building schema: %w", err))
	}
	return s
}
