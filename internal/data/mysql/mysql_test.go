package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/datatest"
	"go.yaml.in/yaml/v3"
)

// testDSN is the server the tests use: SLUICE_TEST_MYSQL_DSN, or the local
// MariaDB that scripts/services.sh starts.
func testDSN() string {
	if d := os.Getenv("SLUICE_TEST_MYSQL_DSN"); d != "" {
		return d
	}
	return "root@tcp(127.0.0.1:3306)/test"
}

// admin opens a plain connection for setting up and checking tables.
func admin(t testing.TB) *sql.DB {
	t.Helper()
	mc, err := parseDSN(testDSN())
	if err != nil {
		t.Fatalf("SLUICE_TEST_MYSQL_DSN: %v", err)
	}
	mc.MultiStatements = true
	// A test that fails with a load open must not leave its cleanup
	// waiting for the table's lock forever.
	mc.Params = map[string]string{"lock_wait_timeout": "20"}
	dsn := mc.FormatDSN()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("MySQL/MariaDB at %s is unreachable (run scripts/services.sh): %v", redacted(mc), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newTable returns a table name unique to this test, dropped at cleanup,
// after running the DDL given with %s standing for the name.
func newTable(t testing.TB, db *sql.DB, ddl string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "sluice_t_" + hex.EncodeToString(b)
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + quoteIdent(name)) })
	if ddl != "" {
		if _, err := db.Exec(strings.ReplaceAll(ddl, "%s", quoteIdent(name))); err != nil {
			t.Fatalf("setting up %s: %v", name, err)
		}
	}
	return name
}

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

func testEnv(q data.Quarantine) data.Env {
	if q == nil {
		q = &quarantine{}
	}
	return data.Env{
		Dir: os.TempDir(),
		Expand: func(s string) (string, error) {
			s = strings.ReplaceAll(s, "{{ .LogicalDate }}", "2024-05-01")
			return strings.ReplaceAll(s, "${secret:dsn}", testDSN()), nil
		},
		Quarantine: q,
		BatchSize:  3,
	}
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
	tests := []struct {
		name, yaml, want string
	}{
		{"source", "dsn: x\nquery: SELECT 1\nargs: [a]\ntypes: {a: bool}", ""},
		{"sink", "dsn: x\ntable: db.t\nmode: upsert\nkey: [id]\ncreate: true\ntls: true", ""},
		{"no dsn", "query: SELECT 1", "dsn: required"},
		{"neither", "dsn: x", "query: required to read (or table: to write)"},
		{"both", "dsn: x\nquery: q\ntable: t", "query and table: set query to read or table to write, not both"},
		{"bad mode", "dsn: x\ntable: t\nmode: merge", `mode: want append, replace or upsert, got "merge"`},
		{"upsert without key", "dsn: x\ntable: t\nmode: upsert", "key: required for mode: upsert"},
		{"key without upsert", "dsn: x\ntable: t\nkey: [id]", "key: only for mode: upsert"},
		{"duplicate key", "dsn: x\ntable: t\nmode: upsert\nkey: [id, ID]", `key: "ID" listed twice`},
		{"bad tls", "dsn: x\ntable: t\ntls: maybe", `tls: want true, false or skip-verify, got "maybe"`},
		{"ca without verify", "dsn: x\ntable: t\ntls: skip-verify\nca_file: ca.pem", "ca_file: needs tls: true (the CA is used to verify the server)"},
		{"bad table", "dsn: x\ntable: a.b.c", `table: want name or database.name, got "a.b.c"`},
		{"empty table part", "dsn: x\ntable: a.", "table: want name or database.name"},
		{"negative batch", "dsn: x\nquery: q\nbatch_size: -1", "batch_size: must not be negative, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewConfig()
			dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
			dec.KnownFields(true)
			if err := dec.Decode(c); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitTable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{
		"t":              {"", "t"},
		"db.t":           {"db", "t"},
		"`my.db`.`t``x`": {"my.db", "t`x"},
	} {
		db, table, err := splitTable(in)
		if err != nil || db != want[0] || table != want[1] {
			t.Errorf("splitTable(%q) = %q, %q, %v; want %q, %q", in, db, table, err, want[0], want[1])
		}
	}
	if got := quoteIdent("a`b"); got != "`a``b`" {
		t.Errorf("quoteIdent = %s", got)
	}
}

func TestRequireTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, class string
		cfg         Config
		ok          bool
	}{
		{"internal remote plain", "internal", Config{DSN: "u:p@tcp(db.example.com:3306)/x"}, true},
		{"public remote plain", "public", Config{DSN: "u:p@tcp(db.example.com:3306)/x"}, true},
		{"confidential remote plain", "confidential", Config{DSN: "u:p@tcp(db.example.com:3306)/x"}, false},
		{"restricted remote plain", "restricted", Config{DSN: "u:p@tcp(10.0.0.5:3306)/x"}, false},
		{"unknown class fails closed", "secret", Config{DSN: "u:p@tcp(10.0.0.5:3306)/x"}, false},
		{"confidential tls setting", "confidential", Config{DSN: "u:p@tcp(db.example.com:3306)/x", TLS: "true"}, true},
		{"confidential ca_file", "confidential", Config{DSN: "u:p@tcp(db.example.com:3306)/x", CAFile: "ca.pem"}, true},
		{"confidential tls in dsn", "confidential", Config{DSN: "u:p@tcp(db.example.com:3306)/x?tls=true"}, true},
		{"skip-verify setting", "confidential", Config{DSN: "u:p@tcp(db.example.com:3306)/x", TLS: "skip-verify"}, false},
		{"skip-verify in dsn", "restricted", Config{DSN: "u:p@tcp(db.example.com:3306)/x?tls=skip-verify"}, false},
		{"preferred in dsn", "restricted", Config{DSN: "u:p@tcp(db.example.com:3306)/x?tls=preferred"}, false},
		{"tls false overrides dsn", "restricted", Config{DSN: "u:p@tcp(db.example.com:3306)/x?tls=true", TLS: "false"}, false},
		{"loopback v4", "restricted", Config{DSN: "root@tcp(127.0.0.1:3306)/test"}, true},
		{"loopback v6", "restricted", Config{DSN: "root@tcp([::1]:3306)/test"}, true},
		{"localhost", "confidential", Config{DSN: "root@tcp(localhost:3306)/test"}, true},
		{"unix socket", "restricted", Config{DSN: "root@unix(/run/mysqld/mysqld.sock)/test"}, true},
		{"secret password loopback", "restricted", Config{DSN: "app:${secret:pw}@tcp(127.0.0.1:3306)/test"}, true},
		{"secret whole dsn", "restricted", Config{DSN: "${secret:dsn}"}, false},
		{"templated host", "confidential", Config{DSN: "app@tcp({{ .Params.host }}:3306)/test"}, false},
		{"secret whole dsn with tls", "restricted", Config{DSN: "${secret:dsn}", TLS: "true"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := RequireTLS(&tt.cfg, tt.class)
			if tt.ok && err != nil {
				t.Errorf("RequireTLS = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrTLSRequired) {
				t.Errorf("RequireTLS = %v, want ErrTLSRequired", err)
			}
			if err != nil && strings.Contains(err.Error(), "u:p") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	if err := RequireTLS("dsn", "restricted"); err == nil {
		t.Error("RequireTLS accepted a non-config")
	}
}

// The loopback exemption for real: a restricted pipeline may use the local
// server without TLS, and asking for TLS from a server without it fails
// rather than falling back to plain text.
func TestTLSAgainstServer(t *testing.T) {
	t.Parallel()
	db := admin(t)
	c := &Config{DSN: testDSN(), Query: "SELECT 1 AS one"}
	if err := RequireTLS(c, "restricted"); err != nil {
		t.Fatalf("RequireTLS(loopback) = %v", err)
	}
	if got := readAll(t, source(t, c, testEnv(nil))); !cmp.Equal(got, []row{{int64(1)}}) {
		t.Errorf("rows = %v", got)
	}
	var haveSSL string
	if err := db.QueryRow("SELECT @@have_ssl").Scan(&haveSSL); err != nil {
		t.Fatal(err)
	}
	if haveSSL == "YES" {
		t.Fatalf("the test server has TLS enabled; this test expects the plain-text local server")
	}
	_, err := OpenSource(context.Background(), &Config{DSN: testDSN(), TLS: "true", Query: "SELECT 1"}, testEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("tls: true against a server without TLS: error = %v, want a TLS error", err)
	}
	_, err = OpenSource(context.Background(), &Config{DSN: testDSN() + "?tls=skip-verify", TLS: "true", Query: "SELECT 1"}, testEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "set both in the dsn") {
		t.Errorf("tls in dsn and setting: error = %v", err)
	}
}

func TestTypeMapping(t *testing.T) {
	t.Parallel()
	db := admin(t)
	table := newTable(t, db, `CREATE TABLE %s (
		id INT PRIMARY KEY, ti TINYINT, flag TINYINT(1), big BIGINT UNSIGNED, f FLOAT, d DOUBLE, dec1 DECIMAL(20,6),
		c CHAR(3), vc VARCHAR(20), tx TEXT, e ENUM('a','b'), j JSON, dt DATETIME(6), ts TIMESTAMP(3) NULL, dd DATE,
		yr YEAR, b1 BIT(1), b9 BIT(9), tm TIME)`)
	_, err := db.Exec("SET time_zone = '+00:00'; INSERT INTO " + quoteIdent(table) + ` VALUES
		(1, -5, 1, 18446744073709551, 1.5, 2.25, 12345678901234.123456, 'abc', 'héllo', 'long text', 'b', '{"k": [1, 2]}',
		 '2024-05-01 10:30:00.123456', '2024-05-01 10:30:00.5', '2024-05-01', 2024, b'1', b'100000001', '12:34:56'),
		(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{DSN: "${secret:dsn}", Query: "SELECT * FROM " + quoteIdent(table) + " ORDER BY id", Types: []data.Field{{Name: "flag", Type: data.Bool}}}
	src := source(t, c, testEnv(nil))
	wantSchema := "id:int, ti:int, flag:bool, big:int, f:float, d:float, dec1:string, c:string, vc:string, tx:string, e:string, j:string, " +
		"dt:timestamp, ts:timestamp, dd:timestamp, yr:int, b1:int, b9:int, tm:string"
	if got := src.Schema().String(); got != wantSchema {
		t.Errorf("schema:\n got %s\nwant %s", got, wantSchema)
	}
	got := readAll(t, src)
	want := []row{
		{int64(1), int64(-5), true, int64(18446744073709551), 1.5, 2.25, "12345678901234.123456", "abc", "héllo", "long text", "b", `{"k": [1, 2]}`,
			time.Date(2024, 5, 1, 10, 30, 0, 123456000, time.UTC), time.Date(2024, 5, 1, 10, 30, 0, 500000000, time.UTC),
			time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), int64(2024), int64(1), int64(257), "12:34:56"},
		{int64(2), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	// The same through the binary protocol (a query with arguments).
	c.Query = "SELECT * FROM " + quoteIdent(table) + " WHERE id >= ? ORDER BY id"
	c.Args = []string{"1"}
	if diff := cmp.Diff(want, readAll(t, source(t, c, testEnv(nil)))); diff != "" {
		t.Errorf("rows with args (-want +got):\n%s", diff)
	}
}

func TestQuarantine(t *testing.T) {
	t.Parallel()
	db := admin(t)
	table := newTable(t, db, "CREATE TABLE %s (n INT, u BIGINT UNSIGNED, flag TINYINT, s VARBINARY(10))")
	if _, err := db.Exec("INSERT INTO " + quoteIdent(table) + ` VALUES (1, 5, 1, 'ok'), (2, 18446744073709551615, 0, 'ok'),
		(3, 7, 5, 'ok'), (4, 8, 0, X'FF00')`); err != nil {
		t.Fatal(err)
	}
	q := &quarantine{}
	c := &Config{DSN: testDSN(), Query: "SELECT * FROM " + quoteIdent(table) + " ORDER BY n",
		Types: []data.Field{{Name: "flag", Type: data.Bool}}}
	got := readAll(t, source(t, c, testEnv(q)))
	if diff := cmp.Diff([]row{{int64(1), int64(5), true, "ok"}}, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	want := []data.Reject{
		{Pos: "query row 2", Reason: `column "u": 18446744073709551615 is out of range for int (64-bit signed)`, Raw: `{"n":2,"u":18446744073709551615,"flag":0,"s":"ok"}`},
		{Pos: "query row 3", Reason: `column "flag": "5" is not a bool (want 0 or 1)`, Raw: `{"n":3,"u":7,"flag":5,"s":"ok"}`},
		{Pos: "query row 4", Reason: `column "s": value is not valid UTF-8 text`, Raw: "{\"n\":4,\"u\":8,\"flag\":0,\"s\":\"\uFFFD\\u0000\"}"},
	}
	if diff := cmp.Diff(want, q.rejs); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	c.Types = []data.Field{{Name: "nope", Type: data.Bool}}
	if _, err := OpenSource(context.Background(), c, testEnv(q)); err == nil || !strings.Contains(err.Error(), `types: column "nope" is not in the query's result`) {
		t.Errorf("unknown types column: error = %v", err)
	}
}

func TestArgsAreBound(t *testing.T) {
	t.Parallel()
	db := admin(t)
	table := newTable(t, db, "CREATE TABLE %s (id INT, name TEXT, day DATE)")
	hostile := []string{
		"x' OR '1'='1",
		`'; DROP TABLE ` + table + `; --`,
		`\' OR 1=1 -- `,
		"? OR 1=1",
		"名前\x00nul",
	}
	for i, h := range hostile {
		if _, err := db.Exec("INSERT INTO "+quoteIdent(table)+" VALUES (?, ?, '2024-05-01')", i, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("INSERT INTO " + quoteIdent(table) + " VALUES (99, 'plain', '2024-05-02')"); err != nil {
		t.Fatal(err)
	}
	for i, h := range hostile {
		t.Run(strings.ToValidUTF8(h[:4], "_"), func(t *testing.T) {
			c := &Config{DSN: testDSN(), Query: "SELECT id, name FROM " + quoteIdent(table) + " WHERE name = ? AND day = ?", Args: []string{h, "{{ .LogicalDate }}"}}
			got := readAll(t, source(t, c, testEnv(nil)))
			if diff := cmp.Diff([]row{{int64(i), h}}, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + quoteIdent(table)).Scan(&n); err != nil || n != len(hostile)+1 {
		t.Errorf("table after hostile args: count = %d, %v", n, err)
	}
}

func TestStream100k(t *testing.T) {
	t.Parallel()
	const n = 100_000
	env := testEnv(nil)
	env.BatchSize = 4096
	c := &Config{DSN: testDSN(), Query: "SELECT seq AS id, CONCAT('name-', seq) AS name FROM seq_1_to_100000"}
	src := source(t, c, env)
	var rows, sum int64
	batches := 0
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.Len > 4096 {
			t.Fatalf("batch of %d rows, want at most 4096", b.Len)
		}
		batches++
		for r := 0; r < b.Len; r++ {
			rows++
			sum += b.Cols[0].Ints[r]
			if b.Pos[r] != rows {
				t.Fatalf("row %d has pos %d", rows, b.Pos[r])
			}
		}
	}
	if rows != n || sum != n*(n+1)/2 || batches != (n+4095)/4096 {
		t.Errorf("read %d rows in %d batches, sum %d", rows, batches, sum)
	}
}

func TestConnectionFailures(t *testing.T) {
	t.Parallel()
	admin(t)
	mc, _ := parseDSN(testDSN())
	base := *mc
	tests := []struct {
		name, user, pass, want string
	}{
		{"wrong password", "root", "s3cr3t-wrong", "Access denied"},
		{"no such user", "sluice_no_such_user", "s3cr3t-other", "Access denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := base
			m.User, m.Passwd = tt.user, tt.pass
			for _, c := range []*Config{{DSN: m.FormatDSN(), Query: "SELECT 1"}, {DSN: m.FormatDSN(), Table: "t"}} {
				var err error
				if c.Query != "" {
					_, err = OpenSource(context.Background(), c, testEnv(nil))
				} else {
					_, err = OpenSink(context.Background(), c, data.MustSchema(data.Field{Name: "a", Type: data.Int}), testEnv(nil))
				}
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error = %v, want %q", err, tt.want)
				}
				if err != nil && strings.Contains(err.Error(), tt.pass) {
					t.Errorf("error shows the password: %v", err)
				}
			}
		})
	}
	t.Run("bad dsn", func(t *testing.T) {
		t.Parallel()
		_, err := OpenSource(context.Background(), &Config{DSN: "root:pw@127.0.0.1:3306", Query: "SELECT 1"}, testEnv(nil))
		if err == nil || !strings.Contains(err.Error(), "mysql: dsn: want user:password@tcp(host:3306)/database") || strings.Contains(err.Error(), "pw") {
			t.Errorf("error = %v", err)
		}
	})
}

func TestMissingTable(t *testing.T) {
	t.Parallel()
	db := admin(t)
	table := newTable(t, db, "")
	_, err := OpenSource(context.Background(), &Config{DSN: testDSN(), Query: "SELECT * FROM " + quoteIdent(table)}, testEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "running query") || !strings.Contains(err.Error(), "doesn't exist") {
		t.Errorf("source error = %v", err)
	}
	_, err = OpenSink(context.Background(), &Config{DSN: testDSN(), Table: table}, data.MustSchema(data.Field{Name: "a", Type: data.Int}), testEnv(nil))
	if !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), table) {
		t.Errorf("sink error = %v, want ErrNoTable naming %s", err, table)
	}
	other := newTable(t, db, "CREATE TABLE %s (a INT)")
	_, err = OpenSink(context.Background(), &Config{DSN: testDSN(), Table: other}, data.MustSchema(data.Field{Name: "b", Type: data.Int}), testEnv(nil))
	if err == nil || !strings.Contains(err.Error(), `has no column "b"`) {
		t.Errorf("missing column error = %v", err)
	}
}

// A connection killed while the result streams is an error from Next, not
// a hang and not a short read passed off as the end of input.
func TestKilledMidStream(t *testing.T) {
	t.Parallel()
	db := admin(t)
	env := testEnv(nil)
	env.BatchSize = 1000
	c := &Config{DSN: testDSN(), Query: "SELECT CONNECTION_ID() AS cid, seq FROM seq_1_to_5000000"}
	src := source(t, c, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("KILL ?", b.Cols[0].Ints[0]); err != nil {
		t.Fatalf("KILL: %v", err)
	}
	rows := int64(b.Len)
	for {
		b, err = src.Next(ctx)
		if err != nil {
			break
		}
		rows += int64(b.Len)
	}
	if errors.Is(err, data.ErrEndOfInput) || ctx.Err() != nil {
		t.Fatalf("after KILL: Next = %v after %d rows, want a connection error", err, rows)
	}
	if !strings.Contains(err.Error(), "mysql: root@tcp(") || !strings.Contains(err.Error(), "reading row") {
		t.Errorf("error = %v", err)
	}
	if rows >= 5_000_000 {
		t.Errorf("read all %d rows despite the KILL", rows)
	}
}
