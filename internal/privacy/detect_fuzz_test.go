package privacy_test

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/privacy"
)

// FuzzRecognize checks that recognisers and Spans never panic and that
// spans are well formed: in bounds, ordered, non-overlapping, and each one
// recognised again on its own.
func FuzzRecognize(f *testing.F) {
	for _, s := range []string{
		"4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "123-45-6789", "a@b.co", "(202) 456-1111",
		"+44 20 7946 0958", "2001:db8::1", "10.0.0.1", "AB 12 34 56 C", "221B Baker Street",
		"call (415) x", "((((", "@@", "1.2.3.4.5", "\xff\xfe", "e@xn--p1ai",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		privacy.Recognize(s)
		privacy.IsSSN(s, true)
		privacy.IsNINO(s)
		privacy.NormalizePhone(s, "US")
		prev := 0
		for _, sp := range privacy.Spans(s) {
			if sp.Start < prev || sp.End <= sp.Start || sp.End > len(s) {
				t.Fatalf("Spans(%q): bad span %+v after %d", s, sp, prev)
			}
			prev = sp.End
			v := s[sp.Start:sp.End]
			if got, ok := privacy.Recognize(v); !ok || got != sp.Type {
				// A span is a value in its own right, except phone numbers
				// written bare, which Recognize rejects without context.
				if !(sp.Type == privacy.Phone && ok == false && !strings.ContainsAny(v, " -.()+")) {
					t.Fatalf("Spans(%q): span %q is %q but Recognize says %q, %v", s, v, sp.Type, got, ok)
				}
			}
		}
	})
}
