package expr

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/sluicehq/sluice/internal/data"
)

// rowTypeName is the CEL type of the row variable in a typed program.
const rowTypeName = "sluice.Row"

// rowVar is the name expressions use for the current row.
const rowVar = "row"

// Program is an expression compiled against a schema. A Program is
// immutable and safe for concurrent use; evaluation state lives in an
// Evaluator, which each goroutine creates with NewEvaluator.
type Program struct {
	src    string
	schema *data.Schema
	prg    cel.Program
	out    data.Type
	outOK  bool
	celOut *types.Type
	// costTracked is true when evaluation counts cost and stops at
	// CostLimit; false when the static estimate proved it unnecessary.
	costTracked bool
	// refs are the positions of the columns the expression reads, to
	// explain an evaluation error caused by a null.
	refs []int
}

// Compile parses src and type-checks it against schema: row.<column> (or
// row['column']) has the column's type, made nullable. A column the schema
// does not have, or an operation the column types do not support, is an
// error that names the column.
func Compile(src string, schema *data.Schema) (*Program, error) {
	if schema == nil {
		return nil, errors.New("compiling expression: nil schema")
	}
	if err := checkLen(src); err != nil {
		return nil, err
	}
	prov := newRowProvider(schema)
	opts := append(baseOptions(),
		cel.CustomTypeProvider(prov),
		cel.Variable(rowVar, prov.rowType),
	)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("building expression environment: %w", err)
	}
	parsed, iss := env.Parse(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%w", iss.Err())
	}
	native := parsed.NativeRep()
	if err := rewriteRowIndex(native); err != nil {
		return nil, err
	}
	if err := checkColumns(native, schema); err != nil {
		return nil, err
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, describeIssues(iss, native, schema)
	}
	// Tracking cost at run time doubles the price of a cheap expression,
	// so it is only switched on when the static estimate cannot prove the
	// expression cheap for inputs of up to MaxCellSize bytes a string.
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	est, err := env.EstimateCost(checked, sizeHints{})
	tracked := err != nil || est.Max > CostLimit
	if tracked {
		popts = append(popts, cel.CostLimit(CostLimit))
	}
	prg, err := env.Program(checked, popts...)
	if err != nil {
		return nil, fmt.Errorf("planning expression: %w", err)
	}
	p := &Program{src: src, schema: schema, prg: prg, celOut: checked.OutputType(), costTracked: tracked,
		refs: referencedColumns(native, schema)}
	p.out, p.outOK = dataType(p.celOut)
	return p, nil
}

// Source returns the expression as written.
func (p *Program) Source() string { return p.src }

// Schema returns the schema the program was compiled against; batches
// evaluated with it must have the same fields in the same order.
func (p *Program) Schema() *data.Schema { return p.schema }

// OutputType returns the column type of the expression's result. ok is
// false when the result is not a single column value: dynamic, null, a list,
// a map or a duration.
func (p *Program) OutputType() (t data.Type, ok bool) { return p.out, p.outOK }

// OutputTypeName names the CEL result type for error messages, e.g.
// "list(string)" when OutputType is not ok.
func (p *Program) OutputTypeName() string { return typeName(p.celOut) }

// IsBool reports whether the expression yields a bool (possibly null).
func (p *Program) IsBool() bool { return p.outOK && p.out == data.Bool }

// dataType maps a CEL type to a column type.
func dataType(t *types.Type) (data.Type, bool) {
	if t == nil {
		return data.Invalid, false
	}
	switch t.Kind() {
	case types.BoolKind:
		return data.Bool, true
	case types.IntKind, types.UintKind:
		return data.Int, true
	case types.DoubleKind:
		return data.Float, true
	case types.StringKind:
		return data.String, true
	case types.TimestampKind:
		return data.Timestamp, true
	}
	return data.Invalid, false
}

// celType is the CEL type of a column: nullable, since any value may be null.
func celType(t data.Type) *types.Type {
	switch t {
	case data.String:
		return cel.NullableType(cel.StringType)
	case data.Int:
		return cel.NullableType(cel.IntType)
	case data.Float:
		return cel.NullableType(cel.DoubleType)
	case data.Bool:
		return cel.NullableType(cel.BoolType)
	case data.Timestamp:
		// Timestamps are nullable in CEL's type system as they are.
		return cel.TimestampType
	}
	return cel.DynType
}

// MaxCellSize is the string size the static cost estimate assumes for
// column values. An expression whose estimated worst case over such input
// stays under CostLimit runs without per-evaluation cost tracking; any other
// expression (a comprehension over a split string, chained replaces) has
// its cost counted and capped at run time.
const MaxCellSize = 1 << 20

// sizeHints tells the cost estimator how large column values can be.
type sizeHints struct{}

// EstimateSize implements cost.Estimator.
func (sizeHints) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if p := n.Path(); len(p) == 2 && p[0] == rowVar {
		e := cost.RangedSizeEstimate(0, MaxCellSize)
		return &e
	}
	return nil
}

// EstimateCallCost implements cost.Estimator.
func (sizeHints) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}

// rowProvider makes the row a CEL object type whose fields are the
// columns. Field reads go through GetFrom closures that know the column's
// position, so evaluation never looks a name up.
type rowProvider struct {
	types.Provider
	rowType *types.Type
	names   []string
	fields  map[string]*types.FieldType
}

func newRowProvider(schema *data.Schema) *rowProvider {
	p := &rowProvider{
		Provider: types.NewEmptyRegistry(),
		rowType:  cel.ObjectType(rowTypeName),
		names:    schema.Names(),
		fields:   make(map[string]*types.FieldType, len(schema.Fields)),
	}
	for i, f := range schema.Fields {
		p.fields[f.Name] = &types.FieldType{
			Type: celType(f.Type),
			IsSet: func(target any) bool {
				r, ok := target.(*rowVal)
				return ok && !r.b.Cols[i].IsNull(r.r)
			},
			GetFrom: func(target any) (any, error) {
				r, ok := target.(*rowVal)
				if !ok {
					return nil, fmt.Errorf("reading column %q: not a row", f.Name)
				}
				return cellValue(&r.b.Cols[i], r.r), nil
			},
		}
	}
	return p
}

// FindStructType implements types.Provider.
func (p *rowProvider) FindStructType(name string) (*types.Type, bool) {
	if name == rowTypeName {
		return types.NewTypeTypeWithParam(p.rowType), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *rowProvider) FindStructFieldNames(name string) ([]string, bool) {
	if name == rowTypeName {
		return slices.Clone(p.names), true
	}
	return p.Provider.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *rowProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if name == rowTypeName {
		ft, ok := p.fields[field]
		return ft, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

// NewValue implements types.Provider. Rows cannot be constructed in an
// expression.
func (p *rowProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if name == rowTypeName {
		return types.NewErr("a row cannot be constructed in an expression")
	}
	return p.Provider.NewValue(name, fields)
}

// rewriteRowIndex turns row['name'] into the field selection row.name, so
// that odd column names are type-checked like any other. It rejects
// comprehensions that rebind row, which would make row mean two things.
func rewriteRowIndex(a *ast.AST) error {
	fac := ast.NewExprFactory()
	var err error
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.ComprehensionKind:
			c := e.AsComprehension()
			if c.IterVar() == rowVar || c.IterVar2() == rowVar || c.AccuVar() == rowVar {
				if err == nil {
					err = fmt.Errorf("%s: %q is the current row and cannot be used as a variable name", location(a, e.ID()), rowVar)
				}
			}
		case ast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 {
				return
			}
			obj, key := c.Args()[0], c.Args()[1]
			if obj.Kind() != ast.IdentKind || obj.AsIdent() != rowVar || key.Kind() != ast.LiteralKind {
				return
			}
			name, ok := key.AsLiteral().(types.String)
			if !ok {
				return
			}
			e.SetKindCase(fac.NewSelect(e.ID(), obj, string(name)))
		}
	}))
	return err
}

// checkColumns reports the first row.<name> whose column the schema lacks,
// listing the columns it has.
func checkColumns(a *ast.AST, schema *data.Schema) error {
	var err error
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if err != nil || e.Kind() != ast.SelectKind {
			return
		}
		s := e.AsSelect()
		if s.Operand().Kind() != ast.IdentKind || s.Operand().AsIdent() != rowVar {
			return
		}
		if schema.Index(s.FieldName()) < 0 {
			err = fmt.Errorf("%s: column %q: no such column (have: %s)",
				location(a, e.ID()), s.FieldName(), strings.Join(schema.Names(), ", "))
		}
	}))
	return err
}

// referencedColumns returns the sorted positions of the columns read as
// row.<name>.
func referencedColumns(a *ast.AST, schema *data.Schema) []int {
	var refs []int
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.SelectKind {
			return
		}
		s := e.AsSelect()
		if s.Operand().Kind() == ast.IdentKind && s.Operand().AsIdent() == rowVar {
			if i := schema.Index(s.FieldName()); i >= 0 && !slices.Contains(refs, i) {
				refs = append(refs, i)
			}
		}
	}))
	slices.Sort(refs)
	return refs
}

// location renders the 1-based line:column of the expression node id.
func location(a *ast.AST, id int64) string {
	loc := a.SourceInfo().GetStartLocation(id)
	return fmt.Sprintf("%d:%d", loc.Line(), loc.Column()+1)
}

// describeIssues turns type-check issues into one error whose lines say
// where, what, and which columns (with their types) the failing operation
// was applied to.
func describeIssues(iss *cel.Issues, a *ast.AST, schema *data.Schema) error {
	nodes := map[int64]ast.Expr{}
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) { nodes[e.ID()] = e }))
	var lines []string
	for _, e := range iss.Errors() {
		msg := cleanTypeNames(e.Message)
		var cols []string
		if n, ok := nodes[e.ExprID]; ok && n.Kind() == ast.CallKind {
			c := n.AsCall()
			args := c.Args()
			if c.IsMemberFunction() {
				args = append([]ast.Expr{c.Target()}, args...)
			}
			for _, arg := range args {
				if arg.Kind() != ast.SelectKind {
					continue
				}
				s := arg.AsSelect()
				if s.Operand().Kind() == ast.IdentKind && s.Operand().AsIdent() == rowVar {
					if i := schema.Index(s.FieldName()); i >= 0 {
						cols = append(cols, fmt.Sprintf("column %q is %s", s.FieldName(), schema.Fields[i].Type))
					}
				}
			}
		}
		line := fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, msg)
		if len(cols) > 0 {
			line += " (" + strings.Join(cols, ", ") + ")"
		}
		lines = append(lines, line)
	}
	return errors.New(strings.Join(lines, "; "))
}

// cleanTypeNames replaces CEL's protobuf names for types in a checker
// message with the names pipeline authors use.
func cleanTypeNames(s string) string {
	r := strings.NewReplacer(
		"google.protobuf.Timestamp", "timestamp",
		"google.protobuf.Duration", "duration",
		"wrapper(string)", "string",
		"wrapper(int)", "int",
		"wrapper(double)", "double",
		"wrapper(bool)", "bool",
		rowTypeName, "row",
	)
	return r.Replace(s)
}
