// Package postgres is the postgres connector: it reads the result of a
// parameterised query and loads batches into a table, over pgx.
//
// Reading declares a NO SCROLL cursor for the query inside a read-only
// transaction and FETCHes it a batch at a time, so memory holds one batch
// however large the result. The query's arguments are sent as bind
// parameters, never spliced into the SQL text.
//
// Writing happens in one transaction that Commit commits and Abort rolls
// back, so nothing is visible to other sessions before Commit: append COPYs
// straight into the table; replace deletes the table's rows and COPYs the
// new ones (DELETE rather than TRUNCATE: readers keep seeing the old rows,
// without blocking, until the commit, and TRUNCATE is not MVCC-safe);
// upsert COPYs into a temporary table and merges it with INSERT ... ON
// CONFLICT (key) DO UPDATE, the last staged row of a key winning.
//
// Connections are encrypted by default: a DSN without sslmode gets
// sslmode=require (verify-full when tls.ca_file is set), where libpq and pgx
// would default to prefer, which silently falls back to plaintext.
// RequireTLS refuses any setting that allows plaintext to a non-loopback
// host for confidential and restricted pipelines.
package postgres

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Name is the connector's name under extract: and load:.
const Name = "postgres"

func init() {
	data.Builtin.Register(&data.Connector{
		Name:       Name,
		Config:     func() any { return NewConfig() },
		OpenSource: OpenSource,
		OpenSink:   OpenSink,
		Transport:  RequireTLS,
	})
}

// The load modes.
const (
	ModeAppend  = "append"
	ModeReplace = "replace"
	ModeUpsert  = "upsert"
)

// Sentinel errors, for errors.Is.
var (
	// ErrInsecureTransport is returned by RequireTLS, OpenSource and
	// OpenSink when the connection settings allow an unencrypted
	// connection to a non-loopback host for a confidential or restricted
	// pipeline.
	ErrInsecureTransport = errors.New("unencrypted connection not allowed")
	// ErrTableNotFound is returned by OpenSink when the table does not
	// exist and create is false.
	ErrTableNotFound = errors.New("table does not exist")
)

// Config is the postgres connector's settings. One struct serves both
// directions: query, args and fetch_size read; table, mode, key and create
// write.
type Config struct {
	// DSN is the connection string, URL ("postgres://user@host/db") or
	// key=value form, usually a secret reference ("${secret:crm_dsn}");
	// templates and secrets are expanded when the connection opens.
	// Without sslmode it connects with sslmode=require. Required.
	DSN string `yaml:"dsn"`
	// TLS adds certificate settings to the connection.
	TLS TLS `yaml:"tls"`

	// Query is the SQL query to read: one SELECT (or VALUES, or TABLE),
	// with $1, $2 ... for Args. Reading only.
	Query string `yaml:"query"`
	// Args are the query's parameters, each a template (for example
	// "{{ .LogicalDate }}"), bound as text values: the server converts
	// each to the type its parameter needs. Reading only.
	Args []string `yaml:"args"`
	// BatchSize is the rows per batch; 0 uses the task's batch size.
	// Reading only.
	BatchSize int `yaml:"batch_size"`
	// FetchSize is the rows asked of the server per FETCH; 0 means one
	// batch. Reading only.
	FetchSize int `yaml:"fetch_size"`

	// Table is the table to write, optionally schema-qualified
	// ("crm.customers"). Writing only.
	Table string `yaml:"table"`
	// Mode is append (default), replace or upsert. Writing only.
	Mode string `yaml:"mode"`
	// Key names the columns of the unique constraint an upsert merges on.
	// Required for, and only for, mode upsert.
	Key []string `yaml:"key"`
	// Create creates a missing table from the incoming schema (text,
	// bigint, double precision, boolean, timestamptz). Default false: a
	// missing table is an error. Writing only.
	Create bool `yaml:"create"`

	// classification is the pipeline's classification as given to
	// RequireTLS, so that a DSN that could only be judged once its
	// secrets were expanded is judged again when the connection opens.
	classification string
}

// TLS holds certificate settings applied to the connection. Paths are
// relative to the pipeline file's directory.
type TLS struct {
	// CAFile is a PEM bundle of the certificate authorities to trust for
	// the server certificate. With it, a DSN without sslmode verifies the
	// server fully (verify-full); with sslmode=require it verifies the
	// chain (verify-ca), as libpq does.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key, for
	// servers that authenticate clients by certificate. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the host name sent (SNI) and verified against
	// the server certificate, for servers reached by IP address or
	// through a tunnel.
	ServerName string `yaml:"server_name"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config { return &Config{Mode: ModeAppend} }

var sslModes = map[string]bool{"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true}

// Validate checks the settings, naming the bad one. It cannot know the
// pipeline's classification: see RequireTLS.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DSN) == "" {
		return fmt.Errorf("dsn: required")
	}
	if !hasRefs(c.DSN) {
		if _, err := parseDSN(c.DSN); err != nil {
			return fmt.Errorf("dsn: %w", err)
		}
	}
	switch {
	case c.Query == "" && c.Table == "":
		return fmt.Errorf("query (to read) or table (to write): required")
	case c.Query != "" && c.Table != "":
		return fmt.Errorf("query and table: set query to read or table to write, not both")
	}
	if c.BatchSize < 0 {
		return fmt.Errorf("batch_size: must not be negative, got %d", c.BatchSize)
	}
	if c.FetchSize < 0 {
		return fmt.Errorf("fetch_size: must not be negative, got %d", c.FetchSize)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("tls: cert_file and key_file go together")
	}
	switch c.Mode {
	case "", ModeAppend, ModeReplace:
		if len(c.Key) > 0 {
			return fmt.Errorf("key: only for mode upsert")
		}
	case ModeUpsert:
		if len(c.Key) == 0 {
			return fmt.Errorf("key: required for mode upsert (the columns of the table's unique constraint)")
		}
	default:
		return fmt.Errorf("mode: unknown mode %q (want append, replace or upsert)", c.Mode)
	}
	seen := map[string]bool{}
	for i, k := range c.Key {
		if k == "" {
			return fmt.Errorf("key: entry %d is empty", i+1)
		}
		if seen[k] {
			return fmt.Errorf("key: %q listed twice", k)
		}
		seen[k] = true
	}
	if c.Table != "" {
		if _, err := parseTable(c.Table); err != nil {
			return err
		}
	}
	return nil
}

func asConfig(cfg any) (*Config, error) { return data.ConfigAs[Config](Name, cfg) }

// parseTable splits "schema.table" or "table" into an identifier.
func parseTable(s string) (pgx.Identifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("table: %q has more than one dot; want table or schema.table", s)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("table: %q has an empty part; want table or schema.table", s)
		}
	}
	return pgx.Identifier(parts), nil
}

// strict reports whether a classification demands encrypted connections.
func strict(classification string) bool {
	return classification == "confidential" || classification == "restricted"
}

// RequireTLS checks cfg (a *Config) against the pipeline's classification:
// for a confidential or restricted pipeline, a DSN whose sslmode allows
// plaintext (disable, or allow and prefer, which fall back to plaintext
// when the server or an attacker in the middle refuses TLS) is an error
// wrapping ErrInsecureTransport, unless every host it may reach in
// plaintext is loopback (127.0.0.0/8, ::1, localhost) or a unix socket,
// where the traffic never leaves the machine.
//
// Pipeline validation calls it, since Config.Validate cannot know the
// classification. It also records the classification in cfg: a DSN held
// in a secret cannot be judged before the secret is expanded, so
// OpenSource and OpenSink apply the same rule to the expanded DSN.
func RequireTLS(cfg any, classification string) error {
	c, ok := cfg.(*Config)
	if !ok || c == nil {
		return fmt.Errorf("postgres: settings have type %T, want *postgres.Config", cfg)
	}
	c.classification = classification
	if !strict(classification) {
		return nil
	}
	dsn := refPattern.ReplaceAllString(c.DSN, refPlaceholder)
	full, err := secureDSN(dsn, c.TLS.CAFile != "", nil)
	if err != nil {
		return nil
	}
	pc, err := pgconn.ParseConfig(full)
	if err != nil {
		// Not judgeable now (a reference where syntax matters, or a
		// file not present here); the open applies the rule.
		return nil
	}
	if err := checkTransport(pc, classification); err != nil {
		return fmt.Errorf("postgres: dsn: %w", err)
	}
	return nil
}

// refPattern matches secret references and templates; refPlaceholder
// stands in for them when a DSN is judged before expansion.
var refPattern = regexp.MustCompile(`\$\{secret:[^}]*\}|\{\{.*?\}\}`)

const refPlaceholder = "sluiceref"

func hasRefs(s string) bool { return refPattern.MatchString(s) }

// checkTransport returns an error wrapping ErrInsecureTransport when pc
// may talk plaintext to a host off this machine. A host that is still an
// unexpanded reference is left to the check at open.
func checkTransport(pc *pgconn.Config, classification string) error {
	type endpoint struct {
		host string
		tls  *tls.Config
	}
	eps := []endpoint{{pc.Host, pc.TLSConfig}}
	for _, fb := range pc.Fallbacks {
		eps = append(eps, endpoint{fb.Host, fb.TLSConfig})
	}
	for _, ep := range eps {
		if ep.tls != nil || isLocal(ep.host) || strings.Contains(ep.host, refPlaceholder) {
			continue
		}
		return fmt.Errorf("%w: the sslmode (disable, allow or prefer) lets the connection to %s go unencrypted, which a %s pipeline forbids; use sslmode=require, verify-ca or verify-full, or leave sslmode out", ErrInsecureTransport, ep.host, classification)
	}
	return nil
}

// isLocal reports whether host is a unix socket directory or a loopback
// name or address.
func isLocal(host string) bool {
	if strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// connect settings: the expanded DSN with the secure defaults and the TLS
// files added, as a pgx config.
func (c *Config) connConfig(env data.Env) (*pgx.ConnConfig, error) {
	dsn, err := env.Expand(c.DSN)
	if err != nil {
		// The template error may quote the DSN; keep only that it failed.
		return nil, fmt.Errorf("expanding dsn: %w", redactedErr(err, c.DSN))
	}
	files := map[string]string{}
	for key, p := range map[string]string{"sslrootcert": c.TLS.CAFile, "sslcert": c.TLS.CertFile, "sslkey": c.TLS.KeyFile} {
		if p == "" {
			continue
		}
		rp, err := fileio.ResolvePath(env, p)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		files[key] = rp
	}
	full, err := secureDSN(dsn, c.TLS.CAFile != "", files)
	if err != nil {
		return nil, err
	}
	cc, err := pgx.ParseConfig(full)
	if err != nil {
		return nil, parseErr(err)
	}
	if strict(c.classification) {
		if err := checkTransport(&cc.Config, c.classification); err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
	}
	if sn := c.TLS.ServerName; sn != "" {
		for _, t := range tlsConfigs(&cc.Config) {
			t.ServerName = sn
		}
	}
	return cc, nil
}

// redactedErr is a template error that cannot echo a DSN holding
// credentials.
func redactedErr(err error, dsn string) error {
	if strings.Contains(err.Error(), dsn) {
		return errors.New("invalid template")
	}
	return err
}

func tlsConfigs(pc *pgconn.Config) []*tls.Config {
	var out []*tls.Config
	if pc.TLSConfig != nil {
		out = append(out, pc.TLSConfig)
	}
	for _, fb := range pc.Fallbacks {
		if fb.TLSConfig != nil {
			out = append(out, fb.TLSConfig)
		}
	}
	return out
}

// secureDSN returns dsn with sslmode added when it is absent (require, or
// verify-full when a CA is configured) and the TLS file settings, which
// override any the DSN names.
func secureDSN(dsn string, haveCA bool, files map[string]string) (string, error) {
	kv, err := parseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("dsn: %w", err)
	}
	set := make(map[string]string, len(files)+1)
	for k, v := range files {
		set[k] = v
	}
	if _, ok := kv["sslmode"]; !ok {
		set["sslmode"] = "require"
		if haveCA {
			set["sslmode"] = "verify-full"
		}
	}
	return addSettings(dsn, set), nil
}

// parseErr drops the connection string from a pgx parse error: pgx
// redacts passwords only on a best-effort basis.
func parseErr(err error) error {
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		if inner := errors.Unwrap(pce); inner != nil {
			return fmt.Errorf("parsing dsn: %w", inner)
		}
		return errors.New("parsing dsn: invalid connection string")
	}
	return fmt.Errorf("parsing dsn: %w", err)
}

func isURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// parseDSN returns the settings written in dsn, to see which are present.
// Its errors never quote the DSN.
func parseDSN(dsn string) (map[string]string, error) {
	kv := map[string]string{}
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, errors.New("not a valid postgres:// URL")
		}
		for k, v := range u.Query() {
			kv[k] = v[len(v)-1]
		}
	} else {
		s := dsn
		for {
			s = strings.TrimLeft(s, " \t\n\r\f\v")
			if s == "" {
				break
			}
			eq := strings.IndexByte(s, '=')
			if eq < 0 {
				return nil, errors.New("not a URL and not key=value settings")
			}
			key := strings.TrimSpace(s[:eq])
			if key == "" || strings.ContainsAny(key, " \t") {
				return nil, errors.New("malformed key=value settings")
			}
			s = strings.TrimLeft(s[eq+1:], " \t\n\r\f\v")
			var val strings.Builder
			if strings.HasPrefix(s, "'") {
				s = s[1:]
				closed := false
				for len(s) > 0 {
					ch := s[0]
					s = s[1:]
					if ch == '\\' && len(s) > 0 {
						val.WriteByte(s[0])
						s = s[1:]
						continue
					}
					if ch == '\'' {
						closed = true
						break
					}
					val.WriteByte(ch)
				}
				if !closed {
					return nil, errors.New("unterminated quoted value in key=value settings")
				}
			} else {
				for len(s) > 0 && !strings.ContainsRune(" \t\n\r\f\v", rune(s[0])) {
					ch := s[0]
					s = s[1:]
					if ch == '\\' && len(s) > 0 {
						ch = s[0]
						s = s[1:]
					}
					val.WriteByte(ch)
				}
			}
			kv[key] = val.String()
		}
	}
	if m, ok := kv["sslmode"]; ok && !sslModes[m] {
		return nil, fmt.Errorf("sslmode %q is not one of disable, allow, prefer, require, verify-ca, verify-full", m)
	}
	return kv, nil
}

// addSettings returns dsn with set added, overriding what dsn says.
func addSettings(dsn string, set map[string]string) string {
	if len(set) == 0 {
		return dsn
	}
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn // parseDSN accepted it; unreachable
		}
		q := u.Query()
		for k, v := range set {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable string, whatever the map order
	var b strings.Builder
	b.WriteString(dsn)
	for _, k := range keys {
		v := set[k]
		b.WriteString(" ")
		b.WriteString(k)
		b.WriteString("='")
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v))
		b.WriteString("'")
	}
	return b.String()
}

// location names a database without credentials, for errors and outputs.
func location(cc *pgx.ConnConfig) string {
	host := cc.Host
	if !strings.HasPrefix(host, "/") {
		host = net.JoinHostPort(host, fmt.Sprint(cc.Port))
	}
	return "postgres://" + host + "/" + cc.Database
}
