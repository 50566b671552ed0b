package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/store"
)

func auditCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read, verify, export and checkpoint the audit log",
		Long: `Every privileged action (secrets, keys, runs, decryption) is recorded in an
append-only, hash-chained audit log, in the same transaction as the action
where the action is a store write: an action whose record cannot be
written does not happen. Signed checkpoints pin the chain's head.

Nobody can edit or delete audit events through sluice; 'audit verify'
detects edits made to the database file behind its back. See docs/audit.md.`,
	}
	return group(cmd, auditLogCommand(e), auditVerifyCommand(e), auditExportCommand(e), auditCheckpointCommand(e))
}

func auditLogCommand(e *env) *cobra.Command {
	var f store.AuditFilter
	var since, until string
	cmd := &cobra.Command{
		Use:   "log",
		Short: "List audit events, oldest first, filtered by actor, action, resource or time",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			now := time.Now()
			if f.Since, err = audit.ParseTime(since, now); err != nil {
				return exitWith(ExitUsage, fmt.Errorf("--since: %w", err))
			}
			if f.Until, err = audit.ParseTime(until, now); err != nil {
				return exitWith(ExitUsage, fmt.Errorf("--until: %w", err))
			}
			if f.Limit < 0 {
				return exitWith(ExitUsage, fmt.Errorf("--limit %d: must not be negative", f.Limit))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedIn(ctx, ap, access.AuditRead, access.Resource{Type: access.ResAudit, Name: "log"}); err != nil {
					return err
				}
				entries, err := audit.List(ctx, ap.Store, f)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				views := make([]api.AuditEntry, 0, len(entries))
				for _, en := range entries {
					views = append(views, api.ViewAuditEntry(en))
				}
				if e.json() {
					return e.writeJSON(views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tRESOURCE\tOUTCOME\tREASON")
				for _, v := range views {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Seq, v.Time.Local().Format(time.DateTime),
						v.Actor, v.Action, v.Resource, v.Outcome, v.Reason)
				}
				return tw.Flush()
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Actor, "actor", "", `only events by this actor, e.g. "user:alice", "local:root"`)
	fl.StringVar(&f.Action, "action", "", `only events of this action, e.g. "secret.set"`)
	fl.StringVar(&f.Resource, "resource", "", `only events on this resource, e.g. "secret:crm_dsn"`)
	fl.StringVar(&since, "since", "", "only events at or after this time (RFC 3339, YYYY-MM-DD, or a duration ago such as 24h)")
	fl.StringVar(&until, "until", "", "only events before this time (same forms as --since)")
	fl.IntVar(&f.Limit, "limit", 0, "at most this many events (default all)")
	return cmd
}

func auditVerifyCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain and signed checkpoints; exit 1 naming the first bad event",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedIn(ctx, ap, access.AuditRead, access.Resource{Type: access.ResAudit, Name: "log"}); err != nil {
					return err
				}
				rep, err := audit.NewCheckpointer(ap.Store, ap.Keys, audit.CheckpointOptions{}).Verify(ctx)
				if err != nil {
					return err
				}
				if e.json() {
					if err := e.writeJSON(map[string]any{
						"ok": rep.OK(), "events": rep.Events, "last_seq": rep.LastSeq, "head": audit.Hex(rep.LastHash),
						"checkpoints": rep.Checkpoints, "last_checkpoint": rep.LastCheckpoint,
						"first_bad": rep.FirstBad(), "problems": rep.Problems,
					}); err != nil {
						return err
					}
				}
				if !rep.OK() {
					p := rep.Problems[0]
					return exitWith(ExitFailure, fmt.Errorf("audit log verification failed at event %d: %s: %s (%d problem(s))",
						p.Seq, p.Kind, p.Detail, len(rep.Problems)))
				}
				if !e.json() {
					fmt.Fprintf(e.stdout, "audit log verified: %d events, head %s, %d signed checkpoint(s)",
						rep.Events, audit.Hex(rep.LastHash), rep.Checkpoints)
					if rep.LastCheckpoint > 0 {
						fmt.Fprintf(e.stdout, ", last at event %d", rep.LastCheckpoint)
					}
					fmt.Fprintln(e.stdout)
				}
				return nil
			})
		},
	}
}

func auditExportCommand(e *env) *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the audit log as JSON lines (re-verifiable) or OCSF (for a SIEM)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != audit.FormatJSONL && format != audit.FormatOCSF {
				return exitWith(ExitUsage, fmt.Errorf("--format: %q is not one of %s, %s", format, audit.FormatJSONL, audit.FormatOCSF))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedIn(ctx, ap, access.AuditExport, access.Resource{Type: access.ResAudit, Name: "log"}); err != nil {
					return err
				}
				if out == "" {
					_, err := audit.Export(ctx, ap.Store, e.stdout, format, store.AuditFilter{})
					return err
				}
				af, err := fileio.CreateAtomic(out)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				n, err := audit.Export(ctx, ap.Store, af, format, store.AuditFilter{})
				if err != nil {
					return exitWith(ExitFailure, errors.Join(err, af.Abort()))
				}
				if err := af.Commit(); err != nil {
					return exitWith(ExitFailure, err)
				}
				if !e.json() {
					fmt.Fprintf(e.stderr, "exported %d audit events to %s\n", n, out)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", audit.FormatJSONL, "jsonl or ocsf")
	cmd.Flags().StringVarP(&out, "out", "O", "", "write to this file (mode 0600) instead of stdout")
	return cmd
}

func auditCheckpointCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign a checkpoint of the audit log's current head now",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				if _, err := e.signedIn(ctx, ap, access.AuditExport, access.Resource{Type: access.ResAudit, Name: "log"}); err != nil {
					return err
				}
				c, err := audit.NewCheckpointer(ap.Store, ap.Keys, audit.CheckpointOptions{}).Checkpoint(ctx)
				if errors.Is(err, audit.ErrEmptyLog) {
					return exitWith(ExitFailure, err)
				}
				if err != nil {
					return err
				}
				if e.json() {
					return e.writeJSON(map[string]any{"seq": c.Seq, "hash": audit.Hex(c.Hash), "time": c.Time,
						"key_id": c.KeyID, "signature": audit.Hex(c.Signature)})
				}
				fmt.Fprintf(e.stdout, "checkpoint at event %d, hash %s, signed by key %s\n", c.Seq, audit.Hex(c.Hash), c.KeyID)
				return nil
			})
		},
	}
}

// Auditing of privileged CLI actions. Each command builds its event with
// cliEvent and either runs its store write in the same transaction
// (auditedTx, audit.Do) or records before acting (auditFirst).

// cliEvent is an event by the local operator through the command line.
func cliEvent(e *env, action, resource string, details map[string]string) audit.Event {
	return audit.Event{Actor: actor(e), Action: action, Resource: resource, Source: audit.SourceCLI, Details: details}
}

// auditFirst records ev as a success before an action that is not a store
// write (a key rotation, a decryption, a resumed run): if the record cannot be
// written, the caller must not act.
func auditFirst(ctx context.Context, ap *app.App, ev audit.Event) error {
	ev.Outcome = audit.OutcomeSuccess
	if err := audit.Record(ctx, ap.Store, ev); err != nil {
		return fmt.Errorf("refusing %s: %w", ev.Action, err)
	}
	auditCheckpoint(ctx, ap)
	return nil
}

// auditFailed records that an action recorded by auditFirst then failed.
// A failure to record it is reported on stderr: the action's own error is
// what the command returns.
func auditFailed(ctx context.Context, e *env, ap *app.App, ev audit.Event, cause error) {
	ev.Outcome, ev.Reason, ev.Time = audit.OutcomeFailure, cause.Error(), time.Time{}
	if err := audit.Record(ctx, ap.Store, ev); err != nil {
		fmt.Fprintf(e.stderr, "sluice: recording the failure of %s: %s\n", ev.Action, err)
	}
}

// auditCheckpoint signs a checkpoint when one is due. A failure to sign
// does not undo an action already committed with its record; the next
// action or 'sluice audit checkpoint' tries again.
func auditCheckpoint(ctx context.Context, ap *app.App) {
	if _, _, err := audit.NewCheckpointer(ap.Store, ap.Keys, audit.CheckpointOptions{}).Maybe(ctx); err != nil {
		ap.Logger.Warn("audit checkpoint failed", "error", err)
	}
}

// auditedTx is the store a secrets.Service is given so that the secret's
// write and its audit record share one transaction: every transaction it
// runs that commits records ev with it.
type auditedTx struct {
	store.Store
	ev audit.Event
}

func (s auditedTx) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return s.Store.InTx(ctx, func(tx store.Store) error {
		if err := fn(tx); err != nil {
			return err
		}
		ev := s.ev
		ev.Outcome = audit.OutcomeSuccess
		return audit.Record(ctx, tx, ev)
	})
}
