package keys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/sluicehq/sluice/internal/durable"
)

// Where the keyset file lives, and its modes: the KEK is readable by the
// owner only, in a directory only the owner can list.
const (
	KeysDir     = "keys"     // under the state directory
	KeysetFile  = "kek.json" // in KeysDir
	KeysDirMode = fs.FileMode(0o700)
	KeyFileMode = fs.FileMode(0o600)
)

// FileKEK is the KEK kept as a cleartext Tink JSON keyset in
// <state>/keys/kek.json. It is the default because it needs nothing else,
// and its cost is the trade-off docs/keys.md spells out: whoever reads the
// file and the store together reads everything, so the file must be backed
// up and kept apart from copies of the data. sluice manages this keyset, so
// it can be rotated and its old keys retired.
type FileKEK struct {
	*keysetKEK
	path    string
	created bool
	// wmu serialises Rotate and Remove so each builds on the last.
	wmu sync.Mutex
}

var _ ManagedKEK = (*FileKEK)(nil)

// LoadFile loads the keyset file of stateDir, creating it (with one
// AES256-GCM key, mode 0600 in a 0700 directory) on first use; Created then
// reports true so the caller can tell the operator to back it up. It
// refuses a file that group or others may access, naming the file and the
// fix, and anything at that path that is not a regular file.
func LoadFile(stateDir string) (*FileKEK, error) {
	dir := filepath.Join(stateDir, KeysDir)
	path := filepath.Join(dir, KeysetFile)
	created := false
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if created, err = createKeysetFile(dir, path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("loading KEK keyset %s: %w", path, err)
	}
	h, err := readKeysetFile(path)
	if err != nil {
		return nil, err
	}
	k, err := newKeysetKEK("file "+path, h)
	if err != nil {
		return nil, fmt.Errorf("loading KEK keyset: %w", err)
	}
	return &FileKEK{keysetKEK: k, path: path, created: created}, nil
}

// Created reports whether LoadFile generated the keyset just now: the moment
// to warn that it must be backed up, apart from the data.
func (f *FileKEK) Created() bool { return f.created }

// Path is the keyset file.
func (f *FileKEK) Path() string { return f.path }

func readKeysetFile(path string) (*keyset.Handle, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("loading KEK keyset: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("loading KEK keyset %s: not a regular file (%s)", path, st.Mode().Type())
	}
	if perm := st.Mode().Perm(); perm&^KeyFileMode != 0 {
		return nil, fmt.Errorf("refusing KEK keyset %s: mode %04o lets group or others access the key; "+
			"restrict it with \"chmod 600 %s\" and consider the key exposed if others could read it", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading KEK keyset: %w", err)
	}
	return parseJSONKeyset("KEK keyset "+path, b)
}

// createKeysetFile writes a new keyset at path unless one appeared
// meanwhile (another process's first use): the temporary file is linked into
// place, which fails if path exists, so two first uses never produce two
// keys. It reports whether this call created it.
func createKeysetFile(dir, path string) (bool, error) {
	if err := os.MkdirAll(dir, KeysDirMode); err != nil {
		return false, fmt.Errorf("creating keys directory: %w", err)
	}
	h, err := newKEKKeyset()
	if err != nil {
		return false, err
	}
	tmp, err := writeTemp(dir, h)
	if err != nil {
		return false, fmt.Errorf("creating KEK keyset %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("creating KEK keyset %s: %w", path, err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return false, fmt.Errorf("creating KEK keyset %s: %w", path, err)
	}
	return true, nil
}

// writeTemp writes h to a new synced file in dir, mode KeyFileMode, and
// returns its name.
func writeTemp(dir string, h *keyset.Handle) (string, error) {
	b, err := marshalJSONKeyset(h)
	if err != nil {
		return "", err
	}
	name, err := durable.WriteTemp(dir, ".kek-*.tmp", b, KeyFileMode)
	if err != nil {
		return "", fmt.Errorf("temporary keyset file: %w", err)
	}
	return name, nil
}

// persist replaces the keyset file atomically (temporary file, fsync,
// rename, fsync of the directory) and then the keyset in memory: a crash
// leaves either the old keyset or the new one, never a torn file.
func (f *FileKEK) persist(h *keyset.Handle) error {
	b, err := marshalJSONKeyset(h)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(f.path, b, KeyFileMode); err != nil {
		return fmt.Errorf("saving KEK keyset %s: %w", f.path, err)
	}
	return f.swap(h)
}

// Rotate adds a new AES256-GCM key as the primary and saves the keyset.
func (f *FileKEK) Rotate(ctx context.Context) (KeyInfo, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if err := ctx.Err(); err != nil {
		return KeyInfo{}, err
	}
	m := keyset.NewManagerFromHandle(f.handle())
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return KeyInfo{}, fmt.Errorf("rotating KEK: adding key: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return KeyInfo{}, fmt.Errorf("rotating KEK: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return KeyInfo{}, fmt.Errorf("rotating KEK: %w", err)
	}
	if err := f.persist(h); err != nil {
		return KeyInfo{}, fmt.Errorf("rotating KEK: %w", err)
	}
	return KeyInfo{ID: id, Status: StatusPrimary}, nil
}

// Remove deletes a non-primary key from the keyset and saves it.
func (f *FileKEK) Remove(ctx context.Context, keyID uint32) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m := keyset.NewManagerFromHandle(f.handle())
	if err := m.Delete(keyID); err != nil {
		return fmt.Errorf("removing KEK key %d: %w", keyID, err)
	}
	h, err := m.Handle()
	if err != nil {
		return fmt.Errorf("removing KEK key %d: %w", keyID, err)
	}
	if err := f.persist(h); err != nil {
		return fmt.Errorf("removing KEK key %d: %w", keyID, err)
	}
	return nil
}
