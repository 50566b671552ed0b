package transform

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
	"github.com/sluicehq/sluice/internal/data/csv"
	"github.com/sluicehq/sluice/internal/pipeline"
)

var qualityNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// csvOpener opens consent sources as CSV files written into a temp dir.
func csvOpener(t *testing.T, content string) func(context.Context, *pipeline.Endpoint) (data.Source, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "consents.csv"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, ep *pipeline.Endpoint) (data.Source, error) {
		return csv.OpenSource(ctx, ep.Config, data.Env{
			Dir: dir, Expand: func(s string) (string, error) { return s, nil }, BatchSize: 2,
			Quarantine: &recorder{fail: errors.New("unreadable consent record")},
		})
	}
}

func consentStep(subject string) pipeline.Step {
	cfg := csv.NewConfig()
	cfg.Path = "consents.csv"
	return pipeline.Step{Kind: pipeline.StepConsent, Consent: &pipeline.Consent{
		Subject: subject, Purpose: "marketing", Source: &pipeline.Endpoint{Connector: "csv", Config: cfg},
	}}
}

func TestConsentStep(t *testing.T) {
	t.Parallel()
	schema := mustSchema(t, f("id", data.Int), f("customer", data.String), f("num", data.Int))
	rows := [][]any{
		{1, "c1", 1},
		{2, "c2", 2},
		{3, nil, 3},
		{4, " c3 ", 3},
		{5, "c4", 4},
	}
	tests := []struct {
		name     string
		subject  string
		consents string
		wantIDs  []any
	}{
		{"status column, latest wins", "customer",
			"subject,purpose,status,at\nc1,marketing,granted,2026-01-01T00:00:00Z\nc2,marketing,granted,2026-01-01T00:00:00Z\nc2,marketing,revoked,2026-02-01T00:00:00Z\nc3,marketing,granted,2026-01-01T00:00:00Z\nc4,analytics,granted,2026-01-01T00:00:00Z\n",
			[]any{1, 4}},
		{"an older grant after a revocation does not revive consent", "customer",
			"subject,purpose,status,at\nc1,marketing,revoked,2026-02-01T00:00:00Z\nc1,marketing,granted,2026-01-01T00:00:00Z\n",
			nil},
		{"consent dated after the run is not in force", "customer",
			"subject,purpose,status,at\nc1,marketing,granted,2026-01-01T00:00:00Z\nc2,marketing,granted,2026-06-01T00:00:00Z\n",
			[]any{1}},
		{"without status every record grants, file order decides", "customer",
			"subject,purpose\nc1,marketing\nc4,marketing\n",
			[]any{1, 5}},
		{"int subjects match their digits", "num",
			"subject,purpose,status\n1,marketing,granted\n3,marketing,GRANTED\n4,marketing,revoked\n",
			[]any{1, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := CompileContext(t.Context(), []pipeline.Step{consentStep(tt.subject)}, schema,
				Options{Now: qualityNow, OpenEndpoint: csvOpener(t, tt.consents)})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			q := &recorder{}
			out, err := c.Apply(t.Context(), mkBatch(t, schema, rows), q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []any
			for _, r := range rowsOf(t, out) {
				ids = append(ids, r[0])
			}
			if d := cmp.Diff(tt.wantIDs, ids); d != "" {
				t.Errorf("kept ids (-want +got):\n%s", d)
			}
			st := c.Stats()
			checkInvariant(t, st)
			if want := int64(len(rows) - len(tt.wantIDs)); st.ConsentFiltered != want || st.Filtered != want || len(q.rejects) != 0 {
				t.Errorf("consent filtered %d, filtered %d, quarantined %d; want %d, %d, 0", st.ConsentFiltered, st.Filtered, len(q.rejects), want, want)
			}
			res := c.Quality()
			if len(res) != 1 || res[0].Kind != "consent" || res[0].Failing != st.ConsentFiltered || res[0].Checked != int64(len(rows)) {
				t.Errorf("Quality = %+v, want one consent result counting %d filtered of %d", res, st.ConsentFiltered, len(rows))
			}
		})
	}
}

func TestConsentSourceErrors(t *testing.T) {
	t.Parallel()
	schema := mustSchema(t, f("customer", data.String), f("score", data.Float))
	tests := []struct {
		name, subject, consents, want string
	}{
		{"missing columns", "customer", "who,why\nc1,marketing\n", "want columns subject and purpose"},
		{"bad status", "customer", "subject,purpose,status\nc1,marketing,maybe\n", "line 2: column status"},
		{"bad at", "customer", "subject,purpose,at\nc1,marketing,yesterday\n", "is not an RFC 3339 timestamp"},
		{"float subject", "score", "subject,purpose\nc1,marketing\n", "a subject id is a string or an int"},
		{"no such subject column", "nobody", "subject,purpose\n", `column "nobody": no such column`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := CompileContext(t.Context(), []pipeline.Step{consentStep(tt.subject)}, schema,
				Options{Now: qualityNow, OpenEndpoint: csvOpener(t, tt.consents)})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "step 1 (consent)") {
				t.Errorf("error = %v, want one naming the step and containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "maybe") {
				t.Errorf("error %q shows the raw status value", err)
			}
		})
	}
}

func TestCheckStepInChain(t *testing.T) {
	t.Parallel()
	schema := mustSchema(t, f("id", data.Int), f("email", data.String), f("country", data.String))
	min1 := 1.0
	steps := []pipeline.Step{
		{Kind: pipeline.StepCheck, Check: &pipeline.Check{Rules: []pipeline.CheckRule{
			{Name: "email.regex", Kind: pipeline.CheckRegex, Column: "email", Pattern: "@", Severity: pipeline.SeverityQuarantine, Mostly: 1},
			{Name: "id.unique", Kind: pipeline.CheckUnique, Column: "id", Severity: pipeline.SeverityWarn, Mostly: 1},
			{Name: "row_count", Kind: pipeline.CheckRowCount, Min: &min1, Severity: pipeline.SeverityFail, Mostly: 1},
		}}},
		{Kind: pipeline.StepAggregate, Aggregate: &pipeline.Aggregate{GroupBy: []string{"country"}, Measures: []pipeline.Measure{{Name: "n", Func: pipeline.AggCount}}}},
	}
	c, err := CompileContext(t.Context(), steps, schema, Options{Now: qualityNow})
	if err != nil {
		t.Fatal(err)
	}
	q := &recorder{}
	b := mkBatch(t, schema, [][]any{
		{1, "a@x", "DE"}, {2, "bad-address", "DE"}, {2, "b@x", "FR"}, {3, "c@x", "DE"},
	})
	b.Pos = []int64{2, 3, 4, 5}
	if _, err := c.Apply(t.Context(), b, q); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := c.Flush(t.Context(), q)
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	checkInvariant(t, st)
	if st.Quarantined != 1 || st.Out != 2 || st.Aggregated != 1 {
		t.Errorf("stats %+v, want 1 quarantined, 2 out, 1 aggregated", st)
	}
	if len(q.rejects) != 1 || q.rejects[0].Pos != "line 3" || q.rejects[0].Reason != "check failed: email.regex" {
		t.Errorf("rejects = %+v, want line 3 with reason check failed: email.regex", q.rejects)
	}
	var got []string
	for _, r := range c.Quality() {
		got = append(got, r.Name)
		if r.Name == "id.unique" && (r.Failing != 1 || r.Passed) {
			t.Errorf("id.unique = %+v, want 1 failing, not passed", r)
		}
	}
	if d := cmp.Diff([]string{"email.regex", "id.unique", "row_count"}, got); d != "" {
		t.Errorf("Quality names (-want +got):\n%s", d)
	}
}
