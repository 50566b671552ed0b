package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A reference to a secret in a pipeline string is ${secret:NAME}. Only text
// starting with "${secret:" is a reference; every other '$' is left alone
// (shell variables, "$1" in SQL). "$${secret:" is the escape for the literal
// text "${secret:".
const (
	refOpen   = "${secret:"
	refEscape = "$" + refOpen
)

// ErrMalformedRef is wrapped by the *RefError of a reference that is empty,
// has an invalid name, or is not terminated.
var ErrMalformedRef = errors.New("malformed secret reference")

// RefError is a malformed reference, located by its column in the string.
type RefError struct {
	// Col is the 1-based column, in characters, of the reference's '$'.
	Col int
	// Reason says what is wrong; it never includes text after the
	// reference, which may be a credential written in place.
	Reason string
}

func (e *RefError) Error() string {
	return fmt.Sprintf("column %d: %s: %s", e.Col, ErrMalformedRef, e.Reason)
}

// Unwrap returns ErrMalformedRef.
func (e *RefError) Unwrap() error { return ErrMalformedRef }

// ref is one reference found in a string.
type ref struct {
	start, end int // byte offsets of the whole ${secret:NAME}
	name       string
}

// scanRefs calls lit for each stretch of literal text (with escapes already
// undone) and ref for each reference, in order, and stops at the first
// malformed reference or when a callback returns an error.
func scanRefs(s string, lit func(string) error, onRef func(ref) error) error {
	i := 0
	for {
		j := strings.Index(s[i:], refOpen)
		if j < 0 {
			return lit(s[i:])
		}
		j += i
		if j > 0 && s[j-1] == '$' && j-1 >= i {
			// "$${secret:" → literal "${secret:"
			if err := lit(s[i:j-1] + refOpen); err != nil {
				return err
			}
			i = j + len(refOpen)
			continue
		}
		if err := lit(s[i:j]); err != nil {
			return err
		}
		col := utf8.RuneCountInString(s[:j]) + 1
		nameStart := j + len(refOpen)
		k := strings.IndexByte(s[nameStart:], '}')
		if k < 0 {
			return &RefError{Col: col, Reason: "no closing '}'"}
		}
		name := s[nameStart : nameStart+k]
		if name == "" {
			return &RefError{Col: col, Reason: "empty secret name"}
		}
		if reason := badName(name); reason != "" {
			return &RefError{Col: col, Reason: reason}
		}
		if err := onRef(ref{start: j, end: nameStart + k + 1, name: name}); err != nil {
			return err
		}
		i = nameStart + k + 1
	}
}

// Refs returns the names of the secrets s references, each once, in order of
// first appearance. It stops at a malformed reference; ValidateRefs reports
// it.
func Refs(s string) []string {
	var names []string
	seen := map[string]bool{}
	_ = scanRefs(s, func(string) error { return nil }, func(r ref) error {
		if !seen[r.name] {
			seen[r.name] = true
			names = append(names, r.name)
		}
		return nil
	})
	return names
}

// ValidateRefs returns a *RefError for the first malformed reference in s,
// or nil. Pipeline validation calls it on every string that may hold
// references, so that a typo is reported at load time, not at run time.
func ValidateRefs(s string) error {
	return scanRefs(s, func(string) error { return nil }, func(ref) error { return nil })
}

// HasRefs reports whether s contains at least one well-formed reference.
func HasRefs(s string) bool { return len(Refs(s)) > 0 }

// Expand returns s with each ${secret:NAME} replaced by resolve(NAME) and
// each "$${secret:" escape replaced by "${secret:". Errors: a *RefError for
// a malformed reference, or resolve's error wrapped with the name. A
// resolved value is inserted as it is, never expanded again.
func Expand(ctx context.Context, s string, resolve func(name string) ([]byte, error)) (string, error) {
	if !strings.Contains(s, refOpen) {
		return s, nil
	}
	var b strings.Builder
	err := scanRefs(s,
		func(l string) error { b.WriteString(l); return nil },
		func(r ref) error {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("expanding secret references: %w", err)
			}
			v, err := resolve(r.name)
			if err != nil {
				return fmt.Errorf("resolving ${secret:%s}: %w", r.name, err)
			}
			b.Write(v)
			return nil
		})
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// stripRefs returns s with every well-formed reference removed, and whether
// it held any; a malformed reference stops the stripping there.
func stripRefs(s string) (string, bool) {
	var b strings.Builder
	found := false
	err := scanRefs(s,
		func(l string) error { b.WriteString(l); return nil },
		func(ref) error { found = true; return nil })
	if err != nil {
		return s, found
	}
	return b.String(), found
}

// badName says what is wrong with a referenced name, or "" if nothing is.
// It names the offending character rather than quoting the name: text
// mistakenly written where a name belongs may be the credential itself.
func badName(name string) string {
	if len(name) > 128 {
		return "secret name longer than 128 bytes"
	}
	for i, c := range name {
		ok := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') ||
			(i > 0 && (('0' <= c && c <= '9') || c == '.' || c == '-'))
		if !ok {
			if i == 0 {
				return fmt.Sprintf("secret name starts with %q (want a letter or '_')", c)
			}
			return fmt.Sprintf("character %q is not allowed in a secret name (want letters, digits, '_', '.' or '-')", c)
		}
	}
	return ""
}
