package sqlitedb

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

var sinkSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int},
	data.Field{Name: "name", Type: data.String},
	data.Field{Name: "score", Type: data.Float},
	data.Field{Name: "ok", Type: data.Bool},
	data.Field{Name: "at", Type: data.Timestamp},
)

var t0 = time.Date(2024, 5, 1, 10, 30, 0, 123456000, time.UTC)

func batchOf(rows ...row) *data.Batch {
	bd := fileio.NewBuilder(sinkSchema, len(rows))
	for i, r := range rows {
		for c, v := range r {
			switch x := v.(type) {
			case nil:
				bd.AppendNull(c)
			case int:
				bd.AppendInt(c, int64(x))
			case string:
				bd.AppendString(c, x)
			case float64:
				bd.AppendFloat(c, x)
			case bool:
				bd.AppendBool(c, x)
			case time.Time:
				bd.AppendTime(c, x)
			}
		}
		bd.EndRow(int64(i + 1))
	}
	return bd.B
}

func tableRows(t *testing.T, path, table string) []row {
	t.Helper()
	return readAll(t, source(t, &Config{Path: path, Query: `SELECT id, name, score, ok, at FROM "` + table + `" ORDER BY id, name`}, testEnv("", nil)))
}

const sinkDDL = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, ok BOOLEAN, at TIMESTAMP); INSERT INTO t VALUES (1, 'old', 1.0, 0, '2024-05-01 10:30:00.123456+00:00')"

func TestSinkModes(t *testing.T) {
	t.Parallel()
	existing := row{int64(1), "old", 1.0, false, t0}
	in := []row{{1, "one", 1.5, true, t0}, {2, `two 'q' "dq"`, nil, false, nil}, {3, nil, math.Inf(-1), nil, t0.Add(time.Hour)}}
	two := row{int64(2), `two 'q' "dq"`, nil, false, nil}
	three := row{int64(3), nil, math.Inf(-1), nil, t0.Add(time.Hour)}
	tests := []struct {
		name string
		cfg  Config
		in   []row
		want []row
	}{
		{"append", Config{Mode: ModeAppend}, in[1:], []row{existing, two, three}},
		{"replace", Config{Mode: ModeReplace}, in[1:2], []row{two}},
		{"upsert", Config{Mode: ModeUpsert, Key: []string{"id"}}, in, []row{{int64(1), "one", 1.5, true, t0}, two, three}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, path := newDB(t, sinkDDL)
			c := tt.cfg
			c.Path, c.Table = filepath.Base(path), "t"
			ctx := context.Background()
			s, err := OpenSink(ctx, &c, sinkSchema, testEnv(dir, nil))
			if err != nil {
				t.Fatal(err)
			}
			// Many statements' worth, then the rows under test.
			if err := s.Write(ctx, batchOf(tt.in...)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]row{existing}, tableRows(t, path, "t")); diff != "" {
				t.Errorf("before commit (-want +got):\n%s", diff)
			}
			if err := s.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tableRows(t, path, "t")); diff != "" {
				t.Errorf("after commit (-want +got):\n%s", diff)
			}
			out := s.(data.Outputer).Output()
			if out.Location != "sqlite://"+path+"#t" || len(out.SHA256) != 64 || out.Bytes == 0 {
				t.Errorf("Output = %+v", out)
			}
		})
	}
}

func TestSinkManyRows(t *testing.T) {
	t.Parallel()
	dir, path := newDB(t, sinkDDL)
	ctx := context.Background()
	s, err := OpenSink(ctx, &Config{Path: path, Table: "t", Mode: ModeReplace}, sinkSchema, testEnv(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for i := range 1234 {
		rows = append(rows, row{i, "n", float64(i), i%2 == 0, t0})
	}
	if err := s.Write(ctx, batchOf(rows...)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, source(t, &Config{Path: path, Query: "SELECT count(*), sum(score), sum(ok) FROM t"}, testEnv(dir, nil)))
	if diff := cmp.Diff([]row{{int64(1234), float64(1233 * 1234 / 2), int64(617)}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSinkAbortLeavesTableUntouched(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{ModeAppend, ModeReplace, ModeUpsert} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir, path := newDB(t, sinkDDL)
			c := &Config{Path: path, Table: "t", Mode: mode}
			if mode == ModeUpsert {
				c.Key = []string{"id"}
			}
			ctx := context.Background()
			s, err := OpenSink(ctx, c, sinkSchema, testEnv(dir, nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, batchOf(row{1, "new", 2.0, true, t0}, row{5, "five", 5.0, true, t0})); err != nil {
				t.Fatal(err)
			}
			if err := s.Abort(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]row{{int64(1), "old", 1.0, false, t0}}, tableRows(t, path, "t")); diff != "" {
				t.Errorf("after abort (-want +got):\n%s", diff)
			}
			if err := s.Commit(ctx); err == nil {
				t.Error("Commit after Abort succeeded")
			}
		})
	}
}

func TestSinkCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("new file, upsert", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s, err := OpenSink(ctx, &Config{Path: "out-{{ .LogicalDate }}.db", Table: `we"ird`, Create: true, Mode: ModeUpsert, Key: []string{"id", "name"}}, sinkSchema, testEnv(dir, nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, batchOf(row{1, "a", 0.5, true, t0}, row{1, "b", 1.0, false, t0}, row{1, "a", 1.5, false, nil})); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "out-2024-05-01.db")
		want := []row{{int64(1), "a", 1.5, false, nil}, {int64(1), "b", 1.0, false, t0}}
		if diff := cmp.Diff(want, tableRows(t, path, `we""ird`)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != fileio.FileMode {
			t.Errorf("database file: %v, %v; want mode %v", st.Mode(), err, fileio.FileMode)
		}
	})
	t.Run("abort undoes table and file", func(t *testing.T) {
		t.Parallel()
		dir, path := newDB(t, "")
		s, err := OpenSink(ctx, &Config{Path: path, Table: "t", Create: true}, sinkSchema, testEnv(dir, nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Abort(); err != nil {
			t.Fatal(err)
		}
		_, err = OpenSink(ctx, &Config{Path: path, Table: "t"}, sinkSchema, testEnv(dir, nil))
		if !errors.Is(err, ErrNoTable) {
			t.Errorf("after abort: %v, want the table gone", err)
		}
		fresh := filepath.Join(dir, "fresh.db")
		s, err = OpenSink(ctx, &Config{Path: fresh, Table: "t", Create: true}, sinkSchema, testEnv(dir, nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Abort(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("created file after abort: %v", err)
		}
	})
}

func TestSinkErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, path := newDB(t, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, ok BOOLEAN, at TIMESTAMP); CREATE TABLE nokey (id INTEGER, name TEXT, score REAL, ok BOOLEAN, at TIMESTAMP); CREATE TABLE narrow (id INTEGER)")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing file", Config{Path: "nope.db", Table: "t"}, "database " + filepath.Join(dir, "nope.db") + " does not exist (set create: true"},
		{"missing table", Config{Path: path, Table: "nope"}, `table "nope": table does not exist (set create: true to create it)`},
		{"missing column", Config{Path: path, Table: "narrow"}, `table "narrow" has no column "name"`},
		{"upsert without unique index", Config{Path: path, Table: "nokey", Mode: ModeUpsert, Key: []string{"id"}}, "ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint"},
		{"key not in records", Config{Path: path, Table: "t", Mode: ModeUpsert, Key: []string{"nope"}}, `key: column "nope" is not in the records`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			_, err := OpenSink(ctx, &c, sinkSchema, testEnv(dir, nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("nan", func(t *testing.T) {
		s, err := OpenSink(ctx, &Config{Path: path, Table: "t"}, sinkSchema, testEnv(dir, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Abort()
		err = s.Write(ctx, batchOf(row{1, "a", math.NaN(), true, t0}))
		if err == nil || !strings.Contains(err.Error(), `row 1, column "score": NaN cannot be stored in SQLite`) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("duplicate key fails commit", func(t *testing.T) {
		s, err := OpenSink(ctx, &Config{Path: path, Table: "t"}, sinkSchema, testEnv(dir, nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, batchOf(row{1, "a", 1.0, true, t0}, row{1, "b", 1.0, true, t0})); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx); err == nil || !strings.Contains(err.Error(), "UNIQUE constraint failed") {
			t.Errorf("Commit = %v", err)
		}
		if err := s.Abort(); err != nil {
			t.Errorf("Abort after failed Commit: %v", err)
		}
		if got := tableRows(t, path, "t"); len(got) != 0 {
			t.Errorf("rows after failed load: %v", got)
		}
	})
}
