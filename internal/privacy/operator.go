package privacy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
)

// Op is a privacy operator: what a pii step does to one column.
type Op string

// The operators.
const (
	// OpRedact replaces every value with null: the column stays (so the
	// schema and row count hold) but carries nothing. Null rather than a
	// "[REDACTED]" string, so that the column keeps its type and a
	// not_null check downstream notices.
	OpRedact Op = "redact"
	// OpMask replaces the characters of a string, except the first
	// KeepFirst and last KeepLast, with Char.
	OpMask Op = "mask"
	// OpHMAC replaces a value with its keyed pseudonym (64 hex digits):
	// stable across runs, not reversible.
	OpHMAC Op = "hmac"
	// OpTokenize replaces a value with a reversible deterministic token
	// ("tok_..."); with Subject, under the key of the row's data subject.
	OpTokenize Op = "tokenize"
	// OpGeneralize coarsens a value: dates to month or year, numbers to a
	// range, strings (postal codes) to a prefix, IP addresses to a network.
	OpGeneralize Op = "generalize"
	// OpDrop removes the column.
	OpDrop Op = "drop"
	// OpMaskSpans replaces the personal data found inside free text (see
	// Spans) with "[TYPE]", e.g. "[EMAIL]".
	OpMaskSpans Op = "mask_spans"
)

// Ops lists the operators, for help texts and validation.
var Ops = []Op{OpRedact, OpMask, OpHMAC, OpTokenize, OpGeneralize, OpDrop, OpMaskSpans}

// Rule is one column's operator with its options, as a pii step declares it.
type Rule struct {
	Column string
	Op     Op
	// Mask options (OpMask).
	KeepFirst, KeepLast int
	Char                string // one character; "" means "*"
	// Subject (OpTokenize) names the column holding the data subject's id:
	// the value is tokenised under that subject's own key, so erasing the
	// subject makes the token unreadable.
	Subject string
	// Generalize options (OpGeneralize); exactly one group applies.
	Date       string  // "month" or "year", for timestamps and YYYY-MM-DD strings
	Width      float64 // numbers: ranges of this width
	Prefix     int     // strings: keep this many leading characters
	IPv4Prefix int     // IP addresses: network prefix lengths
	IPv6Prefix int
}

// Generalize date granularities.
const (
	DateMonth = "month"
	DateYear  = "year"
)

// DefaultIPv6Prefix is the IPv6 network kept when a rule names only an
// IPv4 prefix: a /48 is a site, not a host.
const DefaultIPv6Prefix = 48

// Operator is a compiled Rule for one column type.
type Operator struct {
	rule Rule
	in   data.Type
	out  data.Type
	tok  *Tokenizer
	char string
	// memo keeps recent pseudonyms and tokens by value. Both are
	// deterministic, so a repeated value (a country, a surname, a
	// customer id in an orders table) costs a map lookup instead of a
	// keyed hash or an AES-SIV encryption. Bounded: cleared when full.
	// It makes an Operator unsafe for concurrent use, which it never is:
	// each pii step applies each of its operators from one goroutine.
	memo map[string]string
	// memoTries and memoHits decide whether the memo pays: over a column
	// of distinct values (emails, ids) it only costs, and is switched off.
	memoTries, memoHits int
	memoOff             bool
	// mac is the operator's own keyed HMAC state (hmac operator), and
	// hexes the arena its pseudonyms are written into: see pseudonym.
	mac   *macState
	hexes stringArena
}

// pseudonym is Tokenizer.Pseudonym for the operator's goroutine: the same
// value, computed with the operator's own keyed state (no pool round trip)
// and written into an arena shared by many pseudonyms, so that a column
// of a million distinct values makes a few hundred allocations instead of
// a million.
func (o *Operator) pseudonym(v string) (string, error) {
	if o.mac == nil {
		st, err := o.tok.newMAC()
		if err != nil {
			return "", err
		}
		o.mac = st
	}
	return o.hexes.add(o.mac.pseudonym(v)), nil
}

// stringArena hands out strings cut from large shared buffers. A
// strings.Builder never changes the bytes it has written, so a substring of
// its String() stays valid while the builder goes on appending; a full
// chunk is left to the garbage collector once no string cut from it is
// live. Only values computed and kept together belong in one (a chunk lives
// as long as its longest-lived string).
type stringArena struct{ b strings.Builder }

// arenaChunk is the size of an arena's buffers: a thousand pseudonyms.
const arenaChunk = 64 << 10

func (a *stringArena) add(p []byte) string {
	if len(p) > arenaChunk/4 {
		return string(p)
	}
	if a.b.Cap()-a.b.Len() < len(p) {
		a.b = strings.Builder{}
		a.b.Grow(arenaChunk)
	}
	n := a.b.Len()
	a.b.Write(p)
	return a.b.String()[n:]
}

// memoSize bounds an operator's memo: 16k values, a few megabytes at most.
// memoProbe is how many values decide whether the memo is kept.
const (
	memoSize  = 1 << 14
	memoProbe = 4096
)

// memoized returns f(v) through the operator's memo.
func (o *Operator) memoized(v string, f func(string) (string, error)) (string, error) {
	if o.memoOff {
		return f(v)
	}
	o.memoTries++
	if out, ok := o.memo[v]; ok {
		o.memoHits++
		return out, nil
	}
	if o.memoTries == memoProbe && o.memoHits*10 < o.memoTries {
		o.memoOff, o.memo = true, nil // under 10% repeats: not worth it
		return f(v)
	}
	out, err := f(v)
	if err != nil {
		return "", err
	}
	if o.memo == nil || len(o.memo) >= memoSize {
		o.memo = make(map[string]string, 1024)
	}
	o.memo[v] = out
	return out, nil
}

// ErrNoKeys: an hmac or tokenize operator applied without a keyring (a
// pipeline validated offline, then applied without keys).
var ErrNoKeys = errors.New("the operator needs the keyring")

// NewOperator compiles rule for a column of type in. tok may be nil when
// no key is needed (validation); Apply of hmac or tokenize then fails with
// ErrNoKeys. Errors say what the column's type does not allow.
func NewOperator(rule Rule, in data.Type, tok *Tokenizer) (*Operator, error) {
	o := &Operator{rule: rule, in: in, out: in, tok: tok, char: rule.Char}
	if o.char == "" {
		o.char = "*"
	}
	switch rule.Op {
	case OpRedact, OpDrop:
	case OpMask, OpMaskSpans:
		if in != data.String {
			return nil, fmt.Errorf("column %q: %s needs a string column, got %s (cast it first)", rule.Column, rule.Op, in)
		}
		if rule.KeepFirst < 0 || rule.KeepLast < 0 {
			return nil, fmt.Errorf("column %q: mask: keep_first and keep_last must not be negative", rule.Column)
		}
		if utf8.RuneCountInString(o.char) != 1 {
			return nil, fmt.Errorf("column %q: mask: char %q: want exactly one character", rule.Column, rule.Char)
		}
	case OpHMAC, OpTokenize:
		o.out = data.String
	case OpGeneralize:
		if err := o.compileGeneralize(); err != nil {
			return nil, fmt.Errorf("column %q: generalize: %w", rule.Column, err)
		}
	default:
		return nil, fmt.Errorf("column %q: unknown operator %q", rule.Column, rule.Op)
	}
	return o, nil
}

func (o *Operator) compileGeneralize() error {
	r := o.rule
	set := 0
	for _, b := range []bool{r.Date != "", r.Width != 0, r.Prefix != 0, r.IPv4Prefix != 0 || r.IPv6Prefix != 0} {
		if b {
			set++
		}
	}
	if set != 1 {
		return errors.New("want exactly one of month, year, width, prefix, ipv4_prefix/ipv6_prefix")
	}
	switch {
	case r.Date != "":
		if r.Date != DateMonth && r.Date != DateYear {
			return fmt.Errorf("unknown granularity %q (want month or year)", r.Date)
		}
		if o.in != data.Timestamp && o.in != data.String {
			return fmt.Errorf("%s needs a timestamp or a YYYY-MM-DD string column, got %s", r.Date, o.in)
		}
	case r.Width != 0:
		if o.in != data.Int && o.in != data.Float {
			return fmt.Errorf("width needs an int or float column, got %s", o.in)
		}
		if r.Width < 0 || math.IsNaN(r.Width) || math.IsInf(r.Width, 0) || (o.in == data.Int && r.Width != math.Trunc(r.Width)) {
			return fmt.Errorf("width %v: want a positive number (a whole one for an int column)", r.Width)
		}
		o.out = data.String
	case r.Prefix != 0:
		if o.in != data.String {
			return fmt.Errorf("prefix needs a string column, got %s", o.in)
		}
		if r.Prefix < 0 {
			return fmt.Errorf("prefix %d: must be positive", r.Prefix)
		}
	default:
		if o.in != data.String {
			return fmt.Errorf("ipv4_prefix needs a string column, got %s", o.in)
		}
		if r.IPv4Prefix < 0 || r.IPv4Prefix > 32 {
			return fmt.Errorf("ipv4_prefix %d: want 0 to 32", r.IPv4Prefix)
		}
		if r.IPv6Prefix < 0 || r.IPv6Prefix > 128 {
			return fmt.Errorf("ipv6_prefix %d: want 0 to 128", r.IPv6Prefix)
		}
		if o.rule.IPv6Prefix == 0 {
			o.rule.IPv6Prefix = DefaultIPv6Prefix
		}
		if o.rule.IPv4Prefix == 0 {
			o.rule.IPv4Prefix = 24
		}
	}
	return nil
}

// Rule returns the rule the operator was compiled from.
func (o *Operator) Rule() Rule { return o.rule }

// Drops reports whether the operator removes its column.
func (o *Operator) Drops() bool { return o.rule.Op == OpDrop }

// OutputType is the type of the column after the operator.
func (o *Operator) OutputType() data.Type { return o.out }

// Apply writes the transformed rows [0, n) of src into dst (reset first,
// reusing its memory). subj is the subject column for a per-subject
// tokenize rule (ignored otherwise). A value that cannot be transformed (a
// date that does not parse, a null subject) is made null and reported to
// reject, which decides whether the row goes on; an error from reject
// stops Apply. Nulls stay null.
func (o *Operator) Apply(ctx context.Context, dst, src, subj *data.Column, n int, reject func(row int, reason string) error) error {
	reset(dst, o.out, n)
	if (o.rule.Op == OpHMAC || o.rule.Op == OpTokenize) && o.tok == nil {
		return fmt.Errorf("column %q: %s: %w", o.rule.Column, o.rule.Op, ErrNoKeys)
	}
	for r := 0; r < n; r++ {
		if src.IsNull(r) || o.rule.Op == OpRedact {
			dst.AppendNull()
			continue
		}
		err := o.applyRow(ctx, dst, src, subj, r)
		if err == nil {
			dst.MarkAppended()
			continue
		}
		var bad badValue
		if !errors.As(err, &bad) {
			return err
		}
		dst.AppendNull()
		if err := reject(r, fmt.Sprintf("pii: column %q: %s: %s", o.rule.Column, o.rule.Op, bad.msg)); err != nil {
			return err
		}
	}
	return nil
}

// badValue is a value the operator cannot transform: the row is rejected,
// the operator goes on.
type badValue struct{ msg string }

func (b badValue) Error() string { return b.msg }

// applyRow appends the transformed row r of src to dst's values: exactly
// one value when it returns nil, none when it returns an error. It leaves
// the null mask to Apply, which marks the value once for every operator.
func (o *Operator) applyRow(ctx context.Context, dst, src, subj *data.Column, r int) error {
	switch o.rule.Op {
	case OpMask:
		dst.Strings = append(dst.Strings, mask(src.Strings[r], o.rule.KeepFirst, o.rule.KeepLast, o.char))
	case OpMaskSpans:
		dst.Strings = append(dst.Strings, MaskSpans(src.Strings[r]))
	case OpHMAC:
		p, err := o.memoized(ValueString(src, r), o.pseudonym)
		if err != nil {
			return err
		}
		dst.Strings = append(dst.Strings, p)
	case OpTokenize:
		v := ValueString(src, r)
		var (
			tok string
			err error
		)
		if o.rule.Subject == "" {
			tok, err = o.memoized(v, o.tok.Token)
		} else {
			if subj == nil || subj.IsNull(r) || ValueString(subj, r) == "" {
				return badValue{fmt.Sprintf("subject column %q is empty: no key to tokenize under", o.rule.Subject)}
			}
			tok, err = o.tok.SubjectToken(ctx, ValueString(subj, r), v)
		}
		if err != nil {
			return err
		}
		dst.Strings = append(dst.Strings, tok)
	case OpGeneralize:
		return o.generalize(dst, src, r)
	default:
		return fmt.Errorf("column %q: operator %q has no values to write", o.rule.Column, o.rule.Op)
	}
	return nil
}

func (o *Operator) generalize(dst, src *data.Column, r int) error {
	rl := o.rule
	switch {
	case rl.Date != "" && o.in == data.Timestamp:
		t := src.Times[r].UTC()
		m := t.Month()
		if rl.Date == DateYear {
			m = time.January
		}
		dst.Times = append(dst.Times, time.Date(t.Year(), m, 1, 0, 0, 0, 0, time.UTC))
	case rl.Date != "":
		s := strings.TrimSpace(src.Strings[r])
		if len(s) < 10 {
			return badValue{"not a YYYY-MM-DD date"}
		}
		if _, err := time.Parse(time.DateOnly, s[:10]); err != nil {
			return badValue{"not a YYYY-MM-DD date"}
		}
		if rl.Date == DateYear {
			s = s[:4]
		} else {
			s = s[:7]
		}
		dst.Strings = append(dst.Strings, s)
	case rl.Width != 0 && o.in == data.Int:
		w := int64(rl.Width)
		v := src.Ints[r]
		lo := v - ((v%w)+w)%w
		dst.Strings = append(dst.Strings, strconv.FormatInt(lo, 10)+"-"+strconv.FormatInt(lo+w-1, 10))
	case rl.Width != 0:
		v := src.Floats[r]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return badValue{"not a finite number"}
		}
		lo := math.Floor(v/rl.Width) * rl.Width
		f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
		dst.Strings = append(dst.Strings, "["+f(lo)+", "+f(lo+rl.Width)+")")
	case rl.Prefix != 0:
		dst.Strings = append(dst.Strings, prefixRunes(strings.TrimSpace(src.Strings[r]), rl.Prefix))
	default:
		a, err := netip.ParseAddr(strings.TrimSpace(src.Strings[r]))
		if err != nil {
			return badValue{"not an IP address"}
		}
		a = a.Unmap()
		bits := rl.IPv4Prefix
		if a.Is6() {
			bits = rl.IPv6Prefix
		}
		p, err := a.WithZone("").Prefix(bits)
		if err != nil {
			return badValue{"not an IP address"}
		}
		dst.Strings = append(dst.Strings, p.String())
	}
	return nil
}

// mask hides all but the first keepFirst and last keepLast characters. A
// value too short to hide anything while keeping those is hidden whole:
// keep_last: 4 must not reveal a 4-digit PIN.
func mask(s string, keepFirst, keepLast int, char string) string {
	rs := []rune(s)
	if keepFirst+keepLast >= len(rs) {
		return strings.Repeat(char, len(rs))
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, c := range rs {
		if i < keepFirst || i >= len(rs)-keepLast {
			b.WriteRune(c)
		} else {
			b.WriteString(char)
		}
	}
	return b.String()
}

func prefixRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// MaskSpans replaces the personal data Spans finds in s with "[TYPE]".
func MaskSpans(s string) string {
	spans := Spans(s)
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b Span) int { return a.Start - b.Start })
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		if sp.Start < last || sp.End > len(s) || sp.Start > sp.End {
			continue // overlapping or out of range: the earlier span already covers it
		}
		b.WriteString(s[last:sp.Start])
		b.WriteString("[" + strings.ToUpper(string(sp.Type)) + "]")
		last = sp.End
	}
	b.WriteString(s[last:])
	return b.String()
}

// ValueString is the canonical text of row r of c, what hmac and tokenize
// operate on: strings as they are, numbers in their shortest form,
// timestamps in RFC 3339 UTC.
func ValueString(c *data.Column, r int) string {
	switch c.Type {
	case data.String:
		return c.Strings[r]
	case data.Int:
		return strconv.FormatInt(c.Ints[r], 10)
	case data.Float:
		return strconv.FormatFloat(c.Floats[r], 'g', -1, 64)
	case data.Bool:
		return strconv.FormatBool(c.Bools[r])
	case data.Timestamp:
		return c.Times[r].UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// reset empties c for n rows of type t, keeping its memory. The values of
// type t get room for all n rows up front, so neither they nor a null mask
// (which AppendNull sizes to the values' capacity) grow during Apply.
func reset(c *data.Column, t data.Type, n int) {
	c.Type = t
	c.Strings, c.Ints, c.Floats, c.Bools, c.Times = c.Strings[:0], c.Ints[:0], c.Floats[:0], c.Bools[:0], c.Times[:0]
	c.Nulls = nil
	switch t {
	case data.String:
		c.Strings = slices.Grow(c.Strings, n)
	case data.Int:
		c.Ints = slices.Grow(c.Ints, n)
	case data.Float:
		c.Floats = slices.Grow(c.Floats, n)
	case data.Bool:
		c.Bools = slices.Grow(c.Bools, n)
	case data.Timestamp:
		c.Times = slices.Grow(c.Times, n)
	}
}
