package quality

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/expr"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// compileRule builds the test of one check.
func compileRule(ctx context.Context, spec pipeline.CheckRule, in *data.Schema, opts Options) (*rule, error) {
	r := &rule{spec: spec, col: -1}
	if spec.Column != "" {
		i, err := column(spec.Column, in)
		if err != nil {
			return nil, err
		}
		r.col = i
	}
	var t data.Type
	if r.col >= 0 {
		t = in.Fields[r.col].Type
	}
	var err error
	switch spec.Kind {
	case pipeline.CheckNotNull:
		col := r.col
		r.test = func(b *data.Batch, row int) bool { return !b.Cols[col].IsNull(row) }
	case pipeline.CheckUnique:
		r.test = uniqueTest(r.col, t)
	case pipeline.CheckAcceptedValues:
		r.test, err = acceptedTest(r.col, t, spec)
	case pipeline.CheckRegex:
		r.test, err = regexTest(r.col, t, spec)
	case pipeline.CheckRange:
		r.test, err = rangeTest(r.col, t, spec)
	case pipeline.CheckLength:
		r.test, err = lengthTest(r.col, t, spec)
	case pipeline.CheckType:
		r.test, err = typeTest(r.col, t, spec)
	case pipeline.CheckCustom:
		r.test, err = customTest(spec, in)
	case pipeline.CheckRelationship:
		r.test, err = relationshipTest(ctx, r.col, t, spec, opts)
	case pipeline.CheckRowCount:
	case pipeline.CheckFreshness:
		if t != data.Timestamp {
			err = fmt.Errorf("column %q is %s; freshness needs a timestamp column (cast it first)", spec.Column, t)
		}
	default:
		err = fmt.Errorf("unknown check kind %q", spec.Kind)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// uniqueTest fails a value that an earlier record already had. The sets
// grow with the distinct values seen.
func uniqueTest(col int, t data.Type) func(*data.Batch, int) bool {
	switch t {
	case data.String:
		seen := map[string]struct{}{}
		return func(b *data.Batch, r int) bool { return firstTime(seen, b.Cols[col].Strings[r]) }
	case data.Int:
		seen := map[int64]struct{}{}
		return func(b *data.Batch, r int) bool { return firstTime(seen, b.Cols[col].Ints[r]) }
	case data.Float:
		seen := map[uint64]struct{}{}
		return func(b *data.Batch, r int) bool { return firstTime(seen, floatKey(b.Cols[col].Floats[r])) }
	case data.Bool:
		var seen [2]bool
		return func(b *data.Batch, r int) bool {
			i := 0
			if b.Cols[col].Bools[r] {
				i = 1
			}
			first := !seen[i]
			seen[i] = true
			return first
		}
	default: // data.Timestamp
		seen := map[int64]struct{}{}
		return func(b *data.Batch, r int) bool { return firstTime(seen, b.Cols[col].Times[r].UnixMicro()) }
	}
}

// floatKey makes equal floats equal keys: 0 and -0 are one value.
func floatKey(f float64) uint64 {
	if f == 0 {
		return 0
	}
	return math.Float64bits(f)
}

func firstTime[K comparable](seen map[K]struct{}, k K) bool {
	if _, dup := seen[k]; dup {
		return false
	}
	seen[k] = struct{}{}
	return true
}

// acceptedTest converts the accepted values to the column's type.
func acceptedTest(col int, t data.Type, spec pipeline.CheckRule) (func(*data.Batch, int) bool, error) {
	conv := func(v string) error {
		return fmt.Errorf("accepted value %q is not a %s, the type of column %q", v, t, spec.Column)
	}
	switch t {
	case data.String:
		set := map[string]struct{}{}
		for _, v := range spec.Values {
			set[v] = struct{}{}
		}
		return func(b *data.Batch, r int) bool { _, ok := set[b.Cols[col].Strings[r]]; return ok }, nil
	case data.Int:
		set := map[int64]struct{}{}
		for _, v := range spec.Values {
			i, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, conv(v)
			}
			set[i] = struct{}{}
		}
		return func(b *data.Batch, r int) bool { _, ok := set[b.Cols[col].Ints[r]]; return ok }, nil
	case data.Float:
		set := map[uint64]struct{}{}
		for _, v := range spec.Values {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, conv(v)
			}
			set[floatKey(f)] = struct{}{}
		}
		return func(b *data.Batch, r int) bool { _, ok := set[floatKey(b.Cols[col].Floats[r])]; return ok }, nil
	case data.Bool:
		var ok [2]bool
		for _, v := range spec.Values {
			x, err := strconv.ParseBool(v)
			if err != nil {
				return nil, conv(v)
			}
			if x {
				ok[1] = true
			} else {
				ok[0] = true
			}
		}
		return func(b *data.Batch, r int) bool {
			if b.Cols[col].Bools[r] {
				return ok[1]
			}
			return ok[0]
		}, nil
	default: // data.Timestamp
		set := map[int64]struct{}{}
		for _, v := range spec.Values {
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, conv(v)
			}
			set[ts.UnixMicro()] = struct{}{}
		}
		return func(b *data.Batch, r int) bool { _, ok := set[b.Cols[col].Times[r].UnixMicro()]; return ok }, nil
	}
}

func needString(spec pipeline.CheckRule, t data.Type) error {
	if t != data.String {
		return fmt.Errorf("column %q is %s; %s needs a string column (cast it first)", spec.Column, t, spec.Kind)
	}
	return nil
}

func regexTest(col int, t data.Type, spec pipeline.CheckRule) (func(*data.Batch, int) bool, error) {
	if err := needString(spec, t); err != nil {
		return nil, err
	}
	m, err := newMatcher(spec.Pattern)
	if err != nil {
		return nil, err
	}
	return func(b *data.Batch, r int) bool { return m.MatchString(b.Cols[col].Strings[r]) }, nil
}

// within reports whether v is within the rule's bounds.
func within(spec pipeline.CheckRule) func(v float64) bool {
	lo, hi := math.Inf(-1), math.Inf(1)
	if spec.Min != nil {
		lo = *spec.Min
	}
	if spec.Max != nil {
		hi = *spec.Max
	}
	return func(v float64) bool { return v >= lo && v <= hi }
}

func rangeTest(col int, t data.Type, spec pipeline.CheckRule) (func(*data.Batch, int) bool, error) {
	in := within(spec)
	switch t {
	case data.Int:
		return func(b *data.Batch, r int) bool { return in(float64(b.Cols[col].Ints[r])) }, nil
	case data.Float:
		// NaN is within no range.
		return func(b *data.Batch, r int) bool { return in(b.Cols[col].Floats[r]) }, nil
	}
	return nil, fmt.Errorf("column %q is %s; range needs an int or float column (cast it first)", spec.Column, t)
}

func lengthTest(col int, t data.Type, spec pipeline.CheckRule) (func(*data.Batch, int) bool, error) {
	if err := needString(spec, t); err != nil {
		return nil, err
	}
	in := within(spec)
	return func(b *data.Batch, r int) bool { return in(float64(utf8.RuneCountInString(b.Cols[col].Strings[r]))) }, nil
}

// typeTest passes values that are, or as strings parse as, the wanted type.
func typeTest(col int, t data.Type, spec pipeline.CheckRule) (func(*data.Batch, int) bool, error) {
	want := spec.Type
	pass := func(*data.Batch, int) bool { return true }
	switch {
	case t == want, t == data.Int && want == data.Float:
		return pass, nil
	case t == data.Float && want == data.Int:
		return func(b *data.Batch, r int) bool {
			f := b.Cols[col].Floats[r]
			return f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64
		}, nil
	case t == data.String:
		var parse func(s string) bool
		switch want {
		case data.Int:
			parse = func(s string) bool { _, err := strconv.ParseInt(s, 10, 64); return err == nil }
		case data.Float:
			parse = func(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil }
		case data.Bool:
			parse = func(s string) bool { _, err := strconv.ParseBool(s); return err == nil }
		default: // data.Timestamp
			parse = func(s string) bool {
				if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
					return true
				}
				_, err := time.Parse("2006-01-02", s)
				return err == nil
			}
		}
		return func(b *data.Batch, r int) bool { return parse(strings.TrimSpace(b.Cols[col].Strings[r])) }, nil
	}
	return nil, fmt.Errorf("column %q is %s, which is never a %s", spec.Column, t, want)
}

// customTest evaluates a CEL condition; an evaluation error (a null in
// arithmetic, say) or a null result fails the record.
func customTest(spec pipeline.CheckRule, in *data.Schema) (func(*data.Batch, int) bool, error) {
	prg, err := expr.Compile(spec.Expr, in)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", spec.Expr, err)
	}
	if !prg.IsBool() {
		return nil, fmt.Errorf("expression %q yields %s, want bool", spec.Expr, prg.OutputTypeName())
	}
	ev := prg.NewEvaluator()
	return func(b *data.Batch, r int) bool {
		ok, err := ev.EvalBool(b, r)
		return err == nil && ok
	}, nil
}

// relationshipTest loads the upstream column into a set and tests that
// each value is in it. Null upstream values are never a match.
func relationshipTest(ctx context.Context, col int, t data.Type, spec pipeline.CheckRule, opts Options) (func(*data.Batch, int) bool, error) {
	open, ok := opts.Inputs[spec.ToTask]
	if !ok {
		return nil, fmt.Errorf("no dataset of task %q was given to read", spec.ToTask)
	}
	src, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("task %q: %w: %w", spec.ToTask, ErrInput, err)
	}
	defer src.Close()
	rs := src.Schema()
	ri := rs.Index(spec.ToColumn)
	if ri < 0 {
		return nil, fmt.Errorf("column %q: no such column in the dataset of task %q (have: %s)", spec.ToColumn, spec.ToTask, strings.Join(rs.Names(), ", "))
	}
	if rt := rs.Fields[ri].Type; rt != t {
		return nil, fmt.Errorf("column %q is %s but %q of task %q is %s; cast one side so they match", spec.Column, t, spec.ToColumn, spec.ToTask, rt)
	}
	set := newValueSet(t)
	var n int64
	for {
		b, err := src.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("task %q: %w: %w", spec.ToTask, ErrInput, err)
		}
		n += int64(b.Len)
		if n > pipeline.DefaultJoinMaxRows {
			return nil, fmt.Errorf("the dataset of task %q has more than %d records: it is held in memory; make it smaller upstream", spec.ToTask, pipeline.DefaultJoinMaxRows)
		}
		c := &b.Cols[ri]
		for r := 0; r < b.Len; r++ {
			if !c.IsNull(r) {
				set.add(c, r)
			}
		}
	}
	return func(b *data.Batch, r int) bool { return set.has(&b.Cols[col], r) }, nil
}

// valueSet is a set of the values of one typed column.
type valueSet struct {
	strs  map[string]struct{}
	ints  map[int64]struct{} // ints, and timestamps as unix microseconds
	flts  map[uint64]struct{}
	bools [2]bool
}

func newValueSet(t data.Type) *valueSet {
	switch t {
	case data.String:
		return &valueSet{strs: map[string]struct{}{}}
	case data.Float:
		return &valueSet{flts: map[uint64]struct{}{}}
	}
	return &valueSet{ints: map[int64]struct{}{}}
}

func (s *valueSet) add(c *data.Column, r int) {
	switch c.Type {
	case data.String:
		s.strs[c.Strings[r]] = struct{}{}
	case data.Int:
		s.ints[c.Ints[r]] = struct{}{}
	case data.Float:
		s.flts[floatKey(c.Floats[r])] = struct{}{}
	case data.Bool:
		if c.Bools[r] {
			s.bools[1] = true
		} else {
			s.bools[0] = true
		}
	case data.Timestamp:
		s.ints[c.Times[r].UnixMicro()] = struct{}{}
	}
}

func (s *valueSet) has(c *data.Column, r int) bool {
	var ok bool
	switch c.Type {
	case data.String:
		_, ok = s.strs[c.Strings[r]]
	case data.Int:
		_, ok = s.ints[c.Ints[r]]
	case data.Float:
		_, ok = s.flts[floatKey(c.Floats[r])]
	case data.Bool:
		if c.Bools[r] {
			ok = s.bools[1]
		} else {
			ok = s.bools[0]
		}
	case data.Timestamp:
		_, ok = s.ints[c.Times[r].UnixMicro()]
	}
	return ok
}
