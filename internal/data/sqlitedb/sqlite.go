// Package sqlitedb is the sqlite connector: it reads the result of a query
// from an SQLite database file, and loads records into a table of one,
// through the pure-Go modernc.org/sqlite driver. (The package is not named
// sqlite so as not to be confused with the store's internal/store/sqlite.)
//
// A source opens the file read-only (mode=ro, query_only), so a pipeline
// that reads a database can never change it. A sink writes in one
// transaction (BEGIN IMMEDIATE), committed by Commit; SQLite's DDL is
// transactional, so even a table created for the load disappears on Abort.
package sqlitedb

import (
	"database/sql"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/data/sqlrows"
)

// Name is the connector's name under extract: and load:.
const Name = "sqlite"

// driverName is the database/sql driver modernc.org/sqlite registers.
const driverName = "sqlite"

func init() {
	data.Builtin.Register(&data.Connector{
		Name:       Name,
		Config:     func() any { return NewConfig() },
		OpenSource: OpenSource,
		OpenSink:   OpenSink,
	})
}

// The sink modes.
const (
	// ModeAppend inserts the records next to the rows already there.
	ModeAppend = sqlrows.ModeAppend
	// ModeReplace deletes every row of the table, then inserts the records,
	// in the same transaction.
	ModeReplace = sqlrows.ModeReplace
	// ModeUpsert inserts the records, updating the row with the same key
	// instead where there is one (INSERT ... ON CONFLICT (key) DO UPDATE).
	ModeUpsert = sqlrows.ModeUpsert
)

// rowsPerStatement is how many rows one prepared INSERT carries: enough to
// amortise a statement step, few enough to stay below SQLite's limit of
// 32766 parameters for any sensible number of columns.
const rowsPerStatement = 100

// maxParams is SQLite's default SQLITE_MAX_VARIABLE_NUMBER.
const maxParams = 32766

// dialect is how SQLite's results are read and its tables loaded. It is
// never modified.
var dialect = sqlrows.Dialect{
	Name:           Name,
	Quote:          quoteIdent,
	TypeOf:         typeOf,
	UnixTimestamps: true,
	MaxParams:      maxParams,
	FloatReason: func(v float64) string {
		if math.IsNaN(v) {
			// SQLite would store NaN as NULL: a silent change.
			return "NaN cannot be stored in SQLite"
		}
		return ""
	},
	BoolArg: func(v bool) any {
		if v {
			return int64(1)
		}
		return int64(0)
	},
	TimeArg: func(t time.Time) any { return t.Format(timeLayout) },
}

// busyTimeoutMS is how long a connection waits for another writer's lock.
const busyTimeoutMS = 5000

// Config is the sqlite connector's settings.
type Config struct {
	// Path is the database file, a template; relative paths are relative
	// to the pipeline file's directory. Required.
	Path string `yaml:"path"`

	// Query is the SELECT to read (source). Required to read.
	Query string `yaml:"query"`
	// Args are the query's ? parameters, each a template, bound as
	// parameters (never spliced into the SQL).
	Args []string `yaml:"args"`
	// Types sets the type of result columns, overriding their declared
	// types; needed for expressions and columns declared without a type
	// when the first row is not a good guide. Reading only.
	Types fileio.Columns `yaml:"types"`
	// BatchSize is the rows per batch; 0 uses the task's batch size.
	BatchSize int `yaml:"batch_size"`

	// Table is the table to load (sink). Required to write.
	Table string `yaml:"table"`
	// Mode is append (default), replace or upsert.
	Mode string `yaml:"mode"`
	// Key names the columns of the primary key or unique index that upsert
	// matches rows on. Required for upsert, only for upsert.
	Key []string `yaml:"key"`
	// Create creates the table (and the database file) when missing.
	// Default false: a missing table or file is an error.
	Create bool `yaml:"create"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config { return &Config{Mode: ModeAppend} }

// Validate checks the settings, naming the bad one.
func (c *Config) Validate() error {
	switch {
	case c.Path == "":
		return fmt.Errorf("path: required")
	case c.Query == "" && c.Table == "":
		return fmt.Errorf("query: required to read (or table: to write)")
	case c.Query != "" && c.Table != "":
		return fmt.Errorf("query and table: set query to read or table to write, not both")
	case c.BatchSize < 0:
		return fmt.Errorf("batch_size: must not be negative, got %d", c.BatchSize)
	}
	if err := sqlrows.CheckMode(c.Mode, c.Key); err != nil {
		return err
	}
	if _, err := c.Types.Schema(); err != nil {
		return fmt.Errorf("types: %w", err)
	}
	return nil
}

func asConfig(cfg any) (*Config, error) { return data.ConfigAs[Config](Name, cfg) }

// quoteIdent quotes an SQLite identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// dsn is the driver's name for the file at path as a URI, so that no
// character of the path can be read as a parameter. readOnly opens it with
// mode=ro and query_only; otherwise mode=rw (never creating the file) with
// BEGIN IMMEDIATE transactions.
func dsn(path string, readOnly bool) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("sqlite: %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	if readOnly {
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("mode", "rw")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), OmitHost: true, RawQuery: q.Encode()}
	return u.String(), nil
}

func openDB(path string, readOnly bool) (*sql.DB, error) {
	d, err := dsn(path, readOnly)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driverName, d)
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
