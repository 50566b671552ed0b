package pipeline

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/data"
)

// fieldsOf reads a mapping of known fields, reporting unknown ones.
func (ps *parser) fieldsOf(n *yaml.Node, what string, known []string) map[string]pair {
	out := map[string]pair{}
	for _, kv := range ps.pairs(n, what, "field") {
		if !contains(known, kv.key.Value) {
			ps.unknownField(kv.key, what+": ", known)
			continue
		}
		out[kv.key.Value] = kv
	}
	return out
}

// columns reads a non-empty list of distinct column names a step refers
// to; single allows one bare name.
func (ps *parser) columns(n *yaml.Node, what string, single bool) []string {
	cols, nodes := ps.strList(n, what, single)
	if vn := ps.resolve(n); vn != nil && vn.Kind == yaml.SequenceNode && len(vn.Content) == 0 {
		ps.errorf(vn, "%s: name at least one column", what)
	}
	seen := map[string]bool{}
	for i, c := range cols {
		ps.column(nodes[i], what, c, false)
		if seen[c] {
			ps.errorf(nodes[i], "%s: column %q is listed twice", what, c)
		}
		seen[c] = true
	}
	return cols
}

var dedupeFields = []string{"key", "keep"}

// dedupe parses {key: [cols], keep: first|last}; key may be one name, and
// without it every column is the key.
func (ps *parser) dedupe(v *yaml.Node, what string) *Dedupe {
	d := &Dedupe{Keep: KeepFirst}
	n := ps.resolve(v)
	if n == nil || isNull(n) {
		return d
	}
	fields := ps.fieldsOf(n, what, dedupeFields)
	if f, ok := fields["key"]; ok {
		d.Key = ps.columns(f.val, what+": key", true)
	}
	if f, ok := fields["keep"]; ok {
		if s, ok := ps.str(f.val, what+": keep"); ok {
			switch k := Keep(s); k {
			case KeepFirst, KeepLast:
				d.Keep = k
			default:
				ps.errorf(ps.resolve(f.val), "%s: keep: unknown value %q (want first or last)", what, s)
			}
		}
	}
	return d
}

var aggregateFields = []string{"group_by", "measures"}

// measureRe is the shape of a measure: fn() or fn(column).
var measureRe = regexp.MustCompile(`^\s*([A-Za-z_]+)\s*\((.*)\)\s*$`)

// aggregate parses {group_by: [cols], measures: {name: "fn(col)"}}.
func (ps *parser) aggregate(v *yaml.Node, what string) *Aggregate {
	a := &Aggregate{}
	n := ps.resolve(v)
	if n == nil {
		return a
	}
	fields := ps.fieldsOf(n, what, aggregateFields)
	if f, ok := fields["group_by"]; ok {
		a.GroupBy = ps.columns(f.val, what+": group_by", true)
	}
	f, ok := fields["measures"]
	if !ok {
		if n.Kind == yaml.MappingNode {
			ps.errorf(n, "%s: missing measures: name at least one, e.g. {n: \"count()\"}", what)
		}
		return a
	}
	mw := what + ": measures"
	grouped := map[string]bool{}
	for _, g := range a.GroupBy {
		grouped[g] = true
	}
	for _, kv := range ps.columnMap(f.val, mw) {
		name := kv.key.Value
		ps.column(kv.key, mw, name, true)
		if grouped[name] {
			ps.errorf(kv.key, "%s: %q is also a group_by column; give the measure another name", mw, name)
		}
		s, ok := ps.str(kv.val, fmt.Sprintf("%s: %s", mw, name))
		if !ok {
			continue
		}
		vn := ps.resolve(kv.val)
		m, err := parseMeasure(name, s)
		if err != nil {
			ps.errorf(vn, "%s: %s: %s", mw, name, err.Error())
			continue
		}
		a.Measures = append(a.Measures, m)
	}
	return a
}

// parseMeasure parses "fn()" or "fn(column)".
func parseMeasure(name, s string) (Measure, error) {
	const want = "want count(), count(col), sum(col), min(col), max(col), avg(col) or count_distinct(col)"
	m := measureRe.FindStringSubmatch(s)
	if m == nil {
		return Measure{}, fmt.Errorf("invalid measure %q: %s", s, want)
	}
	fn, col := AggFunc(strings.ToLower(m[1])), strings.TrimSpace(m[2])
	// A column name that is not an identifier may be quoted: sum('net €').
	if len(col) >= 2 && (col[0] == '\'' || col[0] == '"') && col[len(col)-1] == col[0] {
		col = col[1 : len(col)-1]
	}
	switch fn {
	case AggCount:
	case AggSum, AggMin, AggMax, AggAvg, AggCountDistinct:
		if col == "" {
			return Measure{}, fmt.Errorf("invalid measure %q: %s needs a column, e.g. %s(amount)", s, fn, fn)
		}
	default:
		return Measure{}, fmt.Errorf("unknown function %q in %q: %s", m[1], s, want)
	}
	return Measure{Name: name, Func: fn, Column: col}, nil
}

var joinFields = []string{"with", "on", "how", "select", "max_rows"}

// join parses {with: task, on: [cols] | {left: right}, how: inner|left,
// select: [cols], max_rows: n}.
func (ps *parser) join(v *yaml.Node, what string, src *taskSrc) *Join {
	j := &Join{How: JoinInner, MaxRows: DefaultJoinMaxRows}
	n := ps.resolve(v)
	if n == nil {
		return j
	}
	fields := ps.fieldsOf(n, what, joinFields)
	if n.Kind != yaml.MappingNode {
		return j
	}
	if f, ok := fields["with"]; ok {
		if s, ok := ps.str(f.val, what+": with"); ok {
			j.With = s
			src.joins = append(src.joins, joinSrc{with: s, node: ps.resolve(f.val)})
		}
	} else {
		ps.errorf(n, "%s: missing with: the upstream task whose records to join", what)
	}
	if f, ok := fields["on"]; ok {
		on := ps.resolve(f.val)
		switch {
		case on == nil:
		case on.Kind == yaml.MappingNode:
			for _, kv := range ps.columnMap(on, what+": on") {
				if r, ok := ps.str(kv.val, fmt.Sprintf("%s: on: %s", what, kv.key.Value)); ok {
					ps.column(kv.key, what+": on", kv.key.Value, false)
					ps.column(ps.resolve(kv.val), what+": on", r, false)
					j.On = append(j.On, JoinKey{Left: kv.key.Value, Right: r})
				}
			}
		default:
			for _, c := range ps.columns(on, what+": on", true) {
				j.On = append(j.On, JoinKey{Left: c, Right: c})
			}
		}
	} else {
		ps.errorf(n, "%s: missing on: the columns to match, e.g. [id] or {customer_id: id}", what)
	}
	if f, ok := fields["how"]; ok {
		if s, ok := ps.str(f.val, what+": how"); ok {
			switch h := JoinHow(s); h {
			case JoinInner, JoinLeft:
				j.How = h
			default:
				ps.errorf(ps.resolve(f.val), "%s: how: unknown join %q (want inner or left)", what, s)
			}
		}
	}
	if f, ok := fields["select"]; ok {
		j.Select = ps.columns(f.val, what+": select", true)
	}
	if f, ok := fields["max_rows"]; ok {
		if i, ok := ps.integer(f.val, what+": max_rows"); ok {
			if i < 1 {
				ps.errorf(ps.resolve(f.val), "%s: max_rows: must be at least 1", what)
			} else {
				j.MaxRows = i
			}
		}
	}
	return j
}

var contractFields = []string{"contract", "on_drift"}

// dataLimits parses the data-only task fields schema:, max_bad_rows: and
// max_bad_ratio:.
func (ps *parser) dataLimits(fields map[string]pair, t *Task, what string) {
	for _, name := range []string{"schema", "max_bad_rows", "max_bad_ratio"} {
		if f, ok := fields[name]; ok && t.Kind != KindData && t.Kind != "" {
			ps.errorf(f.key, "%s: %s is only for data tasks", what, name)
			delete(fields, name)
		}
	}
	if f, ok := fields["schema"]; ok {
		t.Contract = ps.contract(f, what+": schema")
	}
	if f, ok := fields["max_bad_rows"]; ok {
		if i, ok := ps.integer(f.val, what+": max_bad_rows"); ok {
			if i < 0 {
				ps.errorf(ps.resolve(f.val), "%s: max_bad_rows: must not be negative", what)
			} else {
				n := int64(i)
				t.MaxBadRows = &n
			}
		}
	}
	if f, ok := fields["max_bad_ratio"]; ok {
		if r, ok := ps.ratio(f.val, what+": max_bad_ratio"); ok {
			t.MaxBadRatio = &r
		}
	}
}

// ratio reads a number in [0, 1].
func (ps *parser) ratio(n *yaml.Node, what string) (float64, bool) {
	if n = ps.resolve(n); n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!float" || n.ShortTag() == "!!int") {
		r, err := strconv.ParseFloat(n.Value, 64)
		if err == nil && !math.IsNaN(r) {
			if r < 0 || r > 1 {
				ps.errorf(n, "%s: %s is not between 0 and 1 (0.05 means 5%% of the records read)", what, n.Value)
				return 0, false
			}
			return r, true
		}
	}
	ps.errorf(n, "%s: want a number between 0 and 1, got %s", what, describe(n))
	return 0, false
}

// contract parses schema: {contract: {col: type}, on_drift: fail|warn|evolve}.
func (ps *parser) contract(f pair, what string) *Contract {
	n := ps.resolve(f.val)
	if n == nil {
		return nil
	}
	c := &Contract{OnDrift: DriftFail, Pos: ps.pos(f.key)}
	fields := ps.fieldsOf(n, what, contractFields)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if f, ok := fields["contract"]; ok {
		cw := what + ": contract"
		for _, kv := range ps.columnMap(f.val, cw) {
			ps.column(kv.key, cw, kv.key.Value, false)
			ts, ok := ps.str(kv.val, fmt.Sprintf("%s: %s", cw, kv.key.Value))
			if !ok {
				continue
			}
			typ, err := data.ParseType(ts)
			if err != nil {
				ps.errorf(ps.resolve(kv.val), "%s: column %q: %s", cw, kv.key.Value, err.Error())
				continue
			}
			c.Columns = append(c.Columns, data.Field{Name: kv.key.Value, Type: typ})
		}
	} else {
		ps.errorf(n, "%s: missing contract: the promised columns and their types, e.g. {id: int, email: string}", what)
	}
	if f, ok := fields["on_drift"]; ok {
		if s, ok := ps.str(f.val, what+": on_drift"); ok {
			switch d := OnDrift(s); d {
			case DriftFail, DriftWarn, DriftEvolve:
				c.OnDrift = d
			default:
				ps.errorf(ps.resolve(f.val), "%s: on_drift: unknown policy %q (want fail, warn or evolve)", what, s)
			}
		}
	}
	return c
}
