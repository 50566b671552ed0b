package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/keys"
)

func keyCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the key-encryption keys that protect everything sluice stores",
		Long: `Every dataset, task log and secret sluice stores is encrypted under a data key
of its own, and every data key is stored wrapped by the key-encryption key
(KEK). These commands manage the KEK's keys, online, with runs in flight:

  rotate   add a new primary key; data keys wrapped by older keys stay readable
  rewrap   re-wrap every data key under the primary (the data is not re-encrypted)
  retire   remove a key that no data key references any more

See docs/keys.md for backups and the rotate → rewrap → retire sequence.`,
	}
	return group(cmd, keyListCommand(e), keyRotateCommand(e), keyRewrapCommand(e), keyRetireCommand(e))
}

type keyView struct {
	ID       uint32 `json:"id"`
	Status   string `json:"status"`
	DataKeys int64  `json:"data_keys"`
}

func keyListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the KEK's keys and how many data keys each wraps",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, a *app.App, _ *progress) error {
				if _, err := e.signedIn(ctx, a, access.KeyManage, access.Resource{Type: access.ResKey, Name: "kek"}); err != nil {
					return err
				}
				infos, err := a.Keys.List(ctx)
				if err != nil {
					return err
				}
				views := make([]keyView, 0, len(infos))
				for _, k := range infos {
					views = append(views, keyView{ID: k.ID, Status: string(k.Status), DataKeys: k.DataKeys})
				}
				if e.json() {
					return e.writeJSON(map[string]any{"source": a.Keys.KEK().Source(), "keys": views})
				}
				fmt.Fprintf(e.stdout, "key-encryption key: %s\n", a.Keys.KEK().Source())
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY ID\tSTATUS\tDATA KEYS")
				for _, v := range views {
					fmt.Fprintf(tw, "%d\t%s\t%d\n", v.ID, v.Status, v.DataKeys)
				}
				return tw.Flush()
			})
		},
	}
}

func keyRotateCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Add a new primary KEK key; new data keys are wrapped by it",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, a *app.App, _ *progress) error {
				p, err := e.signedIn(ctx, a, access.KeyManage, access.Resource{Type: access.ResKey, Name: "kek"})
				if err != nil {
					return err
				}
				ev := cliEvent(e, "key.rotate", "kek", nil)
				p.stamp(&ev)
				if err := auditFirst(ctx, a, ev); err != nil {
					return err
				}
				k, err := a.Keys.Rotate(ctx)
				if err != nil {
					auditFailed(ctx, e, a, ev, err)
					return keyError(err)
				}
				if e.json() {
					return e.writeJSON(keyView{ID: k.ID, Status: string(k.Status)})
				}
				fmt.Fprintf(e.stdout, "new primary key %d. Restart other sluice processes using this state directory,\n"+
					"then run 'sluice key rewrap' to move existing data keys under it.\n", k.ID)
				return nil
			})
		},
	}
}

func keyRewrapCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every data key under the primary KEK key",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, a *app.App, pr *progress) error {
				p, err := e.signedIn(ctx, a, access.KeyManage, access.Resource{Type: access.ResKey, Name: "kek"})
				if err != nil {
					return err
				}
				ev := cliEvent(e, "key.rewrap", "kek", nil)
				p.stamp(&ev)
				if err := auditFirst(ctx, a, ev); err != nil {
					return err
				}
				n, err := a.Keys.Rewrap(ctx, nil)
				if err != nil {
					auditFailed(ctx, e, a, ev, err)
					return keyError(err)
				}
				if e.json() {
					return e.writeJSON(map[string]int{"rewrapped": n})
				}
				fmt.Fprintf(e.stdout, "re-wrapped %d data keys under the primary key\n", n)
				return nil
			})
		},
	}
}

func keyRetireCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "retire KEY_ID",
		Short: "Remove a KEK key that no data key references any more",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := strconv.ParseUint(a[0], 10, 32)
			if err != nil {
				return exitWith(ExitUsage, fmt.Errorf("KEY_ID: %q is not a key id (see 'sluice key list')", a[0]))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				p, err := e.signedIn(ctx, ap, access.KeyManage, access.Resource{Type: access.ResKey, Name: "kek"})
				if err != nil {
					return err
				}
				ev := cliEvent(e, "key.retire", fmt.Sprintf("kek:%d", id), nil)
				p.stamp(&ev)
				if err := auditFirst(ctx, ap, ev); err != nil {
					return err
				}
				if err := ap.Keys.Retire(ctx, uint32(id)); err != nil {
					auditFailed(ctx, e, ap, ev, err)
					return keyError(err)
				}
				if e.json() {
					return e.writeJSON(map[string]uint32{"retired": uint32(id)})
				}
				fmt.Fprintf(e.stdout, "retired key %d\n", id)
				return nil
			})
		},
	}
}

// keyError turns the keyring's refusals into failures with their own text.
func keyError(err error) error {
	if errors.Is(err, keys.ErrKeyInUse) || errors.Is(err, keys.ErrReadOnlyKEK) {
		return exitWith(ExitFailure, err)
	}
	return err
}
