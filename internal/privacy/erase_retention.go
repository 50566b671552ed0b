package privacy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// Janitor enforces retention: it deletes the datasets whose retain: period
// has passed, file and record, and records each deletion.
type Janitor struct {
	Store    store.Store
	StateDir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// janitorPage is how many expired artifacts one store query returns.
const janitorPage = 200

// Sweep deletes every artifact expired at the janitor's now and returns
// the recorded deletions. A file already gone is not an error (a sweep
// interrupted between the file and the record is finished by the next).
func (j *Janitor) Sweep(ctx context.Context) ([]store.ArtifactDeletion, error) {
	now := time.Now
	if j.Now != nil {
		now = j.Now
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
			if err := os.Remove(filepath.Join(j.StateDir, a.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return done, fmt.Errorf("sweeping expired datasets: deleting %s: %w", a.ID, err)
			}
			d := store.ArtifactDeletion{ArtifactID: a.ID, RunID: a.RunID, Task: a.Task, Path: a.Path,
				Reason: "retention: expired " + exp.Format(time.RFC3339), At: at}
			if err := j.Store.DeleteArtifact(ctx, d); err != nil {
				return done, fmt.Errorf("sweeping expired datasets: %w", err)
			}
			done = append(done, d)
		}
	}
}
