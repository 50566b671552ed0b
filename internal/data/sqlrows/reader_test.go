package sqlrows

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/sluicehq/sluice/internal/data"
)

// testDialect reads declared INTEGER and TEXT columns by their types and
// leaves every other column to its first value; a BLOB is decoded into its
// length, up to 3 bytes.
var testDialect = Dialect{
	Name:  "testdb",
	Quote: func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` },
	TypeOf: func(dbType string) data.Type {
		switch dbType {
		case "INTEGER":
			return data.Int
		case "TEXT":
			return data.String
		case "BOOLEAN":
			return data.Bool
		}
		return data.Invalid
	},
	Decoder: func(dbType string) Decoder {
		if dbType != "BLOB" {
			return nil
		}
		return func(v any) (any, string) {
			b, ok := v.([]byte)
			if !ok {
				return v, ""
			}
			if len(b) > 3 {
				return nil, "blob longer than 3 bytes"
			}
			return int64(len(b)), ""
		}
	},
	MaxParams: 1000,
}

type quarantine struct {
	mu   sync.Mutex
	rejs []data.Reject
	err  error
}

func (q *quarantine) Reject(_ context.Context, r data.Reject) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rejs = append(q.rejs, r)
	return q.err
}

// newDB returns a database in a fresh file, set up with the given SQL.
func newDB(t *testing.T, setup string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if setup != "" {
		if _, err := db.Exec(setup); err != nil {
			t.Fatalf("setting up: %v", err)
		}
	}
	return db
}

// readAll reads every batch of r, returning its rows and the size of each
// batch.
func readAll(t *testing.T, r *Reader) (rows [][]any, sizes []int) {
	t.Helper()
	for {
		b, err := r.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			return rows, sizes
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		sizes = append(sizes, b.Len)
		for i := 0; i < b.Len; i++ {
			row := make([]any, len(b.Cols))
			for j := range b.Cols {
				c := &b.Cols[j]
				switch {
				case c.IsNull(i):
				case c.Type == data.String:
					row[j] = c.Strings[i]
				case c.Type == data.Int:
					row[j] = c.Ints[i]
				case c.Type == data.Float:
					row[j] = c.Floats[i]
				case c.Type == data.Bool:
					row[j] = c.Bools[i]
				case c.Type == data.Timestamp:
					row[j] = c.Times[i]
				}
			}
			rows = append(rows, row)
		}
	}
}

func TestReader(t *testing.T) {
	t.Parallel()
	db := newDB(t, `CREATE TABLE t (id INTEGER, name TEXT, score, tag BLOB);
		INSERT INTO t VALUES (1, 'a', 0.5, x'01'), (2, 'b', 1.5, NULL), (3, 'c', 2, x'01020304'),
			(4, 'd', 'high', x''), (5, NULL, NULL, x'0102')`)
	q := &quarantine{}
	r, err := Open(context.Background(), db, &testDialect, Query{
		SQL: "SELECT id, name, score, tag FROM t ORDER BY id", Where: "test.db", Pos: "test.db row",
		BatchSize: 2, Quarantine: q,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// score has no declared type: its first value, 0.5, makes it a float,
	// and that first row, read to find out, is not lost.
	if got, want := r.Schema().String(), "id:int, name:string, score:float, tag:string"; got != want {
		t.Errorf("schema = %s, want %s", got, want)
	}
	rows, sizes := readAll(t, r)
	want := [][]any{
		{int64(1), "a", 0.5, "1"},
		{int64(2), "b", 1.5, nil},
		{int64(5), nil, nil, "2"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{2, 1}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	wantRejs := []data.Reject{
		{Pos: "test.db row 3", Reason: `column "tag": blob longer than 3 bytes`, Raw: `{"id":3,"name":"c","score":2,"tag":"\u0001\u0002\u0003\u0004"}`},
		{Pos: "test.db row 4", Reason: `column "score": "high" is not a float`, Raw: `{"id":4,"name":"d","score":"high","tag":""}`},
	}
	if diff := cmp.Diff(wantRejs, q.rejs); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	if !r.Done() {
		t.Error("Done = false after the end of input")
	}
	if _, err := r.Next(context.Background()); !errors.Is(err, data.ErrEndOfInput) {
		t.Errorf("Next after the end = %v, want ErrEndOfInput", err)
	}
}

func TestReaderTypes(t *testing.T) {
	t.Parallel()
	db := newDB(t, `CREATE TABLE t (id INTEGER, flag INTEGER); INSERT INTO t VALUES (1, 1), (2, 0)`)
	tests := []struct {
		name    string
		sql     string
		types   []data.Field
		schema  string
		rows    [][]any
		wantErr string
	}{
		{"override", "SELECT id, flag FROM t ORDER BY id", []data.Field{{Name: "flag", Type: data.Bool}},
			"id:int, flag:bool", [][]any{{int64(1), true}, {int64(2), false}}, ""},
		{"expression from first value", "SELECT id, id * 1.5 AS x FROM t ORDER BY id", nil,
			"id:int, x:float", [][]any{{int64(1), 1.5}, {int64(2), 3.0}}, ""},
		{"empty result with undeclared type", "SELECT id, id + 1 AS x FROM t WHERE id > 5", nil,
			"id:int, x:string", nil, ""},
		{"unknown override", "SELECT id FROM t", []data.Field{{Name: "nope", Type: data.Int}},
			"", nil, `testdb: types: column "nope" is not in the query's result`},
		{"duplicate names", "SELECT id, id FROM t", nil,
			"", nil, `testdb: query result: field "id": duplicate name (alias the columns with AS)`},
		{"bad query", "SELECT * FROM nope", nil,
			"", nil, "testdb: test.db: running query: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Open(context.Background(), db, &testDialect, Query{
				SQL: tt.sql, Where: "test.db", Pos: "row", Types: tt.types, BatchSize: 10, Quarantine: &quarantine{},
			})
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Open error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.Schema().String(); got != tt.schema {
				t.Errorf("schema = %s, want %s", got, tt.schema)
			}
			rows, _ := readAll(t, r)
			if diff := cmp.Diff(tt.rows, rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReaderQuarantineFailure(t *testing.T) {
	t.Parallel()
	db := newDB(t, `CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1), ('x')`)
	q := &quarantine{err: errors.New("disk full")}
	r, err := Open(context.Background(), db, &testDialect, Query{SQL: "SELECT id FROM t", Where: "test.db", Pos: "query row", BatchSize: 10, Quarantine: q})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Next(context.Background())
	if err == nil || err.Error() != "testdb: quarantining query row 2: disk full" {
		t.Errorf("Next error = %v, want the quarantine's error placed", err)
	}
}

func TestReaderCloseEarly(t *testing.T) {
	t.Parallel()
	db := newDB(t, `CREATE TABLE t (id INTEGER);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO t SELECT i FROM n`)
	r, err := Open(context.Background(), db, &testDialect, Query{SQL: "SELECT id FROM t", Where: "test.db", Pos: "row", BatchSize: 10, Quarantine: &quarantine{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Done() {
		t.Error("Done = true with rows left")
	}
	_ = r.Close()
	// The one connection is free again: the abandoned result let go of it.
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1000 {
		t.Errorf("count after Close = %d, %v; want 1000", n, err)
	}
}

func TestReaderCancelledContext(t *testing.T) {
	t.Parallel()
	db := newDB(t, `CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1)`)
	r, err := Open(context.Background(), db, &testDialect, Query{SQL: "SELECT id FROM t", Where: "test.db", Pos: "row", BatchSize: 10, Quarantine: &quarantine{}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context = %v, want context.Canceled", err)
	}
}
