package transform

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// runAll applies every batch, then flushes, checking the row invariant
// after each call, and returns every output row.
func runAll(t *testing.T, c *Chain, batches []*data.Batch, q data.Quarantine) ([][]any, error) {
	t.Helper()
	ctx := context.Background()
	got := [][]any{}
	for _, b := range batches {
		out, err := c.Apply(ctx, b, q)
		if err != nil {
			return got, err
		}
		if out.Schema != c.Schema() {
			t.Errorf("output schema %s, want %s", out.Schema, c.Schema())
		}
		got = append(got, rowsOf(t, out)...)
		checkInvariant(t, c.Stats())
	}
	for {
		out, err := c.Flush(ctx, q)
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			return got, err
		}
		if out.Len == 0 {
			t.Errorf("Flush returned an empty batch")
		}
		got = append(got, rowsOf(t, out)...)
		checkInvariant(t, c.Stats())
	}
	if s := c.Stats(); s.Held != 0 {
		t.Errorf("after Flush, stats %+v hold rows", s)
	}
	checkInvariant(t, c.Stats())
	return got, nil
}

func orders(t testing.TB) *data.Schema {
	return mustSchema(t, f("id", data.Int), f("customer", data.String), f("amount", data.Float),
		f("qty", data.Int), f("at", data.Timestamp), f("ok", data.Bool))
}

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// orderRows is the input of the dedupe and aggregate tests, in two batches.
func orderRows(t testing.TB) []*data.Batch {
	s := orders(t)
	return []*data.Batch{
		mkBatch(t, s, [][]any{
			{1, "ada", 10.0, 1, t0, true},
			{2, "bo", 5.5, 2, t0.Add(time.Hour), false},
			{3, "ada", nil, 3, t0.Add(2 * time.Hour), true},
			{4, nil, 1.0, nil, nil, nil},
		}),
		mkBatch(t, s, [][]any{
			{5, "bo", 2.0, 4, t0.Add(-time.Hour), true},
			{6, nil, 3.0, 5, t0, false},
			{7, "cy", math.NaN(), 6, t0, true},
			{8, "ada", 4.0, 7, t0.Add(time.Minute), false},
		}),
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dedupe  pipeline.Dedupe
		collide bool
		want    [][]any // id column only
		stats   Stats
	}{
		{"first by customer", pipeline.Dedupe{Key: []string{"customer"}, Keep: pipeline.KeepFirst},
			false, [][]any{{1}, {2}, {4}, {7}}, Stats{In: 8, Out: 4, Filtered: 4}},
		{"first with every key hashing alike", pipeline.Dedupe{Key: []string{"customer"}, Keep: pipeline.KeepFirst},
			true, [][]any{{1}, {2}, {4}, {7}}, Stats{In: 8, Out: 4, Filtered: 4}},
		{"last by customer keeps first-seen order", pipeline.Dedupe{Key: []string{"customer"}, Keep: pipeline.KeepLast},
			false, [][]any{{8}, {5}, {6}, {7}}, Stats{In: 8, Out: 4, Filtered: 4}},
		{"last with every key hashing alike", pipeline.Dedupe{Key: []string{"customer"}, Keep: pipeline.KeepLast},
			true, [][]any{{8}, {5}, {6}, {7}}, Stats{In: 8, Out: 4, Filtered: 4}},
		{"two key columns", pipeline.Dedupe{Key: []string{"customer", "ok"}},
			false, [][]any{{1}, {2}, {4}, {5}, {6}, {7}, {8}}, Stats{In: 8, Out: 7, Filtered: 1}},
		{"timestamp key compares instants", pipeline.Dedupe{Key: []string{"at"}},
			false, [][]any{{1}, {2}, {3}, {4}, {5}, {8}}, Stats{In: 8, Out: 6, Filtered: 2}},
		{"float key", pipeline.Dedupe{Key: []string{"amount"}},
			false, [][]any{{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}}, Stats{In: 8, Out: 8}},
		{"whole row", pipeline.Dedupe{}, false,
			[][]any{{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}}, Stats{In: 8, Out: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			steps := []pipeline.Step{
				{Kind: pipeline.StepDedupe, Dedupe: &tt.dedupe},
				{Kind: pipeline.StepSelect, Columns: []string{"id"}},
			}
			c, err := Compile(steps, orders(t))
			if err != nil {
				t.Fatal(err)
			}
			if tt.collide {
				switch d := c.ops[0].(type) {
				case *dedupeFirst:
					d.seen.collide = true
				case *dedupeLast:
					d.seen.collide = true
				}
			}
			if got, want := c.Blocking(), tt.dedupe.Keep == pipeline.KeepLast; got != want {
				t.Errorf("Blocking() = %v, want %v", got, want)
			}
			got, err := runAll(t, c, orderRows(t), &recorder{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.stats, c.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDedupeLastKeepsValuesAndPositions(t *testing.T) {
	t.Parallel()
	s := mustSchema(t, f("k", data.String), f("v", data.Int))
	b1 := mkBatch(t, s, [][]any{{"a", 1}, {"b", nil}, {"a", nil}})
	b1.Pos = []int64{2, 3, 4}
	b2 := mkBatch(t, s, [][]any{{"b", 5}, {"c", 6}})
	b2.Pos = []int64{5, 6}
	c, err := Compile([]pipeline.Step{
		{Kind: pipeline.StepDedupe, Dedupe: &pipeline.Dedupe{Key: []string{"k"}, Keep: pipeline.KeepLast}},
		{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{{Column: "w", Expr: "row.v * 2"}}},
	}, s)
	if err != nil {
		t.Fatal(err)
	}
	q := &recorder{}
	got, err := runAll(t, c, []*data.Batch{b1, b2}, q)
	if err != nil {
		t.Fatal(err)
	}
	// "a" ends null (its last value), so its derive fails and the reject
	// names the source line the kept row came from.
	if diff := cmp.Diff([][]any{{"b", 5, 10}, {"c", 6, 12}}, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	want := []data.Reject{{Pos: "line 4", Reason: `derive: column "w": no such overload: _*_ (column "v" is null)`, Raw: `{"k":"a","v":null}`}}
	if diff := cmp.Diff(want, q.rejects); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{In: 5, Out: 2, Filtered: 2, Quarantined: 1}, c.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestKeyTableCollisions(t *testing.T) {
	t.Parallel()
	s := mustSchema(t, f("a", data.String), f("b", data.String))
	b := mkBatch(t, s, [][]any{{"ab", "c"}, {"a", "bc"}, {"ab", "c"}, {nil, "c"}, {"", "c"}, {nil, "c"}})
	for _, collide := range []bool{false, true} {
		kt := newKeyTable(s.Fields)
		kt.collide = collide
		refs := colRefs(nil, b, []int{0, 1})
		var ids []int32
		for r := range b.Len {
			id, _ := kt.insert(refs, r)
			ids = append(ids, id)
		}
		if diff := cmp.Diff([]int32{0, 1, 0, 2, 3, 2}, ids); diff != "" {
			t.Errorf("collide=%v: ids (-want +got):\n%s", collide, diff)
		}
		if got := kt.find(refs, 1); got != 1 {
			t.Errorf("collide=%v: find = %d, want 1", collide, got)
		}
	}
}

func TestAggregate(t *testing.T) {
	t.Parallel()
	all := []pipeline.Measure{
		{Name: "n", Func: pipeline.AggCount},
		{Name: "n_amount", Func: pipeline.AggCount, Column: "amount"},
		{Name: "total", Func: pipeline.AggSum, Column: "amount"},
		{Name: "units", Func: pipeline.AggSum, Column: "qty"},
		{Name: "avg_qty", Func: pipeline.AggAvg, Column: "qty"},
		{Name: "lo", Func: pipeline.AggMin, Column: "amount"},
		{Name: "hi", Func: pipeline.AggMax, Column: "qty"},
		{Name: "first_at", Func: pipeline.AggMin, Column: "at"},
		{Name: "any_ok", Func: pipeline.AggMax, Column: "ok"},
		{Name: "last_name", Func: pipeline.AggMax, Column: "customer"},
		{Name: "days", Func: pipeline.AggCountDistinct, Column: "at"},
	}
	tests := []struct {
		name    string
		agg     pipeline.Aggregate
		batches func(testing.TB) []*data.Batch
		schema  string
		want    [][]any
		stats   Stats
	}{
		{
			name:    "by customer, every measure, nulls skipped",
			agg:     pipeline.Aggregate{GroupBy: []string{"customer"}, Measures: all},
			batches: orderRows,
			schema:  "customer:string, n:int, n_amount:int, total:float, units:int, avg_qty:float, lo:float, hi:int, first_at:timestamp, any_ok:bool, last_name:string, days:int",
			want: [][]any{
				{"ada", 3, 2, 14.0, 11, 11.0 / 3, 4.0, 7, t0, true, "ada", 3},
				{"bo", 2, 2, 7.5, 6, 3.0, 2.0, 4, t0.Add(-time.Hour), true, "bo", 2},
				{nil, 2, 2, 4.0, 5, 5.0, 1.0, 5, t0, false, nil, 1},
				{"cy", 1, 1, math.NaN(), 6, 6.0, nil, 6, t0, true, "cy", 1},
			},
			stats: Stats{In: 8, Out: 4, Aggregated: 4},
		},
		{
			name:    "no group_by: one row",
			agg:     pipeline.Aggregate{Measures: []pipeline.Measure{{Name: "n", Func: pipeline.AggCount}, {Name: "units", Func: pipeline.AggSum, Column: "qty"}, {Name: "people", Func: pipeline.AggCountDistinct, Column: "customer"}}},
			batches: orderRows,
			schema:  "n:int, units:int, people:int",
			want:    [][]any{{8, 28, 3}},
			stats:   Stats{In: 8, Out: 1, Aggregated: 7},
		},
		{
			name:    "no group_by, no input: count 0 and null sum",
			agg:     pipeline.Aggregate{Measures: []pipeline.Measure{{Name: "n", Func: pipeline.AggCount}, {Name: "units", Func: pipeline.AggSum, Column: "qty"}, {Name: "m", Func: pipeline.AggAvg, Column: "amount"}}},
			batches: func(testing.TB) []*data.Batch { return nil },
			schema:  "n:int, units:int, m:float",
			want:    [][]any{{0, nil, nil}},
			stats:   Stats{Out: 1, Aggregated: -1},
		},
		{
			name:    "group_by, no input: no rows",
			agg:     pipeline.Aggregate{GroupBy: []string{"ok"}, Measures: []pipeline.Measure{{Name: "n", Func: pipeline.AggCount}}},
			batches: func(testing.TB) []*data.Batch { return nil },
			schema:  "ok:bool, n:int",
			want:    [][]any{},
			stats:   Stats{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Compile([]pipeline.Step{{Kind: pipeline.StepAggregate, Aggregate: &tt.agg}}, orders(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Schema().String(); got != tt.schema {
				t.Errorf("schema = %s, want %s", got, tt.schema)
			}
			got, err := runAll(t, c, tt.batches(t), &recorder{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b float64) bool {
				return a == b || (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) < 1e-12
			})); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.stats, c.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAggregateSumOverflow(t *testing.T) {
	t.Parallel()
	s := mustSchema(t, f("g", data.String), f("v", data.Int))
	c, err := Compile([]pipeline.Step{{Kind: pipeline.StepAggregate, Aggregate: &pipeline.Aggregate{
		GroupBy: []string{"g"}, Measures: []pipeline.Measure{{Name: "total", Func: pipeline.AggSum, Column: "v"}}}}}, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := mkBatch(t, s, [][]any{{"x", 1}, {"y", math.MinInt64}, {"y", -1}})
	_, err = c.Apply(ctx, in, &recorder{})
	want := `step 1 (aggregate): measure "total": sum(v) overflows int in group {"g":"y"}; cast the column to float to sum it`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if diff := cmp.Diff(Stats{}, c.Stats()); diff != "" {
		t.Errorf("a failed batch is not counted (-want +got):\n%s", diff)
	}
}

// TestBlockingChain runs steps after a blocking step at Flush: a filter
// and a failing derive over the groups, then a second blocking step.
func TestBlockingChain(t *testing.T) {
	t.Parallel()
	steps := []pipeline.Step{
		{Kind: pipeline.StepFilter, Expr: "row.id != 2"},
		{Kind: pipeline.StepAggregate, Aggregate: &pipeline.Aggregate{GroupBy: []string{"customer"}, Measures: []pipeline.Measure{
			{Name: "n", Func: pipeline.AggCount}, {Name: "total", Func: pipeline.AggSum, Column: "amount"}}}},
		{Kind: pipeline.StepFilter, Expr: "row.n < 3"},
		{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{{Column: "per", Expr: "row.total / double(row.n)"}}},
		{Kind: pipeline.StepAggregate, Aggregate: &pipeline.Aggregate{Measures: []pipeline.Measure{
			{Name: "groups", Func: pipeline.AggCount}, {Name: "best", Func: pipeline.AggMax, Column: "per"}}}},
	}
	c, err := Compile(steps, orders(t))
	if err != nil {
		t.Fatal(err)
	}
	batches := orderRows(t)
	batches[1].Cols[1].Strings[0] = "dee" // id 5: bo → dee
	q := &recorder{}
	ctx := context.Background()
	out, err := c.Apply(ctx, batches[0], q)
	if err != nil {
		t.Fatal(err)
	}
	if out.Len != 0 || out.Schema != c.Schema() {
		t.Errorf("a blocking chain passed %d rows of %s during Apply", out.Len, out.Schema)
	}
	if diff := cmp.Diff(Stats{In: 4, Filtered: 1, Held: 3}, c.Stats()); diff != "" {
		t.Errorf("stats while held (-want +got):\n%s", diff)
	}
	got, err := runAll(t, c, batches[1:], q)
	if err != nil {
		t.Fatal(err)
	}
	// Groups: ada (3 rows, filtered by n < 3), null (2), dee (1), cy (1,
	// NaN total). null: 4/2 = 2; dee: 2; cy: NaN skipped by max.
	if diff := cmp.Diff([][]any{{3, 2.0}}, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if len(q.rejects) != 0 {
		t.Errorf("rejects: %v", q.rejects)
	}
	if diff := cmp.Diff(Stats{In: 8, Out: 1, Filtered: 2, Aggregated: 5}, c.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if _, err := c.Apply(ctx, batches[0], q); !errors.Is(err, ErrFlushed) {
		t.Errorf("Apply after Flush: err = %v, want ErrFlushed", err)
	}
}

func TestFlushRejectsNameTheStep(t *testing.T) {
	t.Parallel()
	c, err := Compile([]pipeline.Step{
		{Kind: pipeline.StepAggregate, Aggregate: &pipeline.Aggregate{GroupBy: []string{"customer"}, Measures: []pipeline.Measure{
			{Name: "total", Func: pipeline.AggSum, Column: "amount"}}}},
		{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{{Column: "k", Expr: "int(row.total)"}}},
	}, orders(t))
	if err != nil {
		t.Fatal(err)
	}
	q := &recorder{}
	got, err := runAll(t, c, orderRows(t), q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]any{{"ada", 14.0, 14}, {"bo", 7.5, 7}, {nil, 4.0, 4}}, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	want := []data.Reject{{Pos: "step 1 (aggregate) output row 4", Reason: `derive: column "k": integer overflow`, Raw: `{"customer":"cy","total":"NaN"}`}}
	if diff := cmp.Diff(want, q.rejects); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{In: 8, Out: 3, Quarantined: 1, Aggregated: 4}, c.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestBlockingCompileErrors(t *testing.T) {
	t.Parallel()
	agg := func(group []string, ms ...pipeline.Measure) []pipeline.Step {
		return []pipeline.Step{{Kind: pipeline.StepAggregate, Aggregate: &pipeline.Aggregate{GroupBy: group, Measures: ms}}}
	}
	tests := []struct {
		name  string
		steps []pipeline.Step
		want  string
	}{
		{"dedupe unknown key", []pipeline.Step{{Kind: pipeline.StepDedupe, Dedupe: &pipeline.Dedupe{Key: []string{"nosuch"}}}},
			`step 1 (dedupe): column "nosuch": no such column (have: id, customer, amount, qty, at, ok)`},
		{"dedupe no settings", []pipeline.Step{{Kind: pipeline.StepDedupe}}, `step 1 (dedupe): no dedupe settings`},
		{"dedupe bad keep", []pipeline.Step{{Kind: pipeline.StepDedupe, Dedupe: &pipeline.Dedupe{Keep: "middle"}}},
			`step 1 (dedupe): keep: want first or last, got middle`},
		{"aggregate no measures", agg([]string{"id"}), `step 1 (aggregate): no measures to compute`},
		{"aggregate unknown group", agg([]string{"x"}, pipeline.Measure{Name: "n", Func: pipeline.AggCount}),
			`step 1 (aggregate): column "x": no such column (have: id, customer, amount, qty, at, ok)`},
		{"aggregate unknown column", agg(nil, pipeline.Measure{Name: "t", Func: pipeline.AggSum, Column: "x"}),
			`step 1 (aggregate): measure "t": column "x": no such column (have: id, customer, amount, qty, at, ok)`},
		{"sum of string", agg(nil, pipeline.Measure{Name: "t", Func: pipeline.AggSum, Column: "customer"}),
			`step 1 (aggregate): measure "t": sum(customer): column "customer" is string, want int or float`},
		{"avg of timestamp", agg(nil, pipeline.Measure{Name: "t", Func: pipeline.AggAvg, Column: "at"}),
			`step 1 (aggregate): measure "t": avg(at): column "at" is timestamp, want int or float`},
		{"unknown function", agg(nil, pipeline.Measure{Name: "t", Func: "median", Column: "qty"}),
			`step 1 (aggregate): measure "t": unknown function "median"`},
		{"measure named like a group", agg([]string{"id"}, pipeline.Measure{Name: "id", Func: pipeline.AggCount}),
			`step 1 (aggregate): aggregating: field "id": duplicate name`},
		{"join without dataset", []pipeline.Step{{Kind: pipeline.StepJoin, Join: &pipeline.Join{With: "x", On: []pipeline.JoinKey{{Left: "id", Right: "id"}}}}},
			`step 1 (join): join with "x": no dataset of task "x" was given to read`},
		{"join without keys", []pipeline.Step{{Kind: pipeline.StepJoin, Join: &pipeline.Join{With: "x"}}},
			`step 1 (join): no columns to join on`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.steps, orders(t))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestCheckContract(t *testing.T) {
	t.Parallel()
	s := mustSchema(t, f("id", data.Int), f("name", data.String), f("extra", data.Bool), f("age", data.String))
	tests := []struct {
		name     string
		contract []data.Field
		want     []string
	}{
		{"kept, order ignored", []data.Field{f("name", data.String), f("age", data.String), f("id", data.Int), f("extra", data.Bool)}, nil},
		{"every kind", []data.Field{f("id", data.Int), f("email", data.String), f("age", data.Int), f("name", data.String)}, []string{
			`column "email" (string) is missing`,
			`column "age" is string, the contract says int`,
			`column "extra" (bool) is new`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, d := range CheckContract(&pipeline.Contract{Columns: tt.contract, OnDrift: pipeline.DriftFail}, s) {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("drift (-want +got):\n%s", diff)
			}
		})
	}
	if d := CheckContract(nil, s); d != nil {
		t.Errorf("no contract: drift %v", d)
	}
}
