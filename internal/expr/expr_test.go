package expr

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// testBatch has two rows: row 0 fully set, row 1 with nulls in age,
// active and signup.
func testBatch(t testing.TB) *data.Batch {
	t.Helper()
	s := data.MustSchema(
		data.Field{Name: "id", Type: data.Int},
		data.Field{Name: "name", Type: data.String},
		data.Field{Name: "email", Type: data.String},
		data.Field{Name: "age", Type: data.Int},
		data.Field{Name: "score", Type: data.Float},
		data.Field{Name: "active", Type: data.Bool},
		data.Field{Name: "signup", Type: data.Timestamp},
		data.Field{Name: "odd name", Type: data.String},
	)
	b := data.NewBatch(s, 2)
	b.Cols[0].Ints = []int64{1, 2}
	b.Cols[1].Strings = []string{"  Ada Lovelace ", "Alan"}
	b.Cols[2].Strings = []string{"ada@example.com", "alan@example.org"}
	b.Cols[3].Ints = []int64{36, 0}
	b.Cols[3].Nulls = []bool{false, true}
	b.Cols[4].Floats = []float64{9.5, -2}
	b.Cols[5].Bools = []bool{true, false}
	b.Cols[5].Nulls = []bool{false, true}
	b.Cols[6].Times = []time.Time{t0, {}}
	b.Cols[6].Nulls = []bool{false, true}
	b.Cols[7].Strings = []string{"odd", "even"}
	b.Len = 2
	return b
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want string
	}{
		{"unknown column", "row.nosuch == 1", `1:4: column "nosuch": no such column (have: id, name, email, age, score, active, signup, odd name)`},
		{"unknown indexed column", "row['no such'] == 1", `1:4: column "no such": no such column`},
		{"int plus string", "row.age + 'x'", `1:9: found no matching overload for '_+_' applied to '(int, string)' (column "age" is int)`},
		{"string method on int", "row.id.lowerAscii()", `found no matching overload for 'lowerAscii' applied to 'int.()' (column "id" is int)`},
		{"timestamp minus string", "row.signup - 'x'", `'(timestamp, string)' (column "signup" is timestamp)`},
		{"no now", "now() > row.signup", `undeclared reference to 'now'`},
		{"row rebound", "[1].exists(row, row > 0)", `"row" is the current row and cannot be used as a variable name`},
		{"syntax", "row.id +", `Syntax error`},
		{"empty", "  ", `empty expression`},
		{"too long", strings.Repeat("1+", 3000) + "1", `expression is 6001 characters long, the limit is 4096`},
		{"deep comprehension", "[1].all(a, [1].all(b, [1].all(c, true)))", `comprehension exceeds nesting limit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.src, testBatch(t).Schema)
			if err == nil {
				t.Fatalf("Compile(%q) succeeded, want error containing %q", tt.src, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Compile(%q) error:\n got %s\nwant it to contain %s", tt.src, err, tt.want)
			}
		})
	}
}

func TestEval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		row     int
		want    any
		wantErr string
		typ     data.Type
	}{
		// Columns and nulls.
		{"int column", "row.id + 1", 0, int64(2), "", data.Int},
		{"odd name", "row['odd name'] + '!'", 0, "odd!", "", data.String},
		{"null is null", "row.age == null", 1, true, "", data.Bool},
		{"not null", "row.age == null", 0, false, "", data.Bool},
		{"has is not null", "has(row.age)", 1, false, "", data.Bool},
		{"null arithmetic fails", "row.age + 1", 1, nil, `no such overload: _+_ (column "age" is null)`, data.Int},
		{"null guarded", "has(row.age) ? row.age : -1", 1, int64(-1), "", data.Int},
		{"cross numeric compare", "row.score > 9", 0, true, "", data.Bool},
		// Standard library.
		{"in list", "row.name in ['Alan', 'Grace']", 1, true, "", data.Bool},
		{"matches", "row.email.matches('^[a-z]+@example[.]com$')", 0, true, "", data.Bool},
		{"size", "size(row.email)", 0, int64(15), "", data.Int},
		{"timestamp", "row.signup + duration('36h') >= timestamp('2024-05-03T00:00:00Z')", 0, true, "", data.Bool},
		{"timestamp parts", "row.signup.getFullYear()", 0, int64(2024), "", data.Int},
		{"timestamp value", "row.signup + duration('1s')", 0, t0.Add(time.Second), "", data.Timestamp},
		{"division by zero", "row.id / (row.id - 1)", 0, nil, "division by zero", data.Int},
		{"string conversion", "string(row.score)", 0, "9.5", "", data.String},
		// ext.Strings.
		{"split", "row.email.split('@')[1]", 0, "example.com", "", data.String},
		{"split index out of range", "row.name.split('@')[1]", 1, nil, "index out of bounds", data.String},
		{"lowerAscii trim", "row.name.trim().lowerAscii()", 0, "ada lovelace", "", data.String},
		{"replace", "row.email.replace('@', ' at ')", 1, "alan at example.org", "", data.String},
		{"indexOf", "row.email.indexOf('@')", 1, int64(4), "", data.Int},
		// ext.Math.
		{"greatest", "math.greatest(row.id, 5)", 0, int64(5), "", data.Int},
		{"abs", "math.abs(row.score)", 1, 2.0, "", data.Float},
		{"round", "math.round(row.score)", 0, 10.0, "", data.Float},
		// sha256.
		{"sha256", "sha256('abc')", 0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "", data.String},
		{"sha256 column", "sha256(row.name) == sha256('Alan')", 1, true, "", data.Bool},
		// ext.Regex, ext.Encoders, formatTime.
		{"regex replace", "regex.replace(row.email, '@.*$', '@x')", 0, "ada@x", "", data.String},
		{"regex extract", "regex.extract(row.email, '@([a-z]+)').orValue('none')", 0, "example", "", data.String},
		{"regex extract none", "regex.extract(row.name, '[0-9]+').orValue('none')", 0, "none", "", data.String},
		{"base64", "base64.encode(bytes(row.name))", 1, "QWxhbg==", "", data.String},
		{"formatTime", "row.signup.formatTime('2006-01')", 0, "2024-05", "", data.String},
		{"formatTime long layout", "row.signup.formatTime('" + strings.Repeat("x", 65) + "')", 0, nil, "formatTime: layout is longer than 64 characters", data.String},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := testBatch(t)
			p, err := Compile(tt.src, b.Schema)
			if err != nil {
				t.Fatal(err)
			}
			if typ, ok := p.OutputType(); !ok || typ != tt.typ {
				t.Errorf("OutputType = %v, %v; want %v", typ, ok, tt.typ)
			}
			v, err := p.Eval(b, tt.row)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Eval error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := v.Value()
			if ts, ok := v.(types.Timestamp); ok {
				got = ts.Time
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Eval (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutputTypeNotAColumn(t *testing.T) {
	t.Parallel()
	s := testBatch(t).Schema
	for _, src := range []string{"row.name.split(' ')", "{'a': 1}", "duration('1s')", "null"} {
		p, err := Compile(src, s)
		if err != nil {
			t.Fatal(err)
		}
		if typ, ok := p.OutputType(); ok {
			t.Errorf("%s: OutputType = %v, want not ok", src, typ)
		}
	}
}

func TestEvalBool(t *testing.T) {
	t.Parallel()
	b := testBatch(t)
	p, err := Compile("row.active", b.Schema)
	if err != nil {
		t.Fatal(err)
	}
	ev := p.NewEvaluator()
	if got, err := ev.EvalBool(b, 0); err != nil || !got {
		t.Errorf("row 0: %v, %v; want true", got, err)
	}
	if _, err := ev.EvalBool(b, 1); !errors.Is(err, ErrNull) {
		t.Errorf("row 1: err %v, want ErrNull", err)
	}
	if _, err := ev.EvalBool(b, 2); err == nil {
		t.Error("row 2 of 2: want out of range error")
	}
	other := data.NewBatch(data.MustSchema(data.Field{Name: "active", Type: data.Bool}), 1)
	other.Cols[0].Bools, other.Len = []bool{true}, 1
	if _, err := ev.EvalBool(other, 0); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("other schema: err %v, want ErrSchemaMismatch", err)
	}
}

func TestAppendValue(t *testing.T) {
	t.Parallel()
	b := testBatch(t)
	p, err := Compile("has(row.age) ? row.age : null", b.Schema)
	if err != nil {
		t.Fatal(err)
	}
	col := data.Column{Type: data.Int}
	ev := p.NewEvaluator()
	for r := range 2 {
		if err := ev.EvalAppend(b, r, &col); err != nil {
			t.Fatal(err)
		}
	}
	want := data.Column{Type: data.Int, Ints: []int64{36, 0}, Nulls: []bool{false, true}}
	if diff := cmp.Diff(want, col); diff != "" {
		t.Errorf("column (-want +got):\n%s", diff)
	}
	ts := data.Column{Type: data.Timestamp}
	if err := AppendValue(&ts, types.Timestamp{Time: time.Date(2024, 1, 1, 0, 0, 0, 1500, time.FixedZone("X", 3600))}); err != nil {
		t.Fatal(err)
	}
	if got, want := ts.Times[0], time.Date(2023, 12, 31, 23, 0, 0, 1000, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("timestamp stored as %v, want %v in UTC", got, want)
	}
	if err := AppendValue(&data.Column{Type: data.Int}, types.String("x")); err == nil || err.Error() != "expression yields string, want int" {
		t.Errorf("type mismatch error = %v", err)
	}
	if err := AppendValue(&data.Column{Type: data.Int}, types.Uint(1<<63)); err == nil {
		t.Error("uint above MaxInt64 accepted")
	}
}

func TestCostLimit(t *testing.T) {
	t.Parallel()
	s := data.MustSchema(data.Field{Name: "s", Type: data.String})
	p, err := Compile("row.s.split('').map(x, row.s.split('').filter(y, y == x).size()).size() > 0", s)
	if err != nil {
		t.Fatal(err)
	}
	if !p.costTracked {
		t.Fatal("quadratic expression runs without a cost limit")
	}
	b := data.NewBatch(s, 1)
	b.Cols[0].Strings, b.Len = []string{strings.Repeat("a", 5000)}, 1
	if _, err := p.Eval(b, 0); err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("err = %v, want cost limit exceeded", err)
	}
	cheap, err := Compile("row.s.split('@').size() > 1 && row.s.lowerAscii() != ''", s)
	if err != nil {
		t.Fatal(err)
	}
	if cheap.costTracked {
		t.Error("linear expression pays for cost tracking")
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src      string
		wantBool bool
		want     string
	}{
		{"row.country in ['DE', 'FR']", true, ""},
		{"row['odd name'] + 1 > 2", true, ""},
		{"sha256(row.email)", false, ""},
		{"row.email.split('@')[1].lowerAscii()", false, ""},
		{"math.greatest(1, 2) == 2", true, ""},
		{"1 + 2", true, "expression yields int, want bool"},
		{"now()", false, "undeclared reference to 'now'"},
		{"row.x +", false, "Syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			t.Parallel()
			err := Check(tt.src, tt.wantBool)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestConcurrentEvaluators(t *testing.T) {
	t.Parallel()
	b := testBatch(t)
	p, err := Compile("row.name.trim() + '#' + string(row.id)", b.Schema)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			ev := p.NewEvaluator()
			for i := range 200 {
				v, err := ev.Eval(b, i%2)
				if err != nil {
					errs <- err
					return
				}
				want := []string{"Ada Lovelace#1", "Alan#2"}[i%2]
				if v.Value() != want {
					errs <- errors.New("got " + v.Value().(string) + ", want " + want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"row.id + 1", "row['odd name']", "row.email.split('@')[1]", "has(row.age) ? row.age : 0",
		"[1,2].map(x, x * row.id)", "sha256(row.name)", "row.signup + duration('1h')", "row[",
		"math.greatest(row.score, 1.0)", "row.name.matches('(a+)+$')",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		b := testBatch(t)
		p, err := Compile(src, b.Schema)
		_ = Check(src, true)
		if err != nil {
			return
		}
		ev := p.NewEvaluator()
		for r := range b.Len {
			if v, err := ev.Eval(b, r); err == nil {
				if typ, ok := p.OutputType(); ok {
					col := data.Column{Type: typ}
					_ = AppendValue(&col, v)
				}
			}
		}
	})
}
