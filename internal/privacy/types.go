// Package privacy finds personal data in records and (in the operator files)
// transforms it. Detection is the first half: a Detector samples the string
// columns of a stream and reports, per column, which kind of personal data
// the column most likely holds, and Spans finds personal data embedded in
// free text so that it can be masked in place.
//
// Detection is a heuristic. Checksummed identifiers (card numbers, IBANs,
// US social security numbers) are recognised with high confidence because a
// random string rarely passes the check; names, street addresses and dates
// of birth rely on column names and value shape and carry a lower
// confidence, which Finding.Confidence states honestly.
package privacy

import (
	"fmt"
	"strings"
)

// Type is a kind of personal data.
type Type string

// The kinds of personal data the detector knows.
const (
	Email         Type = "email"
	Phone         Type = "phone"
	PersonName    Type = "person_name"
	StreetAddress Type = "street_address"
	DateOfBirth   Type = "date_of_birth"
	NationalID    Type = "national_id"
	CreditCard    Type = "credit_card"
	IBAN          Type = "iban"
	IPAddress     Type = "ip_address"
	// FreeText marks a column of prose that contains personal data inside
	// it (found with Spans) rather than being one value of a kind.
	FreeText Type = "free_text"
)

// Types lists every Type in a stable order, for help texts and validation.
var Types = []Type{Email, Phone, PersonName, StreetAddress, DateOfBirth, NationalID, CreditCard, IBAN, IPAddress, FreeText}

// ParseType parses a type name as written in a pipeline spec. It accepts
// the canonical names and a few common spellings ("ssn", "card", "ip",
// "dob", "name", "address").
func ParseType(s string) (Type, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	k = strings.NewReplacer("-", "_", " ", "_").Replace(k)
	switch k {
	case "email", "email_address":
		return Email, nil
	case "phone", "phone_number", "telephone":
		return Phone, nil
	case "person_name", "name", "person":
		return PersonName, nil
	case "street_address", "address":
		return StreetAddress, nil
	case "date_of_birth", "dob", "birth_date", "birthdate":
		return DateOfBirth, nil
	case "national_id", "ssn", "nino":
		return NationalID, nil
	case "credit_card", "card", "card_number", "pan":
		return CreditCard, nil
	case "iban":
		return IBAN, nil
	case "ip_address", "ip":
		return IPAddress, nil
	case "free_text", "text":
		return FreeText, nil
	}
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return "", fmt.Errorf("unknown personal data type %q (want one of %s)", s, strings.Join(names, ", "))
}

// Finding is what the detector concluded about one column.
type Finding struct {
	// Column is the column's name.
	Column string
	// Type is the kind of personal data the column most likely holds.
	Type Type
	// Matches is the number of sampled non-empty values recognised as Type
	// (for FreeText: values containing at least one span). For phone
	// numbers past the first thousand in a column it is an estimate from a
	// systematic one-in-sixteen subsample, since validating every number
	// is the costliest part of detection.
	Matches int64
	// Sampled is the number of non-null, non-empty values examined.
	Sampled int64
	// Ratio is Matches / Sampled.
	Ratio float64
	// Confidence, in [0, 1], combines the ratio with how reliable the
	// recogniser is: checksummed types score high, heuristic ones lower.
	Confidence float64
}

// Span is personal data found inside a longer text: s[Start:End] is a value
// of Type. Offsets are byte offsets.
type Span struct {
	Start, End int
	Type       Type
}
