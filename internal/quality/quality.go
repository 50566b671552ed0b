// Package quality evaluates the data-quality checks of a pipeline's check
// step — not_null, unique, accepted_values, regex, range, length, type on
// columns; row_count, freshness, relationship and custom CEL conditions on
// the dataset — over a stream of typed batches, and reports per check how
// many values failed, with a few masked samples.
//
// Column checks run per record, on the typed column values of a batch (no
// map per record). A null value passes every check but not_null, and is not
// counted as checked: a column that allows nulls says so by not having
// not_null, as in dbt and Great Expectations. Dataset checks (row_count,
// freshness) are decided once the input is exhausted.
//
// Memory: unique keeps every distinct value it has seen, and relationship
// keeps every distinct value of the upstream column, so both grow with the
// number of distinct values (a few tens of bytes per value). Everything
// else holds a constant amount.
//
// Results never hold a raw value: samples show the record's position and
// the value masked (see Mask), because any value may be personal data and
// check results are shown to people who may not read it.
package quality

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// MaxSamples is the number of failing records a result keeps.
const MaxSamples = 5

// ErrInput wraps a failure to open or read the upstream dataset of a
// relationship check: unlike an invalid check, it may be transient.
var ErrInput = errors.New("reading a relationship dataset")

// Sample is one failing record: its position and its value masked.
type Sample struct {
	Pos   string
	Value string
}

// Result is the outcome of one check.
type Result struct {
	Name     string
	Kind     string
	Column   string
	Severity string
	// Checked counts the values (records) evaluated; Failing those that
	// failed, FailingPct their share in percent.
	Checked    int64
	Failing    int64
	FailingPct float64
	// Mostly is the pass fraction required; Passed whether it was met.
	Mostly float64
	Passed bool
	// Detail explains a dataset check's outcome, never with a raw value.
	Detail  string
	Samples []Sample
}

// Failed returns the results of fail-severity checks that did not pass:
// each one fails the task.
func Failed(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if !r.Passed && r.Severity == string(pipeline.SeverityFail) {
			out = append(out, r)
		}
	}
	return out
}

// Mask hides a value for display: the first two characters of a value of
// six or more characters, then "***"; shorter values are "***" alone. It
// shows enough to recognise a pattern of bad values (leading spaces, a
// wrong prefix) and too little to identify anyone.
func Mask(s string) string {
	if utf8.RuneCountInString(s) < 6 {
		return "***"
	}
	i := 0
	for n := 0; n < 2; n++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "***"
}

// Options holds what checks need beyond the spec and the schema.
type Options struct {
	// Now is the time freshness is measured against: the run's time, so
	// that a retry judges the same data the same way. Zero means the
	// wall clock at Compile.
	Now time.Time
	// Inputs open the datasets relationship checks read, by upstream task
	// name. Compile opens each one a relationship names, reads the column
	// into memory and closes it.
	Inputs map[string]func(ctx context.Context) (data.Source, error)
}

// Reject is a record that failed at least one quarantine check.
type Reject struct {
	// Row is the record's index in the batch given to Eval.
	Row int
	// Reason names the checks it failed, e.g. "check failed: email.regex".
	Reason string
}

// Suite is a compiled check step. It is not safe for concurrent use.
type Suite struct {
	rules []*rule
	// quar are the indexes in rules of quarantine per-record rules.
	quar    []int
	marks   [][]bool // marks[i][r]: row r failed rules[quar[i]]
	rejects []Reject
	seen    int64 // records received
	passed  int64 // records passed on (not quarantined)
	now     time.Time
}

// rule is one compiled check.
type rule struct {
	spec pipeline.CheckRule
	col  int // the column's index, -1 for record checks
	// test reports whether row r of b passes; nil for dataset checks.
	test    func(b *data.Batch, r int) bool
	checked int64
	failing int64
	samples []Sample
	// freshness: the newest value seen.
	newest time.Time
}

// Compile compiles a check step against the schema of the records it
// receives. Errors name the check, e.g. `check "age.range": column "age"
// is string; range needs an int or float column (cast it first)`.
func Compile(ctx context.Context, c *pipeline.Check, in *data.Schema, opts Options) (*Suite, error) {
	if c == nil || in == nil {
		return nil, errors.New("compiling checks: no checks or no schema")
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	s := &Suite{now: opts.Now}
	for _, spec := range c.Rules {
		r, err := compileRule(ctx, spec, in, opts)
		if err != nil {
			return nil, fmt.Errorf("check %q: %w", spec.Name, err)
		}
		if r.spec.Mostly <= 0 || r.spec.Mostly > 1 {
			r.spec.Mostly = 1
		}
		if r.spec.Severity == "" {
			r.spec.Severity = pipeline.DefaultSeverity
		}
		if r.spec.Severity == pipeline.SeverityQuarantine && r.test != nil {
			s.quar = append(s.quar, len(s.rules))
		}
		s.rules = append(s.rules, r)
	}
	s.marks = make([][]bool, len(s.quar))
	return s, nil
}

// column finds a rule's column.
func column(name string, in *data.Schema) (int, error) {
	i := in.Index(name)
	if i < 0 {
		return -1, fmt.Errorf("column %q: no such column (have: %s)", name, strings.Join(in.Names(), ", "))
	}
	return i, nil
}

// Eval evaluates every per-record check on the rows of b and returns the
// rows that failed a quarantine check, in row order; the slice is valid
// until the next call. pos names row r for samples ("line 42").
func (s *Suite) Eval(b *data.Batch, pos func(r int) string) []Reject {
	s.seen += int64(b.Len)
	for i := range s.marks {
		s.marks[i] = resize(s.marks[i], b.Len)
	}
	q := 0
	for ri, r := range s.rules {
		if r.test == nil {
			r.observe(b)
			continue
		}
		var mark []bool
		if q < len(s.quar) && s.quar[q] == ri {
			mark = s.marks[q]
			q++
		}
		r.eval(b, pos, mark)
	}
	s.rejects = s.rejects[:0]
	if len(s.quar) > 0 {
		var names []string
		for row := 0; row < b.Len; row++ {
			names = names[:0]
			for i, m := range s.marks {
				if m[row] {
					names = append(names, s.rules[s.quar[i]].spec.Name)
				}
			}
			if len(names) > 0 {
				s.rejects = append(s.rejects, Reject{Row: row, Reason: "check failed: " + strings.Join(names, ", ")})
			}
		}
	}
	s.passed += int64(b.Len - len(s.rejects))
	return s.rejects
}

// resize returns m cleared with length n, reusing its memory.
func resize(m []bool, n int) []bool {
	if cap(m) < n {
		return make([]bool, n)
	}
	m = m[:n]
	clear(m)
	return m
}

// eval runs a per-record rule over b, marking failing rows in mark (when
// it is a quarantine rule).
func (r *rule) eval(b *data.Batch, pos func(int) string, mark []bool) {
	var col *data.Column
	skipNulls := r.col >= 0 && r.spec.Kind != pipeline.CheckNotNull
	if r.col >= 0 {
		col = &b.Cols[r.col]
	}
	nulls := skipNulls && col.Nulls != nil
	for row := 0; row < b.Len; row++ {
		if nulls && col.Nulls[row] {
			continue
		}
		r.checked++
		if r.test(b, row) {
			continue
		}
		r.failing++
		if mark != nil {
			mark[row] = true
		}
		if len(r.samples) < MaxSamples {
			smp := Sample{Pos: pos(row)}
			if col != nil {
				smp.Value = maskedValue(col, row)
			}
			r.samples = append(r.samples, smp)
		}
	}
}

// observe feeds a dataset rule (freshness) the rows of b.
func (r *rule) observe(b *data.Batch) {
	if r.spec.Kind != pipeline.CheckFreshness {
		return
	}
	col := &b.Cols[r.col]
	for row := 0; row < b.Len; row++ {
		if col.IsNull(row) {
			continue
		}
		if t := col.Times[row]; t.After(r.newest) {
			r.newest = t
		}
	}
}

// maskedValue renders row r of col and masks it.
func maskedValue(col *data.Column, r int) string {
	if col.IsNull(r) {
		return "null"
	}
	return Mask(valueString(col, r))
}

// valueString renders row r of col as text.
func valueString(col *data.Column, r int) string {
	switch col.Type {
	case data.String:
		return col.Strings[r]
	case data.Int:
		return strconv.FormatInt(col.Ints[r], 10)
	case data.Float:
		return strconv.FormatFloat(col.Floats[r], 'g', -1, 64)
	case data.Bool:
		return strconv.FormatBool(col.Bools[r])
	case data.Timestamp:
		return col.Times[r].UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// Results decides the dataset checks and returns every check's result in
// the order the step declares them. Call it once the input is exhausted.
// row_count counts the records the step passed on (not quarantined);
// freshness measures against Options.Now.
func (s *Suite) Results() []Result {
	now := s.now
	out := make([]Result, 0, len(s.rules))
	for _, r := range s.rules {
		res := Result{
			Name: r.spec.Name, Kind: string(r.spec.Kind), Column: r.spec.Column, Severity: string(r.spec.Severity),
			Mostly: r.spec.Mostly, Samples: r.samples,
		}
		switch r.spec.Kind {
		case pipeline.CheckRowCount:
			res.Checked = 1
			res.Detail = fmt.Sprintf("%d records", s.passed)
			if r.spec.Min != nil && float64(s.passed) < *r.spec.Min {
				res.Failing = 1
				res.Detail += fmt.Sprintf(", want at least %g", *r.spec.Min)
			}
			if r.spec.Max != nil && float64(s.passed) > *r.spec.Max {
				res.Failing = 1
				res.Detail += fmt.Sprintf(", want at most %g", *r.spec.Max)
			}
			res.Passed = res.Failing == 0
		case pipeline.CheckFreshness:
			res.Checked = 1
			if r.newest.IsZero() {
				res.Failing = 1
				res.Detail = fmt.Sprintf("no %s value: nothing to judge freshness by", r.spec.Column)
			} else {
				age := now.Sub(r.newest).Round(time.Second)
				res.Detail = fmt.Sprintf("newest %s is %s old, max_age %s", r.spec.Column, age, r.spec.MaxAge)
				if age > r.spec.MaxAge {
					res.Failing = 1
				}
			}
			res.Passed = res.Failing == 0
		default:
			res.Checked, res.Failing = r.checked, r.failing
			res.Passed = r.checked == 0 || float64(r.checked-r.failing)/float64(r.checked) >= r.spec.Mostly
		}
		if res.Checked > 0 {
			res.FailingPct = 100 * float64(res.Failing) / float64(res.Checked)
		}
		out = append(out, res)
	}
	return out
}
