package builtin_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	_ "github.com/sluicehq/sluice/internal/data/builtin"
)

func TestRegistersFileConnectors(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff([]string{"csv", "jsonl"}, data.Builtin.Sources()); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"csv", "jsonl"}, data.Builtin.Sinks()); diff != "" {
		t.Errorf("sinks (-want +got):\n%s", diff)
	}
}
