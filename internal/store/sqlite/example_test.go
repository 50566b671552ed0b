package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sluice-state-") // created 0700
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	db, err := sqlite.Open(ctx, filepath.Join(dir, "sluice.db"), sqlite.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	// A run, its first task queued and started in one transaction.
	err = db.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.CreateRun(ctx, store.NewRun{ID: "run-1", Pipeline: "daily", Tasks: []string{"extract", "load"}}); err != nil {
			return err
		}
		if _, err := tx.SetTaskState(ctx, store.SetTaskState{RunID: "run-1", Task: "extract",
			From: []store.TaskState{store.TaskPending}, To: store.TaskQueued}); err != nil {
			return err
		}
		_, err := tx.StartAttempt(ctx, store.StartAttempt{RunID: "run-1", Task: "extract", From: store.TaskQueued})
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	trs, err := db.ListTaskRuns(ctx, "run-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, tr := range trs {
		fmt.Println(tr.Task, tr.State, tr.Attempts)
	}
	// Output:
	// extract running 1
	// load pending 0
}
