package mysql

import (
	"context"
	"database/sql"
	"math"
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

// batchOf builds a batch of sinkSchema rows; a nil value is null.
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

// tableRows reads a table back through the source, ordered by id.
func tableRows(t *testing.T, table string) []row {
	t.Helper()
	c := &Config{DSN: testDSN(), Query: "SELECT id, name, score, ok, at FROM " + quoteIdent(table) + " ORDER BY id",
		Types: []data.Field{{Name: "ok", Type: data.Bool}}}
	return readAll(t, source(t, c, testEnv(nil)))
}

// openSink opens a sink that is aborted at cleanup if the test ends
// early, so that no open transaction blocks the table's DROP.
func openSink(t *testing.T, c *Config) data.Sink {
	t.Helper()
	s, err := OpenSink(context.Background(), c, sinkSchema, testEnv(nil))
	if err != nil {
		t.Fatalf("OpenSink: %v", err)
	}
	t.Cleanup(func() { s.Abort() })
	return s
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + quoteIdent(table)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const sinkDDL = "CREATE TABLE %s (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE, ok BOOLEAN, at DATETIME(6))"

func TestSinkModes(t *testing.T) {
	t.Parallel()
	db := admin(t)
	existing := row{int64(1), "old", 1.0, false, t0}
	in := []row{{1, "one", 1.5, true, t0}, {2, "two 'quoted' \\ `x`", nil, false, nil}, {3, nil, -2.5, nil, t0.Add(time.Hour)}}
	tests := []struct {
		name string
		cfg  Config
		in   []row
		want []row
	}{
		{"append", Config{Mode: ModeAppend}, in[1:], []row{existing, {int64(2), "two 'quoted' \\ `x`", nil, false, nil}, {int64(3), nil, -2.5, nil, t0.Add(time.Hour)}}},
		{"replace", Config{Mode: ModeReplace}, in[1:2], []row{{int64(2), "two 'quoted' \\ `x`", nil, false, nil}}},
		{"upsert", Config{Mode: ModeUpsert, Key: []string{"id"}}, in, []row{{int64(1), "one", 1.5, true, t0}, {int64(2), "two 'quoted' \\ `x`", nil, false, nil}, {int64(3), nil, -2.5, nil, t0.Add(time.Hour)}}},
		{"small statements", Config{Mode: ModeAppend, RowsPerStatement: 1}, in[1:], []row{existing, {int64(2), "two 'quoted' \\ `x`", nil, false, nil}, {int64(3), nil, -2.5, nil, t0.Add(time.Hour)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			table := newTable(t, db, sinkDDL)
			if _, err := db.Exec("INSERT INTO "+quoteIdent(table)+" VALUES (1, 'old', 1.0, false, ?)", t0); err != nil {
				t.Fatal(err)
			}
			c := tt.cfg
			c.DSN, c.Table = testDSN(), table
			ctx := context.Background()
			s := openSink(t, &c)
			if err := s.Write(ctx, batchOf(tt.in...)); err != nil {
				t.Fatalf("Write: %v", err)
			}
			// Nothing is visible before Commit, replace's DELETE included.
			if diff := cmp.Diff([]row{existing}, tableRows(t, table)); diff != "" {
				t.Errorf("before commit (-want +got):\n%s", diff)
			}
			if err := s.Commit(ctx); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if diff := cmp.Diff(tt.want, tableRows(t, table)); diff != "" {
				t.Errorf("after commit (-want +got):\n%s", diff)
			}
			out := s.(data.Outputer).Output()
			if !strings.HasPrefix(out.Location, "mysql://root@tcp(") || !strings.HasSuffix(out.Location, "."+table) || len(out.SHA256) != 64 || out.Bytes == 0 {
				t.Errorf("Output = %+v", out)
			}
		})
	}
}

func TestSinkAbortLeavesTableUntouched(t *testing.T) {
	t.Parallel()
	db := admin(t)
	for _, mode := range []string{ModeAppend, ModeReplace, ModeUpsert} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			table := newTable(t, db, sinkDDL)
			if _, err := db.Exec("INSERT INTO "+quoteIdent(table)+" VALUES (1, 'old', 1.0, false, ?)", t0); err != nil {
				t.Fatal(err)
			}
			c := &Config{DSN: testDSN(), Table: table, Mode: mode}
			if mode == ModeUpsert {
				c.Key = []string{"id"}
			}
			ctx := context.Background()
			s := openSink(t, c)
			if err := s.Write(ctx, batchOf(row{1, "new", 2.0, true, t0}, row{5, "five", 5.0, true, t0})); err != nil {
				t.Fatal(err)
			}
			if err := s.Abort(); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			if diff := cmp.Diff([]row{{int64(1), "old", 1.0, false, t0}}, tableRows(t, table)); diff != "" {
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
	db := admin(t)
	ctx := context.Background()
	t.Run("commit", func(t *testing.T) {
		t.Parallel()
		table := newTable(t, db, "")
		s := openSink(t, &Config{DSN: testDSN(), Table: "test." + table, Create: true, Mode: ModeUpsert, Key: []string{"id", "name"}})
		in := []row{{1, "a", 0.5, true, t0}, {1, "b", math.MaxFloat64, false, t0}, {1, "a", 1.5, false, nil}}
		if err := s.Write(ctx, batchOf(in...)); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		want := []row{{int64(1), "a", 1.5, false, nil}, {int64(1), "b", math.MaxFloat64, false, t0}}
		if diff := cmp.Diff(want, tableRows(t, table)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("abort drops", func(t *testing.T) {
		t.Parallel()
		table := newTable(t, db, "")
		s := openSink(t, &Config{DSN: testDSN(), Table: table, Create: true})
		if err := s.Write(ctx, batchOf(row{1, "a", 0.5, true, t0})); err != nil {
			t.Fatal(err)
		}
		if err := s.Abort(); err != nil {
			t.Fatal(err)
		}
		cols, err := tableColumns(ctx, db, "test", table)
		if err != nil || len(cols) != 0 {
			t.Errorf("table after abort: columns %v, %v; want it dropped", cols, err)
		}
	})
}

func TestSinkErrors(t *testing.T) {
	t.Parallel()
	db := admin(t)
	ctx := context.Background()
	t.Run("upsert without unique index", func(t *testing.T) {
		t.Parallel()
		table := newTable(t, db, "CREATE TABLE %s (id BIGINT, name TEXT, score DOUBLE, ok BOOLEAN, at DATETIME(6))")
		_, err := OpenSink(ctx, &Config{DSN: testDSN(), Table: table, Mode: ModeUpsert, Key: []string{"id"}}, sinkSchema, testEnv(nil))
		if err == nil || !strings.Contains(err.Error(), "no primary key or unique index on exactly (id)") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("key not in records", func(t *testing.T) {
		t.Parallel()
		_, err := OpenSink(ctx, &Config{DSN: testDSN(), Table: "x", Mode: ModeUpsert, Key: []string{"nope"}}, sinkSchema, testEnv(nil))
		if err == nil || !strings.Contains(err.Error(), `key: column "nope" is not in the records`) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("nan", func(t *testing.T) {
		t.Parallel()
		table := newTable(t, db, sinkDDL)
		s := openSink(t, &Config{DSN: testDSN(), Table: table})
		err := s.Write(ctx, batchOf(row{1, "a", 0.5, true, t0}, row{2, "a", math.NaN(), true, t0}))
		if err == nil || !strings.Contains(err.Error(), `row 2, column "score": NaN cannot be stored in MySQL`) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("duplicate key in append", func(t *testing.T) {
		t.Parallel()
		table := newTable(t, db, sinkDDL)
		s := openSink(t, &Config{DSN: testDSN(), Table: table})
		if err := s.Write(ctx, batchOf(row{1, "a", 0.5, true, t0}, row{1, "b", 0.5, true, t0})); err != nil {
			t.Fatal(err)
		}
		err := s.Commit(ctx)
		if err == nil || !strings.Contains(err.Error(), "Duplicate entry") {
			t.Errorf("Commit = %v, want a duplicate key error", err)
		}
		if err := s.Abort(); err != nil {
			t.Errorf("Abort after failed Commit: %v", err)
		}
		if n := count(t, db, table); n != 0 {
			t.Errorf("%d rows after failed load", n)
		}
	})
	t.Run("wrong batch", func(t *testing.T) {
		t.Parallel()
		table := newTable(t, db, sinkDDL)
		s := openSink(t, &Config{DSN: testDSN(), Table: table})
		other := data.NewBatch(data.MustSchema(data.Field{Name: "id", Type: data.String}), 1)
		if err := s.Write(ctx, other); err == nil {
			t.Error("Write accepted a batch of another schema")
		}
	})
}

// Rows that together pass max_allowed_packet/2 are split over several
// statements instead of failing.
func TestSinkLargeValues(t *testing.T) {
	t.Parallel()
	db := admin(t)
	var maxPacket int
	if err := db.QueryRow("SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		t.Fatal(err)
	}
	table := newTable(t, db, "CREATE TABLE %s (id BIGINT PRIMARY KEY, name LONGTEXT, score DOUBLE, ok BOOLEAN, at DATETIME(6))")
	ctx := context.Background()
	s := openSink(t, &Config{DSN: testDSN(), Table: table})
	big := strings.Repeat("x", maxPacket/5)
	var rows []row
	for i := range 6 {
		rows = append(rows, row{i, big, nil, nil, nil})
	}
	if err := s.Write(ctx, batchOf(rows...)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var n, total int
	if err := db.QueryRow("SELECT COUNT(*), SUM(LENGTH(name)) FROM "+quoteIdent(table)).Scan(&n, &total); err != nil {
		t.Fatal(err)
	}
	if n != 6 || total != 6*len(big) {
		t.Errorf("got %d rows, %d bytes", n, total)
	}
}
