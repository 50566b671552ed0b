package transform

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// join looks each row up in a dataset held in memory (the right side,
// loaded once at compile time) and appends the selected right columns of
// the matching record. The right side must have one record per key: a
// lookup that could match twice would multiply rows, so a duplicate key
// is an error, not a silent choice. Null keys never match, on either side
// (as in SQL). With how: inner, a row without a match is filtered; with
// how: left, it passes with nulls in the added columns.
type join struct {
	with       string
	leftIdx    []int
	how        pipeline.JoinHow
	right      *keyTable // key columns of the right side → record id
	vals       rowStore  // selected right columns, by record id
	out        *data.Schema
	nLeft      int
	rightNames []string
	refs       []*data.Column
	ids        []int32
	keep       []int32
	addCols    []data.Column
	cols       []data.Column
	batch      data.Batch
	buf        compactBuf
}

func newJoin(ctx context.Context, j *pipeline.Join, in *data.Schema, opts Options) (op, error) {
	if j == nil || len(j.On) == 0 {
		return nil, errors.New("no columns to join on")
	}
	what := fmt.Sprintf("join with %q", j.With)
	open, ok := opts.Inputs[j.With]
	if !ok {
		return nil, fmt.Errorf("%s: no dataset of task %q was given to read", what, j.With)
	}
	maxRows := j.MaxRows
	if maxRows <= 0 {
		maxRows = pipeline.DefaultJoinMaxRows
	}
	src, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrJoinInput, err)
	}
	defer src.Close()
	rs := src.Schema()

	o := &join{with: j.With, how: j.How, nLeft: len(in.Fields)}
	var keyFields []data.Field
	var rightKey []int
	isKey := map[string]bool{}
	for _, k := range j.On {
		li := in.Index(k.Left)
		if li < 0 {
			return nil, fmt.Errorf("%s: %w", what, noColumn(k.Left, in))
		}
		ri := rs.Index(k.Right)
		if ri < 0 {
			return nil, fmt.Errorf("%s: column %q: no such column in its dataset (have: %s)", what, k.Right, strings.Join(rs.Names(), ", "))
		}
		lt, rt := in.Fields[li].Type, rs.Fields[ri].Type
		if lt != rt {
			return nil, fmt.Errorf("%s: column %q is %s but %q in its dataset is %s; cast one side so they match", what, k.Left, lt, k.Right, rt)
		}
		o.leftIdx = append(o.leftIdx, li)
		rightKey = append(rightKey, ri)
		keyFields = append(keyFields, rs.Fields[ri])
		isKey[k.Right] = true
		o.rightNames = append(o.rightNames, k.Right)
	}
	sel := j.Select
	if len(sel) == 0 {
		for _, f := range rs.Fields {
			if !isKey[f.Name] {
				sel = append(sel, f.Name)
			}
		}
	}
	fields := append([]data.Field(nil), in.Fields...)
	var selIdx []int
	var selFields []data.Field
	for _, name := range sel {
		ri := rs.Index(name)
		if ri < 0 {
			return nil, fmt.Errorf("%s: select: column %q: no such column in its dataset (have: %s)", what, name, strings.Join(rs.Names(), ", "))
		}
		if in.Index(name) >= 0 {
			return nil, fmt.Errorf("%s: select: column %q is already in the stream; rename one of them before the join, or leave it out of select", what, name)
		}
		selIdx = append(selIdx, ri)
		selFields = append(selFields, rs.Fields[ri])
		fields = append(fields, rs.Fields[ri])
	}
	out, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	o.out = out
	o.right = newKeyTable(keyFields)
	o.vals = newRowStore(selFields)
	if err := o.load(ctx, src, rightKey, selIdx, maxRows); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return o, nil
}

// load reads the right side into memory.
func (o *join) load(ctx context.Context, src data.Source, keyIdx, selIdx []int, maxRows int) error {
	var keys, vals []*data.Column
	var n int64
	for {
		b, err := src.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrJoinInput, err)
		}
		if n+int64(b.Len) > int64(maxRows) {
			return fmt.Errorf("its dataset has more than max_rows (%d) records: it is held in memory; raise max_rows or make the dataset smaller upstream", maxRows)
		}
		keys = colRefs(keys, b, keyIdx)
		vals = colRefs(vals, b, selIdx)
	rows:
		for r := 0; r < b.Len; r++ {
			n++
			for _, c := range keys {
				if c.IsNull(r) {
					continue rows
				}
			}
			id, added := o.right.insert(keys, r)
			if !added {
				return fmt.Errorf("duplicate key %s in its dataset (record %d): a lookup join needs one record per key; dedupe it upstream",
					o.right.keyJSON(o.rightNames, id), n)
			}
			o.vals.appendRow(vals, r)
		}
	}
}

func (o *join) schema() *data.Schema { return o.out }

// lookup returns the right record matching row r of o.refs, or -1.
func (o *join) lookup(r int) int32 {
	for _, col := range o.refs {
		if col.IsNull(r) {
			return -1
		}
	}
	return o.right.find(o.refs, r)
}

func (o *join) apply(_ context.Context, c *Chain, _ data.Quarantine) (filtered, rejected int64, err error) {
	b := c.cur.b
	o.refs = colRefs(o.refs, b, o.leftIdx)
	o.ids = o.ids[:0]
	o.keep = o.keep[:0]
	for r := 0; r < b.Len; r++ {
		id := o.lookup(r)
		if id < 0 && o.how != pipeline.JoinLeft {
			filtered++
			continue
		}
		o.keep = append(o.keep, int32(r))
		o.ids = append(o.ids, id)
	}
	c.keepRows(o.keep, &o.buf)
	b = c.cur.b
	if len(o.addCols) != len(o.vals.cols) {
		o.addCols = make([]data.Column, len(o.vals.cols))
	}
	for k := range o.addCols {
		dst := &o.addCols[k]
		dst.Type = o.vals.cols[k].Type
		resetColumn(dst, b.Len)
		src := &o.vals.cols[k]
		for _, id := range o.ids {
			if id < 0 {
				dst.AppendNull()
				continue
			}
			dst.AppendValue(src, int(id))
		}
	}
	o.cols = append(append(o.cols[:0], b.Cols...), o.addCols...)
	o.batch = data.Batch{Schema: o.out, Cols: o.cols, Len: b.Len}
	c.cur.b = &o.batch
	return filtered, 0, nil
}
