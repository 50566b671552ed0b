package namerule

import (
	"regexp"
	"strings"
	"testing"
)

func TestRule(t *testing.T) {
	r := MustCompile(`^[a-z][a-z0-9]*$`, 4)
	for name, want := range map[string]bool{
		"a": true, "ab12": true, "abcd": true,
		"": false, "abcde": false, "1ab": false, "aB": false,
		strings.Repeat("a", 1000): false,
	} {
		if got := r.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

// A rule written with a bounded repetition and its rewriting into an
// unbounded pattern and a length give the same answers.
func TestSameAsBoundedRepetition(t *testing.T) {
	bounded := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	r := MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 128)
	for _, name := range []string{
		"", "a", "-a", "a-", ".", "x.y_z-1", "a b", "é",
		strings.Repeat("a", 127), strings.Repeat("a", 128), strings.Repeat("a", 129),
	} {
		if got, want := r.Match(name), bounded.MatchString(name); got != want {
			t.Errorf("Match(%q) = %v, bounded repetition says %v", name, got, want)
		}
	}
}
