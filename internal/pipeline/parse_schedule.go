package pipeline

import (
	"time"
)

// Catchup is what the scheduler does with the ticks a pipeline missed while
// no scheduler was running.
type Catchup string

// Catch-up policies.
const (
	// CatchupNone skips every missed tick: the next run is the next tick.
	CatchupNone Catchup = "none"
	// CatchupLatest runs only the most recent missed tick: the data is
	// brought up to date once, without replaying history.
	CatchupLatest Catchup = "latest"
	// CatchupAll runs every missed tick, oldest first, up to CatchupLimit.
	CatchupAll Catchup = "all"
)

// Scheduling defaults.
const (
	DefaultCatchup       = CatchupLatest
	DefaultCatchupLimit  = 10
	DefaultMaxActiveRuns = 1
)

// Scheduling is how the scheduler treats a scheduled pipeline. Every field
// has its default applied by Parse.
type Scheduling struct {
	// Catchup is the policy for ticks missed during downtime; default
	// latest.
	Catchup Catchup
	// CatchupLimit caps how many missed ticks catch-up creates runs for
	// (the most recent ones); default 10.
	CatchupLimit int
	// MaxActiveRuns caps the unfinished runs of the pipeline the scheduler
	// keeps at once; a tick beyond it waits for one to finish. Default 1,
	// so a slow run is never overtaken by the next day's.
	MaxActiveRuns int
	// Deadline, when set, is how long after its tick a scheduled run must
	// have succeeded; past it the tick is recorded as late. 0: no deadline.
	Deadline time.Duration
}

var scheduleFields = []string{"catchup", "catchup_limit", "max_active_runs", "deadline"}

// scheduling reads the top-level scheduling fields present in fields.
func (ps *parser) scheduling(fields map[string]pair, p *Pipeline) {
	p.Scheduling = Scheduling{Catchup: DefaultCatchup, CatchupLimit: DefaultCatchupLimit, MaxActiveRuns: DefaultMaxActiveRuns}
	if kv, ok := fields["catchup"]; ok {
		if s, ok := ps.str(kv.val, "catchup"); ok {
			switch c := Catchup(s); c {
			case CatchupNone, CatchupLatest, CatchupAll:
				p.Scheduling.Catchup = c
			default:
				ps.errorf(ps.resolve(kv.val), "catchup: unknown policy %q (want none, latest or all)", s)
			}
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"catchup_limit", &p.Scheduling.CatchupLimit}, {"max_active_runs", &p.Scheduling.MaxActiveRuns}} {
		kv, ok := fields[f.name]
		if !ok {
			continue
		}
		if i, ok := ps.integer(kv.val, f.name); ok {
			if i < 1 {
				ps.errorf(ps.resolve(kv.val), "%s: must be at least 1, got %d", f.name, i)
			} else {
				*f.dst = i
			}
		}
	}
	if kv, ok := fields["deadline"]; ok {
		if d, ok := ps.duration(kv.val, "deadline"); ok {
			p.Scheduling.Deadline = d
		}
	}
}
