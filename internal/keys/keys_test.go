package keys_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// env is a state directory with a real SQLite store and a keyset file.
type env struct {
	dir string
	db  *sqlite.DB
	kek *keys.FileKEK
	kr  *keys.Keyring
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "sluice.db"), sqlite.Options{Synchronous: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kek, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, db: db, kek: kek, kr: keys.New(db, kek, keys.Options{})}
}

func encrypt(t *testing.T, kr *keys.Keyring, purpose, ref string, aad, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := kr.EncryptWriter(t.Context(), &buf, purpose, ref, aad)
	if err != nil {
		t.Fatalf("EncryptWriter: %v", err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatalf("writing: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("closing: %v", err)
	}
	return buf.Bytes()
}

func decrypt(ctx context.Context, kr *keys.Keyring, ct, aad []byte) ([]byte, error) {
	r, err := kr.DecryptReader(ctx, bytes.NewReader(ct), aad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// envelopeID is the data key id in an envelope's header.
func envelopeID(ct []byte) string {
	n := int(ct[5])<<8 | int(ct[6])
	return string(ct[7 : 7+n])
}

func plaintext(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestLoadFileCreatesOnFirstUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created() {
		t.Error("first load: Created() = false, want true")
	}
	if want := filepath.Join(dir, "keys", "kek.json"); first.Path() != want {
		t.Errorf("Path() = %s, want %s", first.Path(), want)
	}
	for path, want := range map[string]os.FileMode{first.Path(): 0o600, filepath.Dir(first.Path()): 0o700} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %04o, want %04o", path, got, want)
		}
	}
	info := first.Info()
	if len(info) != 1 || info[0].Status != keys.StatusPrimary {
		t.Fatalf("new keyset: %+v, want one primary key", info)
	}
	again, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created() {
		t.Error("second load: Created() = true, want false")
	}
	if d := cmp.Diff(info, again.Info()); d != "" {
		t.Errorf("reloaded keyset differs (-first +again):\n%s", d)
	}
	// No temporary files are left beside the keyset.
	entries, err := os.ReadDir(filepath.Dir(first.Path()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("keys directory holds %d entries, want only kek.json", len(entries))
	}
}

func TestLoadFileRefusesOpenModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			k, err := keys.LoadFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(k.Path(), mode); err != nil {
				t.Fatal(err)
			}
			_, err = keys.LoadFile(dir)
			if err == nil {
				t.Fatalf("loading a %04o keyset succeeded", mode)
			}
			for _, want := range []string{k.Path(), "chmod 600"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
	t.Run("Symlink", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		k, err := keys.LoadFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		moved := filepath.Join(dir, "elsewhere.json")
		if err := os.Rename(k.Path(), moved); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(moved, k.Path()); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.LoadFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("loading a symlinked keyset: %v, want a not-a-regular-file error", err)
		}
	})
}

func jsonKeyset(t *testing.T) []byte {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEnvSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	kek, err := keys.ParseEnv(base64.StdEncoding.EncodeToString(jsonKeyset(t)) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.New(e.db, kek, keys.Options{})
	ct, id, err := kr.Seal(t.Context(), keys.PurposeSecret, "s", []byte("hunter2"), []byte("s@1"))
	if err != nil {
		t.Fatal(err)
	}
	// A fresh keyring (empty cache) over the same KEK unwraps it.
	got, err := keys.New(e.db, kek, keys.Options{}).Open(t.Context(), id, ct, []byte("s@1"))
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("Open = %q, %v; want hunter2", got, err)
	}
	if _, err := kr.Rotate(t.Context()); !errors.Is(err, keys.ErrReadOnlyKEK) || !strings.Contains(err.Error(), keys.EnvVar) {
		t.Errorf("Rotate = %v, want ErrReadOnlyKEK naming %s", err, keys.EnvVar)
	}
	if err := kr.Retire(t.Context(), kek.Info()[0].ID); !errors.Is(err, keys.ErrReadOnlyKEK) {
		t.Errorf("Retire = %v, want ErrReadOnlyKEK", err)
	}

	for name, value := range map[string]string{
		"NotBase64": "{not base64}",
		"NotKeyset": base64.StdEncoding.EncodeToString([]byte(`{"hello":1}`)),
		"NotAEAD":   base64.StdEncoding.EncodeToString([]byte(`{"primaryKeyId":1,"key":[]}`)),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := keys.ParseEnv(value)
			if err == nil || !strings.Contains(err.Error(), keys.EnvVar) {
				t.Errorf("ParseEnv(%s) = %v, want an error naming %s", name, err, keys.EnvVar)
			}
		})
	}
}

// TestFromEnv reads the real environment, so it does not run in parallel.
func TestFromEnv(t *testing.T) {
	t.Setenv(keys.EnvVar, base64.StdEncoding.EncodeToString(jsonKeyset(t)))
	k, ok, err := keys.FromEnv()
	if err != nil || !ok || len(k.Info()) != 1 {
		t.Fatalf("FromEnv = %v, %v, %v; want a one-key KEK", k, ok, err)
	}
	os.Unsetenv(keys.EnvVar)
	if _, ok, err := keys.FromEnv(); ok || err != nil {
		t.Errorf("FromEnv without the variable = %v, %v; want not set", ok, err)
	}
}

func TestFromAEAD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	local, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	kek := keys.FromAEAD(local, "local-test-key")
	if info := kek.Info(); len(info) != 1 || info[0].Status != keys.StatusPrimary {
		t.Fatalf("Info = %+v, want one primary key", info)
	}
	if other := keys.FromAEAD(local, "another-key"); other.Info()[0].ID == kek.Info()[0].ID {
		t.Error("two ids give the same KEK key id")
	}
	kr := keys.New(e.db, kek, keys.Options{})
	ct := encrypt(t, kr, keys.PurposeLog, "run/task/1", []byte("log"), plaintext(10000))
	dk, err := e.db.GetDataKey(t.Context(), envelopeID(ct))
	if err != nil || dk.KEKKeyID != kek.Info()[0].ID {
		t.Fatalf("data key = %+v, %v; want wrapped by the AEAD's key id", dk, err)
	}
	got, err := decrypt(t.Context(), keys.New(e.db, kek, keys.Options{}), ct, []byte("log"))
	if err != nil || !bytes.Equal(got, plaintext(10000)) {
		t.Fatalf("round trip through a fresh keyring: %v", err)
	}
	if _, err := kr.Rotate(t.Context()); !errors.Is(err, keys.ErrReadOnlyKEK) {
		t.Errorf("Rotate = %v, want ErrReadOnlyKEK", err)
	}
}

func TestEnvelopeIntegrity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	aad := []byte("artifact a1")
	// Several 4 KB segments, so truncation can fall on a segment boundary.
	plain := plaintext(20000)
	ct := encrypt(t, e.kr, keys.PurposeLog, "a1", aad, plain)
	other := encrypt(t, e.kr, keys.PurposeLog, "a2", []byte("artifact a2"), plaintext(20000))

	got, err := decrypt(t.Context(), e.kr, ct, aad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: %v", err)
	}
	empty := encrypt(t, e.kr, keys.PurposeArtifact, "empty", aad, nil)
	if got, err := decrypt(t.Context(), e.kr, empty, aad); err != nil || len(got) != 0 {
		t.Fatalf("empty round trip: %q, %v", got, err)
	}

	flip := func(i int) []byte {
		b := bytes.Clone(ct)
		b[i] ^= 0x01
		return b
	}
	headerLen := 7 + len(envelopeID(ct))
	tests := []struct {
		name string
		ct   []byte
		aad  []byte
	}{
		{"FlipMagic", flip(0), aad},
		{"FlipVersion", flip(4), aad},
		{"FlipKeyID", flip(headerLen - 1), aad},
		{"FlipFirstSegment", flip(headerLen + 60), aad},
		{"FlipMiddle", flip(len(ct) / 2), aad},
		{"FlipLastByte", flip(len(ct) - 1), aad},
		{"TruncateLastByte", ct[:len(ct)-1], aad},
		{"TruncateHalf", ct[:len(ct)/2], aad},
		{"TruncateAtSegmentBoundary", ct[:headerLen+4096], aad},
		{"TruncateToHeader", ct[:headerLen], aad},
		{"TruncateInHeader", ct[:5], aad},
		{"Empty", nil, aad},
		{"WrongAAD", ct, []byte("artifact a2")},
		{"SwappedForOther", other, aad},
		{"AppendedBytes", append(bytes.Clone(ct), 0), aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decrypt(t.Context(), e.kr, tt.ct, tt.aad)
			if !errors.Is(err, keys.ErrIntegrity) {
				t.Errorf("decrypt = %d bytes, %v; want ErrIntegrity", len(got), err)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	ct, id, err := e.kr.Seal(ctx, keys.PurposeSecret, "db_dsn", []byte("postgres://u:p@h/db"), []byte("db_dsn@1"))
	if err != nil {
		t.Fatal(err)
	}
	ct2, id2, err := e.kr.Seal(ctx, keys.PurposeSecret, "api", []byte("token"), []byte("api@1"))
	if err != nil {
		t.Fatal(err)
	}
	if id == id2 {
		t.Fatal("two seals share a data key")
	}
	got, err := e.kr.Open(ctx, id, ct, []byte("db_dsn@1"))
	if err != nil || string(got) != "postgres://u:p@h/db" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-1] ^= 1
	for _, tt := range []struct {
		name string
		id   string
		ct   []byte
		aad  []byte
	}{
		{"WrongAAD", id, ct, []byte("db_dsn@2")},
		{"OtherCiphertext", id, ct2, []byte("db_dsn@1")},
		{"OtherKey", id2, ct, []byte("db_dsn@1")},
		{"Tampered", id, tampered, []byte("db_dsn@1")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := e.kr.Open(t.Context(), tt.id, tt.ct, tt.aad); !errors.Is(err, keys.ErrIntegrity) {
				t.Errorf("Open = %q, %v; want ErrIntegrity", got, err)
			}
		})
	}
	if _, _, err := e.kr.Seal(ctx, keys.PurposeArtifact, "x", nil, nil); err == nil {
		t.Error("Seal with an artifact key succeeded")
	}
	if _, err := e.kr.NewDataKey(ctx, "bogus", "x"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("NewDataKey(bogus) = %v, want an error naming the purpose", err)
	}
}

func TestRotateRewrapRetire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	oldID := e.kek.Info()[0].ID
	backup, err := os.ReadFile(e.kek.Path())
	if err != nil {
		t.Fatal(err)
	}

	const n = 7
	var files [][]byte
	for i := range n {
		files = append(files, encrypt(t, e.kr, keys.PurposeArtifact, fmt.Sprint("a", i), []byte(fmt.Sprint("a", i)), plaintext(3000+i)))
	}
	sealed, sealedID, err := e.kr.Seal(ctx, keys.PurposeSecret, "s", []byte("v"), []byte("s@1"))
	if err != nil {
		t.Fatal(err)
	}
	preRotation, err := keys.ParseEnv(base64.StdEncoding.EncodeToString(backup))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.New(e.db, preRotation, keys.Options{}).DataKey(ctx, sealedID); err != nil {
		t.Fatalf("the backup keyset does not unwrap before rotation: %v", err)
	}

	newKey, err := e.kr.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newKey.ID == oldID || newKey.Status != keys.StatusPrimary {
		t.Fatalf("Rotate = %+v, want a new primary", newKey)
	}
	// The rotation is on disk: a reload sees both keys, the new one primary.
	reloaded, err := keys.LoadFile(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	wantInfo := []keys.KeyInfo{{ID: oldID, Status: keys.StatusEnabled}, {ID: newKey.ID, Status: keys.StatusPrimary}}
	if d := cmp.Diff(sorted(wantInfo), sorted(reloaded.Info())); d != "" {
		t.Errorf("reloaded keyset (-want +got):\n%s", d)
	}

	// Old data keys still open, through a keyring with a cold cache.
	cold := keys.New(e.db, reloaded, keys.Options{})
	for i, f := range files {
		if _, err := decrypt(ctx, cold, f, []byte(fmt.Sprint("a", i))); err != nil {
			t.Fatalf("file %d after rotate: %v", i, err)
		}
	}
	// New data keys use the new primary.
	fresh := encrypt(t, e.kr, keys.PurposeLog, "l", []byte("l"), plaintext(10))
	if dk, err := e.db.GetDataKey(ctx, envelopeID(fresh)); err != nil || dk.KEKKeyID != newKey.ID {
		t.Fatalf("new data key = %+v, %v; want wrapped by %d", dk, err, newKey.ID)
	}

	// Retiring the old key is refused while data keys reference it.
	err = e.kr.Retire(ctx, oldID)
	if !errors.Is(err, keys.ErrKeyInUse) || !strings.Contains(err.Error(), fmt.Sprintf("%d data keys", n+1)) {
		t.Fatalf("Retire before rewrap = %v, want ErrKeyInUse naming %d data keys", err, n+1)
	}
	if err := e.kr.Retire(ctx, newKey.ID); !errors.Is(err, keys.ErrKeyInUse) {
		t.Errorf("Retire(primary) = %v, want ErrKeyInUse", err)
	}
	list, err := e.kr.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantList := []keys.KeyInfo{{ID: oldID, Status: keys.StatusEnabled, DataKeys: n + 1}, {ID: newKey.ID, Status: keys.StatusPrimary, DataKeys: 1}}
	if d := cmp.Diff(sorted(wantList), list); d != "" {
		t.Errorf("List before rewrap (-want +got):\n%s", d)
	}

	var progress []int
	moved, err := e.kr.Rewrap(ctx, func(done int) { progress = append(progress, done) })
	if err != nil {
		t.Fatal(err)
	}
	if moved != n+1 || len(progress) == 0 || progress[len(progress)-1] != n+1 {
		t.Errorf("Rewrap moved %d (progress %v), want %d", moved, progress, n+1)
	}
	counts, err := e.db.CountDataKeysByKEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[uint32]int64{newKey.ID: n + 2}, counts); d != "" {
		t.Errorf("counts after rewrap (-want +got):\n%s", d)
	}
	if again, err := e.kr.Rewrap(ctx, nil); err != nil || again != 0 {
		t.Errorf("second Rewrap = %d, %v; want 0", again, err)
	}

	if err := e.kr.Retire(ctx, oldID); err != nil {
		t.Fatalf("Retire after rewrap: %v", err)
	}
	after, err := keys.LoadFile(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]keys.KeyInfo{{ID: newKey.ID, Status: keys.StatusPrimary}}, after.Info()); d != "" {
		t.Errorf("keyset after retire (-want +got):\n%s", d)
	}
	// The same ciphertexts, untouched by the rewrap, open with the keyset
	// that no longer holds the old key.
	final := keys.New(e.db, after, keys.Options{})
	for i, f := range files {
		got, err := decrypt(ctx, final, f, []byte(fmt.Sprint("a", i)))
		if err != nil || !bytes.Equal(got, plaintext(3000+i)) {
			t.Fatalf("file %d after retire: %v", i, err)
		}
	}
	if got, err := final.Open(ctx, sealedID, sealed, []byte("s@1")); err != nil || string(got) != "v" {
		t.Fatalf("sealed value after retire: %q, %v", got, err)
	}
	// A backup of the keyset from before the rotation holds only the
	// retired key: it no longer unwraps any data key.
	if _, err := keys.New(e.db, preRotation, keys.Options{}).DataKey(ctx, sealedID); !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Errorf("the pre-rotation keyset after rewrap: %v, want ErrKeyUnavailable", err)
	}
}

func sorted(in []keys.KeyInfo) []keys.KeyInfo {
	out := append([]keys.KeyInfo(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].ID < out[i].ID {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestOtherKEKCannotUnwrap is the attacker with a copy of the state
// directory (database and artifacts) but not the KEK.
func TestOtherKEKCannotUnwrap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	ct := encrypt(t, e.kr, keys.PurposeArtifact, "a", []byte("a"), plaintext(100))
	sealed, id, err := e.kr.Seal(ctx, keys.PurposeSecret, "s", []byte("v"), []byte("s@1"))
	if err != nil {
		t.Fatal(err)
	}
	otherKEK, err := keys.LoadFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	attacker := keys.New(e.db, otherKEK, keys.Options{})
	if _, err := decrypt(ctx, attacker, ct, []byte("a")); !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Errorf("decrypting with another KEK: %v, want ErrKeyUnavailable", err)
	}
	if _, err := attacker.Open(ctx, id, sealed, []byte("s@1")); !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Errorf("opening with another KEK: %v, want ErrKeyUnavailable", err)
	}
	list, err := attacker.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var missing int64
	for _, k := range list {
		if k.Status == keys.StatusMissing {
			missing += k.DataKeys
		}
	}
	if missing != 2 {
		t.Errorf("List with another KEK: %+v, want 2 data keys under a missing key", list)
	}
}

// TestWrappedKeyBoundToIdentity moves a wrapped data key to another id
// (or purpose, or ref) in the store: it no longer unwraps.
func TestWrappedKeyBoundToIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	k, err := e.kr.NewDataKey(ctx, keys.PurposeArtifact, "a1")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := e.db.GetDataKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, id, purpose, ref string }{
		{"OtherID", "dk_moved", sk.Purpose, sk.Ref},
		{"OtherPurpose", "dk_purpose", keys.PurposeLog, sk.Ref},
		{"OtherRef", "dk_ref", sk.Purpose, "a2"},
	} {
		moved := sk
		moved.ID, moved.Purpose, moved.Ref = tt.id, tt.purpose, tt.ref
		if err := e.db.PutDataKey(ctx, moved); err != nil {
			t.Fatal(err)
		}
		if _, err := e.kr.DataKey(ctx, tt.id); !errors.Is(err, keys.ErrKeyUnavailable) {
			t.Errorf("%s: DataKey = %v, want ErrKeyUnavailable", tt.name, err)
		}
	}
}

// TestNoKeyMaterialAtRest scans the database files and the keyset file for
// the raw bytes of every data key.
func TestNoKeyMaterialAtRest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var ids []string
	for _, p := range []string{keys.PurposeArtifact, keys.PurposeLog, keys.PurposeSecret} {
		for i := range 3 {
			k, err := e.kr.NewDataKey(ctx, p, fmt.Sprint(p, i))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, k.ID)
		}
	}
	var raws, wrapped [][]byte
	for _, id := range ids {
		raw, err := keys.RawDataKey(ctx, e.kr, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 32 {
			t.Fatalf("data key %s: %d raw bytes, want 32 (AES-256)", id, len(raw))
		}
		raws = append(raws, raw)
		sk, err := e.db.GetDataKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wrapped = append(wrapped, sk.Wrapped)
	}
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	var disk []byte
	for _, name := range []string{"sluice.db", "sluice.db-wal"} {
		b, err := os.ReadFile(filepath.Join(e.dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		disk = append(disk, b...)
	}
	// The scan works: the wrapped forms are there.
	for i, w := range wrapped {
		if !bytes.Contains(disk, w) {
			t.Fatalf("wrapped data key %s not found in the database files: the scan is broken", ids[i])
		}
	}
	kekFile, err := os.ReadFile(e.kek.Path())
	if err != nil {
		t.Fatal(err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(kekFile)))
	if err != nil {
		t.Fatal(err)
	}
	var kekMaterial []byte
	for _, k := range insecurecleartextkeyset.KeysetMaterial(h).GetKey() {
		kekMaterial = append(kekMaterial, k.GetKeyData().GetValue()...)
	}
	for i, raw := range raws {
		for where, b := range map[string][]byte{"database": disk, "keyset file": kekFile, "keyset material": kekMaterial} {
			if bytes.Contains(b, raw) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(raw))) {
				t.Errorf("raw data key %s found in the %s", ids[i], where)
			}
		}
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	kr := keys.New(e.db, e.kek, keys.Options{CacheSize: 2})
	var ids []string
	for i := range 5 {
		k, err := kr.NewDataKey(t.Context(), keys.PurposeSecret, fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	if n := keys.CacheLen(kr); n != 2 {
		t.Errorf("cache holds %d keys, want 2", n)
	}
	// An evicted key is unwrapped again from the store.
	k, err := kr.DataKey(t.Context(), ids[0])
	if err != nil || k.ID != ids[0] || k.Ref != "0" || k.Purpose != keys.PurposeSecret {
		t.Fatalf("DataKey(evicted) = %+v, %v", k, err)
	}
	if _, err := kr.DataKey(t.Context(), "dk_unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DataKey(unknown) = %v, want store.ErrNotFound", err)
	}
}
