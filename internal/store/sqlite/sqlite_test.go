package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

func openTemp(t testing.TB, opts Options) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db, path
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, sync := range []string{SyncFull, SyncNormal} {
		t.Run(sync, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store {
				db, _ := openTemp(t, Options{Synchronous: sync})
				return db
			})
		})
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     Options
		wantSync int // PRAGMA synchronous: 1 NORMAL, 2 FULL
		wantBusy int
	}{
		{"Defaults", Options{}, 2, 5000},
		{"Normal", Options{Synchronous: SyncNormal, BusyTimeout: 1500 * time.Millisecond}, 1, 1500},
		{"LowerCase", Options{Synchronous: "normal"}, 1, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, _ := openTemp(t, tt.opts)
			for name, pool := range map[string]*sql.DB{"write": db.write, "read": db.read} {
				var journal string
				var fk, syncMode, busy int
				row := pool.QueryRowContext(t.Context(), `SELECT journal_mode, foreign_keys, synchronous, timeout
					FROM pragma_journal_mode, pragma_foreign_keys, pragma_synchronous, pragma_busy_timeout`)
				if err := row.Scan(&journal, &fk, &syncMode, &busy); err != nil {
					t.Fatalf("%s pool: reading pragmas: %v", name, err)
				}
				if journal != "wal" || fk != 1 || syncMode != tt.wantSync || busy != tt.wantBusy {
					t.Errorf("%s pool: journal=%s foreign_keys=%d synchronous=%d busy_timeout=%d; want wal 1 %d %d",
						name, journal, fk, syncMode, busy, tt.wantSync, tt.wantBusy)
				}
			}
		})
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{})
	_, err := db.read.ExecContext(t.Context(), `DELETE FROM runs`)
	if err == nil {
		t.Fatal("write through the read pool succeeded, want an error")
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, path string
		opts       Options
		want       string
	}{
		{"MissingDir", filepath.Join(dir, "absent", "s.db"), Options{}, "database directory"},
		{"DirNotDir", filepath.Join(writeFile(t, dir, "plain"), "s.db"), Options{}, "not a directory"},
		{"QueryInPath", filepath.Join(dir, "s.db?mode=ro"), Options{}, "plain file path"},
		{"URI", "file:" + filepath.Join(dir, "s.db"), Options{}, "plain file path"},
		{"BadSynchronous", filepath.Join(dir, "s.db"), Options{Synchronous: "OFF"}, `synchronous "OFF"`},
		{"NegativeBusy", filepath.Join(dir, "s.db"), Options{BusyTimeout: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, err := Open(t.Context(), tt.path, tt.opts)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want error containing %q", tt.path, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%q) = %v, want error containing %q", tt.path, err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileModes(t *testing.T) {
	t.Parallel()
	t.Run("NewFile", func(t *testing.T) {
		t.Parallel()
		db, path := openTemp(t, Options{})
		// Write so that the WAL and shared-memory files exist.
		if _, err := db.CreateRun(t.Context(), store.NewRun{ID: "r", Tasks: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(name)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			if got := st.Mode().Perm(); got != FileMode {
				t.Errorf("%s: mode %v, want %v", filepath.Base(name), got, FileMode)
			}
		}
	})
	t.Run("ExistingFileNarrowed", func(t *testing.T) {
		t.Parallel()
		db, path := openTemp(t, Options{})
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.WriteFile(name, nil, 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
				t.Fatal(err)
			}
			if err := os.Chmod(name, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		db2, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer db2.Close()
		for _, name := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(name)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			if got := st.Mode().Perm(); got != FileMode {
				t.Errorf("%s: mode %v after open, want %v", filepath.Base(name), got, FileMode)
			}
		}
	})
}

func schemaVersions(t *testing.T, db *DB) []int {
	t.Helper()
	return column[int](t, db, `SELECT version FROM schema_migrations ORDER BY version`)
}

// column returns the one column query selects, read through the read pool.
func column[T any](t *testing.T, db *DB, query string) []T {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	t.Parallel()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	db, path := openTemp(t, Options{})
	if _, err := db.CreateRun(t.Context(), store.NewRun{ID: "kept"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		db, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got := schemaVersions(t, db); len(got) != len(ms) || got[len(got)-1] != len(ms) {
			t.Errorf("schema_migrations = %v, want 1..%d once each", got, len(ms))
		}
		if _, err := db.GetRun(t.Context(), "kept"); err != nil {
			t.Errorf("run lost on reopen: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	db, path := openTemp(t, Options{})
	if _, err := db.write.ExecContext(t.Context(), qRecordMigration, 9999, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(t.Context(), path, Options{})
	if err == nil {
		db2.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "9999") {
		t.Errorf("Open = %v, want ErrSchemaTooNew naming version 9999", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string // error substring; "" means success
	}{
		{"InOrder", fstest.MapFS{"migrations/0002_b.sql": {}, "migrations/0001_a.sql": {}}, ""},
		{"Gap", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}}, "expected number 2"},
		{"Repeat", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}}, "expected number 2"},
		{"BadName", fstest.MapFS{"migrations/init.sql": {}}, "NNNN_description.sql"},
		{"Zero", fstest.MapFS{"migrations/0000_a.sql": {}}, "NNNN_description.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ms, err := loadMigrations(tt.files)
			if tt.want == "" {
				if err != nil || len(ms) != 2 || ms[0].version != 1 || ms[1].version != 2 {
					t.Errorf("loadMigrations = %v, %v; want versions 1, 2", ms, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadMigrations = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// seedStates writes a run with two tasks, one finished and one mid-attempt.
func seedStates(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateRun(ctx, store.NewRun{ID: "r", Tasks: []string{"a", "b"}, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"a", "b"} {
		if _, err := s.SetTaskState(ctx, store.SetTaskState{RunID: "r", Task: task, From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: at}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StartAttempt(ctx, store.StartAttempt{RunID: "r", Task: task, From: store.TaskQueued, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.FinishAttempt(ctx, store.FinishAttempt{RunID: "r", Task: "a", Number: 1, Outcome: store.OutcomeSuccess, State: store.TaskSuccess, At: at, RowsOut: 7}); err != nil {
		t.Fatal(err)
	}
}

func checkSeeded(t *testing.T, s store.Store) {
	t.Helper()
	trs, err := s.ListTaskRuns(t.Context(), "r")
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != 2 || trs[0].State != store.TaskSuccess || trs[0].RowsOut != 7 || trs[1].State != store.TaskRunning || trs[1].Attempts != 1 {
		t.Errorf("task runs after reopen = %+v, want a success (7 rows), b running attempt 1", trs)
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	t.Parallel()
	db, path := openTemp(t, Options{})
	seedStates(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db2.Close()
	checkSeeded(t, db2)
}

// TestAbandonedWithoutClose stands in for a crash: the first DB is left open
// (its connections, locks and WAL untouched) while a second opens the file,
// as a restarted process would find it.
func TestAbandonedWithoutClose(t *testing.T) {
	t.Parallel()
	for _, sync := range []string{SyncFull, SyncNormal} {
		t.Run(sync, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sluice.db")
			first, err := Open(t.Context(), path, Options{Synchronous: sync})
			if err != nil {
				t.Fatal(err)
			}
			// Closed only at the end, so the test leaks nothing; the
			// second DB must not depend on it.
			t.Cleanup(func() { first.Close() })
			seedStates(t, first)

			second, err := Open(t.Context(), path, Options{Synchronous: sync})
			if err != nil {
				t.Fatalf("open beside an abandoned DB: %v", err)
			}
			defer second.Close()
			checkSeeded(t, second)
			// The newcomer can write and pick up the interrupted attempt.
			tr, err := second.FinishAttempt(t.Context(), store.FinishAttempt{RunID: "r", Task: "b", Number: 1, Outcome: store.OutcomeInterrupted, State: store.TaskUpForRetry})
			if err != nil {
				t.Fatalf("writing beside an abandoned DB: %v", err)
			}
			if tr.State != store.TaskUpForRetry {
				t.Errorf("state = %s, want up_for_retry", tr.State)
			}
		})
	}
}

func TestInTxOperationFailureLeavesNoPartialWrite(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{})
	ctx := t.Context()
	// An operation fails inside the transaction (a duplicate run id) and
	// the caller carries on and commits: nothing of the failed operation
	// may remain, and what came before it must.
	err := db.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.CreateRun(ctx, store.NewRun{ID: "ok", Tasks: []string{"t"}}); err != nil {
			return err
		}
		if _, err := tx.CreateRun(ctx, store.NewRun{ID: "ok", Tasks: []string{"t"}}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate in tx: %v, want ErrConflict", err)
		}
		// A nested InTx that fails is rolled back to its savepoint.
		nestedErr := tx.InTx(ctx, func(inner store.Store) error {
			if _, err := inner.CreateRun(ctx, store.NewRun{ID: "inner"}); err != nil {
				return err
			}
			return errors.New("inner fails")
		})
		if nestedErr == nil {
			t.Error("nested InTx error lost")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetRun(ctx, "ok"); err != nil {
		t.Errorf("committed run missing: %v", err)
	}
	if _, err := db.GetRun(ctx, "inner"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rolled-back nested run: %v, want ErrNotFound", err)
	}
	trs, err := db.ListTaskRuns(ctx, "ok")
	if err != nil || len(trs) != 1 {
		t.Errorf("task runs = %v, %v; want exactly one", trs, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{})
	ctx := t.Context()
	if _, err := db.CreateRun(ctx, store.NewRun{ID: "r", Tasks: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"EmptyRunID", func() error { _, err := db.CreateRun(ctx, store.NewRun{}); return err }, "empty id"},
		{"DuplicateTask", func() error {
			_, err := db.CreateRun(ctx, store.NewRun{ID: "d", Tasks: []string{"x", "x"}})
			return err
		}, `task "x": listed twice`},
		{"UnknownRunState", func() error {
			_, err := db.SetRunState(ctx, store.SetRunState{RunID: "r", From: []store.RunState{store.RunQueued}, To: "paused"})
			return err
		}, `unknown run state "paused"`},
		{"NoFromRun", func() error {
			_, err := db.SetRunState(ctx, store.SetRunState{RunID: "r", To: store.RunRunning})
			return err
		}, "no states to move from"},
		{"TaskToRunning", func() error {
			_, err := db.SetTaskState(ctx, store.SetTaskState{RunID: "r", Task: "t", From: []store.TaskState{store.TaskQueued}, To: store.TaskRunning})
			return err
		}, "only by starting an attempt"},
		{"StartFromRunning", func() error {
			_, err := db.StartAttempt(ctx, store.StartAttempt{RunID: "r", Task: "t", From: store.TaskRunning})
			return err
		}, "cannot start from state"},
		{"FinishIntoQueued", func() error {
			_, err := db.FinishAttempt(ctx, store.FinishAttempt{RunID: "r", Task: "t", Number: 1, Outcome: store.OutcomeFailed, State: store.TaskQueued})
			return err
		}, "cannot finish into task state"},
		{"FinishOutcomeRunning", func() error {
			_, err := db.FinishAttempt(ctx, store.FinishAttempt{RunID: "r", Task: "t", Number: 1, Outcome: store.OutcomeRunning, State: store.TaskFailed})
			return err
		}, "cannot finish with outcome"},
		{"ClaimNoOwner", func() error {
			_, err := db.ClaimRun(ctx, store.ClaimRun{RunID: "r", LeaseUntil: time.Now()})
			return err
		}, "empty owner"},
		{"NegativeLimit", func() error { _, err := db.ListRuns(ctx, store.RunFilter{Limit: -1}); return err }, "negative limit"},
		{"ArtifactOfUnknownRun", func() error {
			return db.PutArtifact(ctx, store.Artifact{ID: "a", RunID: "nope"})
		}, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
	if err := db.PutArtifact(ctx, store.Artifact{ID: "a", RunID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("artifact of unknown run: %v, want ErrNotFound", err)
	}
}

func TestTimesStoredAsUTCMicros(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t, Options{})
	loc := time.FixedZone("UTC+5", 5*3600)
	created := time.Date(2026, 3, 1, 17, 0, 0, 123456789, loc)
	r, err := db.CreateRun(t.Context(), store.NewRun{ID: "r", CreatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	want := created.Truncate(time.Microsecond).UTC()
	if r.CreatedAt != want { // == checks the location too
		t.Errorf("CreatedAt = %v, want %v", r.CreatedAt, want)
	}
	var raw int64
	var started sql.NullInt64
	if err := db.read.QueryRowContext(t.Context(), `SELECT created_at, started_at FROM runs`).Scan(&raw, &started); err != nil {
		t.Fatal(err)
	}
	if raw != want.UnixMicro() || started.Valid {
		t.Errorf("stored created_at=%d started_at=%v, want %d and NULL", raw, started, want.UnixMicro())
	}
}

// TestTwoHandlesOneFile races starters through two DBs on one file, as two
// processes would: BEGIN IMMEDIATE and the busy timeout serialise their
// transactions without "database is locked" errors, and the compare-and-set
// lets one win per task.
func TestTwoHandlesOneFile(t *testing.T) {
	t.Parallel()
	a, path := openTemp(t, Options{Synchronous: SyncNormal})
	b, err := Open(t.Context(), path, Options{Synchronous: SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	const tasks = 20
	var names []string
	for i := range tasks {
		names = append(names, string(rune('a'+i)))
	}
	if _, err := a.CreateRun(ctx, store.NewRun{ID: "r", Tasks: names}); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := b.SetTaskState(ctx, store.SetTaskState{RunID: "r", Task: n, From: []store.TaskState{store.TaskPending}, To: store.TaskQueued}); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 2*tasks)
	var wg sync.WaitGroup
	for _, db := range []*DB{a, b} {
		wg.Go(func() {
			for _, n := range names {
				// Read, then write, in one transaction: begun DEFERRED
				// this would fail with SQLITE_BUSY when the other handle
				// commits between the read and the write.
				errs <- db.InTx(ctx, func(tx store.Store) error {
					if _, err := tx.GetTaskRun(ctx, "r", n); err != nil {
						return err
					}
					_, err := tx.StartAttempt(ctx, store.StartAttempt{RunID: "r", Task: n, From: store.TaskQueued})
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	wins := 0
	for err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("start: %v, want success or ErrConflict", err)
		}
	}
	if wins != tasks {
		t.Errorf("%d starts won, want %d (one per task)", wins, tasks)
	}
}
