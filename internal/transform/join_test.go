package transform

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// memSource yields fixed batches.
type memSource struct {
	schema  *data.Schema
	batches []*data.Batch
	err     error // returned after the batches instead of ErrEndOfInput
	closed  bool
}

func (s *memSource) Schema() *data.Schema { return s.schema }
func (s *memSource) Close() error         { s.closed = true; return nil }
func (s *memSource) Next(context.Context) (*data.Batch, error) {
	if len(s.batches) == 0 {
		if s.err != nil {
			return nil, s.err
		}
		return nil, data.ErrEndOfInput
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

func customersSchema(t testing.TB) *data.Schema {
	return mustSchema(t, f("cid", data.String), f("name", data.String), f("tier", data.Int))
}

// customersInput returns an Inputs map serving the "customers" dataset,
// and the sources it opened.
func customersInput(t testing.TB, rows ...[][]any) (map[string]OpenFunc, *[]*memSource) {
	opened := &[]*memSource{}
	s := customersSchema(t)
	open := func(context.Context) (data.Source, error) {
		src := &memSource{schema: s}
		for _, r := range rows {
			src.batches = append(src.batches, mkBatch(t, s, r))
		}
		*opened = append(*opened, src)
		return src, nil
	}
	return map[string]OpenFunc{"customers": open}, opened
}

var customerRows = [][]any{{"ada", "Ada L.", 1}, {"bo", "Bo", nil}, {nil, "Nobody", 3}}

func TestJoin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		join   pipeline.Join
		schema string
		want   [][]any
		stats  Stats
	}{
		{"inner, default select", pipeline.Join{With: "customers", On: []pipeline.JoinKey{{Left: "customer", Right: "cid"}}},
			"id:int, customer:string, amount:float, qty:int, at:timestamp, ok:bool, name:string, tier:int",
			nil, Stats{In: 8, Out: 5, Filtered: 3}},
		{"left with select", pipeline.Join{With: "customers", On: []pipeline.JoinKey{{Left: "customer", Right: "cid"}}, How: pipeline.JoinLeft, Select: []string{"tier"}},
			"id:int, customer:string, amount:float, qty:int, at:timestamp, ok:bool, tier:int",
			nil, Stats{In: 8, Out: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inputs, opened := customersInput(t, customerRows[:1], customerRows[1:])
			steps := []pipeline.Step{{Kind: pipeline.StepJoin, Join: &tt.join}}
			c, err := CompileContext(context.Background(), steps, orders(t), Options{Inputs: inputs})
			if err != nil {
				t.Fatal(err)
			}
			if len(*opened) != 1 || !(*opened)[0].closed {
				t.Errorf("the dataset was opened %d times and not closed", len(*opened))
			}
			if got := c.Schema().String(); got != tt.schema {
				t.Errorf("schema = %s, want %s", got, tt.schema)
			}
			got, err := runAll(t, c, orderRows(t), &recorder{})
			if err != nil {
				t.Fatal(err)
			}
			// Keep id, customer and the added columns.
			var short [][]any
			for _, r := range got {
				short = append(short, append([]any{r[0], r[1]}, r[6:]...))
			}
			want := map[string][][]any{
				"inner, default select": {{1, "ada", "Ada L.", 1}, {2, "bo", "Bo", nil}, {3, "ada", "Ada L.", 1}, {5, "bo", "Bo", nil}, {8, "ada", "Ada L.", 1}},
				"left with select":      {{1, "ada", 1}, {2, "bo", nil}, {3, "ada", 1}, {4, nil, nil}, {5, "bo", nil}, {6, nil, nil}, {7, "cy", nil}, {8, "ada", 1}},
			}[tt.name]
			if diff := cmp.Diff(want, short); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.stats, c.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJoinCompileErrors(t *testing.T) {
	t.Parallel()
	on := []pipeline.JoinKey{{Left: "customer", Right: "cid"}}
	readErr := errors.New("disk on fire")
	tests := []struct {
		name  string
		join  pipeline.Join
		rows  [][][]any
		open  OpenFunc
		want  string
		input bool // the error wraps ErrJoinInput
	}{
		{"duplicate key", pipeline.Join{With: "customers", On: on}, [][][]any{customerRows, {{"bo", "Bo 2", 2}}}, nil,
			`step 1 (join): join with "customers": duplicate key {"cid":"bo"} in its dataset (record 4): a lookup join needs one record per key; dedupe it upstream`, false},
		{"max rows", pipeline.Join{With: "customers", On: on, MaxRows: 2}, [][][]any{customerRows}, nil,
			`step 1 (join): join with "customers": its dataset has more than max_rows (2) records: it is held in memory; raise max_rows or make the dataset smaller upstream`, false},
		{"type mismatch", pipeline.Join{With: "customers", On: []pipeline.JoinKey{{Left: "qty", Right: "cid"}}}, nil, nil,
			`step 1 (join): join with "customers": column "qty" is int but "cid" in its dataset is string; cast one side so they match`, false},
		{"unknown left", pipeline.Join{With: "customers", On: []pipeline.JoinKey{{Left: "x", Right: "cid"}}}, nil, nil,
			`step 1 (join): join with "customers": column "x": no such column (have: id, customer, amount, qty, at, ok)`, false},
		{"unknown right", pipeline.Join{With: "customers", On: []pipeline.JoinKey{{Left: "customer", Right: "x"}}}, nil, nil,
			`step 1 (join): join with "customers": column "x": no such column in its dataset (have: cid, name, tier)`, false},
		{"unknown select", pipeline.Join{With: "customers", On: on, Select: []string{"email"}}, nil, nil,
			`step 1 (join): join with "customers": select: column "email": no such column in its dataset (have: cid, name, tier)`, false},
		{"select clash", pipeline.Join{With: "customers", On: []pipeline.JoinKey{{Left: "customer", Right: "cid"}}, Select: []string{"cid", "name"}}, nil, nil,
			"", false},
		{"open fails", pipeline.Join{With: "customers", On: on}, nil,
			func(context.Context) (data.Source, error) { return nil, readErr },
			`step 1 (join): join with "customers": reading a join dataset: disk on fire`, true},
		{"read fails", pipeline.Join{With: "customers", On: on}, nil,
			func(context.Context) (data.Source, error) {
				return &memSource{schema: customersSchema(t), err: readErr}, nil
			},
			`step 1 (join): join with "customers": reading a join dataset: disk on fire`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inputs, _ := customersInput(t, tt.rows...)
			if tt.open != nil {
				inputs["customers"] = tt.open
			}
			in := orders(t)
			if tt.name == "select clash" {
				in = mustSchema(t, f("customer", data.String), f("name", data.String))
				tt.want = `step 1 (join): join with "customers": select: column "name" is already in the stream; rename one of them before the join, or leave it out of select`
			}
			_, err := CompileContext(context.Background(), []pipeline.Step{{Kind: pipeline.StepJoin, Join: &tt.join}}, in, Options{Inputs: inputs})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n got %v\nwant %s", err, tt.want)
			}
			if got := errors.Is(err, ErrJoinInput); got != tt.input {
				t.Errorf("errors.Is(err, ErrJoinInput) = %v, want %v", got, tt.input)
			}
			if tt.input && !errors.Is(err, readErr) {
				t.Errorf("the cause is lost: %v", err)
			}
		})
	}
}

func TestJoinNullKeys(t *testing.T) {
	t.Parallel()
	inputs, _ := customersInput(t, customerRows)
	c, err := CompileContext(context.Background(), []pipeline.Step{{Kind: pipeline.StepJoin, Join: &pipeline.Join{
		With: "customers", On: []pipeline.JoinKey{{Left: "customer", Right: "cid"}}, How: pipeline.JoinLeft, Select: []string{"name"}}}},
		orders(t), Options{Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	got, err := runAll(t, c, orderRows(t), &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range got {
		if r[6] == nil {
			names = append(names, "<null>")
			continue
		}
		names = append(names, r[6].(string))
	}
	// A null customer never matches the null-keyed "Nobody".
	want := "Ada L.,Bo,Ada L.,<null>,Bo,<null>,<null>,Ada L."
	if s := strings.Join(names, ","); s != want {
		t.Errorf("names = %s, want %s", s, want)
	}
}
