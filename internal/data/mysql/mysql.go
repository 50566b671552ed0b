// Package mysql is the mysql connector: it reads the result of a query
// from MySQL or MariaDB, and loads records into a table, through
// github.com/go-sql-driver/mysql.
//
// Reading streams the result set: the driver reads rows off the wire as
// they are asked for, so memory holds one batch whatever the size of the
// result. Query arguments are always bound as parameters of a server-side
// prepared statement, never spliced into the SQL text. Writing happens in
// one transaction, committed by Commit, so readers see the whole load or
// none of it.
package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/data/sqlrows"
)

// Name is the connector's name under extract: and load:.
const Name = "mysql"

func init() {
	data.Builtin.Register(&data.Connector{
		Name:       Name,
		Config:     func() any { return NewConfig() },
		OpenSource: OpenSource,
		OpenSink:   OpenSink,
		Transport:  RequireTLS,
	})
}

// The sink modes.
const (
	// ModeAppend inserts the records next to the rows already there.
	ModeAppend = sqlrows.ModeAppend
	// ModeReplace deletes every row of the table, then inserts the records,
	// in the same transaction.
	ModeReplace = sqlrows.ModeReplace
	// ModeUpsert inserts the records, updating the row that has the same
	// key instead where there is one (INSERT ... ON DUPLICATE KEY UPDATE).
	ModeUpsert = sqlrows.ModeUpsert
)

// DefaultRowsPerStatement is how many rows one INSERT carries unless
// configured otherwise: large enough that a round trip carries real work,
// small enough to stay far below max_allowed_packet for ordinary rows.
const DefaultRowsPerStatement = 1000

// maxPlaceholders is the most parameters one prepared statement can have in
// the MySQL protocol.
const maxPlaceholders = 65535

// dialect is how MySQL's results are read and its tables loaded. It is
// never modified.
var dialect = sqlrows.Dialect{
	Name:      Name,
	Quote:     quoteIdent,
	TypeOf:    typeOf,
	Decoder:   decoder,
	MaxParams: maxPlaceholders,
	FloatReason: func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("%v cannot be stored in MySQL", v)
		}
		return ""
	},
}

// ErrNoTable is returned (wrapped) by OpenSink when the table does not
// exist and create is false.
var ErrNoTable = errors.New("table does not exist")

// ErrTLSRequired is returned (wrapped) by RequireTLS when a connection that
// leaves the machine would not be encrypted and authenticated.
var ErrTLSRequired = errors.New("TLS required")

// Config is the mysql connector's settings.
type Config struct {
	// DSN is the go-sql-driver data source name,
	// "user:password@tcp(host:3306)/database?param=value". A template,
	// usually holding a secret reference: "${secret:crm_mysql_dsn}".
	// Required. The connector always sets parseTime=true and loc=UTC, and
	// turns interpolateParams and allowAllFiles off.
	DSN string `yaml:"dsn"`
	// TLS encrypts the connection: "true" verifies the server certificate
	// against the system roots (or CAFile), "skip-verify" encrypts without
	// verifying. Empty leaves it to the DSN's own tls parameter; setting
	// both is an error.
	TLS string `yaml:"tls"`
	// CAFile is a PEM file of the certificate authorities to verify the
	// server against, for servers with a private CA; it implies tls: true.
	// Relative to the pipeline file.
	CAFile string `yaml:"ca_file"`

	// Query is the SELECT to read (source). Required to read.
	Query string `yaml:"query"`
	// Args are the query's ? parameters, each a template, bound as
	// parameters (never spliced into the SQL).
	Args []string `yaml:"args"`
	// Types overrides the type derived from a result column's MySQL type,
	// e.g. {active: bool} for a TINYINT(1) column. Reading only.
	Types fileio.Columns `yaml:"types"`
	// BatchSize is the rows per batch; 0 uses the task's batch size.
	BatchSize int `yaml:"batch_size"`

	// Table is the table to load (sink), "name" or "database.name".
	// Required to write.
	Table string `yaml:"table"`
	// Mode is append (default), replace or upsert.
	Mode string `yaml:"mode"`
	// Key names the columns of the primary key or unique index that upsert
	// matches rows on. Required for upsert, only for upsert.
	Key []string `yaml:"key"`
	// Create creates the table from the records' schema when it does not
	// exist. Default false: a missing table is an error.
	Create bool `yaml:"create"`
	// RowsPerStatement caps the rows of one INSERT; 0 uses
	// DefaultRowsPerStatement. Statements are also kept under half the
	// server's max_allowed_packet.
	RowsPerStatement int `yaml:"rows_per_statement"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config { return &Config{Mode: ModeAppend} }

// Validate checks the settings, naming the bad one.
func (c *Config) Validate() error {
	switch {
	case c.DSN == "":
		return fmt.Errorf("dsn: required")
	case c.Query == "" && c.Table == "":
		return fmt.Errorf("query: required to read (or table: to write)")
	case c.Query != "" && c.Table != "":
		return fmt.Errorf("query and table: set query to read or table to write, not both")
	case c.BatchSize < 0:
		return fmt.Errorf("batch_size: must not be negative, got %d", c.BatchSize)
	case c.RowsPerStatement < 0:
		return fmt.Errorf("rows_per_statement: must not be negative, got %d", c.RowsPerStatement)
	}
	switch c.TLS {
	case "", "true", "false", "skip-verify":
	default:
		return fmt.Errorf("tls: want true, false or skip-verify, got %q", c.TLS)
	}
	if c.CAFile != "" && (c.TLS == "false" || c.TLS == "skip-verify") {
		return fmt.Errorf("ca_file: needs tls: true (the CA is used to verify the server)")
	}
	if err := sqlrows.CheckMode(c.Mode, c.Key); err != nil {
		return err
	}
	if c.Table != "" {
		if _, _, err := splitTable(c.Table); err != nil {
			return err
		}
	}
	if _, err := c.Types.Schema(); err != nil {
		return fmt.Errorf("types: %w", err)
	}
	return nil
}

func asConfig(cfg any) (*Config, error) { return data.ConfigAs[Config](Name, cfg) }

// splitTable splits "db.table" or "table" (either part may be quoted with
// backticks).
func splitTable(s string) (db, table string, err error) {
	parts, err := splitIdent(s)
	if err != nil {
		return "", "", fmt.Errorf("table: %w", err)
	}
	switch len(parts) {
	case 1:
		return "", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("table: want name or database.name, got %q", s)
}

func splitIdent(s string) ([]string, error) {
	var parts []string
	for s != "" {
		var p string
		if s[0] == '`' {
			end := -1
			for i := 1; i < len(s); i++ {
				if s[i] == '`' {
					if i+1 < len(s) && s[i+1] == '`' {
						i++
						continue
					}
					end = i
					break
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			p = strings.ReplaceAll(s[1:end], "``", "`")
			s = s[end+1:]
		} else {
			i := strings.IndexByte(s, '.')
			if i < 0 {
				i = len(s)
			}
			p, s = s[:i], s[i:]
		}
		if p == "" {
			return nil, fmt.Errorf("empty name")
		}
		parts = append(parts, p)
		if s != "" {
			if s[0] != '.' || len(s) == 1 {
				return nil, fmt.Errorf("want name or database.name")
			}
			s = s[1:]
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("empty name")
	}
	return parts, nil
}

// quoteIdent quotes a MySQL identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// expand renders a setting's templates and secret references.
func expand(env data.Env, what, s string) (string, error) {
	if env.Expand == nil {
		return s, nil
	}
	e, err := env.Expand(s)
	if err != nil {
		// The unexpanded setting holds no secret (only references), but
		// the error names the setting alone to stay on the safe side.
		return "", fmt.Errorf("mysql: expanding %s: %w", what, err)
	}
	return e, nil
}

// open connects with the expanded DSN and the connector's enforced
// settings. It returns the database and the DSN without its password, the
// only form that may appear in messages.
func open(ctx context.Context, c *Config, env data.Env) (*sql.DB, *driver.Config, string, error) {
	dsn, err := expand(env, "dsn", c.DSN)
	if err != nil {
		return nil, nil, "", err
	}
	mc, err := parseDSN(dsn)
	if err != nil {
		return nil, nil, "", err
	}
	if err := applyTLS(mc, c, env); err != nil {
		return nil, nil, "", err
	}
	shown := redacted(mc)
	conn, err := driver.NewConnector(mc)
	if err != nil {
		return nil, nil, "", fmt.Errorf("mysql: %s: %w", shown, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, "", fmt.Errorf("mysql: connecting to %s: %w", shown, err)
	}
	return db, mc, shown, nil
}

// parseDSN parses a DSN and enforces the settings the connector relies on.
// Its errors never include the DSN, which may hold a password.
func parseDSN(dsn string) (*driver.Config, error) {
	mc, err := driver.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: dsn: want user:password@tcp(host:3306)/database?param=value: %w", err)
	}
	// Timestamps come back as time.Time in UTC and go out as UTC.
	mc.ParseTime = true
	mc.Loc = time.UTC
	// Arguments are bound by the server, not escaped into the SQL text.
	mc.InterpolateParams = false
	// No LOAD DATA LOCAL INFILE: a server must never read client files.
	mc.AllowAllFiles = false
	// 0 asks the server for its max_allowed_packet at connect time, so the
	// driver splits long values the way the server accepts them.
	mc.MaxAllowedPacket = 0
	return mc, nil
}

// applyTLS applies the tls and ca_file settings.
func applyTLS(mc *driver.Config, c *Config, env data.Env) error {
	if c.TLS == "" && c.CAFile == "" {
		return nil
	}
	if mc.TLSConfig != "" && mc.TLSConfig != "false" {
		return fmt.Errorf("mysql: tls: set both in the dsn (tls=%s) and as a setting; keep one", mc.TLSConfig)
	}
	host := mc.Addr
	if h, _, err := net.SplitHostPort(mc.Addr); err == nil {
		host = h
	}
	switch {
	case c.TLS == "false":
		mc.TLS = nil
		mc.TLSConfig = "false"
	case c.TLS == "skip-verify":
		mc.TLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // asked for by name
	default:
		tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			p, err := fileio.ResolvePath(env, c.CAFile)
			if err != nil {
				return fmt.Errorf("mysql: ca_file: %w", err)
			}
			pem, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("mysql: ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("mysql: ca_file: %s holds no PEM certificate", p)
			}
			tc.RootCAs = pool
		}
		mc.TLS = tc
	}
	mc.AllowFallbackToPlaintext = false
	return nil
}

// redacted renders the connection target without the password.
func redacted(mc *driver.Config) string {
	u := mc.User
	if u != "" {
		u += "@"
	}
	return fmt.Sprintf("%s%s(%s)/%s", u, mc.Net, mc.Addr, mc.DBName)
}

// reference matches a secret reference or a template action, which stand
// for text only known when the task runs.
var reference = regexp.MustCompile(`\$\{secret:[^}]*\}|\{\{.*?\}\}`)

// RequireTLS checks that a mysql configuration (a *Config) may carry the
// data of a pipeline of the given classification: a confidential or
// restricted pipeline (or one of an unknown classification) must reach its
// server over verified TLS (tls: true, ca_file, or tls=true in the DSN),
// unless the server is on this machine (a loopback address, localhost, or a
// unix socket). skip-verify and tls=preferred do not count: they do not
// stop a machine in the middle.
//
// It checks the configuration as written: secret references and templates
// in the DSN stand for unknown text, so a DSN whose host is a reference is
// not taken to be loopback. A DSN that is entirely a secret reference
// therefore needs tls: true in a confidential pipeline, which keeps the
// rule checkable before any secret is read. The error wraps
// ErrTLSRequired.
func RequireTLS(cfg any, classification string) error {
	c, ok := cfg.(*Config)
	if !ok || c == nil {
		return fmt.Errorf("mysql: settings have type %T, want *mysql.Config", cfg)
	}
	switch strings.ToLower(classification) {
	case "public", "internal":
		return nil
	}
	if c.CAFile != "" || c.TLS == "true" {
		return nil
	}
	dsn := reference.ReplaceAllString(c.DSN, "x")
	mc, err := driver.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("mysql: dsn: cannot tell whether the server is on this machine (%w); a %s pipeline needs tls: true: %w", err, classification, ErrTLSRequired)
	}
	if c.TLS == "" && mc.TLS != nil && !mc.TLS.InsecureSkipVerify {
		return nil
	}
	if isLocal(mc) {
		return nil
	}
	return fmt.Errorf("mysql: %s(%s): a %s pipeline must reach a server that is not on this machine over verified TLS (set tls: true, with ca_file for a private CA): %w",
		mc.Net, mc.Addr, classification, ErrTLSRequired)
}

// isLocal reports whether the server is reached without leaving the
// machine.
func isLocal(mc *driver.Config) bool {
	if mc.Net == "unix" {
		return true
	}
	host := mc.Addr
	if h, _, err := net.SplitHostPort(mc.Addr); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
