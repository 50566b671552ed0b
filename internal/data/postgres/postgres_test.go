package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/internal/data"
)

// testDSN is the server the tests use: PostgreSQL on loopback, with TLS.
func testDSN() string {
	if d := os.Getenv("SLUICE_TEST_POSTGRES_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test"
}

// admin opens a side connection for setting up and inspecting tables.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		t.Fatalf("cannot reach PostgreSQL at %s (set SLUICE_TEST_POSTGRES_DSN, or run scripts/services.sh): %v", location(mustParse(t, testDSN())), err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func mustParse(t testing.TB, dsn string) *pgx.ConnConfig {
	t.Helper()
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parsing test DSN: %v", err)
	}
	return cc
}

func exec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// tableName returns a table name no other test uses, dropped at cleanup.
func tableName(t testing.TB, conn *pgx.Conn) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sluice_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+name)
	})
	return name
}

// rejects records what a connector sends to quarantine.
type rejects struct {
	mu sync.Mutex
	rs []data.Reject
}

func (r *rejects) Reject(_ context.Context, rj data.Reject) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rs = append(r.rs, rj)
	return nil
}

// testEnv expands {{ .LogicalDate }} and ${secret:NAME} from secrets.
func testEnv(q data.Quarantine, secrets map[string]string) data.Env {
	if q == nil {
		q = &rejects{}
	}
	return data.Env{
		Dir: "/nonexistent",
		Expand: func(s string) (string, error) {
			s = strings.ReplaceAll(s, "{{ .LogicalDate }}", "2024-05-01")
			for k, v := range secrets {
				s = strings.ReplaceAll(s, "${secret:"+k+"}", v)
			}
			if strings.Contains(s, "${secret:") {
				return "", errors.New("unknown secret")
			}
			return s, nil
		},
		Quarantine: q,
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"source", Config{DSN: "postgres://h/db", Query: "SELECT 1"}, ""},
		{"sink", Config{DSN: "host=h dbname=db", Table: "crm.customers", Mode: ModeReplace}, ""},
		{"upsert", Config{DSN: "${secret:d}", Table: "t", Mode: ModeUpsert, Key: []string{"id"}}, ""},
		{"no dsn", Config{Query: "SELECT 1"}, "dsn: required"},
		{"bad sslmode", Config{DSN: "postgres://u:hunter2@h/db?sslmode=bogus", Query: "SELECT 1"}, `dsn: sslmode "bogus"`},
		{"bad keyword dsn", Config{DSN: "host", Query: "SELECT 1"}, "dsn: not a URL"},
		{"unterminated quote", Config{DSN: "host='h", Query: "SELECT 1"}, "dsn: unterminated"},
		{"neither", Config{DSN: "postgres://h/db"}, "query (to read) or table (to write): required"},
		{"both", Config{DSN: "postgres://h/db", Query: "SELECT 1", Table: "t"}, "not both"},
		{"negative batch", Config{DSN: "postgres://h/db", Query: "SELECT 1", BatchSize: -1}, "batch_size"},
		{"negative fetch", Config{DSN: "postgres://h/db", Query: "SELECT 1", FetchSize: -1}, "fetch_size"},
		{"cert without key", Config{DSN: "postgres://h/db", Query: "SELECT 1", TLS: TLS{CertFile: "c.pem"}}, "cert_file and key_file"},
		{"bad mode", Config{DSN: "postgres://h/db", Table: "t", Mode: "merge"}, `mode: unknown mode "merge"`},
		{"upsert without key", Config{DSN: "postgres://h/db", Table: "t", Mode: ModeUpsert}, "key: required"},
		{"key without upsert", Config{DSN: "postgres://h/db", Table: "t", Mode: ModeAppend, Key: []string{"id"}}, "key: only for mode upsert"},
		{"duplicate key", Config{DSN: "postgres://h/db", Table: "t", Mode: ModeUpsert, Key: []string{"id", "id"}}, `key: "id" listed twice`},
		{"three-part table", Config{DSN: "postgres://h/db", Table: "a.b.c"}, "more than one dot"},
		{"empty table part", Config{DSN: "postgres://h/db", Table: "a."}, "empty part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("Validate() error leaks the password: %v", err)
			}
		})
	}
}

func TestRequireTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dsn, class string
		insecure         bool
	}{
		{"default is require", "postgres://u@db.example.com/x", "confidential", false},
		{"keyword default is require", "host=db.example.com dbname=x", "restricted", false},
		{"disable remote", "postgres://u@db.example.com/x?sslmode=disable", "confidential", true},
		{"prefer remote", "postgres://u@db.example.com/x?sslmode=prefer", "confidential", true},
		{"allow remote", "postgres://u@db.example.com/x?sslmode=allow", "restricted", true},
		{"keyword disable remote", "host=10.0.0.5 dbname=x sslmode=disable", "restricted", true},
		{"require remote", "postgres://u@db.example.com/x?sslmode=require", "restricted", false},
		{"verify-full remote", "postgres://u@db.example.com/x?sslmode=verify-full", "restricted", false},
		{"disable internal", "postgres://u@db.example.com/x?sslmode=disable", "internal", false},
		{"disable public", "postgres://u@db.example.com/x?sslmode=disable", "public", false},
		{"disable 127.0.0.1", "postgres://u@127.0.0.1/x?sslmode=disable", "restricted", false},
		{"disable 127.3.4.5", "postgres://u@127.3.4.5/x?sslmode=disable", "restricted", false},
		{"disable ::1", "postgres://u@[::1]:5432/x?sslmode=disable", "restricted", false},
		{"disable localhost", "postgres://u@localhost/x?sslmode=disable", "restricted", false},
		{"disable unix socket", "host=/var/run/postgresql dbname=x sslmode=disable", "restricted", false},
		{"disable one remote of many", "postgres://u@127.0.0.1,db.example.com/x?sslmode=disable", "confidential", true},
		{"password in a secret", "postgres://u:${secret:pw}@db.example.com/x?sslmode=disable", "confidential", true},
		{"host in a secret", "postgres://u@${secret:host}/x?sslmode=disable", "confidential", false},
		{"whole dsn in a secret", "${secret:dsn}", "confidential", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := &Config{DSN: tt.dsn, Query: "SELECT 1"}
			err := RequireTLS(cfg, tt.class)
			if got := errors.Is(err, ErrInsecureTransport); got != tt.insecure || (err != nil && !got) {
				t.Fatalf("RequireTLS(%q, %s) = %v, want insecure=%v", tt.dsn, tt.class, err, tt.insecure)
			}
			if cfg.classification != tt.class {
				t.Errorf("classification recorded as %q, want %q", cfg.classification, tt.class)
			}
		})
	}
}

// TestRequireTLSAtOpen shows that a DSN held in a secret is judged once
// expanded, before any connection is attempted.
func TestRequireTLSAtOpen(t *testing.T) {
	t.Parallel()
	cfg := &Config{DSN: "${secret:dsn}", Query: "SELECT 1", Mode: ModeAppend}
	if err := RequireTLS(cfg, "restricted"); err != nil {
		t.Fatalf("RequireTLS: %v", err)
	}
	env := testEnv(nil, map[string]string{"dsn": "postgres://u:hunter2@db.invalid/x?sslmode=disable"})
	_, err := OpenSource(context.Background(), cfg, env)
	if !errors.Is(err, ErrInsecureTransport) {
		t.Fatalf("OpenSource = %v, want ErrInsecureTransport", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	sinkCfg := &Config{DSN: "${secret:dsn}", Table: "t", Mode: ModeAppend}
	if err := RequireTLS(sinkCfg, "confidential"); err != nil {
		t.Fatalf("RequireTLS: %v", err)
	}
	_, err = OpenSink(context.Background(), sinkCfg, data.MustSchema(data.Field{Name: "a", Type: data.Int}), env)
	if !errors.Is(err, ErrInsecureTransport) {
		t.Fatalf("OpenSink = %v, want ErrInsecureTransport", err)
	}
}

func TestSecureDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       Config
		plaintext bool   // whether any endpoint may go unencrypted
		verify    bool   // whether the server certificate is verified by name
		server    string // the TLS server name
	}{
		{"url without sslmode", Config{DSN: "postgres://u@db.example.com/x"}, false, false, "db.example.com"},
		{"keyword without sslmode", Config{DSN: "host=db.example.com dbname=x"}, false, false, "db.example.com"},
		{"explicit prefer", Config{DSN: "postgres://u@db.example.com/x?sslmode=prefer"}, true, false, "db.example.com"},
		{"ca file means verify-full", Config{DSN: "postgres://u@db.example.com/x", TLS: TLS{CAFile: "/etc/ssl/certs/ssl-cert-snakeoil.pem"}}, false, true, "db.example.com"},
		{"server name", Config{DSN: "host=10.1.2.3 dbname=x", TLS: TLS{CAFile: "/etc/ssl/certs/ssl-cert-snakeoil.pem", ServerName: "db.internal"}}, false, true, "db.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cc, err := tt.cfg.connConfig(testEnv(nil, nil))
			if err != nil {
				t.Fatalf("connConfig: %v", err)
			}
			if cc.TLSConfig == nil {
				t.Fatalf("first attempt is not encrypted")
			}
			plaintext := false
			for _, fb := range cc.Fallbacks {
				plaintext = plaintext || fb.TLSConfig == nil
			}
			if plaintext != tt.plaintext {
				t.Errorf("plaintext fallback = %v, want %v", plaintext, tt.plaintext)
			}
			if verify := !cc.TLSConfig.InsecureSkipVerify && cc.TLSConfig.RootCAs != nil; verify != tt.verify {
				t.Errorf("verifies the certificate by name = %v, want %v", verify, tt.verify)
			}
			if cc.TLSConfig.ServerName != tt.server {
				t.Errorf("ServerName = %q, want %q", cc.TLSConfig.ServerName, tt.server)
			}
		})
	}
}

func TestDSNErrorsHidePassword(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://u:hunter2@db.example.com:notaport/x",
		"host=db.example.com password=hunter2 port=notaport",
		"postgres://u:hunter2@db.example.com/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
	} {
		cfg := &Config{DSN: dsn, Query: "SELECT 1"}
		_, err := OpenSource(context.Background(), cfg, testEnv(nil, nil))
		if err == nil {
			t.Fatalf("OpenSource(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}
