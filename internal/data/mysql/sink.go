package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/sqlrows"
)

// Sink loads records into a table inside one transaction. It implements
// data.Sink and data.Outputer.
type Sink struct {
	db      *sql.DB
	l       *sqlrows.Loader
	shown   string
	target  string // `db`.`table` or `table`, quoted
	schema  *data.Schema
	created bool // the table was created by OpenSink; Abort drops it
	where   string
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
	if err := sqlrows.CheckRecords(c.Table, schema, c.Key); err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
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
	s := &Sink{db: db, shown: shown, target: target, schema: schema,
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
		if name, missing := sqlrows.MissingColumn(schema, cols); missing {
			return nil, fmt.Errorf("mysql: %s: table %s.%s has no column %q (records have %s)", shown, dbName, table, name, schema)
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
	perStmt := c.RowsPerStatement
	if perStmt == 0 {
		perStmt = DefaultRowsPerStatement
	}
	var suffix string
	if c.Mode == ModeUpsert {
		var set []string
		for _, name := range sqlrows.Updated(s.schema, c.Key) {
			q := quoteIdent(name)
			set = append(set, q+" = VALUES("+q+")")
		}
		if len(set) == 0 { // every column is key: a duplicate changes nothing
			q := quoteIdent(s.schema.Fields[0].Name)
			set = append(set, q+" = "+q)
		}
		suffix = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mysql: %s: beginning transaction: %w", s.shown, err)
	}
	if c.Mode == ModeReplace {
		// DELETE, not TRUNCATE: TRUNCATE commits implicitly, which would
		// empty the table for everyone before the load is complete.
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+s.target); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("mysql: %s: emptying %s for replace: %w", s.shown, s.target, err)
		}
	}
	s.l = sqlrows.NewLoader(tx, s.schema, &dialect, sqlrows.Load{
		Target: s.target, Table: s.target, Into: s.target, Suffix: suffix,
		RowsPerStatement: perStmt, MaxBytes: maxPacket / 2,
	})
	return nil
}

// tableColumns returns the lower-cased column names of a table, none if it
// does not exist.
func tableColumns(ctx context.Context, db *sql.DB, dbName, table string) (map[string]bool, error) {
	cols, err := sqlrows.ColumnNames(ctx, db,
		"SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", dbName, table)
	if err != nil {
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
	if mode != ModeUpsert {
		key = nil
	}
	return sqlrows.CreateTable(&dialect, target, schema, key, func(f data.Field, isKey bool) string {
		var t string
		switch f.Type {
		case data.Int:
			t = "BIGINT"
		case data.Float:
			t = "DOUBLE"
		case data.Bool:
			t = "BOOLEAN"
		case data.Timestamp:
			t = "DATETIME(6)"
		default:
			if isKey {
				t = "VARCHAR(255)"
			} else {
				t = "LONGTEXT"
			}
		}
		if isKey {
			t += " NOT NULL"
		}
		return t
	}) + " CHARACTER SET utf8mb4"
}

// Write adds the rows of b to the transaction, sending an INSERT whenever
// rows_per_statement rows or half of max_allowed_packet have gathered.
func (s *Sink) Write(ctx context.Context, b *data.Batch) error { return s.l.Write(ctx, b) }

// Commit sends the remaining rows and commits the transaction.
func (s *Sink) Commit(ctx context.Context) error {
	if err := s.l.Commit(ctx); err != nil {
		return err
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("mysql: closing %s: %w", s.shown, err)
	}
	return nil
}

// Abort rolls the transaction back (and drops the table if OpenSink created
// it). It may follow a failed Commit.
func (s *Sink) Abort() error {
	if s.l.Done() {
		return nil
	}
	return errors.Join(s.l.Rollback(), s.dropCreated(), s.db.Close())
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
func (s *Sink) Output() data.Output { return s.l.Output(s.where) }
