package transform

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

func people(t testing.TB) *data.Schema {
	return mustSchema(t, f("id", data.Int), f("name", data.String), f("age", data.String), f("score", data.Float))
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps []pipeline.Step
		want  string
	}{
		{"select unknown", []pipeline.Step{{Kind: pipeline.StepSelect, Columns: []string{"id", "nosuch"}}},
			`step 1 (select): column "nosuch": no such column (have: id, name, age, score)`},
		{"select empty", []pipeline.Step{{Kind: pipeline.StepSelect}}, `step 1 (select): no columns to select`},
		{"select duplicate", []pipeline.Step{{Kind: pipeline.StepSelect, Columns: []string{"id", "id"}}},
			`step 1 (select): selecting columns: field "id": duplicate name`},
		{"drop unknown", []pipeline.Step{{Kind: pipeline.StepDrop, Columns: []string{"x"}}},
			`step 1 (drop): column "x": no such column (have: id, name, age, score)`},
		{"drop all", []pipeline.Step{{Kind: pipeline.StepDrop, Columns: []string{"id", "name", "age", "score"}}},
			`step 1 (drop): dropping every column leaves nothing to pass on`},
		{"rename unknown", []pipeline.Step{{Kind: pipeline.StepRename, Renames: []pipeline.Rename{{From: "x", To: "y"}}}},
			`step 1 (rename): column "x": no such column (have: id, name, age, score)`},
		{"rename collision", []pipeline.Step{{Kind: pipeline.StepRename, Renames: []pipeline.Rename{{From: "id", To: "name"}}}},
			`step 1 (rename): renaming columns: field "name": duplicate name`},
		{"cast after drop", []pipeline.Step{
			{Kind: pipeline.StepDrop, Columns: []string{"score"}},
			{Kind: pipeline.StepSelect, Columns: []string{"id", "name"}},
			{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}}},
		}, `step 3 (cast): column "age": no such column (have: id, name)`},
		{"cast unsupported", []pipeline.Step{{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "id", Type: data.Timestamp}}}},
			`step 1 (cast): column "id": cannot cast int to timestamp`},
		{"filter not bool", []pipeline.Step{{Kind: pipeline.StepFilter, Expr: "row.name"}},
			`step 1 (filter): expression "row.name" yields string, want bool`},
		{"filter unknown column", []pipeline.Step{{Kind: pipeline.StepFilter, Expr: "row.nosuch > 1"}},
			`step 1 (filter): expression "row.nosuch > 1": 1:4: column "nosuch": no such column (have: id, name, age, score)`},
		{"filter type error", []pipeline.Step{{Kind: pipeline.StepFilter, Expr: "row.id + 'x' == 'y'"}},
			`step 1 (filter): expression "row.id + 'x' == 'y'": 1:8: found no matching overload for '_+_' applied to '(int, string)' (column "id" is int)`},
		{"derive list", []pipeline.Step{{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{{Column: "parts", Expr: "row.name.split(' ')"}}}},
			`step 1 (derive): column "parts": expression "row.name.split(' ')" yields list(string), want string, int, float, bool or timestamp`},
		{"derive sees earlier derive only", []pipeline.Step{{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{
			{Column: "a", Expr: "row.b + 1"}, {Column: "b", Expr: "1"}}}},
			`step 1 (derive): column "a": expression "row.b + 1": 1:4: column "b": no such column (have: id, name, age, score)`},
		{"derive empty", []pipeline.Step{{Kind: pipeline.StepDerive}}, `step 1 (derive): no columns to derive`},
		{"unknown kind", []pipeline.Step{{Kind: "explode"}}, `step 1 (explode): unknown step kind "explode"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.steps, people(t))
			if err == nil {
				t.Fatalf("Compile succeeded, want error %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSchemaPropagation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps []pipeline.Step
		want  string
	}{
		{"none", nil, "id:int, name:string, age:string, score:float"},
		{"select reorders", []pipeline.Step{{Kind: pipeline.StepSelect, Columns: []string{"score", "id"}}}, "score:float, id:int"},
		{"drop", []pipeline.Step{{Kind: pipeline.StepDrop, Columns: []string{"name", "age"}}}, "id:int, score:float"},
		{"rename swap", []pipeline.Step{{Kind: pipeline.StepRename, Renames: []pipeline.Rename{{From: "id", To: "name"}, {From: "name", To: "id"}}}},
			"name:int, id:string, age:string, score:float"},
		{"cast", []pipeline.Step{{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}, {Column: "score", Type: data.String}}}},
			"id:int, name:string, age:int, score:string"},
		{"derive adds and replaces", []pipeline.Step{{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{
			{Column: "double", Expr: "row.score * 2.0"}, {Column: "id", Expr: "string(row.id)"}, {Column: "big", Expr: "row.double > 10.0"}}}},
			"id:string, name:string, age:string, score:float, double:float, big:bool"},
		{"chain", []pipeline.Step{
			{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}}},
			{Kind: pipeline.StepFilter, Expr: "row.age >= 18"},
			{Kind: pipeline.StepRename, Renames: []pipeline.Rename{{From: "age", To: "years"}}},
			{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{{Column: "months", Expr: "row.years * 12"}}},
			{Kind: pipeline.StepSelect, Columns: []string{"name", "months"}},
		}, "name:string, months:int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Compile(tt.steps, people(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Schema().String(); got != tt.want {
				t.Errorf("schema = %s, want %s", got, tt.want)
			}
		})
	}
}

var day = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

func TestApply(t *testing.T) {
	t.Parallel()
	input := [][]any{
		{1, "Ada", "36", 9.5},
		{2, "Alan", "abc", 7.0},
		{3, "Grace", "17", nil},
		{4, "Edsger", nil, 8.25},
		{5, "Barbara", " 81 ", 0.0},
	}
	tests := []struct {
		name    string
		steps   []pipeline.Step
		want    [][]any
		rejects []data.Reject
		stats   Stats
	}{
		{
			name:  "select drop rename",
			steps: []pipeline.Step{{Kind: pipeline.StepSelect, Columns: []string{"name", "id", "score"}}, {Kind: pipeline.StepDrop, Columns: []string{"score"}}, {Kind: pipeline.StepRename, Renames: []pipeline.Rename{{From: "name", To: "who"}}}},
			want:  [][]any{{"Ada", 1}, {"Alan", 2}, {"Grace", 3}, {"Edsger", 4}, {"Barbara", 5}},
			stats: Stats{In: 5, Out: 5},
		},
		{
			name:  "cast quarantines what does not convert",
			steps: []pipeline.Step{{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}}}, {Kind: pipeline.StepSelect, Columns: []string{"id", "age"}}},
			want:  [][]any{{1, 36}, {3, 17}, {4, nil}, {5, 81}},
			rejects: []data.Reject{{Pos: "row 2", Reason: `cast: column "age": "abc" is not an int`,
				Raw: `{"id":2,"name":"Alan","age":"abc","score":7}`}},
			stats: Stats{In: 5, Out: 4, Quarantined: 1},
		},
		{
			name: "filter false is filtered, error is quarantined",
			steps: []pipeline.Step{
				{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}}},
				{Kind: pipeline.StepFilter, Expr: "row.age >= 18"},
				{Kind: pipeline.StepSelect, Columns: []string{"id"}},
			},
			want: [][]any{{1}, {5}},
			rejects: []data.Reject{
				{Pos: "row 2", Reason: `cast: column "age": "abc" is not an int`, Raw: `{"id":2,"name":"Alan","age":"abc","score":7}`},
				{Pos: "row 4", Reason: `filter: no such overload: _>=_ (column "age" is null)`, Raw: `{"id":4,"name":"Edsger","age":null,"score":8.25}`},
			},
			stats: Stats{In: 5, Out: 2, Filtered: 1, Quarantined: 2},
		},
		{
			name: "derive in order with runtime errors",
			steps: []pipeline.Step{
				{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{
					{Column: "inv", Expr: "10 / (row.id - 3)"},
					{Column: "label", Expr: "row.name + ':' + string(row.inv)"},
				}},
				{Kind: pipeline.StepSelect, Columns: []string{"label"}},
			},
			want: [][]any{{"Ada:-5"}, {"Alan:-10"}, {"Edsger:10"}, {"Barbara:5"}},
			rejects: []data.Reject{{Pos: "row 3", Reason: `derive: column "inv": division by zero`,
				Raw: `{"id":3,"name":"Grace","age":"17","score":null}`}},
			stats: Stats{In: 5, Out: 4, Quarantined: 1},
		},
		{
			name:  "filter everything",
			steps: []pipeline.Step{{Kind: pipeline.StepFilter, Expr: "row.id > 100"}, {Kind: pipeline.StepDerive, Derives: []pipeline.Derive{{Column: "x", Expr: "row.id * 2"}}}},
			want:  [][]any{},
			stats: Stats{In: 5, Filtered: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := people(t)
			c, err := Compile(tt.steps, s)
			if err != nil {
				t.Fatal(err)
			}
			q := &recorder{}
			out, err := c.Apply(context.Background(), mkBatch(t, s, input), q)
			if err != nil {
				t.Fatal(err)
			}
			if out.Schema != c.Schema() {
				t.Errorf("output schema %s, want %s", out.Schema, c.Schema())
			}
			if diff := cmp.Diff(tt.want, rowsOf(t, out)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.rejects, q.rejects); diff != "" {
				t.Errorf("rejects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.stats, c.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			checkInvariant(t, c.Stats())
		})
	}
}

func TestCast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		from   data.Type
		to     data.Type
		in     any
		want   any
		reason string
	}{
		{"string to int", data.String, data.Int, "-42", -42, ""},
		{"string to int bad", data.String, data.Int, "4.2", nil, `"4.2" is not an int`},
		{"string to int overflow", data.String, data.Int, "9223372036854775808", nil, `"9223372036854775808" is not an int`},
		{"empty string to int is null", data.String, data.Int, "  ", nil, ""},
		{"string to float", data.String, data.Float, "2.5e3", 2500.0, ""},
		{"string to float bad", data.String, data.Float, "x", nil, `"x" is not a float`},
		{"string to bool", data.String, data.Bool, "TRUE", true, ""},
		{"string to bool bad", data.String, data.Bool, "yes", nil, `"yes" is not a bool`},
		{"string to timestamp", data.String, data.Timestamp, "2024-05-01T12:30:00.1234567+02:00", time.Date(2024, 5, 1, 10, 30, 0, 123456000, time.UTC), ""},
		{"date to timestamp", data.String, data.Timestamp, "2024-05-01", day, ""},
		{"string to timestamp bad", data.String, data.Timestamp, "01/05/2024", nil,
			`"01/05/2024" is not a timestamp (want RFC 3339, e.g. 2024-05-01T12:00:00Z, or a date YYYY-MM-DD)`},
		{"int to float", data.Int, data.Float, 3, 3.0, ""},
		{"float to int", data.Float, data.Int, 3.0, 3, ""},
		{"float to int fraction", data.Float, data.Int, 3.5, nil, "3.5 is not an int"},
		{"float to int too big", data.Float, data.Int, 1e19, nil, "1e+19 is not an int"},
		{"int to string", data.Int, data.String, -7, "-7", ""},
		{"float to string", data.Float, data.String, 0.1, "0.1", ""},
		{"bool to string", data.Bool, data.String, false, "false", ""},
		{"timestamp to string", data.Timestamp, data.String, day, "2024-05-01T00:00:00Z", ""},
		{"null stays null", data.String, data.Int, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSchema(t, f("v", tt.from))
			c, err := Compile([]pipeline.Step{{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "v", Type: tt.to}}}}, s)
			if err != nil {
				t.Fatal(err)
			}
			q := &recorder{}
			out, err := c.Apply(context.Background(), mkBatch(t, s, [][]any{{tt.in}}), q)
			if err != nil {
				t.Fatal(err)
			}
			if tt.reason != "" {
				if len(q.rejects) != 1 || out.Len != 0 {
					t.Fatalf("got %d rows and rejects %v, want one reject", out.Len, q.rejects)
				}
				if want := `cast: column "v": ` + tt.reason; q.rejects[0].Reason != want {
					t.Errorf("reason = %s, want %s", q.rejects[0].Reason, want)
				}
				return
			}
			if len(q.rejects) != 0 {
				t.Fatalf("unexpected rejects %v", q.rejects)
			}
			if diff := cmp.Diff([][]any{{tt.want}}, rowsOf(t, out)); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPositionsFollowRows(t *testing.T) {
	t.Parallel()
	s := people(t)
	c, err := Compile([]pipeline.Step{
		{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}}},
		{Kind: pipeline.StepFilter, Expr: "row.id % 2 == 1"},
	}, s)
	if err != nil {
		t.Fatal(err)
	}
	b := mkBatch(t, s, [][]any{{1, "a", "x", 1.0}, {2, "b", "2", 1.0}, {3, "c", "3", 1.0}, {5, "e", "5", 1.0}})
	b.Pos = []int64{10, 11, 12, 14}
	q := &recorder{}
	out, err := c.Apply(context.Background(), b, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{12, 14}, out.Pos); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	if len(q.rejects) != 1 || q.rejects[0].Pos != "line 10" {
		t.Errorf("rejects = %v, want one at line 10", q.rejects)
	}
	// Without positions, rows are numbered across batches.
	c2, err := Compile([]pipeline.Step{{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}}}}, s)
	if err != nil {
		t.Fatal(err)
	}
	q2 := &recorder{}
	for range 2 {
		if _, err := c2.Apply(context.Background(), mkBatch(t, s, [][]any{{1, "a", "1", 1.0}, {2, "b", "bad", 1.0}}), q2); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, r := range q2.rejects {
		got = append(got, r.Pos)
	}
	if diff := cmp.Diff([]string{"row 2", "row 4"}, got); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
}

func TestSelectIsZeroCopy(t *testing.T) {
	t.Parallel()
	s := people(t)
	c, err := Compile([]pipeline.Step{{Kind: pipeline.StepSelect, Columns: []string{"name"}}, {Kind: pipeline.StepRename, Renames: []pipeline.Rename{{From: "name", To: "n"}}}}, s)
	if err != nil {
		t.Fatal(err)
	}
	in := mkBatch(t, s, [][]any{{1, "a", "1", 1.0}})
	out, err := c.Apply(context.Background(), in, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if &out.Cols[0].Strings[0] != &in.Cols[1].Strings[0] {
		t.Error("select copied the column; want the input's memory reused")
	}
}

func TestQuarantineFailures(t *testing.T) {
	t.Parallel()
	s := people(t)
	steps := []pipeline.Step{{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}}}}
	rows := [][]any{{1, "a", "bad", 1.0}}
	t.Run("quarantine error stops", func(t *testing.T) {
		t.Parallel()
		c, err := Compile(steps, s)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Apply(context.Background(), mkBatch(t, s, rows), &recorder{fail: errQuarantineFull})
		if !errors.Is(err, errQuarantineFull) {
			t.Fatalf("err = %v, want %v", err, errQuarantineFull)
		}
		if c.Stats() != (Stats{}) {
			t.Errorf("stats %+v counted a failed batch", c.Stats())
		}
	})
	t.Run("nil quarantine is an error", func(t *testing.T) {
		t.Parallel()
		c, err := Compile(steps, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Apply(context.Background(), mkBatch(t, s, rows), nil); !errors.Is(err, ErrNoQuarantine) {
			t.Fatalf("err = %v, want ErrNoQuarantine", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		c, err := Compile(steps, s)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Apply(ctx, mkBatch(t, s, rows), &recorder{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("wrong schema", func(t *testing.T) {
		t.Parallel()
		c, err := Compile(steps, s)
		if err != nil {
			t.Fatal(err)
		}
		other := mustSchema(t, f("id", data.Int))
		if _, err := c.Apply(context.Background(), mkBatch(t, other, [][]any{{1}}), &recorder{}); err == nil {
			t.Fatal("Apply accepted a batch of another schema")
		}
	})
}

// TestStatsInvariantRandom runs random batches (with nulls, bad numbers
// and zeros) through a chain that filters, casts and derives, and checks
// every row is accounted for exactly once.
func TestStatsInvariantRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	s := people(t)
	c, err := Compile([]pipeline.Step{
		{Kind: pipeline.StepCast, Casts: []pipeline.Cast{{Column: "age", Type: data.Int}}},
		{Kind: pipeline.StepFilter, Expr: "row.score > 2.0"},
		{Kind: pipeline.StepDerive, Derives: []pipeline.Derive{{Column: "ratio", Expr: "row.id / row.age"}}},
		{Kind: pipeline.StepFilter, Expr: "row.ratio != 1"},
		{Kind: pipeline.StepSelect, Columns: []string{"id", "ratio"}},
	}, s)
	if err != nil {
		t.Fatal(err)
	}
	q := &recorder{}
	var out int64
	for range 50 {
		n := rng.IntN(300)
		rows := make([][]any, n)
		for i := range rows {
			var age any = strconv.Itoa(rng.IntN(5))
			switch rng.IntN(6) {
			case 0:
				age = nil
			case 1:
				age = "x" + strconv.Itoa(i)
			}
			var score any = rng.Float64() * 5
			if rng.IntN(8) == 0 {
				score = nil
			}
			rows[i] = []any{rng.IntN(10), "n", age, score}
		}
		b, err := c.Apply(context.Background(), mkBatch(t, s, rows), q)
		if err != nil {
			t.Fatal(err)
		}
		out += int64(b.Len)
		rowsOf(t, b) // checks column types and lengths agree with the schema
	}
	st := c.Stats()
	checkInvariant(t, st)
	if st.Out != out || st.Quarantined != int64(len(q.rejects)) {
		t.Errorf("stats %+v, counted %d out and %d rejects", st, out, len(q.rejects))
	}
	if st.Filtered == 0 || st.Quarantined == 0 || st.Out == 0 {
		t.Errorf("stats %+v: the random data should exercise every outcome", st)
	}
}
