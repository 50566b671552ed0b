package clock

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFakeTimers(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake(start)
	late := f.NewTimer(2 * time.Minute)
	early := f.NewTimer(time.Minute)
	stopped := f.NewTimer(30 * time.Second)
	fired := make(chan time.Time, 1)
	f.AfterFunc(90*time.Second, func() { fired <- f.Now() })

	if got := f.Pending(); got != 4 {
		t.Fatalf("Pending = %d, want 4", got)
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop: want true once, then false")
	}
	f.Advance(time.Minute)
	select {
	case at := <-early.C():
		if !at.Equal(start.Add(time.Minute)) {
			t.Errorf("early fired at %s", at)
		}
	default:
		t.Fatal("early timer did not fire at its deadline")
	}
	select {
	case <-late.C():
		t.Fatal("late timer fired early")
	case <-stopped.C():
		t.Fatal("stopped timer fired")
	default:
	}
	f.Advance(time.Minute)
	if at := <-fired; !at.Equal(start.Add(2 * time.Minute)) {
		t.Errorf("AfterFunc ran at %s, want when the clock read %s", at, start.Add(2*time.Minute))
	}
	if _, ok := <-late.C(); !ok {
		t.Error("late timer channel closed")
	}
	if late.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	if got := f.Now(); !got.Equal(start.Add(2 * time.Minute)) {
		t.Errorf("Now = %s", got)
	}
}

func TestFakeSetAndBlockUntil(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	got := make(chan time.Time, 1)
	go func() { got <- <-f.After(time.Hour) }()
	f.BlockUntil(1) // the goroutine is waiting
	f.Set(start.Add(-time.Hour))
	if !f.Now().Equal(start) {
		t.Errorf("Set moved the clock backwards to %s", f.Now())
	}
	f.Set(start.Add(3 * time.Hour))
	if diff := cmp.Diff(start.Add(3*time.Hour), <-got); diff != "" {
		t.Errorf("After delivered (-want +got):\n%s", diff)
	}
	if ch := f.After(0); len(ch) != 1 {
		t.Error("a zero wait does not fire at once")
	}
}

func TestReal(t *testing.T) {
	t.Parallel()
	var c Clock = Real{}
	before := time.Now()
	if c.Now().Before(before) {
		t.Error("Real.Now is in the past")
	}
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	<-c.After(time.Millisecond)
	tm := c.NewTimer(time.Hour)
	if !tm.Stop() {
		t.Error("Stop of a pending real timer reported false")
	}
}
