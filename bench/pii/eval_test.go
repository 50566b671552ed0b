package main

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/privacy"
)

// TestTargets fails when a recogniser regresses on the evaluation set:
// checksummed and rule-bound kinds must keep precision and recall of at
// least 0.95; the others must not fall below what they score today.
func TestTargets(t *testing.T) {
	t.Parallel()
	floors := map[privacy.Type]struct{ precision, recall float64 }{
		privacy.CreditCard: {0.95, 0.95},
		privacy.IBAN:       {0.95, 0.95},
		privacy.NationalID: {0.95, 0.95},
		privacy.Email:      {0.95, 0.95},
		privacy.Phone:      {0.95, 0.95},
		privacy.IPAddress:  {0.95, 0.95},
	}
	res := evaluate(generate())
	seen := map[privacy.Type]bool{}
	for _, s := range res.Scores {
		t.Run(string(s.Type), func(t *testing.T) {
			f, ok := floors[s.Type]
			if !ok {
				t.Fatalf("no target for %s", s.Type)
			}
			seen[s.Type] = true
			if s.Precision < f.precision || s.Recall < f.recall {
				t.Errorf("%s: precision %.3f recall %.3f; want at least %.2f and %.2f", s.Type, s.Precision, s.Recall, f.precision, f.recall)
			}
		})
	}
	for typ := range floors {
		if !seen[typ] {
			t.Errorf("%s: not evaluated", typ)
		}
	}
}

// TestColumns checks that the Detector reports every positive category's
// column as its kind and no look-alike column at all.
func TestColumns(t *testing.T) {
	t.Parallel()
	for _, c := range evaluateColumns(generate()) {
		t.Run(strings.ReplaceAll(c.Category, " ", "_"), func(t *testing.T) {
			if c.Got != c.Want {
				t.Errorf("column of %s: detected %q (ratio %.3f), want %q", c.Category, c.Got, c.Ratio, c.Want)
			}
		})
	}
}

// TestGenerateDeterministic guards the published table: the same seed must
// give the same set.
func TestGenerateDeterministic(t *testing.T) {
	t.Parallel()
	a, b := generate(), generate()
	if len(a) != len(b) {
		t.Fatalf("lengths differ: %d and %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("example %d differs: %+v and %+v", i, a[i], b[i])
		}
	}
}
