// Package sqlite is the embedded implementation of store.Store: one SQLite
// file in the state directory, through the pure-Go modernc.org/sqlite driver.
//
// Layout of the connections: one writer connection (every write and every
// transaction, begun IMMEDIATE so that two writers never deadlock upgrading a
// read lock) and a small pool of read-only connections for the reads made
// outside a transaction; WAL lets those readers proceed while the writer
// commits. Every connection gets the same pragmas through the DSN, so a
// connection the pool opens later is configured like the first. Each pool
// keeps the statements it runs prepared (see stmtCache), so a query is
// parsed and planned once per connection rather than at every call.
//
// A new database is not built by executing the migrations: Open writes a
// pre-built image of a database already migrated and already in WAL mode
// (see newImage), then migrate stamps it and applies any migration newer
// than the image. Executing the DDL statement by statement and switching
// the file to WAL through a rollback journal (seven fsyncs) were most of the
// cost of a user's first `sluice run`; the image costs one file write and
// two fsyncs, of the file and of its directory.
//
// Times are stored as INTEGER unix microseconds in UTC, NULL for the zero
// time; values read back are in UTC and carry microsecond precision.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"

	"github.com/sluicehq/sluice/internal/store"
)

// FileMode is the mode of the database file and of its -wal and -shm
// companions: they hold pipeline parameters and run history, readable by the
// owner only.
const FileMode fs.FileMode = 0o600

// readConns is the size of the read pool. Reads are short; a few connections
// cover the API and the engine reading at once.
const readConns = 4

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer sluice than this one: opening it could misread or damage data the
// newer schema stores.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Values of Options.Synchronous, SQLite's synchronous setting, which
// decides what a commit waits for. Untyped, so configuration strings can be
// passed as they are; Open accepts them in any case.
const (
	// SyncFull makes every commit wait for the WAL to reach stable storage:
	// a committed state change survives a process kill and a power loss or
	// kernel crash. The default.
	SyncFull = "FULL"
	// SyncNormal, in WAL mode, lets a commit return once the WAL is written
	// to the OS, syncing at checkpoints only: a committed state change
	// survives a process kill (kill -9) but the last commits may be rolled
	// back by a power loss or kernel crash (the database stays consistent).
	// Commits are several times faster on a real disk: measured on a
	// cloud VM's ext4 volume, about 70µs per state-change commit against
	// about 200µs with SyncFull.
	SyncNormal = "NORMAL"
)

// Options tunes the store. The zero value is the safe default.
type Options struct {
	// Synchronous trades durability against commit latency; "" means
	// SyncFull, so that every committed state change survives a power
	// loss. SyncNormal still survives a crash of sluice itself and is the
	// choice where the last moments of history may be lost with the
	// machine. See SyncFull and SyncNormal for what survives what.
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection (another process on the same file) before failing; 0
	// means 5s.
	BusyTimeout time.Duration
}

func (o Options) withDefaults() (Options, error) {
	switch strings.ToUpper(o.Synchronous) {
	case "", SyncFull:
		o.Synchronous = SyncFull
	case SyncNormal:
		o.Synchronous = SyncNormal
	default:
		return o, fmt.Errorf("synchronous %q: want %q or %q", o.Synchronous, SyncFull, SyncNormal)
	}
	if o.BusyTimeout < 0 {
		return o, fmt.Errorf("busy timeout %s: must not be negative", o.BusyTimeout)
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = 5 * time.Second
	}
	return o, nil
}

// DB is the SQLite store. It is safe for concurrent use.
//
// Inside InTx, use only the store handed to fn: the writer connection is held
// by that transaction, so a write through the DB itself would wait for it.
type DB struct {
	ops
	write *sql.DB
	read  *sql.DB
	// writeStmts and readStmts keep each pool's statements prepared (see
	// stmtCache): the writer's serve the transactions, the reader's the
	// reads made outside one.
	writeStmts *stmtCache
	readStmts  *stmtCache
	path       string
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path and migrates it to the
// current schema. The directory must exist; a new file is created with
// FileMode, and an existing file (and its -wal and -shm) is narrowed to it.
// It returns an error wrapping ErrSchemaTooNew if a newer sluice has migrated
// the file.
//
// A database file that does not exist is created from the embedded image
// of a migrated database (newImage), which is faster than executing the
// migrations, and published so that processes opening the same new path
// at once all end up on one file (see publishImage). An existing file,
// even an empty one, is opened and migrated as it is; so is a new file
// beside a -wal or -journal left by a deleted database (see createFile).
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("opening store %q: want a plain file path", path)
	}
	if err := createFile(path, newImage); err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}

	write, err := sql.Open("sqlite", dsn(path, opts, false))
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	// The writer connects and migrates first: it switches a file not made
	// from the image to WAL, which the read-only connections could not.
	if err := migrate(ctx, write, time.Now()); err != nil {
		write.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", dsn(path, opts, true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("opening store %s: read pool: %w", path, err)
	}

	if err := restrictModes(path); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("opening store: %w", err)
	}

	db := &DB{
		write: write, read: read, path: path,
		writeStmts: newStmtCache(write, maxCachedStmts),
		readStmts:  newStmtCache(read, maxCachedStmts),
	}
	db.ops = ops{q: poolQuerier{db.readStmts}, atomic: db.writeTx}
	return db, nil
}

// Path returns the file the store was opened on.
func (db *DB) Path() string { return db.path }

// Close closes the prepared statements and both connection pools. A WAL
// left behind is replayed by the next Open.
func (db *DB) Close() error {
	wserr := db.writeStmts.close()
	rserr := db.readStmts.close()
	werr := db.write.Close()
	rerr := db.read.Close()
	if err := errors.Join(wserr, rserr, werr, rerr); err != nil {
		return fmt.Errorf("closing store %s: %w", db.path, err)
	}
	return nil
}

// InTx runs fn in one write transaction. The store fn receives runs every
// operation in that transaction; InTx on it nests (as a savepoint) instead of
// beginning another. The transaction commits if fn returns nil and rolls back
// otherwise, fn's error being returned as is.
func (db *DB) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return db.writeTx(ctx, func(q querier) error {
		return fn(newTxStore(q))
	})
}

// writeTx runs fn in a transaction on the writer connection. The DSN makes
// it BEGIN IMMEDIATE: the write lock is taken up front, so the transaction
// cannot fail halfway on a lock another process holds.
//
// fn's queries use the writer's cached statements; the texts not cached yet
// are prepared once the transaction has ended (committed or rolled back)
// and the connection is free again. Not in a defer: if fn panics, the
// transaction is still open and preparing would wait for it forever.
func (db *DB) writeTx(ctx context.Context, fn func(q querier) error) error {
	err := db.runWriteTx(ctx, fn)
	db.writeStmts.preparePending(ctx)
	return err
}

func (db *DB) runWriteTx(ctx context.Context, fn func(q querier) error) (err error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if err != nil {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				err = errors.Join(err, fmt.Errorf("rolling back: %w", rerr))
			}
		}
	}()
	if err := fn(txQuerier{tx: tx, c: db.writeStmts}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// dsn builds the modernc DSN for path. _pragma parameters run on every new
// connection of the pool; _txlock=immediate makes BeginTx take the write lock.
func dsn(path string, o Options, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous("+o.Synchronous+")")
	if readOnly {
		// The file is already in WAL mode (the writer set it, and it is
		// persistent); query_only makes a stray write through the read pool
		// an error instead of a second writer.
		q.Add("_pragma", "query_only(ON)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

// restrictModes narrows the database file and its companions to FileMode
// when they are more open than that (a file copied in, or made by an older
// tool): group or world access to run history is never intended.
func restrictModes(p string) error {
	for _, name := range []string{p, p + "-wal", p + "-shm"} {
		st, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) && name != p {
			continue
		}
		if err != nil {
			return fmt.Errorf("checking mode of %s: %w", name, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("checking mode of %s: not a regular file", name)
		}
		if st.Mode().Perm()&^FileMode != 0 {
			if err := os.Chmod(name, FileMode); err != nil {
				return fmt.Errorf("restricting mode of %s: %w", name, err)
			}
		}
	}
	return nil
}

// isConstraint reports whether err is an SQLite constraint violation of the
// given extended code (sqlite3.SQLITE_CONSTRAINT_*).
func isConstraint(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}
