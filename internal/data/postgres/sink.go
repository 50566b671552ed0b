package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// stageTable is the temporary table an upsert COPYs into; it lives in the
// session's own temporary schema and is dropped at commit.
const stageTable = "sluice_stage"

// stageSeq numbers the staged rows, so that the last row of a key wins.
const stageSeq = "sluice_seq"

// Sink loads batches into a table inside one transaction. It implements
// data.Sink and data.Outputer.
type Sink struct {
	conn   *pgx.Conn
	tx     pgx.Tx
	loc    string
	table  pgx.Identifier
	target pgx.Identifier // where COPY goes: the table, or the stage of an upsert
	schema *data.Schema
	cols   []string
	mode   string
	key    []string
	rows   int64
	src    batchRows
	ended  bool
}

var (
	_ data.Sink     = (*Sink)(nil)
	_ data.Outputer = (*Sink)(nil)
)

// OpenSink connects, begins the transaction, checks that the table exists
// (or creates it when create is set) and has every column of schema, and
// prepares the mode: replace deletes the table's rows, upsert creates its
// staging table. Nothing is visible to other sessions until Commit.
func OpenSink(ctx context.Context, cfg any, schema *data.Schema, env data.Env) (data.Sink, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Table == "":
		return nil, fmt.Errorf("postgres: table: required to write")
	case len(c.Args) > 0, c.BatchSize != 0, c.FetchSize != 0:
		return nil, fmt.Errorf("postgres: args, batch_size and fetch_size: apply only to reading")
	}
	table, _ := parseTable(c.Table) // checked by Validate
	for _, k := range c.Key {
		if schema.Index(k) < 0 {
			return nil, fmt.Errorf("postgres: key: column %q is not in the records (%s)", k, schema)
		}
	}
	cc, err := c.connConfig(env)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Sink{
		loc: location(cc) + "?table=" + c.Table, table: table, target: table,
		schema: schema, cols: schema.Names(), mode: c.Mode, key: c.Key,
	}
	if s.mode == "" {
		s.mode = ModeAppend
	}
	s.src.vals = make([]any, len(schema.Fields))
	s.conn, err = pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting to %s: %w", location(cc), err)
	}
	if err := s.start(ctx, c.Create); err != nil {
		_ = s.Abort()
		return nil, fmt.Errorf("postgres: %s: %w", s.loc, err)
	}
	return s, nil
}

func (s *Sink) start(ctx context.Context, create bool) error {
	var err error
	if s.tx, err = s.conn.Begin(ctx); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	name := s.table.Sanitize()
	var oid *uint32
	if err := s.tx.QueryRow(ctx, "SELECT to_regclass($1)::oid", name).Scan(&oid); err != nil {
		return fmt.Errorf("looking up table %s: %w", name, err)
	}
	if oid == nil {
		if !create {
			return fmt.Errorf("table %s: %w (create it, or set create: true)", name, ErrTableNotFound)
		}
		if _, err := s.tx.Exec(ctx, createSQL(s.table, s.schema)); err != nil {
			return fmt.Errorf("creating table %s: %w", name, err)
		}
	} else if err := s.checkColumns(ctx, *oid); err != nil {
		return err
	}
	switch s.mode {
	case ModeReplace:
		if _, err := s.tx.Exec(ctx, "DELETE FROM "+name); err != nil {
			return fmt.Errorf("deleting the rows of %s: %w", name, err)
		}
	case ModeUpsert:
		stage := pgx.Identifier{stageTable}.Sanitize()
		q := fmt.Sprintf("CREATE TEMPORARY TABLE %s ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA", stage, columnList(s.cols), name)
		if _, err := s.tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("creating the staging table: %w", err)
		}
		q = fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s bigint GENERATED ALWAYS AS IDENTITY", stage, pgx.Identifier{stageSeq}.Sanitize())
		if _, err := s.tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("numbering the staging table: %w", err)
		}
		s.target = pgx.Identifier{stageTable}
	}
	return nil
}

// checkColumns names every record column the table lacks, so a mismatch
// fails at open rather than at the first COPY (or never, for no rows).
func (s *Sink) checkColumns(ctx context.Context, oid uint32) error {
	rows, err := s.tx.Query(ctx, "SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped", oid)
	if err != nil {
		return fmt.Errorf("reading the columns of %s: %w", s.table.Sanitize(), err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading the columns of %s: %w", s.table.Sanitize(), err)
	}
	var missing []string
	for _, c := range s.cols {
		if !slices.Contains(have, c) {
			missing = append(missing, fmt.Sprintf("%q", c))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("table %s has no column %s (it has %s)", s.table.Sanitize(), strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	return nil
}

// pgTypes are the column types of a table created from a schema.
var pgTypes = [...]string{data.String: "text", data.Int: "bigint", data.Float: "double precision", data.Bool: "boolean", data.Timestamp: "timestamptz"}

func createSQL(table pgx.Identifier, schema *data.Schema) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE ")
	b.WriteString(table.Sanitize())
	b.WriteString(" (")
	for i, f := range schema.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{f.Name}.Sanitize())
		b.WriteByte(' ')
		b.WriteString(pgTypes[f.Type])
	}
	b.WriteString(")")
	return b.String()
}

func columnList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// Write COPYs the batch into the table (or the staging table).
func (s *Sink) Write(ctx context.Context, b *data.Batch) error {
	if s.ended {
		return fmt.Errorf("postgres: writing %s: sink already committed or aborted", s.loc)
	}
	if err := fileio.CheckBatch(s.schema, b); err != nil {
		return fmt.Errorf("postgres: writing %s: %w", s.loc, err)
	}
	if b.Len == 0 {
		return nil
	}
	s.src.reset(b)
	n, err := s.tx.CopyFrom(ctx, s.target, s.cols, &s.src)
	s.rows += n
	if err != nil {
		at := ""
		if r := s.src.row; r >= 0 && r < b.Len && len(b.Pos) == b.Len {
			at = fmt.Sprintf(" (the row from source position %d or shortly before)", b.Pos[r])
		}
		return fmt.Errorf("postgres: copying into %s%s: %w", s.loc, at, err)
	}
	return nil
}

// batchRows feeds one batch to pgx's COPY, reusing one value slice.
type batchRows struct {
	b    *data.Batch
	row  int
	vals []any
}

func (r *batchRows) reset(b *data.Batch) { r.b, r.row = b, -1 }

func (r *batchRows) Next() bool {
	r.row++
	return r.row < r.b.Len
}

func (r *batchRows) Values() ([]any, error) {
	for i := range r.b.Cols {
		c := &r.b.Cols[i]
		if c.IsNull(r.row) {
			r.vals[i] = nil
			continue
		}
		switch c.Type {
		case data.String:
			r.vals[i] = c.Strings[r.row]
		case data.Int:
			r.vals[i] = c.Ints[r.row]
		case data.Float:
			r.vals[i] = c.Floats[r.row]
		case data.Bool:
			r.vals[i] = c.Bools[r.row]
		case data.Timestamp:
			r.vals[i] = c.Times[r.row]
		}
	}
	return r.vals, nil
}

func (r *batchRows) Err() error { return nil }

// Commit merges an upsert's staged rows and commits the transaction: the
// load becomes visible to other sessions all at once.
func (s *Sink) Commit(ctx context.Context) error {
	if s.ended {
		return fmt.Errorf("postgres: committing %s: sink already committed or aborted", s.loc)
	}
	if s.mode == ModeUpsert {
		if _, err := s.tx.Exec(ctx, s.upsertSQL()); err != nil {
			return fmt.Errorf("postgres: merging into %s: %w", s.loc, err)
		}
	}
	if err := s.tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: committing %s: %w", s.loc, err)
	}
	s.tx = nil
	s.ended = true
	s.closeConn()
	return nil
}

// upsertSQL merges the stage into the table, keeping the last staged row
// of each key (ON CONFLICT cannot update one row twice in a statement).
func (s *Sink) upsertSQL() string {
	cols := columnList(s.cols)
	keys := columnList(s.key)
	var set []string
	for _, c := range s.cols {
		if !slices.Contains(s.key, c) {
			id := pgx.Identifier{c}.Sanitize()
			set = append(set, id+" = EXCLUDED."+id)
		}
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT DISTINCT ON (%s) %s FROM %s ORDER BY %s, %s DESC ON CONFLICT (%s) %s",
		s.table.Sanitize(), cols, keys, cols, pgx.Identifier{stageTable}.Sanitize(), keys, pgx.Identifier{stageSeq}.Sanitize(), keys, action)
}

// Output names the table loaded, without credentials. A table has no
// file bytes to digest, so Bytes and SHA256 are empty.
func (s *Sink) Output() data.Output { return data.Output{Location: s.loc} }

// Rows returns the number of rows copied so far.
func (s *Sink) Rows() int64 { return s.rows }

// Abort rolls the transaction back: the table is as it was before the
// sink opened. Calling it again, or after Commit, does nothing.
func (s *Sink) Abort() error {
	s.ended = true
	if s.conn == nil {
		return nil
	}
	var err error
	if s.tx != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		err = s.tx.Rollback(ctx)
		cancel()
		s.tx = nil
	}
	s.closeConn()
	if err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		// The connection is closed either way, which rolls back too.
		return fmt.Errorf("postgres: rolling back %s: %w", s.loc, err)
	}
	return nil
}

func (s *Sink) closeConn() {
	if s.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_ = s.conn.Close(ctx) // the transaction is already settled; nothing is lost
	s.conn = nil
}
