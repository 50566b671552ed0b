package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// The next steps init prints name commands that exist: an operator types
// them as shown.
func TestUserInitNextStepsNameRealCommands(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"--home", t.TempDir(), "init", "--admin", "alice"}
	if code := Main(t.Context(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" }); code != ExitOK {
		t.Fatalf("sluice init: exit %d, stderr %q", code, errb.String())
	}
	root := newRoot(&env{})
	named := regexp.MustCompile(`sluice((?: [a-z]+)+)`).FindAllStringSubmatch(out.String(), -1)
	if len(named) < 3 {
		t.Fatalf("init names %d commands, want its next steps:\n%s", len(named), out.String())
	}
	for _, m := range named {
		words := strings.Fields(m[1])
		c, rest, err := root.Find(words)
		if err != nil || c == root || (c.HasSubCommands() && len(rest) > 0) {
			t.Errorf("init names %q, which is not a sluice command (found %q, rest %q, err %v)",
				"sluice"+m[1], c.CommandPath(), rest, err)
		}
	}
	for _, want := range []string{"sluice binding grant", "sluice access request"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("init's next steps do not name %q:\n%s", want, out.String())
		}
	}
}
