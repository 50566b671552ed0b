package mysql

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/data/sqlrows"
)

// Source streams the rows of a query. It implements data.Source.
type Source struct {
	db    *sql.DB
	r     *sqlrows.Reader
	shown string // the connection target, without password
}

var _ data.Source = (*Source)(nil)

// OpenSource connects with cfg (a *Config), runs its query with its
// arguments bound as parameters, and derives the schema from the result's
// column types. Bad credentials, an unreachable server or a query the
// server rejects (such as a missing table) are errors.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	if c.Query == "" {
		return nil, fmt.Errorf("mysql: query: required to read")
	}
	if c.Mode != "" && c.Mode != ModeAppend || len(c.Key) > 0 || c.Create || c.RowsPerStatement != 0 {
		return nil, fmt.Errorf("mysql: mode, key, create and rows_per_statement apply only to writing")
	}
	args := make([]any, len(c.Args))
	for i, a := range c.Args {
		v, err := expand(env, fmt.Sprintf("args[%d]", i), a)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	db, _, shown, err := open(ctx, c, env)
	if err != nil {
		return nil, err
	}
	r, err := sqlrows.Open(ctx, db, &dialect, sqlrows.Query{
		SQL: c.Query, Args: args, Where: shown, Pos: "query row", Types: c.Types,
		BatchSize: fileio.BatchSize(c.BatchSize, env), Quarantine: env.Quarantine,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Source{db: db, r: r, shown: shown}, nil
}

// typeOf maps a MySQL column type, as the driver names it, to a column type.
// DECIMAL is kept as a string so that no digit is lost; cast it in a
// transform where a float will do.
func typeOf(dbType string) data.Type {
	t := strings.TrimPrefix(dbType, "UNSIGNED ")
	switch t {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR", "BIT":
		return data.Int
	case "FLOAT", "DOUBLE":
		return data.Float
	case "DATE", "DATETIME", "TIMESTAMP":
		return data.Timestamp
	}
	return data.String
}

// decoder turns MySQL's BIT values, delivered as big-endian bytes, into
// integers.
func decoder(dbType string) sqlrows.Decoder {
	if dbType != "BIT" {
		return nil
	}
	return func(v any) (any, string) {
		b, ok := v.([]byte)
		if !ok {
			return v, ""
		}
		if len(b) > 8 {
			return nil, "BIT value wider than 64 bits"
		}
		var buf [8]byte
		copy(buf[8-len(b):], b)
		return binary.BigEndian.Uint64(buf[:]), ""
	}
}

// Schema returns the schema of the batches.
func (s *Source) Schema() *data.Schema { return s.r.Schema() }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call. A connection lost mid-result is an error, never a
// silent end of input.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) { return s.r.Next(ctx) }

// Close ends the query and the connection.
func (s *Source) Close() error {
	if !s.r.Done() {
		// Abandoning a result: dropping the connection is immediate,
		// where draining the rest of the rows could take minutes.
		_ = s.r.Close()
		return s.closeDB()
	}
	return errors.Join(s.closeRows(), s.closeDB())
}

func (s *Source) closeRows() error {
	if err := s.r.Close(); err != nil {
		return fmt.Errorf("mysql: closing %s: %w", s.shown, err)
	}
	return nil
}

func (s *Source) closeDB() error {
	err := s.db.Close()
	if err != nil {
		return fmt.Errorf("mysql: closing %s: %w", s.shown, err)
	}
	return nil
}
