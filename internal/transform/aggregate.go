package transform

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// aggregate groups rows by the group_by columns and keeps one typed
// accumulator slot per group and measure: no map or boxed value per row.
// It is a blocking step: the groups come out at Flush, in the order each
// group first appeared, group_by columns first, then the measures in the
// order written. Without group_by, everything is one group, and an empty
// input still yields one row (count 0, other measures null), as SQL does.
// Nulls: a null group_by value is a group of its own; every measure but
// count() skips nulls, and a measure that saw no value is null (count and
// count_distinct are 0).
type aggregate struct {
	groupIdx   []int
	groupNames []string
	groups     *keyTable // nil without group_by
	measures   []measure
	out        *data.Schema

	refs     []*data.Column
	gids     []int32
	absorbed int64
	n        int // groups
	emitted  int
}

// measure is the accumulator of one measure over every group.
type measure interface {
	// add folds row r of b into group g. It returns an error for a value
	// that cannot be accumulated (an int sum overflowing).
	add(b *data.Batch, gids []int32) error
	// grow makes room for n groups.
	grow(n int)
	// column returns the measure for groups [from, to).
	column(from, to int) data.Column
}

func newAggregate(a *pipeline.Aggregate, in *data.Schema) (op, error) {
	if a == nil || len(a.Measures) == 0 {
		return nil, errors.New("no measures to compute")
	}
	g := &aggregate{}
	var fields []data.Field
	for _, name := range a.GroupBy {
		i := in.Index(name)
		if i < 0 {
			return nil, noColumn(name, in)
		}
		g.groupIdx = append(g.groupIdx, i)
		g.groupNames = append(g.groupNames, name)
		fields = append(fields, in.Fields[i])
	}
	if len(fields) > 0 {
		g.groups = newKeyTable(fields)
	}
	for _, m := range a.Measures {
		acc, t, err := newMeasure(m, in, g)
		if err != nil {
			return nil, fmt.Errorf("measure %q: %w", m.Name, err)
		}
		g.measures = append(g.measures, acc)
		fields = append(fields, data.Field{Name: m.Name, Type: t})
	}
	out, err := data.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("aggregating: %w", err)
	}
	g.out = out
	if g.groups == nil {
		g.n = 1
		for _, m := range g.measures {
			m.grow(1)
		}
	}
	return g, nil
}

func measureCall(m pipeline.Measure) string {
	return fmt.Sprintf("%s(%s)", m.Func, m.Column)
}

func newMeasure(m pipeline.Measure, in *data.Schema, g *aggregate) (measure, data.Type, error) {
	if m.Func == pipeline.AggCount && m.Column == "" {
		return &countAcc{col: -1}, data.Int, nil
	}
	col := in.Index(m.Column)
	if col < 0 {
		return nil, data.Invalid, noColumn(m.Column, in)
	}
	t := in.Fields[col].Type
	numeric := t == data.Int || t == data.Float
	switch m.Func {
	case pipeline.AggCount:
		return &countAcc{col: col}, data.Int, nil
	case pipeline.AggSum:
		switch t {
		case data.Int:
			return &sumIntAcc{col: col, call: measureCall(m), name: m.Name, g: g}, data.Int, nil
		case data.Float:
			return &floatAcc{col: col}, data.Float, nil
		}
	case pipeline.AggAvg:
		if numeric {
			return &floatAcc{col: col, avg: true}, data.Float, nil
		}
	case pipeline.AggMin, pipeline.AggMax:
		return newMinMax(col, t, m.Func == pipeline.AggMax), t, nil
	case pipeline.AggCountDistinct:
		return &distinctAcc{col: col, set: newKeyTable([]data.Field{{Name: "group", Type: data.Int}, {Name: "value", Type: t}})}, data.Int, nil
	default:
		return nil, data.Invalid, fmt.Errorf("unknown function %q", m.Func)
	}
	return nil, data.Invalid, fmt.Errorf("%s: column %q is %s, want int or float", measureCall(m), m.Column, t)
}

func (a *aggregate) schema() *data.Schema { return a.out }

func (a *aggregate) apply(context.Context, *Chain, data.Quarantine) (int64, int64, error) {
	return 0, 0, errors.New("aggregate is a blocking step")
}

func (a *aggregate) absorb(_ context.Context, c *Chain) error {
	b := c.cur.b
	a.gids = a.gids[:0]
	if a.groups == nil {
		for range b.Len {
			a.gids = append(a.gids, 0)
		}
	} else {
		a.refs = colRefs(a.refs, b, a.groupIdx)
		for r := 0; r < b.Len; r++ {
			id, _ := a.groups.insert(a.refs, r)
			a.gids = append(a.gids, id)
		}
		if n := a.groups.len(); n > a.n {
			a.n = n
			for _, m := range a.measures {
				m.grow(n)
			}
		}
	}
	for _, m := range a.measures {
		if err := m.add(b, a.gids); err != nil {
			return err
		}
	}
	a.absorbed += int64(b.Len)
	return nil
}

func (a *aggregate) finish() (filtered, aggregated int64) {
	return 0, a.absorbed - int64(a.n)
}

func (a *aggregate) next() *data.Batch {
	if a.emitted >= a.n {
		return nil
	}
	from := a.emitted
	to := min(a.n, from+data.DefaultBatchSize)
	a.emitted = to
	b := &data.Batch{Schema: a.out, Cols: make([]data.Column, 0, len(a.out.Fields)), Len: to - from}
	for k := range a.groupIdx {
		b.Cols = append(b.Cols, a.groups.keys.slice(k, from, to))
	}
	for _, m := range a.measures {
		b.Cols = append(b.Cols, m.column(from, to))
	}
	return b
}

// groupJSON names group g in an error message.
func (a *aggregate) groupJSON(g int32) string {
	if a.groups == nil {
		return "(all rows)"
	}
	return a.groups.keyJSON(a.groupNames, g)
}

// growTo extends s with zero values to length n.
func growTo[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	return append(s, make([]T, n-len(s))...)
}

// nullsFrom builds a null mask for groups [from, to) from seen, nil when
// every group saw a value.
func nullsFrom(seen []bool, from, to int) []bool {
	var nulls []bool
	for g := from; g < to; g++ {
		if !seen[g] {
			if nulls == nil {
				nulls = make([]bool, to-from)
			}
			nulls[g-from] = true
		}
	}
	return nulls
}

// countAcc is count() (col < 0) or count(col): non-null values.
type countAcc struct {
	col    int
	counts []int64
}

func (m *countAcc) grow(n int) { m.counts = growTo(m.counts, n) }

func (m *countAcc) add(b *data.Batch, gids []int32) error {
	if m.col < 0 {
		for _, g := range gids {
			m.counts[g]++
		}
		return nil
	}
	c := &b.Cols[m.col]
	for r, g := range gids {
		if !c.IsNull(r) {
			m.counts[g]++
		}
	}
	return nil
}

func (m *countAcc) column(from, to int) data.Column {
	return data.Column{Type: data.Int, Ints: m.counts[from:to:to]}
}

// sumIntAcc is sum over an int column; it fails rather than wrap around.
type sumIntAcc struct {
	col        int
	call, name string
	g          *aggregate
	sums       []int64
	seen       []bool
}

func (m *sumIntAcc) grow(n int) {
	m.sums = growTo(m.sums, n)
	m.seen = growTo(m.seen, n)
}

func (m *sumIntAcc) add(b *data.Batch, gids []int32) error {
	c := &b.Cols[m.col]
	for r, g := range gids {
		if c.IsNull(r) {
			continue
		}
		v, s := c.Ints[r], m.sums[g]
		if (v > 0 && s > math.MaxInt64-v) || (v < 0 && s < math.MinInt64-v) {
			return fmt.Errorf("measure %q: %s overflows int in group %s; cast the column to float to sum it", m.name, m.call, m.g.groupJSON(g))
		}
		m.sums[g] = s + v
		m.seen[g] = true
	}
	return nil
}

func (m *sumIntAcc) column(from, to int) data.Column {
	return data.Column{Type: data.Int, Ints: m.sums[from:to:to], Nulls: nullsFrom(m.seen, from, to)}
}

// floatAcc is sum over a float column, or avg over an int or float one.
type floatAcc struct {
	col  int
	avg  bool
	sums []float64
	ns   []int64
}

func (m *floatAcc) grow(n int) {
	m.sums = growTo(m.sums, n)
	m.ns = growTo(m.ns, n)
}

func (m *floatAcc) add(b *data.Batch, gids []int32) error {
	c := &b.Cols[m.col]
	for r, g := range gids {
		if c.IsNull(r) {
			continue
		}
		if c.Type == data.Int {
			m.sums[g] += float64(c.Ints[r])
		} else {
			m.sums[g] += c.Floats[r]
		}
		m.ns[g]++
	}
	return nil
}

func (m *floatAcc) column(from, to int) data.Column {
	out := data.Column{Type: data.Float, Floats: make([]float64, to-from)}
	for g := from; g < to; g++ {
		switch {
		case m.ns[g] == 0:
			if out.Nulls == nil {
				out.Nulls = make([]bool, to-from)
			}
			out.Nulls[g-from] = true
		case m.avg:
			out.Floats[g-from] = m.sums[g] / float64(m.ns[g])
		default:
			out.Floats[g-from] = m.sums[g]
		}
	}
	return out
}

// minMaxAcc is min or max over a column of any type, keeping its type.
// Float NaNs are skipped: they order against nothing.
type minMaxAcc[T any] struct {
	col  int
	max  bool
	get  func(c *data.Column) []T
	less func(a, b T) bool
	skip func(v T) bool
	set  func(c *data.Column, v []T)
	typ  data.Type
	vals []T
	seen []bool
}

func newMinMax(col int, t data.Type, max bool) measure {
	switch t {
	case data.String:
		return &minMaxAcc[string]{col: col, max: max, typ: t,
			get: func(c *data.Column) []string { return c.Strings }, less: func(a, b string) bool { return a < b },
			set: func(c *data.Column, v []string) { c.Strings = v }}
	case data.Int:
		return &minMaxAcc[int64]{col: col, max: max, typ: t,
			get: func(c *data.Column) []int64 { return c.Ints }, less: func(a, b int64) bool { return a < b },
			set: func(c *data.Column, v []int64) { c.Ints = v }}
	case data.Float:
		return &minMaxAcc[float64]{col: col, max: max, typ: t,
			get: func(c *data.Column) []float64 { return c.Floats }, less: func(a, b float64) bool { return a < b },
			skip: math.IsNaN, set: func(c *data.Column, v []float64) { c.Floats = v }}
	case data.Bool:
		return &minMaxAcc[bool]{col: col, max: max, typ: t,
			get: func(c *data.Column) []bool { return c.Bools }, less: func(a, b bool) bool { return !a && b },
			set: func(c *data.Column, v []bool) { c.Bools = v }}
	default:
		return &minMaxAcc[time.Time]{col: col, max: max, typ: data.Timestamp,
			get: func(c *data.Column) []time.Time { return c.Times }, less: func(a, b time.Time) bool { return a.Before(b) },
			set: func(c *data.Column, v []time.Time) { c.Times = v }}
	}
}

func (m *minMaxAcc[T]) grow(n int) {
	m.vals = growTo(m.vals, n)
	m.seen = growTo(m.seen, n)
}

func (m *minMaxAcc[T]) add(b *data.Batch, gids []int32) error {
	c := &b.Cols[m.col]
	vals := m.get(c)
	for r, g := range gids {
		if c.IsNull(r) {
			continue
		}
		v := vals[r]
		if m.skip != nil && m.skip(v) {
			continue
		}
		if !m.seen[g] {
			m.vals[g], m.seen[g] = v, true
			continue
		}
		if (m.max && m.less(m.vals[g], v)) || (!m.max && m.less(v, m.vals[g])) {
			m.vals[g] = v
		}
	}
	return nil
}

func (m *minMaxAcc[T]) column(from, to int) data.Column {
	out := data.Column{Type: m.typ, Nulls: nullsFrom(m.seen, from, to)}
	m.set(&out, m.vals[from:to:to])
	return out
}

// distinctAcc is count_distinct: one set of (group, value) pairs for all
// groups, so a group costs a counter, not a set of its own.
type distinctAcc struct {
	col    int
	set    *keyTable
	counts []int64
	gcol   data.Column
	refs   [2]*data.Column
}

func (m *distinctAcc) grow(n int) { m.counts = growTo(m.counts, n) }

func (m *distinctAcc) add(b *data.Batch, gids []int32) error {
	c := &b.Cols[m.col]
	m.gcol.Type = data.Int
	m.gcol.Ints = m.gcol.Ints[:0]
	for _, g := range gids {
		m.gcol.Ints = append(m.gcol.Ints, int64(g))
	}
	m.refs = [2]*data.Column{&m.gcol, c}
	for r, g := range gids {
		if c.IsNull(r) {
			continue
		}
		if _, added := m.set.insert(m.refs[:], r); added {
			m.counts[g]++
		}
	}
	return nil
}

func (m *distinctAcc) column(from, to int) data.Column {
	return data.Column{Type: data.Int, Ints: m.counts[from:to:to]}
}
