package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/datatest"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"go.yaml.in/yaml/v3"
)

type quarantine struct {
	mu   sync.Mutex
	rejs []data.Reject
}

func (q *quarantine) Reject(_ context.Context, r data.Reject) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rejs = append(q.rejs, r)
	return nil
}

func testEnv(dir string, q data.Quarantine) data.Env {
	if q == nil {
		q = &quarantine{}
	}
	return data.Env{Dir: dir, Expand: func(s string) (string, error) {
		return strings.ReplaceAll(s, "{{ .LogicalDate }}", "2024-05-01"), nil
	}, Quarantine: q, BatchSize: 3}
}

// newDB creates a database file in a fresh directory with the given SQL.
func newDB(t testing.TB, setup string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "db-2024-05-01.sqlite")
	db, err := sql.Open(driverName, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if setup != "" {
		if _, err := db.Exec(setup); err != nil {
			t.Fatalf("setting up: %v", err)
		}
	} else if _, err := db.Exec("PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// row and readAll are the shared data test helpers.
type row = datatest.Row

func readAll(t testing.TB, src data.Source) []row {
	t.Helper()
	rows, _ := datatest.ReadAll(t, src)
	return rows
}

func source(t testing.TB, c *Config, env data.Env) data.Source {
	t.Helper()
	src, err := OpenSource(context.Background(), c, env)
	if err != nil {
		t.Fatalf("OpenSource: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"source", "path: a.db\nquery: SELECT 1\nargs: [a]\ntypes: {n: int}\nbatch_size: 10", ""},
		{"sink", "path: a.db\ntable: t\nmode: upsert\nkey: [id]\ncreate: true", ""},
		{"no path", "query: q", "path: required"},
		{"neither", "path: a.db", "query: required to read (or table: to write)"},
		{"both", "path: a.db\nquery: q\ntable: t", "query and table: set query to read or table to write, not both"},
		{"bad mode", "path: a.db\ntable: t\nmode: merge", `mode: want append, replace or upsert, got "merge"`},
		{"upsert without key", "path: a.db\ntable: t\nmode: upsert", "key: required for mode: upsert"},
		{"key without upsert", "path: a.db\ntable: t\nmode: replace\nkey: [id]", "key: only for mode: upsert"},
		{"negative batch", "path: a.db\nquery: q\nbatch_size: -2", "batch_size: must not be negative, got -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewConfig()
			dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
			dec.KnownFields(true)
			if err := dec.Decode(c); err != nil {
				t.Fatal(err)
			}
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTypeMapping(t *testing.T) {
	t.Parallel()
	dir, path := newDB(t, `CREATE TABLE t (id INTEGER, n BIGINT, f REAL, d DOUBLE PRECISION, num NUMERIC, s VARCHAR(10), tx TEXT,
		b BOOLEAN, ts TIMESTAMP, dt DATETIME, dd DATE, bl BLOB, other WHATEVER, untyped);
		INSERT INTO t VALUES (1, -7, 1.5, 2.25, 3, 'héllo', 'text', 1, '2024-05-01 10:30:00.123456+00:00', '2024-05-01T12:30:00+02:00',
			'2024-05-01', X'616263', 'w', 42);
		INSERT INTO t VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
		INSERT INTO t VALUES (3, 'abc', 'x', 1, 'n', 5, 6, 'yes', 'soon', 1714559400, '2024-13-45', X'FF', 7, 'str');
		INSERT INTO t VALUES (4, 9, 9, 9, 9, 'ok', 'ok', 'true', '2024-05-01T10:30:00Z', NULL, NULL, NULL, NULL, 4.5);`)
	q := &quarantine{}
	c := &Config{Path: filepath.Base(path), Query: "SELECT *, count(*) OVER () AS total FROM t ORDER BY id"}
	src := source(t, c, testEnv(dir, q))
	want := "id:int, n:int, f:float, d:float, num:float, s:string, tx:string, b:bool, ts:timestamp, dt:timestamp, dd:timestamp, bl:string, other:string, untyped:int, total:int"
	if got := src.Schema().String(); got != want {
		t.Errorf("schema:\n got %s\nwant %s", got, want)
	}
	at := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	rows := readAll(t, src)
	wantRows := []row{
		{int64(1), int64(-7), 1.5, 2.25, 3.0, "héllo", "text", true, at.Add(123456 * time.Microsecond), at, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), "abc", "w", int64(42), int64(4)},
		{int64(2), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, int64(4)},
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	wantRejects := []data.Reject{
		{Pos: filepath.Join(dir, filepath.Base(path)) + " row 3", Reason: `column "n": "abc" is not an int`},
		{Pos: filepath.Join(dir, filepath.Base(path)) + " row 4", Reason: `column "untyped": "4.5" is not an int`},
	}
	if diff := cmp.Diff(wantRejects, q.rejs, cmpIgnoreRaw); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	if len(q.rejs) == 2 && !strings.HasPrefix(q.rejs[0].Raw, `{"id":3,"n":"abc","f":"x",`) {
		t.Errorf("raw = %s", q.rejs[0].Raw)
	}
	// Each bad value of row 3, one column at a time, has its reason.
	for col, reason := range map[string]string{
		"f": `column "f": "x" is not a float`, "b": `column "b": "yes" is not a bool`, "ts": `column "ts": "soon" is not a timestamp`,
		"dd": `column "dd": "2024-13-45" is not a timestamp`, "bl": `column "bl": value is not valid UTF-8 text`,
	} {
		q := &quarantine{}
		got := readAll(t, source(t, &Config{Path: path, Query: "SELECT " + col + " FROM t WHERE id = 3"}, testEnv(dir, q)))
		if len(got) != 0 || len(q.rejs) != 1 || q.rejs[0].Reason != reason {
			t.Errorf("%s: rows %v, rejects %+v; want reason %s", col, got, q.rejs, reason)
		}
	}
	// Integers in a date column are Unix time.
	got := readAll(t, source(t, &Config{Path: path, Query: "SELECT dt FROM t WHERE id = 3"}, testEnv(dir, nil)))
	if diff := cmp.Diff([]row{{at}}, got); diff != "" {
		t.Errorf("unix time (-want +got):\n%s", diff)
	}
	// types overrides.
	got = readAll(t, source(t, &Config{Path: path, Query: "SELECT n, 1 AS flag FROM t WHERE id = 1", Types: fileio.Columns{{Name: "flag", Type: data.Bool}, {Name: "n", Type: data.String}}}, testEnv(dir, nil)))
	if diff := cmp.Diff([]row{{"-7", true}}, got); diff != "" {
		t.Errorf("types (-want +got):\n%s", diff)
	}
}

var cmpIgnoreRaw = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Raw" }, cmp.Ignore())

func TestSourceArgsAndReadOnly(t *testing.T) {
	t.Parallel()
	dir, path := newDB(t, "CREATE TABLE t (id INTEGER, name TEXT, day TEXT)")
	db, err := sql.Open(driverName, path)
	if err != nil {
		t.Fatal(err)
	}
	hostile := []string{"x' OR '1'='1", "'); DROP TABLE t; --", `" OR 1=1 --`, "?1 OR 1", "nul\x00byte"}
	for i, h := range hostile {
		if _, err := db.Exec("INSERT INTO t VALUES (?, ?, '2024-05-01')", i, h); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	for i, h := range hostile {
		c := &Config{Path: path, Query: "SELECT id, name FROM t WHERE name = ? AND day = ?", Args: []string{h, "{{ .LogicalDate }}"}}
		if diff := cmp.Diff([]row{{int64(i), h}}, readAll(t, source(t, c, testEnv(dir, nil)))); diff != "" {
			t.Errorf("arg %q (-want +got):\n%s", h, diff)
		}
	}
	for _, q := range []string{"DELETE FROM t RETURNING id", "INSERT INTO t VALUES (9, 'x', 'y') RETURNING id"} {
		src, err := OpenSource(context.Background(), &Config{Path: path, Query: q}, testEnv(dir, nil))
		if err == nil {
			_, err = src.Next(context.Background())
			src.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "readonly") {
			t.Errorf("%s through a source: error = %v, want a read-only error", q, err)
		}
	}
	got := readAll(t, source(t, &Config{Path: path, Query: "SELECT count(*) AS n FROM t"}, testEnv(dir, nil)))
	if diff := cmp.Diff([]row{{int64(len(hostile))}}, got); diff != "" {
		t.Errorf("table changed (-want +got):\n%s", diff)
	}
}

func TestSourceErrors(t *testing.T) {
	t.Parallel()
	dir, path := newDB(t, "CREATE TABLE t (id INTEGER)")
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, query, want string }{
		{"missing file", "nope.db", "SELECT 1", "sqlite: database " + filepath.Join(dir, "nope.db") + " does not exist"},
		{"missing table", path, "SELECT * FROM nope", "no such table: nope"},
		{"not a database", garbage, "SELECT 1", "file is not a database"},
		{"unknown types column", path, "SELECT id FROM t", `types: column "x" is not in the query's result`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Config{Path: tt.path, Query: tt.query}
			if tt.name == "unknown types column" {
				c.Types = fileio.Columns{{Name: "x", Type: data.Int}}
			}
			_, err := OpenSource(context.Background(), c, testEnv(dir, nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestStream100k(t *testing.T) {
	t.Parallel()
	const n = 100_000
	dir, path := newDB(t, `CREATE TABLE t (id INTEGER, name TEXT);
		WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100000) INSERT INTO t SELECT i, 'name-' || i FROM s;`)
	env := testEnv(dir, nil)
	env.BatchSize = 4096
	src := source(t, &Config{Path: path, Query: "SELECT id, name FROM t ORDER BY id"}, env)
	var rows, sum int64
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.Len > 4096 {
			t.Fatalf("batch of %d rows", b.Len)
		}
		for r := 0; r < b.Len; r++ {
			rows++
			sum += b.Cols[0].Ints[r]
		}
	}
	if rows != n || sum != n*(n+1)/2 {
		t.Errorf("read %d rows, sum %d", rows, sum)
	}
}
