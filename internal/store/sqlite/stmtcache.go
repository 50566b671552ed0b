package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedStmts bounds the statements one pool keeps prepared. The store's
// SQL is the fixed set of constants in queries.go and its siblings, plus the
// filter combinations ListRuns and ListAudit assemble from constant
// fragments: a few hundred texts at most, each pool seeing only its share.
// The bound is a guard, not a working size: should a query ever be built
// from something unbounded, the texts past the bound run unprepared, as
// every query did before the cache, instead of growing memory on every
// connection without limit. There is no eviction, so a full cache never
// churns (closing a statement the next call would prepare again).
const maxCachedStmts = 512

// stmtCache holds the statements prepared on one pool (*sql.DB), keyed by
// query text. A *sql.Stmt of a pool remembers the connections it has been
// prepared on and prepares itself on any other one it runs on, so one entry
// serves every connection of the pool. Without the cache every call would
// prepare (parse and plan) its SQL again; for the short statements of a
// state change, preparing costs as much CPU as running them.
//
// Statements are prepared in one of two ways, because of the writer's single
// connection:
//   - on the read pool (prepared), at the first use: a read outside a
//     transaction can always get a connection to prepare on;
//   - on the writer (lookup, then preparePending), after a transaction that
//     used the text has ended: during it, the transaction holds the pool's
//     only connection, so DB.PrepareContext would wait for it forever. Uses
//     before then run unprepared. A text is prepared after its second
//     unprepared use, not its first: a one-shot command such as `sluice
//     run` makes most of its writes once, and preparing each after the
//     transaction that used it would parse it a second time for nothing
//     (half a millisecond of a 20 ms run). A text used in every state
//     change is prepared from its second transaction on.
type stmtCache struct {
	db    *sql.DB
	limit int

	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]int // writer texts missed in a transaction, and how often
	closed  bool
	// prepares counts successful prepares, for tests that check statements
	// are reused rather than prepared again.
	prepares int
}

func newStmtCache(db *sql.DB, limit int) *stmtCache {
	return &stmtCache{db: db, limit: limit, stmts: make(map[string]*sql.Stmt)}
}

// prepareAfterMisses is how many unprepared uses of a writer text
// preparePending waits for before preparing it (see stmtCache).
const prepareAfterMisses = 2

// lookup returns the statement prepared for query, or nil. On nil it counts
// the miss for preparePending, unless the cache is full or closed.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.stmts[query]; s != nil {
		return s
	}
	if n, noted := c.pending[query]; noted {
		c.pending[query] = n + 1
	} else if !c.closed && len(c.stmts)+len(c.pending) < c.limit {
		if c.pending == nil {
			c.pending = make(map[string]int)
		}
		c.pending[query] = 1
	}
	return nil
}

// prepared returns the statement for query, preparing it on the pool if it
// is not cached yet. It returns nil, for the caller to run query unprepared,
// if the cache is closed or full or preparing failed: a query that cannot be
// prepared fails again when run, and then reports its error (the driver's
// error, wrapped by the operation as ever) where it always did.
func (c *stmtCache) prepared(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	s, full := c.stmts[query], c.closed || len(c.stmts) >= c.limit
	c.mu.Unlock()
	if s != nil || full {
		return s
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	return c.add(query, s)
}

// add caches s for query and returns the statement to use: s, or the one
// another goroutine cached first (s is then closed). It returns nil, closing
// s, if the cache was closed or filled meanwhile.
func (c *stmtCache) add(query string, s *sql.Stmt) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.stmts[query]; cur != nil {
		s.Close()
		return cur
	}
	if c.closed || len(c.stmts) >= c.limit {
		s.Close()
		return nil
	}
	c.stmts[query] = s
	c.prepares++
	return s
}

// preparePending prepares the texts lookup missed prepareAfterMisses
// times. Call it with no transaction of this goroutine open on the pool.
// Failures are dropped: the text runs unprepared and is noted again at its
// next miss.
func (c *stmtCache) preparePending(ctx context.Context) {
	c.mu.Lock()
	var due []string
	for query, n := range c.pending {
		if n >= prepareAfterMisses {
			due = append(due, query)
			delete(c.pending, query)
		}
	}
	c.mu.Unlock()
	for _, query := range due {
		if ctx.Err() != nil {
			return
		}
		if s, err := c.db.PrepareContext(ctx, query); err == nil {
			c.add(query, s)
		}
	}
}

// close closes every cached statement; later calls find nothing and run
// their SQL unprepared (failing on the closed pool as before).
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.Close())
		delete(c.stmts, q)
	}
	c.pending = nil
	return errors.Join(errs...)
}

// len returns the number of cached statements.
func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stmts)
}

// poolQuerier runs queries on a pool outside any transaction, through the
// pool's statement cache.
type poolQuerier struct{ c *stmtCache }

func (p poolQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := p.c.prepared(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return p.c.db.ExecContext(ctx, query, args...)
}

func (p poolQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := p.c.prepared(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return p.c.db.QueryContext(ctx, query, args...)
}

func (p poolQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := p.c.prepared(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return p.c.db.QueryRowContext(ctx, query, args...)
}

// txQuerier runs queries in a transaction, through the statement cache of
// the transaction's pool. Tx.StmtContext binds a cached statement to the
// transaction; database/sql reuses the driver statement already prepared on
// the transaction's connection (the writer's one connection, where
// preparePending prepared it), so nothing is parsed again. A text not cached
// yet runs unprepared, and is prepared once the transaction ends.
//
// A statement of the driver runs one query at a time: a second use of the
// same text in the same transaction resets the first's result rows. Every
// operation reads its rows to the end before its next query, so this holds;
// keep it so.
type txQuerier struct {
	tx *sql.Tx
	c  *stmtCache
}

func (t txQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.c.lookup(query); s != nil {
		return t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t txQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.c.lookup(query); s != nil {
		return t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t txQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.c.lookup(query); s != nil {
		return t.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
