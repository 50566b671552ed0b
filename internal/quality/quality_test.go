package quality_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/quality"
)

var testSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int},
	data.Field{Name: "email", Type: data.String},
	data.Field{Name: "country", Type: data.String},
	data.Field{Name: "age", Type: data.Int},
	data.Field{Name: "amount", Type: data.String},
	data.Field{Name: "total", Type: data.Float},
	data.Field{Name: "updated_at", Type: data.Timestamp},
	data.Field{Name: "customer_id", Type: data.Int},
)

var runTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// row is one test record; a nil pointer is a null.
type row struct {
	id      *int64
	email   *string
	country string
	age     int64
	amount  string
	total   float64
	updated time.Time
	cust    int64
}

func s(v string) *string { return &v }
func i(v int64) *int64   { return &v }

// testRows: 6 records. email: 2 bad, 1 null; id: 1 duplicate, 1 null.
var testRows = []row{
	{id: i(1), email: s("alice@example.com"), country: "DE", age: 30, amount: "1.5", total: 10, updated: runTime.Add(-2 * time.Hour), cust: 100},
	{id: i(2), email: s("bob.example.com"), country: "FR", age: 131, amount: "2", total: -1, updated: runTime.Add(-30 * time.Hour), cust: 101},
	{id: i(2), email: nil, country: "US", age: 45, amount: "x", total: 3, updated: runTime.Add(-5 * time.Hour), cust: 999},
	{id: nil, email: s("carol@example.org"), country: "XX", age: -1, amount: "3.25", total: 4, updated: runTime.Add(-1 * time.Hour), cust: 100},
	{id: i(5), email: s("not-an-email-address"), country: "DE", age: 20, amount: "4", total: 5, updated: runTime.Add(-3 * time.Hour), cust: 102},
	{id: i(6), email: s("dave@example.net"), country: "FR", age: 60, amount: "", total: 6, updated: runTime.Add(-4 * time.Hour), cust: 100},
}

func batchOf(rows []row) *data.Batch {
	b := data.NewBatch(testSchema, len(rows))
	for r, x := range rows {
		if x.id == nil {
			b.Cols[0].Ints = append(b.Cols[0].Ints, 0)
			b.Cols[0].SetNull(r, len(rows))
		} else {
			b.Cols[0].Ints = append(b.Cols[0].Ints, *x.id)
		}
		if x.email == nil {
			b.Cols[1].Strings = append(b.Cols[1].Strings, "")
			b.Cols[1].SetNull(r, len(rows))
		} else {
			b.Cols[1].Strings = append(b.Cols[1].Strings, *x.email)
		}
		b.Cols[2].Strings = append(b.Cols[2].Strings, x.country)
		b.Cols[3].Ints = append(b.Cols[3].Ints, x.age)
		b.Cols[4].Strings = append(b.Cols[4].Strings, x.amount)
		b.Cols[5].Floats = append(b.Cols[5].Floats, x.total)
		b.Cols[6].Times = append(b.Cols[6].Times, x.updated)
		b.Cols[7].Ints = append(b.Cols[7].Ints, x.cust)
		b.Len++
	}
	return b
}

func pos(r int) string { return fmt.Sprintf("row %d", r+1) }

func f(v float64) *float64 { return &v }

// sliceSource is a data.Source over batches held in memory: the upstream
// dataset of a relationship check.
type sliceSource struct {
	schema  *data.Schema
	batches []*data.Batch
}

func (s *sliceSource) Schema() *data.Schema { return s.schema }
func (s *sliceSource) Close() error         { return nil }
func (s *sliceSource) Next(context.Context) (*data.Batch, error) {
	if len(s.batches) == 0 {
		return nil, data.ErrEndOfInput
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

func customers() (data.Source, error) {
	sc := data.MustSchema(data.Field{Name: "id", Type: data.Int})
	b := data.NewBatch(sc, 3)
	b.Cols[0].Ints = append(b.Cols[0].Ints, 100, 101, 102)
	b.Len = 3
	return &sliceSource{schema: sc, batches: []*data.Batch{b}}, nil
}

func TestChecks(t *testing.T) {
	t.Parallel()
	type want struct {
		checked, failing int64
		passed           bool
		quarantined      []int // rows
		samplePos        []string
	}
	tests := []struct {
		name string
		rule pipeline.CheckRule
		want want
	}{
		{"not_null", pipeline.CheckRule{Kind: pipeline.CheckNotNull, Column: "email"},
			want{6, 1, false, nil, []string{"row 3"}}},
		{"not_null mostly met", pipeline.CheckRule{Kind: pipeline.CheckNotNull, Column: "email", Mostly: 0.8},
			want{6, 1, true, nil, []string{"row 3"}}},
		{"unique skips nulls", pipeline.CheckRule{Kind: pipeline.CheckUnique, Column: "id"},
			want{5, 1, false, nil, []string{"row 3"}}},
		{"unique quarantine keeps the first", pipeline.CheckRule{Kind: pipeline.CheckUnique, Column: "id", Severity: pipeline.SeverityQuarantine},
			want{5, 1, false, []int{2}, []string{"row 3"}}},
		{"regex skips nulls", pipeline.CheckRule{Kind: pipeline.CheckRegex, Column: "email", Pattern: "^[^@]+@[^@]+$", Severity: pipeline.SeverityQuarantine},
			want{5, 2, false, []int{1, 4}, []string{"row 2", "row 5"}}},
		{"regex mostly met still quarantines", pipeline.CheckRule{Kind: pipeline.CheckRegex, Column: "email", Pattern: "@", Severity: pipeline.SeverityQuarantine, Mostly: 0.5},
			want{5, 2, true, []int{1, 4}, []string{"row 2", "row 5"}}},
		{"accepted_values", pipeline.CheckRule{Kind: pipeline.CheckAcceptedValues, Column: "country", Values: []string{"DE", "FR", "US"}},
			want{6, 1, false, nil, []string{"row 4"}}},
		{"accepted_values on ints", pipeline.CheckRule{Kind: pipeline.CheckAcceptedValues, Column: "customer_id", Values: []string{"100", "101", "102"}, Mostly: 0.8},
			want{6, 1, true, nil, []string{"row 3"}}},
		{"range", pipeline.CheckRule{Kind: pipeline.CheckRange, Column: "age", Min: f(0), Max: f(130), Severity: pipeline.SeverityFail},
			want{6, 2, false, nil, []string{"row 2", "row 4"}}},
		{"range min only", pipeline.CheckRule{Kind: pipeline.CheckRange, Column: "total", Min: f(0)},
			want{6, 1, false, nil, []string{"row 2"}}},
		{"length", pipeline.CheckRule{Kind: pipeline.CheckLength, Column: "amount", Min: f(1), Max: f(3)},
			want{6, 2, false, nil, []string{"row 4", "row 6"}}},
		{"type float from strings", pipeline.CheckRule{Kind: pipeline.CheckType, Column: "amount", Type: data.Float},
			want{6, 2, false, nil, []string{"row 3", "row 6"}}},
		{"type int on an int column", pipeline.CheckRule{Kind: pipeline.CheckType, Column: "age", Type: data.Int},
			want{6, 0, true, nil, nil}},
		{"custom", pipeline.CheckRule{Kind: pipeline.CheckCustom, Name: "positive_total", Expr: "row.total >= 0.0", Severity: pipeline.SeverityQuarantine},
			want{6, 1, false, []int{1}, []string{"row 2"}}},
		{"custom null is a failure", pipeline.CheckRule{Kind: pipeline.CheckCustom, Name: "known_id", Expr: "row.id > 0"},
			want{6, 1, false, nil, []string{"row 4"}}},
		{"relationship", pipeline.CheckRule{Kind: pipeline.CheckRelationship, Column: "customer_id", ToTask: "customers", ToColumn: "id", Severity: pipeline.SeverityQuarantine},
			want{6, 1, false, []int{2}, []string{"row 3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rule := tt.rule
			if rule.Name == "" {
				rule.Name = rule.Column + "." + string(rule.Kind)
			}
			suite, err := quality.Compile(t.Context(), &pipeline.Check{Rules: []pipeline.CheckRule{rule}}, testSchema, quality.Options{
				Now:    runTime,
				Inputs: map[string]func(context.Context) (data.Source, error){"customers": func(context.Context) (data.Source, error) { return customers() }},
			})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			// Two batches of three exercise state across batches (unique).
			var quarantined []int
			for k := 0; k < 2; k++ {
				b := batchOf(testRows[k*3 : k*3+3])
				for _, rj := range suite.Eval(b, func(r int) string { return pos(k*3 + r) }) {
					quarantined = append(quarantined, k*3+rj.Row)
					if want := "check failed: " + rule.Name; rj.Reason != want {
						t.Errorf("reason = %q, want %q", rj.Reason, want)
					}
				}
			}
			res := suite.Results()
			if len(res) != 1 {
				t.Fatalf("Results = %d results, want 1", len(res))
			}
			r := res[0]
			var samplePos []string
			for _, smp := range r.Samples {
				samplePos = append(samplePos, smp.Pos)
			}
			got := want{r.Checked, r.Failing, r.Passed, quarantined, samplePos}
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
			if r.Checked > 0 {
				if wantPct := 100 * float64(r.Failing) / float64(r.Checked); r.FailingPct != wantPct {
					t.Errorf("FailingPct = %g, want %g", r.FailingPct, wantPct)
				}
			}
		})
	}
}

func TestDatasetChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		rule       pipeline.CheckRule
		rows       []row
		wantPassed bool
		wantDetail string
	}{
		{"row_count met", pipeline.CheckRule{Kind: pipeline.CheckRowCount, Min: f(1), Max: f(10)}, testRows, true, "6 records"},
		{"row_count too few", pipeline.CheckRule{Kind: pipeline.CheckRowCount, Min: f(1)}, nil, false, "0 records, want at least 1"},
		{"row_count too many", pipeline.CheckRule{Kind: pipeline.CheckRowCount, Max: f(5)}, testRows, false, "6 records, want at most 5"},
		{"freshness met", pipeline.CheckRule{Kind: pipeline.CheckFreshness, Column: "updated_at", MaxAge: 2 * time.Hour}, testRows, true,
			"newest updated_at is 1h0m0s old, max_age 2h0m0s"},
		{"freshness stale", pipeline.CheckRule{Kind: pipeline.CheckFreshness, Column: "updated_at", MaxAge: 24 * time.Hour}, testRows[1:2], false,
			"newest updated_at is 30h0m0s old, max_age 24h0m0s"},
		{"freshness without values", pipeline.CheckRule{Kind: pipeline.CheckFreshness, Column: "updated_at", MaxAge: time.Hour}, nil, false,
			"no updated_at value: nothing to judge freshness by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rule := tt.rule
			rule.Name = string(rule.Kind)
			suite, err := quality.Compile(t.Context(), &pipeline.Check{Rules: []pipeline.CheckRule{rule}}, testSchema, quality.Options{Now: runTime})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if len(tt.rows) > 0 {
				if rj := suite.Eval(batchOf(tt.rows), pos); len(rj) != 0 {
					t.Errorf("Eval quarantined %d rows, want none from a dataset check", len(rj))
				}
			}
			r := suite.Results()[0]
			if r.Passed != tt.wantPassed || r.Detail != tt.wantDetail || r.Checked != 1 {
				t.Errorf("result = passed %v, detail %q, checked %d; want passed %v, detail %q, checked 1", r.Passed, r.Detail, r.Checked, tt.wantPassed, tt.wantDetail)
			}
		})
	}
}

func TestRowCountExcludesQuarantined(t *testing.T) {
	t.Parallel()
	c := &pipeline.Check{Rules: []pipeline.CheckRule{
		{Name: "email.regex", Kind: pipeline.CheckRegex, Column: "email", Pattern: "@", Severity: pipeline.SeverityQuarantine},
		{Name: "row_count", Kind: pipeline.CheckRowCount, Min: f(5)},
	}}
	suite, err := quality.Compile(t.Context(), c, testSchema, quality.Options{Now: runTime})
	if err != nil {
		t.Fatal(err)
	}
	suite.Eval(batchOf(testRows), pos)
	r := suite.Results()[1]
	if r.Passed || r.Detail != "4 records, want at least 5" {
		t.Errorf("row_count = passed %v, %q; want failed, \"4 records, want at least 5\"", r.Passed, r.Detail)
	}
}

func TestSeveralQuarantineChecksNameEveryFailure(t *testing.T) {
	t.Parallel()
	c := &pipeline.Check{Rules: []pipeline.CheckRule{
		{Name: "email.regex", Kind: pipeline.CheckRegex, Column: "email", Pattern: "@", Severity: pipeline.SeverityQuarantine},
		{Name: "age.range", Kind: pipeline.CheckRange, Column: "age", Max: f(130), Severity: pipeline.SeverityQuarantine},
		{Name: "total.range", Kind: pipeline.CheckRange, Column: "total", Min: f(0), Severity: pipeline.SeverityWarn},
	}}
	suite, err := quality.Compile(t.Context(), c, testSchema, quality.Options{Now: runTime})
	if err != nil {
		t.Fatal(err)
	}
	got := suite.Eval(batchOf(testRows), pos)
	want := []quality.Reject{
		{Row: 1, Reason: "check failed: email.regex, age.range"},
		{Row: 4, Reason: "check failed: email.regex"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Eval (-want +got):\n%s", d)
	}
	if failed := quality.Failed(suite.Results()); len(failed) != 0 {
		t.Errorf("Failed = %v, want none: no check has severity fail", failed)
	}
}

func TestSamplesAreMasked(t *testing.T) {
	t.Parallel()
	c := &pipeline.Check{Rules: []pipeline.CheckRule{
		{Name: "email.regex", Kind: pipeline.CheckRegex, Column: "email", Pattern: "^[a-z]+@example\\.com$"},
		{Name: "country.accepted_values", Kind: pipeline.CheckAcceptedValues, Column: "country", Values: []string{"ZZ"}},
		{Name: "customer_id.accepted_values", Kind: pipeline.CheckAcceptedValues, Column: "customer_id", Values: []string{"1"}},
	}}
	suite, err := quality.Compile(t.Context(), c, testSchema, quality.Options{Now: runTime})
	if err != nil {
		t.Fatal(err)
	}
	suite.Eval(batchOf(testRows), pos)
	raw := []string{"bob.example.com", "carol@example.org", "not-an-email-address", "dave@example.net", "example", "DE", "FR", "US", "XX", "100", "101", "999"}
	n := 0
	for _, r := range suite.Results() {
		if len(r.Samples) > quality.MaxSamples {
			t.Errorf("%s: %d samples, want at most %d", r.Name, len(r.Samples), quality.MaxSamples)
		}
		for _, smp := range r.Samples {
			n++
			for _, v := range raw {
				if strings.Contains(smp.Value, v) {
					t.Errorf("%s: sample %+v shows raw value %q", r.Name, smp, v)
				}
			}
			if !strings.HasSuffix(smp.Value, "***") {
				t.Errorf("%s: sample value %q is not masked", r.Name, smp.Value)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d samples were checked; the test needs failures to look at", n)
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                  "***",
		"DE":                "***",
		"12345":             "***",
		"alice@example.com": "al***",
		"Ünïcode-name":      "Ün***",
	} {
		if got := quality.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule pipeline.CheckRule
		want string
	}{
		{"missing column", pipeline.CheckRule{Name: "x.not_null", Kind: pipeline.CheckNotNull, Column: "x"}, `column "x": no such column`},
		{"regex on int", pipeline.CheckRule{Name: "age.regex", Kind: pipeline.CheckRegex, Column: "age", Pattern: "1"}, "needs a string column"},
		{"range on string", pipeline.CheckRule{Name: "email.range", Kind: pipeline.CheckRange, Column: "email", Min: f(1)}, "needs an int or float column"},
		{"bad accepted value", pipeline.CheckRule{Name: "age.accepted_values", Kind: pipeline.CheckAcceptedValues, Column: "age", Values: []string{"old"}}, `accepted value "old" is not a int`},
		{"freshness on string", pipeline.CheckRule{Name: "freshness.email", Kind: pipeline.CheckFreshness, Column: "email", MaxAge: time.Hour}, "needs a timestamp column"},
		{"custom not bool", pipeline.CheckRule{Name: "c", Kind: pipeline.CheckCustom, Expr: "row.age + 1"}, "want bool"},
		{"relationship type mismatch", pipeline.CheckRule{Name: "email.relationship", Kind: pipeline.CheckRelationship, Column: "email", ToTask: "customers", ToColumn: "id"}, "cast one side"},
		{"relationship without dataset", pipeline.CheckRule{Name: "customer_id.relationship", Kind: pipeline.CheckRelationship, Column: "customer_id", ToTask: "other", ToColumn: "id"}, `no dataset of task "other"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := quality.Compile(t.Context(), &pipeline.Check{Rules: []pipeline.CheckRule{tt.rule}}, testSchema, quality.Options{
				Inputs: map[string]func(context.Context) (data.Source, error){"customers": func(context.Context) (data.Source, error) { return customers() }},
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.rule.Name) {
				t.Errorf("Compile error = %v, want one naming %q and containing %q", err, tt.rule.Name, tt.want)
			}
		})
	}
	t.Run("relationship input failure is ErrInput", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("disk gone")
		rule := pipeline.CheckRule{Name: "customer_id.relationship", Kind: pipeline.CheckRelationship, Column: "customer_id", ToTask: "customers", ToColumn: "id"}
		_, err := quality.Compile(t.Context(), &pipeline.Check{Rules: []pipeline.CheckRule{rule}}, testSchema, quality.Options{
			Inputs: map[string]func(context.Context) (data.Source, error){"customers": func(context.Context) (data.Source, error) { return nil, boom }},
		})
		if !errors.Is(err, quality.ErrInput) || !errors.Is(err, boom) {
			t.Errorf("Compile error = %v, want ErrInput wrapping the cause", err)
		}
	})
}
