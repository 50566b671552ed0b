package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command that holds subcommands refuses an unknown one as a usage
// error naming it, instead of printing its help and exiting 0: a typo in a
// script must not pass for success.
func TestGroupsRefuseUnknownSubcommands(t *testing.T) {
	t.Parallel()
	var groups [][]string
	var walk func(path []string, c *cobra.Command)
	walk = func(path []string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			p := append(append([]string(nil), path...), sub.Name())
			if sub.HasSubCommands() {
				groups = append(groups, p)
				walk(p, sub)
			}
		}
	}
	walk(nil, newRoot(&env{}))
	if len(groups) < 10 {
		t.Fatalf("found %d command groups, want the dozen sluice has: %v", len(groups), groups)
	}
	for _, g := range groups {
		var out, errb bytes.Buffer
		args := append([]string{"--home", t.TempDir()}, append(g, "bogus")...)
		code := Main(t.Context(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
		if code != ExitUsage || !strings.Contains(errb.String(), `unknown command "bogus"`) {
			t.Errorf("sluice %s bogus: exit %d, stderr %q; want exit %d naming the unknown command",
				strings.Join(g, " "), code, errb.String(), ExitUsage)
		}
		out.Reset()
		errb.Reset()
		args = append([]string{"--home", t.TempDir()}, g...)
		if code := Main(t.Context(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" }); code != ExitOK || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("sluice %s: exit %d, stdout %.60q; want its help and exit 0", strings.Join(g, " "), code, out.String())
		}
	}
}
