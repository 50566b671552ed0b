package sqlitedb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"math"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
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
	db     *sql.DB
	tx     *sql.Tx
	path   string
	table  string
	target string // the quoted table name
	schema *data.Schema

	perStmt int
	one     string // "(?, ?, ...)"
	prefix  string
	suffix  string
	full    *sql.Stmt
	args    []any
	rows    int

	sum     hash.Hash // SHA-256 of the canonical encoding of the rows loaded
	enc     []byte
	n       int64
	done    bool
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
	if len(schema.Fields) == 0 {
		return nil, fmt.Errorf("sqlite: table %s: the records have no columns", c.Table)
	}
	for _, k := range c.Key {
		if schema.Index(k) < 0 {
			return nil, fmt.Errorf("sqlite: key: column %q is not in the records (%s)", k, schema)
		}
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
	s := &Sink{db: db, path: path, table: c.Table, target: quoteIdent(c.Table), schema: schema, sum: sha256.New()}
	if err := s.begin(ctx, c); err != nil {
		if s.tx != nil {
			_ = s.tx.Rollback()
		}
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sink) begin(ctx context.Context, c *Config) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: beginning transaction: %w", s.path, err)
	}
	s.tx = tx
	cols, err := s.columns(ctx)
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
	} else {
		for _, f := range s.schema.Fields {
			if !cols[strings.ToLower(f.Name)] {
				return fmt.Errorf("sqlite: %s: table %q has no column %q (records have %s)", s.path, s.table, f.Name, s.schema)
			}
		}
	}
	ncol := len(s.schema.Fields)
	names := make([]string, ncol)
	for i, f := range s.schema.Fields {
		names[i] = quoteIdent(f.Name)
	}
	s.perStmt = min(rowsPerStatement, maxParams/ncol)
	s.one = "(" + strings.Repeat("?, ", ncol-1) + "?)"
	s.prefix = "INSERT INTO " + s.target + " (" + strings.Join(names, ", ") + ") VALUES "
	if c.Mode == ModeUpsert {
		key := map[string]bool{}
		keys := make([]string, len(c.Key))
		for i, k := range c.Key {
			key[strings.ToLower(k)] = true
			keys[i] = quoteIdent(k)
		}
		var set []string
		for _, f := range s.schema.Fields {
			if !key[strings.ToLower(f.Name)] {
				q := quoteIdent(f.Name)
				set = append(set, q+" = excluded."+q)
			}
		}
		s.suffix = " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
		if len(set) == 0 {
			s.suffix += "NOTHING"
		} else {
			s.suffix += "UPDATE SET " + strings.Join(set, ", ")
		}
	}
	// Prepared now, so that an upsert key without a unique index fails
	// before any data flows.
	s.full, err = tx.PrepareContext(ctx, s.insertSQL(s.perStmt))
	if err != nil {
		return fmt.Errorf("sqlite: %s: preparing insert into %q: %w", s.path, s.table, err)
	}
	if c.Mode == ModeReplace {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+s.target); err != nil {
			return fmt.Errorf("sqlite: %s: emptying %q for replace: %w", s.path, s.table, err)
		}
	}
	s.args = make([]any, 0, s.perStmt*ncol)
	return nil
}

// columns returns the table's lower-cased column names, none if it does
// not exist.
func (s *Sink) columns(ctx context.Context) (map[string]bool, error) {
	rows, err := s.tx.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", s.table)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: looking up table %q: %w", s.path, s.table, err)
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlite: %s: looking up table %q: %w", s.path, s.table, err)
		}
		cols[strings.ToLower(n)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: looking up table %q: %w", s.path, s.table, err)
	}
	return cols, nil
}

// createSQL is the CREATE TABLE for schema, with the upsert key as its
// primary key. The declared types read back as the same column types.
func createSQL(target string, schema *data.Schema, mode string, key []string) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + target + " (")
	for i, f := range schema.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(f.Name) + " ")
		switch f.Type {
		case data.Int:
			b.WriteString("INTEGER")
		case data.Float:
			b.WriteString("REAL")
		case data.Bool:
			b.WriteString("BOOLEAN")
		case data.Timestamp:
			b.WriteString("TIMESTAMP")
		default:
			b.WriteString("TEXT")
		}
	}
	if mode == ModeUpsert {
		q := make([]string, len(key))
		for i, k := range key {
			q[i] = quoteIdent(k)
		}
		b.WriteString(", PRIMARY KEY (" + strings.Join(q, ", ") + ")")
	}
	b.WriteString(")")
	return b.String()
}

func (s *Sink) insertSQL(rows int) string {
	var b strings.Builder
	b.Grow(len(s.prefix) + rows*(len(s.one)+2) + len(s.suffix) + 12)
	b.WriteString(s.prefix)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.one)
	}
	b.WriteString(s.suffix)
	return b.String()
}

// Write adds the rows of b to the transaction.
func (s *Sink) Write(ctx context.Context, b *data.Batch) error {
	if s.done {
		return fmt.Errorf("sqlite: writing %q: already committed or aborted", s.table)
	}
	if err := fileio.CheckBatch(s.schema, b); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	for r := 0; r < b.Len; r++ {
		s.enc = s.enc[:0]
		for i := range b.Cols {
			col := &b.Cols[i]
			if col.IsNull(r) {
				s.args = append(s.args, nil)
				s.enc = append(s.enc, 0)
				continue
			}
			s.enc = append(s.enc, byte(col.Type))
			switch col.Type {
			case data.String:
				v := col.Strings[r]
				s.args = append(s.args, v)
				s.enc = binary.AppendUvarint(s.enc, uint64(len(v)))
				s.enc = append(s.enc, v...)
			case data.Int:
				s.args = append(s.args, col.Ints[r])
				s.enc = binary.BigEndian.AppendUint64(s.enc, uint64(col.Ints[r]))
			case data.Float:
				v := col.Floats[r]
				if math.IsNaN(v) {
					// SQLite would store NaN as NULL: a silent change.
					return fmt.Errorf("sqlite: writing %q: row %d, column %q: NaN cannot be stored in SQLite", s.table, rowPos(b, r), s.schema.Fields[i].Name)
				}
				s.args = append(s.args, v)
				s.enc = binary.BigEndian.AppendUint64(s.enc, math.Float64bits(v))
			case data.Bool:
				v := int64(0)
				if col.Bools[r] {
					v = 1
				}
				s.args = append(s.args, v)
				s.enc = append(s.enc, byte(v))
			case data.Timestamp:
				t := col.Times[r].UTC().Truncate(time.Microsecond)
				s.args = append(s.args, t.Format(timeLayout))
				s.enc = binary.BigEndian.AppendUint64(s.enc, uint64(t.UnixMicro()))
			}
		}
		s.sum.Write(s.enc)
		s.n += int64(len(s.enc))
		s.rows++
		if s.rows == s.perStmt {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func rowPos(b *data.Batch, r int) int64 {
	if r < len(b.Pos) {
		return b.Pos[r]
	}
	return int64(r + 1)
}

func (s *Sink) flush(ctx context.Context) error {
	if s.rows == 0 {
		return nil
	}
	var err error
	if s.rows == s.perStmt {
		_, err = s.full.ExecContext(ctx, s.args...)
	} else {
		_, err = s.tx.ExecContext(ctx, s.insertSQL(s.rows), s.args...)
	}
	if err != nil {
		return fmt.Errorf("sqlite: inserting into %q of %s: %w", s.table, s.path, err)
	}
	clear(s.args)
	s.args = s.args[:0]
	s.rows = 0
	return nil
}

// Commit inserts the remaining rows and commits the transaction.
func (s *Sink) Commit(ctx context.Context) error {
	if s.done {
		return fmt.Errorf("sqlite: committing %q: already committed or aborted", s.table)
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	_ = s.full.Close()
	if err := s.tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: committing load into %q of %s: %w", s.table, s.path, err)
	}
	s.done = true
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
	if s.done {
		return nil
	}
	s.done = true
	_ = s.full.Close()
	err := s.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("sqlite: rolling back load into %q of %s: %w", s.table, s.path, err)
	}
	err = errors.Join(err, s.db.Close())
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
func (s *Sink) Output() data.Output {
	return data.Output{Location: "sqlite://" + s.path + "#" + s.table, Bytes: s.n, SHA256: hex.EncodeToString(s.sum.Sum(nil))}
}
