package keys_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/keys"
)

var testSchema = data.MustSchema(
	data.Field{Name: "id", Type: data.Int}, data.Field{Name: "name", Type: data.String},
	data.Field{Name: "email", Type: data.String}, data.Field{Name: "country", Type: data.String},
	data.Field{Name: "signed_up", Type: data.Timestamp}, data.Field{Name: "score", Type: data.Float},
	data.Field{Name: "active", Type: data.Bool}, data.Field{Name: "orders", Type: data.Int},
)

func testBatch(n, offset int) *data.Batch {
	b := data.NewBatch(testSchema, n)
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := offset + i
		b.Cols[0].Ints = append(b.Cols[0].Ints, int64(id))
		b.Cols[1].Strings = append(b.Cols[1].Strings, []string{"Ada Lovelace", "Grace Hopper", "Alan Turing"}[id%3])
		b.Cols[2].Strings = append(b.Cols[2].Strings, fmt.Sprintf("user%d@example.com", id))
		b.Cols[3].Strings = append(b.Cols[3].Strings, []string{"DE", "FR", "US"}[id%3])
		b.Cols[4].Times = append(b.Cols[4].Times, base.Add(time.Duration(id)*time.Second))
		b.Cols[5].Floats = append(b.Cols[5].Floats, float64(id)/3)
		b.Cols[6].Bools = append(b.Cols[6].Bools, id%2 == 0)
		b.Cols[7].Ints = append(b.Cols[7].Ints, int64(id%17))
	}
	b.Len = n
	return b
}

// artifactOptions is how the engine plugs the keyring into artifacts: the
// artifact id is both the data key's ref and the stream's aad.
func artifactOptions(ctx context.Context, kr *keys.Keyring, id string) artifact.Options {
	return artifact.Options{
		Wrap:   kr.Wrapper(ctx, keys.PurposeArtifact, id, []byte(id)),
		Unwrap: kr.Unwrapper(ctx, []byte(id)),
	}
}

func writeArtifact(t *testing.T, kr *keys.Keyring, path, id string, rows int) artifact.Info {
	t.Helper()
	w, err := artifact.Create(path, testSchema, artifactOptions(t.Context(), kr, id))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < rows; off += 1000 {
		if err := w.Write(t.Context(), testBatch(min(1000, rows-off), off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w.Info()
}

// readArtifact reads every row, returning the ids seen.
func readArtifact(ctx context.Context, kr *keys.Keyring, path, digest, id string) ([]int64, error) {
	r, err := artifact.Open(path, digest, artifactOptions(ctx, kr, id))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var ids []int64
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			return ids, nil
		}
		if err != nil {
			return ids, err
		}
		ids = append(ids, b.Cols[0].Ints[:b.Len]...)
	}
}

func digest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestArtifactEncrypted runs artifacts through the keyring's wrapper. The
// tampering cases recompute the recorded digest, as an attacker who can
// write the store could, so only the AEAD can catch them.
func TestArtifactEncrypted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	const rows = 5000
	write := func(t *testing.T, name string) (string, artifact.Info) {
		path := filepath.Join(dir, name+".arrow")
		return path, writeArtifact(t, e.kr, path, name, rows)
	}

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		path, info := write(t, "round")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(raw[:4]) != "SLK1" {
			t.Errorf("file starts %q, want the SLK1 envelope", raw[:4])
		}
		ids, err := readArtifact(t.Context(), e.kr, path, info.SHA256, "round")
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != rows || ids[0] != 0 || ids[rows-1] != rows-1 {
			t.Errorf("read %d rows, want %d in order", len(ids), rows)
		}
	})
	t.Run("FlippedByte", func(t *testing.T) {
		t.Parallel()
		path, info := write(t, "flip")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[int(info.Bytes)*2/3] ^= 0x80
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readArtifact(t.Context(), e.kr, path, info.SHA256, "flip"); !errors.Is(err, artifact.ErrIntegrity) {
			t.Errorf("with the recorded digest: %v, want artifact.ErrIntegrity", err)
		}
		if _, err := readArtifact(t.Context(), e.kr, path, digest(t, path), "flip"); !errors.Is(err, keys.ErrIntegrity) {
			t.Errorf("with a recomputed digest: %v, want keys.ErrIntegrity", err)
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		t.Parallel()
		path, info := write(t, "trunc")
		if err := os.Truncate(path, info.Bytes-100); err != nil {
			t.Fatal(err)
		}
		if _, err := readArtifact(t.Context(), e.kr, path, digest(t, path), "trunc"); !errors.Is(err, keys.ErrIntegrity) {
			t.Errorf("truncated: %v, want keys.ErrIntegrity", err)
		}
	})
	t.Run("Swapped", func(t *testing.T) {
		t.Parallel()
		pathA, infoA := write(t, "swap-a")
		pathB, infoB := write(t, "swap-b")
		if err := os.Rename(pathA, pathA+".tmp"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(pathB, pathA); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(pathA+".tmp", pathB); err != nil {
			t.Fatal(err)
		}
		// The digests are swapped too, so the checksum passes.
		if _, err := readArtifact(t.Context(), e.kr, pathA, infoB.SHA256, "swap-a"); !errors.Is(err, keys.ErrIntegrity) {
			t.Errorf("artifact a holding b's file: %v, want keys.ErrIntegrity", err)
		}
		if _, err := readArtifact(t.Context(), e.kr, pathB, infoA.SHA256, "swap-b"); !errors.Is(err, keys.ErrIntegrity) {
			t.Errorf("artifact b holding a's file: %v, want keys.ErrIntegrity", err)
		}
	})
}
