package builtin_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	_ "github.com/sluicehq/sluice/internal/data/builtin"
)

// TestRegistersEveryConnector pins the set the binary ships with: a
// connector that stops registering (a lost import) fails here.
func TestRegistersEveryConnector(t *testing.T) {
	t.Parallel()
	wantSources := []string{"csv", "http", "jsonl", "mysql", "nats", "parquet", "postgres", "sqlite"}
	wantSinks := []string{"csv", "jsonl", "mysql", "nats", "parquet", "postgres", "sqlite"}
	if diff := cmp.Diff(wantSources, data.Builtin.Sources()); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSinks, data.Builtin.Sinks()); diff != "" {
		t.Errorf("sinks (-want +got):\n%s", diff)
	}
}
