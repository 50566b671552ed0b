package fileio

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/data"
	"go.yaml.in/yaml/v3"
)

// Columns is the `schema:` setting of a file connector: a YAML mapping of
// column name to type name (per data.ParseType), kept in the order written,
// since column order is part of a schema and a Go map would lose it.
//
//	schema:
//	  id: int
//	  email: string
//	  signed_up: timestamp
type Columns []data.Field

// UnmarshalYAML decodes the mapping, rejecting anything else, unknown type
// names, and duplicate columns.
func (c *Columns) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("schema: want a mapping of column name to type, at line %d", n.Line)
	}
	out := make(Columns, 0, len(n.Content)/2)
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			return fmt.Errorf("schema: line %d: want `column: type`", k.Line)
		}
		if k.Value == "" {
			return fmt.Errorf("schema: line %d: empty column name", k.Line)
		}
		if seen[k.Value] {
			return fmt.Errorf("schema: line %d: column %q declared twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		t, err := data.ParseType(v.Value)
		if err != nil {
			return fmt.Errorf("schema: line %d: column %q: %w", v.Line, k.Value, err)
		}
		out = append(out, data.Field{Name: k.Value, Type: t})
	}
	*c = out
	return nil
}

// Schema builds the data.Schema, or nil when no columns are declared.
func (c Columns) Schema() (*data.Schema, error) {
	if len(c) == 0 {
		return nil, nil
	}
	s, err := data.NewSchema([]data.Field(c)...)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return s, nil
}
