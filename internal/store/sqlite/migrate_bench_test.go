package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkOpen measures opening the store as a command does at start-up:
// "New" on a file that does not exist yet (creating it and applying every
// migration, as the first `sluice run` in a new state directory does),
// "Current" on a file already migrated.
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	b.Run("New", func(b *testing.B) {
		dir := b.TempDir()
		i := 0
		for b.Loop() {
			i++
			db, err := Open(ctx, filepath.Join(dir, strconv.Itoa(i)+".db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Current", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "current.db")
		db, err := Open(ctx, path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			db, err := Open(ctx, path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
