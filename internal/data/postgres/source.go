package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// cursorName names the one cursor a source declares on its connection.
const cursorName = "sluice_cursor"

// cleanupTimeout bounds the statements that release a connection, which
// run after the caller's context may be gone.
const cleanupTimeout = 5 * time.Second

// decoder says how one result column becomes a data column.
type decoder uint8

const (
	decText decoder = iota // any type, in the server's text form
	decInt2
	decInt4
	decInt8
	decFloat4
	decFloat8
	decBool
	decTimestamp // timestamp and timestamptz: microseconds since 2000-01-01
	decDate      // days since 2000-01-01
)

// binaryOIDs are the types read in binary form and decoded to a native
// column type; every other type is read as text into a string column.
var binaryOIDs = map[uint32]struct {
	dec decoder
	typ data.Type
}{
	pgtype.Int2OID:        {decInt2, data.Int},
	pgtype.Int4OID:        {decInt4, data.Int},
	pgtype.Int8OID:        {decInt8, data.Int},
	pgtype.Float4OID:      {decFloat4, data.Float},
	pgtype.Float8OID:      {decFloat8, data.Float},
	pgtype.BoolOID:        {decBool, data.Bool},
	pgtype.TimestampOID:   {decTimestamp, data.Timestamp},
	pgtype.TimestamptzOID: {decTimestamp, data.Timestamp},
	pgtype.DateOID:        {decDate, data.Timestamp},
}

// resultFormats asks for binary results for the types decoded natively
// and text for the rest.
var resultFormats = func() pgx.QueryResultFormatsByOID {
	m := pgx.QueryResultFormatsByOID{}
	for oid := range binaryOIDs {
		m[oid] = pgx.BinaryFormatCode
	}
	return m
}()

// pgEpoch is the zero of PostgreSQL's binary timestamps and dates.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Source reads a query's result through a cursor. It implements
// data.Source.
type Source struct {
	conn   *pgx.Conn
	tx     pgx.Tx
	loc    string
	schema *data.Schema
	decs   []decoder
	bd     *fileio.Builder
	batch  int
	fetch  int
	q      data.Quarantine
	rows   pgx.Rows // the result of the first FETCH, read by the first Next
	row    int64    // rows read so far, the position of the last
	done   bool
}

var _ data.Source = (*Source)(nil)

// OpenSource connects, declares a cursor for the query in a read-only
// transaction, and fetches the first rows to learn the result's schema.
//
// Column types map as follows: smallint, integer and bigint to int; real
// and double precision to float; boolean to bool; timestamp, timestamptz
// and date to timestamp (UTC, microseconds; timestamp without time zone
// is taken as UTC); null to null. Every other type, numeric included, is
// read as a string in PostgreSQL's text form: numeric keeps all its
// digits (a float would round amounts silently), uuid, json and jsonb
// read as their text, arrays as {a,b}, bytea as \x hex. Cast in the query
// (::float8) to get another type. A row holding an infinite timestamp or
// date, which no data type can hold, goes to quarantine.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Query == "":
		return nil, fmt.Errorf("postgres: query: required to read")
	case c.Mode != ModeAppend && c.Mode != "", len(c.Key) > 0, c.Create:
		return nil, fmt.Errorf("postgres: mode, key and create: apply only to writing")
	}
	args := make([]any, len(c.Args))
	for i, a := range c.Args {
		v, err := env.Expand(a)
		if err != nil {
			return nil, fmt.Errorf("postgres: args: entry %d: %w", i+1, err)
		}
		args[i] = v
	}
	cc, err := c.connConfig(env)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Source{loc: location(cc), batch: fileio.BatchSize(c.BatchSize, env), q: env.Quarantine}
	s.fetch = s.batch
	if c.FetchSize > 0 {
		s.fetch = c.FetchSize
	}
	s.conn, err = pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting to %s: %w", s.loc, err)
	}
	if err := s.start(ctx, c.Query, args); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("postgres: %s: %w", s.loc, err)
	}
	return s, nil
}

func (s *Source) start(ctx context.Context, query string, args []any) error {
	var err error
	s.tx, err = s.conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("beginning read-only transaction: %w", err)
	}
	query = strings.TrimRight(strings.TrimSpace(query), "; \t\r\n")
	if _, err := s.tx.Exec(ctx, "DECLARE "+cursorName+" NO SCROLL CURSOR FOR "+query, args...); err != nil {
		return fmt.Errorf("running query: %w", err)
	}
	s.rows, err = s.fetchRows(ctx, min(s.fetch, s.batch))
	if err != nil {
		return err
	}
	fds := s.rows.FieldDescriptions()
	fields := make([]data.Field, len(fds))
	s.decs = make([]decoder, len(fds))
	for i, fd := range fds {
		fields[i] = data.Field{Name: fd.Name, Type: data.String}
		if m, ok := binaryOIDs[fd.DataTypeOID]; ok {
			fields[i].Type, s.decs[i] = m.typ, m.dec
		}
	}
	s.schema, err = data.NewSchema(fields...)
	if err != nil {
		return fmt.Errorf("query result: %w (give the columns distinct names with AS)", err)
	}
	s.bd = fileio.NewBuilder(s.schema, s.batch)
	return nil
}

func (s *Source) fetchRows(ctx context.Context, n int) (pgx.Rows, error) {
	rows, err := s.tx.Query(ctx, fmt.Sprintf("FETCH %d FROM %s", n, cursorName), resultFormats)
	if err != nil {
		return nil, fmt.Errorf("fetching rows after row %d: %w", s.row, err)
	}
	return rows, nil
}

// Schema returns the schema of the query's result.
func (s *Source) Schema() *data.Schema { return s.schema }

// Next returns the next batch of at most batch_size rows.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	s.bd.Reset()
	for !s.done && s.bd.B.Len < s.batch {
		want := min(s.fetch, s.batch-s.bd.B.Len)
		rows := s.rows
		s.rows = nil
		if rows == nil {
			var err error
			if rows, err = s.fetchRows(ctx, want); err != nil {
				return nil, fmt.Errorf("postgres: %s: %w", s.loc, err)
			}
		}
		got, err := s.read(ctx, rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", s.loc, err)
		}
		if got < want {
			s.done = true
		}
	}
	if s.bd.B.Len == 0 && s.done {
		return nil, data.ErrEndOfInput
	}
	return s.bd.B, nil
}

// read appends the rows of one FETCH to the batch and returns how many the
// server sent.
func (s *Source) read(ctx context.Context, rows pgx.Rows) (int, error) {
	defer rows.Close()
	got := 0
	for rows.Next() {
		got++
		s.row++
		vals := rows.RawValues()
		if len(vals) != len(s.decs) {
			return got, fmt.Errorf("row %d: %d values for %d columns", s.row, len(vals), len(s.decs))
		}
		reason, err := s.appendRow(vals)
		if err != nil {
			return got, fmt.Errorf("row %d: %w", s.row, err)
		}
		if reason != "" {
			s.bd.DropRow()
			r := data.Reject{Pos: fmt.Sprintf("%s query row %d", s.loc, s.row), Reason: reason, Raw: rawRow(s.schema, vals, s.decs)}
			if err := s.q.Reject(ctx, r); err != nil {
				return got, fmt.Errorf("quarantining row %d: %w", s.row, err)
			}
			continue
		}
		s.bd.EndRow(s.row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return got, fmt.Errorf("reading the result after row %d: %w", s.row, err)
	}
	return got, nil
}

// appendRow decodes one row into the builder. A non-empty reason rejects
// the row; an error means the result cannot be trusted at all.
func (s *Source) appendRow(vals [][]byte) (reason string, err error) {
	for i, v := range vals {
		if v == nil {
			s.bd.AppendNull(i)
			continue
		}
		d := s.decs[i]
		if want := wireSize(d); want > 0 && len(v) != want {
			return "", fmt.Errorf("column %q: %d bytes, want %d", s.schema.Fields[i].Name, len(v), want)
		}
		switch d {
		case decText:
			s.bd.AppendString(i, string(v))
		case decInt2:
			s.bd.AppendInt(i, int64(int16(binary.BigEndian.Uint16(v))))
		case decInt4:
			s.bd.AppendInt(i, int64(int32(binary.BigEndian.Uint32(v))))
		case decInt8:
			s.bd.AppendInt(i, int64(binary.BigEndian.Uint64(v)))
		case decFloat4:
			s.bd.AppendFloat(i, float64(math.Float32frombits(binary.BigEndian.Uint32(v))))
		case decFloat8:
			s.bd.AppendFloat(i, math.Float64frombits(binary.BigEndian.Uint64(v)))
		case decBool:
			s.bd.AppendBool(i, v[0] != 0)
		case decTimestamp:
			us := int64(binary.BigEndian.Uint64(v))
			if us == math.MaxInt64 || us == math.MinInt64 {
				return fmt.Sprintf("column %q: an infinite timestamp cannot be represented", s.schema.Fields[i].Name), nil
			}
			s.bd.AppendTime(i, pgEpoch.Add(time.Duration(us)*time.Microsecond))
		case decDate:
			days := int32(binary.BigEndian.Uint32(v))
			if days == math.MaxInt32 || days == math.MinInt32 {
				return fmt.Sprintf("column %q: an infinite date cannot be represented", s.schema.Fields[i].Name), nil
			}
			s.bd.AppendTime(i, pgEpoch.AddDate(0, 0, int(days)))
		}
	}
	return "", nil
}

func wireSize(d decoder) int {
	switch d {
	case decBool:
		return 1
	case decInt2:
		return 2
	case decInt4, decFloat4, decDate:
		return 4
	case decInt8, decFloat8, decTimestamp:
		return 8
	}
	return 0
}

// rawRow renders a rejected row for the quarantine: name=value pairs,
// binary values shown by their meaning where it is simple.
func rawRow(schema *data.Schema, vals [][]byte, decs []decoder) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(schema.Fields[i].Name)
		b.WriteByte('=')
		switch {
		case v == nil:
			b.WriteString("NULL")
		case decs[i] == decText:
			b.WriteString(fileio.Quote(string(v)))
		case decs[i] == decTimestamp && len(v) == 8:
			us := int64(binary.BigEndian.Uint64(v))
			switch us {
			case math.MaxInt64:
				b.WriteString("infinity")
			case math.MinInt64:
				b.WriteString("-infinity")
			default:
				b.WriteString(pgEpoch.Add(time.Duration(us) * time.Microsecond).Format(time.RFC3339Nano))
			}
		case decs[i] == decDate && len(v) == 4:
			days := int32(binary.BigEndian.Uint32(v))
			switch days {
			case math.MaxInt32:
				b.WriteString("infinity")
			case math.MinInt32:
				b.WriteString("-infinity")
			default:
				b.WriteString(pgEpoch.AddDate(0, 0, int(days)).Format(time.DateOnly))
			}
		default:
			fmt.Fprintf(&b, "%x", v)
		}
	}
	return b.String()
}

// Close ends the transaction and the connection. Nothing was written, so
// ending the transaction is a rollback.
func (s *Source) Close() error {
	if s.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if s.rows != nil {
		s.rows.Close()
		s.rows = nil
	}
	if s.tx != nil {
		_ = s.tx.Rollback(ctx) // fails only when the connection is gone, which Close reports
		s.tx = nil
	}
	err := s.conn.Close(ctx)
	s.conn = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("postgres: closing connection to %s: %w", s.loc, err)
	}
	return nil
}
