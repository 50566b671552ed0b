package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/data/sqlrows"
)

// Source streams the rows of a query. It implements data.Source.
type Source struct {
	db   *sql.DB
	r    *sqlrows.Reader
	path string
}

var _ data.Source = (*Source)(nil)

// OpenSource opens the database file of cfg (a *Config) read-only, runs
// its query with its arguments bound as parameters, and derives the schema
// from the result columns' declared types (see typeOf); a column without
// one takes the type of its value in the first row. A missing file, or a
// query SQLite rejects (such as one naming a missing table), is an error.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	if c.Query == "" {
		return nil, fmt.Errorf("sqlite: query: required to read")
	}
	if c.Mode != "" && c.Mode != ModeAppend || len(c.Key) > 0 || c.Create {
		return nil, fmt.Errorf("sqlite: mode, key and create apply only to writing")
	}
	path, err := fileio.ResolvePath(env, c.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	args := make([]any, len(c.Args))
	for i, a := range c.Args {
		v, err := env.Expand(a)
		if err != nil {
			return nil, fmt.Errorf("sqlite: expanding args[%d]: %w", i, err)
		}
		args[i] = v
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: database %s does not exist", path)
		}
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db, err := openDB(path, true)
	if err != nil {
		return nil, err
	}
	r, err := sqlrows.Open(ctx, db, &dialect, sqlrows.Query{
		SQL: c.Query, Args: args, Where: path, Pos: path + " row", Types: c.Types,
		BatchSize: fileio.BatchSize(c.BatchSize, env), Quarantine: env.Quarantine,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Source{db: db, r: r, path: path}, nil
}

// typeOf maps a declared column type to a column type, following SQLite's
// affinity rules where they apply: a name containing INT is an integer,
// CHAR, CLOB or TEXT text, REAL, FLOA or DOUB (and NUMERIC or DECIMAL,
// which SQLite stores as integer or real) a float. Names containing BOOL
// are bool, DATE or TIMESTAMP timestamp. Any other declared name, BLOB
// included, is a string. No declared type (an expression, or a column
// declared without one) is Invalid: the caller infers it from a value.
func typeOf(decl string) data.Type {
	d := strings.ToUpper(decl)
	switch {
	case d == "":
		return data.Invalid
	case strings.Contains(d, "BOOL"):
		return data.Bool
	case strings.Contains(d, "DATE"), strings.Contains(d, "TIMESTAMP"):
		return data.Timestamp
	case strings.Contains(d, "INT"):
		return data.Int
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return data.String
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"),
		strings.Contains(d, "NUMERIC"), strings.Contains(d, "DECIMAL"):
		return data.Float
	}
	return data.String
}

// Schema returns the schema of the batches.
func (s *Source) Schema() *data.Schema { return s.r.Schema() }

// Next returns the next batch, or data.ErrEndOfInput. The batch is reused
// by the following call.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) { return s.r.Next(ctx) }

// Close ends the query and closes the file.
func (s *Source) Close() error {
	err := errors.Join(s.r.Close(), s.db.Close())
	if err != nil {
		return fmt.Errorf("sqlite: closing %s: %w", s.path, err)
	}
	return nil
}
