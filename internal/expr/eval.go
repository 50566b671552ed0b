package expr

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/sluicehq/sluice/internal/data"
)

// ErrNull is returned by EvalBool when a filter expression yields null
// (for example row.active on a row whose active column is null).
var ErrNull = errors.New("expression yields null")

// ErrSchemaMismatch is returned when a batch's fields differ from the
// schema the program was compiled against.
var ErrSchemaMismatch = errors.New("batch schema differs from the compiled schema")

// Evaluator evaluates one Program row by row without allocating a map or an
// activation per row: the row variable is a view of (batch, row index) that
// reads column values in place. An Evaluator is not safe for concurrent use;
// create one per goroutine with Program.NewEvaluator.
type Evaluator struct {
	p    *Program
	row  rowVal
	act  rowActivation
	seen *data.Schema // last batch schema verified compatible
}

// NewEvaluator returns an evaluator of p for use by one goroutine.
func (p *Program) NewEvaluator() *Evaluator {
	e := &Evaluator{p: p, seen: p.schema}
	e.act.row = &e.row
	return e
}

// Eval evaluates the program on row r of b. It is safe for concurrent use,
// at the price of one small allocation per call; hot loops use an Evaluator.
func (p *Program) Eval(b *data.Batch, r int) (ref.Val, error) {
	return p.NewEvaluator().Eval(b, r)
}

// Eval evaluates the program on row r of b. Evaluation errors (a null in
// arithmetic, division by zero, an index out of range, the cost limit) are
// returned as errors whose text says what went wrong.
func (e *Evaluator) Eval(b *data.Batch, r int) (ref.Val, error) {
	if b.Schema != e.seen {
		if !sameFields(b.Schema, e.p.schema) {
			return nil, fmt.Errorf("evaluating %q: %w: have (%s), compiled for (%s)",
				e.p.src, ErrSchemaMismatch, b.Schema, e.p.schema)
		}
		e.seen = b.Schema
	}
	if r < 0 || r >= b.Len {
		return nil, fmt.Errorf("evaluating %q: row %d out of range [0, %d)", e.p.src, r, b.Len)
	}
	e.row.b, e.row.r = b, r
	out, _, err := e.p.prg.Eval(&e.act)
	e.row.b = nil
	if err != nil {
		return nil, e.explain(err, b, r)
	}
	return out, nil
}

// explain adds to an evaluation error the columns of the row that were
// null, the usual cause of "no such overload" at run time.
func (e *Evaluator) explain(err error, b *data.Batch, r int) error {
	var nulls []string
	for _, i := range e.p.refs {
		if b.Cols[i].IsNull(r) {
			nulls = append(nulls, strconv.Quote(b.Schema.Fields[i].Name))
		}
	}
	switch len(nulls) {
	case 0:
		return err
	case 1:
		return fmt.Errorf("%w (column %s is null)", err, nulls[0])
	}
	return fmt.Errorf("%w (columns %s are null)", err, strings.Join(nulls, ", "))
}

// EvalBool evaluates a bool expression on row r of b. A null result is
// ErrNull; a result of another type is an error.
func (e *Evaluator) EvalBool(b *data.Batch, r int) (bool, error) {
	v, err := e.Eval(b, r)
	if err != nil {
		return false, err
	}
	switch v := v.(type) {
	case types.Bool:
		return bool(v), nil
	case types.Null:
		return false, ErrNull
	}
	return false, fmt.Errorf("expression yields %s, want bool", v.Type().TypeName())
}

// EvalAppend evaluates the program on row r of b and appends the result to
// col, converted to col's type (see AppendValue).
func (e *Evaluator) EvalAppend(b *data.Batch, r int, col *data.Column) error {
	v, err := e.Eval(b, r)
	if err != nil {
		return err
	}
	return AppendValue(col, v)
}

func sameFields(a, b *data.Schema) bool {
	if a == nil || b == nil || len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i] != b.Fields[i] {
			return false
		}
	}
	return true
}

// AppendValue appends v to col as one more row. Null appends a null. A
// value of another type than the column's is an error, except that a uint
// becomes an int when it fits, and timestamps are stored in UTC with
// microsecond precision as the data model requires.
func AppendValue(col *data.Column, v ref.Val) error {
	if _, null := v.(types.Null); null {
		col.AppendNull()
		return nil
	}
	ok := false
	switch col.Type {
	case data.String:
		if s, is := v.(types.String); is {
			col.Strings, ok = append(col.Strings, string(s)), true
		}
	case data.Int:
		switch x := v.(type) {
		case types.Int:
			col.Ints, ok = append(col.Ints, int64(x)), true
		case types.Uint:
			if uint64(x) <= math.MaxInt64 {
				col.Ints, ok = append(col.Ints, int64(x)), true
			}
		}
	case data.Float:
		if f, is := v.(types.Double); is {
			col.Floats, ok = append(col.Floats, float64(f)), true
		}
	case data.Bool:
		if x, is := v.(types.Bool); is {
			col.Bools, ok = append(col.Bools, bool(x)), true
		}
	case data.Timestamp:
		if t, is := v.(types.Timestamp); is {
			col.Times, ok = append(col.Times, t.Time.UTC().Truncate(time.Microsecond)), true
		}
	}
	if !ok {
		return fmt.Errorf("expression yields %s, want %s", v.Type().TypeName(), col.Type)
	}
	col.MarkAppended()
	return nil
}

// cellValue reads row r of c as a CEL value.
func cellValue(c *data.Column, r int) ref.Val {
	if c.Nulls != nil && c.Nulls[r] {
		return types.NullValue
	}
	switch c.Type {
	case data.String:
		return types.String(c.Strings[r])
	case data.Int:
		return types.Int(c.Ints[r])
	case data.Float:
		return types.Double(c.Floats[r])
	case data.Bool:
		return types.Bool(c.Bools[r])
	case data.Timestamp:
		return types.Timestamp{Time: c.Times[r]}
	}
	return types.NewErr("column of invalid type")
}

// rowActivation resolves the single variable row to the evaluator's row
// view. It is reused for every row.
type rowActivation struct{ row *rowVal }

var _ interpreter.Activation = (*rowActivation)(nil)

// ResolveName implements interpreter.Activation.
func (a *rowActivation) ResolveName(name string) (any, bool) {
	if name == rowVar {
		return a.row, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *rowActivation) Parent() interpreter.Activation { return nil }

// rowVal is the CEL value of the current row: a view of row r of batch b.
// Typed field reads go through the provider's GetFrom closures; Get serves
// dynamic indexing such as row[name] with a computed name.
type rowVal struct {
	b *data.Batch
	r int
}

var rowCELType = types.NewObjectType(rowTypeName)

// ConvertToNative implements ref.Val; a row has no native form.
func (v *rowVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("a row cannot be converted to %v", t)
}

// ConvertToType implements ref.Val.
func (v *rowVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return rowCELType
	}
	if t.TypeName() == rowTypeName {
		return v
	}
	return types.NewErr("type conversion error from row to '%s'", t.TypeName())
}

// Equal implements ref.Val: a row equals only itself.
func (v *rowVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(*rowVal)
	return types.Bool(ok && o.b == v.b && o.r == v.r)
}

// Type implements ref.Val.
func (v *rowVal) Type() ref.Type { return rowCELType }

// Value implements ref.Val. It returns the view itself, which the field
// getters recognise.
func (v *rowVal) Value() any { return v }

// Get implements traits.Indexer for row[name] with a computed name.
func (v *rowVal) Get(index ref.Val) ref.Val {
	name, ok := index.(types.String)
	if !ok {
		return types.NewErr("row index must be a column name, got %s", index.Type().TypeName())
	}
	i := v.b.Schema.Index(string(name))
	if i < 0 {
		return types.NewErr("no such column %q", string(name))
	}
	return cellValue(&v.b.Cols[i], v.r)
}

// IsSet implements traits.FieldTester: a column is set when not null.
func (v *rowVal) IsSet(field ref.Val) ref.Val {
	name, ok := field.(types.String)
	if !ok {
		return types.NewErr("row field must be a column name, got %s", field.Type().TypeName())
	}
	i := v.b.Schema.Index(string(name))
	if i < 0 {
		return types.NewErr("no such column %q", string(name))
	}
	return types.Bool(!v.b.Cols[i].IsNull(v.r))
}
