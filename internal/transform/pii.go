package transform

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/privacy"
)

// piiOp applies privacy operators to columns. Each operator reads the
// column as it reached the step (a per-subject token reads the subject
// column before the step touches it) and writes a new column; drop removes
// its column. A value an operator cannot transform (a date that does not
// parse) sends the row to quarantine: it never passes raw.
type piiOp struct {
	ops   []*privacy.Operator
	in    []int // input column of ops[i]
	subj  []int // input column of ops[i]'s subject, or -1
	out   *data.Schema
	src   []int // output column j comes from input column src[j] ...
	byOp  []int // ... through ops[byOp[j]], or unchanged when -1
	bufs  []data.Column
	cols  []data.Column
	batch data.Batch
	dead  []bool
	keep  []int32
	buf   compactBuf
	rejs  [][]opReject // per operator, reused
	errs  []error
}

// opReject is a value an operator could not transform.
type opReject struct {
	row    int
	reason string
}

// minParallelRows is the batch size from which operators run side by side:
// below it, starting goroutines costs more than it saves.
const minParallelRows = 256

func newPII(ctx context.Context, rules []privacy.Rule, in *data.Schema, opts Options) (op, error) {
	if len(rules) == 0 {
		return nil, errors.New("no columns to protect")
	}
	var tok *privacy.Tokenizer
	needsKeys := false
	for _, r := range rules {
		needsKeys = needsKeys || r.Op == privacy.OpHMAC || r.Op == privacy.OpTokenize
	}
	if needsKeys && opts.Keys != nil {
		var err error
		if tok, err = privacy.NewTokenizer(ctx, opts.Keys); err != nil {
			return nil, err
		}
	}
	p := &piiOp{}
	opOf := map[int]int{}
	for _, r := range rules {
		i := in.Index(r.Column)
		if i < 0 {
			return nil, noColumn(r.Column, in)
		}
		if _, dup := opOf[i]; dup {
			return nil, fmt.Errorf("column %q: listed twice", r.Column)
		}
		s := -1
		if r.Subject != "" {
			if s = in.Index(r.Subject); s < 0 {
				return nil, fmt.Errorf("column %q: tokenize: subject: %w", r.Column, noColumn(r.Subject, in))
			}
		}
		o, err := privacy.NewOperator(r, in.Fields[i].Type, tok)
		if err != nil {
			return nil, err
		}
		opOf[i] = len(p.ops)
		p.ops = append(p.ops, o)
		p.in = append(p.in, i)
		p.subj = append(p.subj, s)
	}
	var fields []data.Field
	for i, f := range in.Fields {
		k, ok := opOf[i]
		if !ok {
			fields = append(fields, f)
			p.src, p.byOp = append(p.src, i), append(p.byOp, -1)
			continue
		}
		if p.ops[k].Drops() {
			continue
		}
		fields = append(fields, data.Field{Name: f.Name, Type: p.ops[k].OutputType()})
		p.src, p.byOp = append(p.src, i), append(p.byOp, k)
	}
	if len(fields) == 0 {
		return nil, errors.New("dropping every column leaves nothing to pass on")
	}
	out, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("protecting columns: %w", err)
	}
	p.out = out
	p.bufs = make([]data.Column, len(p.ops))
	return p, nil
}

func (p *piiOp) schema() *data.Schema { return p.out }

func (p *piiOp) apply(ctx context.Context, c *Chain, q data.Quarantine) (filtered, rejected int64, err error) {
	b := c.cur.b
	p.dead = append(p.dead[:0], make([]bool, b.Len)...)
	reject := func(r int, reason string) error {
		if p.dead[r] {
			return nil
		}
		p.dead[r] = true
		rejected++
		return c.reject(ctx, q, r, reason)
	}
	// Operators on different columns are independent, and keyed ones cost
	// about a microsecond a value (HMAC, AES-SIV): they run side by side,
	// one goroutine each, when there are several. Rejections are collected
	// per operator and applied in operator order afterwards, so the result
	// never depends on timing.
	if cap(p.rejs) < len(p.ops) {
		p.rejs = make([][]opReject, len(p.ops))
		p.errs = make([]error, len(p.ops))
	}
	rejs, errs := p.rejs[:len(p.ops)], p.errs[:len(p.ops)]
	active := 0
	for k, o := range p.ops {
		rejs[k], errs[k] = rejs[k][:0], nil
		if !o.Drops() {
			active++
		}
	}
	parallel := active > 1 && b.Len >= minParallelRows
	var wg sync.WaitGroup
	for k, o := range p.ops {
		if o.Drops() {
			continue
		}
		var subj *data.Column
		if p.subj[k] >= 0 {
			subj = &b.Cols[p.subj[k]]
		}
		run := func() {
			errs[k] = o.Apply(ctx, &p.bufs[k], &b.Cols[p.in[k]], subj, b.Len, func(r int, reason string) error {
				rejs[k] = append(rejs[k], opReject{row: r, reason: reason})
				return nil
			})
		}
		if !parallel {
			run()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, 0, fmt.Errorf("step %s: %w", "pii", err)
		}
	}
	for _, rs := range rejs {
		for _, rj := range rs {
			if err := reject(rj.row, rj.reason); err != nil {
				return 0, 0, err
			}
		}
	}
	p.cols = p.cols[:0]
	for j, i := range p.src {
		if k := p.byOp[j]; k >= 0 {
			p.cols = append(p.cols, p.bufs[k])
		} else {
			p.cols = append(p.cols, b.Cols[i])
		}
	}
	p.batch = data.Batch{Schema: p.out, Cols: p.cols, Len: b.Len}
	c.cur.b = &p.batch
	if rejected > 0 {
		p.keep = p.keep[:0]
		for r, d := range p.dead {
			if !d {
				p.keep = append(p.keep, int32(r))
			}
		}
		c.keepRows(p.keep, &p.buf)
	}
	return 0, rejected, nil
}

// Lineage says where an output column of a Chain comes from.
type Lineage struct {
	// From is the input column the output column carries (renamed,
	// selected, filtered, cast or protected, but not computed from other
	// columns); "" for a computed column (derive, aggregate measure, a
	// column a join added).
	From string
	// Protected is true when a pii step transformed the column and no step
	// since replaced it with something computed.
	Protected bool
}

// Lineage returns, per output column, the input column it carries and
// whether a pii operator protected it. It is what the guard at the sink
// asks: a rename carries the protection (and the raw data); a derive, even
// from a protected column, is a new column and is not protected.
func (c *Chain) Lineage() map[string]Lineage {
	cur := make([]Lineage, len(c.in.Fields))
	for i, f := range c.in.Fields {
		cur[i] = Lineage{From: f.Name}
	}
	in := c.in
	for _, o := range c.ops {
		out := o.schema()
		next := make([]Lineage, len(out.Fields))
		switch o := o.(type) {
		case *project:
			for j, i := range o.idx {
				next[j] = cur[i]
			}
		case *derive:
			copy(next, cur)
			next[o.pos] = Lineage{}
		case *aggregate:
			for j, i := range o.groupIdx {
				next[j] = cur[i]
			}
		case *join:
			copy(next, cur[:min(len(cur), len(next))])
		case *piiOp:
			for j, i := range o.src {
				next[j] = cur[i]
				if o.byOp[j] >= 0 {
					next[j].Protected = true
				}
			}
		default:
			// Steps that keep the schema's columns (filter, cast, dedupe,
			// checks): carry by name; anything new is computed.
			for j, f := range out.Fields {
				if i := in.Index(f.Name); i >= 0 {
					next[j] = cur[i]
				}
			}
		}
		cur, in = next, out
	}
	m := make(map[string]Lineage, len(cur))
	for j, f := range c.out.Fields {
		m[f.Name] = cur[j]
	}
	return m
}

// Protected returns the output columns a pii step protected.
func (c *Chain) Protected() map[string]bool {
	m := map[string]bool{}
	for name, l := range c.Lineage() {
		if l.Protected {
			m[name] = true
		}
	}
	return m
}
