package task

import (
	"context"
	"sync"

	"github.com/sluicehq/sluice/internal/data"
)

// prefetchDepth is how many batches the reader may run ahead: enough to
// keep both sides busy, few enough that memory stays a few batches.
const prefetchDepth = 2

// prefetch reads a source in a goroutine of its own, up to prefetchDepth
// batches ahead, so that parsing the input overlaps with transforming and
// writing it: on two cores a data task then uses both.
//
// A source's batch is valid only until its next Next, so each batch is
// copied into one of prefetchDepth+2 spare batches. The copy is shallow for
// strings, which Go never mutates, and costs a few hundred kilobytes of
// memory traffic per batch. A batch returned by Next is valid until the
// following Next, as the data.Source contract says.
type prefetch struct {
	src    data.Source
	out    chan fetched
	free   chan *data.Batch
	cancel context.CancelFunc
	done   chan struct{}
	last   *data.Batch
	once   sync.Once
}

type fetched struct {
	b   *data.Batch
	err error
}

func newPrefetch(ctx context.Context, src data.Source) *prefetch {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetch{
		src:    src,
		out:    make(chan fetched, prefetchDepth),
		free:   make(chan *data.Batch, prefetchDepth+2),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	for range prefetchDepth + 2 {
		p.free <- &data.Batch{}
	}
	go p.run(ctx)
	return p
}

func (p *prefetch) run(ctx context.Context) {
	defer close(p.done)
	defer close(p.out)
	for {
		b, err := p.src.Next(ctx)
		if err != nil {
			select {
			case p.out <- fetched{err: err}:
			case <-ctx.Done():
			}
			return
		}
		var dst *data.Batch
		select {
		case dst = <-p.free:
		case <-ctx.Done():
			return
		}
		copyBatch(dst, b)
		select {
		case p.out <- fetched{b: dst}:
		case <-ctx.Done():
			return
		}
	}
}

// Next returns the next batch, or the source's error (data.ErrEndOfInput at
// the end).
func (p *prefetch) Next(ctx context.Context) (*data.Batch, error) {
	if p.last != nil {
		p.free <- p.last
		p.last = nil
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	select {
	case f, ok := <-p.out:
		if !ok {
			return nil, data.ErrEndOfInput
		}
		if f.err != nil {
			return nil, f.err
		}
		p.last = f.b
		return f.b, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Stop ends the reader goroutine and waits for it; the source itself is
// closed by its owner afterwards.
func (p *prefetch) Stop() {
	p.once.Do(func() {
		p.cancel()
		<-p.done
	})
}

// copyBatch makes dst a copy of src, reusing dst's slices.
func copyBatch(dst, src *data.Batch) {
	dst.Schema, dst.Len = src.Schema, src.Len
	dst.Pos = append(dst.Pos[:0], src.Pos...)
	if src.Pos == nil {
		dst.Pos = nil
	}
	if cap(dst.Cols) < len(src.Cols) {
		dst.Cols = make([]data.Column, len(src.Cols))
	}
	dst.Cols = dst.Cols[:len(src.Cols)]
	for i := range src.Cols {
		s, d := &src.Cols[i], &dst.Cols[i]
		d.Type = s.Type
		d.Strings = copyOrNil(d.Strings, s.Strings)
		d.Ints = copyOrNil(d.Ints, s.Ints)
		d.Floats = copyOrNil(d.Floats, s.Floats)
		d.Bools = copyOrNil(d.Bools, s.Bools)
		d.Times = copyOrNil(d.Times, s.Times)
		d.Nulls = copyOrNil(d.Nulls, s.Nulls)
	}
}

// copyOrNil copies src into dst's storage; a nil src gives nil, since a
// nil slice means something (no nulls, or a column of another type).
func copyOrNil[T any](dst, src []T) []T {
	if src == nil {
		return nil
	}
	return append(dst[:0], src...)
}
