package sqlrows

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
)

func TestCheckMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode string
		key  []string
		want string
	}{
		{"default", "", nil, ""},
		{"append", ModeAppend, nil, ""},
		{"replace", ModeReplace, nil, ""},
		{"upsert", ModeUpsert, []string{"id", "day"}, ""},
		{"bad mode", "merge", nil, `mode: want append, replace or upsert, got "merge"`},
		{"key without upsert", ModeReplace, []string{"id"}, "key: only for mode: upsert"},
		{"upsert without key", ModeUpsert, nil, "key: required for mode: upsert"},
		{"empty key entry", ModeUpsert, []string{"id", ""}, "key: entry 2 is empty"},
		{"key twice", ModeUpsert, []string{"id", "ID"}, `key: "ID" listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ""
			if err := CheckMode(tt.mode, tt.key); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("CheckMode = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckRecords(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(data.Field{Name: "id", Type: data.Int})
	tests := []struct {
		name   string
		schema *data.Schema
		key    []string
		want   string
	}{
		{"fine", schema, []string{"id"}, ""},
		{"no columns", data.MustSchema(), nil, "table t: the records have no columns"},
		{"key not in records", schema, []string{"nope"}, `key: column "nope" is not in the records (id:int)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ""
			if err := CheckRecords("t", tt.schema, tt.key); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("CheckRecords = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUpdated(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(
		data.Field{Name: "ID", Type: data.Int},
		data.Field{Name: "name", Type: data.String},
		data.Field{Name: "day", Type: data.Timestamp},
	)
	if diff := cmp.Diff([]string{"name"}, Updated(schema, []string{"id", "Day"})); diff != "" {
		t.Errorf("Updated (-want +got):\n%s", diff)
	}
	if got := Updated(schema, []string{"id", "name", "day"}); len(got) != 0 {
		t.Errorf("Updated with every column in the key = %v, want none", got)
	}
}

func TestCreateTable(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(data.Field{Name: "id", Type: data.Int}, data.Field{Name: `na"me`, Type: data.String})
	colType := func(f data.Field, key bool) string {
		if key {
			return f.Type.String() + " KEYED"
		}
		return f.Type.String()
	}
	tests := []struct {
		name string
		key  []string
		want string
	}{
		{"no key", nil, `CREATE TABLE "t" ("id" int, "na""me" string)`},
		{"key", []string{"id"}, `CREATE TABLE "t" ("id" int KEYED, "na""me" string, PRIMARY KEY ("id"))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := CreateTable(&testDialect, `"t"`, schema, tt.key, colType); got != tt.want {
				t.Errorf("CreateTable = %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestColumnNames(t *testing.T) {
	t.Parallel()
	db := newDB(t, `CREATE TABLE t (Id INTEGER, NAME TEXT)`)
	const q = "SELECT name FROM pragma_table_info(?)"
	cols, err := ColumnNames(context.Background(), db, q, "t")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]bool{"id": true, "name": true}, cols); diff != "" {
		t.Errorf("ColumnNames (-want +got):\n%s", diff)
	}
	none, err := ColumnNames(context.Background(), db, q, "nope")
	if err != nil || len(none) != 0 {
		t.Errorf("ColumnNames of a missing table = %v, %v; want none", none, err)
	}
	if _, err := ColumnNames(context.Background(), db, "SELECT FROM"); err == nil {
		t.Error("ColumnNames of a bad query: no error")
	}

	schema := data.MustSchema(data.Field{Name: "ID", Type: data.Int}, data.Field{Name: "name", Type: data.String}, data.Field{Name: "extra", Type: data.Int})
	if name, missing := MissingColumn(schema, cols); !missing || name != "extra" {
		t.Errorf("MissingColumn = %q, %v; want extra", name, missing)
	}
	if name, missing := MissingColumn(data.MustSchema(data.Field{Name: "NAME", Type: data.String}), cols); missing {
		t.Errorf("MissingColumn = %q, want none (names compare without case)", name)
	}
}
