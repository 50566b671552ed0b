package privacy

import "fmt"

// Sensitivity is how closely the raw values of a personal data column must
// be held: the least classification a destination must have to receive
// them unprotected. It uses the words and the order of pipeline
// classifications (public < internal < confidential < restricted), so that
// the guard compares a column with a sink in one vocabulary.
type Sensitivity string

// The sensitivities, from the least to the most.
const (
	Public       Sensitivity = "public"
	Internal     Sensitivity = "internal"
	Confidential Sensitivity = "confidential"
	Restricted   Sensitivity = "restricted"
)

// Sensitivities lists every Sensitivity from the least to the most.
var Sensitivities = []Sensitivity{Public, Internal, Confidential, Restricted}

// DefaultSensitivity is the sensitivity of a personal data column that
// pii_columns declares without one, and of a column the guard detects
// without a declaration. It is the most: raw personal data goes only into
// restricted destinations unless the pipeline's author says, column by
// column, that less will do. A lower default would let specs written
// before sensitivities existed send raw values to places they never
// could.
const DefaultSensitivity = Restricted

// Rank orders sensitivities and classifications: 0 for public up to 3 for
// restricted; -1 for "" and unknown words, which rank below everything, so
// that a destination of unknown classification receives nothing raw.
func (s Sensitivity) Rank() int {
	for i, x := range Sensitivities {
		if s == x {
			return i
		}
	}
	return -1
}

// Allows reports whether a destination classified s may receive raw values
// of sensitivity col.
func (s Sensitivity) Allows(col Sensitivity) bool {
	return col.Rank() >= 0 && s.Rank() >= col.Rank()
}

// ParseSensitivity parses a sensitivity as written in a pipeline spec:
// exactly one of the four words, spelt as classifications are.
func ParseSensitivity(s string) (Sensitivity, error) {
	v := Sensitivity(s)
	if v.Rank() < 0 {
		return "", fmt.Errorf("unknown sensitivity %q (want public, internal, confidential or restricted)", s)
	}
	return v, nil
}

// MinSensitivity is the least sensitivity a column of type t may be
// declared with. National ids, card numbers and IBANs are what identity
// theft and payment fraud are made of, and are never less than
// restricted. Every other type may be declared down to internal (a staff
// directory's work e-mails, say). No personal data is public: a column
// that must go raw to a public destination is named in allow_raw_pii, with
// its reason.
func MinSensitivity(t Type) Sensitivity {
	switch t {
	case NationalID, CreditCard, IBAN:
		return Restricted
	}
	return Internal
}

// Declaration is one column of pii_columns: the kind of personal data it
// holds and its sensitivity.
type Declaration struct {
	Type        Type
	Sensitivity Sensitivity
}

// Check reports a sensitivity that is unknown or below its type's
// minimum. An empty sensitivity is DefaultSensitivity and passes.
func (d Declaration) Check() error {
	if d.Sensitivity == "" {
		return nil
	}
	if d.Sensitivity.Rank() < 0 {
		return fmt.Errorf("unknown sensitivity %q (want public, internal, confidential or restricted)", d.Sensitivity)
	}
	if least := MinSensitivity(d.Type); d.Sensitivity.Rank() < least.Rank() {
		if d.Sensitivity == Public {
			return fmt.Errorf("sensitivity public: personal data is never public (the least for %s is %s); to send it raw to a public destination, list the column in allow_raw_pii with a reason", d.Type, least)
		}
		return fmt.Errorf("sensitivity %s is below the least for %s, %s", d.Sensitivity, d.Type, least)
	}
	return nil
}

// Effective is the declaration's sensitivity, DefaultSensitivity when it
// names none.
func (d Declaration) Effective() Sensitivity {
	if d.Sensitivity == "" {
		return DefaultSensitivity
	}
	return d.Sensitivity
}
