package task

import (
	"context"
	"sync"

	"github.com/sluicehq/sluice/internal/data"
)

// writeBehind writes to a sink from a goroutine of its own, so that
// encoding and writing the output overlaps with transforming the next
// batch: with the read-ahead (prefetch), a data task is a three-stage
// pipeline. Batches are copied (see copyBatch), because a step's output is
// valid only until its next call. A write error is returned by the next
// Write or by Commit; nothing is committed after one.
type writeBehind struct {
	sink data.Sink
	ctx  context.Context
	in   chan *data.Batch
	free chan *data.Batch
	done chan struct{}

	mu  sync.Mutex
	err error

	closed bool
}

func newWriteBehind(ctx context.Context, sink data.Sink) *writeBehind {
	w := &writeBehind{
		sink: sink,
		ctx:  ctx,
		in:   make(chan *data.Batch, prefetchDepth),
		free: make(chan *data.Batch, prefetchDepth+1),
		done: make(chan struct{}),
	}
	for range prefetchDepth + 1 {
		w.free <- &data.Batch{}
	}
	go w.run()
	return w
}

func (w *writeBehind) run() {
	defer close(w.done)
	for b := range w.in {
		if w.failed() == nil {
			if err := w.sink.Write(w.ctx, b); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
		w.free <- b
	}
}

func (w *writeBehind) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write queues a copy of b for the sink.
func (w *writeBehind) Write(ctx context.Context, b *data.Batch) error {
	if err := w.failed(); err != nil {
		return err
	}
	var dst *data.Batch
	select {
	case dst = <-w.free:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	copyBatch(dst, b)
	select {
	case w.in <- dst:
		return nil
	case <-ctx.Done():
		w.free <- dst
		return context.Cause(ctx)
	}
}

// finish waits until every queued batch has been written.
func (w *writeBehind) finish() {
	if !w.closed {
		w.closed = true
		close(w.in)
		<-w.done
	}
}

// Commit writes what is queued, then commits the sink, unless a write
// failed.
func (w *writeBehind) Commit(ctx context.Context) error {
	w.finish()
	if err := w.failed(); err != nil {
		return err
	}
	return w.sink.Commit(ctx)
}

// Abort stops writing and aborts the sink.
func (w *writeBehind) Abort() error {
	w.finish()
	return w.sink.Abort()
}
