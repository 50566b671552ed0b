// Package transform compiles the transform steps of a pipeline (select,
// drop, rename, cast, filter, derive, dedupe, aggregate, join) against an
// input schema and applies them batch by batch.
//
// Every input row ends up in exactly one place: the output, filtered out
// (by a filter, a duplicate key, an inner join without a match),
// quarantined because a value did not cast or an expression failed on it,
// merged into a group by an aggregate, or held by a blocking step (dedupe
// with keep: last, aggregate) until Flush. Stats counts each, so
// In == Out + Filtered + Quarantined + Aggregated + Held always holds
// between calls, and Held is 0 once Flush has returned data.ErrEndOfInput.
package transform

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/privacy"
)

// ErrNoQuarantine is returned by Apply when a row must be quarantined but
// the caller passed no Quarantine: a row is never dropped silently.
var ErrNoQuarantine = errors.New("a row must be quarantined but there is no quarantine")

// Stats counts rows through a Chain.
type Stats struct {
	In          int64 // rows received
	Out         int64 // rows passed on
	Filtered    int64 // rows a filter, dedupe or inner join removed
	Quarantined int64 // rows sent to quarantine
	// Aggregated is the rows aggregate steps merged away: their input
	// rows minus the group rows they emitted. It is -1 for an aggregate
	// without group_by over no rows, which still emits its one row.
	Aggregated int64
	// Held is the rows a blocking step holds until Flush.
	Held int64
	// ConsentFiltered is the part of Filtered that consent steps removed:
	// records whose subject has not consented to the step's purpose.
	ConsentFiltered int64
}

// Chain is a compiled sequence of steps. Compile it once per stream; Apply
// it to each batch in order. A Chain is not safe for concurrent use: Apply
// reuses buffers between calls, and the batch it returns is valid only until
// the next call. Run one Chain per goroutine.
type Chain struct {
	in    *data.Schema
	out   *data.Schema
	ops   []op
	refs  []stepRef // refs[i] is the step ops[i] came from
	stats Stats

	// Flush state: the op being drained, and rows each emitted so far.
	flushing bool
	drain    int
	finished []bool
	emitted  []int64

	// Per-Apply state, reused between calls.
	cur   rows
	outB  data.Batch
	pos   []int64
	label string // "line" or "row": how reject positions are named
}

// op is one compiled operation. A derive step with several columns
// compiles to one op per column, so each sees the columns derived before it.
type op interface {
	// apply transforms the rows in place of c.cur, rejecting rows through
	// c.reject and reporting the rows it filtered.
	apply(ctx context.Context, c *Chain, q data.Quarantine) (filtered int64, rejected int64, err error)
	schema() *data.Schema
}

// blocker is an op that must see every row before it can emit any: it
// takes rows in during Apply and gives them out during Flush.
type blocker interface {
	op
	// absorb takes in every row of c.cur.
	absorb(ctx context.Context, c *Chain) error
	// finish is called once, when the input is exhausted, and returns how
	// many absorbed rows will not be emitted, as filtered or aggregated.
	finish() (filtered, aggregated int64)
	// next returns the next batch of rows to emit, or nil when done.
	next() *data.Batch
}

// stepRef names the step an op came from, for reject positions.
type stepRef struct {
	n    int
	kind pipeline.StepKind
}

// rows is the batch an op works on, with each row's index in the batch
// given to Apply (nil orig means row i is input row i).
type rows struct {
	in   *data.Batch
	b    *data.Batch
	orig []int32
	base int64 // rows received before this batch, for "row N" positions
}

// origRow returns the input row index of current row r.
func (r *rows) origRow(i int) int {
	if r.orig == nil {
		return i
	}
	return int(r.orig[i])
}

// OpenFunc opens a dataset a step reads besides the stream.
type OpenFunc func(ctx context.Context) (data.Source, error)

// Options holds what some steps need beyond the steps and the schema.
type Options struct {
	// Inputs open the datasets join steps read, by upstream task name.
	// Compile opens each one a join names, reads it to its end and closes
	// it.
	Inputs map[string]OpenFunc
	// Now is the run's time: check steps measure freshness against it and
	// consent steps ignore consent records dated after it. Zero means the
	// wall clock at Compile.
	Now time.Time
	// OpenEndpoint opens the source connector a consent step reads its
	// consent records from.
	OpenEndpoint func(ctx context.Context, ep *pipeline.Endpoint) (data.Source, error)
	// Keys gives pii steps the persistent keys of the hmac and tokenize
	// operators; nil compiles them for validation only (Apply then fails).
	Keys privacy.Keyring
}

// ErrJoinInput wraps a failure to open or read the dataset of a join
// step: unlike a compile error in the steps, it may be transient.
var ErrJoinInput = errors.New("reading a join dataset")

// Compile compiles steps against the input schema in, computing each
// step's output schema. Errors name the step by its 1-based number and kind,
// e.g. `step 3 (cast): column "age": no such column (have: id, name)`.
// A join step needs CompileContext and its dataset.
func Compile(steps []pipeline.Step, in *data.Schema) (*Chain, error) {
	return CompileContext(context.Background(), steps, in, Options{})
}

// CompileContext is Compile with the datasets join steps read; it loads
// each into memory, so it does I/O and honours ctx.
func CompileContext(ctx context.Context, steps []pipeline.Step, in *data.Schema, opts Options) (*Chain, error) {
	if in == nil {
		return nil, errors.New("compiling transform: nil input schema")
	}
	c := &Chain{in: in}
	cur := in
	for i, s := range steps {
		ops, err := compileStep(ctx, s, cur, opts)
		if err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i+1, s.Kind, err)
		}
		for _, o := range ops {
			c.ops = append(c.ops, o)
			c.refs = append(c.refs, stepRef{n: i + 1, kind: s.Kind})
			cur = o.schema()
		}
	}
	c.out = cur
	c.finished = make([]bool, len(c.ops))
	c.emitted = make([]int64, len(c.ops))
	c.drain = len(c.ops)
	for i, o := range c.ops {
		if _, ok := o.(blocker); ok {
			c.drain = i
			break
		}
	}
	return c, nil
}

func compileStep(ctx context.Context, s pipeline.Step, in *data.Schema, opts Options) ([]op, error) {
	switch s.Kind {
	case pipeline.StepSelect:
		o, err := newSelect(s.Columns, in)
		return []op{o}, err
	case pipeline.StepDrop:
		o, err := newDrop(s.Columns, in)
		return []op{o}, err
	case pipeline.StepRename:
		o, err := newRename(s.Renames, in)
		return []op{o}, err
	case pipeline.StepCast:
		o, err := newCast(s.Casts, in)
		return []op{o}, err
	case pipeline.StepFilter:
		o, err := newFilter(s.Expr, in)
		return []op{o}, err
	case pipeline.StepDerive:
		if len(s.Derives) == 0 {
			return nil, errors.New("no columns to derive")
		}
		ops := make([]op, 0, len(s.Derives))
		cur := in
		for _, d := range s.Derives {
			o, err := newDerive(d, cur)
			if err != nil {
				return nil, err
			}
			ops = append(ops, o)
			cur = o.schema()
		}
		return ops, nil
	case pipeline.StepDedupe:
		o, err := newDedupe(s.Dedupe, in)
		return []op{o}, err
	case pipeline.StepAggregate:
		o, err := newAggregate(s.Aggregate, in)
		return []op{o}, err
	case pipeline.StepJoin:
		o, err := newJoin(ctx, s.Join, in, opts)
		return []op{o}, err
	case pipeline.StepPII:
		o, err := newPII(ctx, s.PII, in, opts)
		return []op{o}, err
	case pipeline.StepCheck:
		o, err := newCheck(ctx, s.Check, in, opts)
		return []op{o}, err
	case pipeline.StepConsent:
		o, err := newConsent(ctx, s.Consent, in, opts)
		return []op{o}, err
	}
	return nil, fmt.Errorf("unknown step kind %q", s.Kind)
}

// Schema returns the schema of the batches Apply returns.
func (c *Chain) Schema() *data.Schema { return c.out }

// InputSchema returns the schema Compile was given; Apply expects batches
// with these fields.
func (c *Chain) InputSchema() *data.Schema { return c.in }

// Stats returns the counts of all batches applied successfully so far.
func (c *Chain) Stats() Stats {
	s := c.stats
	s.ConsentFiltered = c.consentFiltered()
	return s
}

// Blocking reports whether a step holds rows until Flush (dedupe with
// keep: last, aggregate): the caller must then call Flush after the last
// batch.
func (c *Chain) Blocking() bool { return c.drain < len(c.ops) }

// ErrFlushed is returned by Apply after Flush: the input was declared
// complete.
var ErrFlushed = errors.New("the chain was flushed: no more input")

// Apply runs the steps over one batch and returns the rows that pass. The
// returned batch may share memory with in and with the chain's buffers: it
// is valid until the next call to Apply. Rows that fail a cast or an
// expression go to q. Rows that reach a blocking step are held and come
// out of Flush. An error from q, a cancelled ctx, or a batch of the wrong
// schema stops the batch; Stats then does not count it.
func (c *Chain) Apply(ctx context.Context, in *data.Batch, q data.Quarantine) (*data.Batch, error) {
	if in == nil {
		return nil, errors.New("applying transform: nil batch")
	}
	if c.flushing {
		return nil, fmt.Errorf("applying transform: %w", ErrFlushed)
	}
	if in.Schema != c.in && !sameFields(in.Schema, c.in) {
		return nil, fmt.Errorf("applying transform: batch schema (%s) differs from the input schema (%s)", in.Schema, c.in)
	}
	c.cur = rows{in: in, b: in, base: c.stats.In}
	c.label = "row"
	if in.Pos != nil {
		c.label = "line"
	}
	out, rs, err := c.run(ctx, 0, q)
	if err != nil {
		return nil, err
	}
	c.stats.In += int64(in.Len)
	c.count(out, rs)
	return out, nil
}

// runStats counts what one run of the ops did.
type runStats struct{ filtered, rejected, held int64 }

func (c *Chain) count(out *data.Batch, rs runStats) {
	c.stats.Out += int64(out.Len)
	c.stats.Filtered += rs.filtered
	c.stats.Quarantined += rs.rejected
	c.stats.Held += rs.held
}

// run applies ops[from:] to c.cur. A blocking op takes the rows in, and
// the result is then empty.
func (c *Chain) run(ctx context.Context, from int, q data.Quarantine) (*data.Batch, runStats, error) {
	var rs runStats
	for i := from; i < len(c.ops); i++ {
		if err := ctx.Err(); err != nil {
			return nil, rs, fmt.Errorf("applying transform: %w", err)
		}
		if c.cur.b.Len == 0 {
			break
		}
		if bl, ok := c.ops[i].(blocker); ok {
			n := int64(c.cur.b.Len)
			if err := bl.absorb(ctx, c); err != nil {
				return nil, rs, fmt.Errorf("step %d (%s): %w", c.refs[i].n, c.refs[i].kind, err)
			}
			rs.held += n
			c.cur.b = &data.Batch{Schema: bl.schema()}
			break
		}
		f, r, err := c.ops[i].apply(ctx, c, q)
		if err != nil {
			return nil, rs, err
		}
		rs.filtered += f
		rs.rejected += r
	}
	return c.finish(c.cur.b), rs, nil
}

// Flush declares the input complete and returns the rows blocking steps
// held, passed through the steps after them, one batch per call. It
// returns data.ErrEndOfInput when nothing is left (at once for a chain
// without a blocking step). The batch is valid until the next call. Rows
// emitted by a blocking step that are quarantined later are named
// "step N (KIND) output row M", or by their source line when a dedupe kept
// it.
func (c *Chain) Flush(ctx context.Context, q data.Quarantine) (*data.Batch, error) {
	c.flushing = true
	for c.drain < len(c.ops) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("flushing transform: %w", err)
		}
		i := c.drain
		bl, ok := c.ops[i].(blocker)
		if !ok {
			c.drain++
			continue
		}
		if !c.finished[i] {
			c.finished[i] = true
			f, a := bl.finish()
			c.stats.Filtered += f
			c.stats.Aggregated += a
			c.stats.Held -= f + a
		}
		b := bl.next()
		if b == nil {
			c.drain++
			continue
		}
		c.cur = rows{in: b, b: b, base: c.emitted[i]}
		c.label = "line"
		if b.Pos == nil {
			c.label = fmt.Sprintf("step %d (%s) output row", c.refs[i].n, c.refs[i].kind)
		}
		out, rs, err := c.run(ctx, i+1, q)
		if err != nil {
			return nil, err
		}
		c.emitted[i] += int64(b.Len)
		c.stats.Held -= int64(b.Len)
		c.count(out, rs)
		if out.Len > 0 {
			return out, nil
		}
	}
	return nil, data.ErrEndOfInput
}

// finish sets the output batch's schema and positions.
func (c *Chain) finish(b *data.Batch) *data.Batch {
	c.outB = data.Batch{Schema: c.out, Cols: b.Cols, Len: b.Len}
	if b.Len == 0 {
		// Later steps may not have run: present no rows in the output
		// schema.
		c.outB.Cols = emptyCols(c.out)
	}
	if c.cur.in.Pos != nil {
		if c.cur.orig == nil {
			c.outB.Pos = c.cur.in.Pos[:b.Len]
		} else {
			c.pos = c.pos[:0]
			for _, o := range c.cur.orig[:b.Len] {
				c.pos = append(c.pos, c.cur.in.Pos[o])
			}
			c.outB.Pos = c.pos
		}
	}
	return &c.outB
}

// emptyCols returns zero-length columns of the schema's types.
func emptyCols(s *data.Schema) []data.Column {
	cols := make([]data.Column, len(s.Fields))
	for i, f := range s.Fields {
		cols[i] = data.Column{Type: f.Type}
	}
	return cols
}

// reject sends current row r to q with reason and counts nothing: the
// caller counts.
func (c *Chain) reject(ctx context.Context, q data.Quarantine, r int, reason string) error {
	if q == nil {
		return fmt.Errorf("%s: %w", reason, ErrNoQuarantine)
	}
	o := c.cur.origRow(r)
	var pos string
	if c.cur.in.Pos != nil {
		pos = fmt.Sprintf("%s %d", c.label, c.cur.in.Pos[o])
	} else {
		pos = fmt.Sprintf("%s %d", c.label, c.cur.base+int64(o)+1)
	}
	if err := q.Reject(ctx, data.Reject{Pos: pos, Reason: reason, Raw: rowJSON(c.cur.in, o)}); err != nil {
		return fmt.Errorf("quarantining %s: %w", pos, err)
	}
	return nil
}

// keepRows narrows the current rows to those whose index is in keep, by
// copying them into dst (an op-owned buffer). When keep holds every row,
// the current batch is used as it is.
func (c *Chain) keepRows(keep []int32, dst *compactBuf) {
	if len(keep) == c.cur.b.Len {
		return
	}
	b := c.cur.b
	dst.batch.Schema = b.Schema
	if len(dst.batch.Cols) != len(b.Cols) {
		dst.batch.Cols = make([]data.Column, len(b.Cols))
	}
	for i := range b.Cols {
		dst.batch.Cols[i].Gather(&b.Cols[i], keep)
	}
	dst.batch.Len = len(keep)
	dst.orig = dst.orig[:0]
	for _, k := range keep {
		dst.orig = append(dst.orig, int32(c.cur.origRow(int(k))))
	}
	c.cur.b = &dst.batch
	c.cur.orig = dst.orig
}

// compactBuf is an op's buffer for the rows it keeps.
type compactBuf struct {
	batch data.Batch
	orig  []int32
}

func sameFields(a, b *data.Schema) bool {
	if a == nil || b == nil || len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i] != b.Fields[i] {
			return false
		}
	}
	return true
}
