// Package expr compiles the CEL expressions of pipeline specs (filter and
// derive steps) against a row of a typed batch.
package expr

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
)

// Check parses and type-checks src with the columns of the row unknown
// (row.<name> is dynamic). When wantBool is true the expression must be
// able to yield a bool. It is what validation runs before any data exists.
func Check(src string, wantBool bool) error {
	env, err := cel.NewEnv(
		cel.Variable("row", cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
	)
	if err != nil {
		return fmt.Errorf("building expression environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return iss.Err()
	}
	if wantBool && !ast.OutputType().IsAssignableType(cel.BoolType) {
		return fmt.Errorf("expression yields %s, want bool", ast.OutputType())
	}
	return nil
}
