package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Sink loads records into a table inside one transaction. It implements
// data.Sink and data.Outputer.
type Sink struct {
	db      *sql.DB
	tx      *sql.Tx
	shown   string
	target  string // `db`.`table` or `table`, quoted
	schema  *data.Schema
	created bool // the table was created by OpenSink; Abort drops it

	perStmt   int   // rows per full INSERT
	byteLimit int64 // flush before the arguments pass this many bytes
	prefix    string
	suffix    string
	full      *sql.Stmt // the prepared INSERT of perStmt rows
	args      []any
	rows      int
	bytes     int64

	sum   hash.Hash // SHA-256 of the canonical encoding of the rows loaded
	enc   []byte
	n     int64
	where string
	done  bool
}

var (
	_ data.Sink     = (*Sink)(nil)
	_ data.Outputer = (*Sink)(nil)
)

// OpenSink connects with cfg (a *Config), checks that the table exists (or
// creates it, with create: true) and has a column for every field of
// schema, and begins the transaction; replace deletes the table's rows in
// it. Nothing is visible to other sessions before Commit.
//
// MySQL commits implicitly around DDL, so a table created here exists
// before the load commits; Abort drops it again.
func OpenSink(ctx context.Context, cfg any, schema *data.Schema, env data.Env) (data.Sink, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	if c.Table == "" {
		return nil, fmt.Errorf("mysql: table: required to write")
	}
	if len(c.Args) > 0 || len(c.Types) > 0 || c.BatchSize != 0 {
		return nil, fmt.Errorf("mysql: args, types and batch_size apply only to reading")
	}
	if len(schema.Fields) == 0 {
		return nil, fmt.Errorf("mysql: table %s: the records have no columns", c.Table)
	}
	for _, k := range c.Key {
		if schema.Index(k) < 0 {
			return nil, fmt.Errorf("mysql: key: column %q is not in the records (%s)", k, schema)
		}
	}
	db, mc, shown, err := open(ctx, c, env)
	if err != nil {
		return nil, err
	}
	s, err := newSink(ctx, db, mc, shown, c, schema)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func newSink(ctx context.Context, db *sql.DB, mc *driver.Config, shown string, c *Config, schema *data.Schema) (*Sink, error) {
	dbName, table, _ := splitTable(c.Table)
	if dbName == "" {
		dbName = mc.DBName
	}
	if dbName == "" {
		return nil, fmt.Errorf("mysql: table %s: name the database in the dsn or as database.table", c.Table)
	}
	target := quoteIdent(dbName) + "." + quoteIdent(table)
	s := &Sink{db: db, shown: shown, target: target, schema: schema, sum: sha256.New(),
		where: fmt.Sprintf("mysql://%s/%s", strings.TrimSuffix(shown, "/"+mc.DBName), dbName+"."+table)}

	cols, err := tableColumns(ctx, db, dbName, table)
	if err != nil {
		return nil, fmt.Errorf("mysql: %s: %w", shown, err)
	}
	if len(cols) == 0 {
		if !c.Create {
			return nil, fmt.Errorf("mysql: %s: table %s.%s: %w (set create: true to create it)", shown, dbName, table, ErrNoTable)
		}
		if _, err := db.ExecContext(ctx, createSQL(target, schema, c.Mode, c.Key)); err != nil {
			return nil, fmt.Errorf("mysql: %s: creating table %s.%s: %w", shown, dbName, table, err)
		}
		s.created = true
	} else {
		for _, f := range schema.Fields {
			if !cols[strings.ToLower(f.Name)] {
				return nil, fmt.Errorf("mysql: %s: table %s.%s has no column %q (records have %s)", shown, dbName, table, f.Name, schema)
			}
		}
		if c.Mode == ModeUpsert {
			if err := checkUnique(ctx, db, dbName, table, c.Key); err != nil {
				return nil, fmt.Errorf("mysql: %s: %w", shown, err)
			}
		}
	}
	if err := s.begin(ctx, c); err != nil {
		s.dropCreated()
		return nil, err
	}
	return s, nil
}

func (s *Sink) begin(ctx context.Context, c *Config) error {
	var maxPacket int64
	if err := s.db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		return fmt.Errorf("mysql: %s: reading max_allowed_packet: %w", s.shown, err)
	}
	s.byteLimit = maxPacket / 2
	ncol := len(s.schema.Fields)
	s.perStmt = c.RowsPerStatement
	if s.perStmt == 0 {
		s.perStmt = DefaultRowsPerStatement
	}
	s.perStmt = min(s.perStmt, maxPlaceholders/ncol)

	names := make([]string, ncol)
	for i, f := range s.schema.Fields {
		names[i] = quoteIdent(f.Name)
	}
	s.prefix = "INSERT INTO " + s.target + " (" + strings.Join(names, ", ") + ") VALUES "
	if c.Mode == ModeUpsert {
		key := map[string]bool{}
		for _, k := range c.Key {
			key[strings.ToLower(k)] = true
		}
		var set []string
		for _, f := range s.schema.Fields {
			if !key[strings.ToLower(f.Name)] {
				q := quoteIdent(f.Name)
				set = append(set, q+" = VALUES("+q+")")
			}
		}
		if len(set) == 0 { // every column is key: a duplicate changes nothing
			q := quoteIdent(s.schema.Fields[0].Name)
			set = append(set, q+" = "+q)
		}
		s.suffix = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mysql: %s: beginning transaction: %w", s.shown, err)
	}
	s.tx = tx
	if c.Mode == ModeReplace {
		// DELETE, not TRUNCATE: TRUNCATE commits implicitly, which would
		// empty the table for everyone before the load is complete.
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+s.target); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("mysql: %s: emptying %s for replace: %w", s.shown, s.target, err)
		}
	}
	s.args = make([]any, 0, s.perStmt*ncol)
	return nil
}

// tableColumns returns the lower-cased column names of a table, none if it
// does not exist.
func tableColumns(ctx context.Context, db *sql.DB, dbName, table string) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx,
		"SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", dbName, table)
	if err != nil {
		return nil, fmt.Errorf("looking up table %s.%s: %w", dbName, table, err)
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("looking up table %s.%s: %w", dbName, table, err)
		}
		cols[strings.ToLower(n)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up table %s.%s: %w", dbName, table, err)
	}
	return cols, nil
}

// checkUnique makes sure the key is exactly the primary key or a unique
// index: ON DUPLICATE KEY UPDATE matches on the table's unique indexes, so
// without one it would silently insert duplicates.
func checkUnique(ctx context.Context, db *sql.DB, dbName, table string, key []string) error {
	rows, err := db.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, dbName, table)
	if err != nil {
		return fmt.Errorf("looking up the indexes of %s.%s: %w", dbName, table, err)
	}
	defer rows.Close()
	idx := map[string]map[string]bool{}
	for rows.Next() {
		var name, col string
		if err := rows.Scan(&name, &col); err != nil {
			return fmt.Errorf("looking up the indexes of %s.%s: %w", dbName, table, err)
		}
		if idx[name] == nil {
			idx[name] = map[string]bool{}
		}
		idx[name][strings.ToLower(col)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("looking up the indexes of %s.%s: %w", dbName, table, err)
	}
next:
	for _, cols := range idx {
		if len(cols) != len(key) {
			continue
		}
		for _, k := range key {
			if !cols[strings.ToLower(k)] {
				continue next
			}
		}
		return nil
	}
	return fmt.Errorf("key: table %s.%s has no primary key or unique index on exactly (%s); upsert needs one to match rows on",
		dbName, table, strings.Join(key, ", "))
}

// createSQL is the CREATE TABLE for schema. Key columns of an upsert form
// the primary key, so they must be of an indexable type.
func createSQL(target string, schema *data.Schema, mode string, key []string) string {
	isKey := map[string]bool{}
	if mode == ModeUpsert {
		for _, k := range key {
			isKey[k] = true
		}
	}
	var b strings.Builder
	b.WriteString("CREATE TABLE " + target + " (")
	for i, f := range schema.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(f.Name) + " ")
		switch f.Type {
		case data.Int:
			b.WriteString("BIGINT")
		case data.Float:
			b.WriteString("DOUBLE")
		case data.Bool:
			b.WriteString("BOOLEAN")
		case data.Timestamp:
			b.WriteString("DATETIME(6)")
		default:
			if isKey[f.Name] {
				b.WriteString("VARCHAR(255)")
			} else {
				b.WriteString("LONGTEXT")
			}
		}
		if isKey[f.Name] {
			b.WriteString(" NOT NULL")
		}
	}
	if len(isKey) > 0 {
		q := make([]string, len(key))
		for i, k := range key {
			q[i] = quoteIdent(k)
		}
		b.WriteString(", PRIMARY KEY (" + strings.Join(q, ", ") + ")")
	}
	b.WriteString(") CHARACTER SET utf8mb4")
	return b.String()
}

// Write adds the rows of b to the transaction, sending an INSERT whenever
// rows_per_statement rows or half of max_allowed_packet have gathered.
func (s *Sink) Write(ctx context.Context, b *data.Batch) error {
	if s.done {
		return fmt.Errorf("mysql: writing %s: already committed or aborted", s.target)
	}
	if err := fileio.CheckBatch(s.schema, b); err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	for r := 0; r < b.Len; r++ {
		s.enc = s.enc[:0]
		for i := range b.Cols {
			col := &b.Cols[i]
			if col.IsNull(r) {
				s.args = append(s.args, nil)
				s.enc = append(s.enc, 0)
				s.bytes += 4
				continue
			}
			s.enc = append(s.enc, byte(col.Type))
			switch col.Type {
			case data.String:
				v := col.Strings[r]
				s.args = append(s.args, v)
				s.bytes += int64(len(v)) + 9
				s.enc = binary.AppendUvarint(s.enc, uint64(len(v)))
				s.enc = append(s.enc, v...)
			case data.Int:
				s.args = append(s.args, col.Ints[r])
				s.bytes += 9
				s.enc = binary.BigEndian.AppendUint64(s.enc, uint64(col.Ints[r]))
			case data.Float:
				v := col.Floats[r]
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("mysql: writing %s: row %d, column %q: %v cannot be stored in MySQL", s.target, rowPos(b, r), s.schema.Fields[i].Name, v)
				}
				s.args = append(s.args, v)
				s.bytes += 9
				s.enc = binary.BigEndian.AppendUint64(s.enc, math.Float64bits(v))
			case data.Bool:
				s.args = append(s.args, col.Bools[r])
				s.bytes += 2
				if col.Bools[r] {
					s.enc = append(s.enc, 1)
				} else {
					s.enc = append(s.enc, 0)
				}
			case data.Timestamp:
				t := col.Times[r].UTC().Truncate(time.Microsecond)
				s.args = append(s.args, t)
				s.bytes += 12
				s.enc = binary.BigEndian.AppendUint64(s.enc, uint64(t.UnixMicro()))
			}
		}
		s.sum.Write(s.enc)
		s.n += int64(len(s.enc))
		s.rows++
		if s.rows == s.perStmt || s.bytes >= s.byteLimit {
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

// flush sends the gathered rows as one INSERT.
func (s *Sink) flush(ctx context.Context) error {
	if s.rows == 0 {
		return nil
	}
	var err error
	if s.rows == s.perStmt {
		if s.full == nil {
			s.full, err = s.tx.PrepareContext(ctx, s.insertSQL(s.rows))
			if err != nil {
				return fmt.Errorf("mysql: preparing insert into %s: %w", s.target, err)
			}
		}
		_, err = s.full.ExecContext(ctx, s.args...)
	} else {
		_, err = s.tx.ExecContext(ctx, s.insertSQL(s.rows), s.args...)
	}
	if err != nil {
		return fmt.Errorf("mysql: inserting into %s: %w", s.target, err)
	}
	clear(s.args)
	s.args = s.args[:0]
	s.rows, s.bytes = 0, 0
	return nil
}

func (s *Sink) insertSQL(rows int) string {
	ncol := len(s.schema.Fields)
	one := "(" + strings.Repeat("?, ", ncol-1) + "?)"
	var b strings.Builder
	b.Grow(len(s.prefix) + rows*(len(one)+2) + len(s.suffix))
	b.WriteString(s.prefix)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	b.WriteString(s.suffix)
	return b.String()
}

// Commit sends the remaining rows and commits the transaction.
func (s *Sink) Commit(ctx context.Context) error {
	if s.done {
		return fmt.Errorf("mysql: committing %s: already committed or aborted", s.target)
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.closeStmt()
	if err := s.tx.Commit(); err != nil {
		return fmt.Errorf("mysql: committing load into %s: %w", s.target, err)
	}
	s.done = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("mysql: closing %s: %w", s.shown, err)
	}
	return nil
}

// Abort rolls the transaction back (and drops the table if OpenSink created
// it). It may follow a failed Commit.
func (s *Sink) Abort() error {
	if s.done {
		return nil
	}
	s.done = true
	s.closeStmt()
	err := s.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("mysql: rolling back load into %s: %w", s.target, err)
	}
	return errors.Join(err, s.dropCreated(), s.db.Close())
}

func (s *Sink) closeStmt() {
	if s.full != nil {
		_ = s.full.Close()
		s.full = nil
	}
}

// dropCreated drops the table OpenSink created, so an aborted load leaves
// the database as it found it.
func (s *Sink) dropCreated() error {
	if !s.created {
		return nil
	}
	s.created = false
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+s.target); err != nil {
		return fmt.Errorf("mysql: dropping %s created for the aborted load: %w", s.target, err)
	}
	return nil
}

// Output describes the load: the table, and the size and SHA-256 of the
// canonical encoding of the rows sent (per value: a type byte, then the
// value; 0 alone for null), which is the same for the same records
// whatever the database does with them.
func (s *Sink) Output() data.Output {
	return data.Output{Location: s.where, Bytes: s.n, SHA256: hex.EncodeToString(s.sum.Sum(nil))}
}
