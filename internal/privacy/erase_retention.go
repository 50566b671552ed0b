package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/store"
)

// Janitor enforces retention: it deletes the datasets whose retain: period
// has passed, file, data key and record, and records each deletion. Sweep
// deletes once (`sluice janitor`); Run sweeps on an interval (`sluice
// server`).
//
// Destroying the data key is what makes the deletion hold against
// backups: a copy of the file taken before the sweep can never be
// decrypted again.
type Janitor struct {
	Store    store.Store
	StateDir string
	// Keys destroys the data keys of deleted datasets and evicts them from
	// its cache. Nil means the keys are deleted through Store alone, which
	// destroys them just as well but leaves a copy a keyring in this
	// process may have cached until it is evicted.
	Keys KeyDestroyer
	// Now is the clock of Sweep; nil means Clock's, else time.Now.
	Now func() time.Time
	// Clock is the clock of Run's waits (and of Sweep when Now is nil);
	// nil means the wall clock.
	Clock clock.Clock
	// Logger receives a line for every sweep Run makes that deleted
	// something or failed; nil discards them.
	Logger *slog.Logger

	deleted, sweeps, failures atomic.Int64
}

// DefaultJanitorInterval is how often `sluice server` sweeps: retention
// periods are whole hours or days in practice, and a sweep with nothing
// to delete is one indexed query.
const DefaultJanitorInterval = time.Hour

// JanitorActor is who the audit log says deleted a dataset Run swept.
const JanitorActor = "system:janitor"

// Run sweeps at once and then every interval until ctx is done, then
// returns nil. A failed sweep is logged, counted and tried again at the
// next interval (what it deleted before failing stays deleted and
// recorded). Every sweep that deleted datasets is also recorded in the
// audit log, as data.retention_delete by JanitorActor, as `sluice
// janitor` records it for its caller. Run is meant to be started once,
// in its own goroutine.
func (j *Janitor) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("retention janitor: interval %v: must be positive", every)
	}
	clk := j.clock()
	for {
		j.sweepAndRecord(ctx)
		t := clk.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// Deleted is the number of datasets Run has deleted so far.
func (j *Janitor) Deleted() int64 { return j.deleted.Load() }

// Sweeps is the number of sweeps Run has made so far.
func (j *Janitor) Sweeps() int64 { return j.sweeps.Load() }

// Failures is the number of Run's sweeps that failed.
func (j *Janitor) Failures() int64 { return j.failures.Load() }

func (j *Janitor) clock() clock.Clock {
	if j.Clock != nil {
		return j.Clock
	}
	return clock.Real{}
}

func (j *Janitor) logger() *slog.Logger {
	if j.Logger != nil {
		return j.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// sweepAndRecord is one sweep of Run: sweep, count, log, audit.
func (j *Janitor) sweepAndRecord(ctx context.Context) {
	done, err := j.Sweep(ctx)
	if ctx.Err() != nil && err != nil {
		err = nil // shutting down mid-sweep; the next start finishes it
	}
	j.sweeps.Add(1)
	j.deleted.Add(int64(len(done)))
	log := j.logger()
	if len(done) > 0 {
		ids := make([]string, len(done))
		for i, d := range done {
			ids[i] = d.ArtifactID
		}
		log.Info("retention: deleted expired datasets", "count", len(done), "artifacts", strings.Join(ids, ","))
		// The audit record outlives a cancelled ctx: the deletions did
		// happen.
		aerr := audit.Record(context.WithoutCancel(ctx), j.Store, audit.Event{
			Actor: JanitorActor, Action: "data.retention_delete", Outcome: audit.OutcomeSuccess,
			Source: audit.SourceEngine, Details: RetentionDetails(done),
		})
		if aerr != nil {
			err = errors.Join(err, fmt.Errorf("recording the deletions in the audit log: %w", aerr))
		}
	}
	if err != nil {
		j.failures.Add(1)
		log.Error("retention: sweep failed; trying again at the next interval", "err", err)
	}
}

// janitorPage is how many expired artifacts one store query returns.
const janitorPage = 200

// Sweep deletes every artifact expired at the janitor's now and returns
// the recorded deletions. A file already gone is not an error (a sweep
// interrupted between the file and the record is finished by the next).
//
// For each artifact it reads the id of the file's data key from its
// header, removes the file, then in one transaction deletes the record,
// records the deletion and destroys the key; the deletion's Reason names
// the key destroyed. When the file is already gone, the key is found by
// the artifact id it protects, which reads every data key of the store:
// that only happens to finish an interrupted sweep.
func (j *Janitor) Sweep(ctx context.Context) ([]store.ArtifactDeletion, error) {
	now := time.Now
	switch {
	case j.Now != nil:
		now = j.Now
	case j.Clock != nil:
		now = j.Clock.Now
	}
	at := now().UTC()
	var done []store.ArtifactDeletion
	for {
		page, err := j.Store.ListExpiredArtifacts(ctx, at, janitorPage)
		if err != nil {
			return done, fmt.Errorf("sweeping expired datasets: %w", err)
		}
		if len(page) == 0 {
			return done, nil
		}
		for _, a := range page {
			exp, err := j.Store.ArtifactExpiry(ctx, a.ID)
			if err != nil {
				return done, fmt.Errorf("sweeping expired datasets: %w", err)
			}
			path := filepath.Join(j.StateDir, a.Path)
			keyIDs, err := artifactKeyIDs(ctx, j.Store, a.ID, path)
			if err != nil {
				return done, fmt.Errorf("sweeping expired datasets: %s: %w", a.ID, err)
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return done, fmt.Errorf("sweeping expired datasets: deleting %s: %w", a.ID, err)
			}
			d := store.ArtifactDeletion{ArtifactID: a.ID, RunID: a.RunID, Task: a.Task, Path: a.Path,
				Reason: "retention: expired " + exp.Format(time.RFC3339), At: at}
			if len(keyIDs) > 0 {
				d.Reason += "; " + destroyedPrefix + strings.Join(keyIDs, ",")
			}
			err = j.Store.InTx(ctx, func(tx store.Store) error {
				if err := tx.DeleteArtifact(ctx, d); err != nil {
					return err
				}
				for _, id := range keyIDs {
					if _, err := j.destroy(ctx, tx, id); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return done, fmt.Errorf("sweeping expired datasets: %w", err)
			}
			if j.Keys != nil {
				for _, id := range keyIDs {
					// Evicts a copy a concurrent reader cached before the commit.
					if _, err := j.Keys.DestroyDataKey(ctx, nil, id); err != nil {
						return done, fmt.Errorf("sweeping expired datasets: %s: %w", a.ID, err)
					}
				}
			}
			done = append(done, d)
		}
	}
}

// RetentionDetails are the details of the data.retention_delete audit
// record of a sweep's deletions, whoever ran it: how many datasets, and
// the data keys destroyed with them.
func RetentionDetails(done []store.ArtifactDeletion) map[string]string {
	return map[string]string{"artifacts": fmt.Sprint(len(done)), "data_keys_destroyed": strings.Join(DestroyedKeys(done), ",")}
}

// destroyedPrefix introduces the destroyed data keys in an
// ArtifactDeletion's Reason.
const destroyedPrefix = "data keys destroyed: "

// DestroyedKeys returns the ids of the data keys the deletions destroyed,
// as their Reasons name them.
func DestroyedKeys(ds []store.ArtifactDeletion) []string {
	var ids []string
	for _, d := range ds {
		if _, list, ok := strings.Cut(d.Reason, destroyedPrefix); ok {
			ids = append(ids, strings.Split(list, ",")...)
		}
	}
	return ids
}

// destroy destroys data key id within tx, through Keys when set.
func (j *Janitor) destroy(ctx context.Context, tx store.Store, id string) (bool, error) {
	if j.Keys != nil {
		return j.Keys.DestroyDataKey(ctx, tx, id)
	}
	err := tx.DeleteDataKey(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("destroying data key %q: %w", id, err)
	}
	return true, nil
}

// keyScanPage is how many data keys one page of artifactKeyIDs' scan reads.
const keyScanPage = 500

// artifactKeyIDs returns the data keys protecting the artifact id whose
// file is at path: the one its envelope header names, none for a file
// sluice did not encrypt, or, when the file is gone, every artifact data
// key whose ref is the artifact id (a scan of the whole key table, done
// only to finish an interrupted deletion).
func artifactKeyIDs(ctx context.Context, st store.KeyStore, id, path string) ([]string, error) {
	kid, err := fileKeyID(path)
	if err == nil {
		if kid == "" {
			return nil, nil
		}
		return []string{kid}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var ids []string
	after := ""
	for {
		page, err := st.ListDataKeys(ctx, after, keyScanPage)
		if err != nil {
			return nil, fmt.Errorf("finding the data keys of %s: %w", id, err)
		}
		if len(page) == 0 {
			return ids, nil
		}
		after = page[len(page)-1].ID
		for _, k := range page {
			if k.Purpose == store.PurposeArtifact && k.Ref == id {
				ids = append(ids, k.ID)
			}
		}
	}
}
