package task

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/privacy"
	"github.com/sluicehq/sluice/internal/transform"
)

// withKeys gives pii steps the keyring's persistent privacy keys, when
// the executor's Crypter is a keyring (it is, outside tests of other
// concerns).
func (d *Data) withKeys(opts transform.Options) transform.Options {
	if kr, ok := d.crypt.(privacy.Keyring); ok {
		opts.Keys = kr
	}
	return opts
}

// exitGuard is the guard at a data task's sink: it refuses, before the
// sink writes anything, every column declared or detected as personal
// data that no pii step protected and whose sensitivity is above the
// sink's classification (the load's classification:, else the
// pipeline's). Nil (checks nothing) for a task without a sink connector
// (its output is an encrypted dataset inside sluice, not an exit) and for
// a sink classified restricted, which every sensitivity allows.
type exitGuard struct {
	g       privacy.Guard
	cols    []privacy.GuardColumn
	checked bool
}

// newExitGuard builds the guard and runs the checks that need no data.
func newExitGuard(job *Job, chain *transform.Chain, schema *data.Schema) (*exitGuard, error) {
	t := job.Task
	if t.Load == nil {
		return nil, nil
	}
	class := t.Load.Classification
	if class == "" {
		class = job.Pipeline.Classification
	}
	if class == pipeline.Restricted {
		return nil, nil
	}
	// The classification words are the sensitivity words (public <
	// internal < confidential < restricted).
	g := privacy.Guard{Task: t.Name, Sink: fmt.Sprintf("the %s sink", t.Load.Connector),
		Class: privacy.Sensitivity(classOr(class)), Declared: t.PIIColumns}
	if a := t.AllowRawPII; a != nil {
		g.Allowed = a.Columns
		if job.Log != nil {
			fmt.Fprintf(job.Log, "allow_raw_pii: columns %v may reach the %s sink unprotected: %s\n", a.Columns, t.Load.Connector, a.Reason)
		}
	}
	var lin map[string]transform.Lineage
	if chain != nil {
		lin = chain.Lineage()
	}
	eg := &exitGuard{g: g}
	for _, f := range schema.Fields {
		c := privacy.GuardColumn{Name: f.Name, From: f.Name}
		if chain != nil {
			l := lin[f.Name]
			c.From, c.Protected = l.From, l.Protected
		}
		eg.cols = append(eg.cols, c)
	}
	if err := g.CheckDeclared(eg.cols); err != nil {
		return nil, Permanent(err)
	}
	return eg, nil
}

func classOr(c pipeline.Classification) pipeline.Classification {
	if c == "" {
		return pipeline.Internal
	}
	return c
}

// check runs detection on the first non-empty batch bound for the sink.
func (eg *exitGuard) check(b *data.Batch) error {
	if eg == nil || eg.checked || b == nil || b.Len == 0 {
		return nil
	}
	eg.checked = true
	return Permanent(eg.g.CheckBatch(eg.cols, b))
}

// expiry is when a dataset the task writes now must be deleted; zero
// without retain:.
func expiry(t *pipeline.Task, now time.Time) time.Time {
	if t.Retain <= 0 {
		return time.Time{}
	}
	return now.Add(t.Retain).UTC()
}
