package privacy

import "strings"

// maxJoin is the most whitespace-separated tokens one value may span in
// free text: "GB82 WEST 1234 5698 7654 32" is six, "+44 20 7946 0958" four.
const maxJoin = 9

// textToken is a run of non-space bytes of a text, with punctuation that
// cannot end a value trimmed.
type textToken struct{ start, end int }

// Spans finds personal data inside free text (emails, phone numbers, card
// numbers, IBANs, IP addresses, dashed US social security numbers and UK
// National Insurance numbers), reading phone numbers in DefaultRegion, so
// that an operator can mask them in place. Spans are in order and do not
// overlap; where candidates overlap the longest wins.
func Spans(s string) []Span {
	return spans(s, DefaultRegion)
}

// Spans is the package-level Spans with the Detector's region.
func (d *Detector) Spans(s string) []Span {
	return spans(s, d.opts.Region)
}

func spans(s, region string) []Span {
	toks := splitTokens(s)
	var out []Span
	for i := 0; i < len(toks); {
		sp, used, ok := matchAt(s, toks[i:], region)
		if ok {
			out = append(out, sp)
			i += used
			continue
		}
		i++
	}
	return out
}

// matchAt tries the longest run of tokens first, so that a card number
// written in four groups is found as one number, not as four fragments.
func matchAt(s string, toks []textToken, region string) (Span, int, bool) {
	first := s[toks[0].start:toks[0].end]
	if first == "" {
		return Span{}, 0, false
	}
	// Single-token kinds.
	if strings.IndexByte(first, '@') > 0 {
		if IsEmail(first) {
			return Span{toks[0].start, toks[0].end, Email}, 1, true
		}
		return Span{}, 0, false
	}
	if (strings.IndexByte(first, '.') >= 0 || strings.IndexByte(first, ':') >= 0) && IsIP(first) {
		return Span{toks[0].start, toks[0].end, IPAddress}, 1, true
	}
	c := first[0]
	if !(isASCIIDigit(c) || isASCIIUpper(c) || c == '+' || c == '(') {
		return Span{}, 0, false
	}
	n := len(toks)
	if n > maxJoin {
		n = maxJoin
	}
	// Only groups of a number's characters (or an IBAN's upper-case
	// letters and digits) can join into one value.
	for k := 1; k < n; k++ {
		if !groupable(s[toks[k].start:toks[k].end]) || toks[k].start-toks[k-1].end != 1 {
			n = k
			break
		}
	}
	for k := n; k >= 1; k-- {
		start, end := toks[0].start, toks[k-1].end
		v := s[start:end]
		switch {
		case IsCreditCard(v):
			return Span{start, end, CreditCard}, k, true
		case IsIBAN(v):
			return Span{start, end, IBAN}, k, true
		case IsSSN(v, false) || (k > 1 || len(v) == 9) && IsNINO(v):
			return Span{start, end, NationalID}, k, true
		case isFormattedPhone(v) && IsPhone(v, region):
			return Span{start, end, Phone}, k, true
		}
	}
	return Span{}, 0, false
}

// groupable reports whether a token can continue a number or IBAN begun
// by an earlier token.
func groupable(t string) bool {
	if t == "" || len(t) > 8 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(isASCIIDigit(c) || isASCIIUpper(c) || c == '-' || c == '(' || c == ')' || c == '.') {
			return false
		}
	}
	return true
}

// splitTokens splits s on single spaces and other whitespace, trimming from
// each token the punctuation around it that is never part of a value
// (quotes, brackets, commas, a sentence's final period).
func splitTokens(s string) []textToken {
	var toks []textToken
	i := 0
	for i < len(s) {
		for i < len(s) && isTextSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			break
		}
		j := i
		for j < len(s) && !isTextSpace(s[j]) {
			j++
		}
		a, b := i, j
		for a < b && strings.IndexByte("\"'<[{,;:", s[a]) >= 0 {
			a++
		}
		for b > a && strings.IndexByte("\"'>]},;:.!?", s[b-1]) >= 0 {
			b--
		}
		// A closing parenthesis belongs to the token only if it opened
		// in it ("(415)").
		if b > a && s[b-1] == ')' && strings.IndexByte(s[a:b], '(') < 0 {
			b--
		}
		if b > a && s[a] == '(' && strings.IndexByte(s[a:b], ')') < 0 {
			a++
		}
		if b > a {
			toks = append(toks, textToken{a, b})
		}
		i = j
	}
	return toks
}

func isTextSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
