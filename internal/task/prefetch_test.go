package task

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
)

// reusingSource yields n batches of one int row each, reusing one batch as
// the data.Source contract allows, and rejects every third record.
type reusingSource struct {
	n, i int
	b    *data.Batch
	q    data.Quarantine
}

var intSchema = data.MustSchema(data.Field{Name: "i", Type: data.Int})

func (s *reusingSource) Schema() *data.Schema { return intSchema }
func (s *reusingSource) Close() error         { return nil }
func (s *reusingSource) Next(ctx context.Context) (*data.Batch, error) {
	if s.i == s.n {
		return nil, data.ErrEndOfInput
	}
	if s.i%3 == 0 {
		if err := s.q.Reject(ctx, data.Reject{Pos: "x", Reason: "every third"}); err != nil {
			return nil, err
		}
	}
	if s.b == nil {
		s.b = data.NewBatch(intSchema, 1)
	}
	s.b.Cols[0].Ints = append(s.b.Cols[0].Ints[:0], int64(s.i))
	s.b.Len = 1
	s.i++
	return s.b, nil
}

type countingQuarantine struct{ n int }

func (c *countingQuarantine) Reject(context.Context, data.Reject) error { c.n++; return nil }

func TestPrefetchCopiesBatches(t *testing.T) {
	t.Parallel()
	q := &countingQuarantine{}
	src := &reusingSource{n: 100, q: q}
	p := newPrefetch(context.Background(), src)
	defer p.Stop()
	for want := int64(0); ; want++ {
		b, err := p.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			if want != 100 {
				t.Fatalf("ended after %d batches", want)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// The reader may already have overwritten its own batch.
		if got := b.Cols[0].Ints[0]; got != want {
			t.Fatalf("batch %d holds %d", want, got)
		}
	}
	if q.n != 34 {
		t.Errorf("%d rejects, want 34", q.n)
	}
}

func TestPrefetchStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	p := newPrefetch(ctx, &reusingSource{n: 1 << 30, q: &countingQuarantine{}})
	if _, err := p.Next(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	p.Stop() // must return: the reader goroutine ends
	if _, err := p.Next(ctx); err == nil {
		t.Error("Next after cancel returned a batch")
	}
}
