package task

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/data"
	_ "github.com/sluicehq/sluice/internal/data/builtin"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

const customersCSV = `id,name,country,age
1,Ada,DE,36
2,Bo,US,12
3,Cy,FR,notanumber
4,Di,GB,50
5,Ed,DE
6,Fa,US,44
`

// dataJob parses spec (a whole pipeline) with the real parser and
// connectors, writes files into the pipeline's directory, and returns a job
// for the named task.
func dataJob(t *testing.T, spec, taskName string, files map[string]string) *Job {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.ParseFile(file, pipeline.Options{Connectors: data.Builtin})
	if err != nil {
		t.Fatal(err)
	}
	tk := p.Task(taskName)
	return &Job{
		Run:      store.Run{ID: "r1", Pipeline: p.Name, Namespace: p.Namespace, LogicalDate: "2026-11-25"},
		Pipeline: p, Task: tk, Attempt: 1,
		Vars:     pipeline.Vars{LogicalDate: "2026-11-25", RunID: "r1", Pipeline: p.Name, Namespace: p.Namespace, Task: tk.Name},
		Log:      &strings.Builder{},
		StateDir: t.TempDir(),
	}
}

func artifactOf(t *testing.T, res Result, kind string) store.Artifact {
	t.Helper()
	for _, a := range res.Artifacts {
		if a.Kind == kind {
			return a
		}
	}
	t.Fatalf("no %s artifact in %+v", kind, res.Artifacts)
	return store.Artifact{}
}

// testKeys returns a real keyring over a fresh SQLite store: datasets are
// always encrypted.
func testKeys(t *testing.T) *keys.Keyring {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "sluice.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kek, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return keys.New(db, kek, keys.Options{})
}

// readArtifact returns every row of an artifact as strings, verified and
// decrypted.
func readArtifact(t *testing.T, crypt *keys.Keyring, home string, a store.Artifact) [][]string {
	t.Helper()
	src, err := artifact.Open(filepath.Join(home, a.Path), a.SHA256, artifact.Options{
		Unwrap: crypt.Unwrapper(context.Background(), artifact.AAD(a.ID)), PlainSHA256: a.PlainSHA256,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var rows [][]string
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < b.Len; r++ {
			var row []string
			for _, c := range b.Cols {
				row = append(row, c.Strings[r])
			}
			rows = append(rows, row)
		}
	}
}

func TestDataStreamExtractTransformLoad(t *testing.T) {
	t.Parallel()
	crypt := testKeys(t)
	job := dataJob(t, `pipeline: p
tasks:
  all:
    extract: {csv: {path: in.csv}}
    transform:
      - cast: {age: int}
      - filter: "row.age >= 18"
      - derive: {greeting: "'hi ' + row.name"}
    allow_raw_pii: {columns: [name], reason: "fixture names are not personal data"}
    load: {jsonl: {path: "out/{{ .LogicalDate }}.jsonl"}}
`, "all", map[string]string{"in.csv": customersCSV})

	res, err := NewData(data.Builtin, crypt).Execute(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	// 6 records: 1 short line quarantined by the reader, 1 bad age by the
	// cast, 1 minor filtered out, 3 written.
	if res.RowsIn != 6 || res.RowsOut != 3 || res.RowsQuarantined != 2 {
		t.Errorf("rows in/out/quarantined = %d/%d/%d, want 6/3/2", res.RowsIn, res.RowsOut, res.RowsQuarantined)
	}
	if res.Output != "" {
		t.Errorf("a loading task has no output dataset, got %q", res.Output)
	}
	out := filepath.Join(job.Pipeline.Dir, "out", "2026-11-25.jsonl")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"1","name":"Ada","country":"DE","age":36,"greeting":"hi Ada"}
{"id":"4","name":"Di","country":"GB","age":50,"greeting":"hi Di"}
{"id":"6","name":"Fa","country":"US","age":44,"greeting":"hi Fa"}
`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	sink := artifactOf(t, res, "sink")
	sum := sha256.Sum256(b)
	if sink.SHA256 != hex.EncodeToString(sum[:]) || sink.Path != out || sink.Rows != 3 {
		t.Errorf("sink record %+v does not describe %s", sink, out)
	}

	q := readArtifact(t, crypt, job.StateDir, artifactOf(t, res, "quarantine"))
	if len(q) != 2 {
		t.Fatalf("quarantine rows: %q", q)
	}
	if !strings.Contains(q[0][0], "in.csv:6") || !strings.Contains(q[0][2], "5,Ed,DE") {
		t.Errorf("reader reject: %q", q[0])
	}
	if !strings.Contains(q[1][1], `column "age"`) || !strings.Contains(q[1][2], "notanumber") {
		t.Errorf("cast reject: %q", q[1])
	}
}

func TestDataArtifactBetweenTasks(t *testing.T) {
	t.Parallel()
	crypt := testKeys(t)
	spec := `pipeline: p
tasks:
  extract:
    extract: {csv: {path: in.csv}}
  load:
    needs: [extract]
    transform:
      - select: [name, country]
    allow_raw_pii: {columns: [name], reason: "fixture names are not personal data"}
    load: {csv: {path: out.csv}}
`
	files := map[string]string{"in.csv": "id,name,country\n1,Ada,DE\n2,Bo,US\n"}
	first := dataJob(t, spec, "extract", files)
	res, err := NewData(data.Builtin, crypt).Execute(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	outArt := artifactOf(t, res, "output")
	if res.Output != outArt.ID || outArt.Rows != 2 || outArt.Format != artifact.Format {
		t.Fatalf("output dataset: %+v (Output %q)", outArt, res.Output)
	}
	if got := readArtifact(t, crypt, first.StateDir, outArt); len(got) != 2 || got[1][1] != "Bo" {
		t.Errorf("artifact rows: %q", got)
	}

	second := dataJob(t, spec, "load", files)
	second.StateDir = first.StateDir
	second.Inputs = map[string]store.Artifact{"extract": outArt}
	res2, err := NewData(data.Builtin, crypt).Execute(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	if res2.RowsIn != 2 || res2.RowsOut != 2 {
		t.Errorf("rows %d → %d", res2.RowsIn, res2.RowsOut)
	}
	b, err := os.ReadFile(filepath.Join(second.Pipeline.Dir, "out.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "name,country\nAda,DE\nBo,US\n" {
		t.Errorf("out.csv:\n%s", b)
	}

	// A tampered input fails verification before any record is read, and
	// the failure is permanent: retrying cannot mend the bytes.
	path := filepath.Join(first.StateDir, outArt.Path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw0 := bytes.Clone(raw)
	raw[len(raw)/2] ^= 0x01
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = NewData(data.Builtin, crypt).Execute(context.Background(), second)
	if !errors.Is(err, ErrIntegrity) || !errors.Is(err, artifact.ErrIntegrity) || !IsPermanent(err) {
		t.Errorf("tampered input: err = %v, want a permanent integrity error", err)
	}
	// A file swapped in from another artifact with its digests fails to
	// decrypt: the data key binds each artifact to its own id.
	swapped := outArt
	swapped.ID = "r1/other.1.out"
	second.Inputs = map[string]store.Artifact{"extract": swapped}
	if err := os.WriteFile(path, raw0, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = NewData(data.Builtin, crypt).Execute(context.Background(), second)
	if !errors.Is(err, ErrIntegrity) {
		t.Errorf("artifact under another id: err = %v, want an integrity error", err)
	}

	// On disk the dataset is ciphertext: no value of it appears.
	if bytes.Contains(raw0, []byte("Ada")) {
		t.Error("artifact holds plaintext")
	}
}

func TestDataCancelledLeavesNothingVisible(t *testing.T) {
	t.Parallel()
	crypt := testKeys(t)
	var sb strings.Builder
	sb.WriteString("id,name\n")
	for i := 0; i < 50000; i++ {
		sb.WriteString("1,x\n")
	}
	job := dataJob(t, `pipeline: p
tasks:
  all:
    extract: {csv: {path: in.csv, batch_size: 100}}
    load: {jsonl: {path: out.jsonl}}
`, "all", map[string]string{"in.csv": sb.String()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewData(data.Builtin, crypt).Execute(ctx, job)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled task: err = %v, want context.Canceled", err)
	}
	entries, _ := os.ReadDir(job.Pipeline.Dir)
	for _, e := range entries {
		if e.Name() != "in.csv" && e.Name() != "p.yaml" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
