package monitor

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape serves the registry and parses it with Prometheus's own parser.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing exposition: %v", err)
	}
	return fams
}

// value returns the counter or histogram-count of the series in fam whose
// label name has value lv ("" for an unlabelled family).
func value(t *testing.T, fams map[string]*dto.MetricFamily, fam, lv string) float64 {
	t.Helper()
	f, ok := fams[fam]
	if !ok {
		t.Fatalf("family %s missing", fam)
	}
	for _, m := range f.GetMetric() {
		if lv != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != lv) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("family %s has no series %q", fam, lv)
	return 0
}

func TestMetricsRecordWhatCallersReport(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	m.RunFinished("success")
	m.RunFinished("success")
	m.RunFinished("failed")
	m.TaskFinished("success", 2*time.Second, 100, 90, 10)
	m.TaskFinished("failed", time.Second, 5, 0, 0)
	m.TaskFinished("skipped", 0, 0, 0, 0)
	m.SchedulerLag(3 * time.Second)
	m.SchedulerLag(-time.Second)
	m.AuthFailure("bad_password")
	m.Denied("pipeline.write")

	fams := scrape(t, m)
	tests := []struct {
		fam, label string
		want       float64
	}{
		{FamilyRunsFinished, "success", 2},
		{FamilyRunsFinished, "failed", 1},
		{FamilyTaskRuns, "success", 1},
		{FamilyTaskRuns, "skipped", 1},
		{FamilyTaskDuration, "success", 1},
		{FamilyTaskDuration, "failed", 1},
		{FamilyRowsIn, "", 105},
		{FamilyRowsOut, "", 90},
		{FamilyRowsQuarantined, "", 10},
		{FamilySchedulerLag, "", 2},
		{FamilyAuthFailures, "bad_password", 1},
		{FamilyDenied, "pipeline.write", 1},
	}
	for _, tt := range tests {
		t.Run(tt.fam+"/"+tt.label, func(t *testing.T) {
			if got := value(t, fams, tt.fam, tt.label); got != tt.want {
				t.Errorf("%s{%s} = %v, want %v", tt.fam, tt.label, got, tt.want)
			}
		})
	}
	// A skipped task never ran: no duration sample for it.
	for _, s := range fams[FamilyTaskDuration].GetMetric() {
		if s.GetLabel()[0].GetValue() == "skipped" {
			t.Errorf("duration recorded for a skipped task")
		}
	}
	if got := fams["go_goroutines"]; got == nil {
		t.Errorf("Go runtime collector missing")
	}
	lag := fams[FamilySchedulerLag].GetMetric()[0].GetHistogram().GetSampleSum()
	if diff := cmp.Diff(3.0, lag); diff != "" {
		t.Errorf("scheduler lag sum (-want +got):\n%s", diff)
	}
}

func TestMetricsAreIndependentPerInstance(t *testing.T) {
	t.Parallel()
	a, b := NewMetrics(), NewMetrics()
	a.RunFinished("success")
	if _, ok := scrape(t, b)[FamilyRunsFinished]; ok {
		t.Errorf("a run counted on one registry appeared on another")
	}
}
