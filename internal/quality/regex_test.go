package quality

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// regexPatterns are patterns of regex checks, including the automaton's
// corner cases: anchors in odd places, empty matches, alternations,
// counted repetition, case folding, dot and newlines.
var regexPatterns = []string{
	`^[^@]+@[^@]+$`,
	`^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$`,
	`@`, `^$`, `$`, `^`, `a*`, `x*$`, `^a|b$`, `a$|^b`, `(?i)^hello$`, `(?i)k`,
	`^\d{3}-\d{4}$`, `\A[A-Z]{2}\z`, `^(ab|a)(bc|c)$`, `a.c`, `(?s)a.c`, `^.*$`,
	`^(?:a|b)*abb$`, `^[[:alpha:]]+$`, `^\s*\S+\s*$`, `^a{2,4}$`, `(^a)|(b$)`,
	`^$|^x`, `a^b`, `a$b`, `^(a$|b)`, `^\x00?z$`, `(?U)a+?b`, `^[^a-c]*$`,
	`^é+$`, `^[^\x{100}]+$`, `ü`, `^.$`,
}

// regexInputs are values built from the bytes these patterns care about,
// some of them non-ASCII or invalid UTF-8.
func regexInputs(rng *rand.Rand, n int) []string {
	alphabet := []string{"a", "b", "c", "x", "z", "A", "K", "k", "@", ".", "-", "1", "9", " ", "\n", "\x00", "hello", "HeLLo", "é", "ü", "\xff", "\u0100", "com", "user"}
	out := []string{"", "a", "@", "a@b", "user@example.com", "user@@example.com", "@example.com", "user@", "\n", "abc", "a\nc", "ab", "abb", "abc\n", "é", "\xff"}
	for len(out) < n {
		var s string
		for k := rng.IntN(8); k >= 0; k-- {
			s += alphabet[rng.IntN(len(alphabet))]
		}
		out = append(out, s)
	}
	return out
}

// TestMatcherAgreesWithRegexp checks the automaton against regexp on every
// pattern and a few thousand values each.
func TestMatcherAgreesWithRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := regexInputs(rng, 3000)
	for _, p := range regexPatterns {
		m, err := newMatcher(p)
		if err != nil {
			t.Fatalf("pattern %q: %v", p, err)
		}
		if m.dfa == nil {
			t.Errorf("pattern %q: no automaton, want one", p)
		}
		re := regexp.MustCompile(p)
		for _, s := range inputs {
			if got, want := m.MatchString(s), re.MatchString(s); got != want {
				t.Errorf("pattern %q, value %q: matched %v, regexp says %v", p, s, got, want)
			}
		}
	}
}

// TestMatcherWithoutAutomaton covers the patterns regexp alone matches:
// assertions the automaton does not model, and automata too large.
func TestMatcherWithoutAutomaton(t *testing.T) {
	for _, p := range []string{`\bfoo\b`, `(?m)^a$`, `\Bx`, `[ab]*a[ab]{12}`} {
		m, err := newMatcher(p)
		if err != nil {
			t.Fatalf("pattern %q: %v", p, err)
		}
		if m.dfa != nil {
			t.Errorf("pattern %q: an automaton of %d states, want none", p, m.dfa.states)
		}
		re := regexp.MustCompile(p)
		for _, s := range []string{"foo", "a foo b", "foobar", "a\nb", "b\na", "ax", "x", "a" + "b" + "aaaaaaaaaaaa"} {
			if got, want := m.MatchString(s), re.MatchString(s); got != want {
				t.Errorf("pattern %q, value %q: matched %v, regexp says %v", p, s, got, want)
			}
		}
	}
	if _, err := newMatcher(`a(`); err == nil {
		t.Error("invalid pattern compiled")
	}
}

// FuzzMatcher compares the automaton with regexp on any pattern and value.
func FuzzMatcher(f *testing.F) {
	for i, p := range regexPatterns {
		f.Add(p, []string{"user@example.com", "a", "", "abb", "\n", "hello"}[i%6])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		re, err := regexp.Compile(p)
		if err != nil {
			return
		}
		m, err := newMatcher(p)
		if err != nil {
			t.Fatalf("pattern %q: regexp compiles it, newMatcher: %v", p, err)
		}
		if got, want := m.MatchString(s), re.MatchString(s); got != want {
			t.Fatalf("pattern %q, value %q: matched %v, regexp says %v", p, s, got, want)
		}
	})
}

// randomPattern builds a pattern of depth at most d from the pieces
// regex checks are made of.
func randomPattern(rng *rand.Rand, d int) string {
	atoms := []string{"a", "b", "k", "@", `\.`, ".", "[a-c]", "[^@]", "[^a]", `\d`, `\s`, "é", "^", "$", `\A`, `\z`, "(?i:k)", "(?s:.)", ""}
	var p string
	for n := rng.IntN(4); n >= 0; n-- {
		var a string
		if d > 0 && rng.IntN(3) == 0 {
			a = "(" + randomPattern(rng, d-1) + "|" + randomPattern(rng, d-1) + ")"
		} else {
			a = atoms[rng.IntN(len(atoms))]
		}
		if a != "^" && a != "$" && a != `\A` && a != `\z` && a != "" {
			a += []string{"", "", "*", "+", "?", "{2}", "{1,3}", "*?"}[rng.IntN(8)]
		}
		p += a
	}
	return p
}

// TestMatcherAgreesWithRegexpOnRandomPatterns compares the automaton with
// regexp on generated patterns.
func TestMatcherAgreesWithRegexpOnRandomPatterns(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	inputs := regexInputs(rng, 200)
	built := 0
	for range 500 {
		p := randomPattern(rng, 2)
		re, err := regexp.Compile(p)
		if err != nil {
			t.Fatalf("pattern %q: %v", p, err)
		}
		m, err := newMatcher(p)
		if err != nil {
			t.Fatalf("pattern %q: %v", p, err)
		}
		if m.dfa != nil {
			built++
		}
		for _, s := range inputs {
			if got, want := m.MatchString(s), re.MatchString(s); got != want {
				t.Fatalf("pattern %q, value %q: matched %v, regexp says %v", p, s, got, want)
			}
		}
	}
	if built < 475 {
		t.Errorf("%d of 500 patterns have an automaton, want nearly all", built)
	}
}
