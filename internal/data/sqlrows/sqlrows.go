// Package sqlrows moves rows between database/sql and data batches: a
// Reader streams the result of a query into typed batches, quarantining the
// rows whose values do not fit their columns, and a Loader writes batches
// into a table as multi-row INSERTs inside one transaction, hashing what it
// sends so that a load can be proved later.
//
// What differs between databases (how result types map to column types,
// how values are bound, which floats can be stored) is passed in as a
// Dialect, so each connector keeps its own settings, messages and SQL while
// the row handling exists once.
package sqlrows

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/data"
)

// The sink modes the connectors built on this package share.
const (
	// ModeAppend inserts the records next to the rows already there.
	ModeAppend = "append"
	// ModeReplace deletes every row of the table, then inserts the records,
	// in the same transaction.
	ModeReplace = "replace"
	// ModeUpsert inserts the records, updating the row that has the same
	// key instead where there is one.
	ModeUpsert = "upsert"
)

// Decoder converts a value as the driver delivered it into one the column
// conversion understands (for instance MySQL's BIT, delivered as
// big-endian bytes, into an integer). It returns the value unchanged when
// it has nothing to do, or why the value cannot be used.
type Decoder func(v any) (any, string)

// Dialect is what a database does differently. Name and Quote are
// required; every other field has a default that suits most drivers.
type Dialect struct {
	// Name starts every error message, e.g. "mysql".
	Name string
	// Quote quotes an identifier.
	Quote func(name string) string
	// TypeOf maps a result column's database type name, as
	// sql.ColumnType.DatabaseTypeName reports it, to a column type.
	// data.Invalid means the database does not say: the column takes the
	// type of its value in the first row (see TypeOfValue). Nil types
	// every column from its first value.
	TypeOf func(dbType string) data.Type
	// Decoder returns the Decoder for the values of a result column of
	// the given database type, or nil when they need none. Nil: none do.
	Decoder func(dbType string) Decoder
	// UnixTimestamps reads an integer in a timestamp column as Unix
	// seconds (SQLite's date functions do). Otherwise it is not a
	// timestamp.
	UnixTimestamps bool
	// MaxParams is the most parameters one statement may carry; it caps
	// the rows of one INSERT. Required to write.
	MaxParams int
	// FloatReason says why a float cannot be stored, e.g. "NaN cannot be
	// stored in SQLite", or returns "" when it can. Nil: every float can.
	FloatReason func(v float64) string
	// BoolArg binds a bool. Nil binds it as a bool.
	BoolArg func(v bool) any
	// TimeArg binds a timestamp, already in UTC with microsecond
	// precision. Nil binds it as a time.Time.
	TimeArg func(t time.Time) any
}

// CheckMode checks the mode and key settings of a sink: mode is append
// (or empty), replace or upsert, and key is set for upsert only and names
// no column twice. The errors name the setting.
func CheckMode(mode string, key []string) error {
	switch mode {
	case "", ModeAppend, ModeReplace:
		if len(key) > 0 {
			return fmt.Errorf("key: only for mode: upsert")
		}
	case ModeUpsert:
		if len(key) == 0 {
			return fmt.Errorf("key: required for mode: upsert")
		}
	default:
		return fmt.Errorf("mode: want append, replace or upsert, got %q", mode)
	}
	seen := map[string]bool{}
	for i, k := range key {
		if k == "" {
			return fmt.Errorf("key: entry %d is empty", i+1)
		}
		if seen[strings.ToLower(k)] {
			return fmt.Errorf("key: %q listed twice", k)
		}
		seen[strings.ToLower(k)] = true
	}
	return nil
}

// CheckRecords checks, before connecting, that the records to load into
// table have columns and that every key column is one of them.
func CheckRecords(table string, schema *data.Schema, key []string) error {
	if len(schema.Fields) == 0 {
		return fmt.Errorf("table %s: the records have no columns", table)
	}
	for _, k := range key {
		if schema.Index(k) < 0 {
			return fmt.Errorf("key: column %q is not in the records (%s)", k, schema)
		}
	}
	return nil
}

// Querier is what ColumnNames queries through: a *sql.DB or a *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ColumnNames runs query, which returns one column of names (the columns of
// a table, as the database's catalogue lists them), and returns them lower
// cased. A table that does not exist has none.
func ColumnNames(ctx context.Context, q Querier, query string, args ...any) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		cols[strings.ToLower(n)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return cols, nil
}

// MissingColumn returns the first field of schema that is not among cols
// (lower-cased names, as ColumnNames returns them), and whether there is
// one.
func MissingColumn(schema *data.Schema, cols map[string]bool) (string, bool) {
	for _, f := range schema.Fields {
		if !cols[strings.ToLower(f.Name)] {
			return f.Name, true
		}
	}
	return "", false
}

// Updated returns the fields of schema that an upsert updates: those not
// in key, compared without case.
func Updated(schema *data.Schema, key []string) []string {
	isKey := make(map[string]bool, len(key))
	for _, k := range key {
		isKey[strings.ToLower(k)] = true
	}
	var set []string
	for _, f := range schema.Fields {
		if !isKey[strings.ToLower(f.Name)] {
			set = append(set, f.Name)
		}
	}
	return set
}

// CreateTable returns "CREATE TABLE target (...)" for schema, each column
// declared as its quoted name and colType's text, and key (nil unless the
// load is an upsert) as the primary key. colType is told whether the field
// is part of the key.
func CreateTable(d *Dialect, target string, schema *data.Schema, key []string, colType func(f data.Field, key bool) string) string {
	isKey := make(map[string]bool, len(key))
	for _, k := range key {
		isKey[k] = true
	}
	var b strings.Builder
	b.WriteString("CREATE TABLE " + target + " (")
	for i, f := range schema.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Quote(f.Name) + " " + colType(f, isKey[f.Name]))
	}
	if len(key) > 0 {
		q := make([]string, len(key))
		for i, k := range key {
			q[i] = d.Quote(k)
		}
		b.WriteString(", PRIMARY KEY (" + strings.Join(q, ", ") + ")")
	}
	b.WriteString(")")
	return b.String()
}
