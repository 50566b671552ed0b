package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

func decryptCommand(e *env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "decrypt FILE",
		Short: "Decrypt a file a sink wrote with encrypt: true",
		Long: `Decrypt reads a file that a csv, jsonl or parquet sink wrote with
'encrypt: true' and writes its plaintext to stdout, or atomically to the file
given with --out (mode 0600). It needs the state directory whose keyring
encrypted the file (--home), and that keyring's key-encryption key.

Every byte is authenticated before it is written out: a file that was
altered or truncated fails with an integrity error, and with --out nothing
is left behind.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				in, err := os.Open(a[0])
				if err != nil {
					return exitWith(ExitFailure, fmt.Errorf("opening %w", err))
				}
				defer in.Close()
				// A raw data read: recorded before any byte is decrypted.
				abs, err := filepath.Abs(a[0])
				if err != nil {
					return exitWith(ExitFailure, fmt.Errorf("decrypting %s: %w", a[0], err))
				}
				who, err := e.signedIn(ctx, ap, access.DatasetReadRaw, access.Resource{Type: access.ResDataset, Name: abs})
				if err != nil {
					return err
				}
				ev := cliEvent(e, "data.decrypt", "file:"+abs, nil)
				who.stamp(&ev)
				if err := auditFirst(ctx, ap, ev); err != nil {
					return err
				}
				plain, err := ap.Keys.DecryptReader(ctx, in, []byte(data.EncryptedFileAAD))
				if err != nil {
					return exitWith(ExitFailure, fmt.Errorf("decrypting %s: %w", a[0], err))
				}
				if out == "" {
					// To stdout as it is verified, segment by segment; a
					// failure part-way is reported and exits non-zero.
					if _, err := io.Copy(e.stdout, plain); err != nil {
						return exitWith(ExitFailure, fmt.Errorf("decrypting %s: %w", a[0], err))
					}
					return nil
				}
				af, err := fileio.CreateAtomic(out)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if _, err := io.Copy(af, plain); err != nil {
					return exitWith(ExitFailure, errors.Join(fmt.Errorf("decrypting %s: %w", a[0], err), af.Abort()))
				}
				if err := af.Commit(); err != nil {
					return exitWith(ExitFailure, err)
				}
				if !e.json() {
					fmt.Fprintf(e.stderr, "decrypted %s into %s\n", a[0], out)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&out, "out", "O", "", "write the plaintext to this file instead of stdout")
	return cmd
}
