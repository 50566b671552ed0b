package sqlrows

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

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Load is one load for a Loader to carry out.
type Load struct {
	// Target is the table as the INSERT names it, quoted.
	Target string
	// Table names the table in the messages about writing and committing,
	// e.g. `"customers"`.
	Table string
	// Into names the load in the messages about the statements it sends,
	// e.g. `"customers" of /data/crm.db`.
	Into string
	// Suffix follows the VALUES rows of every INSERT: the upsert clause.
	Suffix string
	// RowsPerStatement is how many rows one INSERT carries, capped so that
	// it has at most the dialect's MaxParams parameters.
	RowsPerStatement int
	// MaxBytes sends the gathered rows early once their estimated size
	// reaches it; 0 sets no limit.
	MaxBytes int64
}

// Loader writes batches into a table, in a transaction its caller began and
// hands over, as multi-row INSERTs of RowsPerStatement rows (the full ones
// through one prepared statement). It hashes a canonical encoding of every
// row it sends: per value a type byte then the value, 0 alone for null, so
// that the same records give the same digest whatever the database stores.
type Loader struct {
	d         *Dialect
	tx        *sql.Tx
	schema    *data.Schema
	table     string
	into      string
	perStmt   int
	byteLimit int64
	prefix    string
	suffix    string
	one       string    // "(?, ?, ...)"
	full      *sql.Stmt // the prepared INSERT of perStmt rows
	args      []any
	rows      int
	bytes     int64

	sum  hash.Hash
	enc  []byte
	n    int64
	done bool
}

// NewLoader returns a loader of records of schema (at least one field)
// into l.Target within tx.
func NewLoader(tx *sql.Tx, schema *data.Schema, d *Dialect, l Load) *Loader {
	ncol := len(schema.Fields)
	names := make([]string, ncol)
	for i, f := range schema.Fields {
		names[i] = d.Quote(f.Name)
	}
	perStmt := min(l.RowsPerStatement, d.MaxParams/ncol)
	return &Loader{
		d: d, tx: tx, schema: schema, table: l.Table, into: l.Into,
		perStmt:   perStmt,
		byteLimit: l.MaxBytes,
		prefix:    "INSERT INTO " + l.Target + " (" + strings.Join(names, ", ") + ") VALUES ",
		suffix:    l.Suffix,
		one:       "(" + strings.Repeat("?, ", ncol-1) + "?)",
		args:      make([]any, 0, perStmt*ncol),
		sum:       sha256.New(),
	}
}

// Prepare prepares the INSERT of a full statement's rows now rather than at
// the first full statement, so that an INSERT the database rejects (an
// upsert key without a unique index) fails before any data flows. The
// error is the driver's, for the caller to place.
func (l *Loader) Prepare(ctx context.Context) error {
	if l.full != nil {
		return nil
	}
	st, err := l.tx.PrepareContext(ctx, l.insertSQL(l.perStmt))
	if err != nil {
		return err
	}
	l.full = st
	return nil
}

// Write adds the rows of b to the transaction, sending an INSERT whenever
// a statement's rows (or MaxBytes) have gathered.
func (l *Loader) Write(ctx context.Context, b *data.Batch) error {
	if l.done {
		return fmt.Errorf("%s: writing %s: already committed or aborted", l.d.Name, l.table)
	}
	if err := fileio.CheckBatch(l.schema, b); err != nil {
		return fmt.Errorf("%s: %w", l.d.Name, err)
	}
	for r := 0; r < b.Len; r++ {
		l.enc = l.enc[:0]
		for i := range b.Cols {
			col := &b.Cols[i]
			if col.IsNull(r) {
				l.args = append(l.args, nil)
				l.enc = append(l.enc, 0)
				l.bytes += 4
				continue
			}
			l.enc = append(l.enc, byte(col.Type))
			switch col.Type {
			case data.String:
				v := col.Strings[r]
				l.args = append(l.args, v)
				l.bytes += int64(len(v)) + 9
				l.enc = binary.AppendUvarint(l.enc, uint64(len(v)))
				l.enc = append(l.enc, v...)
			case data.Int:
				l.args = append(l.args, col.Ints[r])
				l.bytes += 9
				l.enc = binary.BigEndian.AppendUint64(l.enc, uint64(col.Ints[r]))
			case data.Float:
				v := col.Floats[r]
				if l.d.FloatReason != nil {
					if reason := l.d.FloatReason(v); reason != "" {
						return fmt.Errorf("%s: writing %s: row %d, column %q: %s", l.d.Name, l.table, rowPos(b, r), l.schema.Fields[i].Name, reason)
					}
				}
				l.args = append(l.args, v)
				l.bytes += 9
				l.enc = binary.BigEndian.AppendUint64(l.enc, math.Float64bits(v))
			case data.Bool:
				v := col.Bools[r]
				if l.d.BoolArg != nil {
					l.args = append(l.args, l.d.BoolArg(v))
				} else {
					l.args = append(l.args, v)
				}
				l.bytes += 2
				if v {
					l.enc = append(l.enc, 1)
				} else {
					l.enc = append(l.enc, 0)
				}
			case data.Timestamp:
				t := col.Times[r].UTC().Truncate(time.Microsecond)
				if l.d.TimeArg != nil {
					l.args = append(l.args, l.d.TimeArg(t))
				} else {
					l.args = append(l.args, t)
				}
				l.bytes += 12
				l.enc = binary.BigEndian.AppendUint64(l.enc, uint64(t.UnixMicro()))
			}
		}
		l.sum.Write(l.enc)
		l.n += int64(len(l.enc))
		l.rows++
		if l.rows == l.perStmt || l.byteLimit > 0 && l.bytes >= l.byteLimit {
			if err := l.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// rowPos is the position of row r of b in its source, for messages.
func rowPos(b *data.Batch, r int) int64 {
	if r < len(b.Pos) {
		return b.Pos[r]
	}
	return int64(r + 1)
}

// flush sends the gathered rows as one INSERT.
func (l *Loader) flush(ctx context.Context) error {
	if l.rows == 0 {
		return nil
	}
	var err error
	if l.rows == l.perStmt {
		if l.full == nil {
			l.full, err = l.tx.PrepareContext(ctx, l.insertSQL(l.rows))
			if err != nil {
				return fmt.Errorf("%s: preparing insert into %s: %w", l.d.Name, l.into, err)
			}
		}
		_, err = l.full.ExecContext(ctx, l.args...)
	} else {
		_, err = l.tx.ExecContext(ctx, l.insertSQL(l.rows), l.args...)
	}
	if err != nil {
		return fmt.Errorf("%s: inserting into %s: %w", l.d.Name, l.into, err)
	}
	clear(l.args)
	l.args = l.args[:0]
	l.rows, l.bytes = 0, 0
	return nil
}

func (l *Loader) insertSQL(rows int) string {
	var b strings.Builder
	b.Grow(len(l.prefix) + rows*(len(l.one)+2) + len(l.suffix))
	b.WriteString(l.prefix)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.one)
	}
	b.WriteString(l.suffix)
	return b.String()
}

// Commit sends the remaining rows and commits the transaction. After a
// failed Commit, Rollback still runs (and finds the transaction over).
func (l *Loader) Commit(ctx context.Context) error {
	if l.done {
		return fmt.Errorf("%s: committing %s: already committed or aborted", l.d.Name, l.table)
	}
	if err := l.flush(ctx); err != nil {
		return err
	}
	l.closeStmt()
	if err := l.tx.Commit(); err != nil {
		return fmt.Errorf("%s: committing load into %s: %w", l.d.Name, l.into, err)
	}
	l.done = true
	return nil
}

// Done reports whether the load was committed or rolled back.
func (l *Loader) Done() bool { return l.done }

// Rollback rolls the transaction back, unless the load is already done. A
// transaction already over (after a failed Commit) is not an error.
func (l *Loader) Rollback() error {
	if l.done {
		return nil
	}
	l.done = true
	l.closeStmt()
	err := l.tx.Rollback()
	if err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("%s: rolling back load into %s: %w", l.d.Name, l.into, err)
	}
	return nil
}

func (l *Loader) closeStmt() {
	if l.full != nil {
		_ = l.full.Close()
		l.full = nil
	}
}

// Output describes the rows sent at location: the size and hex SHA-256 of
// their canonical encoding.
func (l *Loader) Output(location string) data.Output {
	return data.Output{Location: location, Bytes: l.n, SHA256: hex.EncodeToString(l.sum.Sum(nil))}
}
