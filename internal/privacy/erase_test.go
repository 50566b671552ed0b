package privacy_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/privacy"
	"github.com/sluicehq/sluice/internal/store"
)

var custSchema = data.MustSchema(data.Field{Name: "customer_id", Type: data.String}, data.Field{Name: "card", Type: data.String})

// writeArtifact stores rows as an encrypted output artifact of run r1,
// exactly as a data task does.
func writeArtifact(t *testing.T, env *testEnv, id string, rows [][2]string, expires time.Time) store.Artifact {
	t.Helper()
	ctx := t.Context()
	rel := filepath.Join("artifacts", "r1", id+".arrow")
	w, err := artifact.Create(filepath.Join(env.dir, rel), custSchema, artifact.Options{
		Wrap: env.kr.Wrapper(ctx, store.PurposeArtifact, id, artifact.AAD(id)),
	})
	if err != nil {
		t.Fatal(err)
	}
	b := data.NewBatch(custSchema, len(rows))
	for _, r := range rows {
		b.Cols[0].Strings = append(b.Cols[0].Strings, r[0])
		b.Cols[1].Strings = append(b.Cols[1].Strings, r[1])
		b.Len++
	}
	if err := w.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	info := w.Info()
	a := store.Artifact{ID: id, RunID: "r1", Task: "t", Attempt: 1, Kind: "output", Path: rel, Format: artifact.Format,
		Schema: info.Schema, Rows: info.Rows, Bytes: info.Bytes, SHA256: info.SHA256, PlainSHA256: info.PlainSHA256,
		Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ExpiresAt: expires}
	if err := env.db.PutArtifact(ctx, a); err != nil {
		t.Fatal(err)
	}
	return a
}

func createRun(t *testing.T, env *testEnv) {
	t.Helper()
	if _, err := env.db.CreateRun(t.Context(), store.NewRun{ID: "r1", Namespace: "ns", Pipeline: "p", PipelineHash: "h",
		PipelineFile: "p.yaml", LogicalDate: "2026-01-01", Trigger: "manual", Tasks: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
}

func readRows(t *testing.T, env *testEnv, a store.Artifact) [][2]string {
	t.Helper()
	src, err := artifact.Open(filepath.Join(env.dir, a.Path), a.SHA256, artifact.Options{
		Unwrap: env.kr.Unwrapper(context.Background(), artifact.AAD(a.ID)), PlainSHA256: a.PlainSHA256})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var rows [][2]string
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < b.Len; r++ {
			rows = append(rows, [2]string{b.Cols[0].Strings[r], b.Cols[1].Strings[r]})
		}
	}
}

// backup copies an artifact's file aside, as a backup taken before a
// deletion would, and returns the copy's path and the id of the data key
// its header names.
func backup(t *testing.T, env *testEnv, a store.Artifact) (path, keyID string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.dir, a.Path))
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), a.ID+".backup.arrow")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	keyID, err = keys.EnvelopeKeyID(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return path, keyID
}

// assertShredded checks that the data key keyID is gone from the store
// and that the backed-up file a was encrypted under can no longer be
// read by a fresh keyring with the same KEK and store (what a restore
// from backup would have) nor, when evicted is set (the deletion went
// through the keyring), by the keyring that wrote it and cached its key.
func assertShredded(t *testing.T, env *testEnv, a store.Artifact, path, keyID string, evicted bool) {
	t.Helper()
	if _, err := env.db.GetDataKey(t.Context(), keyID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: data key %s of the deleted file still in the store (%v)", a.ID, keyID, err)
	}
	krs := map[string]*keys.Keyring{"fresh keyring": keys.New(env.db, env.kek, keys.Options{})}
	if evicted {
		krs["same keyring"] = env.kr
	}
	for name, kr := range krs {
		src, err := artifact.Open(path, a.SHA256, artifact.Options{
			Unwrap: kr.Unwrapper(t.Context(), artifact.AAD(a.ID)), PlainSHA256: a.PlainSHA256})
		if err == nil {
			src.Close()
			t.Errorf("%s: %s opened the backup of the deleted file", a.ID, name)
		} else if !errors.Is(err, keys.ErrIntegrity) {
			t.Errorf("%s: %s: opening the backup: %v, want an error wrapping ErrIntegrity (unknown data key)", a.ID, name, err)
		}
	}
}

func TestErase(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := t.Context()
	createRun(t, env)
	tok, err := privacy.NewTokenizer(ctx, env.kr)
	if err != nil {
		t.Fatal(err)
	}
	card := func(subject, pan string) string {
		s, err := tok.SubjectToken(ctx, subject, pan)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	c1a, c1b, c2 := card("c1", "4111111111111111"), card("c1", "5500000000000004"), card("c2", "340000000000009")
	pseudo, _ := tok.Pseudonym("c1")
	withRaw := writeArtifact(t, env, "a-raw", [][2]string{{"c1", "x"}, {"c2", c2}, {"c3", "y"}}, time.Time{})
	withTok := writeArtifact(t, env, "a-tok", [][2]string{{pseudo, "z"}, {"c9", c1a}, {"c2", "w"}}, time.Time{})
	untouched := writeArtifact(t, env, "a-none", [][2]string{{"c2", c2}}, time.Time{})
	rawBackup, rawKey := backup(t, env, withRaw)
	tokBackup, tokKey := backup(t, env, withTok)
	_, untouchedKey := backup(t, env, untouched)

	er := &privacy.Eraser{Store: env.db, Keys: env.kr, StateDir: env.dir,
		Now: func() time.Time { return time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC) }}
	ev, err := er.Erase(ctx, privacy.EraseRequest{Subject: "c1", Columns: []string{"customer_id"}, Actor: "local:dpo"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("TokensOfSubjectUnreadable", func(t *testing.T) {
		for _, tk := range []string{c1a, c1b} {
			if _, err := tok.Detokenize(ctx, tk); !errors.Is(err, privacy.ErrErased) {
				t.Errorf("Detokenize(subject c1 token) error = %v, want ErrErased", err)
			}
		}
		if v, err := tok.Detokenize(ctx, c2); err != nil || v != "340000000000009" {
			t.Errorf("Detokenize(c2 token) = %q, %v", v, err)
		}
	})
	t.Run("RowsGone", func(t *testing.T) {
		for _, tt := range []struct {
			a    store.Artifact
			want [][2]string
		}{
			{withRaw, [][2]string{{"c2", c2}, {"c3", "y"}}},
			{withTok, [][2]string{{"c2", "w"}}},
			{untouched, [][2]string{{"c2", c2}}},
		} {
			got, err := env.db.GetArtifact(ctx, tt.a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, readRows(t, env, got)); d != "" {
				t.Errorf("%s rows (-want +got):\n%s", tt.a.ID, d)
			}
			if got.Rows != int64(len(tt.want)) {
				t.Errorf("%s record rows = %d, want %d", tt.a.ID, got.Rows, len(tt.want))
			}
			rewritten := tt.a.ID != untouched.ID
			if rewritten == (got.Path == tt.a.Path) {
				t.Errorf("%s path %s (was %s): rewritten = %v", tt.a.ID, got.Path, tt.a.Path, rewritten)
			}
			if _, err := os.Stat(filepath.Join(env.dir, tt.a.Path)); rewritten && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s old file still there (%v)", tt.a.ID, err)
			}
		}
	})
	// TestErase/ReplacedFilesShredded: the data key of every file erasure
	// replaced is destroyed, so a backup of the old file, with the store,
	// cannot bring the subject's rows back.
	t.Run("ReplacedFilesShredded", func(t *testing.T) {
		assertShredded(t, env, withRaw, rawBackup, rawKey, true)
		assertShredded(t, env, withTok, tokBackup, tokKey, true)
		if _, err := env.db.GetDataKey(ctx, untouchedKey); err != nil {
			t.Errorf("data key of the untouched dataset: %v", err)
		}
		for _, a := range []store.Artifact{withRaw, withTok} {
			got, err := env.db.GetArtifact(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, newKey := backup(t, env, got)
			if newKey == rawKey || newKey == tokKey {
				t.Errorf("%s: rewritten under the destroyed key %s", a.ID, newKey)
			}
			if _, err := env.db.GetDataKey(ctx, newKey); err != nil {
				t.Errorf("%s: data key of the rewritten file: %v", a.ID, err)
			}
		}
	})
	t.Run("Evidence", func(t *testing.T) {
		hash, _ := tok.SubjectHash("c1")
		want := store.Erasure{ID: ev.ID, SubjectHash: hash, At: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Actor: "local:dpo",
			KeysDestroyed: 3, Artifacts: []string{"a-raw", "a-tok"}, Rows: 3} // the subject's key and the 2 replaced files' keys
		list, err := env.db.ListErasures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]store.Erasure{want}, list); d != "" {
			t.Errorf("evidence (-want +got):\n%s", d)
		}
		if hash == "c1" || len(hash) != 64 {
			t.Errorf("subject hash %q is not a keyed hash", hash)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		ev2, err := er.Erase(ctx, privacy.EraseRequest{Subject: "c1", Columns: []string{"customer_id"}})
		if err != nil {
			t.Fatal(err)
		}
		if ev2.KeysDestroyed != 0 || ev2.Rows != 0 || len(ev2.Artifacts) != 0 {
			t.Errorf("second erasure found something: %+v", ev2)
		}
	})
}

func TestJanitor(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := t.Context()
	createRun(t, env)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	soon := writeArtifact(t, env, "soon", [][2]string{{"a", "b"}}, t0.Add(24*time.Hour))
	later := writeArtifact(t, env, "later", [][2]string{{"a", "b"}}, t0.Add(90*24*time.Hour))
	forever := writeArtifact(t, env, "forever", [][2]string{{"a", "b"}}, time.Time{})
	soonBackup, soonKey := backup(t, env, soon)
	laterBackup, laterKey := backup(t, env, later)
	_, foreverKey := backup(t, env, forever)
	// A sweep interrupted after removing later's file: the next finds its
	// key by the artifact id.
	if err := os.Remove(filepath.Join(env.dir, later.Path)); err != nil {
		t.Fatal(err)
	}
	now := t0
	j := &privacy.Janitor{Store: env.db, StateDir: env.dir, Now: func() time.Time { return now }}
	ids := func(ds []store.ArtifactDeletion) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ArtifactID)
		}
		return out
	}
	for _, step := range []struct {
		at   time.Time
		want []string
	}{
		{t0, nil},
		{t0.Add(24 * time.Hour), []string{"soon"}},
		{t0.Add(30 * 24 * time.Hour), nil},
		{t0.Add(400 * 24 * time.Hour), []string{"later"}},
	} {
		now = step.at
		done, err := j.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(step.want, ids(done)); d != "" {
			t.Errorf("sweep at %v (-want +got):\n%s", step.at, d)
		}
	}
	for _, a := range []store.Artifact{soon, later} {
		if _, err := os.Stat(filepath.Join(env.dir, a.Path)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s file still there (%v)", a.ID, err)
		}
		if _, err := env.db.GetArtifact(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s record still there (%v)", a.ID, err)
		}
	}
	if _, err := os.Stat(filepath.Join(env.dir, forever.Path)); err != nil {
		t.Errorf("artifact without retention deleted: %v", err)
	}
	recorded, err := env.db.ListArtifactDeletions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"soon", "later"}, ids(recorded)); d != "" {
		t.Errorf("recorded deletions (-want +got):\n%s", d)
	}
	// TestJanitor: an expired dataset's data key is destroyed with it, and
	// the deletion's record names the key.
	assertShredded(t, env, soon, soonBackup, soonKey, false)
	assertShredded(t, env, later, laterBackup, laterKey, false)
	if d := cmp.Diff([]string{soonKey, laterKey}, privacy.DestroyedKeys(recorded)); d != "" {
		t.Errorf("recorded destroyed keys (-want +got):\n%s", d)
	}
	if _, err := env.db.GetDataKey(ctx, foreverKey); err != nil {
		t.Errorf("data key of the dataset without retention: %v", err)
	}
}

// TestJanitorRun: Run sweeps at start and then on every interval of its
// clock (a fake one: the test never sleeps), counts and logs what it
// deletes, records it in the audit log, and returns when its context is
// done.
func TestJanitorRun(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	createRun(t, env)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	writeArtifact(t, env, "past", [][2]string{{"a", "b"}}, t0.Add(-time.Hour))
	writeArtifact(t, env, "soon", [][2]string{{"a", "b"}}, t0.Add(30*time.Minute))
	writeArtifact(t, env, "later", [][2]string{{"a", "b"}}, t0.Add(150*time.Minute))
	forever := writeArtifact(t, env, "forever", [][2]string{{"a", "b"}}, time.Time{})
	fc := clock.NewFake(t0)
	var logs syncBuffer
	j := &privacy.Janitor{Store: env.db, StateDir: env.dir, Keys: env.kr, Clock: fc, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- j.Run(ctx, time.Hour) }()
	for i, want := range []int64{1, 2, 2, 3} { // after the sweeps at t0, +1h, +2h, +3h
		if i > 0 {
			fc.Advance(time.Hour)
		}
		fc.BlockUntil(1) // the sweep is done: Run waits for the next
		if got := j.Deleted(); got != want {
			t.Fatalf("after the sweep at %v: %d deleted, want %d", fc.Now(), got, want)
		}
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if j.Sweeps() != 4 || j.Failures() != 0 {
		t.Errorf("sweeps %d, failures %d; want 4, 0", j.Sweeps(), j.Failures())
	}
	if _, err := env.db.GetArtifact(t.Context(), forever.ID); err != nil {
		t.Errorf("artifact without retention: %v", err)
	}
	for _, id := range []string{"past", "soon", "later"} {
		if !strings.Contains(logs.String(), id) {
			t.Errorf("log does not name %s:\n%s", id, logs.String())
		}
	}
	entries, err := audit.List(t.Context(), env.db, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.Action == "data.retention_delete" && e.Actor == privacy.JanitorActor && e.Source == audit.SourceEngine {
			got = append(got, e.Details["artifacts"])
			if k := e.Details["data_keys_destroyed"]; !strings.HasPrefix(k, "dk_") || strings.Contains(k, ",") {
				t.Errorf("audited destroyed keys %q, want one data key id", k)
			}
		}
	}
	if d := cmp.Diff([]string{"1", "1", "1"}, got); d != "" {
		t.Errorf("audited deletions (-want +got):\n%s", d)
	}
	if err := j.Run(t.Context(), 0); err == nil {
		t.Error("Run with a zero interval: no error")
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutine and the
// test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
