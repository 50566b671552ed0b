package access

import (
	"os"
	"strings"
	"testing"
)

// matrixMarkdown renders the built-in role × permission matrix as the
// Markdown table docs/access.md shows.
func matrixMarkdown() string {
	roles := BuiltinRoles()
	var sb strings.Builder
	sb.WriteString("| permission | privileged |")
	for _, r := range roles {
		sb.WriteString(" " + r.Name + " |")
	}
	sb.WriteString("\n|---|---|")
	for range roles {
		sb.WriteString("---|")
	}
	sb.WriteString("\n")
	for _, p := range Permissions() {
		priv := ""
		if p.Privileged {
			priv = "yes"
		}
		sb.WriteString("| `" + string(p.Permission) + "` | " + priv + " |")
		for _, r := range roles {
			mark := ""
			for _, q := range r.Permissions {
				if q == p.Permission {
					mark = "✓"
				}
			}
			sb.WriteString(" " + mark + " |")
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// TestDocsMatrix keeps docs/access.md in step with the code.
func TestDocsMatrix(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/access.md")
	if err != nil {
		t.Fatalf("reading docs: %v\n%s", err, matrixMarkdown())
	}
	if want := matrixMarkdown(); !strings.Contains(string(doc), want) {
		t.Errorf("docs/access.md does not contain the current matrix; it should read:\n%s", want)
	}
}
