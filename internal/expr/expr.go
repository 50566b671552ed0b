// Package expr compiles the CEL expressions of pipeline specs (filter and
// derive steps) against a row of a typed batch.
//
// An expression addresses the current row as row.<column>, or
// row['odd name'] for a column whose name is not an identifier. Compile
// type-checks it against the real column types of a schema; Check does the
// same with the columns unknown, for validation before any data exists.
//
// Every column may hold nulls, so a column of type int is typed as a nullable
// int: row.age + 1 type-checks, row.age == null type-checks, and a null read
// at run time is CEL null (which then fails any arithmetic with an
// evaluation error rather than a wrong value). has(row.x) is true when the
// value of column x in the current row is not null.
//
// Expressions are deterministic: there is no now() and no randomness, so a
// rerun of a pipeline over the same input gives the same output.
package expr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
)

// Limits that keep a hostile or careless expression from running unbounded.
// They are generous for anything a pipeline author means to write.
const (
	// MaxSourceLen is the longest expression accepted, in code points.
	MaxSourceLen = 4096
	// maxRecursion bounds the parser's nesting depth.
	maxRecursion = 64
	// maxComprehensionNesting bounds nested macros such as
	// list.map(x, list.map(y, ...)), whose cost multiplies.
	maxComprehensionNesting = 2
	// CostLimit bounds the work of one evaluation, in CEL cost units
	// (roughly one per operation, plus the size of strings and lists that
	// functions walk). An evaluation that exceeds it fails, and the row is
	// quarantined with the reason.
	CostLimit = 10_000_000
	// maxRegexProgramSize bounds the compiled size of a matches() pattern.
	maxRegexProgramSize = 1000
)

// baseOptions are the environment options both Check and Compile use, so
// that validation accepts exactly the functions evaluation provides.
func baseOptions() []cel.EnvOption {
	return []cel.EnvOption{
		ext.Strings(),
		ext.Math(),
		cel.OptionalTypes(),
		ext.Regex(),
		ext.Encoders(),
		cel.Function("sha256",
			cel.Overload("sha256_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(sha256Hex))),
		cel.Function("formatTime",
			cel.MemberOverload("timestamp_formatTime_string", []*cel.Type{cel.TimestampType, cel.StringType}, cel.StringType,
				cel.BinaryBinding(formatTime))),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxSourceLen),
		cel.ParserRecursionLimit(maxRecursion),
		cel.RegexProgramSizeLimit(maxRegexProgramSize),
		cel.ASTValidators(cel.ValidateComprehensionNestingLimit(maxComprehensionNesting)),
	}
}

// sha256Hex is the sha256(string) function: the lowercase hex SHA-256 of
// the string's UTF-8 bytes.
func sha256Hex(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	sum := sha256.Sum256([]byte(s))
	return types.String(hex.EncodeToString(sum[:]))
}

// formatTime is timestamp.formatTime(layout): the instant in UTC laid out
// with a Go reference layout, e.g. row.at.formatTime('2006-01-02'). The
// standard getters (getFullYear, ...) cover parts; this covers keys such as
// a day or a month string for grouping.
func formatTime(ts, layout ref.Val) ref.Val {
	t, ok := ts.(types.Timestamp)
	if !ok {
		return types.MaybeNoSuchOverloadErr(ts)
	}
	l, ok := layout.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(layout)
	}
	if len(l) > 64 {
		return types.NewErr("formatTime: layout is longer than 64 characters")
	}
	return types.String(t.Time.UTC().Format(string(l)))
}

// Check parses and type-checks src with the columns of the row unknown
// (row.<name> is dynamic). When wantBool is true the expression must be
// able to yield a bool. It is what validation runs before any data exists.
func Check(src string, wantBool bool) error {
	if err := checkLen(src); err != nil {
		return err
	}
	opts := append(baseOptions(), cel.Variable("row", cel.MapType(cel.StringType, cel.DynType)))
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return fmt.Errorf("building expression environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return fmt.Errorf("%w", iss.Err())
	}
	if wantBool && !ast.OutputType().IsAssignableType(cel.BoolType) && !cel.BoolType.IsAssignableType(ast.OutputType()) {
		return fmt.Errorf("expression yields %s, want bool", typeName(ast.OutputType()))
	}
	return nil
}

func checkLen(src string) error {
	if strings.TrimSpace(src) == "" {
		return fmt.Errorf("empty expression")
	}
	if n := len([]rune(src)); n > MaxSourceLen {
		return fmt.Errorf("expression is %d characters long, the limit is %d", n, MaxSourceLen)
	}
	return nil
}

// typeName renders a CEL type the way pipeline authors know types: the
// nullable column types print as their data type name.
func typeName(t *types.Type) string {
	if dt, ok := dataType(t); ok {
		return dt.String()
	}
	s := t.String()
	s = strings.ReplaceAll(s, "google.protobuf.Timestamp", "timestamp")
	s = strings.ReplaceAll(s, "google.protobuf.Duration", "duration")
	return s
}
