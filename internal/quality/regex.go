package quality

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The regex check runs over every value of a column, so its matcher is the
// largest per-value cost of a typical check step: Go's regexp spends a few
// hundred nanoseconds on a 30-byte e-mail address (its one-pass and
// backtracking engines step instruction by instruction, rune by rune).
//
// matcher answers the same question — does the value match, anywhere
// unless the pattern is anchored — with a deterministic automaton over
// ASCII bytes, built once when the check is compiled from the very program
// regexp runs (same parser, same flags, same simplification), so it is
// RE2 syntax and semantics by construction: one table look-up per byte. It
// is used only where it is exact and small:
//
//   - a value with a byte of 0x80 or more (non-ASCII or invalid UTF-8) is
//     matched by regexp itself, as is the empty value;
//   - a pattern with an assertion other than ^, $, \A and \z (word
//     boundaries, (?m) line anchors) has no automaton;
//   - a pattern whose automaton would exceed maxDFAStates states has none
//     (the table is 128 entries of 2 bytes per state: at most 64 KB).
//
// A pattern without an automaton, or a value it does not cover, goes to
// regexp.MatchString.

// maxDFAStates bounds the automaton of one pattern, and maxDFAInsts the
// program it is built from, which bounds the time to build it (states ×
// 128 bytes × instructions).
const (
	maxDFAStates = 256
	maxDFAInsts  = 500
)

// matcher matches the values of a regex check.
type matcher struct {
	re  *regexp.Regexp
	dfa *dfa // nil: use re for every value
}

// newMatcher compiles pattern for a regex check.
func newMatcher(pattern string) (*matcher, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", pattern, err)
	}
	return &matcher{re: re, dfa: buildDFA(pattern)}, nil
}

// MatchString reports whether s contains a match of the pattern, exactly
// as regexp.Regexp.MatchString.
func (m *matcher) MatchString(s string) bool {
	if m.dfa != nil && len(s) > 0 {
		if matched, ok := m.dfa.match(s); ok {
			return matched
		}
	}
	return m.re.MatchString(s)
}

// State kinds of the automaton.
const (
	stateLive   = iota
	stateAccept // a match has been found: the value matches whatever follows
	stateDead   // no match can be found whatever follows
)

// dfa is a deterministic automaton over ASCII bytes.
type dfa struct {
	trans  []uint16 // trans[state<<7|b]: the state after byte b
	kind   []uint8  // kind[state]: stateLive, stateAccept or stateDead
	endOK  []bool   // endOK[state]: the input may end here (a match at the end)
	start  uint16
	states int
}

// match runs the automaton over s (not empty). ok is false if s has a byte
// the automaton does not cover.
func (d *dfa) match(s string) (matched, ok bool) {
	st := d.start
	for i := 0; i < len(s) && d.kind[st] == stateLive; i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return false, false
		}
		st = d.trans[int(st)<<7|int(c)]
	}
	switch d.kind[st] {
	case stateAccept:
		return true, true
	case stateDead:
		return false, true
	}
	return d.endOK[st], true
}

// buildDFA builds the automaton of pattern by subset construction over the
// program regexp compiles it to, or returns nil where it would not be exact
// or would be too large.
func buildDFA(pattern string) *dfa {
	// As regexp.Compile does.
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	if len(prog.Inst) > maxDFAInsts {
		return nil
	}
	for i := range prog.Inst {
		in := &prog.Inst[i]
		if in.Op == syntax.InstEmptyWidth && syntax.EmptyOp(in.Arg)&^(syntax.EmptyBeginText|syntax.EmptyEndText) != 0 {
			return nil
		}
	}
	b := &builder{prog: prog, ids: map[string]uint16{}, d: &dfa{}, mark: make([]uint32, len(prog.Inst))}
	b.gen++
	start, ok := b.state(b.closure(nil, uint32(prog.Start), true))
	if !ok {
		return nil
	}
	b.d.start = start
	var next []uint32
	for st := 0; st < len(b.sets); st++ {
		set := b.sets[st]
		for c := rune(0); c < utf8.RuneSelf; c++ {
			next = next[:0]
			b.gen++
			for _, pc := range set {
				in := &prog.Inst[pc]
				if matchesRune(in, c) {
					next = b.closure(next, in.Out, false)
				}
			}
			// Unanchored: a match may start at every position, so the
			// threads started after this byte join every state.
			next = b.closure(next, uint32(prog.Start), false)
			id, ok := b.state(next)
			if !ok {
				return nil
			}
			b.d.trans[st<<7|int(c)] = id
		}
	}
	return b.d
}

// matchesRune reports whether a rune instruction consumes r.
func matchesRune(in *syntax.Inst, r rune) bool {
	switch in.Op {
	case syntax.InstRune, syntax.InstRune1:
		return in.MatchRune(r)
	case syntax.InstRuneAny:
		return true
	case syntax.InstRuneAnyNotNL:
		return r != '\n'
	}
	return false
}

// builder holds the subset construction's states: each is the sorted set
// of program counters of the threads alive after some input — rune
// instructions, Match, and end-of-text assertions waiting for the end.
type builder struct {
	prog  *syntax.Prog
	sets  [][]uint32
	ids   map[string]uint16
	d     *dfa
	mark  []uint32 // mark[pc] == gen: pc is in the set being built
	gen   uint32
	stack []uint32
	key   []byte
	kept  []uint32
}

// closure adds to set the instructions reachable from pc without
// consuming input, at the first position or not. Instructions marked with
// the current generation are in set already.
func (b *builder) closure(set []uint32, pc uint32, first bool) []uint32 {
	stack := append(b.stack[:0], pc)
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if b.mark[pc] == b.gen {
			continue
		}
		b.mark[pc] = b.gen
		in := &b.prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.Arg, in.Out)
		case syntax.InstCapture, syntax.InstNop:
			stack = append(stack, in.Out)
		case syntax.InstEmptyWidth:
			op := syntax.EmptyOp(in.Arg)
			if op&syntax.EmptyBeginText != 0 && !first {
				continue // never true after the first position
			}
			if op&syntax.EmptyEndText != 0 {
				set = append(set, pc) // waits in the state for the end
				continue
			}
			stack = append(stack, in.Out)
		case syntax.InstFail:
		default: // rune instructions, Match
			set = append(set, pc)
		}
	}
	b.stack = stack
	return set
}

// state names the state of the threads in set, adding it if it is new; ok
// is false once there would be more than maxDFAStates states.
func (b *builder) state(set []uint32) (id uint16, ok bool) {
	kept := b.kept[:0]
	accept := false
	for _, pc := range set {
		switch in := &b.prog.Inst[pc]; in.Op {
		case syntax.InstMatch:
			accept = true
		case syntax.InstEmptyWidth, syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			kept = append(kept, pc)
		}
	}
	if accept {
		kept = kept[:0] // every accepting state is the same
	}
	slices.Sort(kept)
	b.kept = kept
	key := b.key[:0]
	if accept {
		key = append(key, 'a')
	}
	for _, pc := range kept {
		key = strconv.AppendUint(key, uint64(pc), 10)
		key = append(key, ',')
	}
	b.key = key
	if id, ok := b.ids[string(key)]; ok {
		return id, true
	}
	if len(b.sets) == maxDFAStates {
		return 0, false
	}
	id = uint16(len(b.sets))
	b.ids[string(key)] = id
	kind := uint8(stateLive)
	switch {
	case accept:
		kind = stateAccept
	case len(kept) == 0:
		kind = stateDead
	}
	// The accepting and dead states need no transitions of their own, but
	// every state has a row so that the index stays simple.
	kept = slices.Clone(kept)
	b.sets = append(b.sets, kept)
	b.d.kind = append(b.d.kind, kind)
	b.d.endOK = append(b.d.endOK, b.endMatches(kept))
	b.d.trans = append(b.d.trans, make([]uint16, utf8.RuneSelf)...)
	b.d.states++
	return id, true
}

// endMatches reports whether the threads in set match if the input ends
// here (after at least one byte).
func (b *builder) endMatches(set []uint32) bool {
	var pending []uint32
	for _, pc := range set {
		if in := &b.prog.Inst[pc]; in.Op == syntax.InstEmptyWidth && syntax.EmptyOp(in.Arg)&syntax.EmptyBeginText == 0 {
			pending = append(pending, in.Out)
		}
	}
	// Follow the satisfied end assertions: at the end, \z and $ hold and
	// ^ and \A do not.
	seen := map[uint32]bool{}
	for len(pending) > 0 {
		pc := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		if seen[pc] {
			continue
		}
		seen[pc] = true
		switch in := &b.prog.Inst[pc]; in.Op {
		case syntax.InstMatch:
			return true
		case syntax.InstAlt, syntax.InstAltMatch:
			pending = append(pending, in.Arg, in.Out)
		case syntax.InstCapture, syntax.InstNop:
			pending = append(pending, in.Out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg)&syntax.EmptyBeginText == 0 {
				pending = append(pending, in.Out)
			}
		}
	}
	return false
}
