package jsonl

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
)

// TestGlobZstd reads two files, the second zstd-compressed, with the
// schema inferred from the first; each reject names its own file.
func TestGlobZstd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	schema := data.MustSchema(data.Field{Name: "id", Type: data.Int}, data.Field{Name: "name", Type: data.String})
	sink, err := OpenSink(context.Background(), &Config{Path: "b.jsonl.zst"}, schema, testEnv(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(context.Background(), batchOf(schema, []row{{int64(2), "Bo"}, {nil, "Cy"}})); err != nil {
		t.Fatal(err)
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte("{\"id\":1,\"name\":\"Ada\"}\n{\"id\":\"x\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := &quarantine{}
	src, err := OpenSource(context.Background(), &Config{Path: "*.jsonl*"}, testEnv(dir, q))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, pos := readAll(t, src)
	if diff := cmp.Diff([]row{{int64(1), "Ada"}, {int64(2), "Bo"}, {nil, "Cy"}}, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 1, 2}, pos); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	if len(q.rejs) != 1 || q.rejs[0].Pos != filepath.Join(dir, "a.jsonl")+":2" {
		t.Errorf("rejects = %+v", q.rejs)
	}
}
