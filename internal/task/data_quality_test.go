package task

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

const (
	qualityCustomersCSV = "id\nc1\nc2\nc3\nc5\n"
	// Orders 5 (c3 revoked) and 6 (c5, consent dated after the run) have
	// no consent; 2 has a bad email and 4 an unknown customer (both
	// quarantined); 3 has an unknown country and a negative total (warn).
	qualityOrdersCSV = `id,email,country,customer_id,total,updated_at
1,alice@example.com,DE,c1,10.5,2026-03-01T10:00:00Z
2,bob.example.com,FR,c2,3,2026-03-01T09:00:00Z
3,carol@example.org,XX,c1,-2,2026-03-01T08:00:00Z
4,dave@example.net,DE,c9,7,2026-03-01T07:00:00Z
5,erin@example.com,US,c3,1,2026-03-01T06:00:00Z
6,frank@example.com,DE,c5,4,2026-03-01T05:00:00Z
`
	qualityConsentsCSV = `subject,purpose,status,at
c1,marketing,granted,2026-01-01T00:00:00Z
c2,marketing,granted,2026-01-01T00:00:00Z
c3,marketing,granted,2026-01-01T00:00:00Z
c3,marketing,revoked,2026-02-01T00:00:00Z
c9,marketing,granted,2026-01-01T00:00:00Z
c5,analytics,granted,2026-01-01T00:00:00Z
c5,marketing,granted,2026-12-01T00:00:00Z
`
)

// qualitySpec is a pipeline whose orders task filters by consent and
// checks the rest; rowCount is the row_count check's settings.
func qualitySpec(rowCount string) string {
	return `pipeline: p
tasks:
  customers:
    extract: {csv: {path: customers.csv}}
  orders:
    needs: [customers]
    extract:
      csv:
        path: orders.csv
        schema: {id: int, email: string, country: string, customer_id: string, total: float, updated_at: timestamp}
    transform:
      - consent: {subject: customer_id, purpose: marketing, source: {csv: {path: consents.csv}}}
      - check:
          columns:
            id: [not_null, unique]
            email: {regex: "^[^@]+@[^@]+$", severity: quarantine}
            country: {accepted_values: [DE, FR, US], mostly: 0.99}
          dataset:
            row_count: ` + rowCount + `
            freshness: {column: updated_at, max_age: 24h, severity: fail}
            relationship: {column: customer_id, to: {task: customers, column: id}, severity: quarantine}
            custom: [{name: positive_total, expr: "row.total >= 0.0"}]
          severity: warn
      - drop: [email]
    load: {jsonl: {path: out.jsonl}}
`
}

var qualityRunTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// runQuality runs the customers task, then the orders task.
func runQuality(t *testing.T, spec string, consents string) (*Job, Result, *keys.Keyring, error) {
	t.Helper()
	crypt := testKeys(t)
	files := map[string]string{"customers.csv": qualityCustomersCSV, "orders.csv": qualityOrdersCSV, "consents.csv": consents}
	up := dataJob(t, spec, "customers", files)
	upRes, err := NewData(data.Builtin, crypt).Execute(context.Background(), up)
	if err != nil {
		t.Fatal(err)
	}
	job := dataJob(t, spec, "orders", files)
	job.Run.CreatedAt = qualityRunTime
	job.StateDir = up.StateDir
	job.Inputs = map[string]store.Artifact{"customers": artifactOf(t, upRes, "output")}
	res, err := NewData(data.Builtin, crypt).Execute(context.Background(), job)
	return job, res, crypt, err
}

// checkSummary is the part of a result the tests compare.
type checkSummary struct {
	Name             string
	Severity         string
	Checked, Failing int64
	Passed           bool
	Samples          []store.CheckSample
}

func summarize(rs []store.CheckResult) []checkSummary {
	var out []checkSummary
	for _, r := range rs {
		out = append(out, checkSummary{r.Name, r.Severity, r.Checked, r.Failing, r.Passed, r.Samples})
	}
	return out
}

func TestDataQualityEndToEnd(t *testing.T) {
	t.Parallel()
	job, res, crypt, err := runQuality(t, qualitySpec("{min: 1, severity: fail}"), qualityConsentsCSV)
	if err != nil {
		t.Fatal(err)
	}
	// 6 read: 2 without consent filtered, 2 quarantined, 2 written.
	if res.RowsIn != 6 || res.RowsOut != 2 || res.RowsQuarantined != 2 || res.ConsentFiltered != 2 {
		t.Errorf("rows in/out/quarantined/consent filtered = %d/%d/%d/%d, want 6/2/2/2",
			res.RowsIn, res.RowsOut, res.RowsQuarantined, res.ConsentFiltered)
	}
	// The accounting invariant: nothing else filters or aggregates here.
	if res.RowsIn != res.RowsOut+res.RowsQuarantined+res.ConsentFiltered {
		t.Errorf("rows_in %d != rows_out %d + quarantined %d + filtered %d", res.RowsIn, res.RowsOut, res.RowsQuarantined, res.ConsentFiltered)
	}
	want := []checkSummary{
		{"consent.marketing", "filter", 6, 2, true, nil},
		{"id.not_null", "warn", 4, 0, true, nil},
		{"id.unique", "warn", 4, 0, true, nil},
		{"email.regex", "quarantine", 4, 1, false, []store.CheckSample{{Pos: "line 3", Value: "bo***"}}},
		{"country.accepted_values", "warn", 4, 1, false, []store.CheckSample{{Pos: "line 4", Value: "***"}}},
		{"row_count", "fail", 1, 0, true, nil},
		{"freshness.updated_at", "fail", 1, 0, true, nil},
		{"customer_id.relationship", "quarantine", 4, 1, false, []store.CheckSample{{Pos: "line 5", Value: "***"}}},
		{"positive_total", "warn", 4, 1, false, []store.CheckSample{{Pos: "line 4"}}},
	}
	if d := cmp.Diff(want, summarize(res.Checks)); d != "" {
		t.Errorf("check results (-want +got):\n%s", d)
	}
	for _, r := range res.Checks {
		if r.RunID != "r1" || r.Task != "orders" || r.Attempt != 1 {
			t.Errorf("%s: identity %s/%s/%d, want r1/orders/1", r.Name, r.RunID, r.Task, r.Attempt)
		}
	}
	out, err := os.ReadFile(filepath.Join(job.Pipeline.Dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(out), "\n"); got != 2 || !strings.Contains(string(out), `"id":1,`) || !strings.Contains(string(out), `"id":3,`) {
		t.Errorf("output = %q, want orders 1 and 3", out)
	}
	q := readStepsArtifact(t, crypt, job.StateDir, artifactOf(t, res, "quarantine"))
	var reasons []string
	for _, row := range q {
		reasons = append(reasons, row[0]+": "+row[1])
	}
	wantReasons := []string{"line 3: check failed: email.regex", "line 5: check failed: customer_id.relationship"}
	if d := cmp.Diff(wantReasons, reasons); d != "" {
		t.Errorf("quarantine reasons (-want +got):\n%s", d)
	}
	log := job.Log.(*strings.Builder).String()
	if !strings.Contains(log, "check email.regex (quarantine): 1 of 4 failing (25.00%), FAILED") {
		t.Errorf("log lacks the email.regex line:\n%s", log)
	}

	t.Run("PersistedInTheAttemptTransaction", func(t *testing.T) {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx := t.Context()
		if _, err := db.CreateRun(ctx, store.NewRun{ID: "r1", Namespace: "default", Pipeline: "p", PipelineHash: "h",
			PipelineFile: "p.yaml", LogicalDate: "2026-11-25", Trigger: "manual", Tasks: []string{"customers", "orders"}, CreatedAt: qualityRunTime}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetTaskState(ctx, store.SetTaskState{RunID: "r1", Task: "orders", From: []store.TaskState{store.TaskPending}, To: store.TaskQueued, At: qualityRunTime}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.StartAttempt(ctx, store.StartAttempt{RunID: "r1", Task: "orders", From: store.TaskQueued, At: qualityRunTime}); err != nil {
			t.Fatal(err)
		}
		err = db.InTx(ctx, func(tx store.Store) error {
			if err := tx.PutCheckResults(ctx, "r1", "orders", 1, res.Checks); err != nil {
				return err
			}
			_, err := tx.FinishAttempt(ctx, store.FinishAttempt{RunID: "r1", Task: "orders", Number: 1, Outcome: store.OutcomeSuccess,
				State: store.TaskSuccess, At: qualityRunTime, RowsIn: res.RowsIn, RowsOut: res.RowsOut, RowsQuarantined: res.RowsQuarantined})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.ListCheckResults(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, summarize(got)); d != "" {
			t.Errorf("stored check results (-want +got):\n%s", d)
		}
	})
}

func TestDataQualityFailSeverity(t *testing.T) {
	t.Parallel()
	job, res, _, err := runQuality(t, qualitySpec("{min: 100, severity: fail}"), qualityConsentsCSV)
	if err == nil {
		t.Fatal("Execute succeeded; want the row_count check to fail the task")
	}
	if !IsPermanent(err) || !strings.Contains(err.Error(), "row_count") || !strings.Contains(err.Error(), "want at least 100") {
		t.Errorf("error = %v, want a permanent error naming row_count", err)
	}
	if _, serr := os.Stat(filepath.Join(job.Pipeline.Dir, "out.jsonl")); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("out.jsonl exists after a failed check (stat: %v)", serr)
	}
	// The results and the quarantine are kept, for the run to record.
	if len(res.Checks) != 9 {
		t.Errorf("%d check results, want 9", len(res.Checks))
	}
	artifactOf(t, res, "quarantine")
	if res.RowsIn != res.RowsOut+res.RowsQuarantined+res.ConsentFiltered {
		t.Errorf("rows_in %d != rows_out %d + quarantined %d + filtered %d", res.RowsIn, res.RowsOut, res.RowsQuarantined, res.ConsentFiltered)
	}
}

func TestDataConsentSourceMustBeReadWhole(t *testing.T) {
	t.Parallel()
	spec := strings.Replace(qualitySpec("{min: 1}"), "source: {csv: {path: consents.csv}}",
		"source: {csv: {path: consents.csv, schema: {subject: string, purpose: string, status: string, at: timestamp}}}", 1)
	bad := qualityConsentsCSV + "c1,marketing,revoked,yesterday\n"
	_, _, _, err := runQuality(t, spec, bad)
	if err == nil || !strings.Contains(err.Error(), "consent") || !strings.Contains(err.Error(), "read whole") {
		t.Errorf("error = %v, want the unreadable consent record to fail the task", err)
	}
}
