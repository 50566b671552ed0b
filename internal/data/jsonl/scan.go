package jsonl

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of objects and arrays inside a record, so a
// hostile line cannot exhaust the stack.
const maxDepth = 512

// kind is the JSON type of a value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kObject
	kArray
)

var kindNames = [...]string{kNull: "null", kBool: "bool", kNumber: "number", kString: "string", kObject: "object", kArray: "array"}

func (k kind) String() string { return kindNames[k] }

// value is one scanned JSON value. raw is its text as it appears in the
// line (with the quotes, for a string).
type value struct {
	kind  kind
	raw   []byte
	esc   bool // a string with escape sequences
	isInt bool // a number with no fraction or exponent
	b     bool
}

// scanner walks the fields of one JSON object held in a line. It
// validates as it goes and stops at the first problem, leaving a reason.
type scanner struct {
	b     []byte
	i     int
	first bool
	err   string
}

func (s *scanner) fail(format string, args ...any) bool {
	if s.err == "" {
		s.err = fmt.Sprintf(format, args...)
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// begin starts on line b, which must hold an object.
func (s *scanner) begin(b []byte) bool {
	*s = scanner{b: b, first: true}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return s.fail("not a JSON object")
	}
	s.i++
	return true
}

// next scans the next field. It returns ok false both at the end of the
// object (s.err empty) and on an error (s.err set).
func (s *scanner) next() (key value, v value, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return key, v, s.fail("invalid JSON: unexpected end of line")
	}
	if s.first {
		s.first = false
		if s.b[s.i] == '}' {
			s.i++
			return key, v, s.end()
		}
	} else {
		switch s.b[s.i] {
		case '}':
			s.i++
			return key, v, s.end()
		case ',':
			s.i++
			s.ws()
		default:
			return key, v, s.fail("invalid JSON: want ',' or '}' at byte %d, got %q", s.i+1, s.b[s.i])
		}
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return key, v, s.fail("invalid JSON: want a field name at byte %d", s.i+1)
	}
	if !s.value(&key, 0) {
		return key, v, false
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return key, v, s.fail("invalid JSON: want ':' at byte %d", s.i+1)
	}
	s.i++
	s.ws()
	if !s.value(&v, 0) {
		return key, v, false
	}
	return key, v, true
}

// end checks that nothing but white space follows the object.
func (s *scanner) end() bool {
	s.ws()
	if s.i != len(s.b) {
		return s.fail("invalid JSON: unexpected data after the object at byte %d", s.i+1)
	}
	return false
}

// value scans one value at s.i into v.
func (s *scanner) value(v *value, depth int) bool {
	if s.i >= len(s.b) {
		return s.fail("invalid JSON: unexpected end of line")
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		v.kind, v.esc = kString, false
		if !s.str(v) {
			return false
		}
	case c == '-' || (c >= '0' && c <= '9'):
		v.kind = kNumber
		if !s.num(v) {
			return false
		}
	case c == 't':
		v.kind, v.b = kBool, true
		if !s.lit("true") {
			return false
		}
	case c == 'f':
		v.kind, v.b = kBool, false
		if !s.lit("false") {
			return false
		}
	case c == 'n':
		v.kind = kNull
		if !s.lit("null") {
			return false
		}
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return s.fail("invalid JSON: nested deeper than %d levels", maxDepth)
		}
		v.kind = kObject
		if c == '[' {
			v.kind = kArray
		}
		if !s.compound(depth + 1) {
			return false
		}
	default:
		return s.fail("invalid JSON: unexpected %q at byte %d", c, s.i+1)
	}
	v.raw = s.b[start:s.i]
	return true
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.fail("invalid JSON: bad literal at byte %d", s.i+1)
	}
	s.i += len(word)
	return true
}

// compound scans an object or array, validating without keeping values.
func (s *scanner) compound(depth int) bool {
	open := s.b[s.i]
	closeCh := byte(']')
	if open == '{' {
		closeCh = '}'
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == closeCh {
		s.i++
		return true
	}
	var v value
	for {
		s.ws()
		if open == '{' {
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return s.fail("invalid JSON: want a field name at byte %d", s.i+1)
			}
			if !s.str(&v) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return s.fail("invalid JSON: want ':' at byte %d", s.i+1)
			}
			s.i++
			s.ws()
		}
		if !s.value(&v, depth) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("invalid JSON: unexpected end of line")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case closeCh:
			s.i++
			return true
		default:
			return s.fail("invalid JSON: unexpected %q at byte %d", s.b[s.i], s.i+1)
		}
	}
}

// str scans a string, checking escapes, control characters and UTF-8.
func (s *scanner) str(v *value) bool {
	s.i++ // the opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			v.esc = true
			if s.i+1 >= len(s.b) {
				return s.fail("invalid JSON: unexpected end of line in string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return s.fail("invalid JSON: bad \\u escape at byte %d", s.i+1)
				}
				s.i += 6
			default:
				return s.fail("invalid JSON: bad escape at byte %d", s.i+1)
			}
		case c < 0x20:
			return s.fail("invalid JSON: control character in string at byte %d", s.i+1)
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return s.fail("invalid UTF-8 at byte %d", s.i+1)
			}
			s.i += size
		}
	}
	return s.fail("invalid JSON: unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// num scans a number by the JSON grammar.
func (s *scanner) num(v *value) bool {
	b, i := s.b, s.i
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	v.isInt = true
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return s.fail("invalid JSON: bad number at byte %d", s.i+1)
	}
	if i < len(b) && b[i] == '.' {
		i++
		v.isInt = false
		if digits() == 0 {
			return s.fail("invalid JSON: bad number at byte %d", s.i+1)
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		v.isInt = false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return s.fail("invalid JSON: bad number at byte %d", s.i+1)
		}
	}
	s.i = i
	return true
}

// appendUnescaped appends the contents of the scanned string raw (quotes
// included) to dst, decoding escapes. raw was validated by str. Lone
// surrogates become U+FFFD, as in encoding/json.
func appendUnescaped(dst, raw []byte, esc bool) []byte {
	raw = raw[1 : len(raw)-1]
	if !esc {
		return append(dst, raw...)
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(raw[i+2:i+6])); r2 != utf8.RuneError {
						dst = utf8.AppendRune(dst, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}
