package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/secrets"
	"github.com/sluicehq/sluice/internal/store"
)

// maxSecretSize bounds a secret value read from stdin.
const maxSecretSize = 64 << 10

func secretCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Store, list and remove the secrets pipelines reference as ${secret:NAME}",
		Long: `Secrets are sealed in the store, each version under a data key of its own.
Pipelines reference them as ${secret:NAME}; sluice resolves a reference only
inside the task that uses it, at the last moment, and removes the value (and
its common encodings) from every log, error and record it writes.

A value is never taken from the command line, where it would land in shell
history and process listings: 'set' reads it from stdin, or prompts for it
without echo on a terminal.`,
	}
	return group(cmd, secretSetCommand(e), secretListCommand(e), secretRmCommand(e))
}

func secretSetCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME",
		Short: "Store a new version of a secret, read from stdin or a no-echo prompt",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			name := a[0]
			if err := secrets.ValidName(name); err != nil {
				return exitWith(ExitUsage, err)
			}
			value, err := readSecret(e, name)
			if err != nil {
				return exitWith(ExitUsage, err)
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				// The new version and its audit record commit together.
				p, err := e.signedIn(ctx, ap, access.SecretWrite, access.Resource{Type: access.ResSecret, Name: name})
				if err != nil {
					return err
				}
				ev := cliEvent(e, "secret.set", "secret:"+name, nil)
				p.stamp(&ev)
				svc := secrets.NewService(auditedTx{Store: ap.Store, ev: ev}, ap.Keys, ap.Redactor, nil)
				s, err := svc.Set(ctx, name, value, p.Actor)
				if err != nil {
					auditFailed(ctx, e, ap, ev, err)
					if errors.Is(err, secrets.ErrValueTooShort) || errors.Is(err, secrets.ErrInvalidName) {
						return exitWith(ExitUsage, err)
					}
					return err
				}
				auditCheckpoint(ctx, ap)
				if e.json() {
					return e.writeJSON(map[string]any{"name": s.Name, "version": s.Version})
				}
				fmt.Fprintf(e.stdout, "secret %s: version %d stored\n", s.Name, s.Version)
				return nil
			})
		},
	}
}

// readSecret reads a value from a terminal without echo, or else from
// stdin, dropping one trailing newline (what `echo` and here-documents add).
func readSecret(e *env, name string) ([]byte, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(e.stderr, "value for secret %s (not echoed): ", name)
		v, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return nil, fmt.Errorf("reading the value: %w", err)
		}
		return v, nil
	}
	v, err := io.ReadAll(io.LimitReader(e.stdin, maxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the value from stdin: %w", err)
	}
	if len(v) > maxSecretSize {
		return nil, fmt.Errorf("the value on stdin is larger than %d bytes", maxSecretSize)
	}
	v = bytes.TrimSuffix(v, []byte("\n"))
	v = bytes.TrimSuffix(v, []byte("\r"))
	if len(v) == 0 {
		return nil, errors.New("no value on stdin: pipe it in, e.g. 'sluice secret set NAME < file'")
	}
	return v, nil
}

// actor names the local operator, who acts in an installation without
// users (see principal): the operating system user.
func actor(e *env) string {
	if u, err := user.Current(); err == nil {
		return "local:" + u.Username
	}
	return "local:uid" + fmt.Sprint(os.Getuid())
}

func secretListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List secrets: names, versions, who set them and when; never values",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedIn(ctx, ap, access.SecretWrite, access.Resource{Type: access.ResSecret}); err != nil {
					return err
				}
				metas, err := ap.Secrets.List(ctx)
				if err != nil {
					return err
				}
				if e.json() {
					type view struct {
						Name    string    `json:"name"`
						Version int       `json:"version"`
						SetBy   string    `json:"set_by"`
						SetAt   time.Time `json:"set_at"`
					}
					views := make([]view, 0, len(metas))
					for _, m := range metas {
						views = append(views, view{m.Name, m.Version, m.SetBy, m.SetAt})
					}
					return e.writeJSON(views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tVERSION\tSET BY\tSET AT")
				for _, m := range metas {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", m.Name, m.Version, m.SetBy, m.SetAt.Local().Format(time.DateTime))
				}
				return tw.Flush()
			})
		},
	}
}

func secretRmCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete every version of a secret",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				if err := secrets.ValidName(a[0]); err != nil {
					return exitWith(ExitUsage, err)
				}
				p, err := e.signedIn(ctx, ap, access.SecretWrite, access.Resource{Type: access.ResSecret, Name: a[0]})
				if err != nil {
					return err
				}
				// The deletion and its audit record commit together.
				// So does the destruction of its versions' data keys,
				// which then leave the cache.
				details := map[string]string{}
				var destroyed []string
				ev := cliEvent(e, "secret.rm", "secret:"+a[0], details)
				p.stamp(&ev)
				err = audit.Do(ctx, ap.Store, ev, func(tx store.Store) error {
					var err error
					destroyed, err = ap.Secrets.DeleteIn(ctx, tx, a[0])
					details["data_keys_destroyed"] = strings.Join(destroyed, ",")
					return err
				})
				auditCheckpoint(ctx, ap)
				if err == nil {
					err = ap.Secrets.Evict(ctx, destroyed)
				}
				if errors.Is(err, store.ErrNotFound) {
					return exitWith(ExitFailure, fmt.Errorf("no secret %q (list them with 'sluice secret list')", a[0]))
				}
				if err != nil {
					return err
				}
				if !e.json() {
					fmt.Fprintf(e.stdout, "secret %s deleted\n", a[0])
				}
				return nil
			})
		},
	}
}

// checkSecrets reports every reference of p to a secret that is not
// stored, at the place it is written.
func checkSecrets(ctx context.Context, a *app.App, p *pipeline.Pipeline) error {
	var missing pipeline.Errors
	known := map[string]bool{}
	for _, ref := range p.Secrets {
		ok, seen := known[ref.Name]
		if !seen {
			_, err := a.Store.GetSecret(ctx, ref.Name)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return fmt.Errorf("checking secret %q: %w", ref.Name, err)
			default:
				ok = true
			}
			known[ref.Name] = ok
		}
		if !ok {
			missing = append(missing, pipeline.Error{Pos: ref.Pos, Msg: fmt.Sprintf(
				"secret %q does not exist: store it with 'sluice secret set %s' (it reads the value from stdin)", ref.Name, ref.Name)})
		}
	}
	if len(missing) > 0 {
		return missing
	}
	return nil
}
