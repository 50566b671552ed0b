package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/data/sqlrows"
)

// timeLayout is how timestamps are stored: text that SQLite's date
// functions understand, sorts in time order (always UTC), and reads back
// as the same instant.
const timeLayout = "2006-01-02 15:04:05.999999-07:00"

// ErrNoTable is returned (wrapped) by OpenSink when the table (or the
// database file) does not exist and create is false.
var ErrNoTable = errors.New("table does not exist")

// Sink loads records into a table inside one transaction. It implements
// data.Sink and data.Outputer.
type Sink struct {
	db      *sql.DB
	l       *sqlrows.Loader
	path    string
	table   string
	target  string // the quoted table name
	schema  *data.Schema
	removed string // a database file created by OpenSink, removed on Abort
}

var (
	_ data.Sink     = (*Sink)(nil)
	_ data.Outputer = (*Sink)(nil)
)

// OpenSink opens the database file of cfg (a *Config) for writing, begins
// an immediate transaction, checks that the table exists (or creates it,
// with create: true, in the transaction) and has a column for every field
// of schema; replace deletes the table's rows in the transaction. Nothing
// is visible to other connections before Commit.
func OpenSink(ctx context.Context, cfg any, schema *data.Schema, env data.Env) (data.Sink, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	if c.Table == "" {
		return nil, fmt.Errorf("sqlite: table: required to write")
	}
	if len(c.Args) > 0 || len(c.Types) > 0 || c.BatchSize != 0 {
		return nil, fmt.Errorf("sqlite: args, types and batch_size apply only to reading")
	}
	if err := sqlrows.CheckRecords(c.Table, schema, c.Key); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	path, err := fileio.ResolvePath(env, c.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	created := ""
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if !c.Create {
			return nil, fmt.Errorf("sqlite: table %q: %w: database %s does not exist (set create: true to create it)", c.Table, ErrNoTable, path)
		}
		// Created here with a private mode, never by SQLite with the umask.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileio.FileMode)
		if err != nil {
			return nil, fmt.Errorf("sqlite: creating database: %w", err)
		}
		f.Close()
		created = path
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s, err := newSink(ctx, path, c, schema)
	if err != nil {
		if created != "" {
			_ = os.Remove(created)
		}
		return nil, err
	}
	s.removed = created
	return s, nil
}

func newSink(ctx context.Context, path string, c *Config, schema *data.Schema) (*Sink, error) {
	db, err := openDB(path, false)
	if err != nil {
		return nil, err
	}
	s := &Sink{db: db, path: path, table: c.Table, target: quoteIdent(c.Table), schema: schema}
	if err := s.begin(ctx, c); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sink) begin(ctx context.Context, c *Config) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: beginning transaction: %w", s.path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	cols, err := s.columns(ctx, tx)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		if !c.Create {
			return fmt.Errorf("sqlite: %s: table %q: %w (set create: true to create it)", s.path, s.table, ErrNoTable)
		}
		if _, err := tx.ExecContext(ctx, createSQL(s.target, s.schema, c.Mode, c.Key)); err != nil {
			return fmt.Errorf("sqlite: %s: creating table %q: %w", s.path, s.table, err)
		}
	} else if name, missing := sqlrows.MissingColumn(s.schema, cols); missing {
		return fmt.Errorf("sqlite: %s: table %q has no column %q (records have %s)", s.path, s.table, name, s.schema)
	}
	var suffix string
	if c.Mode == ModeUpsert {
		keys := make([]string, len(c.Key))
		for i, k := range c.Key {
			keys[i] = quoteIdent(k)
		}
		var set []string
		for _, name := range sqlrows.Updated(s.schema, c.Key) {
			q := quoteIdent(name)
			set = append(set, q+" = excluded."+q)
		}
		suffix = " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
		if len(set) == 0 {
			suffix += "NOTHING"
		} else {
			suffix += "UPDATE SET " + strings.Join(set, ", ")
		}
	}
	l := sqlrows.NewLoader(tx, s.schema, &dialect, sqlrows.Load{
		Target: s.target, Table: strconv.Quote(s.table), Into: strconv.Quote(s.table) + " of " + s.path,
		Suffix: suffix, RowsPerStatement: rowsPerStatement,
	})
	// Prepared now, so that an upsert key without a unique index fails
	// before any data flows.
	if err := l.Prepare(ctx); err != nil {
		return fmt.Errorf("sqlite: %s: preparing insert into %q: %w", s.path, s.table, err)
	}
	if c.Mode == ModeReplace {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+s.target); err != nil {
			return fmt.Errorf("sqlite: %s: emptying %q for replace: %w", s.path, s.table, err)
		}
	}
	s.l = l
	return nil
}

// columns returns the table's lower-cased column names, none if it does
// not exist.
func (s *Sink) columns(ctx context.Context, tx *sql.Tx) (map[string]bool, error) {
	cols, err := sqlrows.ColumnNames(ctx, tx, "SELECT name FROM pragma_table_info(?)", s.table)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: looking up table %q: %w", s.path, s.table, err)
	}
	return cols, nil
}

// createSQL is the CREATE TABLE for schema, with the upsert key as its
// primary key. The declared types read back as the same column types.
func createSQL(target string, schema *data.Schema, mode string, key []string) string {
	if mode != ModeUpsert {
		key = nil
	}
	return sqlrows.CreateTable(&dialect, target, schema, key, func(f data.Field, _ bool) string {
		switch f.Type {
		case data.Int:
			return "INTEGER"
		case data.Float:
			return "REAL"
		case data.Bool:
			return "BOOLEAN"
		case data.Timestamp:
			return "TIMESTAMP"
		}
		return "TEXT"
	})
}

// Write adds the rows of b to the transaction.
func (s *Sink) Write(ctx context.Context, b *data.Batch) error { return s.l.Write(ctx, b) }

// Commit inserts the remaining rows and commits the transaction.
func (s *Sink) Commit(ctx context.Context) error {
	if err := s.l.Commit(ctx); err != nil {
		return err
	}
	s.removed = ""
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: closing %s: %w", s.path, err)
	}
	return nil
}

// Abort rolls the transaction back, which also undoes a table created by
// OpenSink, and removes a database file OpenSink created. It may follow a
// failed Commit.
func (s *Sink) Abort() error {
	if s.l.Done() {
		return nil
	}
	err := errors.Join(s.l.Rollback(), s.db.Close())
	if s.removed != "" {
		for _, p := range []string{s.removed, s.removed + "-journal", s.removed + "-wal", s.removed + "-shm"} {
			if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("sqlite: removing %s created for the aborted load: %w", p, rerr))
			}
		}
	}
	return err
}

// Output describes the load: the file and table, and the size and SHA-256
// of the canonical encoding of the rows sent (per value: a type byte, then
// the value; 0 alone for null).
func (s *Sink) Output() data.Output { return s.l.Output("sqlite://" + s.path + "#" + s.table) }
