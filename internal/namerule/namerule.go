// Package namerule checks the shape of names (run ids, usernames, task and
// column names): which characters, as a regular expression, and how long,
// as a bound kept apart from the expression.
//
// The bound is kept apart because a bounded repetition such as {0,127}
// compiles into one automaton state per repetition: the handful of name
// rules written that way took about a millisecond to compile at every start
// of the binary, whatever the command, for a check a length comparison does.
package namerule

import "regexp"

// Rule is a name rule.
type Rule struct {
	re  *regexp.Regexp
	max int
}

// MustCompile returns the rule that a name matches pattern (which should
// be anchored, with unbounded repetitions) and is at most max bytes long.
// It panics if pattern does not compile, like regexp.MustCompile, so it is
// for package-level rules written in the source.
func MustCompile(pattern string, max int) Rule {
	return Rule{re: regexp.MustCompile(pattern), max: max}
}

// Match reports whether name follows the rule.
func (r Rule) Match(name string) bool {
	return len(name) <= r.max && r.re.MatchString(name)
}
