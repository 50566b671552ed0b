package schedule

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkTickLag measures the scheduler's lag from a tick (the fake
// clock reaching it) to the run being handed to the engine, through the
// real loop, SQLite store and engine. Reported: mean and p99 lag.
func BenchmarkTickLag(b *testing.B) {
	en := newEnv(b, utc(2026, 3, 1, 0, 30))
	en.push("crm", "minutely", `schedule: "* * * * *"`)
	events := make(chan Event, 16)
	s := en.scheduler(func(ev Event) {
		if ev.Kind == EventRunStarted || ev.Kind == EventRunFinished {
			events <- ev
		}
	})
	if err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	en.clock.BlockUntil(1)
	lags := make([]time.Duration, 0, b.N)
	tick := utc(2026, 3, 1, 0, 31)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		en.clock.Set(tick)
		for ev := range events {
			if ev.Kind == EventRunStarted {
				lags = append(lags, time.Since(start))
				break
			}
		}
		<-en.gate.started // keep the executor's buffer from filling
		for ev := range events {
			if ev.Kind == EventRunFinished {
				break
			}
		}
		tick = tick.Add(time.Minute)
	}
	b.StopTimer()
	slices.Sort(lags)
	var sum time.Duration
	for _, l := range lags {
		sum += l
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(lags)), "lag-µs/op")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds()), "p99-lag-µs")
}
