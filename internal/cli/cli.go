// Package cli is sluice's command line: it parses flags, opens the
// application through internal/app, and renders results for people (tables)
// or scripts (--output json).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/config"
)

// Exit codes.
const (
	ExitOK        = 0
	ExitFailure   = 1 // a run failed, a file is invalid, a command failed
	ExitUsage     = 2 // bad flags or arguments
	ExitCancelled = 130
)

// exitError ends a command with a specific exit code. A nil err means the
// command already told the user everything.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

// env is what every command shares: the streams, the environment, and the
// global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	home      string
	logLevel  string
	logFormat string
	output    string
}

// config loads the configuration: file < environment < flags.
func (e *env) config() (config.Config, error) {
	c, err := config.Load(e.home, e.getenv)
	if err != nil {
		return c, exitWith(ExitUsage, err)
	}
	if e.logLevel != "" {
		c.LogLevel = e.logLevel
	}
	if e.logFormat != "" {
		c.LogFormat = e.logFormat
	}
	if err := c.Validate(); err != nil {
		return c, exitWith(ExitUsage, fmt.Errorf("configuration: %w", err))
	}
	return c, nil
}

func (e *env) json() bool { return e.output == "json" }

// writeJSON renders v indented for --output json.
func (e *env) writeJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Main runs the command line with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)

	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "sluice: %s\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "sluice: %s\n", err)
	// Cobra's own argument errors (unknown command, wrong arity) are usage
	// errors; everything else our commands return is a failure.
	if isUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

// newRoot builds the command tree over e.
func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "sluice: a security-first data pipeline orchestrator",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch e.output {
			case "text", "json":
				return nil
			}
			return exitWith(ExitUsage, fmt.Errorf("--output: %q is not one of text, json", e.output))
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitWith(ExitUsage, err) })
	pf := root.PersistentFlags()
	pf.StringVar(&e.home, "home", "", "state directory (default ./.sluice, or $SLUICE_HOME)")
	pf.StringVar(&e.logLevel, "log-level", "", "log level: debug, info, warn, error")
	pf.StringVar(&e.logFormat, "log-format", "", "log format: text, json")
	pf.StringVarP(&e.output, "output", "o", "text", "output format: text or json")

	root.AddCommand(
		runCommand(e),
		resumeCommand(e),
		validateCommand(e),
		runsCommand(e),
		showCommand(e),
		qualityCommand(e),
		logsCommand(e),
		keyCommand(e),
		secretCommand(e),
		decryptCommand(e),
		auditCommand(e),
		piiCommand(e),
		detokenizeCommand(e), eraseCommand(e), janitorCommand(e),
		roleCommand(e), bindingCommand(e), accessCommand(e), pipelineCommand(e), namespaceCommand(e),
		versionCommand(e),
		triggerCommand(e), backfillCommand(e), scheduleCommand(e),
		serverCommand(e),
		initCommand(e), loginCommand(e), logoutCommand(e), whoamiCommand(e), userCommand(e), tokenCommand(e),
	)
	return root
}

// usageError marks errors about how a command was called.
type usageError struct{ error }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// args wraps a cobra positional-argument validator so its errors exit 2.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// group makes cmd a command that holds subcommands and does nothing itself:
// alone it prints its help, and an unknown subcommand is a usage error that
// names it (exit 2) rather than a help page that exits 0.
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.Args = args(cobra.NoArgs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	cmd.AddCommand(subs...)
	return cmd
}

// Version is the version printed by `sluice version`, set at build time.
const Version = "0.1.0-dev"

func versionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if e.json() {
				return e.writeJSON(map[string]string{"version": Version})
			}
			fmt.Fprintf(e.stdout, "sluice %s\n", Version)
			return nil
		},
	}
}
