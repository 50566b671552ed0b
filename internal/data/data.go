// Package data defines how records move through sluice: a Schema of typed
// fields, columnar Batches against that schema, and the Source and Sink
// contracts that connectors implement.
//
// Records are never maps. A Batch holds one typed slice per column, so a
// batch of ten thousand rows is a handful of allocations, and memory stays
// flat however large the dataset: sources yield batches of at most
// DefaultBatchSize rows and nothing downstream holds on to more than a few.
package data

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultBatchSize is the number of rows a source puts in one batch unless
// configured otherwise. Large enough to amortise per-batch work, small enough
// that a batch of wide rows stays in the low megabytes.
const DefaultBatchSize = 4096

// ErrEndOfInput is returned by Source.Next when the source is exhausted.
var ErrEndOfInput = errors.New("end of input")

// Type is the type of a column.
type Type uint8

// The column types. Timestamps are UTC instants with microsecond precision.
const (
	Invalid Type = iota
	String
	Int
	Float
	Bool
	Timestamp
)

var typeNames = [...]string{Invalid: "invalid", String: "string", Int: "int", Float: "float", Bool: "bool", Timestamp: "timestamp"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", t)
}

// ParseType parses a type name as written in a pipeline spec.
func ParseType(s string) (Type, error) {
	switch strings.ToLower(s) {
	case "string", "text":
		return String, nil
	case "int", "integer", "int64":
		return Int, nil
	case "float", "double", "float64", "number":
		return Float, nil
	case "bool", "boolean":
		return Bool, nil
	case "timestamp", "time", "datetime":
		return Timestamp, nil
	}
	return Invalid, fmt.Errorf("unknown type %q (want string, int, float, bool or timestamp)", s)
}

// Field is one named, typed column of a schema.
type Field struct {
	Name string
	Type Type
}

// Schema is the ordered list of fields every batch of a stream conforms to.
// A Schema is immutable once built; share it by pointer.
type Schema struct {
	Fields []Field
	index  map[string]int
}

// NewSchema builds a schema, rejecting empty and duplicate field names.
func NewSchema(fields ...Field) (*Schema, error) {
	s := &Schema{Fields: fields, index: make(map[string]int, len(fields))}
	for i, f := range fields {
		if f.Name == "" {
			return nil, fmt.Errorf("field %d: empty name", i+1)
		}
		if f.Type == Invalid || int(f.Type) >= len(typeNames) {
			return nil, fmt.Errorf("field %q: invalid type", f.Name)
		}
		if _, dup := s.index[f.Name]; dup {
			return nil, fmt.Errorf("field %q: duplicate name", f.Name)
		}
		s.index[f.Name] = i
	}
	return s, nil
}

// MustSchema is NewSchema for schemas fixed in code; it panics on error.
func MustSchema(fields ...Field) *Schema {
	s, err := NewSchema(fields...)
	if err != nil {
		panic(err)
	}
	return s
}

// Index returns the position of the named field, or -1.
func (s *Schema) Index(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

// Names returns the field names in order.
func (s *Schema) Names() []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

// String renders the schema as "name:type, ...".
func (s *Schema) String() string {
	var b strings.Builder
	for i, f := range s.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name)
		b.WriteByte(':')
		b.WriteString(f.Type.String())
	}
	return b.String()
}

// Column holds the values of one field for every row of a batch. Exactly one
// of the value slices is used, chosen by Type; its length is the batch's Len.
// Nulls is nil when no value is null; otherwise Nulls[i] marks row i null and
// the value slot holds the zero value.
type Column struct {
	Type    Type
	Strings []string
	Ints    []int64
	Floats  []float64
	Bools   []bool
	Times   []time.Time
	Nulls   []bool
}

// IsNull reports whether row i is null.
func (c *Column) IsNull(i int) bool { return c.Nulls != nil && c.Nulls[i] }

// SetNull marks row i null, allocating the null mask on first use.
func (c *Column) SetNull(i, n int) {
	if c.Nulls == nil {
		c.Nulls = make([]bool, n)
	}
	c.Nulls[i] = true
}

// Batch is a group of rows, stored column by column.
//
// Pos, when not nil, gives each row's position in its source (the 1-based
// line of a CSV or JSONL file, the row number of a query) so that a record
// sent to quarantine later can still be traced to where it came from.
type Batch struct {
	Schema *Schema
	Cols   []Column
	Len    int
	Pos    []int64
}

// NewBatch returns an empty batch for schema with room for capacity rows.
func NewBatch(schema *Schema, capacity int) *Batch {
	b := &Batch{Schema: schema, Cols: make([]Column, len(schema.Fields))}
	for i, f := range schema.Fields {
		c := &b.Cols[i]
		c.Type = f.Type
		switch f.Type {
		case String:
			c.Strings = make([]string, 0, capacity)
		case Int:
			c.Ints = make([]int64, 0, capacity)
		case Float:
			c.Floats = make([]float64, 0, capacity)
		case Bool:
			c.Bools = make([]bool, 0, capacity)
		case Timestamp:
			c.Times = make([]time.Time, 0, capacity)
		}
	}
	return b
}

// Source yields batches of records. Next returns ErrEndOfInput (and a nil
// batch) once the source is exhausted. A batch returned by Next is valid
// until the next call to Next; a consumer that keeps rows must copy them.
// Schema is known once the source is opened.
type Source interface {
	Schema() *Schema
	Next(ctx context.Context) (*Batch, error)
	Close() error
}

// Sink receives batches. Nothing it writes is visible to others until Commit
// returns nil; Abort discards everything written so far. Exactly one of
// Commit or Abort is called, and Abort after a failed Commit is allowed.
type Sink interface {
	Write(ctx context.Context, b *Batch) error
	Commit(ctx context.Context) error
	Abort() error
}

// Output describes what a sink committed: where the data went, how many
// bytes, and the hex SHA-256 of those bytes, so a run can record and later
// prove what it delivered.
type Output struct {
	Location string
	Bytes    int64
	SHA256   string
}

// Outputer is implemented by sinks that can describe what they committed.
type Outputer interface {
	Output() Output
}

// Reject is a record that could not be read or processed: it goes to the
// task's quarantine output instead of crashing the task or vanishing.
type Reject struct {
	// Pos names where the record came from, e.g. "customers.csv:42".
	Pos string
	// Reason says what was wrong, e.g. `column "age": "abc" is not an int`.
	Reason string
	// Raw is the record as it was read (the raw line for text formats).
	Raw string
}

// Quarantine receives rejected records. Connectors and transforms call it
// for every record they cannot handle; a non-nil error stops the task.
type Quarantine interface {
	Reject(ctx context.Context, r Reject) error
}
