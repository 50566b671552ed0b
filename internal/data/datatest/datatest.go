// Package datatest helps the tests of sources, sinks and datasets: rows
// written as plain Go values, batches built from them, and sources drained
// back into them. Only tests import it.
package datatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/data"
)

// Row is one record as Go values in schema order: string, int64, float64,
// bool, time.Time, or nil for null.
type Row []any

// RowOf returns row r of b.
func RowOf(b *data.Batch, r int) Row {
	out := make(Row, len(b.Cols))
	for i := range b.Cols {
		c := &b.Cols[i]
		if c.IsNull(r) {
			continue
		}
		switch c.Type {
		case data.String:
			out[i] = c.Strings[r]
		case data.Int:
			out[i] = c.Ints[r]
		case data.Float:
			out[i] = c.Floats[r]
		case data.Bool:
			out[i] = c.Bools[r]
		case data.Timestamp:
			out[i] = c.Times[r]
		}
	}
	return out
}

// ReadAll drains src into rows and their source positions; a read error
// fails the test.
func ReadAll(t testing.TB, src data.Source) ([]Row, []int64) {
	t.Helper()
	var rows []Row
	var pos []int64
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			return rows, pos
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		for r := 0; r < b.Len; r++ {
			rows = append(rows, RowOf(b, r))
		}
		pos = append(pos, b.Pos...)
	}
}

// BatchOf builds a batch of schema s from rows.
func BatchOf(s *data.Schema, rows []Row) *data.Batch {
	b := data.NewBatch(s, len(rows))
	for r, vals := range rows {
		for i, v := range vals {
			c := &b.Cols[i]
			if v == nil {
				c.SetNull(r, len(rows))
			}
			switch c.Type {
			case data.String:
				x, _ := v.(string)
				c.Strings = append(c.Strings, x)
			case data.Int:
				x, _ := v.(int64)
				c.Ints = append(c.Ints, x)
			case data.Float:
				x, _ := v.(float64)
				c.Floats = append(c.Floats, x)
			case data.Bool:
				x, _ := v.(bool)
				c.Bools = append(c.Bools, x)
			case data.Timestamp:
				x, _ := v.(time.Time)
				c.Times = append(c.Times, x)
			}
		}
	}
	b.Len = len(rows)
	return b
}
