package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/internal/data"
)

var peopleSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int},
	data.Field{Name: "name", Type: data.String},
)

// people builds a batch of (id, name) rows named prefix-id.
func people(prefix string, ids ...int64) *data.Batch {
	b := data.NewBatch(peopleSchema, len(ids))
	for _, id := range ids {
		b.Cols[0].Ints = append(b.Cols[0].Ints, id)
		b.Cols[1].Strings = append(b.Cols[1].Strings, fmt.Sprintf("%s-%d", prefix, id))
		b.Len++
	}
	return b
}

func span(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// peopleTable creates a table of people holding rows 1..n named old-id.
func peopleTable(t *testing.T, conn *pgx.Conn, n int) string {
	t.Helper()
	name := tableName(t, conn)
	exec(t, conn, "CREATE TABLE "+name+" (id bigint PRIMARY KEY, name text NOT NULL)")
	exec(t, conn, "INSERT INTO "+name+" SELECT g, 'old-' || g FROM generate_series(1, $1::int) g", n)
	return name
}

func contents(t *testing.T, conn *pgx.Conn, table string) map[int64]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT id, name FROM "+table)
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	out := map[int64]string{}
	var id int64
	var name string
	_, err = pgx.ForEachRow(rows, []any{&id, &name}, func() error { out[id] = name; return nil })
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	return out
}

func count(t *testing.T, conn *pgx.Conn, table string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("counting %s: %v", table, err)
	}
	return n
}

func expect(prefix string, ids []int64, into map[int64]string) map[int64]string {
	if into == nil {
		into = map[int64]string{}
	}
	for _, id := range ids {
		into[id] = fmt.Sprintf("%s-%d", prefix, id)
	}
	return into
}

func openSink(t *testing.T, cfg *Config, schema *data.Schema) data.Sink {
	t.Helper()
	s, err := OpenSink(context.Background(), cfg, schema, testEnv(nil, nil))
	if err != nil {
		t.Fatalf("OpenSink: %v", err)
	}
	return s
}

// TestSinkModes loads with every mode, then commits or aborts, and checks
// the table before Commit (untouched, as seen by another session) and
// after.
func TestSinkModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    string
		key     []string
		batches []*data.Batch
		commit  bool
		want    map[int64]string
	}{
		{"append", ModeAppend, nil, []*data.Batch{people("new", 4, 5), people("new", 6)}, true,
			expect("new", []int64{4, 5, 6}, expect("old", span(1, 3), nil))},
		{"append aborted", ModeAppend, nil, []*data.Batch{people("new", 4, 5)}, false, expect("old", span(1, 3), nil)},
		{"replace", ModeReplace, nil, []*data.Batch{people("new", 2, 7), people("new", 8)}, true, expect("new", []int64{2, 7, 8}, nil)},
		{"replace with nothing", ModeReplace, nil, nil, true, map[int64]string{}},
		{"replace aborted", ModeReplace, nil, []*data.Batch{people("new", 1)}, false, expect("old", span(1, 3), nil)},
		{"upsert", ModeUpsert, []string{"id"}, []*data.Batch{people("new", 2, 4), people("newer", 4, 5)}, true,
			expect("newer", []int64{4, 5}, expect("new", []int64{2}, expect("old", []int64{1, 3}, nil)))},
		{"upsert aborted", ModeUpsert, []string{"id"}, []*data.Batch{people("new", 2, 4)}, false, expect("old", span(1, 3), nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn := admin(t)
			table := peopleTable(t, conn, 3)
			before := contents(t, conn, table)
			sink := openSink(t, &Config{DSN: testDSN(), Table: "public." + table, Mode: tt.mode, Key: tt.key}, peopleSchema)
			for _, b := range tt.batches {
				if err := sink.Write(context.Background(), b); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			if diff := cmp.Diff(before, contents(t, conn, table)); diff != "" {
				t.Errorf("before Commit another session sees a changed table (-want +got):\n%s", diff)
			}
			if tt.commit {
				if err := sink.Commit(context.Background()); err != nil {
					t.Fatalf("Commit: %v", err)
				}
				if out := sink.(data.Outputer).Output(); !strings.HasSuffix(out.Location, "?table=public."+table) || strings.Contains(out.Location, "@") {
					t.Errorf("Output().Location = %q", out.Location)
				}
			} else if err := sink.Abort(); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			if diff := cmp.Diff(tt.want, contents(t, conn, table)); diff != "" {
				t.Errorf("after Commit/Abort (-want +got):\n%s", diff)
			}
			if err := sink.Abort(); err != nil {
				t.Errorf("Abort after Commit/Abort: %v", err)
			}
		})
	}
}

// TestSinkReplaceIsAtomic polls the table from another session while a
// replace loads: every count seen is the old one until Commit, then the
// new one, never an empty or half-loaded table, and the reader is never
// blocked.
func TestSinkReplaceIsAtomic(t *testing.T) {
	t.Parallel()
	conn := admin(t)
	const old, fresh, batch = 5000, 20000, 2000
	table := peopleTable(t, conn, old)
	reader := admin(t)
	exec(t, reader, "SET statement_timeout = '2s'") // a blocked reader fails instead of hanging

	stop := make(chan struct{})
	seen := make(chan int, 1)
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		counts := map[int]bool{}
		defer func() {
			for c := range counts {
				if c != old && c != fresh {
					seen <- c
					return
				}
			}
		}()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int
			if err := reader.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				readErr = err
				return
			}
			counts[n] = true
		}
	}()

	sink := openSink(t, &Config{DSN: testDSN(), Table: table, Mode: ModeReplace}, peopleSchema)
	for from := int64(1); from <= fresh; from += batch {
		if err := sink.Write(context.Background(), people("new", span(from, from+batch-1)...)); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if got := count(t, conn, table); got != old {
		t.Errorf("fully loaded but not committed: another session counts %d rows, want %d", got, old)
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := count(t, conn, table); got != fresh {
		t.Errorf("after Commit: %d rows, want %d", got, fresh)
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("concurrent reader: %v", readErr)
	}
	select {
	case n := <-seen:
		t.Fatalf("a concurrent reader saw %d rows during the replace; want only %d or %d", n, old, fresh)
	default:
	}
}

// TestSinkTypes loads every data type, including strings into numeric,
// uuid, jsonb and date columns, which is how a postgres-to-postgres copy
// of those types round-trips.
func TestSinkTypes(t *testing.T) {
	t.Parallel()
	conn := admin(t)
	table := tableName(t, conn)
	exec(t, conn, "CREATE TABLE "+table+" (s text, i int4, f float8, b bool, ts timestamptz, n numeric, u uuid, j jsonb, d date, extra text DEFAULT 'dflt')")
	schema := data.MustSchema(
		data.Field{Name: "s", Type: data.String}, data.Field{Name: "i", Type: data.Int}, data.Field{Name: "f", Type: data.Float},
		data.Field{Name: "b", Type: data.Bool}, data.Field{Name: "ts", Type: data.Timestamp}, data.Field{Name: "n", Type: data.String},
		data.Field{Name: "u", Type: data.String}, data.Field{Name: "j", Type: data.String}, data.Field{Name: "d", Type: data.String},
	)
	b := data.NewBatch(schema, 2)
	ts := time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)
	b.Cols[0].Strings = []string{"it's", ""}
	b.Cols[1].Ints = []int64{42, 0}
	b.Cols[2].Floats = []float64{2.5, 0}
	b.Cols[3].Bools = []bool{true, false}
	b.Cols[4].Times = []time.Time{ts, {}}
	b.Cols[5].Strings = []string{"12345678901234567890.0123456789", ""}
	b.Cols[6].Strings = []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", ""}
	b.Cols[7].Strings = []string{`{"a": [1, 2]}`, ""}
	b.Cols[8].Strings = []string{"2024-05-01", ""}
	b.Len = 2
	for i := range b.Cols {
		b.Cols[i].SetNull(1, 2)
	}
	sink := openSink(t, &Config{DSN: testDSN(), Table: table}, schema)
	if err := sink.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	rows, err := conn.Query(context.Background(), "SELECT s, i, f, b, ts, n::text, u::text, j::text, d::text, extra FROM "+table+" ORDER BY s NULLS LAST")
	if err != nil {
		t.Fatalf("reading back: %v", err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		t.Fatalf("reading back: %v", err)
	}
	for _, r := range got {
		if tv, ok := r[4].(time.Time); ok {
			r[4] = tv.UTC()
		}
	}
	want := [][]any{
		{"it's", int32(42), 2.5, true, ts, "12345678901234567890.0123456789", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"a": [1, 2]}`, "2024-05-01", "dflt"},
		{nil, nil, nil, nil, nil, nil, nil, nil, nil, "dflt"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestSinkCreate(t *testing.T) {
	t.Parallel()
	conn := admin(t)
	table := tableName(t, conn)
	schema := data.MustSchema(
		data.Field{Name: "id", Type: data.Int}, data.Field{Name: "Mixed Case", Type: data.String},
		data.Field{Name: "f", Type: data.Float}, data.Field{Name: "b", Type: data.Bool}, data.Field{Name: "ts", Type: data.Timestamp},
	)
	cfg := &Config{DSN: testDSN(), Table: table, Create: true}
	b := data.NewBatch(schema, 1)
	b.Cols[0].Ints, b.Cols[1].Strings, b.Cols[2].Floats = []int64{1}, []string{"x"}, []float64{1.5}
	b.Cols[3].Bools, b.Cols[4].Times, b.Len = []bool{true}, []time.Time{time.Unix(0, 0).UTC()}, 1

	// Aborted: the table is not created either.
	sink := openSink(t, cfg, schema)
	if err := sink.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	var exists bool
	if err := conn.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil || exists {
		t.Fatalf("after Abort, table exists = %v (%v), want false", exists, err)
	}

	sink = openSink(t, cfg, schema)
	if err := sink.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	rows, err := conn.Query(context.Background(),
		"SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position", table)
	if err != nil {
		t.Fatalf("reading columns: %v", err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("reading columns: %v", err)
	}
	want := []string{"id bigint", "Mixed Case text", "f double precision", "b boolean", "ts timestamp with time zone"}
	if diff := cmp.Diff(want, cols); diff != "" {
		t.Errorf("created columns (-want +got):\n%s", diff)
	}
	if got := count(t, conn, table); got != 1 {
		t.Errorf("%d rows, want 1", got)
	}
}

func TestSinkErrors(t *testing.T) {
	t.Parallel()
	conn := admin(t)
	table := peopleTable(t, conn, 1)
	noPK := tableName(t, conn)
	exec(t, conn, "CREATE TABLE "+noPK+" (id bigint, name text)")
	base := mustParse(t, testDSN())
	tests := []struct {
		name   string
		cfg    Config
		schema *data.Schema
		want   string
		is     error
	}{
		{"missing table", Config{DSN: testDSN(), Table: "sluice_no_such_table"}, peopleSchema, `table "sluice_no_such_table": table does not exist`, ErrTableNotFound},
		{"missing schema", Config{DSN: testDSN(), Table: "no_such_schema.t"}, peopleSchema, `table "no_such_schema"."t": table does not exist`, ErrTableNotFound},
		{"missing column", Config{DSN: testDSN(), Table: table}, data.MustSchema(data.Field{Name: "id", Type: data.Int}, data.Field{Name: "email", Type: data.String}),
			`has no column "email" (it has id, name)`, nil},
		{"key not in records", Config{DSN: testDSN(), Table: table, Mode: ModeUpsert, Key: []string{"uid"}}, peopleSchema, `key: column "uid" is not in the records`, nil},
		{"unknown role", Config{DSN: fmt.Sprintf("postgres://sluice_no_such_role:wrong-password@%s:%d/%s", base.Host, base.Port, base.Database), Table: table},
			peopleSchema, `role "sluice_no_such_role" does not exist`, nil},
		{"reading settings", Config{DSN: testDSN(), Table: table, FetchSize: 10}, peopleSchema, "apply only to reading", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := OpenSink(context.Background(), &tt.cfg, tt.schema, testEnv(nil, nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("OpenSink = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}

	t.Run("upsert without a unique key", func(t *testing.T) {
		t.Parallel()
		sink := openSink(t, &Config{DSN: testDSN(), Table: noPK, Mode: ModeUpsert, Key: []string{"id"}}, peopleSchema)
		defer sink.Abort()
		if err := sink.Write(context.Background(), people("x", 1)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		err := sink.Commit(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no unique or exclusion constraint matching the ON CONFLICT") {
			t.Fatalf("Commit = %v, want the missing constraint named", err)
		}
	})
	t.Run("bad value fails the load", func(t *testing.T) {
		t.Parallel()
		conn := admin(t) // a pgx.Conn serves one goroutine at a time
		wide := tableName(t, conn)
		exec(t, conn, "CREATE TABLE "+wide+" (id int4, name text NOT NULL)")
		sink := openSink(t, &Config{DSN: testDSN(), Table: wide}, peopleSchema)
		defer sink.Abort()
		b := people("x", 1, 2, 1<<40)
		b.Pos = []int64{10, 11, 12}
		err := sink.Write(context.Background(), b)
		if err == nil || !strings.Contains(err.Error(), "source position 12") || !strings.Contains(err.Error(), "greater than maximum value for int4") {
			t.Fatalf("Write = %v, want the bad row's position and the reason", err)
		}
		if err := sink.Abort(); err != nil {
			t.Fatalf("Abort after a failed Write: %v", err)
		}
		if got := count(t, conn, wide); got != 0 {
			t.Errorf("%d rows after the failed load, want 0", got)
		}
	})
	t.Run("connection killed before commit", func(t *testing.T) {
		t.Parallel()
		conn := admin(t) // a pgx.Conn serves one goroutine at a time
		tbl := peopleTable(t, conn, 2)
		sink := openSink(t, &Config{DSN: testDSN(), Table: tbl, Mode: ModeReplace}, peopleSchema)
		defer sink.Abort()
		if err := sink.Write(context.Background(), people("new", 7)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		exec(t, conn, "SELECT pg_terminate_backend($1)", sink.(*Sink).conn.PgConn().PID())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := sink.Write(ctx, people("new", 8))
		if err == nil {
			err = sink.Commit(ctx)
		}
		if err == nil || ctx.Err() != nil {
			t.Fatalf("write or commit after the backend was terminated = %v, want a connection error", err)
		}
		if diff := cmp.Diff(expect("old", span(1, 2), nil), contents(t, conn, tbl)); diff != "" {
			t.Errorf("table after the failed load (-want +got):\n%s", diff)
		}
	})
}
