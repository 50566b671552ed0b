package task

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

const (
	stepsCustomersCSV = "id,country\nc1,DE\nc2,FR\nc3,DE\n"
	stepsOrdersCSV    = "id,customer,amount\n1,c1,10.5\n2,c2,3\n3,c1,x\n4,c9,7\n5,c3,1\n"
)

// readStepsArtifact returns every row of an artifact as strings, verified
// and decrypted.
func readStepsArtifact(t *testing.T, crypt *keys.Keyring, home string, a store.Artifact) [][]string {
	t.Helper()
	src, err := artifact.Open(filepath.Join(home, a.Path), a.SHA256, artifact.Options{
		Unwrap: crypt.Unwrapper(context.Background(), artifact.AAD(a.ID)), PlainSHA256: a.PlainSHA256})
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

// stepsSpec is a pipeline whose report task joins orders with the output
// dataset of the customers task and aggregates per country; extra is
// added to the report task.
func stepsSpec(extra string) string {
	return `pipeline: p
tasks:
  customers:
    extract: {csv: {path: customers.csv}}
  report:
    needs: [customers]
    extract: {csv: {path: orders.csv}}
    transform:
      - cast: {amount: float}
      - join: {with: customers, on: {customer: id}, select: [country]}
      - aggregate: {group_by: [country], measures: {orders: "count()", revenue: "sum(amount)"}}
` + extra + `    load: {jsonl: {path: out.jsonl}}
`
}

// runReport runs the customers task, then the report task reading its
// output dataset.
func runReport(t *testing.T, extra string) (*Job, Result, *keys.Keyring, error) {
	t.Helper()
	crypt := testKeys(t)
	files := map[string]string{"customers.csv": stepsCustomersCSV, "orders.csv": stepsOrdersCSV}
	spec := stepsSpec(extra)
	up := dataJob(t, spec, "customers", files)
	upRes, err := NewData(data.Builtin, crypt).Execute(context.Background(), up)
	if err != nil {
		t.Fatal(err)
	}
	job := dataJob(t, spec, "report", files)
	job.StateDir = up.StateDir
	job.Inputs = map[string]store.Artifact{"customers": artifactOf(t, upRes, "output")}
	res, err := NewData(data.Builtin, crypt).Execute(context.Background(), job)
	return job, res, crypt, err
}

func TestDataJoinAndAggregate(t *testing.T) {
	t.Parallel()
	job, res, crypt, err := runReport(t, "    schema: {contract: {country: string, orders: int, revenue: float}}\n")
	if err != nil {
		t.Fatal(err)
	}
	// 5 orders: 1 bad amount quarantined, 1 without a customer filtered
	// by the inner join, 3 merged into 2 country rows.
	if res.RowsIn != 5 || res.RowsOut != 2 || res.RowsQuarantined != 1 {
		t.Errorf("rows in/out/quarantined = %d/%d/%d, want 5/2/1", res.RowsIn, res.RowsOut, res.RowsQuarantined)
	}
	if res.SchemaDrift != nil {
		t.Errorf("drift %q from a kept contract", res.SchemaDrift)
	}
	b, err := os.ReadFile(filepath.Join(job.Pipeline.Dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"country":"DE","orders":2,"revenue":11.5}
{"country":"FR","orders":1,"revenue":3}
`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	q := readStepsArtifact(t, crypt, job.StateDir, artifactOf(t, res, "quarantine"))
	if len(q) != 1 || !strings.Contains(q[0][1], `column "amount"`) {
		t.Errorf("quarantine: %q", q)
	}
}

func TestDataJoinInputIsVerified(t *testing.T) {
	t.Parallel()
	crypt := testKeys(t)
	files := map[string]string{"customers.csv": stepsCustomersCSV, "orders.csv": stepsOrdersCSV}
	spec := stepsSpec("")
	up := dataJob(t, spec, "customers", files)
	upRes, err := NewData(data.Builtin, crypt).Execute(context.Background(), up)
	if err != nil {
		t.Fatal(err)
	}
	out := artifactOf(t, upRes, "output")
	path := filepath.Join(up.StateDir, out.Path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x01
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	job := dataJob(t, spec, "report", files)
	job.StateDir = up.StateDir
	job.Inputs = map[string]store.Artifact{"customers": out}
	_, err = NewData(data.Builtin, crypt).Execute(context.Background(), job)
	if !errors.Is(err, artifact.ErrIntegrity) || !IsPermanent(err) {
		t.Errorf("tampered join dataset: err = %v, want a permanent integrity error", err)
	}

	job.Inputs = nil
	_, err = NewData(data.Builtin, crypt).Execute(context.Background(), job)
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), `input task "customers" produced no dataset`) {
		t.Errorf("missing join dataset: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(job.Pipeline.Dir, "out.jsonl")); !os.IsNotExist(err) {
		t.Errorf("a failed task wrote its output: %v", err)
	}
}

func TestDataBadRowThresholds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra string
		want  string // "" for success
		// rowsOut: max_bad_rows stops as soon as it is crossed, before
		// the aggregate emits; max_bad_ratio is judged at the end.
		rowsOut int64
	}{
		{"no threshold", "", "", 2},
		{"max_bad_rows met", "    max_bad_rows: 1\n", "", 2},
		{"max_bad_rows exceeded", "    max_bad_rows: 0\n", "task report: 1 records quarantined, more than max_bad_rows (0); nothing was written; the rejected records are in quarantine dataset ", 0},
		{"max_bad_ratio met", "    max_bad_ratio: 0.2\n", "", 2},
		{"max_bad_ratio exceeded", "    max_bad_ratio: 0.1\n", "task report: 1 of 5 records quarantined (20.00%), more than max_bad_ratio (0.1); nothing was written; the rejected records are in quarantine dataset ", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job, res, crypt, err := runReport(t, tt.extra)
			_, statErr := os.Stat(filepath.Join(job.Pipeline.Dir, "out.jsonl"))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.RowsOut != tt.rowsOut {
					t.Errorf("rows out = %d, want %d", res.RowsOut, tt.rowsOut)
				}
				if statErr != nil {
					t.Errorf("output: %v", statErr)
				}
				return
			}
			if err == nil || !IsPermanent(err) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a permanent error starting %q", err, tt.want)
			}
			if !os.IsNotExist(statErr) {
				t.Errorf("a task over its threshold wrote its output: %v", statErr)
			}
			// The quarantine is kept, named in the error and the log,
			// and readable.
			qa := artifactOf(t, res, "quarantine")
			if !strings.Contains(err.Error(), qa.ID) || !strings.Contains(err.Error(), filepath.Join(job.StateDir, qa.Path)) {
				t.Errorf("error %q does not say where quarantine %s is", err, qa.ID)
			}
			if q := readStepsArtifact(t, crypt, job.StateDir, qa); len(q) != 1 {
				t.Errorf("quarantine rows: %q", q)
			}
			if res.RowsIn != 5 || res.RowsQuarantined != 1 || res.RowsOut != tt.rowsOut {
				t.Errorf("rows in/out/quarantined = %d/%d/%d, want 5/%d/1", res.RowsIn, res.RowsOut, res.RowsQuarantined, tt.rowsOut)
			}
			if log := job.Log.(*strings.Builder).String(); !strings.Contains(log, "error: ") || !strings.Contains(log, qa.ID) {
				t.Errorf("log: %q", log)
			}
		})
	}
}

func TestDataMaxBadRowsStopsEarly(t *testing.T) {
	t.Parallel()
	crypt := testKeys(t)
	var sb strings.Builder
	sb.WriteString("id,n\n")
	const total = 5000
	for i := range total {
		fmt.Fprintf(&sb, "%d,bad%d\n", i, i)
	}
	job := dataJob(t, `pipeline: p
tasks:
  all:
    extract: {csv: {path: in.csv, batch_size: 100}}
    transform:
      - cast: {n: int}
    max_bad_rows: 150
    load: {jsonl: {path: out.jsonl}}
`, "all", map[string]string{"in.csv": sb.String()})
	res, err := NewData(data.Builtin, crypt).Execute(context.Background(), job)
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "200 records quarantined, more than max_bad_rows (150)") {
		t.Fatalf("err = %v", err)
	}
	if res.RowsIn != 200 || res.RowsQuarantined != 200 {
		t.Errorf("rows in/quarantined = %d/%d: the task did not stop after the batch that crossed the threshold", res.RowsIn, res.RowsQuarantined)
	}
	if q := readStepsArtifact(t, crypt, job.StateDir, artifactOf(t, res, "quarantine")); len(q) != 200 {
		t.Errorf("quarantine holds %d records, want 200", len(q))
	}
}

func TestDataSchemaContract(t *testing.T) {
	t.Parallel()
	drift := []string{
		`column "orders" is int, the contract says float`,
		`column "total" (float) is missing`,
		`column "revenue" (float) is new`,
	}
	contract := "    schema:\n      contract: {country: string, orders: float, total: float}\n"
	tests := []struct {
		policy  string
		logLine string
		fail    bool
	}{
		{"fail", "error: schema drift: ", true},
		{"warn", "warning: schema drift: ", false},
		{"evolve", "schema evolved: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			t.Parallel()
			job, res, _, err := runReport(t, contract+"      on_drift: "+tt.policy+"\n")
			if diff := cmp.Diff(drift, res.SchemaDrift); diff != "" {
				t.Errorf("SchemaDrift (-want +got):\n%s", diff)
			}
			log := job.Log.(*strings.Builder).String()
			for _, d := range drift {
				if !strings.Contains(log, tt.logLine+d+"\n") {
					t.Errorf("log lacks %q:\n%s", tt.logLine+d, log)
				}
			}
			_, statErr := os.Stat(filepath.Join(job.Pipeline.Dir, "out.jsonl"))
			if !tt.fail {
				if err != nil || statErr != nil {
					t.Fatalf("err = %v, output: %v", err, statErr)
				}
				return
			}
			if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "(on_drift: fail): "+strings.Join(drift, "; ")) {
				t.Errorf("err = %v, want a permanent error listing every drift", err)
			}
			if !os.IsNotExist(statErr) {
				t.Errorf("a task failing its contract wrote output: %v", statErr)
			}
		})
	}
}
