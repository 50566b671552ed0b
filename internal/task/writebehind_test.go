package task

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
)

// recordingSink keeps the first int of every batch it is given, and fails
// the write of failAt when it is not negative.
type recordingSink struct {
	got                []int64
	failAt             int
	committed, aborted bool
}

func (s *recordingSink) Write(_ context.Context, b *data.Batch) error {
	if len(s.got) == s.failAt {
		return errors.New("disk full")
	}
	s.got = append(s.got, b.Cols[0].Ints[0])
	return nil
}
func (s *recordingSink) Commit(context.Context) error { s.committed = true; return nil }
func (s *recordingSink) Abort() error                 { s.aborted = true; return nil }

func TestWriteBehindCopiesAndCommits(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{failAt: -1}
	w := newWriteBehind(context.Background(), sink)
	b := data.NewBatch(intSchema, 1)
	b.Cols[0].Ints = append(b.Cols[0].Ints, 0)
	b.Len = 1
	for i := int64(0); i < 50; i++ {
		b.Cols[0].Ints[0] = i // the caller reuses its batch at once
		if err := w.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !sink.committed || len(sink.got) != 50 {
		t.Fatalf("committed %v after %d batches", sink.committed, len(sink.got))
	}
	for i, v := range sink.got {
		if v != int64(i) {
			t.Fatalf("batch %d arrived as %d", i, v)
		}
	}
}

func TestWriteBehindNeverCommitsAfterAFailedWrite(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{failAt: 3}
	w := newWriteBehind(context.Background(), sink)
	b := data.NewBatch(intSchema, 1)
	b.Cols[0].Ints = append(b.Cols[0].Ints, 1)
	b.Len = 1
	var werr error
	for range 20 {
		if werr = w.Write(context.Background(), b); werr != nil {
			break
		}
	}
	err := w.Commit(context.Background())
	if (werr == nil && err == nil) || sink.committed {
		t.Fatalf("a failed write was committed (write %v, commit %v)", werr, err)
	}
	if err := w.Abort(); err != nil || !sink.aborted {
		t.Errorf("Abort after the failure: %v, aborted %v", err, sink.aborted)
	}
}
