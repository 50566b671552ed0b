package pipeline

import (
	"testing"

	"github.com/sluicehq/sluice/internal/privacy"
)

// TestClassificationsAreSensitivities: the guard compares a sink's
// classification with a column's sensitivity by converting one word into
// the other, so the two vocabularies must stay the same words in the same
// order.
func TestClassificationsAreSensitivities(t *testing.T) {
	classes := []Classification{Public, Internal, Confidential, Restricted}
	if len(classes) != len(privacy.Sensitivities) {
		t.Fatalf("%d classifications, %d sensitivities", len(classes), len(privacy.Sensitivities))
	}
	for i, c := range classes {
		if s := privacy.Sensitivity(c); s != privacy.Sensitivities[i] || s.Rank() != i {
			t.Errorf("classification %q: sensitivity %q of rank %d, want %q of rank %d", c, s, s.Rank(), privacy.Sensitivities[i], i)
		}
	}
}

// TestDeclaringTheDefaultSensitivity: {type: email, sensitivity:
// restricted} says what email says, and normalises the same.
func TestDeclaringTheDefaultSensitivity(t *testing.T) {
	spec := func(decl string) []byte {
		return []byte("pipeline: p\ntasks:\n  a:\n    extract: {csv: {path: a.csv}}\n    pii_columns: {email: " + decl + "}\n")
	}
	hash := func(decl string) string {
		t.Helper()
		p, err := Parse("p.yaml", spec(decl), Options{Connectors: testRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		n, err := Normalize(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(n)
	}
	short, long, lower := hash("email"), hash("{type: email, sensitivity: restricted}"), hash("{type: email, sensitivity: confidential}")
	if short != long {
		t.Errorf("declaring the default sensitivity changed the normal form:\n%s\n!=\n%s", short, long)
	}
	if short == lower {
		t.Errorf("a lower sensitivity did not change the normal form")
	}
}
