package pipeline

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a pipeline file, at the place it was found.
type Error struct {
	Pos Pos
	Msg string
}

// Error renders "file:line:col: message". The column is left out when it is
// unknown (some YAML syntax errors only know their line), and the line too
// when that is unknown, so the prefix never points at a made-up place.
func (e Error) Error() string {
	switch {
	case e.Pos.Line == 0:
		return fmt.Sprintf("%s: %s", e.Pos.File, e.Msg)
	case e.Pos.Col == 0:
		return fmt.Sprintf("%s:%d: %s", e.Pos.File, e.Pos.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
}

// Errors is every problem Parse found, sorted by position. Parse reports all
// of them at once so that a user fixes a file in one pass rather than one
// error per attempt.
type Errors []Error

// Error renders one "file:line:col: message" per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortErrors orders errors by position, keeping discovery order among errors
// at the same place, and drops exact repeats.
func sortErrors(es Errors) Errors {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	out := es[:0]
	for i, e := range es {
		if i > 0 && e == es[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}
