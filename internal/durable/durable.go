// Package durable holds what several packages need to make a file's
// creation or replacement survive a crash: the fsync of the directory that
// holds its name.
package durable

import "os"

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
