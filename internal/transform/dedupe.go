package transform

import (
	"context"
	"errors"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// dedupeKey resolves the key columns of a dedupe step: every column when
// none are named.
func dedupeKey(key []string, in *data.Schema) ([]int, []data.Field, error) {
	if len(key) == 0 {
		idx := make([]int, len(in.Fields))
		for i := range idx {
			idx[i] = i
		}
		return idx, in.Fields, nil
	}
	idx := make([]int, 0, len(key))
	fields := make([]data.Field, 0, len(key))
	for _, name := range key {
		i := in.Index(name)
		if i < 0 {
			return nil, nil, noColumn(name, in)
		}
		idx = append(idx, i)
		fields = append(fields, in.Fields[i])
	}
	return idx, fields, nil
}

func newDedupe(d *pipeline.Dedupe, in *data.Schema) (op, error) {
	if d == nil {
		return nil, errors.New("no dedupe settings")
	}
	idx, fields, err := dedupeKey(d.Key, in)
	if err != nil {
		return nil, err
	}
	switch d.Keep {
	case pipeline.KeepFirst, "":
		return &dedupeFirst{idx: idx, seen: newKeyTable(fields), out: in}, nil
	case pipeline.KeepLast:
		return &dedupeLast{idx: idx, seen: newKeyTable(fields), rows: newRowStore(in.Fields), out: in}, nil
	}
	return nil, errors.New("keep: want first or last, got " + string(d.Keep))
}

// dedupeFirst passes the first row of each key and filters the rest, as
// the rows stream by. It remembers every distinct key it has seen, so its
// memory grows with the number of distinct keys (not with the rows).
type dedupeFirst struct {
	idx  []int
	seen *keyTable
	out  *data.Schema
	refs []*data.Column
	keep []int32
	buf  compactBuf
}

func (d *dedupeFirst) schema() *data.Schema { return d.out }

func (d *dedupeFirst) apply(_ context.Context, c *Chain, _ data.Quarantine) (filtered, rejected int64, err error) {
	b := c.cur.b
	d.refs = colRefs(d.refs, b, d.idx)
	d.keep = d.keep[:0]
	for r := 0; r < b.Len; r++ {
		if _, added := d.seen.insert(d.refs, r); added {
			d.keep = append(d.keep, int32(r))
		} else {
			filtered++
		}
	}
	c.keepRows(d.keep, &d.buf)
	return filtered, 0, nil
}

// dedupeLast keeps, for each key, the last row with that key. It cannot
// know a row is the last until the input ends, so it holds one row per
// distinct key and emits them at Flush, in the order each key first
// appeared. Source positions travel with the rows when the input has
// them.
type dedupeLast struct {
	idx      []int
	seen     *keyTable
	rows     rowStore
	pos      []int64
	noPos    bool
	out      *data.Schema
	refs     []*data.Column
	all      []*data.Column
	absorbed int64
	emitted  int
}

func (d *dedupeLast) schema() *data.Schema { return d.out }

func (d *dedupeLast) apply(context.Context, *Chain, data.Quarantine) (int64, int64, error) {
	return 0, 0, errors.New("dedupe (keep last) is a blocking step")
}

func (d *dedupeLast) absorb(_ context.Context, c *Chain) error {
	b := c.cur.b
	d.refs = colRefs(d.refs, b, d.idx)
	d.all = d.all[:0]
	for i := range b.Cols {
		d.all = append(d.all, &b.Cols[i])
	}
	if c.cur.in.Pos == nil {
		d.noPos = true
	}
	for r := 0; r < b.Len; r++ {
		id, added := d.seen.insert(d.refs, r)
		var p int64
		if !d.noPos {
			p = c.cur.in.Pos[c.cur.origRow(r)]
		}
		if added {
			d.rows.appendRow(d.all, r)
			d.pos = append(d.pos, p)
		} else {
			d.rows.setRow(int(id), d.all, r)
			d.pos[id] = p
		}
	}
	d.absorbed += int64(b.Len)
	return nil
}

func (d *dedupeLast) finish() (filtered, aggregated int64) {
	return d.absorbed - int64(d.rows.n), 0
}

func (d *dedupeLast) next() *data.Batch {
	if d.emitted >= d.rows.n {
		return nil
	}
	from := d.emitted
	to := min(d.rows.n, from+data.DefaultBatchSize)
	d.emitted = to
	b := &data.Batch{Schema: d.out, Cols: make([]data.Column, len(d.out.Fields)), Len: to - from}
	for k := range b.Cols {
		b.Cols[k] = d.rows.slice(k, from, to)
	}
	if !d.noPos {
		b.Pos = d.pos[from:to:to]
	}
	return b
}
