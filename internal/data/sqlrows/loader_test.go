package sqlrows

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

var loadSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int},
	data.Field{Name: "name", Type: data.String},
	data.Field{Name: "score", Type: data.Float},
	data.Field{Name: "ok", Type: data.Bool},
	data.Field{Name: "at", Type: data.Timestamp},
)

var at = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

// sqliteDialect binds values the way SQLite stores them faithfully.
var sqliteDialect = Dialect{
	Name:      "testdb",
	Quote:     testDialect.Quote,
	MaxParams: 1000,
	FloatReason: func(v float64) string {
		if math.IsNaN(v) {
			return "NaN cannot be stored"
		}
		return ""
	},
	BoolArg: func(v bool) any {
		if v {
			return int64(1)
		}
		return int64(0)
	},
	TimeArg: func(t time.Time) any { return t.Format(time.RFC3339Nano) },
}

// batchOf builds a batch of loadSchema; a nil name is null.
func batchOf(rows ...[]any) *data.Batch {
	bd := fileio.NewBuilder(loadSchema, len(rows))
	for i, r := range rows {
		bd.AppendInt(0, r[0].(int64))
		if r[1] == nil {
			bd.AppendNull(1)
		} else {
			bd.AppendString(1, r[1].(string))
		}
		bd.AppendFloat(2, r[2].(float64))
		bd.AppendBool(3, r[3].(bool))
		bd.AppendTime(4, r[4].(time.Time))
		bd.EndRow(int64(i + 1))
	}
	return bd.B
}

func newLoader(t *testing.T, db *sql.DB, d *Dialect, l Load) *Loader {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if l.Target == "" {
		l.Target, l.Table, l.Into = `"t"`, `"t"`, `"t" of test.db`
	}
	ld := NewLoader(tx, loadSchema, d, l)
	t.Cleanup(func() { _ = ld.Rollback() })
	return ld
}

const loadTable = `CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, ok BOOLEAN, at TEXT)`

func TestLoaderWritesAndCommits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		load     Load
		rows     int
		gathered int // rows not yet sent after Write
	}{
		{"one statement", Load{RowsPerStatement: 100}, 5, 5},
		{"full statements and a rest", Load{RowsPerStatement: 2}, 5, 1},
		{"byte limit", Load{RowsPerStatement: 100, MaxBytes: 1}, 5, 0},
		{"capped by max params", Load{RowsPerStatement: 1000}, 250, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t, loadTable)
			l := newLoader(t, db, &sqliteDialect, tt.load)
			var rows [][]any
			for i := range tt.rows {
				rows = append(rows, []any{int64(i), "n", float64(i) / 2, i%2 == 0, at})
			}
			if err := l.Write(context.Background(), batchOf(rows...)); err != nil {
				t.Fatal(err)
			}
			if l.rows != tt.gathered {
				t.Errorf("rows gathered after Write = %d, want %d", l.rows, tt.gathered)
			}
			if err := l.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			var n int
			var sum float64
			if err := db.QueryRow("SELECT count(*), sum(score) FROM t").Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			wantSum := float64(tt.rows*(tt.rows-1)) / 4
			if n != tt.rows || sum != wantSum {
				t.Errorf("table has %d rows summing %g, want %d summing %g", n, sum, tt.rows, wantSum)
			}
		})
	}
}

func TestLoaderStatementSize(t *testing.T) {
	t.Parallel()
	db := newDB(t, loadTable)
	d := sqliteDialect
	d.MaxParams = 12 // 2 rows of 5 columns
	l := newLoader(t, db, &d, Load{RowsPerStatement: 100})
	if l.perStmt != 2 {
		t.Errorf("rows per statement = %d, want 2 (12 parameters / 5 columns)", l.perStmt)
	}
	if got, want := l.insertSQL(2), `INSERT INTO "t" ("id", "name", "score", "ok", "at") VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)`; got != want {
		t.Errorf("insertSQL(2) = %s\nwant %s", got, want)
	}
}

func TestLoaderStoredValues(t *testing.T) {
	t.Parallel()
	db := newDB(t, loadTable)
	l := newLoader(t, db, &sqliteDialect, Load{RowsPerStatement: 10})
	in := batchOf([]any{int64(1), nil, 0.25, true, at})
	if err := l.Write(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	var name sql.NullString
	var ok int64
	var ts string
	if err := db.QueryRow("SELECT name, ok, at FROM t").Scan(&name, &ok, &ts); err != nil {
		t.Fatal(err)
	}
	if name.Valid || ok != 1 || ts != "2024-05-01T12:00:00.123456Z" {
		t.Errorf("stored name %v, ok %d, at %q; want NULL, 1 (BoolArg), the timestamp to the microsecond (TimeArg)", name, ok, ts)
	}
}

func TestLoaderDigest(t *testing.T) {
	t.Parallel()
	rows := [][]any{{int64(1), "ab", 0.5, true, at}, {int64(2), nil, 1.0, false, at}}
	// The canonical encoding, written out by hand.
	var enc []byte
	for _, r := range rows {
		enc = append(enc, byte(data.Int))
		enc = binary.BigEndian.AppendUint64(enc, uint64(r[0].(int64)))
		if r[1] == nil {
			enc = append(enc, 0)
		} else {
			enc = append(enc, byte(data.String), byte(len(r[1].(string))))
			enc = append(enc, r[1].(string)...)
		}
		enc = append(enc, byte(data.Float))
		enc = binary.BigEndian.AppendUint64(enc, math.Float64bits(r[2].(float64)))
		b := byte(0)
		if r[3].(bool) {
			b = 1
		}
		enc = append(enc, byte(data.Bool), b)
		enc = append(enc, byte(data.Timestamp))
		enc = binary.BigEndian.AppendUint64(enc, uint64(at.Truncate(time.Microsecond).UnixMicro()))
	}
	sum := sha256.Sum256(enc)
	want := data.Output{Location: "here", Bytes: int64(len(enc)), SHA256: hex.EncodeToString(sum[:])}

	// The digest does not depend on how the dialect binds values.
	for name, d := range map[string]*Dialect{"sqlite binding": &sqliteDialect, "default binding": {Name: "x", Quote: testDialect.Quote, MaxParams: 1000}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t, loadTable)
			l := newLoader(t, db, d, Load{RowsPerStatement: 1})
			if err := l.Write(context.Background(), batchOf(rows...)); err != nil {
				t.Fatal(err)
			}
			if err := l.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, l.Output("here")); diff != "" {
				t.Errorf("Output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoaderErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(l *Loader) error
		want string
	}{
		{"unstorable float", func(l *Loader) error {
			return l.Write(ctx, batchOf([]any{int64(1), "a", 0.0, true, at}, []any{int64(2), "b", math.NaN(), true, at}))
		}, `testdb: writing "t": row 2, column "score": NaN cannot be stored`},
		{"wrong batch", func(l *Loader) error {
			b := data.NewBatch(data.MustSchema(data.Field{Name: "id", Type: data.String}), 0)
			return l.Write(ctx, b)
		}, "testdb: batch has 1 columns, sink was opened for 5"},
		{"write after commit", func(l *Loader) error {
			if err := l.Commit(ctx); err != nil {
				return err
			}
			return l.Write(ctx, batchOf())
		}, `testdb: writing "t": already committed or aborted`},
		{"commit after rollback", func(l *Loader) error {
			if err := l.Rollback(); err != nil {
				return err
			}
			return l.Commit(ctx)
		}, `testdb: committing "t": already committed or aborted`},
		{"insert fails", func(l *Loader) error {
			return l.Write(ctx, batchOf([]any{int64(1), "a", 0.0, true, at}, []any{int64(1), "b", 0.0, true, at}))
		}, `testdb: inserting into "t" of test.db: `},
		{"prepare fails", func(l *Loader) error {
			l.suffix = " ON CONFLICT (name) DO NOTHING" // no unique index on name
			return l.Prepare(ctx)
		}, "ON CONFLICT clause does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t, loadTable)
			l := newLoader(t, db, &sqliteDialect, Load{RowsPerStatement: 2})
			err := tt.run(l)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoaderRollback(t *testing.T) {
	t.Parallel()
	db := newDB(t, loadTable+"; INSERT INTO t (id) VALUES (99)")
	l := newLoader(t, db, &sqliteDialect, Load{RowsPerStatement: 2})
	if err := l.Write(context.Background(), batchOf([]any{int64(1), "a", 0.0, true, at}, []any{int64(2), "b", 0.0, true, at})); err != nil {
		t.Fatal(err)
	}
	if err := l.Rollback(); err != nil {
		t.Fatal(err)
	}
	if !l.Done() {
		t.Error("Done = false after Rollback")
	}
	if err := l.Rollback(); err != nil {
		t.Errorf("second Rollback = %v, want nil", err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows after Rollback = %d, %v; want the 1 there before", n, err)
	}
}
