// Package durable holds what several packages need to make a file's
// creation or replacement survive a crash: a synced temporary file beside
// the target, and the fsync of the directory that holds its name.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// SyncDir makes the entries of dir durable: a file created, linked or
// renamed into dir (after its contents were synced) is then found there
// after a crash or power loss. The errors are the operating system's, which
// name the directory.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteTemp writes data to a new file in dir named after pattern (as
// os.CreateTemp takes it), with mode perm set before any byte is written,
// synced to stable storage, and returns its name. The caller links or
// renames it into place, then syncs dir; on failure nothing is left.
func WriteTemp(dir, pattern string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	return name, nil
}

// WriteFile replaces path with data, mode perm, so that a crash leaves
// either the old file or the new one, never a torn one: a synced temporary
// file beside it is renamed over it and the directory synced.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := WriteTemp(dir, "."+filepath.Base(path)+".tmp-*", data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}
