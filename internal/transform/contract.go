package transform

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// DriftKind is how an output schema departs from its contract.
type DriftKind string

// The kinds of drift.
const (
	DriftMissing DriftKind = "missing" // a promised column is absent
	DriftNew     DriftKind = "new"     // a column the contract does not name
	DriftType    DriftKind = "type"    // a promised column has another type
)

// Drift is one difference between a contract and a schema.
type Drift struct {
	Column string
	Kind   DriftKind
	// Want is the contract's type (Invalid for a new column); Got the
	// schema's (Invalid for a missing column).
	Want, Got data.Type
}

// String describes the drift, e.g. `column "age" is string, the contract
// says int`.
func (d Drift) String() string {
	switch d.Kind {
	case DriftMissing:
		return fmt.Sprintf("column %q (%s) is missing", d.Column, d.Want)
	case DriftNew:
		return fmt.Sprintf("column %q (%s) is new", d.Column, d.Got)
	}
	return fmt.Sprintf("column %q is %s, the contract says %s", d.Column, d.Got, d.Want)
}

// CheckContract compares a schema with a contract and returns every
// difference: missing and retyped columns in the contract's order, then
// new columns in the schema's order. Column order is not part of a
// contract. Nil means the schema keeps the contract.
func CheckContract(c *pipeline.Contract, s *data.Schema) []Drift {
	if c == nil {
		return nil
	}
	var drifts []Drift
	promised := make(map[string]bool, len(c.Columns))
	for _, f := range c.Columns {
		promised[f.Name] = true
		i := s.Index(f.Name)
		switch {
		case i < 0:
			drifts = append(drifts, Drift{Column: f.Name, Kind: DriftMissing, Want: f.Type})
		case s.Fields[i].Type != f.Type:
			drifts = append(drifts, Drift{Column: f.Name, Kind: DriftType, Want: f.Type, Got: s.Fields[i].Type})
		}
	}
	for _, f := range s.Fields {
		if !promised[f.Name] {
			drifts = append(drifts, Drift{Column: f.Name, Kind: DriftNew, Got: f.Type})
		}
	}
	return drifts
}
