package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// problemView is one problem in a pipeline file, for --output json.
type problemView struct {
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

// fileView is the validation result of one file, for --output json.
type fileView struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Problems []problemView   `json:"problems,omitempty"`
	Pipeline json.RawMessage `json:"pipeline,omitempty"`
}

func validateCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check pipeline files and report every problem as file:line:col: message",
		Long: `Validate parses each file and reports every problem in every file at once,
one per line as file:line:col: message. It exits 1 if any file has a
problem. With --output json it prints, per file, its problems or its
normalised form (defaults applied).`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			// Parse every file first; if any references secrets, check them
			// all against the store in one go.
			parsed := make([]*pipeline.Pipeline, len(files))
			errs := make([]error, len(files))
			refs := false
			for i, file := range files {
				// The built-in connectors joined data.Builtin through the
				// blank import in internal/app.
				parsed[i], errs[i] = pipeline.ParseFile(file, pipeline.Options{Connectors: data.Builtin})
				refs = refs || (errs[i] == nil && len(parsed[i].Secrets) > 0)
			}
			if refs {
				err := withApp(cmd.Context(), e, func(ctx context.Context, a *app.App, _ *progress) error {
					for i, p := range parsed {
						if errs[i] == nil {
							if err := checkSecrets(ctx, a, p); err != nil {
								var perrs pipeline.Errors
								if !errors.As(err, &perrs) {
									return err
								}
								errs[i] = err
							}
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			bad := 0
			var views []fileView
			for i, file := range files {
				p, err := parsed[i], errs[i]
				v := fileView{File: file, Valid: err == nil}
				if err != nil {
					bad++
					var perrs pipeline.Errors
					if errors.As(err, &perrs) {
						for _, pe := range perrs {
							v.Problems = append(v.Problems, problemView{Line: pe.Pos.Line, Col: pe.Pos.Col, Message: pe.Msg})
						}
					} else {
						v.Problems = append(v.Problems, problemView{Message: err.Error()})
					}
					if !e.json() {
						fmt.Fprintln(e.stdout, err)
					}
				} else {
					if e.json() {
						n, nerr := pipeline.Normalize(p)
						if nerr != nil {
							return nerr
						}
						v.Pipeline = n
					} else {
						fmt.Fprintf(e.stdout, "%s: ok (pipeline %s/%s, %d tasks)\n", file, p.Namespace, p.Name, len(p.Tasks))
					}
				}
				views = append(views, v)
			}
			if e.json() {
				if err := e.writeJSON(views); err != nil {
					return err
				}
			}
			if bad > 0 {
				return exitWith(ExitFailure, fmt.Errorf("%d of %d files invalid", bad, len(files)))
			}
			return nil
		},
	}
}
