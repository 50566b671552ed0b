package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/privacy"
	"github.com/sluicehq/sluice/internal/store"
)

// recordAudit writes one audit event for a privacy command; the command
// does nothing (reveals nothing) if it cannot be written.
func recordAudit(ctx context.Context, st store.Store, actor, action, resource string, details map[string]string) error {
	return audit.Record(ctx, st, audit.Event{
		Actor: actor, Action: action, Resource: resource, Outcome: audit.OutcomeSuccess,
		Source: audit.SourceCLI, Details: details,
	})
}

func detokenizeCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "detokenize [TOKEN...]",
		Short: "Print the original values of tokens written by the tokenize operator",
		Long: `Detokenize reads tokens ("tok_...") from its arguments, or one per line from
stdin when none are given, and prints the value each stands for, one per
line (with --output json, a list of {token, value} or {token, error}).

Every call is recorded in the audit log before a value is shown; if the
record cannot be written, nothing is shown. A token of an erased data subject
no longer decrypts: its key was destroyed.`,
		RunE: func(cmd *cobra.Command, a []string) error {
			tokens := a
			if len(tokens) == 0 {
				sc := bufio.NewScanner(e.stdin)
				sc.Buffer(make([]byte, 64*1024), 1<<20)
				for sc.Scan() {
					if s := strings.TrimSpace(sc.Text()); s != "" {
						tokens = append(tokens, s)
					}
				}
				if err := sc.Err(); err != nil {
					return exitWith(ExitFailure, fmt.Errorf("reading tokens from stdin: %w", err))
				}
			}
			if len(tokens) == 0 {
				return exitWith(ExitUsage, errors.New("no tokens: give them as arguments or on stdin"))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				who, err := e.signedIn(ctx, ap, access.DatasetReadRaw, access.Resource{Type: access.ResDataset, Name: "tokens"})
				if err != nil {
					return err
				}
				tok, err := privacy.NewTokenizer(ctx, ap.Keys)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if err := recordAudit(ctx, ap.Store, who.Actor, "data.detokenize", "",
					map[string]string{"tokens": fmt.Sprint(len(tokens))}); err != nil {
					return exitWith(ExitFailure, err)
				}
				type result struct {
					Token string `json:"token"`
					Value string `json:"value,omitempty"`
					Error string `json:"error,omitempty"`
				}
				var (
					out    []result
					failed int
				)
				for _, t := range tokens {
					v, err := tok.Detokenize(ctx, t)
					if err != nil {
						failed++
						out = append(out, result{Token: t, Error: err.Error()})
						continue
					}
					out = append(out, result{Token: t, Value: v})
				}
				if e.json() {
					if err := e.writeJSON(out); err != nil {
						return err
					}
				} else {
					for _, r := range out {
						if r.Error != "" {
							fmt.Fprintf(e.stderr, "sluice: %s\n", r.Error)
							continue
						}
						fmt.Fprintln(e.stdout, r.Value)
					}
				}
				if failed > 0 {
					return exitWith(ExitFailure, nil)
				}
				return nil
			})
		},
	}
}

func eraseCommand(e *env) *cobra.Command {
	var (
		subject string
		columns []string
	)
	cmd := &cobra.Command{
		Use:   "erase --subject ID [--column customer_id]...",
		Short: "Erase a data subject: destroy its key and remove its rows from every dataset",
		Long: `Erase carries out a data subject's erasure request. It destroys the subject's
key, so every token written with tokenize: {subject: ...} for that subject, in
every dataset and backup, can never be read again (crypto-shredding); it
rewrites every output and quarantine dataset sluice keeps without the
subject's rows (rows whose --column holds the id, its hmac pseudonym or its
token, and rows holding the subject's per-subject tokens), each under a new
data key; and it records evidence that names the subject only by a keyed
hash. Running it again is harmless.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(subject) == "" {
				return exitWith(ExitUsage, errors.New("--subject is required"))
			}
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				who, err := e.signedIn(ctx, ap, access.DatasetErase, access.Resource{Type: access.ResDataset, Name: "subject"})
				if err != nil {
					return err
				}
				er := &privacy.Eraser{Store: ap.Store, Keys: ap.Keys, StateDir: ap.Config.Home}
				ev, err := er.Erase(ctx, privacy.EraseRequest{Subject: subject, Columns: columns, Actor: who.Actor})
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if err := recordAudit(ctx, ap.Store, who.Actor, "privacy.erase", "erasure:"+ev.ID, map[string]string{
					"keys_destroyed": fmt.Sprint(ev.KeysDestroyed), "artifacts": fmt.Sprint(len(ev.Artifacts)),
					"rows": fmt.Sprint(ev.Rows),
				}); err != nil {
					return exitWith(ExitFailure, err)
				}
				if e.json() {
					return e.writeJSON(ev)
				}
				fmt.Fprintf(e.stdout, "erasure %s: %d key(s) destroyed, %d row(s) removed from %d dataset(s)\n",
					ev.ID, ev.KeysDestroyed, ev.Rows, len(ev.Artifacts))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "the data subject's id")
	cmd.Flags().StringSliceVar(&columns, "column", nil, "a column holding the subject id (repeatable)")
	return cmd
}

func janitorCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "janitor",
		Short: "Delete the datasets whose retention period has passed",
		Long: `Janitor deletes every output and quarantine dataset whose task declared
retain: and whose period has passed, file and record, and records each
deletion (listed with --output json).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), e, func(ctx context.Context, ap *app.App, _ *progress) error {
				who, err := e.signedIn(ctx, ap, access.SettingsManage, access.Resource{Type: access.ResSettings, Name: "retention"})
				if err != nil {
					return err
				}
				j := &privacy.Janitor{Store: ap.Store, StateDir: ap.Config.Home, Keys: ap.Keys}
				done, err := j.Sweep(ctx)
				if len(done) > 0 {
					if aerr := recordAudit(ctx, ap.Store, who.Actor, "data.retention_delete", "",
						privacy.RetentionDetails(done)); aerr != nil {
						err = errors.Join(err, aerr)
					}
				}
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if e.json() {
					if done == nil {
						done = []store.ArtifactDeletion{}
					}
					return e.writeJSON(done)
				}
				for _, d := range done {
					fmt.Fprintf(e.stdout, "deleted %s (%s)\n", d.ArtifactID, d.Reason)
				}
				fmt.Fprintf(e.stdout, "%d expired dataset(s) deleted\n", len(done))
				return nil
			})
		},
	}
}
