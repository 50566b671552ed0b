// Command genimage writes the image of a new database that package sqlite
// embeds (image.db.gz: every migration applied, in WAL mode, compressed).
// Run it after adding a migration, through
//
//	go generate ./internal/store/sqlite
//
// TestImageMatchesMigrations fails until the image is regenerated.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/sluicehq/sluice/internal/store/sqlite"
)

func main() {
	out := flag.String("o", "image.db.gz", "file to write the compressed image to")
	flag.Parse()
	if err := run(context.Background(), *out); err != nil {
		fmt.Fprintln(os.Stderr, "genimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string) error {
	var buf bytes.Buffer
	if err := sqlite.BuildImage(ctx, &buf); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}
