package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/datatest"
)

func openSource(t *testing.T, cfg *Config, env data.Env) data.Source {
	t.Helper()
	src, err := OpenSource(context.Background(), cfg, env)
	if err != nil {
		t.Fatalf("OpenSource: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

func TestSourceTypes(t *testing.T) {
	t.Parallel()
	admin(t)
	q := &rejects{}
	query := `SELECT * FROM (VALUES
		('text', 'vc'::varchar, 'ch'::char(3), 1::int2, 2::int4, 3::int8, 1.5::float4, 2.25::float8, true,
		 '2024-05-01 12:34:56.789012'::timestamp, '2024-05-01 12:00:00+02'::timestamptz, '2024-05-01'::date,
		 12345678901234567890.0123456789::numeric, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
		 '{"a": 1}'::json, '{"b": [1, 2]}'::jsonb, ARRAY[1,2,3], '\x0102'::bytea, '1 day'::interval),
		(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		('inf', 'vc', 'ch', 1, 2, 3, 1, 2, false, 'infinity', '-infinity', 'infinity', 0, NULL, NULL, NULL, NULL, NULL, NULL)
	) AS t(s, vc, ch, i2, i4, i8, f4, f8, b, ts, tstz, d, n, u, j, jb, arr, by, iv)`
	src := openSource(t, &Config{DSN: testDSN(), Query: query}, testEnv(q, nil))

	wantSchema := "s:string, vc:string, ch:string, i2:int, i4:int, i8:int, f4:float, f8:float, b:bool, " +
		"ts:timestamp, tstz:timestamp, d:timestamp, n:string, u:string, j:string, jb:string, arr:string, by:string, iv:string"
	if got := src.Schema().String(); got != wantSchema {
		t.Errorf("schema:\n got %s\nwant %s", got, wantSchema)
	}
	rows, _ := datatest.ReadAll(t, src)
	want := []datatest.Row{
		{"text", "vc", "ch ", int64(1), int64(2), int64(3), 1.5, 2.25, true,
			time.Date(2024, 5, 1, 12, 34, 56, 789012000, time.UTC), time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
			"12345678901234567890.0123456789", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			`{"a": 1}`, `{"b": [1, 2]}`, "{1,2,3}", `\x0102`, "1 day"},
		make([]any, 19),
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	for _, r := range rows {
		for _, v := range r {
			if ts, ok := v.(time.Time); ok && ts.Location() != time.UTC {
				t.Errorf("timestamp %v is not in UTC", ts)
			}
		}
	}
	if len(q.rs) != 1 || !strings.Contains(q.rs[0].Reason, `column "ts": an infinite timestamp`) ||
		!strings.HasSuffix(q.rs[0].Pos, "query row 3") || !strings.Contains(q.rs[0].Raw, "ts=infinity, tstz=-infinity, d=infinity") {
		t.Errorf("rejects = %+v, want row 3 rejected for its infinite timestamp", q.rs)
	}
}

func TestSourceArgsAreValues(t *testing.T) {
	t.Parallel()
	conn := admin(t)
	victim := tableName(t, conn)
	exec(t, conn, "CREATE TABLE "+victim+" (id int)")
	hostile := "'; DROP TABLE " + victim + "; --"
	cfg := &Config{
		DSN:   testDSN(),
		Query: "SELECT $1::text AS s, $2::date AS d, length($1) AS n;",
		Args:  []string{hostile, "{{ .LogicalDate }}"},
	}
	rows, _ := datatest.ReadAll(t, openSource(t, cfg, testEnv(nil, nil)))
	want := []datatest.Row{{hostile, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), int64(len(hostile))}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	var exists bool
	if err := conn.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", victim).Scan(&exists); err != nil || !exists {
		t.Fatalf("table %s exists = %v (%v), want true", victim, exists, err)
	}
}

// TestSourceStreams reads 200k rows of about 200 bytes each (40 MB) in
// batches and checks the order, the batch sizes, and that the heap stays
// far below the size of the result.
func TestSourceStreams(t *testing.T) {
	t.Parallel()
	admin(t)
	const total, batch = 200_000, 5000
	cfg := &Config{
		DSN:       testDSN(),
		Query:     "SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, $1::int) g",
		Args:      []string{fmt.Sprint(total)},
		BatchSize: batch,
		FetchSize: 1500,
	}
	src := openSource(t, cfg, testEnv(nil, nil))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	var n, batches int64
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d rows: %v", n, err)
		}
		if b.Len > batch || (b.Len < batch && n+int64(b.Len) != total) {
			t.Fatalf("batch %d has %d rows, want %d", batches, b.Len, batch)
		}
		for i, id := range b.Cols[0].Ints {
			if id != n+int64(i)+1 || b.Pos[i] != id {
				t.Fatalf("row %d has id %d at position %d", n+int64(i)+1, id, b.Pos[i])
			}
		}
		n += int64(b.Len)
		batches++
		if batches%8 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if n != total || batches != total/batch {
		t.Fatalf("read %d rows in %d batches, want %d in %d", n, batches, total, total/batch)
	}
	if grew := int64(peak) - int64(base); grew > 8<<20 {
		t.Errorf("heap grew by %d MB while streaming a 40 MB result, want a batch or two", grew>>20)
	}
}

func TestSourceConnectionKilled(t *testing.T) {
	t.Parallel()
	conn := admin(t)
	cfg := &Config{DSN: testDSN(), Query: "SELECT g AS id FROM generate_series(1, 1000000) g", BatchSize: 1000}
	src := openSource(t, cfg, testEnv(nil, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := src.Next(ctx); err != nil {
		t.Fatalf("first Next: %v", err)
	}
	pid := src.(*Source).conn.PgConn().PID()
	var killed bool
	if err := conn.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, killed, err)
	}
	var err error
	rows := 1000
	for err == nil {
		var b *data.Batch
		b, err = src.Next(ctx)
		if err == nil {
			rows += b.Len
		}
	}
	if errors.Is(err, data.ErrEndOfInput) || ctx.Err() != nil {
		t.Fatalf("after the backend was terminated, Next = %v after %d rows; want a connection error", err, rows)
	}
	if !strings.Contains(err.Error(), "fetching rows after row") && !strings.Contains(err.Error(), "reading the result") {
		t.Errorf("error %q does not say where reading stopped", err)
	}
}

func TestSourceErrors(t *testing.T) {
	t.Parallel()
	admin(t)
	base := mustParse(t, testDSN())
	other := func(user, db string) string {
		return fmt.Sprintf("postgres://%s:wrong-password@%s:%d/%s", user, base.Host, base.Port, db)
	}
	// pg_hba on the test server trusts loopback connections, so a wrong
	// password is accepted; bad credentials are a role or database that
	// does not exist, which the server refuses the same way.
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown role", Config{DSN: other("sluice_no_such_role", base.Database), Query: "SELECT 1"}, `role "sluice_no_such_role" does not exist`},
		{"unknown database", Config{DSN: other(base.User, "sluice_no_such_db"), Query: "SELECT 1"}, `database "sluice_no_such_db" does not exist`},
		{"missing table", Config{DSN: testDSN(), Query: "SELECT * FROM sluice_no_such_table"}, `relation "sluice_no_such_table" does not exist`},
		{"syntax error", Config{DSN: testDSN(), Query: "SELEC 1"}, "syntax error"},
		{"a write", Config{DSN: testDSN(), Query: "INSERT INTO sluice_no_such_table VALUES (1) RETURNING 1"}, "syntax error"},
		{"duplicate columns", Config{DSN: testDSN(), Query: "SELECT 1, 2"}, `"?column?": duplicate name`},
		{"missing arg", Config{DSN: testDSN(), Query: "SELECT $1::int AS a"}, "there is no parameter $1"},
		{"sink settings", Config{DSN: testDSN(), Query: "SELECT 1", Create: true}, "apply only to writing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := OpenSource(context.Background(), &tt.cfg, testEnv(nil, nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenSource = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

// TestSourceTLS connects for real: without sslmode the connection is
// encrypted; with the server's certificate as CA it is verified by name.
func TestSourceTLS(t *testing.T) {
	t.Parallel()
	conn := admin(t)
	var certFile string
	if err := conn.QueryRow(context.Background(), "SHOW ssl_cert_file").Scan(&certFile); err != nil {
		t.Fatalf("SHOW ssl_cert_file: %v", err)
	}
	base := mustParse(t, testDSN())
	url := fmt.Sprintf("postgres://%s@%s:%d/%s", base.User, base.Host, base.Port, base.Database)
	const query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
	tests := []struct {
		name    string
		cfg     Config
		wantSSL bool
		wantErr string
	}{
		{"default", Config{DSN: url}, true, ""},
		{"require", Config{DSN: url + "?sslmode=require"}, true, ""},
		{"disable", Config{DSN: url + "?sslmode=disable"}, false, ""},
		{"verified by ca", Config{DSN: url, TLS: TLS{CAFile: certFile, ServerName: "localhost"}}, true, ""},
		{"wrong server name", Config{DSN: url, TLS: TLS{CAFile: certFile, ServerName: "db.example.com"}}, false, "certificate is valid for localhost, not db.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.Query = query
			src, err := OpenSource(context.Background(), &cfg, testEnv(nil, nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("OpenSource = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenSource: %v", err)
			}
			defer src.Close()
			rows, _ := datatest.ReadAll(t, src)
			if diff := cmp.Diff([]datatest.Row{{tt.wantSSL}}, rows); diff != "" {
				t.Errorf("pg_stat_ssl.ssl (-want +got):\n%s", diff)
			}
		})
	}
}
